//! scripts/lib/deps.sh against a fake apt (issue 15): when anything is missing, the whole
//! package set goes to apt in one transaction, a package installed at a version no archive has
//! is asked for at the archive's version, and every command and file is checked afterwards,
//! naming its package when it is still missing. The fake `apt-get` records its calls and
//! "installs" a package by creating the files listed for it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{describe, repo_root};

const FAKE_APT_GET: &str = r#"#!/bin/bash
# Fake apt-get: records its arguments; `install` creates the files each package ships.
printf 'apt-get %s\n' "$*" >>"$FAKE_APT/calls"
case "$1" in
update) exit 0 ;;
install)
    [ -e "$FAKE_APT/install-fails" ] && { echo "E: fake failure" >&2; exit 100; }
    shift
    for arg in "$@"; do
        case "$arg" in -*) continue ;; esac
        pkg=${arg%%=*}
        [ -f "$FAKE_APT/ships/$pkg" ] || { echo "E: Unable to locate package $pkg" >&2; exit 100; }
        while read -r f; do
            [ -n "$f" ] || continue
            mkdir -p "$(dirname "$f")" && : >"$f" && chmod +x "$f"
        done <"$FAKE_APT/ships/$pkg"
    done
    ;;
*) echo "fake apt-get: unexpected call: $*" >&2; exit 1 ;;
esac
"#;

const FAKE_APT_CACHE: &str = r#"#!/bin/bash
# Fake apt-cache: `policy PKG` prints the canned policy of PKG, if any.
printf 'apt-cache %s\n' "$*" >>"$FAKE_APT/calls"
[ "$1" = policy ] || { echo "fake apt-cache: unexpected call: $*" >&2; exit 1; }
cat "$FAKE_APT/policy/$2" 2>/dev/null
exit 0
"#;

/// `apt-cache policy` of a package installed from a backport `.deb` that no configured archive
/// has (this machine's qemu-utils 10 beside bookworm's 7.2).
const POLICY_OUTSIDE_ARCHIVE: &str = "qemu-utils:
  Installed: 1:10.0.2+ds-1~bpo12+1
  Candidate: 1:10.0.2+ds-1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-1~bpo12+1 100
        100 /var/lib/dpkg/status
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
";

/// `apt-cache policy` of a package installed from the archive.
const POLICY_FROM_ARCHIVE: &str = "xorriso:
  Installed: 1.5.4-4
  Candidate: 1.5.4-4
  Version table:
 *** 1.5.4-4 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
";

/// A scratch machine: a bin directory on PATH, the fake apt and its records.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["bin", "apt/ships", "apt/policy", "tools"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let fake = Self { dir };
        fake.script("tools/apt-get", FAKE_APT_GET);
        fake.script("tools/apt-cache", FAKE_APT_CACHE);
        fake
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn script(&self, rel: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(rel);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A command already installed (in the bin directory on PATH).
    fn installed(&self, cmd: &str) {
        self.script(&format!("bin/{cmd}"), "#!/bin/sh\n");
    }

    /// What installing `pkg` creates: commands (in the bin directory) or paths under the
    /// scratch directory (a leading `/`).
    fn ships(&self, pkg: &str, files: &[&str]) {
        let lines: Vec<String> = files
            .iter()
            .map(|f| match f.strip_prefix('/') {
                Some(rel) => self.path(rel).display().to_string(),
                None => self.path(&format!("bin/{f}")).display().to_string(),
            })
            .collect();
        std::fs::write(
            self.path(&format!("apt/ships/{pkg}")),
            lines.join("\n") + "\n",
        )
        .unwrap();
    }

    fn policy(&self, pkg: &str, text: &str) {
        std::fs::write(self.path(&format!("apt/policy/{pkg}")), text).unwrap();
    }

    /// A `CMD:PACKAGE` entry whose CMD is a file under the scratch directory.
    fn file_entry(&self, rel: &str, pkg: &str) -> String {
        format!("{}:{pkg}", self.path(rel).display())
    }

    /// Runs `ensure_commands ENTRIES...` from scripts/lib/deps.sh with the fake apt.
    fn ensure(&self, entries: &[&str]) -> Output {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && shift && ensure_commands "$@""#)
            .arg("deps-test")
            .arg(repo_root().join("scripts/lib/deps.sh"))
            .args(entries)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .env("FAKE_APT", self.path("apt"))
            .env("KILN_APT", self.path("tools/apt-get"))
            .env("KILN_APT_CACHE", self.path("tools/apt-cache"))
            .output()
            .unwrap()
    }

    /// The recorded apt calls, one per line.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("apt/calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn apt_get_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("apt-get "))
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const INSTALL: &str = "apt-get install -y -q --no-install-recommends --allow-downgrades";

#[test]
fn nothing_missing_means_no_apt_call() {
    let fake = Fake::new();
    fake.installed("kiln-fake-qemu-img");
    std::fs::write(fake.path("isolinux.bin"), "").unwrap();
    let entry = fake.file_entry("isolinux.bin", "isolinux");
    let out = fake.ensure(&["kiln-fake-qemu-img:qemu-utils", &entry]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fake.calls(), Vec::<String>::new());
}

/// One missing command: apt gets the whole set, each package once, in order, in one install.
#[test]
fn one_missing_installs_the_whole_set_in_one_transaction() {
    let fake = Fake::new();
    fake.installed("kiln-fake-qemu-img");
    fake.installed("kiln-fake-xorriso");
    fake.ships("qemu-system-x86", &["kiln-fake-qemu-system"]);
    fake.ships("qemu-utils", &["kiln-fake-qemu-img"]);
    fake.ships("xorriso", &["kiln-fake-xorriso"]);
    fake.ships("isolinux", &["/iso/isolinux.bin", "/iso/isohdpfx.bin"]);
    fake.policy("xorriso", POLICY_FROM_ARCHIVE);
    let iso_bin = fake.file_entry("iso/isolinux.bin", "isolinux");
    let iso_mbr = fake.file_entry("iso/isohdpfx.bin", "isolinux");
    let out = fake.ensure(&[
        "kiln-fake-qemu-system:qemu-system-x86",
        "kiln-fake-qemu-img:qemu-utils",
        "kiln-fake-xorriso:xorriso",
        &iso_bin,
        &iso_mbr,
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        fake.apt_get_calls(),
        [
            "apt-get update -q".to_owned(),
            format!("{INSTALL} qemu-system-x86 qemu-utils xorriso isolinux"),
        ]
    );
    assert!(
        stderr(&out).contains("Missing: qemu-system-x86 isolinux;"),
        "{}",
        describe(&out)
    );
}

/// The issue's machine: qemu-utils 10 from a backport `.deb` beside a missing qemu-system-x86.
/// Installing qemu-system-x86 alone made apt remove qemu-utils; now qemu-utils is asked for at
/// the archive's newest version, in the same transaction, with downgrades allowed.
#[test]
fn package_from_outside_the_archive_is_asked_for_at_the_archive_version() {
    let fake = Fake::new();
    fake.installed("kiln-fake-qemu-img");
    fake.ships("qemu-system-x86", &["kiln-fake-qemu-system"]);
    fake.ships("qemu-utils", &["kiln-fake-qemu-img"]);
    fake.policy("qemu-utils", POLICY_OUTSIDE_ARCHIVE);
    let out = fake.ensure(&[
        "kiln-fake-qemu-system:qemu-system-x86",
        "kiln-fake-qemu-img:qemu-utils",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        fake.apt_get_calls(),
        [
            "apt-get update -q".to_owned(),
            format!("{INSTALL} qemu-system-x86 qemu-utils=1:7.2+dfsg-7+deb12u18+b3"),
        ]
    );
    assert!(
        stderr(&out).contains("qemu-utils is installed at a version no configured archive has"),
        "{}",
        describe(&out)
    );
}

/// apt succeeded but a command is still not there (a package that no longer ships it, a file
/// moved): the check after installing fails and names the package.
#[test]
fn still_missing_after_install_fails_naming_the_package() {
    let fake = Fake::new();
    fake.ships("qemu-system-x86", &["kiln-fake-qemu-system"]);
    fake.ships("isolinux", &[]);
    let iso_bin = fake.file_entry("iso/isolinux.bin", "isolinux");
    let out = fake.ensure(&["kiln-fake-qemu-system:qemu-system-x86", &iso_bin]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "`{}` is still missing after installing; it comes from the Debian package `isolinux`",
            fake.path("iso/isolinux.bin").display()
        )),
        "{}",
        describe(&out)
    );
    assert!(
        !err.contains("kiln-fake-qemu-system` is still missing"),
        "{err}"
    );
}

#[test]
fn apt_failure_fails_with_the_request() {
    let fake = Fake::new();
    std::fs::write(fake.path("apt/install-fails"), "").unwrap();
    let out = fake.ensure(&["kiln-fake-qemu-system:qemu-system-x86"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("error: apt-get install qemu-system-x86 failed"),
        "{}",
        describe(&out)
    );
    assert!(!Path::new(&fake.path("bin/kiln-fake-qemu-system")).exists());
}

/// Commands in the sbin directories count as present even when PATH lacks them (a non-root
/// user's PATH): `depmod` must not send apt a request that can never satisfy the check.
#[test]
fn sbin_commands_are_found_off_path() {
    let sbin = ["/usr/sbin", "/sbin"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !Path::new("/usr/bin").join(n).exists() && !Path::new("/bin").join(n).exists())
        .expect("a command only in the sbin directories");
    let fake = Fake::new();
    let out = fake.ensure(&[&format!("{sbin}:some-package")]);
    assert!(out.status.success(), "{sbin}: {}", describe(&out));
    assert_eq!(fake.calls(), Vec::<String>::new());
}
