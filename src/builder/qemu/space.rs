//! Disk space on the host: the free space of the filesystem holding a path, and what a build
//! may grow to on each filesystem it writes, so kiln can warn before QEMU starts. Disks are
//! sparse and rarely fill up, so a shortfall is a warning, never a refusal; if the guest does
//! fill the filesystem, QEMU pauses it and [`super::monitor`] stops the build at once.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::config::Config;

/// The nearest existing ancestor of `path` (`path` itself when it exists; `.` for a relative
/// path none of whose ancestors exists).
fn existing(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(Path::new("."))
}

/// Bytes an unprivileged process may still write on the filesystem holding `path` (or, when
/// `path` does not exist yet, its nearest existing ancestor).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(existing(path)).map_err(io::Error::from)?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// The filesystem (device id) holding `path` or its nearest existing ancestor.
fn filesystem(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(existing(path))?.dev())
}

/// One file the build may write, and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// What it is, for the message (`disk`, `compaction's copy`, `box`).
    pub what: &'static str,
    pub path: PathBuf,
    /// The most it may take.
    pub bytes: u64,
    pub when: When,
}

/// When a file takes its space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// From its creation to the end (the disks).
    Always,
    /// Only while compacting: the copy then replaces the disk it was made from.
    Compaction,
    /// From the post-processors on (boxes, archives).
    PostProcessing,
}

/// Everything a qemu build may write beside the cached ISO: the build disk (up to
/// `disk_size`), the extra disks, compaction's copy of the disk (unless compaction is
/// skipped), and the `post_outputs` the post-processors make from the disk (boxes, archives;
/// each at most the disk's size).
pub fn needs(
    config: &Config,
    disk: &Path,
    additional: &[PathBuf],
    post_outputs: &[PathBuf],
) -> Vec<Need> {
    let mut out = vec![Need {
        what: "disk",
        path: disk.to_owned(),
        bytes: config.disk_size,
        when: When::Always,
    }];
    for (path, &bytes) in additional.iter().zip(&config.disk_additional_size) {
        out.push(Need {
            what: "extra disk",
            path: path.clone(),
            bytes,
            when: When::Always,
        });
    }
    if !config.skip_compaction || config.disk_compression {
        let mut copy = disk.as_os_str().to_owned();
        copy.push(".convert");
        out.push(Need {
            what: "compaction's copy",
            path: copy.into(),
            bytes: config.disk_size,
            when: When::Compaction,
        });
    }
    for path in post_outputs {
        out.push(Need {
            what: "post-processor output",
            path: path.clone(),
            bytes: config.disk_size,
            when: When::PostProcessing,
        });
    }
    out
}

/// The most that `needs` (all on one filesystem) take at once: the disks, plus compaction's
/// copy or the post-processors' outputs, whichever is larger.
pub fn peak(needs: &[Need]) -> u64 {
    let sum = |when| -> u64 {
        needs
            .iter()
            .filter(|n| n.when == when)
            .map(|n| n.bytes)
            .fold(0, u64::saturating_add)
    };
    sum(When::Always).saturating_add(sum(When::Compaction).max(sum(When::PostProcessing)))
}

/// A filesystem on which the build may not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The first file of the build on that filesystem (names it in the message).
    pub at: PathBuf,
    pub free: u64,
    pub peak: u64,
    pub needs: Vec<Need>,
}

impl Shortfall {
    /// The warning: where, how much is free, how much the build may take and from what.
    pub fn message(&self) -> String {
        let parts: Vec<String> = self
            .needs
            .iter()
            .map(|n| {
                format!(
                    "{} `{}` up to {}",
                    n.what,
                    n.path.display(),
                    crate::ui::human_bytes(n.bytes)
                )
            })
            .collect();
        format!(
            "The filesystem holding `{}` has {} free, but this build may grow to {} there ({}). \
             Disks are sparse, so it may still fit; if the guest fills the filesystem, QEMU \
             pauses it and kiln stops the build",
            self.at.display(),
            crate::ui::human_bytes(self.free),
            crate::ui::human_bytes(self.peak),
            parts.join(", ")
        )
    }
}

/// Groups `needs` by the filesystem holding each path and returns those where the free space
/// is below the build's peak there, with `free_of` giving a filesystem's free bytes.
pub fn shortfalls(
    needs: Vec<Need>,
    free_of: impl Fn(&Path) -> io::Result<u64>,
) -> io::Result<Vec<Shortfall>> {
    let mut groups: Vec<(u64, Vec<Need>)> = Vec::new();
    for need in needs {
        let fs = filesystem(&need.path)?;
        match groups.iter_mut().find(|(id, _)| *id == fs) {
            Some((_, group)) => group.push(need),
            None => groups.push((fs, vec![need])),
        }
    }
    let mut out = Vec::new();
    for (_, needs) in groups {
        let at = needs[0].path.clone();
        let free = free_of(&at)?;
        let peak = peak(&needs);
        if free < peak {
            out.push(Shortfall {
                at,
                free,
                peak,
                needs,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Checksum;

    fn config() -> Config {
        let mut c = Config::with_defaults("t", "/tpl".into(), "/i.iso".into(), Checksum::None);
        c.disk_size = 1 << 30;
        c
    }

    #[test]
    fn needs_table() {
        let disk = Path::new("/o/d.qcow2");
        let extra = [PathBuf::from("/o/d.qcow2-1")];
        let boxed = [PathBuf::from("/b/x.box")];
        let mut with_extra = config();
        with_extra.disk_additional_size = vec![5 << 20];
        let mut skip = config();
        skip.skip_compaction = true;
        let mut compress = skip.clone();
        compress.disk_compression = true;
        type Want<'a> = &'a [(&'a str, &'a str, u64, When)];
        #[rustfmt::skip]
        let rows: [(&str, Config, &[PathBuf], &[PathBuf], Want); 4] = [
            ("disk and compaction's copy", config(), &[], &[],
                &[("disk", "/o/d.qcow2", 1 << 30, When::Always),
                  ("compaction's copy", "/o/d.qcow2.convert", 1 << 30, When::Compaction)]),
            ("extra disks and a box", with_extra, &extra, &boxed,
                &[("disk", "/o/d.qcow2", 1 << 30, When::Always),
                  ("extra disk", "/o/d.qcow2-1", 5 << 20, When::Always),
                  ("compaction's copy", "/o/d.qcow2.convert", 1 << 30, When::Compaction),
                  ("post-processor output", "/b/x.box", 1 << 30, When::PostProcessing)]),
            ("skip_compaction: no copy", skip, &[], &[],
                &[("disk", "/o/d.qcow2", 1 << 30, When::Always)]),
            ("disk_compression still converts", compress, &[], &[],
                &[("disk", "/o/d.qcow2", 1 << 30, When::Always),
                  ("compaction's copy", "/o/d.qcow2.convert", 1 << 30, When::Compaction)]),
        ];
        for (why, cfg, extra, post, want) in rows {
            let got: Vec<(&str, String, u64, When)> = needs(&cfg, disk, extra, post)
                .into_iter()
                .map(|n| (n.what, n.path.display().to_string(), n.bytes, n.when))
                .collect();
            let want: Vec<(&str, String, u64, When)> = want
                .iter()
                .map(|&(w, p, b, t)| (w, p.to_owned(), b, t))
                .collect();
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn peak_is_the_disks_plus_the_larger_later_phase() {
        let need = |bytes, when| Need {
            what: "x",
            path: "/x".into(),
            bytes,
            when,
        };
        let (a, c, p) = (When::Always, When::Compaction, When::PostProcessing);
        assert_eq!(peak(&[need(10, a), need(7, c), need(3, p), need(2, p)]), 17);
        assert_eq!(peak(&[need(10, a), need(7, c), need(5, p), need(4, p)]), 19);
        assert_eq!(peak(&[need(10, a), need(5, a)]), 15);
        assert_eq!(peak(&[]), 0);
    }

    #[test]
    fn shortfall_only_where_free_space_is_below_the_peak() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config();
        let disk = dir.path().join("d.qcow2");
        let all = needs(&cfg, &disk, &[], &[dir.path().join("sub/x.box")]);
        // Everything is on one filesystem: the disk, then its copy or the box.
        let short = shortfalls(all.clone(), |_| Ok(100 << 20)).unwrap();
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].peak, 2 << 30);
        assert_eq!(short[0].free, 100 << 20);
        let msg = short[0].message();
        assert!(msg.contains("100.0 MiB free"), "{msg}");
        assert!(msg.contains("may grow to 2.0 GiB"), "{msg}");
        assert!(msg.contains("compaction's copy"), "{msg}");
        assert!(msg.contains("x.box"), "{msg}");
        assert!(shortfalls(all, |_| Ok(2 << 30)).unwrap().is_empty());
    }

    #[test]
    fn free_bytes_of_a_path_not_made_yet() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet/made")).unwrap();
        assert!(free > 0);
    }
}
