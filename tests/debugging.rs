//! Issue 13: builds running side by side, `-debug`, `-on-error=ask`, `-timestamp-ui` and
//! Ctrl-C, on `null` builds (no machine needed; a `shell-local` provisioner does the work).
//! The prompts are answered through a pseudo-terminal, as a user at a terminal would.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A template of `null` builds, one per `(name, shell command)`, each running its command
/// with `shell-local`.
fn template(dir: &Path, builds: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (name, _) in builds {
        text.push_str(&format!(
            "source \"null\" \"{name}\" {{\n  communicator = \"none\"\n}}\n"
        ));
    }
    let names: Vec<String> = builds
        .iter()
        .map(|(n, _)| format!("\"source.null.{n}\""))
        .collect();
    text.push_str(&format!("build {{\n  sources = [{}]\n", names.join(", ")));
    for (name, command) in builds {
        text.push_str(&format!(
            "  provisioner \"shell-local\" {{\n    only   = [\"null.{name}\"]\n    inline = [{command:?}]\n  }}\n"
        ));
    }
    text.push_str("}\n");
    let path = dir.join("t.pkr.hcl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `kiln ARGS` in `dir` with its stdin on a new pseudo-terminal; the terminal's master
/// side is returned to type on.
fn on_terminal(dir: &Path, args: &[&str]) -> (KillOnDrop, std::fs::File) {
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let child = kiln()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = std::fs::File::from(pty.master);
    // The terminal echoes what is typed: read it away so that it never fills.
    let mut echo = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while matches!(echo.read(&mut buf), Ok(n) if n > 0) {}
    });
    (KillOnDrop(child), master)
}

/// Waits (at most a minute) for the child to exit; its status, stdout and stderr.
fn finish(mut child: KillOnDrop) -> (Option<i32>, String, String) {
    let exited = eventually(Duration::from_secs(60), || {
        !matches!(child.0.try_wait(), Ok(None))
    });
    assert!(exited, "kiln did not finish within a minute");
    let mut out = String::new();
    let mut err = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.0.wait().unwrap();
    (status.code(), out, err)
}

/// The lines of `text` that contain `needle`, in order.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn issue_13_debug_pauses_after_each_step_and_before_each_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path(), &[("a", "echo provisioned")]);
    let (child, mut keys) = on_terminal(dir.path(), &["build", "-debug", t.to_str().unwrap()]);
    // Enter for each pause: after `connect` and `provision`, before their cleanups.
    keys.write_all(b"\n\n\n\n").unwrap();
    let (code, out, err) = finish(child);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        lines_with(&out, "Pausing"),
        [
            "==> null.a: Pausing after run of step `connect`. Press enter to continue.",
            "==> null.a: Pausing after run of step `provision`. Press enter to continue.",
            "==> null.a: Pausing before cleanup of step `provision`. Press enter to continue.",
            "==> null.a: Pausing before cleanup of step `connect`. Press enter to continue.",
        ],
        "{out}"
    );
    assert!(out.contains("provisioned"), "{out}");
}

#[test]
fn issue_13_debug_and_ask_without_a_terminal_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path(), &[("a", "echo provisioned")]);
    let out = kiln()
        .args(["build", "-debug", t.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out, "-debug without a terminal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines_with(&stdout, "not a terminal"),
        ["==> null.a: stdin is not a terminal: `-debug` does not pause"],
        "{stdout}"
    );

    let t = template(dir.path(), &[("a", "exit 3")]);
    let out = kiln()
        .args(["build", "-on-error=ask", t.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stdin is not a terminal: `-on-error=ask` cleans up"),
        "{stdout}"
    );
}

#[test]
fn issue_13_on_error_ask_retries_the_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    // Fails the first time only.
    let t = template(
        dir.path(),
        &[("a", "test -f tried || { touch tried; exit 3; }")],
    );
    let (child, mut keys) =
        on_terminal(dir.path(), &["build", "-on-error=ask", t.to_str().unwrap()]);
    keys.write_all(b"r\n").unwrap();
    let (code, out, err) = finish(child);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains(
            "==> null.a: [c] Clean up and exit, [a] abort without cleanup, or [r] retry step \
             (build may fail even if retry succeeds)?"
        ),
        "{out}"
    );
    assert!(err.contains("Step `provision` failed"), "{err}");
}

/// Builds run at the same time (the first waits for a file the second writes); a failed
/// build does not stop the other; the end is Packer's summary; exit status 1.
#[test]
fn issue_13_builds_run_side_by_side_and_the_summary_names_the_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(
        dir.path(),
        &[
            (
                "a",
                "i=0; until test -f b-started; do i=$((i+1)); test $i -lt 300 || exit 9; sleep 0.1; done",
            ),
            ("b", "touch b-started; exit 3"),
        ],
    );
    let out = kiln()
        .args(["build", "-timestamp-ui", t.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr
        .split_once("==> Some builds didn't complete successfully and had errors:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary of failed builds:\n{stderr}"));
    assert!(
        summary.contains("--> null.b: Build `null.b` failed"),
        "{stderr}"
    );
    assert!(!summary.contains("--> null.a"), "{stderr}");
    let artifacts = stdout
        .split_once("The artifacts of successful builds are:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no artifact list:\n{stdout}"));
    assert!(artifacts.contains("null.a: phases:"), "{stdout}");
    assert!(!artifacts.contains("null.b"), "{stdout}");
    // `-timestamp-ui`: every line starts with the time.
    for line in stdout.lines().chain(stderr.lines()) {
        let stamp = line.split(": ").next().unwrap_or("");
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "no timestamp on {line:?}"
        );
    }
}

/// Ctrl-C cancels every running build; each one's cleanups run and the run says so.
#[test]
fn issue_13_interrupt_cancels_every_build() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(
        dir.path(),
        &[
            ("a", "touch a-started; sleep 60"),
            ("b", "touch b-started; sleep 60"),
        ],
    );
    let child = KillOnDrop(
        kiln()
            .args(["build", t.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let started = eventually(Duration::from_secs(30), || {
        dir.path().join("a-started").exists() && dir.path().join("b-started").exists()
    });
    assert!(started, "the two builds did not both start");
    signal(child.0.id(), "INT");
    let (code, _out, err) = finish(child);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("Cleanly cancelled builds after being interrupted."),
        "{err}"
    );
    assert!(
        err.contains("--> null.a:") && err.contains("--> null.b:"),
        "{err}"
    );
}
