//! Archives the post-processors write: deterministic tar, gzip compressed on every core, zstd and
//! zip, always written under a temporary name and renamed when complete.
//!
//! The gzip writer splits its input into fixed-size chunks and compresses each, on a pool of
//! threads, into an independent gzip member with libdeflate; the members are written in input
//! order. Concatenated members are valid gzip (RFC 1952 §2.2): `gzip -d`, `bsdtar` (Vagrant's
//! extractor), Python and flate2's `MultiGzDecoder` read them. Output depends only on the input,
//! the level and [`GZIP_CHUNK`], never on the number of threads, so boxes are reproducible.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

/// Modification time of every tar member (2000-01-01T00:00:00Z): fixed for reproducible output,
/// and not 0, which GNU tar reports as "implausibly old".
pub const MTIME: u64 = 946_684_800;

/// Bytes of input per gzip member. Larger chunks compress slightly better; 1 MiB costs about
/// 0.1 % against one single stream and keeps every core busy on small disks too.
pub const GZIP_CHUNK: usize = 1 << 20;

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The temporary file could not be created next to the output.
    #[error("Cannot create a temporary file in `{}`", dir.display())]
    CreateTemp {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the archive failed (reading an input or writing the temporary file).
    #[error("Cannot write `{}` (through the temporary file `{}`)", path.display(), temp.display())]
    Write {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the finished archive to its name failed.
    #[error("Cannot rename the finished `{}` to `{}`", temp.display(), path.display())]
    Persist {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The build was cancelled while writing.
    #[error("Writing `{}` was cancelled (its temporary file was removed)", path.display())]
    Cancelled { path: PathBuf },
}

/// The error a write returns once the build is cancelled.
const CANCELLED: &str = "cancelled";

/// The temporary file behind [`write_atomically`]'s writer: every write first checks the
/// build's cancellation, so Ctrl-C stops a long archive at once.
pub struct Interruptible<'a> {
    file: &'a File,
    cancel: &'a CancellationToken,
}

impl Write for Interruptible<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other(CANCELLED));
        }
        (&*self.file).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

impl Seek for Interruptible<'_> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        (&*self.file).seek(pos)
    }
}

/// Writes `output` through `fill`, which gets a buffered writer on a temporary file in the same
/// directory (`.NAME.kiln-PID-XXXXXX.tmp`). The file is synced, made 0644 and renamed to
/// `output` only if `fill` succeeds; otherwise (a full disk, an I/O error, `cancel` fired) it
/// is removed, so `output` is never half-written and no temporary file stays behind. Temporary
/// files of `output` left by a kiln that was killed are removed first. Returns the size
/// written.
pub fn write_atomically(
    output: &Path,
    cancel: &CancellationToken,
    fill: impl FnOnce(&mut BufWriter<Interruptible<'_>>) -> io::Result<()>,
) -> Result<u64, Error> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = output.file_name().map_or_else(
        || "archive".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    remove_stale_temps(dir, &name);
    // Deleted on drop: every early return below removes the partial file.
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(&name, std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|source| Error::CreateTemp {
            dir: dir.to_path_buf(),
            source,
        })?;
    let write_err = |source| Error::Write {
        path: output.to_path_buf(),
        temp: tmp.path().to_path_buf(),
        source,
    };
    let mut sink = BufWriter::with_capacity(
        1 << 20,
        Interruptible {
            file: tmp.as_file(),
            cancel,
        },
    );
    let filled = fill(&mut sink).and_then(|()| sink.flush());
    if cancel.is_cancelled() {
        return Err(Error::Cancelled {
            path: output.to_path_buf(),
        });
    }
    filled.map_err(write_err)?;
    drop(sink);
    let file = tmp.as_file();
    file.sync_all().map_err(write_err)?;
    let size = file.metadata().map_err(write_err)?.len();
    set_shareable(file).map_err(write_err)?;
    let temp = tmp.path().to_path_buf();
    tmp.persist(output).map_err(|e| Error::Persist {
        path: output.to_path_buf(),
        temp,
        source: e.error,
    })?;
    Ok(size)
}

/// Temporary files are `.NAME.kiln-PID-XXXXXX.tmp`: hidden, named after what they become and
/// after the kiln writing them.
fn temp_prefix(name: &str, pid: u32) -> String {
    format!(".{name}.kiln-{pid}-")
}

const TEMP_SUFFIX: &str = ".tmp";

/// Removes the temporary files of `name` in `dir` whose kiln no longer runs (it was killed
/// before it could clean up); a file whose kiln runs, or whose name says no pid, is left alone.
/// Only where `/proc` tells which processes run.
fn remove_stale_temps(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.kiln-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .filter(|rest| rest.ends_with(TEMP_SUFFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::warn!(
                path = %entry.path().display(),
                pid,
                "removed a temporary file left by a kiln that was killed"
            ),
            Err(e) => {
                tracing::debug!(path = %entry.path().display(), error = %e, "stale temporary file stays")
            }
        }
    }
}

/// An archive is an ordinary shareable file (temporary files start out 0600).
fn set_shareable(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// One archive member: its name in the archive, its exact size, and its content.
pub struct Member<'r> {
    pub name: String,
    pub size: u64,
    pub data: Box<dyn Read + 'r>,
}

impl<'r> Member<'r> {
    /// A member held in memory.
    pub fn bytes(name: impl Into<String>, data: &'r [u8]) -> Self {
        Self {
            name: name.into(),
            size: data.len() as u64,
            data: Box::new(data),
        }
    }

    /// A member read from the file at `path`, opened now so that a missing input is reported
    /// before anything is written.
    pub fn file(name: impl Into<String>, path: &Path) -> io::Result<Self> {
        let file = File::open(path).map_err(|e| with_path(e, path))?;
        let size = file.metadata().map_err(|e| with_path(e, path))?.len();
        Ok(Self {
            name: name.into(),
            size,
            data: Box::new(PathReader {
                inner: file.take(size),
                path: path.to_path_buf(),
            }),
        })
    }
}

/// Reads a file and names it in any read error (the archive's error only names the output).
struct PathReader<R> {
    inner: R,
    path: PathBuf,
}

impl<R: Read> Read for PathReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| with_path(e, &self.path))
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("`{}`: {e}", path.display()))
}

/// Writes `members` in order as a deterministic GNU tar (root-owned, 0644, fixed mtime) and
/// returns the writer. `progress` gets the running total of member bytes read. Each member must
/// yield exactly its declared size.
pub fn write_tar<W: Write>(
    w: W,
    members: Vec<Member<'_>>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<W> {
    let mut tar = tar::Builder::new(w);
    let mut done = 0u64;
    for m in members {
        let mut header = tar::Header::new_gnu();
        header.set_path(&m.name)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(m.size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header.set_cksum();
        let mut counted = Counting {
            inner: m.data,
            n: 0,
            base: done,
            progress: &mut *progress,
        };
        tar.append(&header, &mut counted)?;
        if counted.n != m.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "`{}` changed size while being archived ({} → {} bytes)",
                    m.name, m.size, counted.n
                ),
            ));
        }
        done += m.size;
    }
    tar.into_inner()
}

/// Counts the bytes read through it and reports the running total.
struct Counting<'p, R> {
    inner: R,
    n: u64,
    base: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        (self.progress)(self.base + self.n);
        Ok(n)
    }
}

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is.
    None,
    /// Parallel gzip at level 1–12 (libdeflate's scale; 1–9 match gzip's).
    Gzip { level: u32 },
    /// zstd at level 1–19, on every core.
    Zstd { level: i32 },
}

/// Compresses everything written to it with `codec` into `w`; call [`finish`](Self::finish).
pub enum Encoder<W: Write> {
    None(W),
    Gzip(ParGzWriter<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(codec: Codec, w: W) -> io::Result<Self> {
        Ok(match codec {
            Codec::None => Self::None(w),
            Codec::Gzip { level } => Self::Gzip(ParGzWriter::new(w, level, threads())?),
            Codec::Zstd { level } => {
                let mut z = zstd::Encoder::new(w, level)?;
                z.multithread(threads() as u32)?;
                // Fixed parameters so the output does not depend on the machine.
                z.include_checksum(true)?;
                Self::Zstd(z)
            }
        })
    }

    /// Flushes the last data and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Self::None(w) => Ok(w),
            Self::Gzip(g) => g.finish(),
            Self::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::None(w) => w.write(buf),
            Self::Gzip(g) => g.write(buf),
            Self::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::None(w) => w.flush(),
            Self::Gzip(g) => g.flush(),
            Self::Zstd(z) => z.flush(),
        }
    }
}

/// Worker threads for compression: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A chunk to compress, and where to send its gzip member.
type Job = (Vec<u8>, mpsc::SyncSender<io::Result<Vec<u8>>>);

/// Gzip on every core: see the module documentation.
pub struct ParGzWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    /// Members being compressed, oldest first.
    pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<mpsc::SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    /// Whether at least one member was written (an empty input still gets one).
    wrote_member: bool,
}

impl<W: Write> ParGzWriter<W> {
    /// A writer compressing at `level` (1–12) with `threads` workers.
    pub fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let out_of_range = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {level} is out of range (1–12)"),
            )
        };
        if !(1..=12).contains(&level) {
            return Err(out_of_range());
        }
        let level = libdeflater::CompressionLvl::new(level as i32).map_err(|_| out_of_range())?;
        let threads = threads.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("kiln-gzip-{i}"))
                .spawn(move || compress_jobs(&rx, level))?;
            workers.push(handle);
        }
        Ok(Self {
            inner,
            buf: Vec::with_capacity(GZIP_CHUNK),
            pending: VecDeque::new(),
            max_pending: 2 * threads,
            jobs: Some(tx),
            workers,
            wrote_member: false,
        })
    }

    /// Hands the buffered chunk to the workers; writes finished members when enough are queued.
    fn submit(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
        let (tx, rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send((chunk, tx)).map_err(|_| stopped())?;
        self.pending.push_back(rx);
        self.wrote_member = true;
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx.recv().map_err(|_| stopped())??;
            self.inner.write_all(&member)?;
        }
        Ok(())
    }

    /// Compresses what is buffered, writes every member in order, stops the workers and returns
    /// the inner writer. (Dropping the writer without `finish` also stops the workers: they end
    /// when the job channel closes.)
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || !self.wrote_member {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            // A worker only panics if libdeflate does; its member's receiver already said so.
            let _ = w.join();
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(GZIP_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == GZIP_CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    /// Members are only complete at chunk boundaries, so this flushes what is finished.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A worker: compresses chunks into gzip members until the job channel closes.
fn compress_jobs(jobs: &Mutex<mpsc::Receiver<Job>>, level: libdeflater::CompressionLvl) {
    let mut compressor = libdeflater::Compressor::new(level);
    loop {
        // The lock is held only while waiting for the next job, not while compressing.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((chunk, reply)) = job else {
            return;
        };
        let mut member = vec![0u8; compressor.gzip_compress_bound(chunk.len())];
        let res = compressor
            .gzip_compress(&chunk, &mut member)
            .map(|n| {
                member.truncate(n);
                member
            })
            .map_err(|e| io::Error::other(format!("gzip compression failed: {e:?}")));
        // The writer may be gone (dropped after an error); nothing to report to then.
        let _ = reply.send(res);
    }
}

fn stopped() -> io::Error {
    io::Error::other("the gzip worker threads stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::process::Command;

    /// Compressible but not trivial: text with a counter.
    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 64);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(
                format!("line {i} of the kiln sample {}\n", i * 7919 % 1000).as_bytes(),
            );
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn gzip(data: &[u8], level: u32, threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), level, threads).unwrap();
        for piece in data.chunks(write_size.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn parallel_gzip_round_trips() {
        // Sizes around the chunk boundary, and empty input (still one valid member).
        for len in [
            0,
            1,
            GZIP_CHUNK - 1,
            GZIP_CHUNK,
            GZIP_CHUNK + 1,
            3 * GZIP_CHUNK + 17,
        ] {
            let data = sample(len);
            let gz = gzip(&data, 6, 2, 100_000);
            assert_eq!(gunzip(&gz), data, "len {len}");
            assert_eq!(&gz[..2], b"\x1f\x8b", "len {len}");
            assert!(
                len < 1000 || gz.len() < data.len() / 3,
                "len {len} compressed"
            );
        }
    }

    #[test]
    fn output_does_not_depend_on_threads_or_write_sizes() {
        let data = sample(5 * GZIP_CHUNK / 2);
        let one = gzip(&data, 6, 1, GZIP_CHUNK);
        assert_eq!(gzip(&data, 6, 4, 4096), one);
        assert_eq!(gzip(&data, 6, 2, 1000), one);
    }

    #[test]
    fn system_gzip_reads_the_members() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        let data = sample(2 * GZIP_CHUNK + 5);
        std::fs::write(&path, gzip(&data, 6, 2, 65536)).unwrap();
        let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, data);
        let test = Command::new("gzip").arg("-t").arg(&path).status().unwrap();
        assert!(test.success());
    }

    #[test]
    fn bad_level_is_rejected() {
        assert!(ParGzWriter::new(Vec::new(), 0, 1).is_err());
        assert!(ParGzWriter::new(Vec::new(), 13, 1).is_err());
    }

    #[test]
    fn zstd_and_plain_encoders_round_trip() {
        let data = sample(GZIP_CHUNK + 3);
        let mut z = Encoder::new(Codec::Zstd { level: 3 }, Vec::new()).unwrap();
        z.write_all(&data).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), data);
        let mut p = Encoder::new(Codec::None, Vec::new()).unwrap();
        p.write_all(&data).unwrap();
        assert_eq!(p.finish().unwrap(), data);
    }

    #[test]
    fn tar_is_deterministic_and_reports_progress() {
        let (a, b) = (b"alpha".to_vec(), vec![7u8; 3000]);
        let mut seen = Vec::new();
        let tar1 = write_tar(
            Vec::new(),
            vec![Member::bytes("a", &a), Member::bytes("dir/b", &b)],
            &mut |n| seen.push(n),
        )
        .unwrap();
        let tar2 = write_tar(
            Vec::new(),
            vec![Member::bytes("a", &a), Member::bytes("dir/b", &b)],
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(tar1, tar2);
        assert_eq!(seen.last(), Some(&3005));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        let mut ar = tar::Archive::new(&tar1[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap()
                ),
                (0o644, 0, 0, MTIME)
            );
        }
    }

    #[test]
    fn short_member_is_an_error() {
        // A member that yields fewer bytes than its header declares would corrupt the tar.
        let m = Member {
            name: "x".into(),
            size: 10,
            data: Box::new(&b"abc"[..]),
        };
        let res = write_tar(Vec::new(), vec![m], &mut |_| {});
        assert_eq!(
            res.err().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }

    #[test]
    fn failed_fill_leaves_nothing_and_names_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.tar");
        let none = CancellationToken::new();
        let err = write_atomically(&out, &none, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x.tar") && msg.contains(".x.tar.kiln-"),
            "{msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let size = write_atomically(&out, &none, |w| w.write_all(b"whole")).unwrap();
        assert_eq!((size, std::fs::read(&out).unwrap()), (5, b"whole".to_vec()));
    }

    #[test]
    fn cancel_stops_the_writer_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.box");
        let cancel = CancellationToken::new();
        let err = write_atomically(&out, &cancel, |w| {
            w.write_all(&[1; 4 << 20])?;
            cancel.cancel();
            // A writer that ignored cancellation would go on for ever.
            loop {
                w.write_all(&[2; 1 << 20])?;
            }
        })
        .unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn temporary_files_of_killed_kilns_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that does not run (above the kernel's pid_max) and one that does (ours).
        let dead = dir.path().join(format!(
            "{}abc123{TEMP_SUFFIX}",
            temp_prefix("x.box", 4_999_999)
        ));
        let alive = dir.path().join(format!(
            "{}abc123{TEMP_SUFFIX}",
            temp_prefix("x.box", std::process::id())
        ));
        let other = dir.path().join(format!(
            "{}abc123{TEMP_SUFFIX}",
            temp_prefix("y.box", 4_999_999)
        ));
        for f in [&dead, &alive, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write_atomically(&dir.path().join("x.box"), &CancellationToken::new(), |w| {
            w.write_all(b"box")
        })
        .unwrap();
        assert!(!dead.exists(), "a dead kiln's temporary file is removed");
        assert!(alive.exists(), "a running kiln's temporary file stays");
        assert!(other.exists(), "another output's temporary file stays");
    }

    #[test]
    fn missing_input_names_its_path() {
        let err = Member::file("x", Path::new("/nonexistent/kiln-disk.qcow2"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent/kiln-disk.qcow2"),
            "{err}"
        );
    }
}
