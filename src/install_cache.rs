//! The install cache: the installed system as it was when SSH first answered, kept so a later
//! build with the same install inputs starts from it instead of booting the installer again.
//!
//! A layer is a paused guest: its RAM and device state (a QEMU migration stream, `vmstate`) and
//! its disks, copied while the guest was stopped, plus what is needed to reach it again (the
//! build's temporary SSH key, the UEFI variable store). Restoring RAM and disks together resumes
//! the guest at that very moment, with nothing half-written on its disks.
//!
//! Layout, under `<cache>/install/`:
//!
//! - `<key>/`: one layer, named by the hex key the builder computed from everything that can
//!   change the install; `layer.json` says what is inside;
//! - `<key>.lock`: locked (`flock`) shared by every build restoring from the layer and
//!   exclusively while a layer is written or removed, so `kiln cache clean` never removes a
//!   layer a build is using;
//! - `<key>.tmp/`: a layer being written, renamed to `<key>/` when complete.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The directory of install layers inside kiln's cache.
pub fn root(cache_dir: &Path) -> PathBuf {
    cache_dir.join("install")
}

/// Why the install cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lock file could not be opened or locked.
    #[error("Cannot lock `{}`", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A layer's files could not be read.
    #[error("Cannot read the install layer `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A layer's description is not what kiln writes.
    #[error("`{}` is not a valid install layer description", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A layer could not be written.
    #[error("Cannot write the install layer `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A layer could not be removed.
    #[error("Cannot remove `{}`", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a layer holds (`layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// The build that made it (`qemu.NAME`).
    pub source: String,
    /// When it was made, seconds since the Unix epoch.
    pub created: u64,
    /// The disks, in QEMU's order, as file names in the layer (qcow2).
    pub disks: Vec<String>,
    /// The RAM and device state, a file name in the layer.
    pub vmstate: String,
    /// The UEFI variable store, a file name in the layer, with `efi_boot`.
    pub efivars: Option<String>,
    /// The build's temporary SSH private key (OpenSSH format, mode 0600), when it used one.
    pub ssh_key: Option<String>,
}

/// A layer found in the cache, held (shared lock) until dropped.
#[derive(Debug)]
pub struct Layer {
    pub dir: PathBuf,
    pub meta: Meta,
    _lock: File,
}

impl Layer {
    /// The path of a file named in [`Meta`].
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn lock_path(root: &Path, key: &str) -> PathBuf {
    root.join(format!("{key}.lock"))
}

fn open_lock(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| Error::Lock {
            path: path.to_owned(),
            source,
        })
}

/// Takes the lock at `path` (shared or exclusive) without waiting; `None` when another kiln
/// holds it.
fn try_lock(path: &Path, shared: bool) -> Result<Option<File>, Error> {
    let file = open_lock(path)?;
    let locked = if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match locked {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(Error::Lock {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Finds the layer for `key`, holding it against removal while the returned value lives.
/// `None` when there is none (or another kiln is removing it right now).
pub fn open(cache_dir: &Path, key: &str) -> Result<Option<Layer>, Error> {
    let root = root(cache_dir);
    let dir = root.join(key);
    let meta_path = dir.join("layer.json");
    if !meta_path.is_file() {
        return Ok(None);
    }
    let Some(lock) = try_lock(&lock_path(&root, key), true)? else {
        return Ok(None);
    };
    // Removed while we waited for the lock.
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: meta_path,
                source,
            });
        }
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|source| Error::Parse {
        path: meta_path.clone(),
        source,
    })?;
    Ok(Some(Layer {
        dir,
        meta,
        _lock: lock,
    }))
}

/// A layer being written: files go into [`dir`](Self::dir); [`commit`](Self::commit) makes it
/// visible. Dropped without commit, it is removed.
#[derive(Debug)]
pub struct NewLayer {
    tmp: PathBuf,
    target: PathBuf,
    _lock: File,
    committed: bool,
}

impl NewLayer {
    /// Starts a layer for `key`; `None` when another kiln is writing or using that key.
    pub fn create(cache_dir: &Path, key: &str) -> Result<Option<NewLayer>, Error> {
        let root = root(cache_dir);
        std::fs::create_dir_all(&root).map_err(|source| Error::Write {
            path: root.clone(),
            source,
        })?;
        let Some(lock) = try_lock(&lock_path(&root, key), false)? else {
            return Ok(None);
        };
        let tmp = root.join(format!("{key}.tmp"));
        // A leftover of a kiln that died while writing.
        remove_dir(&tmp)?;
        // The layer holds the guest's RAM: only its owner may read it.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&tmp)
            .map_err(|source| Error::Write {
                path: tmp.clone(),
                source,
            })?;
        Ok(Some(NewLayer {
            tmp,
            target: root.join(key),
            _lock: lock,
            committed: false,
        }))
    }

    /// Where the layer's files are written until it is committed.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Writes `layer.json` and moves the layer into place; returns its directory.
    pub fn commit(mut self, meta: &Meta) -> Result<PathBuf, Error> {
        let path = self.tmp.join("layer.json");
        let text = serde_json::to_string_pretty(meta).map_err(|source| Error::Parse {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        remove_dir(&self.target)?;
        std::fs::rename(&self.tmp, &self.target).map_err(|source| Error::Write {
            path: self.target.clone(),
            source,
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for NewLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn remove_dir(path: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// One layer as `kiln cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub dir: PathBuf,
    /// Bytes of all its files.
    pub size: u64,
    /// `None` for a layer being written (or left half-written by a kiln that died).
    pub meta: Option<Meta>,
}

/// The layers in the cache (complete and in progress), sorted by key.
pub fn list(cache_dir: &Path) -> Result<Vec<Entry>, Error> {
    let root = root(cache_dir);
    let read_err = |source| Error::Read {
        path: root.clone(),
        source,
    };
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(read_err)?;
        if !e.file_type().map_err(read_err)?.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        let meta = std::fs::read_to_string(dir.join("layer.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        out.push(Entry {
            key: name,
            size: dir_size(&dir).map_err(read_err)?,
            dir,
            meta,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn dir_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        total += if meta.is_dir() {
            dir_size(&e.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// What [`clean`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub removed: Vec<PathBuf>,
    pub bytes: u64,
    /// Layers a running build is using or writing, left alone.
    pub busy: Vec<PathBuf>,
}

/// Removes every layer no running kiln holds, with its lock file; the `install` directory
/// goes too once empty.
pub fn clean(cache_dir: &Path) -> Result<Cleaned, Error> {
    let root = root(cache_dir);
    let mut out = Cleaned::default();
    for entry in list(cache_dir)? {
        let key = entry.key.trim_end_matches(".tmp");
        let lock_path = lock_path(&root, key);
        let Some(_lock) = try_lock(&lock_path, false)? else {
            out.busy.push(entry.dir);
            continue;
        };
        remove_dir(&entry.dir)?;
        out.bytes += entry.size;
        out.removed.push(entry.dir);
        let _ = std::fs::remove_file(&lock_path);
    }
    if out.busy.is_empty() {
        // Stray lock files of layers that never completed; then the directory itself.
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".lock") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&root);
    }
    Ok(out)
}

/// The SHA-256 of each file under `path` (a file or a directory, walked in name order), as
/// `(path relative to it, hex digest)`; a file is listed under its own name. Symlinks are
/// followed, as the HTTP server and the CD builder follow them.
pub fn tree_digests(path: &Path) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let meta = std::fs::metadata(path).map_err(|e| with_path(e, path))?;
    if meta.is_dir() {
        walk(path, "", &mut out)?;
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, file_digest(path)?));
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| with_path(e, dir))?
        .collect::<io::Result<_>>()
        .map_err(|e| with_path(e, dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if std::fs::metadata(&path)
            .map_err(|e| with_path(e, &path))?
            .is_dir()
        {
            walk(&path, &format!("{name}/"), out)?;
        } else {
            out.push((name, file_digest(&path)?));
        }
    }
    Ok(())
}

/// The SHA-256 of a file's content, in hex.
pub fn file_digest(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| with_path(e, path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| with_path(e, path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The SHA-256 of `bytes`, in hex.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("`{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            source: "qemu.t".into(),
            created: 1,
            disks: vec!["disk-0.qcow2".into()],
            vmstate: "vmstate".into(),
            efivars: None,
            ssh_key: None,
        }
    }

    #[test]
    fn write_open_list_clean() {
        let cache = tempfile::tempdir().unwrap();
        assert!(open(cache.path(), "k1").unwrap().is_none());
        let new = NewLayer::create(cache.path(), "k1").unwrap().unwrap();
        std::fs::write(new.dir().join("disk-0.qcow2"), vec![1u8; 1000]).unwrap();
        std::fs::write(new.dir().join("vmstate"), vec![2u8; 24]).unwrap();
        // Not visible, and not writable by a second kiln, while being written.
        assert!(open(cache.path(), "k1").unwrap().is_none());
        assert!(NewLayer::create(cache.path(), "k1").unwrap().is_none());
        let dir = new.commit(&meta()).unwrap();
        assert_eq!(dir, root(cache.path()).join("k1"));

        let layer = open(cache.path(), "k1").unwrap().expect("committed layer");
        assert_eq!(layer.meta, meta());
        assert_eq!(layer.file("vmstate"), dir.join("vmstate"));
        let listed = list(cache.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "k1");
        assert!(listed[0].size >= 1024, "{listed:?}");

        // In use: clean leaves it.
        let busy = clean(cache.path()).unwrap();
        assert_eq!(busy.busy, std::slice::from_ref(&dir));
        assert!(dir.is_dir());
        drop(layer);
        let done = clean(cache.path()).unwrap();
        assert_eq!(done.removed, [dir]);
        assert!(done.bytes >= 1024);
        assert!(
            !root(cache.path()).exists(),
            "clean leaves nothing behind: {:?}",
            std::fs::read_dir(cache.path()).unwrap().count()
        );
    }

    #[test]
    fn an_uncommitted_layer_is_removed() {
        let cache = tempfile::tempdir().unwrap();
        let new = NewLayer::create(cache.path(), "k").unwrap().unwrap();
        std::fs::write(new.dir().join("vmstate"), b"x").unwrap();
        let tmp = new.dir().to_owned();
        drop(new);
        assert!(!tmp.exists());
        assert!(open(cache.path(), "k").unwrap().is_none());
        // A half-written layer left by a kiln that died is listed and cleaned.
        std::fs::create_dir_all(root(cache.path()).join("dead.tmp")).unwrap();
        let listed = list(cache.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].meta, None);
        clean(cache.path()).unwrap();
        assert!(!root(cache.path()).exists());
    }

    #[test]
    fn tree_digests_follow_content_and_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.cfg"), "b").unwrap();
        std::fs::write(dir.path().join("sub/a"), "a").unwrap();
        let d1 = tree_digests(dir.path()).unwrap();
        let names: Vec<&str> = d1.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b.cfg", "sub/a"]);
        assert_eq!(d1[0].1, digest(b"b"));
        std::fs::write(dir.path().join("sub/a"), "A").unwrap();
        assert_ne!(tree_digests(dir.path()).unwrap(), d1);
        let one = tree_digests(&dir.path().join("b.cfg")).unwrap();
        assert_eq!(one, [("b.cfg".to_owned(), digest(b"b"))]);
        let err = tree_digests(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
