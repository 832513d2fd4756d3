//! Post-processors: turn the builder's [`Artifact`] into what users ship.
//!
//! A build's post-processors form chains ([`run_chains`]), as in Packer: each chain starts from
//! the builder's artifact and hands each post-processor's artifact to the next. After a
//! post-processor ran, its input is deleted unless it keeps it (`keep_input_artifact`); the
//! builder's disk survives when the first post-processor of any chain keeps it. kiln's vagrant
//! and compress keep their input by default (Packer's delete it, a known pain); checksum,
//! manifest, shell-local and vagrant-catalog (whose catalog points at the box) always keep
//! it. An image that is not kept is removed from its engine ([`docker`] has the docker
//! post-processors' own rules).

pub mod checksum;
pub mod compress;
pub mod docker;
pub mod manifest;
pub mod vagrant;
pub mod vagrant_catalog;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::artifact::Artifact;
use crate::provisioner::shell_local;
use crate::ui::Ui;
use crate::unknown::UnknownType;

/// One `post-processor` block: its type's options and the options every type has.
#[derive(Debug, Clone)]
pub struct PostProcessorBlock {
    /// `name`, shown in messages instead of the type.
    pub name: Option<String>,
    /// `only`: the sources (`qemu.NAME`) it runs for; empty = all.
    pub only: Vec<String>,
    /// `except`: the sources it skips.
    pub except: Vec<String>,
    /// `keep_input_artifact`, when set (each type has its default).
    pub keep_input_artifact: Option<bool>,
    pub kind: PostProcessor,
}

impl PostProcessorBlock {
    /// Whether it runs for the source `qemu.NAME` (Packer matches `TYPE.NAME` exactly).
    pub fn runs_for(&self, source: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|s| s == source))
            && !self.except.iter().any(|s| s == source)
    }
}

/// A `post-processor` block inside `build`.
#[derive(Debug, Clone)]
pub enum PostProcessor {
    Vagrant(vagrant::Config),
    Checksum(checksum::Config),
    Manifest(manifest::Config),
    Compress(compress::Config),
    ShellLocal(shell_local::Config),
    VagrantCatalog(vagrant_catalog::Config),
    DockerImport(docker::ImportConfig),
    DockerTag(docker::TagConfig),
    DockerPush(docker::PushConfig),
    DockerSave(docker::SaveConfig),
    /// A type kiln does not have (`utm-vagrant`): kept as written, never run (`kiln build`
    /// refuses a build that would run one).
    Unknown(UnknownType),
}

impl PostProcessor {
    /// The type's name, as in `post-processor "TYPE"`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Vagrant(_) => "vagrant",
            Self::Checksum(_) => "checksum",
            Self::Manifest(_) => "manifest",
            Self::Compress(_) => "compress",
            Self::ShellLocal(_) => "shell-local",
            Self::VagrantCatalog(_) => "vagrant-catalog",
            Self::DockerImport(_) => "docker-import",
            Self::DockerTag(_) => "docker-tag",
            Self::DockerPush(_) => "docker-push",
            Self::DockerSave(_) => "docker-save",
            Self::Unknown(u) => &u.type_name,
        }
    }
}

/// What the post-processors need to know about the build.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The source's name (`packer_build_name`), e.g. `testos`.
    pub build_name: String,
    /// `TYPE.NAME` of the source, which `only` / `except` match.
    pub source: String,
    pub run_uuid: String,
    /// `-force`.
    pub force: bool,
}

/// A file a post-processor wrote, with a short description.
pub type Written = (&'static str, PathBuf);

/// Why a post-processor failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vagrant(#[from] vagrant::Error),
    #[error(transparent)]
    Checksum(#[from] checksum::Error),
    #[error(transparent)]
    Manifest(#[from] manifest::Error),
    #[error(transparent)]
    Compress(#[from] compress::Error),
    #[error(transparent)]
    ShellLocal(#[from] shell_local::Error),
    #[error(transparent)]
    VagrantCatalog(#[from] vagrant_catalog::Error),
    #[error(transparent)]
    Docker(#[from] docker::Error),
    /// The block's type is not one kiln has.
    #[error("kiln has no `{0}` post-processor")]
    NotBuiltIn(String),
    /// vagrant got an artifact that is not the builder's disk (e.g. after compress).
    #[error("The vagrant post-processor needs the builder's disk as input, but got {files:?}")]
    NotADisk { files: Vec<PathBuf> },
    /// The blocking task panicked or was cancelled.
    #[error("The post-processor's worker thread did not finish")]
    Join(#[source] tokio::task::JoinError),
    /// The build was cancelled (Ctrl-C) before this post-processor ran.
    #[error("Cancelled before it ran")]
    Cancelled,
    /// A file of an intermediate artifact could not be removed.
    #[error("Cannot remove `{}`", path.display())]
    RemoveInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A failure, and which post-processor had it.
#[derive(Debug, thiserror::Error)]
#[error("Post-processor `{name}` failed")]
pub struct Failed {
    /// Its `name`, or its type.
    pub name: String,
    #[source]
    pub source: Error,
}

/// What the chains produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files written, in order (deleted intermediates left out).
    pub written: Vec<Written>,
    /// Whether the builder's disk was deleted (no chain's first post-processor kept it).
    pub removed_builder_disk: bool,
    /// Time spent per post-processor, by type.
    pub timings: Vec<(String, Duration)>,
}

/// Runs `chains` for the build `info` whose builder produced `builder`.
pub async fn run_chains(
    chains: &[Vec<PostProcessorBlock>],
    builder: &Artifact,
    info: &BuildInfo,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Outcome, Failed> {
    let mut out = Outcome::default();
    let chains: Vec<Vec<&PostProcessorBlock>> = chains
        .iter()
        .map(|c| c.iter().filter(|pp| pp.runs_for(&info.source)).collect())
        .filter(|c: &Vec<_>| !c.is_empty())
        .collect();
    let mut keep_builder = chains.is_empty();
    for chain in chains {
        let mut input = builder.clone();
        for (i, pp) in chain.into_iter().enumerate() {
            let name = pp
                .name
                .clone()
                .unwrap_or_else(|| pp.kind.type_name().to_owned());
            let failed = |source| Failed {
                name: name.clone(),
                source,
            };
            if cancel.is_cancelled() {
                return Err(failed(Error::Cancelled));
            }
            let t0 = Instant::now();
            let (output, default_keep, forced) =
                run_one(&pp.kind, &input, info, ui, cancel, &mut out.written)
                    .await
                    .map_err(failed)?;
            out.timings
                .push((pp.kind.type_name().to_owned(), t0.elapsed()));
            let keep = match pp.keep_input_artifact {
                Some(false) if forced => {
                    ui.warn(format!(
                        "post-processor `{name}` always keeps its input; `keep_input_artifact = false` is ignored"
                    ));
                    true
                }
                Some(k) => k,
                None => default_keep,
            };
            if i == 0 {
                keep_builder |= keep;
            } else if !keep {
                // Only what this chain made: the builder's files are decided below.
                for f in input.files.iter().filter(|f| !builder.files.contains(f)) {
                    remove(f).await.map_err(failed)?;
                    out.written.retain(|(_, w)| w != f);
                }
                docker::remove(&input, ui)
                    .await
                    .map_err(|e| failed(e.into()))?;
            }
            input = output;
        }
    }
    if !keep_builder {
        let failed = |source| Failed {
            name: "keep_input_artifact".into(),
            source,
        };
        for f in &builder.files {
            remove(f).await.map_err(failed)?;
        }
        docker::remove(builder, ui)
            .await
            .map_err(|e| failed(e.into()))?;
        out.removed_builder_disk = true;
    }
    Ok(out)
}

/// The files the post-processors that run for `info.source` will write from the disk a
/// `builder_type` builder makes for an `architecture` guest (vagrant boxes, compress archives),
/// each at most about the disk's size: the builder checks the free space for them before it
/// starts.
pub fn disk_outputs(
    chains: &[Vec<PostProcessorBlock>],
    info: &BuildInfo,
    builder_type: &str,
    architecture: &str,
) -> Vec<PathBuf> {
    chains
        .iter()
        .flatten()
        .filter(|pp| pp.runs_for(&info.source))
        .filter_map(|pp| match &pp.kind {
            PostProcessor::Vagrant(cfg) => {
                let arch = cfg.architecture.as_deref().unwrap_or(architecture);
                Some(vagrant::render_output_name(cfg, &info.build_name, arch))
            }
            PostProcessor::Compress(cfg) => Some(compress::render_output_name(
                cfg,
                &info.build_name,
                builder_type,
            )),
            _ => None,
        })
        .map(PathBuf::from)
        .collect()
}

async fn remove(path: &Path) -> Result<(), Error> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::RemoveInput {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Runs one post-processor on `input`; returns its artifact, whether it keeps its input by
/// default, and whether that is forced.
async fn run_one(
    pp: &PostProcessor,
    input: &Artifact,
    info: &BuildInfo,
    ui: &Ui,
    cancel: &CancellationToken,
    written: &mut Vec<Written>,
) -> Result<(Artifact, bool, bool), Error> {
    match pp {
        PostProcessor::Unknown(u) => Err(Error::NotBuiltIn(u.type_name.clone())),
        PostProcessor::Vagrant(cfg) => {
            let disk = input.disk.clone().ok_or_else(|| Error::NotADisk {
                files: input.files.clone(),
            })?;
            let arch = cfg
                .architecture
                .clone()
                .unwrap_or_else(|| disk.architecture.clone());
            let out = PathBuf::from(vagrant::render_output_name(cfg, &info.build_name, &arch));
            ui.say(format!(
                "Running post-processor: vagrant (writing `{}`)",
                out.display()
            ));
            let (cfg, out2, ui2, cancel2) = (cfg.clone(), out.clone(), ui.clone(), cancel.clone());
            let total = std::fs::metadata(&disk.path).map_or(0, |m| m.len());
            let boxed = blocking(move || {
                let input = vagrant::DiskInput {
                    path: &disk.path,
                    virtual_size: disk.virtual_size,
                    format: &disk.format,
                    accelerator_is_kvm: disk.accelerated,
                };
                let mut progress = ui2.progress("Packing the box", Some(total));
                let res = vagrant::write_box(
                    &cfg,
                    &input,
                    &arch,
                    &out2,
                    &mut |n| progress.set_position(n),
                    &cancel2,
                );
                progress.finish();
                res
            })
            .await??;
            ui.message(format!(
                "Box `{}`: {} bytes (disk {} bytes)",
                out.display(),
                boxed.size,
                total
            ));
            written.push(("Vagrant box", out.clone()));
            let artifact = Artifact {
                files: vec![out],
                id: "libvirt".into(),
                disk: None,
                ..input.clone()
            };
            Ok((artifact, true, false))
        }
        PostProcessor::Checksum(cfg) => {
            ui.say("Running post-processor: checksum");
            let (cfg, files, name, ty) = (
                cfg.clone(),
                input.files.clone(),
                info.build_name.clone(),
                input.builder_type,
            );
            let outs = blocking(move || checksum::write(&cfg, &files, &name, ty)).await??;
            written.extend(outs.iter().map(|o| ("checksum file", o.clone())));
            let mut artifact = input.clone();
            artifact.files.extend(outs);
            Ok((artifact, true, true))
        }
        PostProcessor::Manifest(cfg) => {
            ui.say(format!(
                "Running post-processor: manifest (`{}`)",
                cfg.output
            ));
            let minput = manifest::Input {
                build_name: &info.build_name,
                builder_type: input.builder_type,
                artifact_id: &input.id,
                files: &input.files,
                run_uuid: &info.run_uuid,
                build_time: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                force: info.force,
            };
            let path = manifest::write(cfg, &minput)?;
            written.push(("manifest", path));
            Ok((input.clone(), true, true))
        }
        PostProcessor::Compress(cfg) => {
            let out = PathBuf::from(compress::render_output_name(
                cfg,
                &info.build_name,
                input.builder_type,
            ));
            ui.say(format!(
                "Running post-processor: compress (writing `{}`)",
                out.display()
            ));
            let (cfg, files, out2, ui2, cancel2) = (
                cfg.clone(),
                input.files.clone(),
                out.clone(),
                ui.clone(),
                cancel.clone(),
            );
            let total = files
                .iter()
                .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
                .sum();
            let size = blocking(move || {
                let mut progress = ui2.progress("Compressing", Some(total));
                let res = compress::write(
                    &cfg,
                    &files,
                    &out2,
                    &mut |n| progress.set_position(n),
                    &cancel2,
                );
                progress.finish();
                res
            })
            .await??;
            ui.message(format!("Archive `{}`: {size} bytes", out.display()));
            written.push(("archive", out.clone()));
            let artifact = Artifact {
                files: vec![out],
                id: "compressed".into(),
                disk: None,
                ..input.clone()
            };
            Ok((artifact, true, false))
        }
        PostProcessor::VagrantCatalog(cfg) => {
            let box_path = vagrant_catalog::box_of(&input.files)?;
            let catalog = vagrant_catalog::catalog_path(cfg, &info.build_name);
            ui.say(format!(
                "Running post-processor: vagrant-catalog (adding `{}` to `{}`)",
                box_path.display(),
                catalog.display()
            ));
            let (cfg, name, force) = (cfg.clone(), info.build_name.clone(), info.force);
            let up =
                blocking(move || vagrant_catalog::update(&cfg, &box_path, &name, force)).await??;
            ui.message(format!(
                "Catalog `{}`: box `{}` version {} for {}{}{} at {}",
                up.catalog.display(),
                up.box_name,
                up.version,
                up.provider,
                up.architecture
                    .as_ref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default(),
                if up.replaced {
                    ", replacing the old entry"
                } else {
                    ""
                },
                up.url
            ));
            written.push(("Vagrant box catalog", up.catalog.clone()));
            // The catalog points at the box: the box is always kept.
            let mut artifact = input.clone();
            artifact.files.push(up.catalog);
            Ok((artifact, true, true))
        }
        PostProcessor::ShellLocal(cfg) => {
            let env = vec![
                ("PACKER_BUILD_NAME".to_owned(), info.build_name.clone()),
                (
                    "PACKER_BUILDER_TYPE".to_owned(),
                    input.builder_type.to_owned(),
                ),
            ];
            shell_local::run(cfg, ui, &env, cancel).await?;
            Ok((input.clone(), true, true))
        }
        PostProcessor::DockerImport(cfg) => Ok(docker::import(cfg, input, ui).await?),
        PostProcessor::DockerTag(cfg) => Ok(docker::tag(cfg, input, ui).await?),
        PostProcessor::DockerPush(cfg) => Ok(docker::push(cfg, input, ui).await?),
        PostProcessor::DockerSave(cfg) => Ok(docker::save(cfg, input, ui, cancel, written).await?),
    }
}

/// Runs blocking work (hashing, compressing) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(Error::Join)
}

/// Renders Packer's `{{ .Name }}` placeholders in an output name (spaces inside the braces
/// allowed); a placeholder not in `vars` is kept as written.
pub fn render_vars(template: &str, vars: &[(&str, &str)]) -> String {
    crate::render::render_known(template, crate::render::pairs(vars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::Disk;

    fn block(kind: PostProcessor, keep: Option<bool>) -> PostProcessorBlock {
        PostProcessorBlock {
            name: None,
            only: Vec::new(),
            except: Vec::new(),
            keep_input_artifact: keep,
            kind,
        }
    }

    fn compress_to(path: &Path) -> PostProcessor {
        PostProcessor::Compress(compress::Config {
            output: path.display().to_string(),
            ..compress::Config::default()
        })
    }

    fn vagrant_to(path: &Path) -> PostProcessor {
        PostProcessor::Vagrant(vagrant::Config {
            output: path.display().to_string(),
            ..vagrant::Config::default()
        })
    }

    /// A real qcow2 disk as the builder's artifact, in `dir`.
    fn builder(dir: &Path) -> Artifact {
        let path = dir.join("packer-x");
        let ok = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg("64M")
            .status()
            .expect("qemu-img is installed");
        assert!(ok.success());
        Artifact {
            builder_type: "qemu",
            builder_id: "transcend.qemu",
            files: vec![path.clone()],
            id: "VM".into(),
            disk: Some(Disk {
                path,
                format: "qcow2".into(),
                virtual_size: 64 << 20,
                architecture: "arm64".into(),
                accelerated: false,
            }),
            image: None,
        }
    }

    fn info() -> BuildInfo {
        BuildInfo {
            build_name: "x".into(),
            source: "qemu.x".into(),
            run_uuid: "run".into(),
            force: false,
        }
    }

    async fn run(chains: &[Vec<PostProcessorBlock>], art: &Artifact) -> Result<Outcome, Failed> {
        let (ui, _) = Ui::memory();
        run_chains(chains, art, &info(), &ui, &CancellationToken::new()).await
    }

    #[tokio::test]
    async fn chains_pass_artifacts_and_keep_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let art = builder(dir.path());
        let (boxed, packed) = (dir.path().join("x.box"), dir.path().join("x.box.tar"));
        // vagrant → compress(keep = false): the box is an intermediate and goes; the disk stays.
        let chains = vec![vec![
            block(vagrant_to(&boxed), None),
            block(compress_to(&packed), Some(false)),
        ]];
        let out = run(&chains, &art).await.unwrap();
        assert!(art.files[0].exists(), "the disk is kept");
        assert!(!boxed.exists(), "the intermediate box is removed");
        assert!(packed.exists());
        assert!(!out.removed_builder_disk);
        assert_eq!(out.written, [("archive", packed.clone())]);
        // The archive holds the box under its own name.
        let mut ar = tar::Archive::new(std::fs::File::open(&packed).unwrap());
        let entry = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("x.box"));
    }

    #[tokio::test]
    async fn builder_disk_goes_only_when_no_chain_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let art = builder(dir.path());
        let sums = dir.path().join("x.{{.ChecksumType}}");
        let checksum = PostProcessor::Checksum(checksum::Config {
            output: sums.display().to_string(),
            ..checksum::Config::default()
        });
        // checksum always keeps its input, even when told not to.
        let chains = vec![
            vec![block(checksum, Some(false))],
            vec![block(compress_to(&dir.path().join("a.gz")), Some(false))],
        ];
        let out = run(&chains, &art).await.unwrap();
        assert!(!out.removed_builder_disk && art.files[0].exists());
        // Without it, compress(keep = false) is the only chain: the disk is deleted.
        let out = run(&chains[1..], &art).await.unwrap();
        assert!(out.removed_builder_disk && !art.files[0].exists());
    }

    #[tokio::test]
    async fn only_and_except_skip_post_processors() {
        let dir = tempfile::tempdir().unwrap();
        let art = builder(dir.path());
        let out_a = dir.path().join("a.tar.gz");
        let out_b = dir.path().join("b.tar.gz");
        let mut a = block(compress_to(&out_a), Some(false));
        a.only = vec!["qemu.other".into()];
        let mut b = block(compress_to(&out_b), None);
        b.except = vec!["qemu.other".into()];
        let out = run(&[vec![a], vec![b]], &art).await.unwrap();
        assert!(!out_a.exists() && out_b.exists());
        assert!(
            art.files[0].exists(),
            "the skipped keep = false does not count"
        );
        assert_eq!(out.timings.len(), 1);
    }

    #[tokio::test]
    async fn vagrant_needs_the_disk_and_failures_name_the_post_processor() {
        let dir = tempfile::tempdir().unwrap();
        let art = builder(dir.path());
        let chains = vec![vec![
            block(compress_to(&dir.path().join("a.tar")), None),
            block(vagrant_to(&dir.path().join("x.box")), None),
        ]];
        let err = run(&chains, &art).await.unwrap_err();
        assert_eq!(err.name, "vagrant");
        assert!(matches!(err.source, Error::NotADisk { .. }), "{err:?}");
    }

    /// vagrant → vagrant-catalog (issue 15): the catalog lists the box just written and both
    /// are kept (the catalog points at the box); without a box first it fails, named.
    #[tokio::test]
    async fn catalog_follows_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let art = builder(dir.path());
        let (boxed, catalog) = (dir.path().join("x.box"), dir.path().join("cat.json"));
        let cat = PostProcessor::VagrantCatalog(vagrant_catalog::Config {
            catalog: catalog.display().to_string(),
            url: "file:///srv/boxes/{{ .BoxName }}".into(),
            version: "1.0.0".into(),
            box_name: None,
            description: None,
            architecture: None,
        });
        let chains = vec![vec![
            block(vagrant_to(&boxed), None),
            block(cat.clone(), Some(false)),
        ]];
        let out = run(&chains, &art).await.unwrap();
        assert!(boxed.exists(), "the box stays");
        assert_eq!(
            out.written,
            [
                ("Vagrant box", boxed.clone()),
                ("Vagrant box catalog", catalog.clone())
            ]
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&catalog).unwrap()).unwrap();
        assert_eq!(json["name"], "x");
        let p = &json["versions"][0]["providers"][0];
        assert_eq!(p["url"], "file:///srv/boxes/x.box");
        assert_eq!(
            (&p["name"], &p["architecture"]),
            (&"libvirt".into(), &"arm64".into())
        );

        let err = run(&[vec![block(cat, None)]], &art).await.unwrap_err();
        assert_eq!(err.name, "vagrant-catalog");
        assert!(
            matches!(
                err.source,
                Error::VagrantCatalog(vagrant_catalog::Error::NotABox { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn render_vars_cases() {
        let vars = [("BuildName", "x"), ("Provider", "libvirt")];
        let table = [
            ("plain", "a.box", "a.box"),
            (
                "both spacings",
                "{{.BuildName}}_{{ .Provider }}",
                "x_libvirt",
            ),
            ("unknown kept", "{{ .Nope }}.box", "{{ .Nope }}.box"),
            ("unclosed kept", "a{{.BuildName", "a{{.BuildName"),
        ];
        for (reason, input, want) in table {
            assert_eq!(render_vars(input, &vars), want, "{reason}");
        }
    }
}
