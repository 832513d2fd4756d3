//! A private libvirt for the `vagrant up` test (issue 15): `virtlogd` and `libvirtd` started by
//! hand (no systemd here) inside a network namespace the test creates, with libvirt's
//! directories bound to private copies in that process tree's mount namespace. The
//! vagrant-libvirt management network (bridge, dnsmasq, NAT rules), its domains and volumes
//! exist only there, and concurrent runs never meet. Dropping it stops everything it started,
//! by pid, and removes the namespace.
//!
//! KVM is hidden from this libvirt (an empty file stands in for `/dev/kvm`): guests run under
//! TCG here anyway, and with the host's root-only `/dev/kvm` libvirt finds KVM usable when it
//! probes QEMU but not for its `libvirt-qemu` user, so it throws its capabilities away and
//! probes again on every lookup (a minute per `vagrant up` step). The stand-in cannot be moved
//! into a per-domain `/dev`, so the private `qemu.conf` turns those namespaces off.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{describe, eventually, require};

/// libvirt's directories, each bound to a private copy: `(system path, copy under the work dir)`.
const DIRS: [(&str, &str); 4] = [
    ("/etc/libvirt", "etc"),
    ("/var/lib/libvirt", "lib"),
    ("/var/cache/libvirt", "cache"),
    ("/var/log/libvirt", "log"),
];

/// The root PATH the daemons need (dnsmasq and iptables live in sbin).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct PrivateLibvirt {
    netns: String,
    dir: PathBuf,
    libvirtd: Option<u32>,
    virtlogd: Option<u32>,
}

impl PrivateLibvirt {
    /// Starts virtlogd and libvirtd in a new network namespace, with state under `dir`; waits
    /// until `virsh` answers. Panics (after cleaning up) when they do not come up.
    pub fn start(dir: &Path) -> Self {
        for (binary, package) in [
            ("ip", "iproute2"),
            ("nsenter", "util-linux"),
            ("libvirtd", "libvirt-daemon"),
            ("virtlogd", "libvirt-daemon"),
            ("virsh", "libvirt-clients"),
            ("dnsmasq", "dnsmasq-base"),
            ("iptables", "iptables"),
        ] {
            require(binary, package);
        }
        assert!(
            Path::new("/etc/libvirt/qemu.conf").is_file(),
            "libvirt's configuration is missing: install the Debian package \
             `libvirt-daemon-system` (scripts/test.sh does)"
        );
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let netns = format!(
            "kiln-libvirt-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let mut lv = Self {
            netns,
            dir: dir.to_owned(),
            libvirtd: None,
            virtlogd: None,
        };
        run_ok(Command::new("ip").args(["netns", "add", &lv.netns]));
        run_ok(
            Command::new("ip").args(["netns", "exec", &lv.netns, "ip", "link", "set", "lo", "up"]),
        );

        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut script = String::from("set -e\n");
        for (system, copy) in DIRS {
            let private = dir.join("libvirt").join(copy);
            copy_skeleton(Path::new(system), &private, copy == "etc");
            script.push_str(&format!(
                "mount --bind {} {system}\n",
                shell_quote(&private)
            ));
        }
        // /run/libvirt (sockets, pid files, network state) on a private /run.
        script.push_str("mount -t tmpfs -o mode=0755 tmpfs /run\n");
        if Path::new("/dev/kvm").exists() {
            let no_kvm = dir.join("no-kvm");
            std::fs::write(&no_kvm, "").unwrap();
            script.push_str(&format!("mount --bind {} /dev/kvm\n", shell_quote(&no_kvm)));
        }
        for daemon in ["virtlogd", "libvirtd"] {
            script.push_str(&format!(
                "LIBVIRT_LOG_OUTPUTS=3:file:{} {daemon} -d -p {}\n",
                shell_quote(&logs.join(format!("{daemon}.log"))),
                shell_quote(&dir.join(format!("{daemon}.pid")))
            ));
        }
        // `ip netns exec` gives the shell its own mount namespace (with / a slave of the
        // host's), so the binds stay there, shared only with the daemons it starts.
        let out = Command::new("ip")
            .args(["netns", "exec", &lv.netns, "sh", "-c", &script])
            .env("PATH", PATH)
            .output()
            .unwrap();
        lv.virtlogd = read_pid(&dir.join("virtlogd.pid"));
        lv.libvirtd = read_pid(&dir.join("libvirtd.pid"));
        assert!(
            out.status.success() && lv.libvirtd.is_some(),
            "starting virtlogd and libvirtd failed\n{}\n{}",
            describe(&out),
            lv.logs()
        );
        let up = eventually(Duration::from_secs(60), || {
            lv.virsh(&["version"]).status.success()
        });
        assert!(up, "libvirtd did not answer within 60 s\n{}", lv.logs());
        lv
    }

    /// `program` run inside the daemons' network and mount namespaces, in `cwd`.
    pub fn command(&self, program: &str, cwd: &Path) -> Command {
        let pid = self.libvirtd.expect("libvirtd is running").to_string();
        let mut cmd = Command::new("nsenter");
        // --root: the daemons' root directory, which is not the mount namespace's own when
        // the tests run in a chroot (scripts/check-fresh.sh).
        cmd.args(["--target", &pid, "--mount", "--net", "--root"])
            .arg(format!("--wd={}", cwd.display()))
            .args(["--", program])
            .env("PATH", PATH);
        cmd
    }

    /// `virsh -c qemu:///system ARGS` inside the namespaces.
    pub fn virsh(&self, args: &[&str]) -> Output {
        self.command("virsh", &self.dir)
            .args(["-c", "qemu:///system"])
            .args(args)
            .output()
            .unwrap()
    }

    /// The names `virsh ARGS --name` lists (domains, networks).
    pub fn names(&self, args: &[&str]) -> Vec<String> {
        let out = self.virsh(args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Where `/var/log/libvirt/qemu` of this libvirt is, seen from outside the namespace.
    pub fn qemu_log_dir(&self) -> PathBuf {
        self.dir.join("libvirt/log/qemu")
    }

    /// The last lines of the daemons' logs and the domains' (serial consoles included), for
    /// failure messages.
    pub fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = ["virtlogd.log", "libvirtd.log"]
            .iter()
            .map(|f| self.dir.join("logs").join(f))
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.qemu_log_dir()) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} (last lines)\n{}", f.display(), tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Pids of the processes in the network namespace (the daemons, dnsmasq, QEMU).
    fn netns_pids(&self) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for PrivateLibvirt {
    fn drop(&mut self) {
        if self.libvirtd.is_some() {
            // Domains and networks first: libvirtd leaves a network's dnsmasq running.
            for domain in self.names(&["list", "--name"]) {
                let _ = self.virsh(&["destroy", &domain]);
            }
            for net in self.names(&["net-list", "--name"]) {
                let _ = self.virsh(&["net-destroy", &net]);
            }
        }
        for pid in [self.libvirtd.take(), self.virtlogd.take()]
            .into_iter()
            .flatten()
        {
            stop(pid);
        }
        // Anything else this namespace still holds was started by the daemons above.
        for pid in self.netns_pids() {
            stop(pid);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// SIGTERM to `pid`, then SIGKILL if it has not exited within 15 s.
fn stop(pid: u32) {
    let alive = || Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
    let _ = Command::new("kill").arg(pid.to_string()).status();
    if !eventually(Duration::from_secs(15), || !alive()) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        eventually(Duration::from_secs(5), || !alive());
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed\n{}", describe(&out));
}

/// `path` in single quotes for `sh`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Makes `to` a private copy of `from`'s skeleton: its directories with their modes and
/// owners (libvirt-qemu owns some), no files; with `config`, also the configuration files, but
/// no definitions (domains, networks, pools, secrets) the host may hold.
fn copy_skeleton(from: &Path, to: &Path, config: bool) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::create_dir_all(to).unwrap();
    let meta = std::fs::metadata(from).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).unwrap();
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid())).unwrap();
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if config && ["qemu", "storage", "secrets"].contains(&&*name.to_string_lossy()) {
                continue;
            }
            copy_skeleton(&entry.path(), &to.join(&name), config);
        } else if config && kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
    if config && from == Path::new("/etc/libvirt") {
        std::fs::create_dir_all(to.join("qemu/networks/autostart")).unwrap();
        let mut conf = std::fs::read_to_string(to.join("qemu.conf")).unwrap_or_default();
        conf.push_str(
            "\n# kiln's tests: no per-domain /dev (tests/common/libvirt.rs)\nnamespaces = []\n",
        );
        std::fs::write(to.join("qemu.conf"), conf).unwrap();
    }
}
