//! The `vagrant-catalog` post-processor's catalogs against real Vagrant (issue 15), with
//! `file://` box URLs: `vagrant box add CATALOG.json` installs the newest version (Vagrant's
//! version order, not the text's), verifying the checksum; after another version is added,
//! `vagrant box outdated` reports it. No VM is booted: the boxes are kiln's boxes of empty disks
//! (the `vagrant up` of a real kiln box is in tests/guest.rs).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{describe, require};
use kiln::postprocessor::vagrant;
use kiln::postprocessor::vagrant_catalog::{self, Config};

const BOX_NAME: &str = "kiln/catalog-test";

/// A box kiln's `vagrant` post-processor writes in `dir`, of an empty qcow2 disk (not
/// bootable: nothing here boots it) whose size differs per version.
fn make_box(dir: &Path, version: &str, size_mib: u64) -> PathBuf {
    let disk = dir.join(format!("disk-{version}.qcow2"));
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg(format!("{size_mib}M"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let path = dir.join(format!("catalog-test-{version}.box"));
    let input = vagrant::DiskInput {
        path: &disk,
        virtual_size: size_mib << 20,
        format: "qcow2",
        accelerator_is_kvm: false,
    };
    vagrant::write_box(
        &vagrant::Config::default(),
        &input,
        "amd64",
        &path,
        &mut |_| {},
        &tokio_util::sync::CancellationToken::new(),
    )
    .unwrap();
    path
}

/// Runs `vagrant ARGS` with its own `VAGRANT_HOME` under `work`; returns stdout.
fn vagrant(work: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("vagrant")
        .arg("--no-tty")
        .args(args)
        .env("VAGRANT_HOME", work.join("vagrant.d"))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .current_dir(work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vagrant {args:?} failed\n{}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vagrant_installs_the_newest_version_and_sees_updates() {
    require("vagrant", "vagrant");
    require("qemu-img", "qemu-utils");
    let work = tempfile::tempdir().unwrap();
    let boxes = work.path().join("boxes");
    std::fs::create_dir(&boxes).unwrap();
    let config = |version: &str| Config {
        catalog: boxes.join("{{ .BuildName }}.json").display().to_string(),
        url: format!("file://{}/{{{{ .BoxName }}}}", boxes.display()),
        version: version.into(),
        box_name: Some(BOX_NAME.into()),
        description: Some("kiln's catalog test box".into()),
        architecture: None,
    };
    let publish = |version: &str, size_mib: u64| {
        let b = make_box(&boxes, version, size_mib);
        vagrant_catalog::update(&config(version), &b, "catalog-test", false).unwrap()
    };

    // 1.9.0 then 1.10.0: the newest is 1.10.0 although it sorts first as text.
    publish("1.9.0", 16);
    let catalog = publish("1.10.0", 24).catalog;
    let added = vagrant(work.path(), &["box", "add", &catalog.display().to_string()]);
    assert!(
        added.contains(&format!(
            "Successfully added box '{BOX_NAME}' (v1.10.0) for 'libvirt'"
        )),
        "{added}"
    );
    let outdated = vagrant(work.path(), &["box", "outdated", "--global"]);
    assert!(
        outdated.contains(BOX_NAME) && outdated.contains("is up to date"),
        "{outdated}"
    );

    // The next build publishes 1.11.0: Vagrant reports the installed box as outdated, and
    // adding the catalog again installs the new version (checksum verified).
    publish("1.11.0", 32);
    let outdated = vagrant(work.path(), &["box", "outdated", "--global"]);
    assert!(
        outdated.contains("is outdated") && outdated.contains("Latest: 1.11.0"),
        "{outdated}"
    );
    let added = vagrant(work.path(), &["box", "add", &catalog.display().to_string()]);
    assert!(added.contains("(v1.11.0)"), "{added}");
    let list = vagrant(work.path(), &["box", "list"]);
    for version in ["1.10.0", "1.11.0"] {
        assert!(list.contains(version), "{version} not installed:\n{list}");
    }
    vagrant(
        work.path(),
        &["box", "remove", BOX_NAME, "--all", "--force"],
    );
}
