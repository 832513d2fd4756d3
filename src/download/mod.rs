//! Fetching the installer ISO (or `disk_image`): every `iso_url` form, every `iso_checksum`
//! form, a content-addressed cache shared safely between builds, resumable HTTP downloads.
//!
//! A remote file is streamed into `<target>.part` beside its final name and hashed on the way
//! (on another thread than the network reads, so the hash hides under the transfer); it is
//! renamed into place only once its checksum matches, so the cache never holds a partial or
//! wrong file under a final name. An interrupted transfer continues with a `Range` request and
//! is still verified whole. Local files are verified in place, never copied.
//!
//! Submodules: [`hash`] (the hashers), [`sums`] (checksum files), [`cache`] (layout, locks,
//! `kiln cache`).

pub mod cache;
pub mod hash;
pub mod sums;

use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT_RANGES, CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};
use tokio_util::sync::CancellationToken;

pub use cache::default_cache_dir;
use hash::Hasher;

use crate::types::{Checksum, HashAlgo};
use crate::ui::Ui;

/// Time allowed to open a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence allowed between two reads of a response body.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// Largest checksum file kiln reads.
const MAX_SUMS_BYTES: usize = 16 << 20;
/// Network chunks are passed to the writer thread in batches of about this many bytes.
const WRITE_CHUNK: usize = 1 << 20;
/// Bytes written between two background flushes of a download to disk.
const FLUSH_EVERY: usize = 64 << 20;
/// Most network chunks in one batch (well under the kernel's `writev` limit of 1024).
const BATCH_PIECES: usize = 256;
/// Batches in flight between the network task and the writer thread.
const WRITE_QUEUE: usize = 8;

/// Why an input could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL has a scheme other than `http`, `https` or `file`.
    #[error("Unsupported URL scheme in `{url}` (expected http, https, file or a path)")]
    UnsupportedScheme { url: String },
    /// A `file://` URL that names no local path.
    #[error("`{url}` is not a valid local file URL")]
    InvalidFileUrl { url: String },
    /// Reading (hashing) a local file failed.
    #[error("Cannot read `{path}`")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The hashing thread panicked or was cancelled.
    #[error("Hashing `{path}` did not finish")]
    HashTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The content does not have the expected checksum.
    #[error("Checksum mismatch for `{url}`: expected {expected}, got {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// The checksum file does not list the ISO.
    #[error("No checksum for `{name}` in `{sums}`")]
    NoChecksumFor { name: String, sums: String },
    /// The checksum file is larger than any checksum file should be.
    #[error("Checksum file `{url}` is larger than {MAX_SUMS_BYTES} bytes")]
    SumsTooLarge { url: String },
    /// The cache (or target) directory could not be created.
    #[error("Cannot create directory `{path}`")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The cache directory could not be read.
    #[error("Cannot read cache directory `{path}`")]
    ReadCache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The lock file beside the target could not be opened or locked.
    #[error("Cannot lock `{path}`")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The thread waiting for a lock panicked.
    #[error("Waiting for the lock `{path}` did not finish")]
    LockTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The HTTP client could not be set up (e.g. TLS roots unavailable).
    #[error("Cannot set up the HTTP client")]
    BuildClient(#[source] reqwest::Error),
    /// The request failed before a response arrived.
    #[error("Request to `{url}` failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("`{url}` returned HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    /// The response body broke off.
    #[error("Reading the body of `{url}` failed")]
    ReadBody {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The body ended before the length the server announced.
    #[error("`{url}` sent {got} of the {expected} bytes it announced")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    /// The partial download could not be continued (the server sent another range, or the
    /// partial file is longer than the file); the next try starts from zero.
    #[error("`{url}` could not continue the partial download")]
    Restart { url: String },
    /// Every attempt at a URL failed; the last failure is the source.
    #[error("Gave up on `{url}` after {attempts} attempts")]
    Retries {
        url: String,
        attempts: u32,
        #[source]
        last: Box<Error>,
    },
    /// Writing the download to disk failed.
    #[error("Cannot write `{path}`")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The writer thread panicked.
    #[error("Writing `{path}` did not finish")]
    WriteTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    /// Renaming the verified download to its final name failed.
    #[error("Cannot move the download to `{path}`")]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Removing a corrupt or stale file failed.
    #[error("Cannot remove `{path}`")]
    RemoveCached {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `iso_skip_cache`: no URL answered with byte-range support.
    #[error(
        "None of the URLs supports byte ranges (`Accept-Ranges: bytes`), which `iso_skip_cache` needs"
    )]
    NoByteServing,
    /// Several URLs were given and none worked; the last failure is the source.
    #[error("None of the {count} URLs could be fetched")]
    AllUrlsFailed {
        count: usize,
        #[source]
        last: Box<Error>,
    },
    /// The build was cancelled while fetching.
    #[error("Fetching `{url}` was cancelled")]
    Cancelled { url: String },
}

impl Error {
    /// Whether another attempt at the same URL may succeed.
    fn is_transient(&self) -> bool {
        match self {
            Error::Request { .. }
            | Error::ReadBody { .. }
            | Error::Truncated { .. }
            | Error::Restart { .. } => true,
            Error::HttpStatus { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Where a verified download is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// In the cache directory, named by digest, with extension `ext` (`iso_target_extension`).
    Cache { dir: PathBuf, ext: String },
    /// At this exact path (`iso_target_path` with a file extension).
    File(PathBuf),
}

/// How often a transfer is retried, and how long to wait when a try made no progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries per URL, first included.
    pub attempts: u32,
    /// Wait before a retry that follows a try which received nothing; doubled each time.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_secs(2),
        }
    }
}

/// One fetch: URLs in order of preference, the expected checksum, where to keep the file.
pub struct Request<'a> {
    pub urls: &'a [String],
    pub checksum: &'a Checksum,
    pub target: Target,
    pub retry: Retry,
    pub ui: &'a Ui,
    pub cancel: &'a CancellationToken,
}

/// Where the fetched file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A local file, verified in place.
    Local,
    /// Already in the cache; `rehashed` says whether its stamp was stale so it was hashed again.
    Cached { rehashed: bool },
    /// Downloaded now.
    Downloaded,
}

/// A fetched, verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub origin: Origin,
    /// The URL that worked.
    pub url: String,
}

/// Where an `iso_url` points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Local(PathBuf),
    Remote(Url),
}

/// Classifies a URL: `http(s)://` is remote, `file://` and anything without a scheme local.
fn parse_source(url: &str) -> Result<Source, Error> {
    if !url.contains("://") {
        return Ok(Source::Local(PathBuf::from(url)));
    }
    let unsupported = || Error::UnsupportedScheme { url: url.into() };
    let parsed = Url::parse(url).map_err(|_| unsupported())?;
    match parsed.scheme() {
        "http" | "https" => Ok(Source::Remote(parsed)),
        "file" => parsed
            .to_file_path()
            .map(Source::Local)
            .map_err(|()| Error::InvalidFileUrl { url: url.into() }),
        _ => Err(unsupported()),
    }
}

/// The file name a URL or path ends in (what a checksum file lists).
fn file_name_of(source: &Source) -> String {
    match source {
        Source::Local(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Source::Remote(u) => u
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(url_decode)
            .unwrap_or_default(),
    }
}

/// Percent-decodes a URL path segment (invalid escapes are kept as written).
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::BuildClient)
}

/// Fetches the first of `req.urls` that works, reporting each failure through the UI, and
/// returns the verified file.
pub async fn fetch(req: &Request<'_>) -> Result<Fetched, Error> {
    let sums = match req.checksum {
        Checksum::File { url } => Some((url.as_str(), checksum_file(req, url).await?)),
        _ => None,
    };
    let mut last = None;
    for url in req.urls {
        req.ui.message(format!("Trying {url}"));
        let attempt = async {
            let source = parse_source(url)?;
            let expected = match &sums {
                Some((sums_url, text)) => {
                    let name = file_name_of(&source);
                    let (algo, hex) =
                        sums::find(text, &name).ok_or_else(|| Error::NoChecksumFor {
                            name,
                            sums: (*sums_url).to_owned(),
                        })?;
                    tracing::debug!(%url, %algo, %hex, "checksum from file");
                    Checksum::Digest { algo, hex }
                }
                None => req.checksum.clone(),
            };
            fetch_one(req, url, source, &expected).await
        };
        match attempt.await {
            Ok(f) => return Ok(f),
            Err(e @ Error::Cancelled { .. }) => return Err(e),
            Err(e) => {
                if req.urls.len() > 1 {
                    req.ui
                        .warn(format!("Could not fetch `{url}`: {}", chain(&e)));
                }
                last = Some(e);
            }
        }
    }
    let last = last.unwrap_or(Error::AllUrlsFailed {
        count: 0,
        last: Box::new(Error::UnsupportedScheme { url: String::new() }),
    });
    if req.urls.len() > 1 {
        Err(Error::AllUrlsFailed {
            count: req.urls.len(),
            last: Box::new(last),
        })
    } else {
        Err(last)
    }
}

/// `e: cause: cause`, for a one-line report of a URL that failed while others remain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn fetch_one(
    req: &Request<'_>,
    url: &str,
    source: Source,
    expected: &Checksum,
) -> Result<Fetched, Error> {
    let remote = match source {
        Source::Local(path) => {
            if let Checksum::Digest { algo, .. } = expected {
                let actual = cancellable(url, req.cancel, hash_path(&path, *algo)).await?;
                verify(url, expected, &actual)?;
            } else {
                // Even unverified, a missing file must fail here rather than in QEMU.
                std::fs::metadata(&path).map_err(|source| Error::ReadFile {
                    path: path.clone(),
                    source,
                })?;
            }
            tracing::debug!(path = %path.display(), "using local file");
            return Ok(Fetched {
                path,
                origin: Origin::Local,
                url: url.into(),
            });
        }
        Source::Remote(remote) => remote,
    };
    let dest = match &req.target {
        Target::Cache { dir, ext } => dir.join(cache_name(url, expected, ext)),
        Target::File(path) => path.clone(),
    };
    let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let _lock = cache::lock(&dest, req.ui, req.cancel).await?;

    if let Some(origin) = check_existing(req, url, &dest, expected).await? {
        return Ok(Fetched {
            path: dest,
            origin,
            url: url.into(),
        });
    }
    download(req, url, remote, &dest, expected).await?;
    Ok(Fetched {
        path: dest,
        origin: Origin::Downloaded,
        url: url.into(),
    })
}

/// Uses `dest` if it is there and still good: unchanged since it was verified (no hashing), or
/// hashed again and matching. A bad file is removed.
async fn check_existing(
    req: &Request<'_>,
    url: &str,
    dest: &Path,
    expected: &Checksum,
) -> Result<Option<Origin>, Error> {
    if !dest.is_file() {
        return Ok(None);
    }
    let Checksum::Digest { algo, .. } = expected else {
        tracing::info!(path = %dest.display(), "using cached file (unverified)");
        return Ok(Some(Origin::Cached { rehashed: false }));
    };
    if cache::stamp_matches(dest) {
        tracing::info!(path = %dest.display(), "using cached file, unchanged since verified");
        return Ok(Some(Origin::Cached { rehashed: false }));
    }
    req.ui
        .message(format!("Verifying cached `{}`", dest.display()));
    let actual = cancellable(url, req.cancel, hash_path(dest, *algo)).await?;
    if verify(url, expected, &actual).is_ok() {
        cache::write_stamp(dest)?;
        return Ok(Some(Origin::Cached { rehashed: true }));
    }
    req.ui.warn(format!(
        "Cached `{}` does not match its checksum; downloading it again",
        dest.display()
    ));
    remove_if_present(dest)?;
    remove_if_present(&cache::sibling(dest, cache::STAMP))?;
    Ok(None)
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::RemoveCached {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The cache file name: the expected digest, or (with no checksum) the digest of the URL.
fn cache_name(url: &str, checksum: &Checksum, ext: &str) -> String {
    match checksum {
        Checksum::Digest { algo, hex } => format!("{algo}-{hex}.{ext}"),
        Checksum::None | Checksum::File { .. } => {
            let mut h = Hasher::new(HashAlgo::Sha256);
            h.update(url.as_bytes());
            format!("url-{}.{ext}", h.finalize_hex())
        }
    }
}

/// Compares a computed digest with the expected checksum (always passes for `none`).
fn verify(url: &str, expected: &Checksum, actual: &str) -> Result<(), Error> {
    match expected {
        Checksum::Digest { hex, .. } if !hex.eq_ignore_ascii_case(actual) => {
            Err(Error::ChecksumMismatch {
                url: url.into(),
                expected: expected.to_string(),
                actual: match expected {
                    Checksum::Digest { algo, .. } => format!("{algo}:{actual}"),
                    _ => actual.to_owned(),
                },
            })
        }
        _ => Ok(()),
    }
}

/// Runs `fut` unless `cancel` fires first.
async fn cancellable<T>(
    url: &str,
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Error::Cancelled { url: url.into() }),
        r = fut => r,
    }
}

/// Hashes a file on a blocking thread.
async fn hash_path(path: &Path, algo: HashAlgo) -> Result<String, Error> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        hash::hash_file(&owned, algo).map_err(|source| Error::ReadFile {
            path: owned.clone(),
            source,
        })
    })
    .await
    .map_err(|source| Error::HashTask {
        path: path.to_path_buf(),
        source,
    })?
}

/// Hashes every verified entry of the cache again (`kiln cache verify`); returns each entry
/// with whether it matched. Entries that do not match are removed.
pub async fn verify_cache(dir: &Path) -> Result<Vec<(cache::Entry, bool)>, Error> {
    let mut out = Vec::new();
    for entry in cache::list(dir)? {
        let cache::EntryKind::Verified { algo, hex } = &entry.kind else {
            continue;
        };
        let actual = hash_path(&entry.path, *algo).await?;
        let good = actual.eq_ignore_ascii_case(hex);
        if good {
            cache::write_stamp(&entry.path)?;
        } else {
            remove_if_present(&entry.path)?;
            remove_if_present(&cache::sibling(&entry.path, cache::STAMP))?;
        }
        out.push((entry, good));
    }
    Ok(out)
}

/// The text of the checksum file at `url`. A remote one is kept in the cache directory
/// (`sums-<sha256 of the URL>.txt`); when it cannot be fetched (say, offline), that copy is
/// used, with a warning, so a cached ISO still builds without network.
async fn checksum_file(req: &Request<'_>, url: &str) -> Result<String, Error> {
    let remote = matches!(parse_source(url)?, Source::Remote(_));
    let copy = match (&req.target, remote) {
        (Target::Cache { dir, .. }, true) => Some(dir.join(sums_copy_name(url))),
        _ => None,
    };
    match fetch_text(url, req.cancel).await {
        Ok(text) => {
            if let Some(copy) = &copy {
                // Replaced whole or not at all: a truncated copy would mislead an offline run.
                let saved = std::fs::create_dir_all(copy.parent().unwrap_or(Path::new(".")))
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        crate::archive::write_atomically(copy, req.cancel, |w| {
                            w.write_all(text.as_bytes())
                        })
                        .map_err(|e| chain(&e))
                    });
                if let Err(e) = saved {
                    tracing::warn!(path = %copy.display(), error = %e, "cannot keep a copy of the checksum file");
                }
            }
            Ok(text)
        }
        Err(e) if e.is_transient() => match copy.as_ref().map(std::fs::read_to_string) {
            Some(Ok(text)) => {
                req.ui.warn(format!(
                    "Could not fetch checksum file `{url}` ({}); using the copy kept in the cache",
                    chain(&e)
                ));
                Ok(text)
            }
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// File name of the cached copy of the checksum file at `url`.
fn sums_copy_name(url: &str) -> String {
    let mut h = Hasher::new(HashAlgo::Sha256);
    h.update(url.as_bytes());
    format!("sums-{}.txt", h.finalize_hex())
}

/// Reads a checksum file from a URL or a path.
async fn fetch_text(url: &str, cancel: &CancellationToken) -> Result<String, Error> {
    match parse_source(url)? {
        Source::Local(path) => {
            let bytes = std::fs::read(&path).map_err(|source| Error::ReadFile { path, source })?;
            if bytes.len() > MAX_SUMS_BYTES {
                return Err(Error::SumsTooLarge { url: url.into() });
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Source::Remote(remote) => {
            let get = async {
                let request_err = |source| Error::Request {
                    url: url.into(),
                    source,
                };
                let mut resp = client()?.get(remote).send().await.map_err(request_err)?;
                if !resp.status().is_success() {
                    return Err(Error::HttpStatus {
                        url: url.into(),
                        status: resp.status().as_u16(),
                    });
                }
                let mut body = Vec::new();
                while let Some(chunk) = resp.chunk().await.map_err(|source| Error::ReadBody {
                    url: url.into(),
                    source,
                })? {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_SUMS_BYTES {
                        return Err(Error::SumsTooLarge { url: url.into() });
                    }
                }
                Ok(String::from_utf8_lossy(&body).into_owned())
            };
            cancellable(url, cancel, get).await
        }
    }
}

/// `iso_skip_cache`: the first of `urls` whose server answers `HEAD` with
/// `Accept-Ranges: bytes`, for QEMU to read directly. Local paths are returned as they are.
pub async fn probe_byte_serving(urls: &[String], ui: &Ui) -> Result<String, Error> {
    let client = client()?;
    for url in urls {
        let remote = match parse_source(url)? {
            Source::Local(p) => return Ok(p.to_string_lossy().into_owned()),
            Source::Remote(r) => r,
        };
        match client.head(remote).send().await {
            Ok(resp)
                if resp.status().is_success()
                    && resp
                        .headers()
                        .get(ACCEPT_RANGES)
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes")) =>
            {
                return Ok(url.clone());
            }
            Ok(resp) => ui.warn(format!(
                "`{url}` answered HTTP {} without byte-range support",
                resp.status().as_u16()
            )),
            Err(e) => ui.warn(format!("`{url}`: {e}")),
        }
    }
    Err(Error::NoByteServing)
}

/// The `.part` file being written, the hash of what it holds so far, and its length.
struct Sink {
    file: std::fs::File,
    hasher: Hasher,
    offset: u64,
    algo: HashAlgo,
}

impl Sink {
    /// Empties the file: the next transfer starts from byte 0.
    fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(io::SeekFrom::Start(0))?;
        self.hasher = Hasher::new(self.algo);
        self.offset = 0;
        Ok(())
    }
}

/// Starts flushing the `.part` file to disk on a helper thread every [`FLUSH_EVERY`] bytes,
/// while writing goes on: the disk works during the transfer, so the `fsync` before the
/// verified file is renamed into place has little left to do.
#[derive(Default)]
struct Flusher {
    since: usize,
    running: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Flusher {
    fn wrote(&mut self, file: &std::fs::File, n: usize) -> io::Result<()> {
        self.since += n;
        if self.since < FLUSH_EVERY || self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        self.finish()?;
        self.since = 0;
        let file = file.try_clone()?;
        self.running = Some(std::thread::spawn(move || file.sync_data()));
        Ok(())
    }

    /// Waits for the flush in progress.
    fn finish(&mut self) -> io::Result<()> {
        match self.running.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the flushing thread panicked")),
            None => Ok(()),
        }
    }
}

/// Writes every chunk of `batch`, in order, with as few `writev` calls as the kernel allows.
fn write_batch(file: &mut std::fs::File, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = batch.iter().map(|b| io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How one HTTP try ended.
enum Outcome {
    /// The whole body is in the sink.
    Complete,
    /// The try failed; the sink holds what arrived before.
    Failed(Error),
}

/// Downloads `remote` into `<dest>.part` (resuming what an earlier run left there), verifies it
/// whole, and renames it to `dest`. A mismatch after resuming downloads once more from zero.
async fn download(
    req: &Request<'_>,
    url: &str,
    remote: Url,
    dest: &Path,
    expected: &Checksum,
) -> Result<(), Error> {
    let part = cache::sibling(dest, cache::PART);
    let algo = match expected {
        Checksum::Digest { algo, .. } => *algo,
        _ => HashAlgo::Sha256,
    };
    let client = client()?;
    let mut may_resume = true;
    let sink = loop {
        let (sink, resumed) = cancellable(
            url,
            req.cancel,
            transfer(req, &client, url, &remote, &part, algo, may_resume),
        )
        .await
        .map_err(|e| drop_part_on_local_failure(e, &part))?;
        let actual = sink.hasher.clone().finalize_hex();
        match verify(url, expected, &actual) {
            Ok(()) => break sink,
            Err(e) => {
                drop(sink);
                remove_if_present(&part)?;
                if resumed && may_resume {
                    req.ui.warn(format!(
                        "`{url}` did not match its checksum after resuming; downloading it again from the start"
                    ));
                    may_resume = false;
                    continue;
                }
                return Err(e);
            }
        }
    };
    let file = sink.file;
    let part_owned = part.clone();
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(|source| Error::WriteTask {
            path: part_owned,
            source,
        })?
        .map_err(|source| Error::WriteFile {
            path: part.clone(),
            source,
        })
        .map_err(|e| drop_part_on_local_failure(e, &part))?;
    std::fs::rename(&part, dest).map_err(|source| Error::Persist {
        path: dest.to_path_buf(),
        source,
    })?;
    if matches!(expected, Checksum::Digest { .. }) {
        cache::write_stamp(dest)?;
    }
    tracing::info!(path = %dest.display(), "downloaded and verified");
    Ok(())
}

/// Removes the partial download `part` when `e` is a failure to write it (a full disk, an I/O
/// error): it would only hold the space the next try needs. An interrupted transfer keeps it,
/// so the next run resumes.
fn drop_part_on_local_failure(e: Error, part: &Path) -> Error {
    if matches!(e, Error::WriteFile { .. } | Error::WriteTask { .. }) {
        match std::fs::remove_file(part) {
            Ok(()) => tracing::info!(path = %part.display(), "removed the partial download"),
            Err(r) if r.kind() == io::ErrorKind::NotFound => {}
            Err(r) => {
                tracing::warn!(path = %part.display(), error = %r, "could not remove the partial download")
            }
        }
    }
    e
}

/// Fills `part` from `remote`, retrying (with `Range` from what has arrived) up to the retry
/// limit. Returns the sink and whether any byte came from before a resume.
async fn transfer(
    req: &Request<'_>,
    client: &reqwest::Client,
    url: &str,
    remote: &Url,
    part: &Path,
    algo: HashAlgo,
    may_resume: bool,
) -> Result<(Sink, bool), Error> {
    let write_err = |source| Error::WriteFile {
        path: part.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(!may_resume)
        .open(part)
        .map_err(write_err)?;
    let mut sink = Sink {
        file,
        hasher: Hasher::new(algo),
        offset: 0,
        algo,
    };
    let mut resumed = false;
    let existing = sink.file.metadata().map_err(write_err)?.len();
    if existing > 0 {
        req.ui
            .message(format!("Resuming `{url}` after {existing} bytes"));
        sink = rehash_part(sink, part).await?;
        resumed = true;
    }

    let mut progress: Option<crate::ui::Progress> = None;
    let mut backoff = req.retry.backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = sink.offset;
        if before > 0 {
            resumed = true;
        }
        let outcome;
        (sink, outcome) = try_once(req, client, url, remote, part, sink, &mut progress).await?;
        let err = match outcome {
            Outcome::Complete => {
                if let Some(p) = progress {
                    p.finish();
                }
                return Ok((sink, resumed));
            }
            Outcome::Failed(e) => e,
        };
        if !err.is_transient() || attempt >= req.retry.attempts {
            if attempt > 1 && err.is_transient() {
                return Err(Error::Retries {
                    url: url.into(),
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            return Err(err);
        }
        tracing::info!(%url, attempt, offset = sink.offset, error = %err, "transfer interrupted");
        req.ui.message(format!(
            "Transfer of `{url}` interrupted after {} bytes ({}); retrying",
            sink.offset,
            chain(&err)
        ));
        if sink.offset == before {
            // Nothing arrived: give the server time before asking again.
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        } else {
            backoff = req.retry.backoff;
        }
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` value.
fn content_range_start(v: &str) -> Option<u64> {
    let range = v.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// Hashes what `part` already holds (left by an interrupted run) so the transfer can append.
async fn rehash_part(mut sink: Sink, part: &Path) -> Result<Sink, Error> {
    let path = part.to_path_buf();
    tokio::task::spawn_blocking(move || {
        sink.file.seek(io::SeekFrom::Start(0))?;
        let n = hash::hash_reader(&mut sink.file, &mut sink.hasher)?;
        sink.offset = n;
        Ok(sink)
    })
    .await
    .map_err(|source| Error::HashTask {
        path: path.clone(),
        source,
    })?
    .map_err(|source| Error::ReadFile { path, source })
}

/// One GET (with `Range` when the sink holds bytes). The body goes through a bounded queue to a
/// blocking thread that writes and hashes it, so network reads never wait on the disk or the
/// hash. Always hands the sink back, holding exactly what was written.
async fn try_once(
    req: &Request<'_>,
    client: &reqwest::Client,
    url: &str,
    remote: &Url,
    part: &Path,
    mut sink: Sink,
    progress: &mut Option<crate::ui::Progress>,
) -> Result<(Sink, Outcome), Error> {
    let write_err = |source| Error::WriteFile {
        path: part.to_path_buf(),
        source,
    };
    let mut get = client.get(remote.clone());
    if sink.offset > 0 {
        get = get.header(RANGE, format!("bytes={}-", sink.offset));
    }
    let resp = match get.send().await {
        Ok(r) => r,
        Err(source) => {
            let e = Error::Request {
                url: url.into(),
                source,
            };
            return Ok((sink, Outcome::Failed(e)));
        }
    };
    let status = resp.status();
    let body_len = resp.content_length();
    let expected_total = match status {
        StatusCode::PARTIAL_CONTENT => {
            let start = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_start);
            if start != Some(sink.offset) {
                tracing::warn!(%url, ?start, offset = sink.offset, "unexpected Content-Range; restarting");
                sink.restart().map_err(write_err)?;
                return Ok((sink, Outcome::Failed(Error::Restart { url: url.into() })));
            }
            body_len.map(|n| n + sink.offset)
        }
        StatusCode::RANGE_NOT_SATISFIABLE if sink.offset > 0 => {
            let total = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|t| t.trim().parse::<u64>().ok());
            if total == Some(sink.offset) {
                // The earlier run had received everything.
                return Ok((sink, Outcome::Complete));
            }
            tracing::warn!(%url, ?total, offset = sink.offset, "range not satisfiable");
            sink.restart().map_err(write_err)?;
            return Ok((sink, Outcome::Failed(Error::Restart { url: url.into() })));
        }
        s if s.is_success() => {
            if sink.offset > 0 {
                req.ui.message(format!(
                    "`{url}` does not resume downloads; starting again from the beginning"
                ));
                sink.restart().map_err(write_err)?;
            }
            body_len
        }
        _ => {
            let e = Error::HttpStatus {
                url: url.into(),
                status: status.as_u16(),
            };
            return Ok((sink, Outcome::Failed(e)));
        }
    };
    let label = format!("Downloading `{url}`");
    let p = progress.get_or_insert_with(|| req.ui.progress(label, expected_total));
    p.set_position(sink.offset);
    let base = sink.offset;

    // Network chunks are passed on in batches (without copying) and written with one
    // `writev` per batch.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || {
        let mut flusher = Flusher::default();
        while let Some(batch) = rx.blocking_recv() {
            if let Err(e) = write_batch(&mut sink.file, &batch) {
                return (sink, Err(e));
            }
            let mut n = 0;
            for chunk in &batch {
                sink.hasher.update(chunk);
                n += chunk.len();
            }
            sink.offset += n as u64;
            if let Err(e) = flusher.wrote(&sink.file, n) {
                return (sink, Err(e));
            }
        }
        let done = flusher.finish();
        (sink, done)
    });
    let mut received = 0u64;
    let mut body_err = None;
    let mut stream = resp;
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    loop {
        match stream.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                p.set_position(base + received);
                batch_bytes += chunk.len();
                batch.push(chunk);
                if (batch_bytes >= WRITE_CHUNK || batch.len() >= BATCH_PIECES)
                    && tx.send(std::mem::take(&mut batch)).await.is_err()
                {
                    break;
                }
                if batch.is_empty() {
                    batch_bytes = 0;
                }
            }
            Ok(None) => break,
            Err(source) => {
                body_err = Some(Error::ReadBody {
                    url: url.into(),
                    source,
                });
                break;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let (sink, written) = writer.await.map_err(|source| Error::WriteTask {
        path: part.to_path_buf(),
        source,
    })?;
    written.map_err(write_err)?;
    if let Some(e) = body_err {
        return Ok((sink, Outcome::Failed(e)));
    }
    if let Some(total) = expected_total
        && sink.offset < total
    {
        let e = Error::Truncated {
            url: url.into(),
            got: sink.offset,
            expected: total,
        };
        return Ok((sink, Outcome::Failed(e)));
    }
    Ok((sink, Outcome::Complete))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_server::HttpServer;
    use std::net::{IpAddr, Ipv4Addr};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const ISO: &[u8] = b"not really an ISO, but bytes to hash\n";

    fn digest_of(bytes: &[u8]) -> Checksum {
        let mut h = Hasher::new(HashAlgo::Sha256);
        h.update(bytes);
        Checksum::Digest {
            algo: HashAlgo::Sha256,
            hex: h.finalize_hex(),
        }
    }

    fn wrong_digest() -> Checksum {
        Checksum::Digest {
            algo: HashAlgo::Sha256,
            hex: "0".repeat(64),
        }
    }

    fn list(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    async fn get(urls: &[String], sum: &Checksum, cache: &Path) -> Result<Fetched, Error> {
        get_with(urls, sum, cache, &CancellationToken::new()).await
    }

    async fn get_with(
        urls: &[String],
        sum: &Checksum,
        cache: &Path,
        cancel: &CancellationToken,
    ) -> Result<Fetched, Error> {
        let (ui, _) = Ui::memory();
        fetch(&Request {
            urls,
            checksum: sum,
            target: Target::Cache {
                dir: cache.to_path_buf(),
                ext: "iso".into(),
            },
            retry: Retry {
                attempts: 3,
                backoff: Duration::from_millis(10),
            },
            ui: &ui,
            cancel,
        })
        .await
    }

    /// A temp dir with `www/test.iso`, served over loopback.
    async fn served() -> (tempfile::TempDir, HttpServer) {
        let root = tempfile::tempdir().unwrap();
        let www = root.path().join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("test.iso"), ISO).unwrap();
        let server = HttpServer::start(&www, LOCALHOST, 0, 0).await.unwrap();
        (root, server)
    }

    #[test]
    fn sources() {
        let local = |p: &str| -> Result<Source, &str> { Ok(Source::Local(PathBuf::from(p))) };
        let table: [(&str, Result<Source, &str>, &str); 6] = [
            ("/isos/x.iso", local("/isos/x.iso"), "plain path"),
            ("x.iso", local("x.iso"), "relative path"),
            (
                "file:///isos/a%20b.iso",
                local("/isos/a b.iso"),
                "file URL, decoded",
            ),
            (
                "https://h/x.iso",
                Ok(Source::Remote(Url::parse("https://h/x.iso").unwrap())),
                "https",
            ),
            ("ftp://h/x.iso", Err("UnsupportedScheme"), "other scheme"),
            (
                "file://host/x.iso",
                Err("InvalidFileUrl"),
                "file URL with a host",
            ),
        ];
        for (input, want, reason) in table {
            let got = parse_source(input).map_err(|e| match e {
                Error::UnsupportedScheme { .. } => "UnsupportedScheme",
                Error::InvalidFileUrl { .. } => "InvalidFileUrl",
                _ => "other",
            });
            assert_eq!(got, want, "{reason}");
        }
    }

    #[test]
    fn file_names_for_checksum_files() {
        let table = [
            ("https://h/d/debian-12.iso?x=1", "debian-12.iso"),
            ("https://h/d/a%20b.iso", "a b.iso"),
            ("https://h/d/100%zz.iso", "100%zz.iso"),
            ("/isos/x.iso", "x.iso"),
        ];
        for (url, want) in table {
            assert_eq!(file_name_of(&parse_source(url).unwrap()), want, "{url}");
        }
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[tokio::test]
    async fn downloads_into_the_cache_then_reuses_it() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let sum = digest_of(ISO);

        let got = get(std::slice::from_ref(&url), &sum, &cache).await.unwrap();
        let name = format!("{sum}.iso").replace(':', "-");
        assert_eq!(got.path, cache.join(&name));
        assert_eq!(got.origin, Origin::Downloaded);
        assert_eq!(std::fs::read(&got.path).unwrap(), ISO);
        assert_eq!(
            list(&cache),
            [
                name.clone(),
                format!("{name}.lock"),
                format!("{name}.verified")
            ]
        );
        assert_eq!(server.requests(), ["GET /test.iso 200"]);

        let again = get(std::slice::from_ref(&url), &sum, &cache).await.unwrap();
        assert_eq!(again.path, got.path);
        assert_eq!(again.origin, Origin::Cached { rehashed: false });
        assert_eq!(server.requests().len(), 1, "a cache hit makes no request");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn mismatch_shows_both_digests_and_leaves_nothing() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let err = get(std::slice::from_ref(&url), &wrong_digest(), &cache)
            .await
            .unwrap_err();
        let Error::ChecksumMismatch {
            url: u,
            expected,
            actual,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(u, &url);
        assert_eq!(expected, &format!("sha256:{}", "0".repeat(64)));
        assert_eq!(actual, &digest_of(ISO).to_string());
        let left: Vec<String> = list(&cache)
            .into_iter()
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "no file but the lock");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn checksum_none_caches_under_the_url_digest() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let got = get(std::slice::from_ref(&url), &Checksum::None, &cache)
            .await
            .unwrap();
        assert!(
            got.path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("url-"),
            "{got:?}"
        );
        get(std::slice::from_ref(&url), &Checksum::None, &cache)
            .await
            .unwrap();
        assert_eq!(server.requests().len(), 1);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn local_files_are_verified_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("local.iso");
        std::fs::write(&iso, ISO).unwrap();
        let cache = dir.path().join("cache");
        let plain = iso.to_str().unwrap();
        for url in [plain.to_owned(), format!("file://{plain}")] {
            let got = get(std::slice::from_ref(&url), &digest_of(ISO), &cache)
                .await
                .unwrap();
            assert_eq!(
                (got.path, got.origin),
                (iso.clone(), Origin::Local),
                "{url}"
            );
            let err = get(std::slice::from_ref(&url), &wrong_digest(), &cache)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
        }
        assert!(!cache.exists(), "local files are not copied");

        let missing = dir.path().join("missing.iso");
        for sum in [digest_of(ISO), Checksum::None] {
            let err = get(&[missing.to_str().unwrap().to_owned()], &sum, &cache)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("missing.iso"), "{err}");
        }
    }

    #[tokio::test]
    async fn cancellation_stops_a_stalled_download() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        // A server that accepts and then never answers.
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/slow.iso",
            listener.local_addr().unwrap().port()
        );
        let cancel = CancellationToken::new();
        let stall = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                let (conn, _) = listener.accept().await.unwrap();
                cancel.cancel(); // the request is in flight now
                conn
            }
        });
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            get_with(&[url], &digest_of(ISO), &cache, &cancel),
        )
        .await
        .expect("cancellation is prompt");
        assert!(matches!(res, Err(Error::Cancelled { .. })), "{res:?}");
        stall.abort();
    }
}
