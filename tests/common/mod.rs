//! Helpers shared by the integration tests: paths, the kiln binary, the test ISO, and checks
//! that fail loudly when a required tool is missing (these tests never pass silently).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod faulty_http;
pub mod libvirt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

/// Panics with the package to install when `binary` is not on PATH.
pub fn require(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{binary}` is not installed: this test needs it. Install the Debian package \
         `{package}` (scripts/test.sh does: apt-get install -y {package})"
    );
}

pub fn require_qemu() {
    require("qemu-system-x86_64", "qemu-system-x86");
    require("qemu-img", "qemu-utils");
}

/// The offline test ISO; panics with the command that builds it when it is missing.
pub fn test_iso() -> PathBuf {
    let iso = std::env::var_os("KILN_TEST_ISO")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-iso/kiln-testos.iso"));
    assert!(
        iso.is_file(),
        "test ISO `{}` is missing: build it with scripts/make-test-iso.sh (scripts/test.sh does)",
        iso.display()
    );
    iso
}

/// Fails the test with `what`, the exit status and the output unless the command succeeded.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}\n{}", describe(out));
}

/// Text of a finished command's stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Pids of running processes whose command line contains `marker` (e.g. a test's unique temp
/// directory), read from /proc. Zombies are not counted.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Like [`processes_with`], but only processes that already are QEMU (`comm` is
/// `qemu-system-*`): a launcher such as setpriv has finished and exec'd.
pub fn qemu_processes_with(marker: &str) -> Vec<u32> {
    processes_with(marker)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("qemu-system"))
        })
        .collect()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` (e.g. "INT", "KILL") to a process this test started.
pub fn signal(pid: u32, signal: &str) {
    let st = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{signal} {pid} failed");
}

/// A file's text, or a note that it could not be read.
pub fn read_or_note(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<could not read {}: {e}>", path.display()))
}

/// A child process (kiln) that is killed if the test panics before it exits, so a failed test
/// never leaves a build (and its QEMU) running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SIGTERM lets kiln run its cleanups (QEMU is killed by them).
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.0.id().to_string())
                .status();
            if !eventually(Duration::from_secs(30), || {
                !matches!(self.0.try_wait(), Ok(None))
            }) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
}
