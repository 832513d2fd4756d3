//! The `checksum` post-processor: writes checksum files for the artifact's files, in the format
//! `sha256sum -c` (and Packer's) reads: `<lowercase hex>\t<file name>` per line. Lines are
//! appended, as Packer does, so reruns accumulate.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;
use tokio_util::sync::CancellationToken;

/// A hash `checksum_types` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumType {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumType {
    /// Every type, by its template name.
    pub const ALL: [(&'static str, ChecksumType); 6] = [
        ("md5", ChecksumType::Md5),
        ("sha1", ChecksumType::Sha1),
        ("sha224", ChecksumType::Sha224),
        ("sha256", ChecksumType::Sha256),
        ("sha384", ChecksumType::Sha384),
        ("sha512", ChecksumType::Sha512),
    ];

    /// Parses a template name (`md5`, `sha256`, …).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A validated `post-processor "checksum"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `checksum_types` (default `["md5"]`).
    pub checksum_types: Vec<ChecksumType>,
    /// `output`, a template (default
    /// `packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum`).
    pub output: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            checksum_types: vec![ChecksumType::Md5],
            output: "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum".into(),
        }
    }
}

/// Why checksum files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An artifact file could not be read.
    #[error("Cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The existing checksum file could not be read, or its directory made.
    #[error("Cannot prepare `{}`", path.display())]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the checksum file failed (it is unchanged, its temporary file removed).
    #[error("Cannot write the checksum file")]
    Write(#[source] crate::archive::Error),
}

/// The checksum file name for one type: `{{.BuildName}}`, `{{.BuilderType}}` and
/// `{{.ChecksumType}}` replaced (spaces inside the braces allowed).
pub fn render_output(
    template: &str,
    build_name: &str,
    builder_type: &str,
    t: ChecksumType,
) -> String {
    crate::postprocessor::render_vars(
        template,
        &[
            ("BuildName", build_name),
            ("BuilderType", builder_type),
            ("ChecksumType", t.name()),
        ],
    )
}

/// Hashes `path` with `t`, streaming it, and returns the lowercase hex digest.
pub fn hash_file(path: &Path, t: ChecksumType) -> Result<String, Error> {
    fn run<D: Digest>(path: &Path) -> Result<String, Error> {
        let read_err = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(read_err)?;
        let mut h = D::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
    match t {
        ChecksumType::Md5 => run::<md5::Md5>(path),
        ChecksumType::Sha1 => run::<sha1::Sha1>(path),
        ChecksumType::Sha224 => run::<sha2::Sha224>(path),
        ChecksumType::Sha256 => run::<sha2::Sha256>(path),
        ChecksumType::Sha384 => run::<sha2::Sha384>(path),
        ChecksumType::Sha512 => run::<sha2::Sha512>(path),
    }
}

/// Appends one line per file to one checksum file per type; returns the checksum files.
/// Blocking: run it on a blocking thread.
pub fn write(
    config: &Config,
    files: &[PathBuf],
    build_name: &str,
    builder_type: &str,
) -> Result<Vec<PathBuf>, Error> {
    let mut outputs = Vec::new();
    for &t in &config.checksum_types {
        let out = PathBuf::from(render_output(&config.output, build_name, builder_type, t));
        let prepare_err = |source| Error::Prepare {
            path: out.clone(),
            source,
        };
        // Hash everything first, so a failure leaves the checksum file untouched.
        let mut text = String::new();
        for f in files {
            let name = f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            text.push_str(&format!("{}\t{name}\n", hash_file(f, t)?));
        }
        if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(prepare_err)?;
        }
        // Appended by writing the whole file anew beside it and renaming it over the old one, so
        // a full disk never leaves a half-written line. Small: nothing to cancel.
        let old = match std::fs::read(&out) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(prepare_err(e)),
        };
        crate::archive::write_atomically(&out, &CancellationToken::new(), |w| {
            w.write_all(&old)?;
            w.write_all(text.as_bytes())
        })
        .map_err(Error::Write)?;
        outputs.push(out);
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let table = [
            (ChecksumType::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (
                ChecksumType::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                ChecksumType::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (t, want) in table {
            assert_eq!(hash_file(&p, t).unwrap(), want, "{}", t.name());
        }
        assert_eq!(hash_file(&p, ChecksumType::Sha512).unwrap().len(), 128);
        assert_eq!(hash_file(&p, ChecksumType::Sha384).unwrap().len(), 96);
        assert_eq!(hash_file(&p, ChecksumType::Sha224).unwrap().len(), 56);
    }

    #[test]
    fn output_names() {
        let d = Config::default();
        assert_eq!(
            render_output(&d.output, "testos", "qemu", ChecksumType::Md5),
            "packer_testos_qemu_md5.checksum"
        );
        assert_eq!(
            render_output(
                "out/{{ .BuildName }}.{{.ChecksumType}}",
                "x",
                "qemu",
                ChecksumType::Sha256
            ),
            "out/x.sha256"
        );
    }

    #[test]
    fn appends_lines_that_sha256sum_reads() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.qcow2");
        std::fs::write(&disk, b"abc").unwrap();
        let cfg = Config {
            checksum_types: vec![ChecksumType::Sha256],
            output: format!("{}/{{{{.BuildName}}}}.sha256", dir.path().display()),
        };
        let outs = write(&cfg, std::slice::from_ref(&disk), "x", "qemu").unwrap();
        write(&cfg, &[disk], "x", "qemu").unwrap();
        assert_eq!(outs, [dir.path().join("x.sha256")]);
        let line = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\tdisk.qcow2\n";
        assert_eq!(
            std::fs::read_to_string(&outs[0]).unwrap(),
            format!("{line}{line}")
        );
        // GNU sha256sum accepts the tab-separated form.
        let st = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(&outs[0])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stdout)
        );
    }

    #[test]
    fn missing_file_names_its_path_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            checksum_types: vec![ChecksumType::Md5],
            output: format!("{}/sums", dir.path().display()),
        };
        let err = write(&cfg, &[dir.path().join("nope")], "x", "qemu").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(!dir.path().join("sums").exists());
    }
}
