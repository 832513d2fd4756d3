//! The `kiln` binary: parse the command line, run, print the error chain, pick the exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use kiln::cli::{CacheAction, Cli, Command};
use kiln::ui::Ui;

fn main() -> ExitCode {
    let args = match kiln::cli::normalize(std::env::args()) {
        Ok(args) => args,
        Err(e) => {
            Ui::terminal().raw(true, format!("error: {e}"));
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr itself.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    let ui = match &cli.command {
        Command::Build(args) if args.machine_readable => Ui::machine_readable(),
        _ => Ui::terminal(),
    };
    if let Command::Build(args) = &cli.command {
        let color = args.output.color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        kiln::ui::configure(args.output.timestamp_ui, color);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui.raw(
                true,
                format!("error: Could not start the async runtime\n  caused by: {e}"),
            );
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli, &ui));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ui.machine("error-count", &["1"]);
            print_error(&ui, e.as_ref());
            // `fmt -check` exits 3 when files need formatting, as Packer.
            let fmt_code = e.downcast_ref::<kiln::fmt::Error>().map(|e| e.exit_code());
            ExitCode::from(fmt_code.unwrap_or(1))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| kiln::ui::MaskedStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(cli: Cli, ui: &Ui) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match cli.command {
        Command::Version => {
            ui.raw(false, format!("kiln {}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        Command::Cache { action } => run_cache(action, ui).await,
        Command::Validate(args) => {
            let mut inputs = args.vars.inputs();
            // As Packer: data sources that reach out are read only when asked.
            if !args.evaluate_datasources {
                inputs.data_sources = kiln::template::DataSources::Unknown;
            }
            if args.syntax_only {
                kiln::template::check_syntax(&args.template, &inputs)?;
                ui.raw(false, "Syntax-only check passed. Everything looks okay.");
                return Ok(());
            }
            let template = kiln::template::load(&args.template, &inputs)?;
            kiln::ui::add_secrets(&template.secrets);
            // What a selected build would run that kiln does not have is only a warning
            // here: `kiln build` refuses it.
            for w in template.warnings.iter().chain(&template.unrunnable) {
                let text = std::fs::read_to_string(&w.location.file).ok();
                ui.raw(true, format!("warning: {}", w.render(text.as_deref())));
            }
            // Each plugin checks its own configuration, as Packer's plugins do when prepared.
            let run_id = kiln::postprocessor::manifest::new_run_uuid();
            let problems =
                kiln::build::check_plugins(&template, &run_id, ui, &CancellationToken::new()).await;
            if !problems.is_empty() {
                return Err(kiln::template::Error::Invalid(problems).into());
            }
            ui.raw(false, "The configuration is valid.");
            Ok(())
        }
        Command::Inspect(args) => {
            let mut inputs = args.vars.inputs();
            inputs.data_sources = kiln::template::DataSources::Unknown;
            let template = kiln::template::load(&args.template, &inputs)?;
            // Values are masked by `inspect` itself: masking the whole text would also hide
            // a block type that happens to equal a secret.
            let text = if args.machine_readable {
                kiln::template::inspect::machine_readable(&template, unix_now())
            } else {
                kiln::template::inspect::human(&template)
            };
            ui.raw(false, text.trim_end());
            Ok(())
        }
        Command::Fmt(args) => Ok(kiln::fmt::run(&args.paths, &args.options(), ui)?),
        Command::Hcl2Upgrade(args) => {
            let output = args
                .output_file
                .unwrap_or_else(|| kiln::upgrade::default_output(&args.template));
            kiln::upgrade::run(&args.template, &output)?;
            ui.raw(false, format!("Successfully created {}", output.display()));
            Ok(())
        }
        Command::Build(args) => {
            let cancel = CancellationToken::new();
            spawn_signal_handler(cancel.clone(), ui.clone());
            let opts = kiln::build::Options {
                inputs: args.vars.inputs(),
                force: args.force,
                on_error: args.on_error.into(),
                debug: args.debug,
                parallel_builds: args.parallel_builds,
                cache_dir: kiln::download::default_cache_dir(),
                install_cache: args.install_cache,
                run_uuid: kiln::postprocessor::manifest::new_run_uuid(),
            };
            let started = std::time::Instant::now();
            let summary = kiln::build::run(&args.template, &opts, ui, &cancel).await?;
            report(&summary, started.elapsed(), ui);
            if cancel.is_cancelled() {
                ui.raw(true, "Cleanly cancelled builds after being interrupted.");
            }
            match summary.failed.len() {
                0 => Ok(()),
                n => Err(BuildsFailed(n).into()),
            }
        }
    }
}

/// Some builds failed (each was reported in the summary).
#[derive(Debug, thiserror::Error)]
#[error("{0} build{s} failed", s = if *.0 == 1 { "" } else { "s" })]
struct BuildsFailed(usize);

/// Packer's end of a build: the failed builds with their errors, then the artifacts of the
/// successful ones.
fn report(summary: &kiln::build::Summary, elapsed: std::time::Duration, ui: &Ui) {
    if !summary.failed.is_empty() {
        ui.raw(
            true,
            "\n==> Some builds didn't complete successfully and had errors:",
        );
        for (name, e) in &summary.failed {
            ui.raw(true, format!("--> {name}: {}", error_text(e)));
            ui.with_prefix(name.clone())
                .machine("error", &[&error_text(e)]);
        }
    }
    ui.raw(
        false,
        format!(
            "\n==> Builds finished in {:.1}s. The artifacts of successful builds are:",
            elapsed.as_secs_f64()
        ),
    );
    for (i, o) in summary.succeeded.iter().enumerate() {
        let bui = ui.with_prefix(o.name.clone());
        let mut files: Vec<String> = Vec::new();
        if let Some(disk) = o.disk.as_ref().filter(|d| d.exists()) {
            ui.raw(false, format!("--> {}: disk `{}`", o.name, disk.display()));
            files.push(disk.display().to_string());
        }
        for (kind, path) in &o.artifacts {
            ui.raw(
                false,
                format!("--> {}: {kind} `{}`", o.name, path.display()),
            );
            files.push(path.display().to_string());
        }
        ui.raw(false, format!("    {}: phases: {}", o.name, o.timings));
        let i = i.to_string();
        bui.machine("artifact-count", &["1"]);
        bui.machine("artifact", &[&i, "builder-id", o.builder_id]);
        bui.machine("artifact", &[&i, "id", &o.name]);
        bui.machine("artifact", &[&i, "files-count", &files.len().to_string()]);
        for (j, f) in files.iter().enumerate() {
            bui.machine("artifact", &[&i, "file", &j.to_string(), f]);
        }
        bui.machine("artifact", &[&i, "end"]);
    }
}

/// Seconds since the Unix epoch, for machine-readable lines.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `kiln cache list|clean|verify|fetch`.
async fn run_cache(
    action: CacheAction,
    ui: &Ui,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use kiln::download::{self, cache};
    let dir = download::default_cache_dir();
    match action {
        CacheAction::List => {
            let entries = cache::list(&dir)?;
            let layers = kiln::install_cache::list(&dir)?;
            if entries.is_empty() && layers.is_empty() {
                ui.raw(false, format!("The cache `{}` is empty.", dir.display()));
            }
            for e in entries {
                let kind = match &e.kind {
                    cache::EntryKind::Verified { algo, .. } => format!("verified {algo}"),
                    cache::EntryKind::Unverified => "no checksum".to_owned(),
                    cache::EntryKind::Partial => "partial".to_owned(),
                    cache::EntryKind::ChecksumFile => "checksum file".to_owned(),
                };
                ui.raw(
                    false,
                    format!("{:>14}  {kind:<15}  {}", e.size, e.path.display()),
                );
            }
            for l in layers {
                let kind = match &l.meta {
                    Some(m) => format!("install layer of {}", m.source),
                    None => "install layer being written".to_owned(),
                };
                ui.raw(
                    false,
                    format!("{:>14}  {kind:<15}  {}", l.size, l.dir.display()),
                );
            }
        }
        CacheAction::Clean => {
            let done = cache::clean(&dir)?;
            let layers = kiln::install_cache::clean(&dir)?;
            for p in done.busy.iter().chain(&layers.busy) {
                ui.raw(
                    true,
                    format!("skipped `{}`: in use by a build", p.display()),
                );
            }
            ui.raw(
                false,
                format!(
                    "Removed {} files ({} bytes) from `{}`.",
                    done.removed.len(),
                    done.bytes,
                    dir.display()
                ),
            );
            ui.raw(
                false,
                format!(
                    "Removed {} install layers ({} bytes).",
                    layers.removed.len(),
                    layers.bytes
                ),
            );
        }
        CacheAction::Verify => {
            let results = download::verify_cache(&dir).await?;
            let bad = results.iter().filter(|(_, good)| !good).count();
            for (e, good) in &results {
                let state = if *good { "ok" } else { "MISMATCH, removed" };
                ui.raw(false, format!("{state}  {}", e.path.display()));
            }
            if bad > 0 {
                return Err(format!("{bad} cached files did not match their checksum").into());
            }
        }
        CacheAction::Fetch {
            checksum,
            extension,
            urls,
        } => {
            let checksum = kiln::types::parse_checksum(&checksum)?;
            let cancel = CancellationToken::new();
            spawn_signal_handler(cancel.clone(), ui.clone());
            let fetched = download::fetch(&download::Request {
                urls: &urls,
                checksum: &checksum,
                target: download::Target::Cache {
                    dir,
                    ext: extension.to_ascii_lowercase(),
                },
                retry: download::Retry::default(),
                ui,
                cancel: &cancel,
            })
            .await?;
            ui.raw(false, fetched.path.display().to_string());
        }
    }
    Ok(())
}

/// First SIGINT/SIGTERM cancels the build (its cleanups still run); a second one is left to
/// the default handler only after cleanup, so QEMU is never orphaned.
fn spawn_signal_handler(cancel: CancellationToken, ui: Ui) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "could not install the SIGTERM handler");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        ui.raw(true, "==> Cancelling build after receiving interrupt");
        cancel.cancel();
    });
}

/// Prints `error: …`, the chain of causes, the template diagnostics and a hint.
fn print_error(ui: &Ui, err: &(dyn std::error::Error + 'static)) {
    if err.downcast_ref::<BuildsFailed>().is_some() {
        // Each failed build was shown with its causes in the summary.
        ui.raw(true, format!("error: {err}"));
        return;
    }
    ui.raw(true, format!("error: {}", error_text(err)));
}

/// An error, the chain of its causes, the template diagnostics in it and a hint.
fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    let mut hint = kiln::hint::for_error(err);
    while let Some(s) = source {
        out.push_str(&format!("\n  caused by: {s}"));
        hint = hint.or_else(|| kiln::hint::for_error(s));
        source = s.source();
    }
    if let Some(diags) = kiln::hint::diagnostics(err) {
        out.push('\n');
        out.push_str(&diags);
    }
    if let Some(h) = hint {
        out.push_str(&format!("\n\nhint: {h}"));
    }
    out
}
