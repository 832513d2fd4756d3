//! `kiln build`: runs every build of a template — core → [`builder::run`] → artifact →
//! post-processors, the same path for every builder — and reports what it produced.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::builder::{self, Core};
use crate::postprocessor;
use crate::step::{OnError, Timings};
use crate::template;
use crate::ui::Ui;

/// Options of `kiln build` that are not in the template.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-var`, `-var-file`, `PKR_VAR_*`.
    pub inputs: template::Inputs,
    pub force: bool,
    pub on_error: OnError,
    pub cache_dir: PathBuf,
    /// `-install-cache`: use the install cache in every qemu build.
    pub install_cache: bool,
    /// This run's id (`packer_run_uuid` in manifests).
    pub run_uuid: String,
}

/// What one build produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// `TYPE.NAME`.
    pub name: String,
    /// Packer's id of the builder that ran (`transcend.qemu`).
    pub builder_id: &'static str,
    /// The built disk (none for a `null` build).
    pub disk: Option<PathBuf>,
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
    /// The builder failed.
    #[error("Build `{name}` failed")]
    Build {
        name: String,
        #[source]
        source: builder::Error,
    },
    /// A post-processor failed.
    #[error("Post-processing of build `{name}` failed")]
    PostProcess {
        name: String,
        #[source]
        source: postprocessor::Failed,
    },
}

/// Runs every build of the template at `path`.
pub async fn run(
    path: &Path,
    opts: &Options,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Vec<Output>, Error> {
    let tpl = template::load(path, &opts.inputs).map_err(|source| Error::LoadTemplate {
        path: path.to_owned(),
        source,
    })?;
    crate::ui::add_secrets(&tpl.secrets);
    for w in &tpl.warnings {
        ui.warn(w.render(None));
    }
    if tpl.builds.is_empty() {
        return Err(Error::NoBuilds {
            path: path.to_owned(),
        });
    }
    let settings = builder::Settings {
        force: opts.force,
        on_error: opts.on_error,
        cache_dir: opts.cache_dir.clone(),
        install_cache: opts.install_cache,
    };
    let mut outputs = Vec::new();
    for build in &tpl.builds {
        for source in &build.sources {
            let (kind, name) = source.key();
            let full_name = format!("{kind}.{name}");
            // Packer shows `BUILD.TYPE.NAME` when the build is named.
            let shown = match &build.name {
                Some(b) => format!("{b}.{full_name}"),
                None => full_name.clone(),
            };
            let bui = ui.with_prefix(shown);
            let mut core = Core::new(
                source,
                bui.clone(),
                cancel.clone(),
                build.provisioners.clone(),
                build.error_cleanup.clone(),
                opts.run_uuid.clone(),
            );
            let info = postprocessor::BuildInfo {
                build_name: name.to_owned(),
                source: full_name.clone(),
                run_uuid: opts.run_uuid.clone(),
                force: opts.force,
            };
            if let Some(arch) = source.architecture() {
                core.post_outputs =
                    postprocessor::disk_outputs(&build.post_processors, &info, kind, arch);
            }
            let mut timings = Timings::default();
            let artifact = builder::run(source.clone(), core, &settings, &mut timings)
                .await
                .map_err(|source| Error::Build {
                    name: full_name.clone(),
                    source,
                })?;
            let outcome =
                postprocessor::run_chains(&build.post_processors, &artifact, &info, &bui, cancel)
                    .await
                    .map_err(|source| Error::PostProcess {
                        name: full_name.clone(),
                        source,
                    })?;
            timings.0.extend(outcome.timings);
            if outcome.removed_builder_disk {
                for f in &artifact.files {
                    bui.say(format!(
                        "Deleted `{}`: no post-processor keeps it (keep_input_artifact = false)",
                        f.display()
                    ));
                }
            }
            outputs.push(Output {
                name: full_name,
                builder_id: artifact.builder_id,
                disk: artifact.disk.map(|d| d.path),
                artifacts: outcome.written,
                timings,
            });
        }
    }
    Ok(outputs)
}
