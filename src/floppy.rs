//! The floppy of `floppy_files` / `floppy_dirs` / `floppy_content` / `floppy_label`: a
//! 1.44 MB FAT12 image, laid out by Packer's rules and written with the `fatfs` crate (no
//! external tool, as Packer's own Go FAT writer).
//!
//! Packer's rules ([`plan`]): `floppy_files` entries (paths or glob patterns) land at the root
//! of the floppy by their base name, and a directory among them gives every file below it, also
//! at the root (flattened, "broken on purpose" in Packer's words); `floppy_dirs` entries keep
//! their tree under the directory's own name; `floppy_content` writes text at a path, creating
//! its directories. A later entry replaces an earlier one of the same name, so
//! `floppy_content` wins.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A 1.44 MB floppy: 80 cylinders × 2 heads × 18 sectors of 512 bytes.
pub const SECTORS: u32 = 2880;
const SECTOR: u64 = 512;
/// The label when the template gives none, as in Packer.
pub const DEFAULT_LABEL: &str = "packer";
/// A FAT volume label is at most 11 bytes.
pub const LABEL_MAX: usize = 11;

/// Why the floppy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `floppy_files` / `floppy_dirs` entry does not exist, or a pattern matches nothing.
    #[error("`{option}` entry `{}` does not exist (or matches nothing)", path.display())]
    Missing { option: &'static str, path: PathBuf },
    /// A glob pattern is malformed.
    #[error("`{option}` pattern `{pattern}` is invalid")]
    Pattern {
        option: &'static str,
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    /// A file or directory to copy could not be read.
    #[error("Cannot read `{}` for the floppy", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The image file could not be created or formatted.
    #[error("Cannot create the floppy image `{}`", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written on the floppy (a name FAT refuses, or no room
    /// left on the 1.44 MB).
    #[error("Cannot write `{name}` on the floppy")]
    Write {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// What goes on the floppy, in order: directories before what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory (`a/b`, `/`-separated, relative to the root).
    Dir(String),
    /// A file copied from the host.
    Copy { name: String, from: PathBuf },
    /// A file with this text (`floppy_content`).
    Text { name: String, text: String },
}

/// Whether Packer treats `s` as a glob pattern.
fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths an entry names: the pattern's matches (sorted), or the path itself.
fn expand(option: &'static str, path: &Path) -> Result<Vec<PathBuf>, Error> {
    let text = path.to_string_lossy();
    if !is_pattern(&text) {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(Error::Missing {
                option,
                path: path.to_owned(),
            });
        }
        return Ok(vec![path.to_owned()]);
    }
    let matches = glob::glob(&text).map_err(|source| Error::Pattern {
        option,
        pattern: text.clone().into_owned(),
        source,
    })?;
    let found: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
    if found.is_empty() {
        return Err(Error::Missing {
            option,
            path: path.to_owned(),
        });
    }
    Ok(found)
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

/// Every file below `dir`, sorted, with its path relative to `dir` (`/`-separated); with
/// `dirs`, the directories too (before what they hold).
fn walk(
    dir: &Path,
    rel: &str,
    dirs: bool,
    out: &mut Vec<(String, PathBuf, bool)>,
) -> Result<(), Error> {
    let read = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    children.sort_by_key(std::fs::DirEntry::file_name);
    for child in children {
        let path = child.path();
        let name = format!("{rel}{}", child.file_name().to_string_lossy());
        // Followed like Packer's `os.Stat`: a link to a directory is a directory.
        let is_dir = std::fs::metadata(&path)
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?
            .is_dir();
        if is_dir {
            if dirs {
                out.push((name.clone(), path.clone(), true));
            }
            walk(&path, &format!("{name}/"), dirs, out)?;
        } else {
            out.push((name, path, false));
        }
    }
    Ok(())
}

/// The floppy's entries for `files`, `dirs` and `content`, by Packer's rules (see the module).
pub fn plan(
    files: &[PathBuf],
    dirs: &[PathBuf],
    content: &BTreeMap<String, String>,
) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    for entry in files {
        for path in expand("floppy_files", entry)? {
            if path.is_dir() {
                let mut found = Vec::new();
                walk(&path, "", false, &mut found)?;
                out.extend(found.into_iter().map(|(_, from, _)| Entry::Copy {
                    name: base_name(&from),
                    from,
                }));
            } else {
                out.push(Entry::Copy {
                    name: base_name(&path),
                    from: path,
                });
            }
        }
    }
    for entry in dirs {
        for path in expand("floppy_dirs", entry)? {
            let top = base_name(&path);
            if !path.is_dir() {
                out.push(Entry::Copy {
                    name: top,
                    from: path,
                });
                continue;
            }
            out.push(Entry::Dir(top.clone()));
            let mut found = Vec::new();
            walk(&path, &format!("{top}/"), true, &mut found)?;
            out.extend(found.into_iter().map(|(name, from, is_dir)| {
                if is_dir {
                    Entry::Dir(name)
                } else {
                    Entry::Copy { name, from }
                }
            }));
        }
    }
    for (name, text) in content {
        let name = name.trim_start_matches('/').to_owned();
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            out.push(Entry::Dir(parts[..i].join("/")));
        }
        out.push(Entry::Text {
            name,
            text: text.clone(),
        });
    }
    Ok(out)
}

/// Files' times: the moment they are written, in UTC.
#[derive(Debug)]
struct UtcNow;

impl fatfs::TimeProvider for UtcNow {
    fn get_current_date(&self) -> fatfs::Date {
        self.get_current_date_time().date
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (y, m, d) = crate::types::civil_from_days((secs / 86_400) as i64);
        let day = secs % 86_400;
        // FAT dates start in 1980.
        let year = u16::try_from(y).unwrap_or(1980).max(1980);
        fatfs::DateTime {
            date: fatfs::Date {
                year,
                month: m as u16,
                day: d as u16,
            },
            time: fatfs::Time {
                hour: (day / 3600) as u16,
                min: (day / 60 % 60) as u16,
                sec: (day % 60) as u16,
                millis: 0,
            },
        }
    }
}

static UTC_NOW: UtcNow = UtcNow;

/// The 11 bytes of a FAT volume label: `label` padded with spaces (checked to fit when the
/// template was read; longer is cut).
fn label_bytes(label: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (o, b) in out.iter_mut().zip(label.bytes()) {
        *o = b;
    }
    out
}

/// Writes a formatted 1.44 MB FAT12 image with volume label `label` and `entries` to `out`.
pub fn write(out: &Path, label: &str, entries: &[Entry]) -> Result<(), Error> {
    let create = |source| Error::Create {
        path: out.to_owned(),
        source,
    };
    let mut image = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(create)?;
    image.set_len(u64::from(SECTORS) * SECTOR).map_err(create)?;
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat12)
        .total_sectors(SECTORS)
        .bytes_per_cluster(512)
        .max_root_dir_entries(224)
        .fats(2)
        .media(0xF0)
        .sectors_per_track(18)
        .heads(2)
        .drive_num(0)
        .volume_id(rand::random())
        .volume_label(label_bytes(label));
    fatfs::format_volume(&mut image, options).map_err(create)?;
    let fs = fatfs::FileSystem::new(image, fatfs::FsOptions::new().time_provider(&UTC_NOW))
        .map_err(create)?;
    let root = fs.root_dir();
    for entry in entries {
        let (name, data) = match entry {
            Entry::Dir(name) => {
                // An existing directory is opened, not an error.
                root.create_dir(name).map_err(|source| Error::Write {
                    name: name.clone(),
                    source,
                })?;
                continue;
            }
            Entry::Copy { name, from } => {
                let data = std::fs::read(from).map_err(|source| Error::Read {
                    path: from.clone(),
                    source,
                })?;
                (name, data)
            }
            Entry::Text { name, text } => (name, text.clone().into_bytes()),
        };
        let write = |source| Error::Write {
            name: name.clone(),
            source,
        };
        let mut file = root.create_file(name).map_err(write)?;
        file.truncate().map_err(write)?;
        file.write_all(&data).map_err(write)?;
        file.flush().map_err(write)?;
    }
    drop(root);
    fs.unmount().map_err(create)
}

/// Lays out and writes the floppy (see [`plan`] and [`write`]); blocking.
pub fn build(
    files: &[PathBuf],
    dirs: &[PathBuf],
    content: &BTreeMap<String, String>,
    label: &str,
    out: &Path,
) -> Result<Vec<Entry>, Error> {
    let entries = plan(files, dirs, content)?;
    write(out, label, &entries)?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Dir(n) => format!("{n}/"),
                Entry::Copy { name, .. } => name.clone(),
                Entry::Text { name, .. } => format!("{name}="),
            })
            .collect()
    }

    /// Issue 14: Packer's layout rules for each option.
    #[test]
    fn issue_14_floppy_layout_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        tree(
            d,
            &[
                ("a.xml", "a"),
                ("scripts/x.ps1", "x"),
                ("scripts/y.ps1", "y"),
                ("scripts/z.txt", "z"),
                ("drivers/net/n.inf", "n"),
                ("drivers/top.cat", "t"),
            ],
        );
        let content = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<PathBuf>, Vec<PathBuf>, BTreeMap<String, String>, &[&str])> = vec![
            ("a file goes to the root", vec![d.join("a.xml")], vec![], content(&[]), &["a.xml"]),
            ("a pattern in floppy_files: every match, at the root", vec![d.join("scripts/*.ps1")], vec![], content(&[]), &["x.ps1", "y.ps1"]),
            ("a directory in floppy_files is flattened", vec![d.join("drivers")], vec![], content(&[]), &["n.inf", "top.cat"]),
            ("floppy_dirs keeps the tree under the directory's name", vec![], vec![d.join("drivers")], content(&[]), &["drivers/", "drivers/net/", "drivers/net/n.inf", "drivers/top.cat"]),
            ("a pattern in floppy_dirs", vec![], vec![d.join("drive*")], content(&[]), &["drivers/", "drivers/net/", "drivers/net/n.inf", "drivers/top.cat"]),
            ("floppy_content makes its directories, after the files", vec![d.join("a.xml")], vec![], content(&[("a/b/c.txt", "c"), ("a.xml", "new")]),
                &["a.xml", "a.xml=", "a/", "a/b/", "a/b/c.txt="]),
        ];
        for (why, files, dirs, content, want) in rows {
            let got = plan(&files, &dirs, &content).expect(why);
            assert_eq!(names(&got), want, "{why}");
        }
        for (files, dirs) in [
            (vec![d.join("nope.xml")], vec![]),
            (vec![d.join("*.nope")], vec![]),
            (vec![], vec![d.join("nodir")]),
        ] {
            let err = plan(&files, &dirs, &BTreeMap::new()).expect_err("missing");
            assert!(matches!(err, Error::Missing { .. }), "{err}");
        }
    }

    /// Issue 14: the image is a 1.44 MB FAT12 volume with the label, read back with Debian's
    /// mtools (not with the crate that wrote it).
    #[test]
    fn issue_14_floppy_read_back_with_mtools() {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("src");
        tree(
            &src,
            &[
                ("Autounattend.xml", "<unattend/>\n"),
                ("drivers/viostor/viostor.inf", "inf\n"),
            ],
        );
        let out = dir.path().join("floppy.img");
        let content = BTreeMap::from([("etc/answer.cfg".to_owned(), "x=1\n".to_owned())]);
        build(
            &[src.join("Autounattend.xml")],
            &[src.join("drivers")],
            &content,
            "WINSETUP",
            &out,
        )
        .expect("floppy");
        assert_eq!(
            std::fs::metadata(&out).expect("image").len(),
            1_474_560,
            "1.44 MB"
        );
        let mtools = |args: &[&str]| {
            let o = std::process::Command::new(args[0])
                .args(&args[1..])
                .env("MTOOLS_SKIP_CHECK", "1")
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "`{}` needs mtools (scripts/test.sh installs it): {e}",
                        args[0]
                    )
                });
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let img = out.to_string_lossy().into_owned();
        let info = mtools(&["minfo", "-i", &img, "::"]);
        assert!(
            info.contains("FAT12") || info.contains("fat_bits=12") || info.contains("12 bit"),
            "{info}"
        );
        let listing = mtools(&["mdir", "-/", "-a", "-i", &img, "::"]);
        assert!(
            listing.contains("Volume in drive : is WINSETUP"),
            "{listing}"
        );
        assert!(
            listing.contains("Autounattend.xml"),
            "long names kept: {listing}"
        );
        assert_eq!(
            mtools(&["mtype", "-i", &img, "::/Autounattend.xml"]),
            "<unattend/>\n"
        );
        assert_eq!(
            mtools(&["mtype", "-i", &img, "::/drivers/viostor/viostor.inf"]),
            "inf\n"
        );
        assert_eq!(mtools(&["mtype", "-i", &img, "::/etc/answer.cfg"]), "x=1\n");
    }

    #[test]
    fn a_full_floppy_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big.bin");
        std::fs::write(&big, vec![7u8; 1_500_000]).expect("write");
        let err = build(
            &[big],
            &[],
            &BTreeMap::new(),
            "packer",
            &dir.path().join("f.img"),
        )
        .expect_err("does not fit");
        assert!(err.to_string().contains("big.bin"), "{err}");
    }
}
