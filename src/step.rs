//! The step runner: a build is a literal list of steps run in order.
//!
//! Each step's cleanup runs in reverse order once the build ends, for every step that started —
//! including the one that failed or was interrupted — so whatever a step acquired (a process,
//! a port, a temp file) it releases. With [`OnError::Abort`] a failed build skips the cleanups
//! and leaves everything as it was, for debugging (Packer's `-on-error=abort`).
//!
//! Cancellation (Ctrl-C) drops the running step's future at its next await point, then the
//! cleanups run as for a failure.
//!
//! Debugging a build, as Packer's runner does: with `-debug` ([`Mode::debug`]) the runner
//! pauses after each step and before each cleanup until Enter is pressed; with
//! `-on-error=ask` a failed step offers clean up, abort or retry. Prompts go through the UI
//! ([`Ui::ask`]); without a terminal on stdin they say so and the build goes on as with
//! `cleanup`.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::ui::Ui;

/// How a build ended, as seen by cleanups (e.g. the output directory is removed unless the
/// build succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
}

/// What to do when a step fails (`-on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Run every cleanup (default).
    #[default]
    Cleanup,
    /// Skip all cleanups: keep the VM running and the output for debugging.
    Abort,
    /// Ask: clean up, abort, or retry the failed step.
    Ask,
    /// As `Abort`, but the `error-cleanup-provisioner` still runs.
    RunCleanupProvisioner,
}

/// How the runner runs a build's steps: `-on-error`, `-debug`, and the UI its prompts use.
#[derive(Clone, Default)]
pub struct Mode {
    pub on_error: OnError,
    /// `-debug`: pause after each step and before each cleanup.
    pub debug: bool,
    /// Where pauses and questions are shown (the build's prefixed UI); a plain terminal UI
    /// when unset.
    pub ui: Option<Ui>,
}

impl From<OnError> for Mode {
    fn from(on_error: OnError) -> Self {
        Self {
            on_error,
            ..Self::default()
        }
    }
}

/// What `-on-error=ask` was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Cleanup,
    Abort,
    Retry,
}

/// Asks what to do about the failed step `name` (Packer's question); no terminal or an
/// empty answer means clean up.
async fn ask_on_error(ui: &Ui, name: &str, error: &str, cancel: &CancellationToken) -> Answer {
    ui.error(format!("Step `{name}` failed: {error}"));
    let question = "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step \
                    (build may fail even if retry succeeds)?";
    loop {
        let line = tokio::select! {
            () = cancel.cancelled() => return Answer::Cleanup,
            line = ui.ask(question) => line,
        };
        let Some(line) = line else {
            ui.say("stdin is not a terminal: `-on-error=ask` cleans up");
            return Answer::Cleanup;
        };
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "c" => return Answer::Cleanup,
            "a" => return Answer::Abort,
            "r" => return Answer::Retry,
            other => ui.say(format!("`{other}` is not one of c, a or r")),
        }
    }
}

/// Waits for Enter after `what` (`-debug`); returns at once without a terminal (said once per
/// build) or on cancellation.
async fn pause(ui: &Ui, what: &str, said_no_tty: &mut bool, cancel: &CancellationToken) {
    if *said_no_tty {
        return;
    }
    let question = format!("Pausing {what}. Press enter to continue.");
    let answered = tokio::select! {
        () = cancel.cancelled() => return,
        line = ui.ask(&question) => line,
    };
    if answered.is_none() {
        ui.say("stdin is not a terminal: `-debug` does not pause");
        *said_no_tty = true;
    }
}

/// One step of a build over a context `C`, failing with `E`.
#[async_trait]
pub trait Step<C: Send, E>: Send {
    /// A short name for messages and timings (e.g. `create_disk`).
    fn name(&self) -> &'static str;

    /// Does the step's work, recording what it acquired so `cleanup` can release it.
    async fn run(&mut self, ctx: &mut C) -> Result<(), E>;

    /// Releases what `run` acquired. Runs even when `run` failed or was cancelled half-way.
    async fn cleanup(&mut self, _ctx: &mut C, _outcome: Outcome) {}
}

/// Why a run of steps stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// A step returned an error.
    #[error("Step `{step}` failed")]
    Failed {
        step: &'static str,
        #[source]
        source: E,
    },
    /// The build was interrupted (Ctrl-C or SIGTERM) while `step` ran.
    #[error("Build cancelled during step `{step}`")]
    Cancelled { step: &'static str },
}

impl<E: std::error::Error + 'static> Error<E> {
    /// The step that failed or was interrupted.
    pub fn step(&self) -> &'static str {
        match self {
            Error::Failed { step, .. } | Error::Cancelled { step } => step,
        }
    }
}

/// How long each step (and post-processor) took, in run order.
#[derive(Debug, Default, Clone)]
pub struct Timings(pub Vec<(String, Duration)>);

impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, d)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {:.1}s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

/// Runs `steps` in order over `ctx`, stopping at the first failure or at cancellation, then runs
/// the cleanups of every step that started, in reverse (unless `-on-error` says to keep
/// everything, see [`OnError`]). `mode` is an [`OnError`] or a whole [`Mode`].
pub async fn run<C, E>(
    steps: &mut [Box<dyn Step<C, E>>],
    ctx: &mut C,
    cancel: &CancellationToken,
    mode: impl Into<Mode>,
    timings: &mut Timings,
) -> Result<(), Error<E>>
where
    C: Send,
    E: std::error::Error + Send + 'static,
{
    let mode = mode.into();
    let ui = mode.ui.clone().unwrap_or_default();
    let mut said_no_tty = false;
    let mut started = 0;
    let mut result = Ok(());
    let mut keep = false;
    for step in steps.iter_mut() {
        let name = step.name();
        if cancel.is_cancelled() {
            result = Err(Error::Cancelled { step: name });
            break;
        }
        started += 1;
        let t0 = Instant::now();
        let r = loop {
            tracing::debug!(step = name, "running step");
            let r = tokio::select! {
                // Prefer cancellation when both are ready, so Ctrl-C is never ignored.
                biased;
                _ = cancel.cancelled() => Err(Error::Cancelled { step: name }),
                r = step.run(ctx) => r.map_err(|source| Error::Failed { step: name, source }),
            };
            match &r {
                Err(Error::Failed { source, .. }) if mode.on_error == OnError::Ask => {
                    match ask_on_error(&ui, name, &source.to_string(), cancel).await {
                        Answer::Retry => continue,
                        Answer::Abort => keep = true,
                        Answer::Cleanup => {}
                    }
                }
                _ => {}
            }
            break r;
        };
        timings.0.push((name.to_owned(), t0.elapsed()));
        if let Err(e) = r {
            result = Err(e);
            break;
        }
        if mode.debug {
            pause(
                &ui,
                &format!("after run of step `{name}`"),
                &mut said_no_tty,
                cancel,
            )
            .await;
        }
    }
    let outcome = match &result {
        Ok(()) => Outcome::Succeeded,
        Err(Error::Failed { .. }) => Outcome::Failed,
        Err(Error::Cancelled { .. }) => Outcome::Cancelled,
    };
    keep |= matches!(
        mode.on_error,
        OnError::Abort | OnError::RunCleanupProvisioner
    );
    if outcome != Outcome::Succeeded && keep {
        ui.say("Skipping cleanup: the VM and the output are left in place for debugging");
        return result;
    }
    for step in steps[..started].iter_mut().rev() {
        if mode.debug {
            let what = format!("before cleanup of step `{}`", step.name());
            pause(&ui, &what, &mut said_no_tty, cancel).await;
        }
        tracing::debug!(step = step.name(), "cleaning up step");
        step.cleanup(ctx, outcome).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    /// Records runs and cleanups into the context; fails or hangs on demand.
    struct Rec {
        name: &'static str,
        fail: bool,
        hang: bool,
    }

    #[async_trait]
    impl Step<Vec<String>, Boom> for Rec {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn run(&mut self, ctx: &mut Vec<String>) -> Result<(), Boom> {
            ctx.push(format!("run {}", self.name));
            if self.hang {
                std::future::pending::<()>().await;
            }
            if self.fail { Err(Boom) } else { Ok(()) }
        }
        async fn cleanup(&mut self, ctx: &mut Vec<String>, outcome: Outcome) {
            ctx.push(format!("cleanup {} {outcome:?}", self.name));
        }
    }

    fn steps(spec: &[(&'static str, bool, bool)]) -> Vec<Box<dyn Step<Vec<String>, Boom>>> {
        spec.iter()
            .map(|&(name, fail, hang)| Box::new(Rec { name, fail, hang }) as Box<_>)
            .collect()
    }

    #[tokio::test]
    async fn cleanups_run_in_reverse_including_the_failed_step() {
        let mut s = steps(&[("a", false, false), ("b", true, false), ("c", false, false)]);
        let mut log = Vec::new();
        let r = run(
            &mut s,
            &mut log,
            &CancellationToken::new(),
            OnError::Cleanup,
            &mut Timings::default(),
        )
        .await;
        assert!(matches!(r, Err(Error::Failed { step: "b", .. })));
        assert_eq!(
            log,
            ["run a", "run b", "cleanup b Failed", "cleanup a Failed"]
        );
    }

    #[tokio::test]
    async fn success_runs_all_cleanups() {
        let mut s = steps(&[("a", false, false), ("b", false, false)]);
        let mut log = Vec::new();
        let mut t = Timings::default();
        run(
            &mut s,
            &mut log,
            &CancellationToken::new(),
            OnError::Cleanup,
            &mut t,
        )
        .await
        .unwrap();
        assert_eq!(
            log,
            [
                "run a",
                "run b",
                "cleanup b Succeeded",
                "cleanup a Succeeded"
            ]
        );
        assert_eq!(t.0.len(), 2);
    }

    #[tokio::test]
    async fn abort_skips_cleanups() {
        let mut s = steps(&[("a", false, false), ("b", true, false)]);
        let mut log = Vec::new();
        let r = run(
            &mut s,
            &mut log,
            &CancellationToken::new(),
            OnError::Abort,
            &mut Timings::default(),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(log, ["run a", "run b"]);
    }

    #[tokio::test]
    async fn cancel_interrupts_a_hanging_step_and_cleans_up() {
        let mut s = steps(&[
            ("a", false, false),
            ("wait", false, true),
            ("never", false, false),
        ]);
        let mut log = Vec::new();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let r = run(
            &mut s,
            &mut log,
            &cancel,
            OnError::Cleanup,
            &mut Timings::default(),
        )
        .await;
        assert!(matches!(r, Err(Error::Cancelled { step: "wait" })));
        assert_eq!(
            log,
            [
                "run a",
                "run wait",
                "cleanup wait Cancelled",
                "cleanup a Cancelled"
            ]
        );
    }
}
