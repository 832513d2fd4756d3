//! A real OpenSSH server for the tests: each [`Sshd`] runs `/usr/sbin/sshd` on a free
//! 127.0.0.1 port, with a host key and an `sshd_config` in a temp dir, and is killed by pid
//! when dropped (even on panic).
//!
//! Password authentication needs an account with a known password, so [`ensure_user`] creates
//! the local user `kilntest` (once, with `useradd`) and sets its password (`chpasswd`). That
//! needs root; the tests fail loudly otherwise, as they do when sshd (Debian package
//! `openssh-server`) is missing. Key logins use an `AuthorizedKeysFile` in the test's own
//! temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kiln::communicator::ssh::{SshCommunicator, SshTarget};
use kiln::types::Secret;
use kiln::wait::{Attempt, until_ok};

pub const SSHD: &str = "/usr/sbin/sshd";
pub const USER: &str = "kilntest";
pub const PASSWORD: &str = "kiln-Test-pw1";

/// Creates the test user once per test binary and sets its password.
pub fn ensure_user() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: install the Debian package `openssh-server` \
             (apt-get install openssh-server) to run the SSH tests"
        );
        let exists = Command::new("id").arg(USER).output().expect("run id");
        if !exists.status.success() {
            run(Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]));
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn chpasswd (the SSH tests need root to set the test user's password)");
        std::io::Write::write_all(
            chpasswd.stdin.as_mut().expect("piped"),
            format!("{USER}:{PASSWORD}\n").as_bytes(),
        )
        .expect("write to chpasswd");
        let status = chpasswd.wait().expect("wait for chpasswd");
        assert!(
            status.success(),
            "chpasswd failed (the SSH tests need root)"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
    });
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (the SSH tests need root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A running sshd; killed by pid on drop.
pub struct Sshd {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd on `port` and waits until it accepts TCP connections.
    pub async fn start_on(port: u16, extra_config: &str) -> Sshd {
        ensure_user();
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("host_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                // sshd keeps the first value of a keyword, so the extra lines come first.
                "{extra_config}\n\
                 ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {key}\n\
                 PidFile {pid}\n\
                 UsePAM no\n\
                 PasswordAuthentication yes\n\
                 PermitRootLogin no\n\
                 AllowUsers {USER}\n\
                 AuthorizedKeysFile none\n\
                 StrictModes no\n\
                 LogLevel VERBOSE\n",
                key = key.display(),
                pid = dir.path().join("sshd.pid").display(),
            ),
        )
        .expect("write sshd_config");
        // No `Subsystem sftp` line: uploads must work without sftp-server.
        let log = std::fs::File::create(dir.path().join("sshd.log")).expect("create sshd.log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let sshd = Sshd { port, child, dir };
        let ready = until_ok(
            Duration::from_secs(10),
            Duration::from_millis(50),
            || async {
                match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(_) => Attempt::Done(()),
                    Err(e) => Attempt::Retry(e),
                }
            },
        )
        .await;
        assert!(ready.is_ok(), "sshd did not listen: {}", sshd.log());
        sshd
    }

    pub async fn start() -> Sshd {
        Self::start_on(free_port(), "").await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn target(&self, password: &str) -> SshTarget {
        target(self.port, password)
    }

    pub async fn connect(&self) -> SshCommunicator {
        match SshCommunicator::connect(&self.target(PASSWORD), Duration::from_secs(10)).await {
            Ok(c) => c,
            Err(e) => panic!("connect: {e:?}\nsshd log:\n{}", self.log()),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn target(port: u16, password: &str) -> SshTarget {
    SshTarget {
        host: "127.0.0.1".into(),
        port,
        username: USER.into(),
        private_key: None,
        password: Some(Secret::new(password)),
        pty: false,
        read_write_timeout: None,
        options: Default::default(),
    }
}

/// A fresh remote directory path (the "remote" is this machine).
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-ssh-test-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    run(Command::new("chown").arg(USER).arg(&dir));
    dir
}
