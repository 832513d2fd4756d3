//! Issue 20: every write of an artifact onto a full filesystem fails naming the file it was
//! writing (its temporary name included) and leaves no temporary file behind, and what was
//! there before is unchanged: compaction, the box, compress, checksum, manifest, and a download
//! into the ISO cache. Each test mounts its own small tmpfs (root, as in CI) and unmounts it
//! even when it fails. Cancelling (Ctrl-C) a box or a compaction half-way leaves nothing either.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::faulty_http::{FaultyServer, Route};
use common::*;
use kiln::builder::qemu::config::DiskFormat;
use kiln::postprocessor::{checksum, compress, manifest, vagrant};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1 << 20;

/// `len` bytes that do not compress, so an archive of them is as large as they are.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A qcow2 image holding `mib` MiB of incompressible data, made at `path`.
async fn qcow2_with_data(path: &Path, mib: usize) {
    require_qemu();
    let scratch = tempfile::tempdir().unwrap();
    let raw = scratch.path().join("data.raw");
    std::fs::write(&raw, noise(mib << 20)).unwrap();
    kiln::qemu_img::convert(DiskFormat::Qcow2, false, &raw, path, &[])
        .await
        .unwrap();
}

/// The whole error chain, as `main` would print it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str("\n  caused by: ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn assert_no_space(msg: &str) {
    assert!(
        msg.contains("No space left on device"),
        "the cause is not ENOSPC:\n{msg}"
    );
}

/// The write of `name` on `fs` failed with ENOSPC, naming `name` and its temporary file
/// (`.NAME.kiln-…`), and left exactly `left` behind.
fn assert_failed_cleanly(err: &dyn std::error::Error, fs: &SmallFs, name: &str, left: &[&str]) {
    let msg = chain(err);
    assert!(
        msg.contains(name) && msg.contains(&format!(".{name}.kiln-")),
        "{msg}"
    );
    assert_no_space(&msg);
    assert_eq!(fs.names(), left, "{msg}");
}

/// Compaction in place on a filesystem with room for the disk but not for its copy: the error
/// names the copy (`.convert`) qemu-img was writing, the copy is gone, the disk intact.
#[tokio::test]
async fn compaction_on_a_full_disk() {
    let fs = SmallFs::mount(14 * MIB);
    let disk = fs.path().join("x.qcow2");
    qcow2_with_data(&disk, 8).await;
    let before = std::fs::read(&disk).unwrap();
    let err = kiln::qemu_img::convert(DiskFormat::Qcow2, false, &disk, &disk, &[])
        .await
        .unwrap_err();
    let msg = chain(&err);
    assert!(msg.contains("x.qcow2.convert"), "{msg}");
    assert_no_space(&msg);
    assert_eq!(fs.names(), ["x.qcow2"], "{msg}");
    assert!(std::fs::read(&disk).unwrap() == before, "the disk changed");
}

/// Ctrl-C during compaction (its future dropped half-way): the copy is removed.
#[tokio::test]
async fn cancelled_compaction_leaves_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("x.qcow2");
    qcow2_with_data(&disk, 48).await;
    let copy = dir.path().join("x.qcow2.convert");
    // Compressing incompressible data is slow enough to be caught half-way.
    let convert = tokio::spawn({
        let disk = disk.clone();
        async move { kiln::qemu_img::convert(DiskFormat::Qcow2, true, &disk, &disk, &[]).await }
    });
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while !copy.exists() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(started.is_ok(), "qemu-img never started writing the copy");
    convert.abort();
    assert!(
        convert.await.unwrap_err().is_cancelled(),
        "it finished first"
    );
    assert!(!copy.exists(), "the copy outlived the cancelled compaction");
    assert!(disk.exists());
}

/// A box onto a full filesystem: the error names the box and its temporary file; nothing left.
#[tokio::test]
async fn box_on_a_full_disk() {
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("x.qcow2");
    qcow2_with_data(&disk, 6).await;
    let fs = SmallFs::mount(3 * MIB);
    let out = fs.path().join("x.box");
    let input = vagrant::DiskInput {
        path: &disk,
        virtual_size: 6 * MIB,
        format: "qcow2",
        accelerator_is_kvm: false,
    };
    let err = vagrant::write_box(
        &vagrant::Config::default(),
        &input,
        "amd64",
        &out,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert_failed_cleanly(&err, &fs, "x.box", &[]);
}

/// `compress` onto a full filesystem: the same.
#[tokio::test]
async fn archive_on_a_full_disk() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("disk.raw");
    std::fs::write(&input, noise(6 << 20)).unwrap();
    let fs = SmallFs::mount(3 * MIB);
    let out = fs.path().join("x.tar.gz");
    let err = compress::write(
        &compress::Config::default(),
        &[input],
        &out,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert_failed_cleanly(&err, &fs, "x.tar.gz", &[]);
}

/// A checksum file on a full filesystem: the lines already there stay as they were (no
/// half-written line), the error names the temporary file, nothing is left.
#[tokio::test]
async fn checksum_on_a_full_disk() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("x.qcow2");
    std::fs::write(&artifact, b"abc").unwrap();
    let fs = SmallFs::mount(MIB);
    let sums = fs.path().join("x.sha256");
    let earlier = "0000\tearlier.qcow2\n";
    std::fs::write(&sums, earlier).unwrap();
    fs.fill();
    let cfg = checksum::Config {
        checksum_types: vec![checksum::ChecksumType::Sha256],
        output: sums.display().to_string(),
    };
    let err = checksum::write(&cfg, &[artifact], "x", "qemu").unwrap_err();
    assert_failed_cleanly(&err, &fs, "x.sha256", &["x.sha256"]);
    assert_eq!(std::fs::read_to_string(&sums).unwrap(), earlier);
}

/// The manifest on a full filesystem: the old manifest stays whole.
#[tokio::test]
async fn manifest_on_a_full_disk() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("x.qcow2");
    std::fs::write(&artifact, b"abc").unwrap();
    let fs = SmallFs::mount(MIB);
    let path = fs.path().join("packer-manifest.json");
    let earlier = r#"{"builds": [], "last_run_uuid": "a"}"#;
    std::fs::write(&path, earlier).unwrap();
    fs.fill();
    let cfg = manifest::Config {
        output: path.display().to_string(),
        ..manifest::Config::default()
    };
    let files = [artifact];
    let input = manifest::Input {
        build_name: "x",
        builder_type: "qemu",
        artifact_id: "VM",
        files: &files,
        run_uuid: "a",
        build_time: 1,
        force: false,
    };
    let err = manifest::write(&cfg, &input).unwrap_err();
    assert_failed_cleanly(&err, &fs, "packer-manifest.json", &["packer-manifest.json"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), earlier);
}

/// A download into a full cache directory: the error names the `.part` file, which is removed
/// (it would only hold the space the next try needs); no file takes the ISO's name.
#[tokio::test]
async fn download_into_a_full_cache() {
    let body = noise(4 << 20);
    let server = FaultyServer::start(vec![("/x.iso", Route::file(&body, true))]);
    let fs = SmallFs::mount(MIB);
    let (ui, _lines) = kiln::ui::Ui::memory();
    let checksum = kiln::types::Checksum::None;
    let err = kiln::download::fetch(&kiln::download::Request {
        urls: &[server.url("/x.iso")],
        checksum: &checksum,
        target: kiln::download::Target::Cache {
            dir: fs.path().to_path_buf(),
            ext: "iso".into(),
        },
        retry: kiln::download::Retry {
            attempts: 2,
            backoff: Duration::from_millis(10),
        },
        ui: &ui,
        cancel: &CancellationToken::new(),
    })
    .await
    .unwrap_err();
    let msg = chain(&err);
    assert!(msg.contains(".iso.part"), "{msg}");
    assert_no_space(&msg);
    let left: Vec<String> = fs
        .names()
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{msg}");
    assert!(PathBuf::from(fs.path()).is_dir());
}
