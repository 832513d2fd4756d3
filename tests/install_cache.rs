//! Issue 19 in real guests: the install cache (a second build resumes the installed system and
//! provisions it anew) and the boot command's screen waits. They fail loudly when QEMU or the
//! test ISO is missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// What each build's provisioning script writes into the guest.
const FIRST_MARK: &str = "kiln-install-cache-mark-of-the-first-build";
const SECOND_MARK: &str = "kiln-install-cache-mark-of-the-second-build";

/// Builds the test OS with `-install-cache` in `work`, with `script` as its provisioning script.
fn build(work: &Path, iso: &Path, out: &str, script: &Path) -> String {
    let output = kiln()
        .current_dir(work)
        .env("KILN_CACHE_DIR", work.join("cache"))
        .args(["build", "-install-cache"])
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(format!(
            "-var=output_directory={}",
            work.join(out).display()
        ))
        .arg(format!("-var=provision_script={}", script.display()))
        .arg(repo_root().join("boot-configs/testos"))
        .output()
        .unwrap();
    assert_ok(&output, "kiln build -install-cache failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Issue 19: the first build installs and keeps the installed system; the second, with only the
/// provisioning script changed, resumes it (no boot command, no install) and its box holds the
/// second script's mark; `kiln cache clean` then leaves nothing in the cache.
#[test]
fn second_build_resumes_the_install_and_provisions_anew() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let script = |name: &str, mark: &str| {
        let path = work.path().join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {mark} > /etc/kiln-mark\nsync\n"),
        )
        .unwrap();
        path
    };
    let first = build(work.path(), &iso, "out1", &script("one.sh", FIRST_MARK));
    assert!(
        first.contains("Install cache: no installed system"),
        "{first}"
    );
    assert!(
        first.contains("Install cache: kept the installed system"),
        "{first}"
    );
    assert!(first.contains("Typed the boot command"), "{first}");

    let second = build(work.path(), &iso, "out2", &script("two.sh", SECOND_MARK));
    assert!(second.contains("Install cache: resuming"), "{second}");
    assert!(!second.contains("Typed the boot command"), "{second}");
    assert!(
        !second.contains("HTTP GET"),
        "the installer ran again\n{second}"
    );
    let serial = read_or_note(&work.path().join("out2/serial.log"));
    assert!(
        !serial.contains("installer starting"),
        "the second build booted the installer\n{serial}"
    );

    // The box of the second build holds the second script's mark and not the first's: the
    // test OS's ext2 keeps a small file's bytes as they are, so they are in the (uncompressed)
    // qcow2 — reading it spares booting the disk on a loaded machine.
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(work.path().join("out2/testos.box")).unwrap(),
    ));
    archive.unpack(&unpacked).unwrap();
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(unpacked.join("box.img"))
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        !info.contains("backing-filename"),
        "the boxed disk must not depend on the cache\n{info}"
    );
    // Data clusters of a qcow2 hold the guest's bytes as they are.
    let bytes = std::fs::read(unpacked.join("box.img")).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(SECOND_MARK.as_bytes()),
        "the second run's mark is not on the boxed disk"
    );
    assert!(
        !has(FIRST_MARK.as_bytes()),
        "the first run's provisioning leaked into the install layer"
    );

    let listed = kiln()
        .env("KILN_CACHE_DIR", work.path().join("cache"))
        .args(["cache", "list"])
        .output()
        .unwrap();
    assert_ok(&listed, "kiln cache list failed");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("install layer of qemu.testos"), "{listed}");
    let cleaned = kiln()
        .env("KILN_CACHE_DIR", work.path().join("cache"))
        .args(["cache", "clean"])
        .output()
        .unwrap();
    assert_ok(&cleaned, "kiln cache clean failed");
    assert!(
        String::from_utf8_lossy(&cleaned.stdout).contains("Removed 1 install layers"),
        "{}",
        describe(&cleaned)
    );
    let left: Vec<_> = walk(&work.path().join("cache"));
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

/// Issue 19: `<waitFor 'boot:'>` finds the isolinux prompt on the text screen; a `<waitFor>`
/// whose text never shows fails the build with an error naming the text and a screenshot.
#[test]
fn wait_for_screen_text_at_the_boot_prompt() {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = kiln()
        .current_dir(work.path())
        .args(["build"])
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(format!(
            "-var=output_directory={}",
            work.path().join("out").display()
        ))
        .arg(repo_root().join("tests/fixtures/e2e/waitfor.pkr.hcl"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("<waitFor \"kiln-never-on-screen\">") && stderr.contains("within 3s"),
        "{}",
        describe(&out)
    );
    assert!(
        !stderr.contains("graphics mode"),
        "the isolinux prompt is a text screen\n{stderr}"
    );
    let shot = work.path().join("kiln-waitfor-waitfor-timeout.png");
    assert!(stderr.contains(&shot.display().to_string()), "{stderr}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // Reaching the second wait at all means `boot:` was found; it cannot have taken the 3 min.
    assert!(started.elapsed() < Duration::from_secs(170));
}
