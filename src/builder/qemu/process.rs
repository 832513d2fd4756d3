//! QEMU as a child process that never outlives kiln.
//!
//! Three layers make sure a VM is not left running:
//! - [`QemuProcess`] is a guard: dropping it SIGKILLs QEMU (and the `Child` has `kill_on_drop`
//!   for when the runtime itself goes away);
//! - QEMU is started through util-linux `setpriv --pdeathsig KILL`, so the kernel kills it
//!   when kiln dies, even by SIGKILL (kiln forbids `unsafe`, so no `pre_exec`/`prctl` here).
//!   The kernel sends that signal when the *thread* that forked exits, not the process: spawn
//!   from a tokio worker thread or the thread running `block_on` (both live as long as the
//!   runtime), never from a `spawn_blocking` thread, which exits after being idle;
//! - one task owns the `Child` and publishes its exit status on a `watch` channel, so
//!   [`QemuProcess::died`] can be raced against other waits (SSH, boot typing) with `&self`.
//!
//! QEMU's stderr is copied line by line to a log file while the last lines are kept for error
//! messages; its stdout goes straight to the same file.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr};
use tokio::sync::{mpsc, watch};

/// The hint shown when the default QEMU binary is missing.
pub const QEMU_INSTALL_HINT: &str =
    "install the Debian package qemu-system-x86 (apt-get install -y qemu-system-x86)";

/// How many stderr lines are kept for messages.
const TAIL_LINES: usize = 200;
/// How many stderr lines [`QemuProcess::died`] reports.
const DIED_LINES: usize = 10;
/// How long to wait for stderr to be drained once the process has exited.
const STDERR_DRAIN: Duration = Duration::from_secs(2);
/// How long a SIGKILLed process may take to be reaped.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// Why starting or stopping QEMU failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binary is not installed (not in `PATH`, or the given path does not exist).
    #[error("Cannot find `{binary}` (hint: {hint})")]
    NotFound { binary: String, hint: String },
    /// The log file for QEMU's output could not be opened.
    #[error("Cannot open log file {}", path.display())]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The process could not be started.
    #[error("Cannot start `{binary}`")]
    Spawn {
        binary: String,
        #[source]
        source: io::Error,
    },
    /// Waiting for the process failed.
    #[error("Cannot wait for the QEMU process")]
    Wait {
        #[source]
        source: Arc<io::Error>,
    },
    /// The task that owns the process is gone (the runtime is shutting down).
    #[error("The QEMU process watcher stopped")]
    WatcherGone,
    /// The process was still there long after SIGKILL.
    #[error("Process {pid:?} still running {waited:?} after SIGKILL")]
    Kill { pid: Option<u32>, waited: Duration },
}

/// What the watcher task saw when the process ended.
type Exit = Result<ExitStatus, Arc<io::Error>>;

/// The last lines of stderr, shared between the copying task and the guard.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running QEMU (or any child started the same way). Dropping it kills the process.
#[derive(Debug)]
pub struct QemuProcess {
    pid: Option<u32>,
    status: watch::Receiver<Option<Exit>>,
    stderr_done: watch::Receiver<bool>,
    tail: Tail,
    kill_tx: mpsc::Sender<()>,
}

impl QemuProcess {
    /// Starts `binary args…` (through `setpriv --pdeathsig KILL` when available), appending its
    /// stdout and stderr to `stderr_log`. Must be called inside a tokio runtime, from a thread
    /// that lives as long as kiln needs QEMU (see the module doc).
    pub fn spawn(binary: &str, args: &[String], stderr_log: &Path) -> Result<QemuProcess, Error> {
        let resolved = find_in_path(binary).ok_or_else(|| Error::NotFound {
            binary: binary.to_owned(),
            hint: install_hint(binary),
        })?;
        let setpriv = find_in_path("setpriv");
        if setpriv.is_none() {
            tracing::warn!(
                "`setpriv` (util-linux) not found: `{binary}` will keep running if kiln is killed"
            );
        }
        let (program, argv) = launcher(&resolved, args, setpriv.as_deref());

        let open_log = |e| Error::OpenLog {
            path: stderr_log.to_owned(),
            source: e,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr_log)
            .map_err(open_log)?;
        let stdout_log = log.try_clone().map_err(open_log)?;

        tracing::debug!(program = %program.display(), ?argv, "starting process");
        let mut child = tokio::process::Command::new(&program)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_log))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C in the terminal reaches kiln only, so QEMU is
            // stopped by kiln's cleanup (or kept, with `-on-error=abort`), not by the signal.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr was set to piped");

        let tail: Tail = Arc::default();
        let (done_tx, stderr_done) = watch::channel(false);
        tokio::spawn(copy_stderr(
            stderr,
            tokio::fs::File::from_std(log),
            stderr_log.to_owned(),
            Arc::clone(&tail),
            done_tx,
        ));
        let (status_tx, status) = watch::channel(None);
        let (kill_tx, kill_rx) = mpsc::channel(1);
        tokio::spawn(own_child(child, kill_rx, status_tx));

        Ok(QemuProcess {
            pid,
            status,
            stderr_done,
            tail,
            kill_tx,
        })
    }

    /// The process id while it runs; `None` once it has exited.
    pub fn pid(&self) -> Option<u32> {
        if self.status.borrow().is_some() {
            None
        } else {
            self.pid
        }
    }

    /// Waits up to `timeout` for the process to exit; `Ok(None)` when it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let mut rx = self.status.clone();
        let Ok(seen) = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await else {
            return Ok(None);
        };
        let seen = seen.map_err(|_| Error::WatcherGone)?;
        match seen.as_ref().expect("wait_for checked is_some") {
            Ok(status) => Ok(Some(*status)),
            Err(e) => Err(Error::Wait {
                source: Arc::clone(e),
            }),
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match self.status.borrow().as_ref() {
            Some(Ok(status)) => Some(*status),
            _ => None,
        }
    }

    /// Resolves when the process exits, with a description for an error message: how it ended
    /// (`exit status N`, `killed by signal N`) and the last lines of its stderr.
    pub async fn died(&self) -> String {
        self.death_watch().died().await
    }

    /// What [`died`](Self::died) waits on, apart from the guard, for whatever outlives a borrow
    /// of it (a communicator that reconnects later).
    pub fn death_watch(&self) -> DeathWatch {
        DeathWatch {
            status: self.status.clone(),
            stderr_done: self.stderr_done.clone(),
            tail: Arc::clone(&self.tail),
        }
    }

    /// Kills the process (SIGKILL) and waits until it is reaped; fine if it already exited.
    pub async fn kill(&mut self) -> Result<(), Error> {
        if self.status.borrow().is_some() {
            return Ok(());
        }
        // A full channel means a kill request is already pending.
        let _ = self.kill_tx.try_send(());
        match self.wait_exit(KILL_DEADLINE).await? {
            Some(_) => Ok(()),
            None => Err(Error::Kill {
                pid: self.pid,
                waited: KILL_DEADLINE,
            }),
        }
    }

    /// The last `lines` lines QEMU wrote to stderr, joined with newlines.
    pub fn stderr_tail(&self, lines: usize) -> String {
        last_lines(&self.tail, lines)
    }
}

/// Tells when the process died (see [`QemuProcess::death_watch`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeathWatch {
    status: watch::Receiver<Option<Exit>>,
    stderr_done: watch::Receiver<bool>,
    tail: Tail,
}

impl DeathWatch {
    /// [`QemuProcess::died`].
    pub async fn died(mut self) -> String {
        let how = match self.status.wait_for(Option::is_some).await {
            Ok(seen) => describe(seen.as_ref().expect("wait_for checked is_some")),
            Err(_) => "its watcher stopped".to_owned(),
        };
        if tokio::time::timeout(STDERR_DRAIN, self.stderr_done.wait_for(|d| *d))
            .await
            .is_err()
        {
            tracing::debug!("stderr not drained {STDERR_DRAIN:?} after exit");
        }
        let tail = last_lines(&self.tail, DIED_LINES);
        if tail.is_empty() {
            how
        } else {
            format!("{how}; stderr ends with:\n{tail}")
        }
    }
}

/// The last `lines` lines of `tail`, joined with newlines.
fn last_lines(tail: &Tail, lines: usize) -> String {
    let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
    let skip = tail.len().saturating_sub(lines);
    tail.iter()
        .skip(skip)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if self.status.borrow().is_none() {
            tracing::debug!(pid = ?self.pid, "killing process on drop");
            // The watcher kills on this request, and also when this sender is dropped.
            let _ = self.kill_tx.try_send(());
        }
    }
}

/// Owns the child: waits for it to exit, or kills it when asked (or when the guard is gone),
/// then publishes the exit status.
async fn own_child(
    mut child: Child,
    mut kill_rx: mpsc::Receiver<()>,
    status_tx: watch::Sender<Option<Exit>>,
) {
    let exited = tokio::select! {
        r = child.wait() => Some(r),
        _ = kill_rx.recv() => None,
    };
    let result = match exited {
        Some(r) => r,
        None => {
            if let Err(e) = child.start_kill() {
                tracing::debug!(error = %e, "SIGKILL failed (already exited?)");
            }
            child.wait().await
        }
    };
    tracing::debug!(?result, "process ended");
    status_tx.send_replace(Some(result.map_err(Arc::new)));
}

/// Copies stderr to the log file, keeping the last [`TAIL_LINES`] lines; marks `done` at EOF.
async fn copy_stderr(
    stderr: ChildStderr,
    mut log: tokio::fs::File,
    log_path: PathBuf,
    tail: Tail,
    done: watch::Sender<bool>,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut log_ok = true;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading QEMU's stderr failed");
                break;
            }
        }
        if log_ok && let Err(e) = write_line(&mut log, &line).await {
            tracing::warn!(error = %e, path = %log_path.display(), "writing QEMU's log failed");
            log_ok = false;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        tracing::debug!("qemu stderr: {text}");
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    done.send_replace(true);
}

async fn write_line(log: &mut tokio::fs::File, line: &[u8]) -> io::Result<()> {
    log.write_all(line).await?;
    log.flush().await
}

/// How the process ended, for a message.
fn describe(exit: &Exit) -> String {
    match exit {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => status.to_string(),
        },
        Err(e) => format!("waiting for it failed: {e}"),
    }
}

/// The program and arguments that run `binary args…`, through `setpriv --pdeathsig KILL` when
/// `setpriv` is given (it sets the death signal, then execs: the pid stays QEMU's).
fn launcher(binary: &Path, args: &[String], setpriv: Option<&Path>) -> (PathBuf, Vec<OsString>) {
    let rest = args.iter().map(OsString::from);
    match setpriv {
        Some(setpriv) => {
            let mut argv: Vec<OsString> = ["--pdeathsig", "KILL", "--"]
                .into_iter()
                .map(OsString::from)
                .collect();
            argv.push(binary.as_os_str().to_owned());
            argv.extend(rest);
            (setpriv.to_owned(), argv)
        }
        None => (binary.to_owned(), rest.collect()),
    }
}

/// `name` itself when it contains a `/`, else the first executable `PATH` entry named `name`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// What to install when `binary` is missing.
fn install_hint(binary: &str) -> String {
    let name = Path::new(binary)
        .file_name()
        .map_or(binary.into(), |n| n.to_string_lossy());
    match name.as_ref() {
        "qemu-system-x86_64" | "qemu-system-i386" => QEMU_INSTALL_HINT.to_owned(),
        n if n.starts_with("qemu-system-") => {
            format!(
                "install the Debian package that provides {n} (qemu-system-arm, qemu-system-misc, …)"
            )
        }
        "swtpm" => "install the Debian package swtpm (apt-get install -y swtpm)".to_owned(),
        _ => "check that it is installed and in PATH".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::{Attempt, until_ok};

    const QEMU: &str = "qemu-system-x86_64";

    #[derive(Debug, thiserror::Error)]
    #[error("process {0} still alive")]
    struct Alive(u32);

    /// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
    fn is_gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    async fn wait_gone(pid: u32) {
        until_ok(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async move {
                if is_gone(pid) {
                    Attempt::Done(())
                } else {
                    Attempt::Retry(Alive(pid))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("process {pid} survived: {e}"));
    }

    fn spawn_qemu(args: &[&str], log: &Path) -> QemuProcess {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        QemuProcess::spawn(QEMU, &args, log)
            .unwrap_or_else(|e| panic!("{e} — the QEMU tests need it; they never skip"))
    }

    #[test]
    fn launcher_table() {
        let args = vec!["-m".to_owned(), "512M".to_owned()];
        #[rustfmt::skip]
        let rows: &[(&str, Option<&str>, &str, &[&str])] = &[
            ("setpriv present: pdeathsig wrapper, then exec of the binary", Some("/usr/bin/setpriv"),
                "/usr/bin/setpriv", &["--pdeathsig", "KILL", "--", "/usr/bin/qemu", "-m", "512M"]),
            ("setpriv missing: the binary directly", None,
                "/usr/bin/qemu", &["-m", "512M"]),
        ];
        for (reason, setpriv, program, argv) in rows {
            let (p, a) = launcher(Path::new("/usr/bin/qemu"), &args, setpriv.map(Path::new));
            assert_eq!(p, Path::new(program), "{reason}");
            assert_eq!(
                a,
                argv.iter().map(OsString::from).collect::<Vec<_>>(),
                "{reason}"
            );
        }
    }

    #[test]
    fn hints_name_the_package() {
        assert!(install_hint("qemu-system-x86_64").contains("qemu-system-x86 "));
        assert!(install_hint("/opt/q/qemu-system-aarch64").contains("qemu-system-arm"));
        assert!(install_hint("foo").contains("PATH"));
    }

    #[tokio::test]
    async fn missing_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = QemuProcess::spawn(
            "qemu-system-x86_64-kiln-missing",
            &[],
            &dir.path().join("log"),
        )
        .expect_err("no such binary");
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        let err = QemuProcess::spawn(
            "/nonexistent/qemu-system-x86_64",
            &[],
            &dir.path().join("log"),
        )
        .expect_err("no such path");
        assert!(
            err.to_string()
                .contains("apt-get install -y qemu-system-x86"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn drop_kills_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = QemuProcess::spawn("sleep", &["30".into()], &dir.path().join("log"))
            .expect("spawn sleep");
        let pid = p.pid().expect("running");
        assert!(!is_gone(pid), "sleep should be running");
        drop(p);
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn kill_then_died_reports_the_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = QemuProcess::spawn("sleep", &["30".into()], &dir.path().join("log"))
            .expect("spawn sleep");
        assert_eq!(
            p.wait_exit(Duration::from_millis(100)).await.expect("wait"),
            None
        );
        assert_eq!(p.exited(), None);
        p.kill().await.expect("kill");
        assert_eq!(p.pid(), None);
        assert_eq!(p.exited().and_then(|s| s.signal()), Some(9));
        assert_eq!(p.died().await, "killed by signal 9");
    }

    /// The mechanism that stops QEMU when kiln is SIGKILLed: a parent `sh` starts `sleep` the way
    /// `spawn` starts QEMU; SIGKILLing the parent must take the sleep with it.
    #[tokio::test]
    async fn pdeathsig_kills_child_when_parent_is_sigkilled() {
        let setpriv = find_in_path("setpriv").expect("setpriv (util-linux) must be installed");
        let sleep = find_in_path("sleep").expect("sleep");
        let (program, argv) = launcher(&sleep, &["60".into()], Some(&setpriv));
        let mut parent = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & echo $!; wait"#)
            .arg("sh")
            .arg(program)
            .args(argv)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        let stdout = parent.stdout.take().expect("piped");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("sh prints the pid in time")
        .expect("read pid");
        let pid: u32 = line.trim().parse().expect("a pid");
        assert!(!is_gone(pid), "sleep should be running");
        // setpriv sets the parent-death signal, then execs; kill the parent only after the
        // exec, or the signal may not be armed yet.
        until_ok(
            Duration::from_secs(10),
            Duration::from_millis(10),
            || async move {
                match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                    Ok(comm) if comm.trim() == "sleep" => Attempt::Done(()),
                    _ => Attempt::Retry(Alive(pid)),
                }
            },
        )
        .await
        .expect("setpriv execs sleep");
        parent.start_kill().expect("SIGKILL sh");
        parent.wait().await.expect("reap sh");
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn real_qemu_starts_and_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = spawn_qemu(
            &["-accel", "tcg", "-display", "none", "-nodefaults", "-S"],
            &dir.path().join("qemu.log"),
        );
        let pid = p.pid().expect("running");
        assert_eq!(
            p.wait_exit(Duration::from_millis(500)).await.expect("wait"),
            None,
            "{}",
            p.stderr_tail(5)
        );
        p.kill().await.expect("kill");
        wait_gone(pid).await;
        assert!(p.died().await.starts_with("killed by signal 9"));
    }

    #[tokio::test]
    async fn died_carries_qemus_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("qemu.log");
        let p = spawn_qemu(
            &[
                "-accel",
                "tcg",
                "-display",
                "none",
                "-nodefaults",
                "-no-such-kiln-option",
            ],
            &log,
        );
        let msg = tokio::time::timeout(Duration::from_secs(30), p.died())
            .await
            .expect("QEMU exits at once");
        assert!(msg.starts_with("exit status 1"), "{msg}");
        assert!(msg.contains("-no-such-kiln-option"), "{msg}");
        let logged = std::fs::read_to_string(&log).expect("read log");
        assert!(logged.contains("-no-such-kiln-option"), "{logged}");
    }
}
