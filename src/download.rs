//! Fetching the installer ISO: local files are verified in place, HTTP(S) downloads are
//! streamed into the cache, hashed on the way, and only renamed into place once the checksum
//! matches — so the cache never holds a partial or wrong file under its final name.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::types::Checksum;

/// Time allowed to open a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence allowed between two reads of a response body.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Read size when hashing local files.
const HASH_BUF: usize = 1 << 20;

/// Why the ISO could not be fetched.
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
    /// The cache directory could not be created.
    #[error("Cannot create cache directory `{path}`")]
    CreateCacheDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The temporary download file could not be created.
    #[error("Cannot create a temporary file in `{path}`")]
    CreateTempFile {
        path: PathBuf,
        #[source]
        source: io::Error,
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
    /// Writing the download to disk failed.
    #[error("Cannot write `{path}`")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the verified download to its cache name failed.
    #[error("Cannot move the download to `{path}`")]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Removing a corrupt cached file failed.
    #[error("Cannot remove corrupt cached file `{path}`")]
    RemoveCached {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The build was cancelled while fetching.
    #[error("Fetching `{url}` was cancelled")]
    Cancelled { url: String },
}

/// Where an `iso_url` points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Local(PathBuf),
    Remote(Url),
}

/// Classifies `iso_url`: `http(s)://` is remote, `file://` and anything without a scheme local.
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

/// Returns the local path of the verified ISO.
///
/// Local paths and `file://` URLs are hashed in place (not copied). HTTP(S) downloads land in
/// `cache_dir/<sha256>.iso`, or `cache_dir/<sha256 of the URL>.iso` with `Checksum::None`; a
/// cached file is re-verified and used without a request.
pub async fn fetch_iso(
    url: &str,
    checksum: &Checksum,
    cache_dir: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, Error> {
    match parse_source(url)? {
        Source::Local(path) => {
            if let Checksum::Digest { .. } = checksum {
                let actual = cancellable(url, cancel, hash_file(&path)).await?;
                verify(url, checksum, &actual)?;
            } else {
                // Even unverified, a missing file must fail here rather than in QEMU.
                tokio::fs::metadata(&path)
                    .await
                    .map_err(|source| Error::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
            }
            tracing::debug!(path = %path.display(), "using local ISO");
            Ok(path)
        }
        Source::Remote(remote) => fetch_remote(url, remote, checksum, cache_dir, cancel).await,
    }
}

async fn fetch_remote(
    url: &str,
    remote: Url,
    checksum: &Checksum,
    cache_dir: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, Error> {
    let dest = cache_dir.join(cache_name(url, checksum));
    if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
        match checksum {
            Checksum::None => {
                tracing::info!(path = %dest.display(), "using cached ISO (unverified)");
                return Ok(dest);
            }
            Checksum::Digest { .. } => {
                let actual = cancellable(url, cancel, hash_file(&dest)).await?;
                if verify(url, checksum, &actual).is_ok() {
                    tracing::info!(path = %dest.display(), "using cached ISO");
                    return Ok(dest);
                }
                tracing::warn!(path = %dest.display(), "cached ISO is corrupt; downloading again");
                tokio::fs::remove_file(&dest)
                    .await
                    .map_err(|source| Error::RemoveCached {
                        path: dest.clone(),
                        source,
                    })?;
            }
        }
    }
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(|source| Error::CreateCacheDir {
            path: cache_dir.to_path_buf(),
            source,
        })?;
    // Removed on drop, i.e. on every error path below.
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".part")
        .tempfile_in(cache_dir)
        .map_err(|source| Error::CreateTempFile {
            path: cache_dir.to_path_buf(),
            source,
        })?;
    tracing::info!(%url, "downloading ISO");
    let actual = cancellable(url, cancel, download(url, remote, &tmp)).await?;
    verify(url, checksum, &actual)?;
    tmp.persist(&dest).map_err(|e| Error::Persist {
        path: dest.clone(),
        source: e.error,
    })?;
    tracing::info!(path = %dest.display(), "ISO downloaded and verified");
    Ok(dest)
}

/// Streams `remote` into `tmp`, returning the sha256 (hex) of what was written.
async fn download(url: &str, remote: Url, tmp: &tempfile::NamedTempFile) -> Result<String, Error> {
    let write_err = |source| Error::WriteFile {
        path: tmp.path().to_path_buf(),
        source,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(Error::BuildClient)?;
    let mut resp = client
        .get(remote)
        .send()
        .await
        .map_err(|source| Error::Request {
            url: url.into(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(Error::HttpStatus {
            url: url.into(),
            status: resp.status().as_u16(),
        });
    }
    let mut file = tokio::fs::File::from_std(tmp.as_file().try_clone().map_err(write_err)?);
    let mut hasher = Sha256::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| Error::ReadBody {
        url: url.into(),
        source,
    })? {
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(write_err)?;
    }
    file.flush().await.map_err(write_err)?;
    file.sync_all().await.map_err(write_err)?;
    Ok(hex(&hasher.finalize()))
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

/// The cache file name: the expected digest, or (with no checksum) the digest of the URL.
fn cache_name(url: &str, checksum: &Checksum) -> String {
    match checksum {
        Checksum::Digest { hex, .. } => format!("{hex}.iso"),
        Checksum::None => format!("{}.iso", hex(&Sha256::digest(url.as_bytes()))),
    }
}

/// Compares a computed sha256 with the expected checksum (always passes for `none`).
fn verify(url: &str, expected: &Checksum, actual: &str) -> Result<(), Error> {
    match expected {
        Checksum::None => Ok(()),
        Checksum::Digest { hex, .. } if hex.eq_ignore_ascii_case(actual) => Ok(()),
        Checksum::Digest { .. } => Err(Error::ChecksumMismatch {
            url: url.into(),
            expected: expected.to_string(),
            actual: format!("sha256:{actual}"),
        }),
    }
}

/// Hashes a local file with 1 MiB reads on a blocking thread.
async fn hash_file(path: &Path) -> Result<String, Error> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let read_err = |source| Error::ReadFile {
            path: owned.clone(),
            source,
        };
        let mut file = std::fs::File::open(&owned).map_err(read_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; HASH_BUF];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        Ok(hex(&hasher.finalize()))
    })
    .await
    .map_err(|source| Error::HashTask {
        path: path.to_path_buf(),
        source,
    })?
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ISO cache: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`
/// (else `kiln-cache` in the system temporary directory).
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`default_cache_dir`] with the environment passed in; empty variables count as unset.
fn cache_dir_from(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_server::HttpServer;
    use crate::types::HashAlgo;
    use std::net::{IpAddr, Ipv4Addr};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const ISO: &[u8] = b"not really an ISO, but bytes to hash\n";

    fn digest_of(bytes: &[u8]) -> Checksum {
        Checksum::Digest {
            algo: HashAlgo::Sha256,
            hex: hex(&Sha256::digest(bytes)),
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

    #[tokio::test]
    async fn downloads_into_the_cache_then_reuses_it() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let sum = digest_of(ISO);
        let cancel = CancellationToken::new();

        let path = fetch_iso(&url, &sum, &cache, &cancel).await.unwrap();
        let Checksum::Digest { hex: want, .. } = &sum else {
            unreachable!()
        };
        assert_eq!(path, cache.join(format!("{want}.iso")));
        assert_eq!(std::fs::read(&path).unwrap(), ISO);
        assert_eq!(list(&cache), [format!("{want}.iso")]);
        assert_eq!(server.requests(), ["GET /test.iso 200"]);

        let again = fetch_iso(&url, &sum, &cache, &cancel).await.unwrap();
        assert_eq!(again, path);
        assert_eq!(
            server.requests().len(),
            1,
            "the cached file needs no request"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn mismatch_leaves_nothing_in_the_cache() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let err = fetch_iso(&url, &wrong_digest(), &cache, &CancellationToken::new())
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
        assert_eq!(list(&cache), Vec::<String>::new());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn http_error_names_url_and_status() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/missing.iso", server.port());
        let err = fetch_iso(&url, &digest_of(ISO), &cache, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 404, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&url) && msg.contains("404"), "{msg}");
        assert_eq!(list(&cache), Vec::<String>::new());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn checksum_none_caches_under_the_url_digest() {
        let (root, server) = served().await;
        let cache = root.path().join("cache");
        let url = format!("http://127.0.0.1:{}/test.iso", server.port());
        let cancel = CancellationToken::new();
        let path = fetch_iso(&url, &Checksum::None, &cache, &cancel)
            .await
            .unwrap();
        assert_eq!(
            path,
            cache.join(format!("{}.iso", hex(&Sha256::digest(url.as_bytes()))))
        );
        fetch_iso(&url, &Checksum::None, &cache, &cancel)
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
        let cancel = CancellationToken::new();
        let plain = iso.to_str().unwrap();
        for url in [plain.to_owned(), format!("file://{plain}")] {
            let got = fetch_iso(&url, &digest_of(ISO), &cache, &cancel)
                .await
                .unwrap();
            assert_eq!(got, iso, "{url}");
            let err = fetch_iso(&url, &wrong_digest(), &cache, &cancel)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
        }
        assert!(!cache.exists(), "local files are not copied");

        let missing = dir.path().join("missing.iso");
        for sum in [digest_of(ISO), Checksum::None] {
            let err = fetch_iso(missing.to_str().unwrap(), &sum, &cache, &cancel)
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
            fetch_iso(&url, &digest_of(ISO), &cache, &cancel),
        )
        .await
        .expect("cancellation is prompt");
        assert!(matches!(res, Err(Error::Cancelled { .. })), "{res:?}");
        assert_eq!(list(&cache), Vec::<String>::new());
        stall.abort();
    }
}
