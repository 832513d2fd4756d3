//! The `vagrant` post-processor: packs the disk into a libvirt `.box`.
//!
//! The box is a (gzip'd) tar of `metadata.json`, `Vagrantfile` and `box.img`, in the v1 libvirt
//! layout that every vagrant-libvirt version reads. The tar is deterministic (fixed order,
//! owners, modes and times), so the same disk always gives the same box, and it is written under
//! a temporary name and renamed, so a failed run never leaves a truncated box behind.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// A validated `post-processor "vagrant"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `output`, a template (default `packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box`),
    /// relative to the working directory.
    pub output: String,
    /// `compression_level` 0–9 (default 6; 0 = plain tar).
    pub compression_level: u32,
    /// `keep_input_artifact` (kiln's default: true — Packer deleting the qcow2 is a known pain).
    pub keep_input_artifact: bool,
    /// `architecture` of the guest (default `amd64`).
    pub architecture: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output: "packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box".into(),
            compression_level: 6,
            keep_input_artifact: true,
            architecture: "amd64".into(),
        }
    }
}

/// The provider every box kiln writes is for.
const PROVIDER: &str = "libvirt";
/// Modification time of every tar member (2000-01-01T00:00:00Z): fixed for reproducible boxes,
/// and not 0, which GNU tar reports as "implausibly old".
const MTIME: u64 = 946_684_800;
/// First bytes of every qcow2 image.
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// Why the box could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The disk is not qcow2.
    #[error(
        "Cannot box a `{format}` disk: vagrant-libvirt only accepts qcow2 (set `format = \"qcow2\"`)"
    )]
    UnsupportedFormat { format: String },
    /// The disk file does not start with the qcow2 signature.
    #[error("`{path}` is not a qcow2 image")]
    NotQcow2 { path: PathBuf },
    /// `compression_level` is above 9.
    #[error("Compression level {level} is out of range (0–9)")]
    CompressionLevel { level: u32 },
    /// The disk image could not be opened or inspected.
    #[error("Cannot read disk `{path}`")]
    ReadDisk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The temporary box file could not be created next to `output`.
    #[error("Cannot create a temporary file in `{dir}`")]
    CreateTemp {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the archive failed (reading the disk or writing the box).
    #[error("Cannot write box `{path}` from `{disk}`")]
    Write {
        path: PathBuf,
        disk: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the finished box to `output` failed.
    #[error("Cannot move the finished box to `{path}`")]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The disk to box, as the builder left it.
#[derive(Debug, Clone, Copy)]
pub struct DiskInput<'a> {
    pub path: &'a Path,
    /// The guest-visible disk size in bytes (`qemu-img info` `virtual-size`).
    pub virtual_size: u64,
    /// `qcow2` or `raw`; only qcow2 can be boxed.
    pub format: &'a str,
    /// Whether the build ran under KVM; picks the box's default libvirt driver.
    pub accelerator_is_kvm: bool,
}

/// What [`write_box`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxInfo {
    pub path: PathBuf,
    /// Size of the box file in bytes.
    pub size: u64,
    /// `virtual_size` written to `metadata.json`, in whole GiB (rounded up).
    pub virtual_size_gb: u64,
}

/// `metadata.json` (libvirt v1), fields in the order they are written.
#[derive(serde::Serialize)]
struct Metadata<'a> {
    provider: &'a str,
    format: &'a str,
    virtual_size: u64,
    architecture: &'a str,
}

/// The box's `metadata.json`, newline-terminated.
fn metadata_json(virtual_size_gb: u64, architecture: &str) -> String {
    let meta = Metadata {
        provider: PROVIDER,
        format: "qcow2",
        virtual_size: virtual_size_gb,
        architecture,
    };
    let mut s = serde_json::to_string(&meta).expect("a struct of strings and integers serialises");
    s.push('\n');
    s
}

/// The box's `Vagrantfile`: provider defaults merged under the user's own Vagrantfile.
fn vagrantfile(accelerator_is_kvm: bool) -> String {
    let driver = if accelerator_is_kvm { "kvm" } else { "qemu" };
    format!(
        "# Defaults from the box, written by kiln's vagrant post-processor.\n\
         # `driver` follows the accelerator the box was built with.\n\
         \n\
         Vagrant.configure(\"2\") do |config|\n\
         \x20 config.vm.provider :libvirt do |libvirt|\n\
         \x20   libvirt.driver = \"{driver}\"\n\
         \x20 end\n\
         end\n"
    )
}

/// Expands `{{ .BuildName }}`, `{{ .Provider }}` and `{{ .Architecture }}` in `config.output`
/// (spaces inside the braces optional); anything else is left as written.
pub fn render_output_name(config: &Config, build_name: &str) -> String {
    super::render_vars(
        &config.output,
        &[
            ("BuildName", build_name),
            ("Provider", PROVIDER),
            ("Architecture", &config.architecture),
        ],
    )
}

/// Writes the box to `output` (temp name in the same dir, renamed when complete).
///
/// Synchronous and long (it reads the whole disk): run it in `spawn_blocking`.
pub fn write_box(config: &Config, disk: &DiskInput, output: &Path) -> Result<BoxInfo, Error> {
    if disk.format != "qcow2" {
        return Err(Error::UnsupportedFormat {
            format: disk.format.into(),
        });
    }
    let level = config.compression_level;
    if level > 9 {
        return Err(Error::CompressionLevel { level });
    }
    let read_err = |source| Error::ReadDisk {
        path: disk.path.to_path_buf(),
        source,
    };
    // Open and check the disk before creating anything, so a bad input leaves no file behind.
    let mut image = File::open(disk.path).map_err(read_err)?;
    let image_len = image.metadata().map_err(read_err)?.len();
    let mut magic = [0u8; 4];
    image.read_exact(&mut magic).map_err(read_err)?;
    if &magic != QCOW2_MAGIC {
        return Err(Error::NotQcow2 {
            path: disk.path.to_path_buf(),
        });
    }
    image.rewind().map_err(read_err)?;

    let virtual_size_gb = disk.virtual_size.div_ceil(1 << 30);
    let metadata = metadata_json(virtual_size_gb, &config.architecture);
    let vagrantfile = vagrantfile(disk.accelerator_is_kvm);

    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Deleted on drop: every early return below removes the partial box.
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-box-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| Error::CreateTemp {
            dir: dir.to_path_buf(),
            source,
        })?;
    let write_err = |source| Error::Write {
        path: output.to_path_buf(),
        disk: disk.path.to_path_buf(),
        source,
    };
    tracing::info!(box_path = %output.display(), disk = %disk.path.display(), level, "writing Vagrant box");
    let sink = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let mut metadata_bytes = metadata.as_bytes();
    let mut vagrantfile_bytes = vagrantfile.as_bytes();
    let mut image_bytes = (&image).take(image_len);
    let members: [Member<'_>; 3] = [
        ("metadata.json", metadata.len() as u64, &mut metadata_bytes),
        (
            "Vagrantfile",
            vagrantfile.len() as u64,
            &mut vagrantfile_bytes,
        ),
        ("box.img", image_len, &mut image_bytes),
    ];
    let sink = if level == 0 {
        write_tar(sink, members).map_err(write_err)?
    } else {
        let gz = GzEncoder::new(sink, Compression::new(level));
        write_tar(gz, members)
            .and_then(GzEncoder::finish)
            .map_err(write_err)?
    };
    sink.into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .sync_all()
        .map_err(write_err)?;
    let size = tmp.as_file().metadata().map_err(write_err)?.len();
    set_box_permissions(tmp.as_file()).map_err(write_err)?;
    tmp.persist(output).map_err(|e| Error::Persist {
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok(BoxInfo {
        path: output.to_path_buf(),
        size,
        virtual_size_gb,
    })
}

/// One tar member: name, exact size, and its content.
type Member<'r> = (&'r str, u64, &'r mut dyn Read);

/// Writes `members` in order as a deterministic GNU tar (root-owned, 0644, fixed mtime) and
/// returns the writer. Each reader must yield exactly the size given for it.
fn write_tar<'r, W: Write>(w: W, members: impl IntoIterator<Item = Member<'r>>) -> io::Result<W> {
    let mut tar = tar::Builder::new(w);
    for (name, size, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_path(name)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header.set_cksum();
        let mut counted = CountingReader { inner: data, n: 0 };
        tar.append(&header, &mut counted)?;
        if counted.n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "`{name}` changed size while being archived ({size} → {} bytes)",
                    counted.n
                ),
            ));
        }
    }
    tar.into_inner()
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A box is an ordinary shareable file (temp files start out 0600).
fn set_box_permissions(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::process::Command;

    /// A qcow2 made by the real `qemu-img` in `dir`, with the given virtual size.
    fn qcow2(dir: &Path, size: &str) -> PathBuf {
        let path = dir.join("disk.qcow2");
        let status = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg(size)
            .status()
            .expect("qemu-img is installed");
        assert!(status.success());
        path
    }

    fn disk(path: &Path, virtual_size: u64) -> DiskInput<'_> {
        DiskInput {
            path,
            virtual_size,
            format: "qcow2",
            accelerator_is_kvm: true,
        }
    }

    /// The members of a box, in archive order, with their contents and headers' metadata.
    fn read_box(path: &Path, gzip: bool) -> Vec<(String, Vec<u8>, u32, u64, u64)> {
        let file = File::open(path).unwrap();
        let reader: Box<dyn Read> = if gzip {
            Box::new(GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut archive = tar::Archive::new(reader);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                (
                    name,
                    data,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_a_libvirt_box() {
        let dir = tempfile::tempdir().unwrap();
        let img = qcow2(dir.path(), "1500M");
        let out = dir.path().join("test.box");
        let config = Config::default();
        let info = write_box(&config, &disk(&img, 1500 << 20), &out).unwrap();
        assert_eq!(info.virtual_size_gb, 2);
        assert_eq!(info.size, std::fs::metadata(&out).unwrap().len());

        let members = read_box(&out, true);
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["metadata.json", "Vagrantfile", "box.img"]);
        let meta: serde_json::Value = serde_json::from_slice(&members[0].1).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({"provider": "libvirt", "format": "qcow2", "virtual_size": 2, "architecture": "amd64"})
        );
        let vagrantfile = String::from_utf8(members[1].1.clone()).unwrap();
        assert!(vagrantfile.contains("config.vm.provider :libvirt do |libvirt|"));
        assert!(vagrantfile.contains("libvirt.driver = \"kvm\""));
        assert_eq!(members[2].1, std::fs::read(&img).unwrap());
        for (name, _, mode, uid, mtime) in &members {
            assert_eq!((*mode, *uid, *mtime), (0o644, 0, MTIME), "{name}");
        }
        assert_eq!(
            entries(dir.path()),
            ["disk.qcow2", "test.box"],
            "no temp file left"
        );
    }

    #[test]
    fn level_zero_writes_a_plain_tar() {
        let dir = tempfile::tempdir().unwrap();
        let img = qcow2(dir.path(), "10M");
        let out = dir.path().join("plain.box");
        let config = Config {
            compression_level: 0,
            ..Config::default()
        };
        let mut input = disk(&img, 10 << 20);
        input.accelerator_is_kvm = false;
        write_box(&config, &input, &out).unwrap();
        let members = read_box(&out, false);
        assert_eq!(members.len(), 3);
        assert!(String::from_utf8_lossy(&members[1].1).contains("libvirt.driver = \"qemu\""));
        assert_eq!(
            String::from_utf8_lossy(&members[0].1),
            "{\"provider\":\"libvirt\",\"format\":\"qcow2\",\"virtual_size\":1,\"architecture\":\"amd64\"}\n"
        );
    }

    #[test]
    fn same_input_gives_identical_boxes() {
        let dir = tempfile::tempdir().unwrap();
        let img = qcow2(dir.path(), "100M");
        let (a, b) = (dir.path().join("a.box"), dir.path().join("b.box"));
        write_box(&Config::default(), &disk(&img, 100 << 20), &a).unwrap();
        write_box(&Config::default(), &disk(&img, 100 << 20), &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn refuses_raw_disks() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.raw");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let out = dir.path().join("x.box");
        let mut input = disk(&img, 4096);
        input.format = "raw";
        let err = write_box(&Config::default(), &input, &out).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err:?}");
        assert!(err.to_string().contains("qcow2"));
        // Declared qcow2 but is not: caught by the signature check.
        input.format = "qcow2";
        let err = write_box(&Config::default(), &input, &out).unwrap_err();
        assert!(matches!(err, Error::NotQcow2 { .. }), "{err:?}");
        assert_eq!(entries(dir.path()), ["disk.raw"]);
    }

    #[test]
    fn missing_disk_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("absent.qcow2");
        let out = dir.path().join("x.box");
        let err = write_box(&Config::default(), &disk(&img, 1 << 30), &out).unwrap_err();
        assert!(err.to_string().contains("absent.qcow2"), "{err}");
        assert_eq!(entries(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn short_member_is_an_error() {
        // A member that yields fewer bytes than its header declares would corrupt the tar.
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let mut short: &[u8] = b"abc";
        let res = write_tar(tmp.as_file(), [("x", 10, &mut short as &mut dyn Read)]);
        assert_eq!(
            res.err().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }

    #[test]
    fn output_names() {
        let config = Config::default();
        let table = [
            (
                Config::default().output,
                "packer_debian_libvirt_amd64.box",
                "the default",
            ),
            (
                "{{.BuildName}}-{{ .Architecture }}.box".into(),
                "debian-amd64.box",
                "spacing varies",
            ),
            (
                "{{ .ArtifactId }}.box".into(),
                "{{ .ArtifactId }}.box",
                "unknown kept",
            ),
            (
                "out/{{ .Provider".into(),
                "out/{{ .Provider",
                "unclosed kept",
            ),
        ];
        for (output, want, reason) in table {
            let c = Config {
                output,
                ..config.clone()
            };
            assert_eq!(render_output_name(&c, "debian"), want, "{reason}");
        }
    }
}
