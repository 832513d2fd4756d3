//! Helpers shared by the integration tests: paths, the kiln binary, the test ISO, and checks
//! that fail loudly when a required tool is missing (these tests never pass silently).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod faulty_http;
pub mod libvirt;
pub mod sshd;

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

/// The bytes the test OS reported on its serial console as `kiln-testos: TAG-hex: …` (the
/// typing and keymap labels print what they read as hex), decoded.
pub fn serial_hex(serial: &str, tag: &str) -> Option<String> {
    let marker = format!("kiln-testos: {tag}-hex: ");
    let hex = serial
        .lines()
        .find_map(|l| l.split(marker.as_str()).nth(1))?
        .trim();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
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

/// Boots `disk` with `-snapshot` (the file is not changed), runs `command` over SSH with kiln's
/// own communicator, powers the guest off and returns the command's stdout.
pub fn read_back(disk: &Path, work: &Path, command: &str) -> String {
    use kiln::builder::qemu::process::QemuProcess;
    use kiln::communicator::ssh::{self, SshTarget};

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let port =
            kiln::builder::qemu::args::find_free_port("127.0.0.1".parse().unwrap(), 24000, 24999)
                .unwrap();
        let args: Vec<String> = [
            "-accel",
            "tcg",
            "-machine",
            "pc",
            "-m",
            "512",
            "-smp",
            "2",
            "-display",
            "none",
            "-snapshot",
            "-drive",
            &format!("file={},if=virtio,format=qcow2", disk.display()),
            "-netdev",
            &format!("user,id=user.0,hostfwd=tcp:127.0.0.1:{port}-:22"),
            "-device",
            "virtio-net,netdev=user.0",
            "-serial",
            &format!("file:{}", work.join("readback-serial.log").display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut qemu = QemuProcess::spawn(
            "qemu-system-x86_64",
            &args,
            &work.join("readback-stderr.log"),
        )
        .unwrap();
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port,
            username: "root".into(),
            private_key: None,
            password: Some(kiln::types::Secret::new("kiln")),
            pty: false,
            read_write_timeout: None,
            options: Default::default(),
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let comm = match ssh::wait_for_ssh(&target, Duration::from_secs(300), qemu.died(), &cancel)
            .await
        {
            Ok(c) => c,
            Err(e) => panic!(
                "the built disk did not come up with SSH: {e:?}\nserial:\n{}",
                read_or_note(&work.join("readback-serial.log"))
            ),
        };
        let mut stdout = Vec::new();
        let status = comm
            .exec(command, &mut |s, chunk| {
                if s == kiln::communicator::Stream::Stdout {
                    stdout.extend_from_slice(chunk)
                }
            })
            .await
            .unwrap();
        assert_eq!(
            status,
            0,
            "`{command}` failed: {}",
            String::from_utf8_lossy(&stdout)
        );
        let _ = comm.exec("poweroff", &mut |_, _| {}).await;
        comm.close().await;
        if qemu
            .wait_exit(Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
        {
            qemu.kill().await.unwrap();
        }
        String::from_utf8(stdout).unwrap()
    })
}

/// A small tmpfs the test mounts itself (needs root, as in CI), for what kiln does when a
/// filesystem fills up. Unmounted on drop, also when the test fails.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` bytes on a new temporary directory.
    pub fn mount(bytes: u64) -> SmallFs {
        require("mount", "mount");
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("kiln-test")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): mount failed\n{}",
            describe(&out)
        );
        SmallFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem: writes a file until the disk is full.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0x5a_u8; 64 << 10];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
                break;
            }
        }
        // Whatever fitted in part of a block is full too.
        let _ = f.write_all(&[0x5a]);
    }

    /// The names in the filesystem's root, sorted (`filler` left out).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler")
            .collect();
        names.sort();
        names
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: a process of a failed test may still hold a file open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A `kiln` run whose stdout and stderr are collected as they come, so a test can act when a
/// build reaches a given step. Killed (SIGTERM, then SIGKILL) if the test fails first.
pub struct Running {
    pub child: KillOnDrop,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    err: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` with its stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Running {
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |mut from: Box<dyn std::io::Read + Send>| {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let into = text.clone();
            let reader = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            (text, reader)
        };
        let (out, r1) = collect(Box::new(child.stdout.take().unwrap()));
        let (err, r2) = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child: KillOnDrop(child),
            out,
            err,
            readers: vec![r1, r2],
        }
    }

    /// Stdout and stderr so far.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.out.lock().unwrap(),
            self.err.lock().unwrap()
        )
    }

    /// Waits until stdout or stderr holds `text`; false after `timeout` or if kiln exited first.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> bool {
        eventually(timeout, || {
            let seen =
                self.out.lock().unwrap().contains(text) || self.err.lock().unwrap().contains(text);
            seen || self.child.0.try_wait().unwrap().is_some()
        }) && (self.out.lock().unwrap().contains(text) || self.err.lock().unwrap().contains(text))
    }

    /// Kills kiln with SIGKILL: no cleanup runs.
    pub fn kill_9(&mut self) {
        signal(self.child.0.id(), "KILL");
        self.child.0.wait().unwrap();
    }

    /// Waits for kiln to exit; returns whether it succeeded and everything it printed.
    pub fn finish(mut self, timeout: Duration) -> (bool, String) {
        let exited = eventually(timeout, || self.child.0.try_wait().unwrap().is_some());
        assert!(
            exited,
            "kiln did not finish within {timeout:?}\n{}",
            self.output()
        );
        let ok = self.child.0.wait().unwrap().success();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        (ok, self.output())
    }
}

/// Writes a raw disk image whose boot sector waits 2 s and powers the machine off (ACPI, the
/// PIIX4 PM control port), followed by `noise_mib` MiB of incompressible data: the cheapest
/// guest that boots and ends a `communicator = "none"` build, with data enough to make
/// compaction and the box take a while.
pub fn poweroff_image(path: &Path, noise_mib: u64) {
    use std::io::{Read, Write};
    #[rustfmt::skip]
    let code: [u8; 19] = [
        0xb4, 0x86,             // mov ah, 0x86      (BIOS: wait CX:DX µs)
        0xb9, 0x1e, 0x00,       // mov cx, 0x001e
        0xba, 0x80, 0x84,       // mov dx, 0x8480    (2 000 000 µs)
        0xcd, 0x15,             // int 0x15
        0xba, 0x04, 0x06,       // mov dx, 0x604     (PM1a control)
        0xb8, 0x00, 0x20,       // mov ax, 0x2000    (SLP_EN, S5)
        0xef,                   // out dx, ax
        0xeb, 0xfe,             // jmp $
    ];
    let mut sector = [0u8; 512];
    sector[..code.len()].copy_from_slice(&code);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&sector).unwrap();
    let mut noise = std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(noise_mib << 20);
    std::io::copy(&mut noise, &mut f).unwrap();
    // Whole MiB, as disk images are.
    f.write_all(&[0u8; (1 << 20) - 512]).unwrap();
}

/// The sha256 of a file, as `sha256:HEX`.
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert_ok(&out, "sha256sum failed");
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}
