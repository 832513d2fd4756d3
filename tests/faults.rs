//! Issue 20: faults a build must notice at once, in real QEMU guests. A full disk during the
//! install (the output directory on a small tmpfs the test mounts), another I/O error (QEMU's
//! blkdebug driver), a guest kernel that panics (pvpanic), a guest that resets for ever and one
//! that powers off before SSH each fail the build within seconds of the fault, with their own message and hint, instead of waiting out
//! `ssh_timeout` (10 minutes here) — and leave no QEMU and no output directory behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Far below the templates' 10-minute `ssh_timeout`: a build that fails later waited for it.
const NOTICED_WITHIN: Duration = Duration::from_secs(300);

/// Runs `kiln build` in `work` and checks that it failed, well before the SSH timeout, without
/// leaving its QEMU or its output directory; returns what it printed.
fn build_fails(work: &Path, outdir: &Path, args: &[String]) -> String {
    require_qemu();
    let started = Instant::now();
    let out = kiln()
        .current_dir(work)
        .arg("build")
        .args(args)
        .output()
        .unwrap();
    let took = started.elapsed();
    let all = describe(&out);
    assert!(!out.status.success(), "the build should fail\n{all}");
    assert!(
        took < NOTICED_WITHIN,
        "the fault was not noticed: the build took {took:?}\n{all}"
    );
    assert!(!all.contains("Timed out waiting for SSH"), "{all}");
    assert!(
        !all.contains("ssh_username"),
        "the credentials hint is only for refused logins\n{all}"
    );
    let marker = outdir.display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "QEMU still runs\n{all}"
    );
    assert!(!outdir.exists(), "output directory left behind\n{all}");
    all
}

/// The arguments of a build of `tests/fixtures/e2e/fault.pkr.hcl` in `work` typing `boot`, and
/// its output directory.
fn fault_build(work: &Path, boot: &str) -> (std::path::PathBuf, Vec<String>) {
    let outdir = work.join("output-fault");
    let args = vec![
        format!("-var=iso_path={}", test_iso().display()),
        format!("-var=output_directory={}", outdir.display()),
        format!("-var=boot={boot}"),
        repo_root()
            .join("tests/fixtures/e2e/fault.pkr.hcl")
            .display()
            .to_string(),
    ];
    (outdir, args)
}

/// The user's report in issue 20: the demo build with its output on a 40 MiB filesystem. kiln
/// warns before starting QEMU that the build may not fit, and when the installer fills the
/// filesystem (QEMU pauses the guest on ENOSPC) it stops at once, naming the file and the
/// space left, with the guest's last serial lines and a screenshot.
#[test]
fn full_disk_during_the_install_fails_at_once() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let fs = SmallFs::mount(40 << 20);
    let outdir = fs.path().join("output-testos");
    let all = build_fails(
        work.path(),
        &outdir,
        &[
            format!("-var=iso_path={}", iso.display()),
            format!("-var=output_directory={}", outdir.display()),
            repo_root()
                .join("boot-configs/testos")
                .display()
                .to_string(),
        ],
    );
    assert!(
        all.contains("this build may grow to"),
        "no warning up front\n{all}"
    );
    let disk = outdir.join("testos.qcow2");
    assert!(
        all.contains(&format!(
            "The filesystem holding `{}` is full (",
            disk.display()
        )),
        "{all}"
    );
    assert!(all.contains("free); QEMU paused the guest"), "{all}");
    assert!(all.contains("hint: free space on that filesystem"), "{all}");
    assert!(
        all.contains("serial: kiln-testos:"),
        "no serial lines\n{all}"
    );
    let png = work.path().join("kiln-testos-disk-full.png");
    assert!(png.is_file(), "no screenshot\n{all}");
    assert_eq!(fs.names(), Vec::<String>::new(), "{all}");
}

/// The test OS's `panic` label: the kernel panics, the pvpanic device kiln attaches tells QEMU,
/// and kiln fails with the kernel's panic message from the serial console.
#[test]
fn kernel_panic_fails_with_the_panic_message() {
    let work = tempfile::tempdir().unwrap();
    let (outdir, args) = fault_build(work.path(), "panic");
    let all = build_fails(work.path(), &outdir, &args);
    assert!(
        all.contains("The guest's kernel panicked (reported by QEMU's pvpanic device)"),
        "{all}"
    );
    assert!(
        all.contains("serial: ")
            && all.contains("Kernel panic - not syncing: sysrq triggered crash"),
        "the panic message is not shown\n{all}"
    );
    assert!(all.contains("hint: the guest's kernel crashed"), "{all}");
}

/// The test OS's `bootloop` label: the guest resets over and over before SSH; kiln names the
/// boot loop and saves a screenshot.
#[test]
fn boot_loop_is_named() {
    let work = tempfile::tempdir().unwrap();
    let (outdir, args) = fault_build(work.path(), "bootloop");
    let all = build_fails(work.path(), &outdir, &args);
    assert!(
        all.contains("without coming up: it is in a boot loop"),
        "{all}"
    );
    assert!(
        all.contains("hint: the guest restarts before it comes up"),
        "{all}"
    );
    assert!(
        work.path().join("kiln-fault-boot-loop.png").is_file(),
        "{all}"
    );
}

/// A guest that powers off before SSH answers (the `typing` label powers off once it has
/// printed its command line) is named as such, with the hint to make the installer reboot.
#[test]
fn power_off_before_ssh_is_named() {
    let work = tempfile::tempdir().unwrap();
    let (outdir, args) = fault_build(work.path(), "typing kiln powers off");
    let all = build_fails(work.path(), &outdir, &args);
    assert!(
        all.contains("The guest powered itself off before SSH answered"),
        "{all}"
    );
    assert!(
        all.contains("hint: the installer powered the guest off"),
        "{all}"
    );
    assert!(
        all.contains("serial: kiln-testos: typing check done"),
        "{all}"
    );
}

/// An I/O error other than a full disk: QEMU's blkdebug driver fails every write to the disk
/// with EIO and QEMU pauses the guest (`werror=stop`); kiln names the drive and QEMU's reason.
/// (The `bootloop` label writes to the disk as soon as it runs.)
#[test]
fn io_error_pauses_the_guest_and_fails_the_build() {
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("blkdebug.conf");
    std::fs::write(
        &rules,
        "[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\n",
    )
    .unwrap();
    let (outdir, mut args) = fault_build(work.path(), "bootloop");
    let disk = outdir.join("fault.qcow2");
    let drives = format!(
        r#"qemuargs=[["-drive", "file=blkdebug:{}:{},if=virtio,format=qcow2,werror=stop"], ["-drive", "file={},media=cdrom"]]"#,
        rules.display(),
        disk.display(),
        test_iso().display()
    );
    args.insert(0, format!("-var={drives}"));
    let all = build_fails(work.path(), &outdir, &args);
    assert!(
        all.contains("QEMU paused the guest after an I/O error on `blkdebug:"),
        "{all}"
    );
    assert!(all.contains("fault.qcow2`: Input/output error"), "{all}");
    assert!(
        all.contains("hint: the host could not write the disk image"),
        "{all}"
    );
    assert!(
        work.path().join("kiln-fault-io-error.png").is_file(),
        "{all}"
    );
}
