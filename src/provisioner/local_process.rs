//! A command run on the build machine for a provisioner (`shell-local`, `ansible`): its output
//! shown line by line, in its own process group, which is killed when the build is cancelled
//! or the provisioner's future is dropped (its `timeout`), so nothing it started outlives it.

use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

use crate::ui::Ui;

/// Why the command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not be started.
    #[error("Cannot run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("Lost track of `{program}` while it ran")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The build was cancelled while it ran (its process group was killed).
    #[error("Cancelled while `{program}` ran")]
    Cancelled { program: String },
}

/// Kills the process group `pgid` when dropped, unless [`disarm`](Self::disarm)ed once its
/// leader has been reaped (its id may then be reused).
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // The group may already be empty.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `command` (stdin from /dev/null) with its stdout and stderr lines shown through `ui`;
/// returns its exit code, or `None` when a signal killed it.
pub async fn run(
    command: &mut tokio::process::Command,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Option<i32>, Error> {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    tracing::debug!(?command, "running a local command");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that cancelling kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
    );
    let out = show_lines(child.stdout.take(), ui);
    let err = show_lines(child.stderr.take(), ui);
    let wait = async {
        let (_, _, status) = tokio::join!(out, err, child.wait());
        status
    };
    let status = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(Error::Cancelled { program }),
        status = wait => status,
    };
    guard.disarm();
    let status = status.map_err(|source| Error::Wait { program, source })?;
    Ok(status.code())
}

/// Shows each line of `stream` through `ui` until it ends.
async fn show_lines<R: AsyncRead + Unpin>(stream: Option<R>, ui: &Ui) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        ui.message(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn output_is_shown_and_the_code_returned() {
        let (ui, lines) = Ui::memory();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let code = run(&mut cmd, &ui, &CancellationToken::new()).await.unwrap();
        assert_eq!(code, Some(3));
        let lines = lines.lock().unwrap().join("\n");
        assert!(lines.contains("out") && lines.contains("err"), "{lines}");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let (ui, _) = Ui::memory();
        let mut cmd = tokio::process::Command::new("/nonexistent/kiln-test-program");
        let err = run(&mut cmd, &ui, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    }

    /// Dropping the future (a provisioner `timeout`) kills the whole group: here a background
    /// child that would otherwise outlive its parent.
    #[tokio::test]
    async fn dropping_the_run_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let (ui, _) = Ui::memory();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(format!(
            "sleep 600 & echo $! > {}; wait",
            pid_file.display()
        ));
        let cancel = CancellationToken::new();
        let run = run(&mut cmd, &ui, &cancel);
        assert!(
            tokio::time::timeout(Duration::from_secs(2), run)
                .await
                .is_err()
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = crate::wait::until_ok(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Gone, or a zombie waiting for its (killed) parent's reaper.
                if stat.is_empty()
                    || stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|s| s.trim_start().starts_with('Z'))
                {
                    crate::wait::Attempt::Done(())
                } else {
                    crate::wait::Attempt::Retry(std::io::Error::other("still running"))
                }
            },
        )
        .await;
        assert!(gone.is_ok(), "the background sleep {pid} survived");
    }
}
