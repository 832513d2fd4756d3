//! `kiln build`: runs every build of a template — the builder's steps, then the
//! post-processors — and reports what it produced.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::builder::qemu::{self, BuildContext};
use crate::postprocessor::{checksum, manifest, vagrant};
use crate::step::{self, OnError, Timings};
use crate::template::{self, PostProcessor, Source};
use crate::ui::Ui;

/// Options of `kiln build` that are not in the template.
#[derive(Debug, Clone)]
pub struct Options {
    pub vars: Vec<(String, String)>,
    pub force: bool,
    pub on_error: OnError,
    pub cache_dir: PathBuf,
    /// This run's id (`packer_run_uuid` in manifests).
    pub run_uuid: String,
}

/// What one build produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// `qemu.NAME`.
    pub name: String,
    pub disk: PathBuf,
    /// What the post-processors wrote, each with a short description.
    pub artifacts: Vec<(&'static str, PathBuf)>,
    pub timings: Timings,
}

/// Why `kiln build` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template did not load.
    #[error("Could not load template `{}`", path.display())]
    LoadTemplate {
        path: PathBuf,
        #[source]
        source: template::Error,
    },
    /// The template has no `build` block.
    #[error("Template `{}` has no build block", path.display())]
    NoBuilds { path: PathBuf },
    /// A build names a source the template does not define.
    #[error("Build references unknown source `{kind}.{name}`")]
    UnknownSource { kind: String, name: String },
    /// The builder failed.
    #[error("Build `{name}` failed")]
    Build {
        name: String,
        #[source]
        source: step::Error<qemu::Error>,
    },
    /// The built disk could not be inspected.
    #[error("Could not inspect the built disk")]
    InspectDisk(#[source] crate::qemu_img::Error),
    /// A post-processor failed.
    #[error("Post-processor `vagrant` of build `{name}` failed")]
    Vagrant {
        name: String,
        #[source]
        source: vagrant::Error,
    },
    /// The blocking box-writing task panicked or was cancelled.
    #[error("Post-processor task of build `{name}` did not finish")]
    Join {
        name: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The checksum post-processor failed.
    #[error("Post-processor `checksum` of build `{name}` failed")]
    Checksum {
        name: String,
        #[source]
        source: checksum::Error,
    },
    /// The manifest post-processor failed.
    #[error("Post-processor `manifest` of build `{name}` failed")]
    Manifest {
        name: String,
        #[source]
        source: manifest::Error,
    },
    /// The input artifact could not be removed (`keep_input_artifact = false`).
    #[error("Could not remove `{}`", path.display())]
    RemoveInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs every build of the template at `path`.
pub async fn run(
    path: &Path,
    opts: &Options,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Vec<Output>, Error> {
    let tpl = template::load(path, &opts.vars).map_err(|source| Error::LoadTemplate {
        path: path.to_owned(),
        source,
    })?;
    if tpl.builds.is_empty() {
        return Err(Error::NoBuilds {
            path: path.to_owned(),
        });
    }
    let mut outputs = Vec::new();
    for build in &tpl.builds {
        for (kind, name) in &build.sources {
            let source = tpl.sources.iter().find(|s| match s {
                Source::Qemu(c) => kind == "qemu" && &c.name == name,
            });
            let Some(Source::Qemu(config)) = source else {
                return Err(Error::UnknownSource {
                    kind: kind.clone(),
                    name: name.clone(),
                });
            };
            let full_name = format!("qemu.{name}");
            let bui = ui.with_prefix(full_name.clone());
            outputs.push(run_one(&full_name, config.clone(), build, opts, &bui, cancel).await?);
        }
    }
    Ok(outputs)
}

async fn run_one(
    full_name: &str,
    config: qemu::config::Config,
    build: &template::Build,
    opts: &Options,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Output, Error> {
    let mut ctx = BuildContext::new(
        config.clone(),
        ui.clone(),
        cancel.clone(),
        opts.force,
        opts.cache_dir.clone(),
        build.provisioners.clone(),
    );
    let mut timings = Timings::default();
    let artifact = qemu::build(&mut ctx, opts.on_error, &mut timings)
        .await
        .map_err(|source| Error::Build {
            name: full_name.to_owned(),
            source,
        })?;
    let info = crate::qemu_img::info(&artifact.disk_path)
        .await
        .map_err(Error::InspectDisk)?;

    let name = || full_name.to_owned();
    let builder_files = vec![artifact.disk_path.clone()];
    let mut artifacts = Vec::new();
    for pp in &build.post_processors {
        let t0 = Instant::now();
        match pp {
            PostProcessor::Vagrant(vcfg) => {
                let out = PathBuf::from(vagrant::render_output_name(vcfg, &config.name));
                ui.say(format!(
                    "Running post-processor: vagrant (writing `{}`)",
                    out.display()
                ));
                let (disk, vcfg, out2) = (artifact.disk_path.clone(), vcfg.clone(), out.clone());
                let kvm = artifact.accel == qemu::accel::ResolvedAccel::Kvm;
                let (format, virtual_size) = (info.format.clone(), info.virtual_size);
                blocking(full_name, move || {
                    let input = vagrant::DiskInput {
                        path: &disk,
                        virtual_size,
                        format: &format,
                        accelerator_is_kvm: kvm,
                    };
                    vagrant::write_box(&vcfg, &input, &out2)
                })
                .await?
                .map_err(|source| Error::Vagrant {
                    name: name(),
                    source,
                })?;
                timings.0.push(("vagrant_box", t0.elapsed()));
                artifacts.push(("Vagrant box", out));
            }
            PostProcessor::Checksum(ccfg) => {
                ui.say("Running post-processor: checksum");
                let (ccfg, files, build_name) =
                    (ccfg.clone(), builder_files.clone(), config.name.clone());
                let outs = blocking(full_name, move || {
                    checksum::write(&ccfg, &files, &build_name, BUILDER_TYPE)
                })
                .await?
                .map_err(|source| Error::Checksum {
                    name: name(),
                    source,
                })?;
                timings.0.push(("checksum", t0.elapsed()));
                artifacts.extend(outs.into_iter().map(|o| ("checksum file", o)));
            }
            PostProcessor::Manifest(mcfg) => {
                ui.say(format!(
                    "Running post-processor: manifest (`{}`)",
                    mcfg.output
                ));
                let input = manifest::Input {
                    build_name: &config.name,
                    builder_type: BUILDER_TYPE,
                    artifact_id: "VM",
                    files: &builder_files,
                    run_uuid: &opts.run_uuid,
                    build_time: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    force: opts.force,
                };
                let out = manifest::write(mcfg, &input).map_err(|source| Error::Manifest {
                    name: name(),
                    source,
                })?;
                artifacts.push(("manifest", out));
            }
        }
    }
    // Packer removes the builder's artifact only when no post-processor keeps it; checksum and
    // manifest always keep it.
    let keep = build.post_processors.iter().any(|pp| match pp {
        PostProcessor::Vagrant(v) => v.keep_input_artifact,
        PostProcessor::Checksum(_) | PostProcessor::Manifest(_) => true,
    });
    if !build.post_processors.is_empty() && !keep {
        tokio::fs::remove_file(&artifact.disk_path)
            .await
            .map_err(|source| Error::RemoveInput {
                path: artifact.disk_path.clone(),
                source,
            })?;
    }
    Ok(Output {
        name: full_name.to_owned(),
        disk: artifact.disk_path,
        artifacts,
        timings,
    })
}

/// Packer's builder type name for this builder, as post-processors report it.
const BUILDER_TYPE: &str = "qemu";

/// Runs blocking post-processor work (hashing, compressing) off the async threads.
async fn blocking<T: Send + 'static>(
    full_name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| Error::Join {
            name: full_name.to_owned(),
            source,
        })
}
