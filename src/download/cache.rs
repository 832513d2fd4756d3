//! The ISO cache: content-addressed files, their locks and verification stamps.
//!
//! A verified download is stored as `<algo>-<hex>.<ext>`, named by its real digest rather than
//! by the checksum string the template happened to use (Packer keys by the string, so writing
//! the same checksum another way downloads the ISO again). Beside it:
//!
//! - `<name>.part`: the download in progress; kept when interrupted, so the next try resumes;
//! - `<name>.lock`: locked (`flock`) by the kiln that fetches, so concurrent builds sharing the
//!   cache wait for each other instead of writing the same file;
//! - `<name>.verified`: the size and modification time the file had when it was last hashed.
//!   While they still match, a cache hit is used without hashing the whole ISO again.
//!
//! Downloads without a checksum are stored as `url-<sha256 of the URL>.<ext>`, and the last
//! copy of each remote `file:` checksum file as `sums-<sha256 of its URL>.txt`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use tokio_util::sync::CancellationToken;

use super::Error;
use crate::types::HashAlgo;
use crate::ui::Ui;

pub(super) const PART: &str = "part";
pub(super) const LOCK: &str = "lock";
pub(super) const STAMP: &str = "verified";

/// The ISO cache: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`
/// (else `kiln-cache` in the system temporary directory).
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`default_cache_dir`] with the environment passed in; empty variables count as unset.
pub(super) fn cache_dir_from(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |name| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("KILN_CACHE_DIR") {
        dir
    } else if let Some(xdg) = var("XDG_CACHE_HOME") {
        xdg.join("kiln")
    } else if let Some(home) = var("HOME") {
        home.join(".cache").join("kiln")
    } else {
        std::env::temp_dir().join("kiln-cache")
    }
}

/// `path` with `.suffix` appended (`x.iso` → `x.iso.part`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// An exclusive lock on `<target>.lock`, released when dropped.
#[derive(Debug)]
pub(super) struct Lock {
    _file: File,
}

/// Takes the lock for `target`, telling the user when another kiln holds it.
pub(super) async fn lock(
    target: &Path,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Lock, Error> {
    let path = sibling(target, LOCK);
    let lock_err = |source| Error::Lock {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => return Ok(Lock { _file: file }),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(lock_err(e)),
    }
    ui.message(format!(
        "Waiting for another kiln to finish with `{}`",
        target.display()
    ));
    // A blocking lock on its own thread; if the build is cancelled meanwhile, the thread's lock
    // is dropped as soon as it is granted.
    let waiter = tokio::task::spawn_blocking(move || file.lock().map(|()| file));
    tokio::select! {
        () = cancel.cancelled() => Err(Error::Cancelled { url: target.display().to_string() }),
        r = waiter => match r {
            Ok(Ok(file)) => Ok(Lock { _file: file }),
            Ok(Err(e)) => Err(lock_err(e)),
            Err(join) => Err(Error::LockTask { path: path.clone(), source: join }),
        },
    }
}

/// `size mtime_ns` of `path`, the content of its stamp.
fn fingerprint(path: &Path) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{} {mtime}\n", meta.len()))
}

/// Whether `path` is unchanged since its stamp was written.
pub(super) fn stamp_matches(path: &Path) -> bool {
    match (
        std::fs::read_to_string(sibling(path, STAMP)),
        fingerprint(path),
    ) {
        (Ok(stamp), Ok(now)) => stamp == now,
        _ => false,
    }
}

/// Records that `path` was just verified.
pub(super) fn write_stamp(path: &Path) -> Result<(), Error> {
    let stamp = sibling(path, STAMP);
    let write_err = |source| Error::WriteFile {
        path: stamp.clone(),
        source,
    };
    let text = fingerprint(path).map_err(write_err)?;
    std::fs::write(&stamp, text).map_err(write_err)
}

/// What a cache file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A verified download, named by its digest.
    Verified { algo: HashAlgo, hex: String },
    /// A download made without a checksum (`url-…`).
    Unverified,
    /// An interrupted download (`.part`), resumed by the next fetch.
    Partial,
    /// The last copy of a remote checksum file (`sums-…`), used when it cannot be fetched.
    ChecksumFile,
}

/// One file of the cache, as `kiln cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub size: u64,
    pub kind: EntryKind,
}

/// Classifies a cache file name; `None` for locks, stamps and foreign files.
fn classify(name: &str) -> Option<EntryKind> {
    if name.ends_with(&format!(".{PART}")) {
        return Some(EntryKind::Partial);
    }
    if name.ends_with(&format!(".{LOCK}")) || name.ends_with(&format!(".{STAMP}")) {
        return None;
    }
    let stem = name.split('.').next()?;
    if stem.starts_with("url-") {
        return Some(EntryKind::Unverified);
    }
    if stem.starts_with("sums-") {
        return Some(EntryKind::ChecksumFile);
    }
    let (algo, hex) = stem.split_once('-')?;
    let algo = HashAlgo::from_name(algo)?;
    (hex.len() == algo.hex_len() && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| {
        EntryKind::Verified {
            algo,
            hex: hex.to_owned(),
        }
    })
}

/// The cache's files, sorted by name (an absent cache is empty).
pub fn list(dir: &Path) -> Result<Vec<Entry>, Error> {
    let read_err = |source| Error::ReadCache {
        path: dir.to_path_buf(),
        source,
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(read_err)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kind) = classify(&name) else {
            continue;
        };
        let meta = e.metadata().map_err(read_err)?;
        if meta.is_file() {
            out.push(Entry {
                path: e.path(),
                size: meta.len(),
                kind,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What [`clean`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub removed: Vec<PathBuf>,
    pub bytes: u64,
    /// Entries another kiln is using right now, left alone.
    pub busy: Vec<PathBuf>,
}

/// Removes every cache entry (with its lock and stamp) that no running kiln holds.
pub fn clean(dir: &Path) -> Result<Cleaned, Error> {
    let mut out = Cleaned::default();
    for entry in list(dir)? {
        // A `.part` shares its lock with the file it becomes.
        let target = match entry.kind {
            EntryKind::Partial => entry.path.with_extension(""),
            _ => entry.path.clone(),
        };
        let lock_path = sibling(&target, LOCK);
        let lock_err = |source| Error::Lock {
            path: lock_path.clone(),
            source,
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                out.busy.push(entry.path);
                continue;
            }
            Err(TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        for p in [entry.path.clone(), sibling(&entry.path, STAMP)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::RemoveCached { path: p, source }),
            }
        }
        out.bytes += entry.size;
        out.removed.push(entry.path);
        // Unlinking a lock file while holding it is safe: a kiln that opened it earlier holds a
        // lock on an unlinked file, but that kiln would have found the entry gone anyway.
        let _ = std::fs::remove_file(&lock_path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dirs() {
        let table = [
            (
                vec![
                    ("KILN_CACHE_DIR", "/k"),
                    ("XDG_CACHE_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                "/k",
                "explicit wins",
            ),
            (
                vec![("XDG_CACHE_HOME", "/x"), ("HOME", "/h")],
                "/x/kiln",
                "XDG next",
            ),
            (
                vec![("KILN_CACHE_DIR", ""), ("HOME", "/h")],
                "/h/.cache/kiln",
                "empty counts as unset",
            ),
        ];
        for (vars, want, reason) in table {
            let got = cache_dir_from(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            });
            assert_eq!(got, PathBuf::from(want), "{reason}");
        }
    }

    #[test]
    fn cache_file_names() {
        let hex = "ab".repeat(32);
        let table = [
            (
                format!("sha256-{hex}.iso"),
                Some(EntryKind::Verified {
                    algo: HashAlgo::Sha256,
                    hex: hex.clone(),
                }),
            ),
            (format!("sha256-{hex}.iso.part"), Some(EntryKind::Partial)),
            (format!("sha256-{hex}.iso.lock"), None),
            (format!("sha256-{hex}.iso.verified"), None),
            (format!("url-{hex}.qcow2"), Some(EntryKind::Unverified)),
            (format!("sums-{hex}.txt"), Some(EntryKind::ChecksumFile)),
            ("md5-abc.iso".to_owned(), None),
            ("notes.txt".to_owned(), None),
        ];
        for (name, want) in table {
            assert_eq!(classify(&name), want, "{name}");
        }
    }

    #[test]
    fn stamps_notice_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.iso");
        std::fs::write(&f, b"abc").unwrap();
        assert!(!stamp_matches(&f), "no stamp yet");
        write_stamp(&f).unwrap();
        assert!(stamp_matches(&f));
        std::fs::write(&f, b"abcd").unwrap();
        assert!(!stamp_matches(&f), "size changed");
    }
}
