//! The SSH communicator and the shell provisioner against a real OpenSSH server.
//!
//! Each test starts its own `/usr/sbin/sshd` ([`common::sshd::Sshd`]: a free 127.0.0.1 port,
//! killed by pid when the test ends).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sshd::*;
use kiln::communicator::ssh::{self, SshCommunicator, wait_for_ssh};
use kiln::communicator::{Communicator, Stream};
use kiln::provisioner::shell::{self, Config, ShellSource};
use kiln::provisioner::{self, BuildEnv, Session};
use kiln::provisioner::{Provisioner, ProvisionerBlock};
use kiln::ui::Ui;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Runs `command`, returning (status, stdout, stderr).
async fn exec(comm: &dyn Communicator, command: &str) -> (u32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = comm
        .exec(command, &mut |stream, chunk| match stream {
            Stream::Stdout => out.extend_from_slice(chunk),
            Stream::Stderr => err.extend_from_slice(chunk),
        })
        .await
        .expect("exec");
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[tokio::test]
async fn exec_reports_status_and_separates_streams() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    assert_eq!(
        exec(&comm, "echo hello").await,
        (0, "hello\n".into(), String::new())
    );
    assert_eq!(
        exec(&comm, "echo out; echo err >&2; exit 7").await,
        (7, "out\n".into(), "err\n".into())
    );
    comm.close().await;
}

#[tokio::test]
async fn exec_without_exit_status_is_disconnected() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    // Killing the session's sshd process drops the connection mid-command, as a guest
    // powering off does.
    let err = comm
        .exec("kill -9 $PPID; sleep 5", &mut |_, _| {})
        .await
        .expect_err("connection dropped");
    assert!(matches!(err, ssh::Error::Disconnected), "{err:?}");
}

#[tokio::test]
async fn upload_of_1_mib_arrives_intact_with_mode() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let dir = scratch_dir();
    // A space and a quote in the name exercise the path quoting.
    let path = dir.join("it's up.bin");
    let path = path.to_str().expect("utf-8 path");
    let data: Vec<u8> = (0..1 << 20).map(|_| rand::random::<u8>()).collect();
    comm.upload(path, &data, 0o640).await.expect("upload");
    let want: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, out, err) = exec(
        &comm,
        &format!("sha256sum < {q}; stat -c %a {q}", q = ssh::sh_quote(path)),
    )
    .await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out, format!("{want}  -\n640\n"));
    std::fs::remove_dir_all(&dir).expect("remove scratch dir");
}

#[tokio::test]
async fn upload_failure_reports_status_and_stderr() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let err = comm
        .upload("/nonexistent-dir/x", b"data", 0o644)
        .await
        .expect_err("no such directory");
    match err {
        ssh::Error::UploadStatus { status, stderr, .. } => {
            assert_ne!(status, 0);
            assert!(stderr.contains("nonexistent-dir"), "{stderr}");
        }
        other => panic!("expected UploadStatus, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_password_is_authentication_failed() {
    let sshd = Sshd::start().await;
    let err = SshCommunicator::connect(&sshd.target("wrong"), Duration::from_secs(10))
        .await
        .err()
        .expect("wrong password must fail");
    assert!(
        matches!(&err, ssh::Error::AuthenticationFailed { user } if user == USER),
        "{err:?}"
    );
}

#[tokio::test]
async fn keyboard_interactive_is_answered_with_the_password() {
    // Without PAM, OpenSSH on Linux offers no keyboard-interactive device, so this server
    // uses PAM and refuses plain password authentication.
    let sshd = Sshd::start_on(
        free_port(),
        "UsePAM yes\nPasswordAuthentication no\nKbdInteractiveAuthentication yes",
    )
    .await;
    let comm = sshd.connect().await;
    comm.close().await;
    let err = SshCommunicator::connect(&sshd.target("wrong"), Duration::from_secs(10))
        .await
        .err()
        .expect("wrong password must fail");
    assert!(
        matches!(err, ssh::Error::AuthenticationFailed { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn wait_for_ssh_succeeds_when_sshd_starts_late() {
    let port = free_port();
    let start = Instant::now();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Sshd::start_on(port, "").await
    });
    let comm = wait_for_ssh(
        &target(port, PASSWORD),
        Duration::from_secs(20),
        std::future::pending(),
        &CancellationToken::new(),
    )
    .await
    .expect("SSH comes up after 2 s");
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert_eq!(exec(&comm, "echo up").await.1, "up\n");
    comm.close().await;
    drop(late.await.expect("sshd task"));
}

#[tokio::test]
async fn wait_for_ssh_times_out_with_last_error() {
    let port = free_port();
    let start = Instant::now();
    let err = wait_for_ssh(
        &target(port, PASSWORD),
        Duration::from_secs(3),
        std::future::pending(),
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("nothing listens");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    match err {
        ssh::Error::Timeout {
            last: Some(last), ..
        } => {
            assert!(matches!(*last, ssh::Error::Connect { .. }), "{last:?}")
        }
        other => panic!("expected Timeout with a last error, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_for_ssh_keeps_retrying_wrong_credentials() {
    let sshd = Sshd::start().await;
    let err = wait_for_ssh(
        &sshd.target("wrong"),
        Duration::from_secs(3),
        std::future::pending(),
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("wrong password never succeeds");
    match err {
        ssh::Error::Timeout {
            last: Some(last), ..
        } => {
            assert!(
                matches!(*last, ssh::Error::AuthenticationFailed { .. }),
                "{last:?}"
            )
        }
        other => panic!("expected Timeout with AuthenticationFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_for_ssh_stops_at_once_on_abort() {
    let start = Instant::now();
    let abort = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "QEMU exited: boom".to_owned()
    };
    let err = wait_for_ssh(
        &target(free_port(), PASSWORD),
        Duration::from_secs(60),
        abort,
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("aborted");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(&err, ssh::Error::Aborted { reason } if reason == "QEMU exited: boom"),
        "{err:?}"
    );
}

#[tokio::test]
async fn wait_for_ssh_stops_on_cancel() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = wait_for_ssh(
        &target(free_port(), PASSWORD),
        Duration::from_secs(60),
        std::future::pending(),
        &cancel,
    )
    .await
    .err()
    .expect("cancelled");
    assert!(matches!(err, ssh::Error::Cancelled), "{err:?}");
}

// ---- shell provisioner ----

fn config(source: ShellSource, remote_folder: &Path) -> Config {
    Config {
        remote_folder: remote_folder.to_str().expect("utf-8").to_owned(),
        ..Config::with_defaults(source)
    }
}

fn inline(lines: &[&str]) -> ShellSource {
    ShellSource::Inline(lines.iter().map(|l| l.to_string()).collect())
}

#[tokio::test]
async fn shell_inline_writes_file_streams_lines_and_cleans_up() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let dir = scratch_dir();
    let marker = dir.join("marker");
    let cfg = config(
        inline(&[
            "echo first",
            "printf 'no newline' >&2",
            &format!("echo written > {}", marker.display()),
        ]),
        &dir,
    );
    let (ui, lines) = Ui::memory();
    shell::run(&cfg, &comm, &ui, &[]).await.expect("provision");
    assert_eq!(
        *lines.lock().unwrap(),
        vec![
            "==> Provisioning with shell script: inline script",
            "    first",
            "    no newline",
        ]
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "written\n");
    std::fs::remove_file(&marker).unwrap();
    // Only the marker was there: the script was removed.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir(&dir).unwrap();
}

#[tokio::test]
async fn shell_failing_script_is_non_zero_exit() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let dir = scratch_dir();
    let cfg = config(inline(&["echo before", "false", "echo never"]), &dir);
    let (ui, lines) = Ui::memory();
    let err = shell::run(&cfg, &comm, &ui, &[]).await.unwrap_err();
    assert!(
        matches!(err, shell::Error::NonZeroExit { status: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Script exited with non-zero exit status: 1"
    );
    assert!(!lines.lock().unwrap().iter().any(|l| l.contains("never")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn shell_env_values_with_quotes_and_spaces_arrive_verbatim() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let dir = scratch_dir();
    let mut cfg = config(
        inline(&[r#"printf '%s|%s|%s\n' "$GREETING" "$PACKER_BUILD_NAME" "$PACKER_BUILDER_TYPE""#]),
        &dir,
    );
    cfg.environment_vars = vec![
        ("GREETING".into(), "it's a $HOME `test`".into()),
        ("PACKER_BUILD_NAME".into(), "from template".into()),
    ];
    let env = [
        ("PACKER_BUILD_NAME".to_owned(), "kiln".to_owned()),
        ("PACKER_BUILDER_TYPE".to_owned(), "qemu".to_owned()),
    ];
    let (ui, lines) = Ui::memory();
    shell::run(&cfg, &comm, &ui, &env).await.expect("provision");
    assert_eq!(
        lines.lock().unwrap()[1],
        "    it's a $HOME `test`|from template|qemu"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn shell_script_file_with_crlf_runs() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let dir = scratch_dir();
    let local = tempfile::tempdir().unwrap();
    let script = local.path().join("setup.sh");
    // With the CRs left in, `exit 0\r` fails: "Illegal number".
    std::fs::write(&script, "#!/bin/sh\r\necho from file\r\nexit 0\r\n").unwrap();
    let cfg = config(ShellSource::Script(script.clone()), &dir);
    let (ui, lines) = Ui::memory();
    shell::run(&cfg, &comm, &ui, &[]).await.expect("provision");
    assert_eq!(
        *lines.lock().unwrap(),
        vec![
            format!("==> Provisioning with shell script: {}", script.display()),
            "    from file".to_owned(),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- issue 6: keys, transfers, the provisioner layer and the null builder ----

/// Runs `command` as the test user's session, returning (status, stdout).
async fn sh(comm: &dyn Communicator, command: &str) -> (u32, String) {
    let (status, out, _) = exec(comm, command).await;
    (status, out)
}

/// A temporary key pair authorizes a key-only login (issue 6).
#[tokio::test]
async fn temporary_key_pair_logs_in_without_a_password() {
    let keys = tempfile::tempdir().unwrap();
    let authorized = keys.path().join("authorized_keys");
    let (key, public) = ssh::temporary_key_pair();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    std::fs::write(&authorized, format!("{public}\n")).unwrap();
    let sshd = Sshd::start_on(
        free_port(),
        &format!(
            "AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no",
            authorized.display()
        ),
    )
    .await;
    let mut target = sshd.target("not-the-password");
    target.password = None;
    target.private_key = Some(key);
    let comm = match SshCommunicator::connect(&target, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => panic!("key login: {e:?}\n{}", sshd.log()),
    };
    assert_eq!(sh(&comm, "id -un").await, (0, format!("{USER}\n")));
    // Another key is refused.
    let (other, _) = ssh::temporary_key_pair();
    target.private_key = Some(other);
    let err = SshCommunicator::connect(&target, Duration::from_secs(10))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ssh::Error::AuthenticationFailed { .. }),
        "{err:?}"
    );
}

/// A 256 MiB file streams up intact: the remote sha256 matches the local one (issue 6).
#[tokio::test]
async fn upload_file_of_256_mib_is_verified_by_checksum() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let local_dir = tempfile::tempdir().unwrap();
    let local = local_dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&local).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..256u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i as usize * 31 + j * 7) as u8;
            }
            f.write_all(&block).unwrap();
        }
    }
    let want: String = Sha256::digest(std::fs::read(&local).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = scratch_dir();
    let remote = dir.join("big.bin");
    comm.upload_file(remote.to_str().unwrap(), &local, 0o600)
        .await
        .expect("upload");
    let (status, out) = sh(&comm, &format!("sha256sum {}", remote.display())).await;
    assert_eq!(status, 0);
    assert_eq!(out.split_whitespace().next(), Some(want.as_str()));
    assert_eq!(std::fs::metadata(&remote).unwrap().len(), 256 << 20);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Directories go up and come back with their tree, and single files come back (issue 6).
#[tokio::test]
async fn directory_upload_and_download_round_trip() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/deeper/b.txt"), "beta\n").unwrap();
    let dir = scratch_dir();
    let remote = dir.join("up");
    comm.upload_dir(remote.to_str().unwrap(), &tree)
        .await
        .expect("upload_dir");
    assert_eq!(
        std::fs::read_to_string(remote.join("sub/deeper/b.txt")).unwrap(),
        "beta\n"
    );

    let back = local.path().join("back");
    comm.download_dir(remote.to_str().unwrap(), &back)
        .await
        .expect("download_dir");
    assert_eq!(
        std::fs::read_to_string(back.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/deeper/b.txt")).unwrap(),
        "beta\n"
    );

    let one = local.path().join("one.txt");
    comm.download(remote.join("a.txt").to_str().unwrap(), &one)
        .await
        .expect("download");
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "alpha\n");
    let err = comm
        .download(
            dir.join("absent").to_str().unwrap(),
            &local.path().join("x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ssh::Error::DownloadStatus { .. }), "{err:?}");
    assert!(!local.path().join("x").exists(), "no partial download left");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The session the provisioner layer runs on, for `sshd`.
fn session(sshd: &Sshd) -> Session {
    let cancel = CancellationToken::new();
    let never = Box::new(|| Box::pin(std::future::pending::<String>()) as ssh::AbortFuture);
    let reconnect = ssh::Reconnect::new(sshd.target(PASSWORD), never, cancel.clone());
    Session::new(None, Some(Box::new(reconnect)), cancel)
}

fn block(kind: Provisioner) -> ProvisionerBlock {
    ProvisionerBlock::new(kind)
}

fn build_env() -> BuildEnv {
    BuildEnv {
        source: "null.local".into(),
        env: vec![("PACKER_BUILD_NAME".into(), "local".into())],
        data: Vec::new(),
    }
}

/// A script that drops its own SSH connection (as a reboot does) ends successfully with
/// `expect_disconnect`, and the next provisioner runs on a new connection; without it, the
/// drop is an error (issue 6).
#[tokio::test]
async fn expect_disconnect_then_reconnect() {
    let sshd = Sshd::start().await;
    let dir = scratch_dir();
    // Kill the sshd session process that runs this script (its grandparent).
    let drop_connection = "gp=$(cut -d' ' -f4 /proc/$PPID/stat); kill -9 \"$gp\"; sleep 5";
    let mut first = config(inline(&[drop_connection]), &dir);
    first.expect_disconnect = true;
    let marker = dir.join("after");
    let second = config(
        inline(&[&format!("echo reconnected > {}", marker.display())]),
        &dir,
    );
    let blocks = [
        block(Provisioner::Shell(first.clone())),
        block(Provisioner::Shell(second)),
    ];
    let (ui, lines) = Ui::memory();
    let mut s = session(&sshd);
    provisioner::run_all(&blocks, None, &mut s, &build_env(), &ui)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{:?}", lines.lock().unwrap()));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reconnected\n");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("disconnected, as expected"))
    );

    first.expect_disconnect = false;
    let err = provisioner::run_all(
        &[block(Provisioner::Shell(first))],
        None,
        &mut s,
        &build_env(),
        &ui,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Provisioner 1 (`shell`) failed"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `max_retries` retries a failing provisioner, `timeout` bounds one attempt, and the
/// error-cleanup-provisioner runs when provisioning fails (issue 6).
#[tokio::test]
async fn retries_timeout_and_error_cleanup() {
    let sshd = Sshd::start().await;
    let dir = scratch_dir();
    let counter = dir.join("count");
    // Fails on the first two runs, succeeds on the third.
    let flaky = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ge 3 ]",
        c = counter.display()
    );
    let mut retried = block(Provisioner::Shell(config(inline(&[&flaky]), &dir)));
    retried.max_retries = 2;
    let (ui, lines) = Ui::memory();
    let mut s = session(&sshd);
    provisioner::run_all(&[retried], None, &mut s, &build_env(), &ui)
        .await
        .expect("third try succeeds");
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "3\n");
    assert_eq!(
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("retrying with"))
            .count(),
        2
    );

    let mut slow = block(Provisioner::Shell(config(inline(&["sleep 30"]), &dir)));
    slow.timeout = Some(Duration::from_secs(1));
    let cleaned = dir.join("cleaned");
    let cleanup = block(Provisioner::Shell(config(
        inline(&[&format!("touch {}", cleaned.display())]),
        &dir,
    )));
    let t0 = Instant::now();
    let err = provisioner::run_all(&[slow], Some(&cleanup), &mut s, &build_env(), &ui)
        .await
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the timeout stopped it"
    );
    assert!(
        matches!(err.source, provisioner::Error::Timeout(_)),
        "{err:?}"
    );
    assert!(cleaned.exists(), "error-cleanup-provisioner ran");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kiln build` of a `null` source runs a whole provisioner list against an SSH host — shell,
/// file up and down, shell-local, a disabled breakpoint — then a post-processor (issue 6).
#[tokio::test]
async fn null_builder_runs_the_provisioner_list() {
    let sshd = Sshd::start().await;
    let dir = scratch_dir();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("payload.txt"), "from the template dir\n").unwrap();
    let template = work.path().join("null.pkr.hcl");
    std::fs::write(
        &template,
        format!(
            r#"
variable "port" {{
  type = number
}}
variable "password" {{
  type      = string
  sensitive = true
}}
source "null" "local" {{
  ssh_host     = "127.0.0.1"
  ssh_port     = var.port
  ssh_username = "{USER}"
  ssh_password = var.password
  ssh_timeout  = "20s"
}}
build {{
  sources = ["source.null.local"]
  provisioner "shell" {{
    inline = ["echo \"hello from $PACKER_BUILDER_TYPE.$PACKER_BUILD_NAME\" > {d}/hello"]
  }}
  provisioner "shell" {{
    inline = [
      "echo '${{build.User}}@${{build.Host}}:${{build.Port}} ${{source.type}}.${{source.name}} {{{{ .ConnType }}}} {{{{.Password}}}}' > {d}/build-vars",
      "echo 'password is {{{{ .Password }}}}'",
    ]
  }}
  provisioner "file" {{
    source      = "payload.txt"
    destination = "{d}/"
  }}
  provisioner "file" {{
    direction   = "download"
    source      = "{d}/hello"
    destination = "{w}/downloaded/"
  }}
  provisioner "shell-local" {{
    inline = ["cp {w}/downloaded/hello {w}/local-copy"]
  }}
  provisioner "breakpoint" {{
    disable = true
  }}
  provisioner "shell" {{
    except = ["null.local"]
    inline = ["touch {d}/never"]
  }}
  post-processor "manifest" {{
    output = "{w}/manifest.json"
  }}
}}
"#,
            d = dir.display(),
            w = work.path().display(),
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .arg(format!("-var=port={}", sshd.port))
        .env("PKR_VAR_password", PASSWORD)
        .arg(&template)
        .current_dir(work.path())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}\n{}\nsshd:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("hello")).unwrap(),
        "hello from null.local\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("payload.txt")).unwrap(),
        "from the template dir\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("local-copy")).unwrap(),
        "hello from null.local\n",
        "{text}"
    );
    assert!(!dir.join("never").exists(), "`except` skipped it");
    // Issue 3: `build.*` and `source.*` reach provisioners; the password (a sensitive
    // variable, given through `PKR_VAR_`) never reaches output.
    assert_eq!(
        std::fs::read_to_string(dir.join("build-vars")).expect(&text),
        format!("{USER}@127.0.0.1:{} null.local ssh {PASSWORD}\n", sshd.port)
    );
    assert!(text.contains("password is <sensitive>"), "{text}");
    let kiln_output = text.split("\nsshd:\n").next().unwrap();
    assert!(!kiln_output.contains(PASSWORD), "{kiln_output}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["builds"][0]["builder_type"], "null");
    assert_eq!(manifest["builds"][0]["artifact_id"], "Null");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ssh_pty` runs commands on a pseudo-terminal; without it they have none (issue 6).
#[tokio::test]
async fn ssh_pty_gives_commands_a_terminal() {
    let sshd = Sshd::start().await;
    let comm = sshd.connect().await;
    assert_eq!(
        sh(&comm, "tty >/dev/null").await.0,
        1,
        "no terminal by default"
    );
    let mut target = sshd.target(PASSWORD);
    target.pty = true;
    let comm = SshCommunicator::connect(&target, Duration::from_secs(10))
        .await
        .expect("connect");
    let (status, out) = sh(&comm, "tty").await;
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with("/dev/pts/"), "{out}");
}

/// Issue 14: `ssh_handshake_attempts` ends the wait once the server has refused the
/// credentials that many times, long before the timeout.
#[tokio::test]
async fn issue_14_handshake_attempts_give_up_after_n_refusals() {
    let sshd = Sshd::start().await;
    let mut target = sshd.target("wrong");
    target.options.handshake_attempts = Some(3);
    let start = Instant::now();
    let err = wait_for_ssh(
        &target,
        Duration::from_secs(120),
        std::future::pending(),
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("wrong password never succeeds");
    match err {
        ssh::Error::HandshakeAttempts { attempts, last } => {
            assert_eq!(attempts, 3);
            assert!(
                matches!(*last, ssh::Error::AuthenticationFailed { .. }),
                "{last:?}"
            );
        }
        other => panic!("expected HandshakeAttempts, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "gave up before the timeout"
    );
    let refusals = sshd.log().matches("Failed password").count();
    assert_eq!(refusals, 3, "three logins refused:\n{}", sshd.log());
}

/// Issue 14: `ssh_ciphers` and `ssh_key_exchange_algorithms` are what kiln offers: against
/// an sshd that allows one cipher and one key exchange, the matching lists connect and the
/// others fail the handshake.
#[tokio::test]
async fn issue_14_ciphers_and_key_exchange_are_offered_as_given() {
    let sshd = Sshd::start_on(
        free_port(),
        "Ciphers aes128-ctr\nKexAlgorithms diffie-hellman-group14-sha256",
    )
    .await;
    let attempt = |ciphers: &[&str], kex: &[&str]| {
        let mut t = sshd.target(PASSWORD);
        t.options.ciphers = ciphers.iter().map(|s| (*s).to_owned()).collect();
        t.options.kex = kex.iter().map(|s| (*s).to_owned()).collect();
        async move { SshCommunicator::connect(&t, Duration::from_secs(20)).await }
    };
    let ok = attempt(&["aes128-ctr"], &["diffie-hellman-group14-sha256"])
        .await
        .unwrap_or_else(|e| panic!("matching lists connect: {e:?}\n{}", sshd.log()));
    ok.close().await;
    for (ciphers, kex, why) in [
        (
            &["aes256-gcm@openssh.com"][..],
            &["diffie-hellman-group14-sha256"][..],
            "no common cipher",
        ),
        (
            &["aes128-ctr"][..],
            &["curve25519-sha256"][..],
            "no common key exchange",
        ),
    ] {
        match attempt(ciphers, kex).await {
            Err(ssh::Error::Handshake { .. }) => {}
            Err(other) => panic!("{why}: expected a handshake error, got {other:?}"),
            Ok(_) => panic!("{why}: connected"),
        }
    }
}
