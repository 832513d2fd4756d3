//! Tests that boot real QEMU guests (TCG on CI machines) from the offline test ISO built by
//! `scripts/make-test-iso.sh`. They fail loudly when QEMU or the ISO is missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// The walking skeleton end to end (issue 2): `kiln build` of the test-OS template types the
/// boot command, the installer fetches its answer file from kiln, installs, reboots; kiln
/// provisions over SSH, shuts down, compacts and packs a Vagrant box. Then real Vagrant boots
/// the box under libvirt and reads the provisioner's mark back over `vagrant ssh` (issue 15).
#[test]
fn build_test_os_into_a_vagrant_box() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let out = kiln()
        .current_dir(work.path())
        .arg("build")
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(repo_root().join("boot-configs/testos"))
        .output()
        .unwrap();
    assert_ok(&out, "kiln build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote /etc/kiln-provisioned"),
        "provisioner output not streamed\n{stdout}"
    );

    let outdir = work.path().join("output-testos");
    let disk = outdir.join("testos.qcow2");
    let box_path = outdir.join("testos.box");
    assert!(disk.is_file(), "no disk at {}", disk.display());

    // The box: a gzip'd tar with metadata.json, Vagrantfile and a qcow2 box.img.
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(&box_path).unwrap(),
    ));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        entry.unpack(unpacked.join(&name)).unwrap();
        members.push(name);
    }
    assert_eq!(members, ["metadata.json", "Vagrantfile", "box.img"]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(unpacked.join("metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["provider"], "libvirt");
    assert_eq!(meta["format"], "qcow2");
    assert_eq!(meta["virtual_size"], 1, "1G disk is 1 GB: {meta}");
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(unpacked.join("box.img"))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2", "{info}");
    assert!(read_or_note(&unpacked.join("Vagrantfile")).contains(":libvirt"));

    // The checksum file verifies with sha256sum; the manifest is Packer's format.
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "testos.sha256"])
        .current_dir(&outdir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c failed\n{}",
        describe(&check)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&read_or_note(&outdir.join("packer-manifest.json"))).unwrap();
    let build = &manifest["builds"][0];
    assert_eq!(build["name"], "testos");
    assert_eq!(build["builder_type"], "qemu");
    assert_eq!(build["artifact_id"], "VM");
    assert_eq!(build["files"][0]["name"], "testos.qcow2");
    assert_eq!(
        build["files"][0]["size"],
        std::fs::metadata(&disk).unwrap().len()
    );
    assert_eq!(build["custom_data"]["os"], "kiln-testos");
    assert!(build["build_time"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(build["packer_run_uuid"], manifest["last_run_uuid"]);

    // Real Vagrant (Debian's vagrant + vagrant-libvirt) adds the box from its catalog and
    // boots it.
    vagrant_up(&outdir.join("testos.json"), work.path());
}

/// The Vagrantfile of the `vagrant up` check: vagrant-libvirt with a `qemu` (TCG) domain, its
/// serial console in a file (shown when the check fails), no synced folder; everything else
/// (the insecure key swap, the box's `config.ssh.shell`) as a user gets it.
const VAGRANTFILE: &str = r#"Vagrant.configure("2") do |config|
  config.vm.box = "kiln/testos"
  config.vm.box_check_update = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.boot_timeout = 600
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.uri = "qemu:///system"
    lv.memory = 512
    lv.cpus = 2
    lv.graphics_type = "none"
    lv.video_type = "none"
    lv.serial :type => "file", :source => {:path => "/var/log/libvirt/qemu/kiln-serial.log"}
  end
end
"#;

/// Issue 15: the box works with real Vagrant (Debian's vagrant + vagrant-libvirt). In a
/// private libvirt (its own network namespace): `vagrant box add` of the build's catalog
/// (checking what Vagrant stored: version 1.0.0, the libvirt provider, v1 metadata with an
/// integer `virtual_size`, the disk; issue 7),
/// `vagrant up --provider=libvirt`, `vagrant ssh -c` reading the provisioner's mark and using
/// passwordless sudo, a graceful `vagrant halt`, `vagrant destroy -f`, `vagrant box remove`.
#[allow(clippy::print_stderr)] // the phase timings, shown with --no-capture
fn vagrant_up(catalog: &Path, work: &Path) {
    require("vagrant", "vagrant");
    let plugin = Path::new("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json");
    assert!(
        plugin.is_file(),
        "vagrant-libvirt is not installed: install the Debian package `vagrant-libvirt` \
         (scripts/test.sh does)"
    );
    let libvirt = common::libvirt::PrivateLibvirt::start(&work.join("libvirt-state"));
    let home = work.join("vagrant.d");
    let project = work.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("Vagrantfile"), VAGRANTFILE).unwrap();
    let vagrant = |args: &[&str]| {
        let t0 = std::time::Instant::now();
        let out = libvirt
            .command("vagrant", &project)
            .arg("--no-tty")
            .args(args)
            .env("VAGRANT_HOME", &home)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .env("VAGRANT_DEFAULT_PROVIDER", "libvirt")
            .output()
            .unwrap();
        eprintln!("vagrant {args:?}: {:.1}s", t0.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "vagrant {args:?} failed\n{}\n{}",
            describe(&out),
            libvirt.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let catalog = catalog.to_string_lossy();
    let added = vagrant(&["box", "add", "--provider", "libvirt", &catalog]);
    assert!(
        added.contains("Successfully added box 'kiln/testos' (v1.0.0) for 'libvirt'"),
        "{added}"
    );
    // Vagrant stores it under boxes/kiln-VAGRANTSLASH-testos/1.0.0/[ARCH/]libvirt/.
    let stored = home.join("boxes/kiln-VAGRANTSLASH-testos/1.0.0");
    let provider_dir = [stored.join("libvirt"), stored.join("amd64/libvirt")]
        .into_iter()
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("no libvirt dir under {}", stored.display()));
    let meta: serde_json::Value =
        serde_json::from_str(&read_or_note(&provider_dir.join("metadata.json"))).unwrap();
    assert_eq!(
        meta,
        serde_json::json!({"provider": "libvirt", "format": "qcow2", "virtual_size": 1, "architecture": "amd64"})
    );
    assert!(provider_dir.join("box.img").is_file());

    let up = vagrant(&["up", "--provider=libvirt"]);
    assert!(up.contains("Machine booted and ready!"), "{up}");
    assert!(
        up.contains("Key inserted!"),
        "Vagrant did not replace its insecure key\n{up}"
    );
    let ssh = vagrant(&["ssh", "-c", "cat /etc/kiln-provisioned; sudo -n id -u"]);
    let lines: Vec<&str> = ssh.lines().map(str::trim).collect();
    assert_eq!(lines, ["kiln-provisioned build=testos", "0"], "{ssh}");
    let halt = vagrant(&["halt"]);
    assert!(
        halt.contains("Attempting graceful shutdown of VM")
            && !halt.contains("direct shutdown")
            && !halt.contains("Halting domain"),
        "the guest did not shut down when Vagrant asked\n{halt}"
    );
    vagrant(&["destroy", "-f"]);
    vagrant(&["box", "remove", "kiln/testos", "--all", "--force"]);
    assert_eq!(
        libvirt.names(&["list", "--all", "--name"]),
        Vec::<String>::new()
    );
    assert_eq!(libvirt.names(&["net-list", "--name"]), Vec::<String>::new());
}

/// A `shutdown_command` that leaves the guest running makes kiln press the ACPI power button
/// (QMP `system_powerdown`) after `shutdown_timeout`; the guest powers off and the build
/// succeeds (issue 7's shutdown escalation). Before that, a provisioner reboots the guest in
/// the middle of provisioning (`expect_disconnect`) and the next one runs after the reboot on
/// a new connection (issue 6).
#[test]
fn shutdown_escalates_to_acpi_power_button() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let outdir = work.path().join("output-acpi");
    let out = kiln()
        .current_dir(work.path())
        .arg("build")
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(format!("-var=output_directory={}", outdir.display()))
        .arg(repo_root().join("tests/fixtures/e2e/acpi.pkr.hcl"))
        .output()
        .unwrap();
    assert_ok(&out, "kiln build failed");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("system_powerdown"),
        "no ACPI escalation\n{}",
        describe(&out)
    );
    assert!(
        all.contains("disconnected, as expected"),
        "the reboot did not drop the connection\n{}",
        describe(&out)
    );
    let after = all
        .lines()
        .find(|l| l.contains("before-reboot then after-reboot, up "))
        .unwrap_or_else(|| panic!("no output after the reboot\n{}", describe(&out)));
    let uptime: u64 = after
        .rsplit("up ")
        .next()
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("uptime in {after:?}"));
    assert!(uptime < 120, "the guest did reboot: {after}");
    assert!(
        !all.contains("killing QEMU"),
        "QEMU was killed, not powered off\n{}",
        describe(&out)
    );
    assert!(read_or_note(&outdir.join("serial.log")).contains("reboot: Power down"));
    assert!(outdir.join("acpi.qcow2").is_file());
}

/// `-var=output_directory=<work>/output-nossh`: an absolute path, so QEMU's command line names
/// the test's own directory and the tests can find (only) their own QEMU.
fn out_var(work: &Path) -> String {
    format!("-var=output_directory={}/output-nossh", work.display())
}

/// Starts `kiln build` of the no-SSH guest in `work` with a long SSH timeout, stderr piped.
fn spawn_nossh_build(work: &Path, iso: &Path, stdout: Stdio) -> KillOnDrop {
    kiln()
        .current_dir(work)
        .args(["build", "-var", &format!("iso_path={}", iso.display())])
        .args(["-var", "ssh_timeout=10m"])
        .arg(out_var(work))
        .arg(nossh_template())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
        .unwrap()
}

/// After a failed or cancelled build: no QEMU of this test runs and no output dir is left.
fn assert_nothing_left(work: &Path, marker: &str, after: &str) {
    assert!(
        processes_with(marker).is_empty(),
        "QEMU still running after {after}"
    );
    assert!(
        !work.join("output-nossh").exists(),
        "output directory left behind after {after}"
    );
}

fn nossh_template() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/e2e/nossh.pkr.hcl")
}

/// A guest that never opens SSH fails after `ssh_timeout`, shows the serial console, and
/// leaves no QEMU and no output directory behind.
#[test]
fn ssh_timeout_fails_and_leaves_nothing_running() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let marker = format!("{}/output-nossh", work.path().display());
    let out = kiln()
        .current_dir(work.path())
        .args([
            "build",
            "-var",
            &format!("iso_path={}", iso.display()),
            "-var",
            "ssh_timeout=20s",
        ])
        .arg(out_var(work.path()))
        .arg(nossh_template())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "build should fail\n{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SSH"),
        "error should be about SSH\n{}",
        describe(&out)
    );
    assert!(
        stderr.contains("Timed out"),
        "error should say it timed out\n{}",
        describe(&out)
    );
    // The screen as SSH gave up, kept outside the removed output dir (issue 6).
    let png = work.path().join("kiln-nossh-ssh-timeout.png");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert!(
        stderr.contains("kiln-nossh-ssh-timeout.png"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(work.path(), &marker, "the build failed");
}

/// Ctrl-C during the SSH wait cancels the build, runs the cleanups (QEMU killed, output
/// removed) and exits non-zero.
#[test]
fn interrupt_during_ssh_wait_cleans_up() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let marker = format!("{}/output-nossh", work.path().display());
    let mut child = spawn_nossh_build(work.path(), &iso, Stdio::piped());
    let mut stdout = child.0.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen2 = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Interrupt once kiln says it waits for SSH, with its QEMU running.
    assert!(
        eventually(Duration::from_secs(120), || seen
            .lock()
            .unwrap()
            .contains("Waiting for SSH")),
        "kiln never started waiting for SSH:\n{}",
        seen.lock().unwrap()
    );
    assert!(
        !processes_with(&marker).is_empty(),
        "QEMU is not running during the SSH wait"
    );
    signal(child.0.id(), "INT");
    let exited = eventually(Duration::from_secs(60), || {
        child.0.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.0.kill();
    }
    assert!(exited, "kiln did not exit within 60 s of SIGINT");
    let status = child.0.wait().unwrap();
    reader.join().unwrap();
    let stdout = seen.lock().unwrap().clone();
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "cancelled build must exit non-zero");
    assert!(
        stdout.contains("Waiting for SSH"),
        "was not waiting for SSH:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("cancel"),
        "no cancellation message:\n{stderr}"
    );
    assert_nothing_left(work.path(), &marker, "Ctrl-C");
}

/// Regression for the SIGKILL rule: QEMU never outlives kiln, even when kiln gets no chance to
/// clean up (parent-death signal).
#[test]
fn qemu_dies_when_kiln_is_killed() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let marker = format!("{}/output-nossh", work.path().display());
    let mut child = spawn_nossh_build(work.path(), &iso, Stdio::null());
    assert!(
        eventually(Duration::from_secs(120), || !qemu_processes_with(&marker)
            .is_empty()),
        "QEMU never started"
    );
    signal(child.0.id(), "KILL");
    child.0.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "QEMU outlived a SIGKILLed kiln: {:?}",
        processes_with(&marker)
    );
}

/// Without qemu-system-x86_64 on PATH the build fails with an error naming the Debian package,
/// and cleans up the output directory.
#[test]
fn missing_qemu_names_the_debian_package() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    // A PATH with qemu-img and setpriv but no qemu-system-x86_64.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["qemu-img", "setpriv"] {
        let real = which(tool).unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
    }
    let out = kiln()
        .current_dir(work.path())
        .env("PATH", &bin)
        .args(["build", "-var", &format!("iso_path={}", iso.display())])
        .arg(out_var(work.path()))
        .arg(nossh_template())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qemu-system-x86_64"), "{}", describe(&out));
    assert!(
        stderr.contains("qemu-system-x86"),
        "should name the Debian package\n{}",
        describe(&out)
    );
    assert!(
        !work.path().join("output-nossh").exists(),
        "output directory left behind"
    );
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Issue 4 in a guest: a build from the ISO with a `cd_content` seed CD (label `cidata`) that
/// the provisioner reads from inside the guest; then a `disk_image` build over that build's
/// disk (`use_backing_file`, grown to `disk_size`, verified through a `file:` checksum file)
/// that boots it and finds the first build's mark.
#[test]
fn seed_cd_then_disk_image_build() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let fixtures = repo_root().join("tests/fixtures/e2e");
    let out1 = work.path().join("output-seed");
    let out = kiln()
        .current_dir(work.path())
        .env("KILN_CACHE_DIR", work.path().join("cache"))
        .args(["build", "-var"])
        .arg(format!("iso_path={}", iso.display()))
        .arg(format!("-var=output_directory={}", out1.display()))
        .arg(fixtures.join("seed.pkr.hcl"))
        .output()
        .unwrap();
    assert_ok(&out, "seed build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kiln-seed-content instance-id: kiln-seed"),
        "the guest did not read the seed CD\n{stdout}"
    );
    assert!(stdout.contains("Creating CD disk"), "{stdout}");

    // The base image, listed in a BSD-style checksum file beside it.
    let base = out1.join("seed.qcow2");
    let hash = std::process::Command::new("sha256sum")
        .arg(&base)
        .output()
        .unwrap();
    let hex = String::from_utf8_lossy(&hash.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let sums = work.path().join("CHECKSUM");
    std::fs::write(&sums, format!("SHA256 (seed.qcow2) = {hex}\n")).unwrap();

    let out2 = work.path().join("output-image");
    let out = kiln()
        .current_dir(work.path())
        .env("KILN_CACHE_DIR", work.path().join("cache"))
        .args(["build", "-var"])
        .arg(format!("image={}", base.display()))
        .arg(format!("-var=checksum_file={}", sums.display()))
        .arg(format!("-var=output_directory={}", out2.display()))
        .arg(fixtures.join("disk-image.pkr.hcl"))
        .output()
        .unwrap();
    assert_ok(&out, "disk_image build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("from the base image: kiln-seed-content"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("disk sectors: {}", (2u64 << 30) / 512)),
        "the disk was not grown to disk_size\n{stdout}"
    );
    assert!(stdout.contains("local file, verified in place"), "{stdout}");
    assert!(
        stdout.contains("tpm devices: tpm0"),
        "issue 14: the guest does not see the vtpm\n{stdout}"
    );
    let info = kiln::qemu_img::parse_info(&String::from_utf8_lossy(
        &std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(out2.join("image.qcow2"))
            .output()
            .unwrap()
            .stdout,
    ))
    .unwrap();
    assert_eq!(info.virtual_size, 2 << 30);
    let raw_info = String::from_utf8_lossy(
        &std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(out2.join("image.qcow2"))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        raw_info.contains("seed.qcow2"),
        "the overlay names its backing file\n{raw_info}"
    );
}

/// Issue 13: the builds of a template run side by side. `qemu.broken` (the test OS renamed by
/// the build, with an ISO that does not exist) fails at once; `qemu.ok` still installs the test
/// OS and makes its box. The run ends with Packer's summary naming only the failed build and
/// the artifacts of the successful one, and exits 1.
#[test]
fn issue_13_parallel_builds_one_fails_the_other_makes_its_box() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let out = kiln()
        .current_dir(work.path())
        .args(["build", "-var", &format!("iso_path={}", iso.display())])
        .arg(repo_root().join("tests/fixtures/e2e/parallel.pkr.hcl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Each build speaks with its own prefix.
    for prefix in ["qemu.ok: ", "qemu.broken: "] {
        assert!(
            stdout.lines().chain(stderr.lines()).any(|l| l
                .trim_start()
                .trim_start_matches("==> ")
                .starts_with(prefix)),
            "no line from {prefix:?}\n{}",
            describe(&out)
        );
    }
    let summary = stderr
        .split_once("==> Some builds didn't complete successfully and had errors:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary of failed builds\n{}", describe(&out)));
    assert!(summary.contains("--> qemu.broken: "), "{}", describe(&out));
    assert!(summary.contains("no-such.iso"), "{}", describe(&out));
    assert!(!summary.contains("--> qemu.ok"), "{}", describe(&out));
    let artifacts = stdout
        .split_once("The artifacts of successful builds are:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no artifact list\n{}", describe(&out)));
    let box_path = work.path().join("output-ok/ok.box");
    assert!(artifacts.contains("qemu.ok"), "{}", describe(&out));
    assert!(!artifacts.contains("qemu.broken"), "{}", describe(&out));
    assert!(box_path.is_file(), "no box at {}", box_path.display());
    assert!(
        !work.path().join("output-broken").exists(),
        "the failed build left its output directory"
    );
}
