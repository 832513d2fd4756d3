//! The `vagrant-catalog` post-processor's catalogs against real Vagrant (issue 15), with
//! `file://` box URLs: `vagrant box add CATALOG.json` installs the newest version (Vagrant's
//! version order, not the text's), verifying the checksum; after another version is added,
//! `vagrant box outdated` reports it. No VM is booted: the boxes are small libvirt boxes made
//! here (the `vagrant up` of a real kiln box is in tests/guest.rs).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{describe, require};
use kiln::postprocessor::vagrant_catalog::{self, Config};

const BOX_NAME: &str = "kiln/catalog-test";

/// A libvirt box in `dir`: a gzip'd tar of `metadata.json` and a (not bootable) `box.img`.
fn make_box(dir: &Path, version: &str) -> PathBuf {
    let path = dir.join(format!("catalog-test-{version}.box"));
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let meta = r#"{"provider":"libvirt","format":"qcow2","virtual_size":1,"architecture":"amd64"}"#;
    let image = format!("disk of version {version}");
    for (member, data) in [
        ("metadata.json", meta.as_bytes()),
        ("box.img", image.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, member, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
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
    let publish = |version: &str| {
        let b = make_box(&boxes, version);
        vagrant_catalog::update(&config(version), &b, "catalog-test", false).unwrap()
    };

    // 1.9.0 then 1.10.0: the newest is 1.10.0 although it sorts first as text.
    publish("1.9.0");
    let catalog = publish("1.10.0").catalog;
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
    publish("1.11.0");
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
