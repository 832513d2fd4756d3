//! `kiln build`: runs the selected builds of a template — core → [`builder::run`] → artifact →
//! post-processors, the same path for every builder — and reports what each produced.
//!
//! The builds run at the same time (`-parallel-builds=N` of them at once, 0 = all, as in
//! Packer), each as its own task with its own UI prefix; a failed build does not stop the
//! others. Ctrl-C cancels them all, and every build's cleanups still run. Before anything
//! starts, a template whose selected builds use a type kiln does not have is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::builder::{self, Core};
use crate::postprocessor;
use crate::step::{OnError, Timings};
use crate::template;
use crate::ui::Ui;

/// Options of `kiln build` that are not in the template.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-var`, `-var-file`, `PKR_VAR_*`, `-only`, `-except`.
    pub inputs: template::Inputs,
    pub force: bool,
    pub on_error: OnError,
    /// `-debug`: pause after each step (builds then run one at a time, as in Packer).
    pub debug: bool,
    /// `-parallel-builds`: how many builds run at once; 0 = no limit.
    pub parallel_builds: usize,
    pub cache_dir: PathBuf,
    /// `-install-cache`: use the install cache in every qemu build.
    pub install_cache: bool,
    /// This run's id (`packer_run_uuid` in manifests).
    pub run_uuid: String,
}

/// What one successful build produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// `[BUILD.]TYPE.NAME`.
    pub name: String,
    /// Packer's id of the builder that ran (`transcend.qemu`).
    pub builder_id: &'static str,
    /// The built disk (none for a `null` build).
    pub disk: Option<PathBuf>,
    /// What the post-processors wrote, each with a short description.
    pub artifacts: Vec<(&'static str, PathBuf)>,
    pub timings: Timings,
}

/// How every selected build ended, in template order.
#[derive(Debug, Default)]
pub struct Summary {
    pub succeeded: Vec<Output>,
    /// `[BUILD.]TYPE.NAME` of each failed build, with why.
    pub failed: Vec<(String, Error)>,
}

/// Why `kiln build` (or one of its builds) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template did not load.
    #[error("Could not load template `{}`", path.display())]
    LoadTemplate {
        path: PathBuf,
        #[source]
        source: template::Error,
    },
    /// A selected build would run a type kiln does not have.
    #[error("Template `{}` selects builds kiln cannot run", path.display())]
    Unrunnable {
        path: PathBuf,
        #[source]
        source: template::Error,
    },
    /// The template has no `build` block, or `-only` / `-except` left no build to run.
    #[error("Template `{}` has no build to run", path.display())]
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
    /// The task running the build panicked.
    #[error("Build `{name}` stopped unexpectedly")]
    Task {
        name: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Loads the template at `path` and runs its selected builds; `Err` only when none could start.
pub async fn run(
    path: &Path,
    opts: &Options,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Summary, Error> {
    let tpl = template::load(path, &opts.inputs).map_err(|source| Error::LoadTemplate {
        path: path.to_owned(),
        source,
    })?;
    crate::ui::add_secrets(&tpl.secrets);
    for w in &tpl.warnings {
        ui.warn(w.render(None));
    }
    if !tpl.unrunnable.is_empty() {
        return Err(Error::Unrunnable {
            path: path.to_owned(),
            source: template::Error::Unrunnable(tpl.unrunnable.clone()),
        });
    }
    let runs: Vec<template::Run> = tpl.builds.into_iter().flat_map(|b| b.runs).collect();
    if runs.is_empty() {
        return Err(Error::NoBuilds {
            path: path.to_owned(),
        });
    }
    let settings = builder::Settings {
        force: opts.force,
        on_error: opts.on_error,
        debug: opts.debug,
        cache_dir: opts.cache_dir.clone(),
        install_cache: opts.install_cache,
    };
    let limit = match (opts.debug, opts.parallel_builds) {
        (true, _) => 1,
        (false, 0) => runs.len(),
        (false, n) => n,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = tokio::task::JoinSet::new();
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let mut ids = std::collections::HashMap::new();
    for (i, run) in runs.into_iter().enumerate() {
        let bui = ui.with_prefix(run.name.clone()).with_color(i);
        let slots = slots.clone();
        let settings = settings.clone();
        let cancel = cancel.clone();
        let run_uuid = opts.run_uuid.clone();
        let force = opts.force;
        let task = tasks.spawn(async move {
            // The semaphore is never closed: it lives as long as the tasks.
            let _slot = slots.acquire_owned().await;
            one(run, bui, settings, cancel, run_uuid, force).await
        });
        ids.insert(task.id(), i);
    }
    let mut results: Vec<Option<Result<Output, Error>>> = names.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, r)) => (id, r),
            Err(e) => {
                let id = e.id();
                let name = ids.get(&id).map_or_else(String::new, |i| names[*i].clone());
                (id, Err(Error::Task { name, source: e }))
            }
        };
        if let Some(i) = ids.get(&id) {
            results[*i] = Some(result);
        }
    }
    let mut summary = Summary::default();
    for (name, result) in names.into_iter().zip(results) {
        match result {
            Some(Ok(o)) => summary.succeeded.push(o),
            Some(Err(e)) => summary.failed.push((name, e)),
            None => {} // every task is joined above
        }
    }
    Ok(summary)
}

/// One build: its builder, then its post-processor chains.
async fn one(
    run: template::Run,
    bui: Ui,
    settings: builder::Settings,
    cancel: CancellationToken,
    run_uuid: String,
    force: bool,
) -> Result<Output, Error> {
    let (kind, name) = run.source.key();
    let full_name = format!("{kind}.{name}");
    let name = name.to_owned();
    let mut core = Core::new(
        &run.source,
        bui.clone(),
        cancel.clone(),
        run.provisioners,
        run.error_cleanup,
        run_uuid.clone(),
    );
    let info = postprocessor::BuildInfo {
        build_name: name,
        source: full_name,
        run_uuid,
        force,
    };
    if let Some(arch) = run.source.architecture() {
        core.post_outputs = postprocessor::disk_outputs(&run.post_processors, &info, kind, arch);
    }
    let mut timings = Timings::default();
    let artifact = builder::run(run.source, core, &settings, &mut timings)
        .await
        .map_err(|source| Error::Build {
            name: run.name.clone(),
            source,
        })?;
    let outcome = postprocessor::run_chains(&run.post_processors, &artifact, &info, &bui, &cancel)
        .await
        .map_err(|source| Error::PostProcess {
            name: run.name.clone(),
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
    Ok(Output {
        name: run.name,
        builder_id: artifact.builder_id,
        disk: artifact.disk.map(|d| d.path),
        artifacts: outcome.written,
        timings,
    })
}
