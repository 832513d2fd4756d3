//! Issue 20: crash recovery and port races. kiln killed with SIGKILL during the download, the
//! typing, the SSH wait and the box writing leaves state behind (a `.part` and its lock, an
//! output directory, a QMP socket in a temp dir, a box's temporary file); the next run of the
//! same build works without manual cleanup (`-force` for the output directory). Eight builds
//! started at once on one narrow port range all succeed, and a port taken between kiln's probe
//! and QEMU's bind is retried.

#![allow(clippy::unwrap_used)]
#![allow(clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::faulty_http::{FaultyServer, Route};
use common::*;

fn poweroff_template() -> PathBuf {
    repo_root().join("tests/fixtures/e2e/poweroff.pkr.hcl")
}

/// `kiln build` of the power-off image in `work`, its output directory under `work` (so the
/// test finds its own QEMU) and its ISO cache in `work/cache`.
fn poweroff_build(
    work: &Path,
    image_url: &str,
    checksum: &str,
    extra: &[String],
) -> std::process::Command {
    let mut cmd = kiln();
    cmd.current_dir(work)
        .env("KILN_CACHE_DIR", work.join("cache"))
        .arg("build")
        .arg(format!("-var=image_url={image_url}"))
        .arg(format!("-var=image_checksum={checksum}"))
        .arg(format!(
            "-var=output_directory={}",
            work.join("output-poweroff").display()
        ))
        .args(extra)
        .arg(poweroff_template());
    cmd
}

/// `kiln build -force` of `template` (relative to the repository) from the test ISO in `work`,
/// with its output directory at `outdir` and `vars` as `-var`s.
fn iso_build(work: &Path, outdir: &Path, template: &str, vars: &[&str]) -> std::process::Command {
    let mut cmd = kiln();
    cmd.current_dir(work)
        .args(["build", "-force"])
        .arg(format!("-var=iso_path={}", test_iso().display()))
        .arg(format!("-var=output_directory={}", outdir.display()));
    for v in vars {
        cmd.arg(format!("-var={v}"));
    }
    cmd.arg(repo_root().join(template));
    cmd
}

/// The entries of `dir` whose names contain `part`.
fn named(dir: &Path, part: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(part))
                .collect()
        })
        .unwrap_or_default()
}

/// After a SIGKILL: the parent-death signal took QEMU down too.
fn assert_qemu_gone(marker: &Path) {
    let marker = marker.display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "QEMU outlived the killed kiln: {:?}",
        processes_with(&marker)
    );
}

/// Killed during the download of the disk image into the cache: the `.part` and its lock stay;
/// the next run takes the lock, resumes the `.part` with a `Range` request and builds.
#[test]
fn killed_during_the_download_then_rerun_resumes() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("poweroff.raw");
    poweroff_image(&image, 3);
    let body = std::fs::read(&image).unwrap();
    let checksum = sha256_of(&image);
    // A slow link: 64 KiB every 40 ms, about 2.5 s for the image.
    let server = FaultyServer::start(vec![(
        "/poweroff.raw",
        Route::File {
            body: Arc::new(body),
            ranges: true,
            cuts: Arc::new(Mutex::new(Default::default())),
            pace: Some(Duration::from_millis(40)),
        },
    )]);
    let url = server.url("/poweroff.raw");
    let cache = work.path().join("cache");
    let mut first = Running::spawn(&mut poweroff_build(work.path(), &url, &checksum, &[]));
    let partial = || {
        named(&cache, ".part")
            .first()
            .and_then(|n| std::fs::metadata(cache.join(n)).ok())
            .is_some_and(|m| m.len() > 0)
    };
    assert!(
        eventually(Duration::from_secs(60), partial),
        "no partial download\n{}",
        first.output()
    );
    first.kill_9();
    assert!(partial(), "the .part is gone\n{}", first.output());

    let (ok, all) = Running::spawn(&mut poweroff_build(work.path(), &url, &checksum, &[]))
        .finish(Duration::from_secs(180));
    assert!(ok, "the rerun failed\n{all}");
    assert!(all.contains("Resuming"), "the rerun did not resume\n{all}");
    assert!(
        server
            .requests_for("/poweroff.raw")
            .iter()
            .any(|r| r.range.is_some()),
        "no Range request"
    );
    assert!(named(&cache, ".part").is_empty());
    assert!(work.path().join("poweroff.box").is_file());
}

/// Killed while typing the boot command (QEMU running, the output directory half made, the QMP
/// socket in its temp dir): QEMU dies with kiln; the rerun with `-force` replaces the output
/// directory and completes.
#[test]
fn killed_while_typing_then_rerun_with_force() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let outdir = work.path().join("output-typing");
    let build = || {
        let vars = ["payload=kiln rerun after kill", "boot_key_interval=200ms"];
        iso_build(
            work.path(),
            &outdir,
            "tests/fixtures/e2e/typing.pkr.hcl",
            &vars,
        )
    };
    let mut first = Running::spawn(&mut build());
    assert!(
        first.wait_for("Typing the boot command", Duration::from_secs(120)),
        "kiln never typed\n{}",
        first.output()
    );
    first.kill_9();
    assert_qemu_gone(&outdir);
    assert!(outdir.is_dir(), "the killed build left no output directory");

    let (ok, all) = Running::spawn(&mut build()).finish(Duration::from_secs(300));
    assert!(ok, "the rerun failed\n{all}");
    assert!(all.contains("Deleting previous output directory"), "{all}");
    let serial = read_or_note(&outdir.join("serial.log"));
    assert!(
        serial.contains("kiln.typing kiln rerun after kill"),
        "the rerun's guest did not get the command\n{serial}"
    );
}

/// Killed while waiting for SSH (the installer writing the disk): the rerun of the demo build
/// with `-force` completes.
#[test]
fn killed_during_the_ssh_wait_then_rerun_with_force() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let outdir = work.path().join("output-testos");
    let build = || iso_build(work.path(), &outdir, "boot-configs/testos", &[]);
    let mut first = Running::spawn(&mut build());
    assert!(
        first.wait_for("Waiting for SSH", Duration::from_secs(180)),
        "kiln never waited for SSH\n{}",
        first.output()
    );
    first.kill_9();
    assert_qemu_gone(&outdir);

    let (ok, all) = Running::spawn(&mut build()).finish(Duration::from_secs(900));
    assert!(ok, "the rerun failed\n{all}");
    assert!(outdir.join("testos.box").is_file(), "{all}");
}

/// Killed while packing the box (written, as Packer's default, beside the template's working
/// directory rather than in the output directory): its temporary file stays; the rerun with
/// `-force` removes it (its kiln is gone) and writes the box.
#[test]
fn killed_while_writing_the_box_then_rerun_with_force() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("poweroff.raw");
    poweroff_image(&image, 256);
    let url = image.display().to_string();
    let force = ["-force".to_owned()];
    let mut first = Running::spawn(&mut poweroff_build(work.path(), &url, "none", &force));
    let temp_with_data = || {
        named(work.path(), ".poweroff.box.kiln-")
            .first()
            .and_then(|n| std::fs::metadata(work.path().join(n)).ok())
            .is_some_and(|m| m.len() > 0)
    };
    assert!(
        eventually(Duration::from_secs(180), temp_with_data),
        "the box was never being written\n{}",
        first.output()
    );
    first.kill_9();
    assert!(
        temp_with_data(),
        "the box finished before the kill\n{}",
        first.output()
    );

    let (ok, all) = Running::spawn(&mut poweroff_build(work.path(), &url, "none", &force))
        .finish(Duration::from_secs(300));
    assert!(ok, "the rerun failed\n{all}");
    assert!(
        named(work.path(), ".kiln-").is_empty(),
        "temporary files left: {:?}\n{all}",
        named(work.path(), ".kiln-")
    );
    let boxed = std::fs::File::open(work.path().join("poweroff.box")).unwrap();
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(boxed));
    for entry in archive.entries().unwrap() {
        members.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(members, ["metadata.json", "Vagrantfile", "box.img"]);
}

/// Eight builds started at once, sharing one ISO cache and one range of eight VNC ports: each
/// gets its own port (a port another build took between the probe and QEMU's bind is retried)
/// and every build succeeds.
#[test]
fn eight_builds_at_once_on_eight_ports() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("poweroff.raw");
    poweroff_image(&image, 1);
    let server = FaultyServer::start(vec![(
        "/poweroff.raw",
        Route::file(&std::fs::read(&image).unwrap(), true),
    )]);
    let url = server.url("/poweroff.raw");
    let checksum = sha256_of(&image);
    // High VNC displays, away from the default range other builds on the machine use.
    let (min, max) = (15_900, 15_907);
    let runs: Vec<Running> = (0..8)
        .map(|i| {
            let dir = work.path().join(format!("b{i}"));
            std::fs::create_dir(&dir).unwrap();
            let mut cmd = poweroff_build(
                &dir,
                &url,
                &checksum,
                &[
                    format!("-var=vnc_port_min={min}"),
                    format!("-var=vnc_port_max={max}"),
                ],
            );
            cmd.env("KILN_CACHE_DIR", work.path().join("cache"));
            Running::spawn(&mut cmd)
        })
        .collect();
    let mut ports = Vec::new();
    let mut retries = 0;
    for run in runs {
        let (ok, all) = run.finish(Duration::from_secs(600));
        assert!(ok, "a build failed\n{all}");
        let port = all
            .split("connect with VNC to 127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no VNC port\n{all}"));
        assert!((min..=max).contains(&port), "{port}");
        ports.push(port);
        retries += all.matches("was taken before QEMU could bind it").count();
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 8, "two builds shared a VNC port");
    // How often the race happened this time (it is not forced here; see the next test).
    eprintln!("port clashes retried: {retries}");
    assert_eq!(
        server.requests_for("/poweroff.raw").len(),
        1,
        "the shared cache downloaded the image more than once"
    );
}

/// A port taken between kiln's probe and QEMU's bind: QEMU exits at once saying so (here a
/// stand-in QEMU says it the first time, in QEMU 7.2's words), and kiln starts it again on
/// other ports instead of failing.
#[test]
fn a_port_taken_before_qemu_binds_it_is_retried() {
    require_qemu();
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("poweroff.raw");
    poweroff_image(&image, 1);
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("qemu-system-x86_64");
    let seen = work.path().join("first-start");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             if [ ! -e '{seen}' ]; then\n\
             : > '{seen}'\n\
             echo \"qemu-system-x86_64: -vnc 127.0.0.1:0: Failed to find an available port: Address already in use\" >&2\n\
             exit 1\n\
             fi\n\
             exec qemu-system-x86_64 \"$@\"\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let url = image.display().to_string();
    let (ok, all) = Running::spawn(&mut poweroff_build(
        work.path(),
        &url,
        "none",
        &[format!("-var=qemu_binary={}", fake.display())],
    ))
    .finish(Duration::from_secs(300));
    assert!(ok, "the build failed\n{all}");
    assert!(seen.exists(), "the stand-in never ran");
    assert!(
        all.contains("The VNC port was taken before QEMU could bind it (another build?); starting QEMU again on other ports"),
        "{all}"
    );
}
