//! `kiln build`: runs every build of a template — the builder's steps, then the
//! post-processors — and reports what it produced.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::builder::qemu::{self, BuildContext};
use crate::postprocessor;
use crate::step::{self, OnError, Timings};
use crate::template::{self, Source};
use crate::ui::Ui;

/// Options of `kiln build` that are not in the template.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-var`, `-var-file`, `PKR_VAR_*`.
    pub inputs: template::Inputs,
    pub force: bool,
    pub on_error: OnError,
    pub cache_dir: PathBuf,
    /// This run's id (`packer_run_uuid` in manifests).
    pub run_uuid: String,
}

/// What one build produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// `TYPE.NAME`.
    pub name: String,
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
        source: step::Error<qemu::Error>,
    },
    /// The null builder failed.
    #[error("Build `{name}` failed")]
    NullBuild {
        name: String,
        #[source]
        source: step::Error<crate::builder::null::Error>,
    },
    /// The built disk could not be inspected.
    #[error("Could not inspect the built disk")]
    InspectDisk(#[source] crate::qemu_img::Error),
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
            let output = match source {
                Source::Qemu(config) => {
                    run_one(&full_name, (**config).clone(), build, opts, &bui, cancel).await?
                }
                Source::Null(config) => {
                    run_null(&full_name, config.clone(), build, opts, &bui, cancel).await?
                }
            };
            outputs.push(output);
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
        build.error_cleanup.clone(),
    );
    ctx.run_uuid = opts.run_uuid.clone();
    let build_info = postprocessor::BuildInfo {
        build_name: config.name.clone(),
        builder_type: BUILDER_TYPE,
        source: full_name.to_owned(),
        qemu_binary: config.qemu_binary.clone(),
        run_uuid: opts.run_uuid.clone(),
        force: opts.force,
    };
    ctx.post_outputs = postprocessor::disk_outputs(&build.post_processors, &build_info);
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
    let builder = postprocessor::Artifact {
        files: vec![artifact.disk_path.clone()],
        id: "VM".into(),
        disk: Some(postprocessor::Disk {
            path: artifact.disk_path.clone(),
            format: info.format.clone(),
            virtual_size: info.virtual_size,
            accelerator_is_kvm: artifact.accel == qemu::accel::ResolvedAccel::Kvm,
        }),
    };
    let outcome = post_process(full_name, build, &builder, &build_info, ui, cancel).await?;
    timings.0.extend(outcome.timings);
    if outcome.removed_builder_disk {
        ui.say(format!(
            "Deleted `{}`: no post-processor keeps it (keep_input_artifact = false)",
            artifact.disk_path.display()
        ));
    }
    Ok(Output {
        name: full_name.to_owned(),
        disk: Some(artifact.disk_path),
        artifacts: outcome.written,
        timings,
    })
}

/// A `null` build: the provisioners against an existing SSH host, then the post-processors on
/// an artifact without files.
async fn run_null(
    full_name: &str,
    config: crate::builder::null::Config,
    build: &template::Build,
    opts: &Options,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Output, Error> {
    let name = config.name.clone();
    let mut ctx = crate::builder::null::NullContext {
        config,
        ui: ui.clone(),
        cancel: cancel.clone(),
        provisioners: build.provisioners.clone(),
        error_cleanup: build.error_cleanup.clone(),
        ssh_target: None,
        comm: None,
        run_uuid: opts.run_uuid.clone(),
    };
    let mut timings = Timings::default();
    crate::builder::null::build(&mut ctx, opts.on_error, &mut timings)
        .await
        .map_err(|source| Error::NullBuild {
            name: full_name.to_owned(),
            source,
        })?;
    let builder = postprocessor::Artifact {
        files: Vec::new(),
        id: "Null".into(),
        disk: None,
    };
    let build_info = postprocessor::BuildInfo {
        build_name: name,
        builder_type: "null",
        source: full_name.to_owned(),
        qemu_binary: String::new(),
        run_uuid: opts.run_uuid.clone(),
        force: opts.force,
    };
    let outcome = post_process(full_name, build, &builder, &build_info, ui, cancel).await?;
    timings.0.extend(outcome.timings);
    Ok(Output {
        name: full_name.to_owned(),
        disk: None,
        artifacts: outcome.written,
        timings,
    })
}

async fn post_process(
    full_name: &str,
    build: &template::Build,
    builder: &postprocessor::Artifact,
    info: &postprocessor::BuildInfo,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<postprocessor::Outcome, Error> {
    postprocessor::run_chains(&build.post_processors, builder, info, ui, cancel)
        .await
        .map_err(|source| Error::PostProcess {
            name: full_name.to_owned(),
            source,
        })
}

/// Packer's builder type name for this builder, as post-processors report it.
const BUILDER_TYPE: &str = "qemu";
