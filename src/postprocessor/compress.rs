//! The `compress` post-processor: packs the input artifact's files into one archive whose format
//! comes from the output name (`.tar.gz`, `.tgz`, `.gz`, `.tar.zst`, `.zst`, `.tar`, `.zip`), as
//! Packer's does; anything else, including no extension, is a `.tar.gz`. gzip and zstd use every
//! core ([`crate::archive`]), and archives are reproducible (fixed order, owners and times).

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::archive::{self, Codec, Encoder, Member};

/// A validated `post-processor "compress"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `output` template (default `packer_{{.BuildName}}_{{.BuilderType}}`, a `.tar.gz`).
    pub output: String,
    /// `format`, when set; otherwise taken from `output`.
    pub format: Option<Format>,
    /// `compression_level`: gzip/zip 1–9 (default 6; Packer's values above 9 mean 9, 0 and
    /// below the default), zstd 1–19 (default 3).
    pub compression_level: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output: "packer_{{.BuildName}}_{{.BuilderType}}".into(),
            format: None,
            compression_level: None,
        }
    }
}

/// The archive formats kiln writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    TarZst,
    /// One file, gzip'd.
    Gz,
    /// One file, zstd'd.
    Zst,
    Zip,
}

/// Extensions Packer's compress knows and kiln does not write.
const UNSUPPORTED: [&str; 5] = ["lz4", "xz", "bgzf", "bz2", "bzip2"];

impl Format {
    /// Every format, with the names `format` accepts.
    pub const NAMES: [(&'static str, Format); 7] = [
        ("tar", Format::Tar),
        ("tar.gz", Format::TarGz),
        ("tgz", Format::TarGz),
        ("tar.zst", Format::TarZst),
        ("gz", Format::Gz),
        ("zst", Format::Zst),
        ("zip", Format::Zip),
    ];

    /// The format named by `name` (a `format` value or the output's extension).
    pub fn parse(name: &str) -> Option<Format> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// The format an output name implies: its last two extensions, then its last one; a name
    /// with an extension kiln cannot write is an error (`Err(extension)`); no known extension
    /// means `.tar.gz`, as in Packer.
    pub fn from_output(output: &str) -> Result<Format, String> {
        let name = output.rsplit('/').next().unwrap_or(output);
        let parts: Vec<&str> = name.split('.').skip(1).collect();
        if let [.., a, b] = parts.as_slice()
            && let Some(f) = Self::parse(&format!("{a}.{b}"))
        {
            return Ok(f);
        }
        match parts.last() {
            Some(ext) if UNSUPPORTED.contains(ext) => Err((*ext).to_owned()),
            Some(ext) => Ok(Self::parse(ext).unwrap_or(Format::TarGz)),
            None => Ok(Format::TarGz),
        }
    }

    fn is_single_file(self) -> bool {
        matches!(self, Format::Gz | Format::Zst)
    }
}

/// Why the archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `.gz`/`.zst` hold one file; the artifact has several.
    #[error(
        "Can only compress one file into `{output}`, but the input has {count}: use a .tar.gz, .tar.zst or .zip output"
    )]
    SeveralInputs { output: String, count: usize },
    /// The output name has an extension kiln cannot write.
    #[error(
        "kiln cannot write `.{extension}` archives (it writes .tar.gz, .gz, .tar.zst, .zst, .tar and .zip)"
    )]
    UnsupportedFormat { extension: String },
    /// Two input files have the same base name.
    #[error("Two input files are named `{name}`: `{}` and `{}`", first.display(), second.display())]
    NameClash {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// An input file could not be opened.
    #[error("Cannot read `{}`", path.display())]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the archive failed.
    #[error("Cannot write the archive")]
    WriteArchive(#[source] archive::Error),
}

/// The output name: `{{.BuildName}}` and `{{.BuilderType}}` expanded.
pub fn render_output_name(config: &Config, build_name: &str, builder_type: &str) -> String {
    super::render_vars(
        &config.output,
        &[("BuildName", build_name), ("BuilderType", builder_type)],
    )
}

/// The format used for `output` (the rendered output name).
pub fn format_of(config: &Config, output: &str) -> Result<Format, Error> {
    match config.format {
        Some(f) => Ok(f),
        None => {
            Format::from_output(output).map_err(|extension| Error::UnsupportedFormat { extension })
        }
    }
}

/// Writes `inputs` into the archive `output` (temporary name, renamed when complete).
/// `progress` gets the running total of input bytes read; `cancel` stops the writing (the
/// temporary file is removed). Synchronous: run it off the async threads.
pub fn write(
    config: &Config,
    inputs: &[PathBuf],
    output: &Path,
    progress: &mut dyn FnMut(u64),
    cancel: &CancellationToken,
) -> Result<u64, Error> {
    let format = format_of(config, &output.to_string_lossy())?;
    if format.is_single_file() && inputs.len() != 1 {
        return Err(Error::SeveralInputs {
            output: output.display().to_string(),
            count: inputs.len(),
        });
    }
    // Open every input first: a missing one leaves no file behind.
    let mut members: Vec<Member<'_>> = Vec::with_capacity(inputs.len());
    let mut seen: Vec<(String, &PathBuf)> = Vec::new();
    for path in inputs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(Error::NameClash {
                name,
                first: (*first).clone(),
                second: path.clone(),
            });
        }
        seen.push((name.clone(), path));
        let member = Member::file(name, path).map_err(|source| Error::ReadInput {
            path: path.clone(),
            source,
        })?;
        members.push(member);
    }
    let gzip_level = gzip_level(config.compression_level);
    let codec = match format {
        Format::Tar | Format::Zip => Codec::None,
        Format::TarGz | Format::Gz => Codec::Gzip { level: gzip_level },
        Format::TarZst | Format::Zst => Codec::Zstd {
            level: config
                .compression_level
                .map_or(3, |l| l.clamp(1, 19) as i32),
        },
    };
    tracing::info!(output = %output.display(), ?format, "compressing artifact");
    archive::write_atomically(output, cancel, |sink| match format {
        Format::Tar | Format::TarGz | Format::TarZst => {
            let enc = Encoder::new(codec, sink)?;
            archive::write_tar(enc, members, progress)?.finish()?;
            Ok(())
        }
        Format::Gz | Format::Zst => {
            let mut enc = Encoder::new(codec, sink)?;
            for mut m in members {
                copy_counting(&mut m.data, &mut enc, progress)?;
            }
            enc.finish()?;
            Ok(())
        }
        Format::Zip => write_zip(sink, members, gzip_level, progress),
    })
    .map_err(Error::WriteArchive)
}

/// Packer's level rules for gzip and zip: above 9 means 9, 0 and below mean the default 6.
fn gzip_level(level: Option<i64>) -> u32 {
    match level {
        Some(l) if l >= 9 => 9,
        Some(l) if l >= 1 => l as u32,
        _ => 6,
    }
}

fn copy_counting(
    from: &mut dyn std::io::Read,
    to: &mut dyn std::io::Write,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(done);
        }
        to.write_all(&buf[..n])?;
        done += n as u64;
        progress(done);
    }
}

/// A zip of `members` (deflate, fixed 1980-01-01 times, 0644, zip64 when needed).
fn write_zip<W: std::io::Write + std::io::Seek>(
    sink: W,
    members: Vec<Member<'_>>,
    level: u32,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(sink);
    let mut base = 0u64;
    for mut m in members {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(i64::from(level)))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644)
            .large_file(m.size >= u64::from(u32::MAX));
        zip.start_file(m.name.as_str(), options)
            .map_err(std::io::Error::other)?;
        let n = copy_counting(&mut m.data, &mut zip, &mut |n| progress(base + n))?;
        base += n;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn format_from_output_name() {
        let table = [
            ("box.tar.gz", Ok(Format::TarGz)),
            ("box.tgz", Ok(Format::TarGz)),
            ("out/disk.qcow2.gz", Ok(Format::Gz)),
            ("disk.tar.zst", Ok(Format::TarZst)),
            ("disk.qcow2.zst", Ok(Format::Zst)),
            ("a.zip", Ok(Format::Zip)),
            ("a.tar", Ok(Format::Tar)),
            ("packer_x_qemu", Ok(Format::TarGz)),
            ("v1.2/name.box", Ok(Format::TarGz)),
            ("disk.tar.xz", Err("xz".to_owned())),
            ("disk.lz4", Err("lz4".to_owned())),
        ];
        for (name, want) in table {
            assert_eq!(Format::from_output(name), want, "{name}");
        }
    }

    #[test]
    fn gzip_levels_follow_packer() {
        for (given, want) in [
            (None, 6),
            (Some(0), 6),
            (Some(-1), 6),
            (Some(1), 1),
            (Some(9), 9),
            (Some(12), 9),
        ] {
            assert_eq!(gzip_level(given), want, "{given:?}");
        }
    }

    fn inputs(dir: &Path) -> Vec<PathBuf> {
        let a = dir.join("disk.qcow2");
        let b = dir.join("notes.txt");
        std::fs::write(&a, vec![b'k'; 3 << 20]).unwrap();
        std::fs::write(&b, b"hello").unwrap();
        vec![a, b]
    }

    fn tar_members(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        tar::Archive::new(data)
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), v)
            })
            .collect()
    }

    /// [`write`] without progress or cancellation.
    fn write_plain(cfg: &Config, files: &[PathBuf], out: &Path) -> Result<u64, Error> {
        write(cfg, files, out, &mut |_| {}, &CancellationToken::new())
    }

    fn archive(dir: &Path, name: &str, files: &[PathBuf]) -> Vec<u8> {
        let out = dir.join(name);
        write_plain(&Config::default(), files, &out).unwrap();
        std::fs::read(&out).unwrap()
    }

    #[test]
    fn every_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let files = inputs(dir.path());
        let want = vec![
            ("disk.qcow2".to_owned(), vec![b'k'; 3 << 20]),
            ("notes.txt".to_owned(), b"hello".to_vec()),
        ];

        let tgz = archive(dir.path(), "a.tar.gz", &files);
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&tgz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar_members(&tar), want);
        assert_eq!(tar_members(&archive(dir.path(), "a.tar", &files)), want);
        let zst = archive(dir.path(), "a.tar.zst", &files);
        assert_eq!(tar_members(&zstd::decode_all(&zst[..]).unwrap()), want);

        let zip_bytes = archive(dir.path(), "a.zip", &files);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
        assert_eq!(zip.len(), 2);
        let mut notes = String::new();
        zip.by_name("notes.txt")
            .unwrap()
            .read_to_string(&mut notes)
            .unwrap();
        assert_eq!(notes, "hello");

        let one = &files[..1];
        let gz = archive(dir.path(), "d.qcow2.gz", one);
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, want[0].1);
        let zst = archive(dir.path(), "d.qcow2.zst", one);
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), want[0].1);
    }

    #[test]
    fn same_inputs_give_identical_archives() {
        let dir = tempfile::tempdir().unwrap();
        let files = inputs(dir.path());
        for ext in ["tar.gz", "tar.zst", "zip"] {
            let a = archive(dir.path(), &format!("a.{ext}"), &files);
            let b = archive(dir.path(), &format!("b.{ext}"), &files);
            assert_eq!(a, b, "{ext}");
        }
    }

    #[test]
    fn refusals_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = inputs(dir.path());
        let out = dir.path().join("two.gz");
        let err = write_plain(&Config::default(), &files, &out).unwrap_err();
        assert!(
            matches!(err, Error::SeveralInputs { count: 2, .. }),
            "{err:?}"
        );
        let out = dir.path().join("x.tar.xz");
        let err = write_plain(&Config::default(), &files, &out).unwrap_err();
        assert!(err.to_string().contains(".xz"), "{err}");
        let missing = vec![dir.path().join("absent.qcow2")];
        let out = dir.path().join("m.tar.gz");
        let err = write_plain(&Config::default(), &missing, &out).unwrap_err();
        assert!(err.to_string().contains("absent.qcow2"), "{err}");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("notes.txt"), b"other").unwrap();
        let clash = vec![files[1].clone(), sub.join("notes.txt")];
        let err = write_plain(&Config::default(), &clash, &out).unwrap_err();
        assert!(matches!(err, Error::NameClash { .. }), "{err:?}");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["disk.qcow2", "notes.txt", "sub"]);
    }
}
