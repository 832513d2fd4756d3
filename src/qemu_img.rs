//! `qemu-img`: creating the build disk (blank, or over a `disk_image` as backing file),
//! copying and resizing a `disk_image`, compacting at the end, and reading sizes.
//!
//! The argv builders are pure and table-tested; the runners add deadlines, turn a missing
//! `qemu-img` into an install hint and put qemu-img's own stderr into the error.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const QEMU_IMG: &str = "qemu-img";
const INSTALL_HINT: &str = "install the Debian package qemu-utils (apt-get install -y qemu-utils)";
/// Deadline for `create` and `info`, which only touch metadata.
const QUICK_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline for `convert`, which copies (and maybe compresses) every used block of the disk.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// Disk image format (a qemu source's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

impl DiskFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

/// Why a `qemu-img` run failed. `stderr` is qemu-img's own explanation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `qemu-img` is not installed.
    #[error("Cannot find `qemu-img` (hint: {INSTALL_HINT})")]
    NotFound,
    /// `qemu-img` could not be started or waited for.
    #[error("Cannot run `qemu-img` on {}", path.display())]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `qemu-img` did not finish in time (it was killed).
    #[error("`qemu-img {action}` on {} did not finish within {timeout:?}", path.display())]
    Timeout {
        action: &'static str,
        path: PathBuf,
        timeout: Duration,
    },
    /// `qemu-img create` failed.
    #[error("Cannot create disk image {}: {stderr}", path.display())]
    Create { path: PathBuf, stderr: String },
    /// `qemu-img resize` failed.
    #[error("Cannot resize disk image {}: {stderr}", path.display())]
    Resize { path: PathBuf, stderr: String },
    /// `qemu-img convert` failed; `temp` is the file it was writing (removed), which would
    /// have replaced `dst`.
    #[error(
        "Cannot convert disk image {} into {} (to become {}): {stderr}",
        src.display(),
        temp.display(),
        dst.display()
    )]
    Convert {
        src: PathBuf,
        temp: PathBuf,
        dst: PathBuf,
        stderr: String,
    },
    /// Copying an image file failed.
    #[error("Cannot copy disk image {} to {}", src.display(), dst.display())]
    Copy {
        src: PathBuf,
        dst: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Moving the converted image over the destination failed.
    #[error("Cannot rename {} to {}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `qemu-img info` failed.
    #[error("Cannot read disk image info of {}: {stderr}", path.display())]
    Info { path: PathBuf, stderr: String },
    /// `qemu-img info` printed JSON that kiln does not understand.
    #[error("Cannot parse `qemu-img info` output for {}", path.display())]
    ParseInfo {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What `qemu-img info` says about an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ImageInfo {
    /// `qcow2`, `raw`, …
    pub format: String,
    /// The size the guest sees, in bytes.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Bytes used on the host, when known.
    #[serde(rename = "actual-size")]
    pub actual_size: Option<u64>,
    /// The image's backing file, when it is an overlay.
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
}

/// `qemu_img_args`: extra arguments for each `qemu-img` subcommand, placed as Packer places
/// them (after the format switch of `create` and `resize`, before `-O` of `convert`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraArgs {
    pub create: Vec<String>,
    pub convert: Vec<String>,
    pub resize: Vec<String>,
}

fn os(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `create -f FMT [EXTRA…] PATH SIZE` (size in bytes).
pub fn create_args(
    format: DiskFormat,
    path: &Path,
    size_bytes: u64,
    extra: &[String],
) -> Vec<String> {
    let mut a = vec!["create".into(), "-f".into(), format.as_str().into()];
    a.extend_from_slice(extra);
    a.extend([os(path), size_bytes.to_string()]);
    a
}

/// `create -f qcow2 -b BACKING -F BACKING_FMT [EXTRA…] PATH [SIZE]`: a qcow2 overlay whose
/// unwritten blocks read from `backing` (`use_backing_file`). Without a size it inherits the
/// backing image's.
pub fn create_backed_args(
    path: &Path,
    backing: &Path,
    backing_format: &str,
    size_bytes: Option<u64>,
    extra: &[String],
) -> Vec<String> {
    let mut a = vec![
        "create".into(),
        "-f".into(),
        "qcow2".into(),
        "-b".into(),
        os(backing),
        "-F".into(),
        backing_format.into(),
    ];
    a.extend_from_slice(extra);
    a.push(os(path));
    a.extend(size_bytes.map(|s| s.to_string()));
    a
}

/// `resize -f FMT [EXTRA…] PATH SIZE` (size in bytes).
pub fn resize_args(
    format: DiskFormat,
    path: &Path,
    size_bytes: u64,
    extra: &[String],
) -> Vec<String> {
    let mut a = vec!["resize".into(), "-f".into(), format.as_str().into()];
    a.extend_from_slice(extra);
    a.extend([os(path), size_bytes.to_string()]);
    a
}

/// `convert [-c] [EXTRA…] -O FMT SRC DST` (`-c`: qcow2 internal compression).
pub fn convert_args(
    format: DiskFormat,
    compress: bool,
    src: &Path,
    dst: &Path,
    extra: &[String],
) -> Vec<String> {
    let mut a = vec!["convert".to_owned()];
    if compress {
        a.push("-c".into());
    }
    a.extend_from_slice(extra);
    a.extend(["-O".into(), format.as_str().into(), os(src), os(dst)]);
    a
}

/// `info --output=json PATH`.
pub fn info_args(path: &Path) -> Vec<String> {
    vec!["info".into(), "--output=json".into(), os(path)]
}

/// Parses `qemu-img info --output=json` output.
pub fn parse_info(json: &str) -> Result<ImageInfo, serde_json::Error> {
    serde_json::from_str(json)
}

/// Creates an empty image of `size_bytes` at `path`.
pub async fn create(
    format: DiskFormat,
    path: &Path,
    size_bytes: u64,
    extra: &[String],
) -> Result<(), Error> {
    let out = run(
        QEMU_IMG,
        "create",
        &create_args(format, path, size_bytes, extra),
        path,
        QUICK_TIMEOUT,
    )
    .await?;
    if !out.status.success() {
        return Err(Error::Create {
            path: path.to_owned(),
            stderr: stderr_of(&out),
        });
    }
    Ok(())
}

/// Creates a qcow2 overlay at `path` over `backing` (whose format is `backing_format`).
pub async fn create_backed(
    path: &Path,
    backing: &Path,
    backing_format: &str,
    size_bytes: Option<u64>,
    extra: &[String],
) -> Result<(), Error> {
    let args = create_backed_args(path, backing, backing_format, size_bytes, extra);
    let out = run(QEMU_IMG, "create", &args, path, QUICK_TIMEOUT).await?;
    if !out.status.success() {
        return Err(Error::Create {
            path: path.to_owned(),
            stderr: stderr_of(&out),
        });
    }
    Ok(())
}

/// Grows (or, if qemu-img agrees, sets) the virtual size of the image at `path`.
pub async fn resize(
    format: DiskFormat,
    path: &Path,
    size_bytes: u64,
    extra: &[String],
) -> Result<(), Error> {
    let args = resize_args(format, path, size_bytes, extra);
    let out = run(QEMU_IMG, "resize", &args, path, QUICK_TIMEOUT).await?;
    if !out.status.success() {
        return Err(Error::Resize {
            path: path.to_owned(),
            stderr: stderr_of(&out),
        });
    }
    Ok(())
}

/// Converts `src` into `dst` (they may be the same file): writes `<dst>.convert`, then renames
/// it over `dst`, so `dst` is never half-written. The temporary file is removed when the
/// conversion fails (a full disk, an I/O error) or is dropped half-way (Ctrl-C).
pub async fn convert(
    format: DiskFormat,
    compress: bool,
    src: &Path,
    dst: &Path,
    extra: &[String],
) -> Result<(), Error> {
    let mut tmp = OsString::from(dst.as_os_str());
    tmp.push(".convert");
    let tmp = tempfile::TempPath::try_from_path(tmp).map_err(|source| Error::Run {
        path: dst.to_owned(),
        source,
    })?;
    let args = convert_args(format, compress, src, &tmp, extra);
    let out = run(QEMU_IMG, "convert", &args, src, CONVERT_TIMEOUT).await?;
    if !out.status.success() {
        return Err(Error::Convert {
            src: src.to_owned(),
            temp: tmp.to_path_buf(),
            dst: dst.to_owned(),
            stderr: stderr_of(&out),
        });
    }
    let from = tmp.to_path_buf();
    tmp.persist(dst).map_err(|e| Error::Rename {
        from,
        to: dst.to_owned(),
        source: e.error,
    })
}

/// Copies the standalone image `src` to `dst` byte for byte (`copy_file_range`, so the kernel
/// copies, or clones on a filesystem with reflinks), through `<dst>.copy` renamed when complete
/// (removed if the copy fails). For a qcow2 without a backing file this is the same image
/// `convert` would give, without decoding and encoding every cluster.
pub async fn copy(src: &Path, dst: &Path) -> Result<(), Error> {
    let mut tmp = OsString::from(dst.as_os_str());
    tmp.push(".copy");
    let tmp = tempfile::TempPath::try_from_path(tmp).map_err(|source| Error::Run {
        path: dst.to_owned(),
        source,
    })?;
    let (from, to) = (src.to_owned(), tmp.to_path_buf());
    tokio::task::spawn_blocking(move || std::fs::copy(&from, &to))
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
        .map_err(|source| Error::Copy {
            src: src.to_owned(),
            dst: dst.to_owned(),
            source,
        })?;
    let from = tmp.to_path_buf();
    tmp.persist(dst).map_err(|e| Error::Rename {
        from,
        to: dst.to_owned(),
        source: e.error,
    })
}

/// Reads the format and sizes of the image at `path`.
pub async fn info(path: &Path) -> Result<ImageInfo, Error> {
    let out = run(QEMU_IMG, "info", &info_args(path), path, QUICK_TIMEOUT).await?;
    if !out.status.success() {
        return Err(Error::Info {
            path: path.to_owned(),
            stderr: stderr_of(&out),
        });
    }
    parse_info(&String::from_utf8_lossy(&out.stdout)).map_err(|source| Error::ParseInfo {
        path: path.to_owned(),
        source,
    })
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Runs `program args…` (`program` is `qemu-img` but for tests) with a deadline (killed when it passes); `path` names the image in
/// errors.
async fn run(
    program: &str,
    action: &'static str,
    args: &[String],
    path: &Path,
    timeout: Duration,
) -> Result<std::process::Output, Error> {
    tracing::debug!(?args, "running qemu-img");
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| match source.kind() {
            ErrorKind::NotFound => Error::NotFound,
            _ => Error::Run {
                path: path.to_owned(),
                source,
            },
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|source| Error::Run {
            path: path.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            action,
            path: path.to_owned(),
            timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_table() {
        let (a, b) = (Path::new("/o/disk"), Path::new("/o/disk.convert"));
        let x = ["-o".to_owned(), "preallocation=metadata".to_owned()];
        #[rustfmt::skip]
        let rows: &[(&str, Vec<String>, &[&str])] = &[
            ("create qcow2, size in bytes", create_args(DiskFormat::Qcow2, a, 1 << 30, &[]),
                &["create", "-f", "qcow2", "/o/disk", "1073741824"]),
            ("create raw", create_args(DiskFormat::Raw, a, 512, &[]),
                &["create", "-f", "raw", "/o/disk", "512"]),
            ("convert without compression", convert_args(DiskFormat::Qcow2, false, a, b, &[]),
                &["convert", "-O", "qcow2", "/o/disk", "/o/disk.convert"]),
            ("convert with compression: -c before -O", convert_args(DiskFormat::Qcow2, true, a, b, &[]),
                &["convert", "-c", "-O", "qcow2", "/o/disk", "/o/disk.convert"]),
            ("overlay over a disk image, with a size", create_backed_args(a, Path::new("/c/img"), "raw", Some(1 << 30), &[]),
                &["create", "-f", "qcow2", "-b", "/c/img", "-F", "raw", "/o/disk", "1073741824"]),
            ("overlay without a size inherits the backing size", create_backed_args(a, Path::new("/c/img"), "qcow2", None, &[]),
                &["create", "-f", "qcow2", "-b", "/c/img", "-F", "qcow2", "/o/disk"]),
            ("resize to bytes", resize_args(DiskFormat::Qcow2, a, 2 << 30, &[]),
                &["resize", "-f", "qcow2", "/o/disk", "2147483648"]),
            ("qemu_img_args create: after -f, before the path", create_args(DiskFormat::Qcow2, a, 512, &x),
                &["create", "-f", "qcow2", "-o", "preallocation=metadata", "/o/disk", "512"]),
            ("qemu_img_args create on an overlay: after -F", create_backed_args(a, Path::new("/c/img"), "raw", None, &x),
                &["create", "-f", "qcow2", "-b", "/c/img", "-F", "raw", "-o", "preallocation=metadata", "/o/disk"]),
            ("qemu_img_args convert: after -c, before -O", convert_args(DiskFormat::Qcow2, true, a, b, &x),
                &["convert", "-c", "-o", "preallocation=metadata", "-O", "qcow2", "/o/disk", "/o/disk.convert"]),
            ("qemu_img_args resize: after -f, before the path", resize_args(DiskFormat::Raw, a, 512, &x),
                &["resize", "-f", "raw", "-o", "preallocation=metadata", "/o/disk", "512"]),
            ("info as JSON", info_args(a),
                &["info", "--output=json", "/o/disk"]),
        ];
        for (reason, got, expected) in rows {
            assert_eq!(got, expected, "{reason}");
        }
    }

    #[test]
    fn parse_info_reads_top_level_sizes() {
        let json = r#"{"virtual-size": 1073741824, "filename": "d", "format": "qcow2",
            "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {}}}"#;
        let info = parse_info(json).expect("parse");
        assert_eq!(
            info,
            ImageInfo {
                format: "qcow2".into(),
                virtual_size: 1 << 30,
                actual_size: Some(200704),
                backing_filename: None,
            }
        );
        let no_actual = parse_info(r#"{"virtual-size": 5, "format": "raw"}"#).expect("parse");
        assert_eq!(no_actual.actual_size, None);
        assert!(
            parse_info(r#"{"format": "raw"}"#).is_err(),
            "virtual-size is required"
        );
    }

    #[tokio::test]
    async fn create_convert_info_with_real_qemu_img() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("disk");
        create(DiskFormat::Qcow2, &disk, 64 << 20, &[])
            .await
            .expect("create (needs qemu-utils)");
        let info = info(&disk).await.expect("info");
        assert_eq!(
            (info.format.as_str(), info.virtual_size),
            ("qcow2", 64 << 20)
        );

        convert(DiskFormat::Qcow2, true, &disk, &disk, &[])
            .await
            .expect("convert in place");
        assert!(
            !dir.path().join("disk.convert").exists(),
            "temp file renamed away"
        );
        assert_eq!(
            super::info(&disk).await.expect("info").virtual_size,
            64 << 20
        );

        let copied = dir.path().join("disk.copy.qcow2");
        copy(&disk, &copied).await.expect("copy");
        assert_eq!(
            std::fs::read(&copied).unwrap(),
            std::fs::read(&disk).unwrap()
        );
        let err = copy(&dir.path().join("absent"), &copied)
            .await
            .expect_err("no source");
        assert!(err.to_string().contains("absent"), "{err}");

        let raw = dir.path().join("disk.raw");
        convert(DiskFormat::Raw, false, &disk, &raw, &[])
            .await
            .expect("convert to raw");
        assert_eq!(super::info(&raw).await.expect("info").format, "raw");
    }

    #[tokio::test]
    async fn overlay_and_resize_with_real_qemu_img() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base.raw");
        create(DiskFormat::Raw, &base, 16 << 20, &[])
            .await
            .expect("base");
        let top = dir.path().join("top");
        create_backed(&top, &base, "raw", None, &[])
            .await
            .expect("overlay");
        assert_eq!(info(&top).await.expect("info").virtual_size, 16 << 20);
        resize(DiskFormat::Qcow2, &top, 32 << 20, &[])
            .await
            .expect("resize");
        assert_eq!(info(&top).await.expect("info").virtual_size, 32 << 20);
        let err = resize(DiskFormat::Qcow2, &top, 1 << 20, &[])
            .await
            .expect_err("shrinking needs --shrink");
        assert!(matches!(err, Error::Resize { .. }), "{err}");
    }

    #[tokio::test]
    async fn errors_name_the_path_and_carry_stderr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.qcow2");
        let err = info(&missing).await.expect_err("no such image");
        let msg = err.to_string();
        assert!(matches!(err, Error::Info { .. }), "{msg}");
        assert!(
            msg.contains("nope.qcow2") && msg.contains("No such file"),
            "{msg}"
        );

        let bad_dir = dir.path().join("no-dir").join("d");
        let err = create(DiskFormat::Raw, &bad_dir, 1024, &[])
            .await
            .expect_err("no parent dir");
        assert!(err.to_string().contains("no-dir"), "{err}");
    }

    #[tokio::test]
    async fn missing_qemu_img_names_the_package() {
        let err = run(
            "kiln-no-such-qemu-img",
            "info",
            &[],
            Path::new("d"),
            QUICK_TIMEOUT,
        )
        .await
        .expect_err("missing binary");
        assert!(matches!(err, Error::NotFound), "{err}");
        assert!(err.to_string().contains("qemu-utils"), "{err}");
    }
}
