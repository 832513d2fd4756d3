//! Issue 14, the SSH communicator's options against real OpenSSH on 127.0.0.1: file transfer
//! methods (scp, sftp), the SSH agent, user certificates, a bastion (jump) host, a SOCKS proxy
//! and tunnels.
//!
//! Each test starts its own `/usr/sbin/sshd` ([`common::sshd::Sshd`]) and whatever helper it
//! needs (`ssh-agent`, `ssh -D`), all on 127.0.0.1, killed by pid when the test ends.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::sshd::*;
use kiln::communicator::Communicator;
use kiln::communicator::ssh::{
    self, Bastion, Proxy, SshCommunicator, SshTarget, TransferMethod, Tunnel,
};
use kiln::types::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

async fn connect(target: &SshTarget, sshd: &Sshd) -> SshCommunicator {
    match SshCommunicator::connect(target, Duration::from_secs(20)).await {
        Ok(c) => c,
        Err(e) => panic!(
            "connect: {}\nsshd log:\n{}",
            kiln::ui::error_chain(&e),
            sshd.log()
        ),
    }
}

async fn sh(comm: &dyn Communicator, command: &str) -> (u32, String) {
    let mut out = Vec::new();
    let status = comm
        .exec(command, &mut |_, chunk: &[u8]| out.extend_from_slice(chunk))
        .await
        .expect("exec");
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
        & 0o7777
}

/// Uploads and downloads a file and a directory with `method`, checking contents and modes.
async fn round_trip(comm: &SshCommunicator, method: &str) {
    let local = tempfile::tempdir().unwrap();
    let dir = scratch_dir();
    // A file from memory and one from disk, with their modes.
    let remote = dir.join("s.sh");
    comm.upload(remote.to_str().unwrap(), b"#!/bin/sh\necho hi\n", 0o750)
        .await
        .unwrap_or_else(|e| panic!("{method} upload: {}", kiln::ui::error_chain(&e)));
    assert_eq!(std::fs::read(&remote).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(mode(&remote), 0o750, "{method}: mode applied");
    let big = local.path().join("big.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let remote_big = dir.join("big.bin");
    comm.upload_file(remote_big.to_str().unwrap(), &big, 0o600)
        .await
        .unwrap_or_else(|e| panic!("{method} upload_file: {}", kiln::ui::error_chain(&e)));
    assert!(
        std::fs::read(&remote_big).unwrap() == data,
        "{method}: 3 MB intact"
    );
    assert_eq!(mode(&remote_big), 0o600);
    // Overwriting an existing file truncates it and applies the new mode.
    comm.upload(remote_big.to_str().unwrap(), b"short", 0o644)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&remote_big).unwrap(), b"short");
    assert_eq!(
        mode(&remote_big),
        0o644,
        "{method}: mode of an existing file"
    );

    // A directory tree goes up into a directory that does not exist yet.
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/deeper/b.sh"), "beta\n").unwrap();
    std::fs::set_permissions(
        tree.join("sub/deeper/b.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let up = dir.join("up/nested");
    comm.upload_dir(up.to_str().unwrap(), &tree)
        .await
        .unwrap_or_else(|e| panic!("{method} upload_dir: {}", kiln::ui::error_chain(&e)));
    assert_eq!(
        std::fs::read_to_string(up.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(up.join("sub/deeper/b.sh")).unwrap(),
        "beta\n"
    );
    assert_eq!(mode(&up.join("sub/deeper/b.sh")), 0o755);

    // And comes back.
    let back = local.path().join("back");
    comm.download_dir(up.to_str().unwrap(), &back)
        .await
        .unwrap_or_else(|e| panic!("{method} download_dir: {}", kiln::ui::error_chain(&e)));
    assert_eq!(
        std::fs::read_to_string(back.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/deeper/b.sh")).unwrap(),
        "beta\n"
    );
    assert_eq!(mode(&back.join("sub/deeper/b.sh")), 0o755);
    let one = local.path().join("one.bin");
    std::fs::write(&big, &data).unwrap();
    comm.upload_file(remote_big.to_str().unwrap(), &big, 0o600)
        .await
        .unwrap();
    comm.download(remote_big.to_str().unwrap(), &one)
        .await
        .unwrap_or_else(|e| panic!("{method} download: {}", kiln::ui::error_chain(&e)));
    assert!(
        std::fs::read(&one).unwrap() == data,
        "{method}: download intact"
    );

    // A missing remote file is an error naming it, and leaves nothing behind.
    let absent = dir.join("absent");
    let err = comm
        .download(absent.to_str().unwrap(), &local.path().join("x"))
        .await
        .unwrap_err();
    let text = kiln::ui::error_chain(&err);
    assert!(text.contains(absent.to_str().unwrap()), "{method}: {text}");
    assert!(
        !local.path().join("x").exists(),
        "{method}: no partial file"
    );
    let leftovers: Vec<_> = std::fs::read_dir(local.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".kiln-download")
        })
        .collect();
    assert!(leftovers.is_empty(), "{method}: temporary files removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14: `ssh_file_transfer_method = "scp"` copies with the scp protocol: the server has
/// no SFTP subsystem here, and the copies show in its log as `scp` commands.
#[tokio::test]
async fn issue_14_scp_upload_and_download() {
    let sshd = Sshd::start().await;
    let mut target = sshd.target(PASSWORD);
    target.options.transfer = TransferMethod::Scp;
    let comm = connect(&target, &sshd).await;
    round_trip(&comm, "scp").await;
    comm.close().await;
}

/// Issue 14: `ssh_file_transfer_method = "sftp"` copies over the SFTP subsystem (an sshd
/// whose `scp` cannot run would not matter); without the subsystem it is a clear error.
#[tokio::test]
async fn issue_14_sftp_upload_and_download() {
    assert!(
        Path::new(SFTP_SERVER).exists(),
        "{SFTP_SERVER} missing: install the Debian package openssh-sftp-server"
    );
    let sshd = Sshd::start_on(free_port(), &format!("Subsystem sftp {SFTP_SERVER}")).await;
    let mut target = sshd.target(PASSWORD);
    target.options.transfer = TransferMethod::Sftp;
    let comm = connect(&target, &sshd).await;
    round_trip(&comm, "sftp").await;
    comm.close().await;

    let no_sftp = Sshd::start().await;
    let mut target = no_sftp.target(PASSWORD);
    target.options.transfer = TransferMethod::Sftp;
    let comm = connect(&target, &no_sftp).await;
    let dir = scratch_dir();
    let err = comm
        .upload(dir.join("f").to_str().unwrap(), b"x", 0o644)
        .await
        .unwrap_err();
    assert!(matches!(err, ssh::Error::SftpRefused), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14: a path the remote `scp` cannot write is an error naming the path, with scp's
/// own message.
#[tokio::test]
async fn issue_14_scp_refusal_names_the_path() {
    let sshd = Sshd::start().await;
    let mut target = sshd.target(PASSWORD);
    target.options.transfer = TransferMethod::Scp;
    let comm = connect(&target, &sshd).await;
    let err = comm
        .upload("/proc/kiln-no-such-dir/f", b"x", 0o644)
        .await
        .unwrap_err();
    let text = kiln::ui::error_chain(&err);
    assert!(text.contains("/proc/kiln-no-such-dir/f"), "{text}");
    assert!(matches!(err, ssh::Error::Scp { .. }), "{err:?}");
}

/// A key pair made by `ssh-keygen` in `dir` (`name`, `name.pub`).
fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key));
    key
}

/// Issue 14: `ssh_certificate_file`: an sshd that trusts only a CA (no authorized keys)
/// accepts the key with its certificate signed by `ssh-keygen -s`, and refuses the bare key.
#[tokio::test]
async fn issue_14_certificate_login() {
    let keys = tempfile::tempdir().unwrap();
    let ca = keygen(keys.path(), "ca");
    let user = keygen(keys.path(), "user");
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "kiln-test", "-n", USER, "-V", "-5m:+1h"])
        .arg(user.with_extension("pub")));
    let cert = keys.path().join("user-cert.pub");
    assert!(cert.is_file(), "ssh-keygen -s wrote the certificate");
    let sshd = Sshd::start_on(
        free_port(),
        &format!(
            "TrustedUserCAKeys {}.pub\nPasswordAuthentication no\nKbdInteractiveAuthentication no",
            ca.display()
        ),
    )
    .await;
    let mut target = sshd.target("unused");
    target.password = None;
    target.private_key = Some(ssh::load_private_key(&user).unwrap());
    target.options.certificate_file = Some(cert.clone());
    let comm = connect(&target, &sshd).await;
    assert_eq!(sh(&comm, "id -un").await, (0, format!("{USER}\n")));
    comm.close().await;
    assert!(sshd.log().contains("ID kiln-test"), "{}", sshd.log());

    target.options.certificate_file = None;
    let err = SshCommunicator::connect(&target, Duration::from_secs(20))
        .await
        .err()
        .expect("the bare key is refused");
    assert!(
        matches!(err, ssh::Error::AuthenticationFailed { .. }),
        "{err:?}"
    );

    target.options.certificate_file = Some(keys.path().join("absent-cert.pub"));
    let err = SshCommunicator::connect(&target, Duration::from_secs(20))
        .await
        .err()
        .expect("a missing certificate file fails");
    let text = kiln::ui::error_chain(&err);
    assert!(text.contains("absent-cert.pub"), "{text}");
}

/// Issue 14: `ssh_bastion_*`: kiln logs in on a jump host (a second sshd), then reaches the
/// machine through a `direct-tcpip` channel; a wrong jump password is an error naming it.
#[tokio::test]
async fn issue_14_bastion_jump_host() {
    // DEBUG1 logs the forwards the jump host makes.
    let jump = Sshd::start_on(free_port(), "LogLevel DEBUG1").await;
    let machine = Sshd::start().await;
    let mut target = machine.target(PASSWORD);
    target.options.bastion = Some(Box::new(Bastion {
        host: "127.0.0.1".into(),
        port: jump.port,
        username: USER.into(),
        password: Some(Secret::new(PASSWORD)),
        private_key_file: None,
        certificate_file: None,
        agent_auth: false,
        interactive: false,
    }));
    let comm = connect(&target, &machine).await;
    assert_eq!(sh(&comm, "echo through").await, (0, "through\n".to_owned()));
    comm.upload(
        scratch_dir().join("f").to_str().unwrap(),
        b"via the jump host",
        0o644,
    )
    .await
    .unwrap();
    comm.close().await;
    let jump_log = jump.log();
    assert!(jump_log.contains("Accepted password"), "{jump_log}");
    assert!(
        jump_log.contains(&format!("127.0.0.1 port {}", machine.port))
            || jump_log.contains("direct-tcpip"),
        "the jump host forwarded to the machine:\n{jump_log}"
    );
    assert!(
        machine.log().contains("Accepted password"),
        "{}",
        machine.log()
    );

    let mut bad = target.clone();
    if let Some(b) = bad.options.bastion.as_mut() {
        b.password = Some(Secret::new("wrong"));
    }
    let err = SshCommunicator::connect(&bad, Duration::from_secs(20))
        .await
        .err()
        .expect("wrong jump password");
    let text = kiln::ui::error_chain(&err);
    assert!(matches!(err, ssh::Error::Bastion { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{}", jump.port)), "{text}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong"),
        "no secret in {text}"
    );
}

/// `ssh -D` on a free port, logged in with `key`; killed by pid on drop.
struct SocksProxy {
    port: u16,
    child: std::process::Child,
}

impl SocksProxy {
    async fn start(sshd: &Sshd, key: &Path) -> SocksProxy {
        let port = free_port();
        let child = std::process::Command::new("ssh")
            .args(["-N", "-D", &format!("127.0.0.1:{port}")])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-i",
            ])
            .arg(key)
            .args(["-p", &sshd.port.to_string(), &format!("{USER}@127.0.0.1")])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ssh -D (Debian package openssh-client)");
        let proxy = SocksProxy { port, child };
        let ready = kiln::wait::until_ok(
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async {
                match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(_) => kiln::wait::Attempt::Done(()),
                    Err(e) => kiln::wait::Attempt::Retry(e),
                }
            },
        )
        .await;
        assert!(ready.is_ok(), "ssh -D did not listen: {}", sshd.log());
        proxy
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 14: `ssh_proxy_*`: kiln reaches the machine through a SOCKS5 proxy (`ssh -D` to
/// another sshd); a proxy that is not there is an error naming it.
#[tokio::test]
async fn issue_14_socks_proxy() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "proxy");
    let authorized = keys.path().join("authorized_keys");
    std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
    let gateway = Sshd::start_on(
        free_port(),
        &format!(
            "AuthorizedKeysFile {}\nLogLevel DEBUG1",
            authorized.display()
        ),
    )
    .await;
    let proxy = SocksProxy::start(&gateway, &key).await;
    let machine = Sshd::start().await;
    let mut target = machine.target(PASSWORD);
    target.options.proxy = Some(Box::new(Proxy {
        host: "127.0.0.1".into(),
        port: proxy.port,
        username: None,
        password: None,
    }));
    let comm = connect(&target, &machine).await;
    assert_eq!(sh(&comm, "echo proxied").await, (0, "proxied\n".to_owned()));
    comm.close().await;
    // The gateway opened the connection to the machine for the proxy.
    assert!(
        gateway.log().contains(&format!("port {}", machine.port))
            || gateway.log().contains("direct-tcpip"),
        "{}",
        gateway.log()
    );

    let closed = free_port();
    target.options.proxy = Some(Box::new(Proxy {
        host: "127.0.0.1".into(),
        port: closed,
        username: Some("u".into()),
        password: Some(Secret::new("proxy-secret")),
    }));
    let err = SshCommunicator::connect(&target, Duration::from_secs(20))
        .await
        .err()
        .expect("no proxy there");
    let text = kiln::ui::error_chain(&err);
    assert!(matches!(err, ssh::Error::Proxy { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert!(!text.contains("proxy-secret"), "{text}");
}

/// A TCP server on 127.0.0.1 that answers each connection with `greeting`.
async fn greeter(greeting: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut line = [0u8; 5];
            let _ = s.read_exact(&mut line).await;
            let _ = s.write_all(greeting.as_bytes()).await;
            let _ = s.write_all(&line).await;
        }
    });
    (port, task)
}

async fn ask(port: u16) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to tunnel port {port}: {e}"));
    s.write_all(b"hello").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Issue 14: `ssh_local_tunnels` and `ssh_remote_tunnels` forward while the connection is
/// up: a local port reaches a server as the machine sees it, a port on the machine reaches a
/// server on this host, and both stop with the connection.
#[tokio::test]
async fn issue_14_local_and_remote_tunnels() {
    let sshd = Sshd::start().await;
    let (behind_machine, _a) = greeter("machine:").await;
    let (behind_host, _b) = greeter("host:").await;
    let (local, remote) = (free_port(), free_port());
    let mut target = sshd.target(PASSWORD);
    target.options.local_tunnels =
        vec![Tunnel::parse(&format!("{local}:127.0.0.1:{behind_machine}")).unwrap()];
    target.options.remote_tunnels =
        vec![Tunnel::parse(&format!("{remote}:127.0.0.1:{behind_host}")).unwrap()];
    let comm = connect(&target, &sshd).await;
    assert_eq!(ask(local).await, "machine:hello");
    // The machine is this host: its port `remote` is sshd's, forwarded back to kiln.
    assert_eq!(ask(remote).await, "host:hello");
    comm.close().await;
    let gone = kiln::wait::until_ok(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            match tokio::net::TcpStream::connect(("127.0.0.1", local)).await {
                Err(_) => kiln::wait::Attempt::Done(()),
                Ok(_) => kiln::wait::Attempt::Retry(std::io::Error::other("still listening")),
            }
        },
    )
    .await;
    assert!(gone.is_ok(), "the local tunnel stops with the connection");

    // A port already taken is an error naming the tunnel.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut target = sshd.target(PASSWORD);
    target.options.local_tunnels = vec![Tunnel::parse(&format!("{port}:127.0.0.1:22")).unwrap()];
    let err = SshCommunicator::connect(&target, Duration::from_secs(20))
        .await
        .err()
        .expect("port taken");
    assert!(
        kiln::ui::error_chain(&err).contains(&format!("{port}:127.0.0.1:22")),
        "{err:?}"
    );
}

/// `ssh-agent -D` on a private socket holding `keys`; killed by pid on drop.
struct Agent {
    socket: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn start(keys: &[&Path]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn ssh-agent (Debian package openssh-client)");
        let agent = Agent {
            socket,
            child,
            _dir: dir,
        };
        let ready = kiln::wait::until_ok(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async {
                match tokio::net::UnixStream::connect(&agent.socket).await {
                    Ok(_) => kiln::wait::Attempt::Done(()),
                    Err(e) => kiln::wait::Attempt::Retry(e),
                }
            },
        )
        .await;
        assert!(ready.is_ok(), "ssh-agent did not listen");
        for key in keys {
            run(std::process::Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.socket));
        }
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 14: `ssh_agent_auth`, `ssh_keypair_name` and agent forwarding, through `kiln build`
/// of a `null` source (kiln reads `SSH_AUTH_SOCK` from its environment): kiln logs in with
/// the agent's key named `ssh_keypair_name` (the other agent key is not authorized), a
/// command on the machine sees the forwarded agent unless `ssh_disable_agent_forwarding`,
/// and a name the agent lacks is an error listing the names it has.
#[tokio::test]
async fn issue_14_agent_auth_keypair_name_and_forwarding() {
    let keys = tempfile::tempdir().unwrap();
    let wanted = keygen(keys.path(), "agent-key");
    let other = keygen(keys.path(), "other-key");
    let authorized = keys.path().join("authorized_keys");
    std::fs::copy(wanted.with_extension("pub"), &authorized).unwrap();
    let sshd = Sshd::start_on(
        free_port(),
        &format!(
            "AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             MaxAuthTries 10",
            authorized.display()
        ),
    )
    .await;
    // The unauthorized key first: without `ssh_keypair_name` kiln would offer it first.
    let agent = Agent::start(&[&other, &wanted]).await;
    let scratch = scratch_dir();
    let work = tempfile::tempdir().unwrap();
    let build = |extra: &str, out: &str| {
        let template = format!(
            r#"source "null" "t" {{
  ssh_host         = "127.0.0.1"
  ssh_port         = {port}
  ssh_username     = "{USER}"
  ssh_timeout      = "20s"
  ssh_agent_auth   = true
  {extra}
}}
build {{
  sources = ["source.null.t"]
  provisioner "shell" {{
    inline = ["ssh-add -l > {out} 2>&1 || echo status=$? >> {out}"]
  }}
}}
"#,
            port = sshd.port,
            out = scratch.join(out).display(),
        );
        let path = work.path().join(format!("{out}.pkr.hcl"));
        std::fs::write(&path, template).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("build")
            .arg(&path)
            .current_dir(work.path())
            .env("SSH_AUTH_SOCK", &agent.socket)
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}\nsshd:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            sshd.log()
        );
        (output.status.success(), text)
    };
    let (ok, text) = build("ssh_keypair_name = \"agent-key\"", "forwarded");
    assert!(ok, "{text}");
    let seen = std::fs::read_to_string(scratch.join("forwarded")).unwrap();
    assert!(
        seen.contains("agent-key") && seen.contains("other-key"),
        "forwarded agent: {seen}"
    );
    assert!(
        !sshd.log().contains("Failed publickey"),
        "only the named key was offered:\n{}",
        sshd.log()
    );

    let (ok, text) = build("ssh_disable_agent_forwarding = true", "not-forwarded");
    assert!(ok, "{text}");
    let seen = std::fs::read_to_string(scratch.join("not-forwarded")).unwrap();
    assert!(seen.contains("status=2"), "no agent on the machine: {seen}");

    let (ok, text) = build("ssh_keypair_name = \"absent\"", "never");
    assert!(!ok, "{text}");
    assert!(text.contains("no key named `absent`"), "{text}");
    assert!(text.contains("agent-key"), "lists the names it has: {text}");
    std::fs::remove_dir_all(&scratch).unwrap();
}
