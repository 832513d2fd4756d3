//! Fetching inputs from a misbehaving loopback server (issue 4): resume after a cut, servers
//! without ranges, lying lengths, 404 then the next URL, redirects, every checksum form, the
//! content-addressed cache (a hit makes no request), and two kilns sharing one cache.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::faulty_http::{FaultyServer, Route};
use common::*;
use kiln::download::{self, Error, Fetched, Origin, Retry, Target};
use kiln::types::{Checksum, parse_checksum};
use kiln::ui::Ui;
use tokio_util::sync::CancellationToken;

/// Bytes that differ at every offset, so a resumed download at a wrong offset cannot verify.
fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    let mut h = kiln::download::hash::Hasher::new(kiln::types::HashAlgo::Sha256);
    h.update(bytes);
    h.finalize_hex()
}

fn sum(bytes: &[u8]) -> Checksum {
    parse_checksum(&format!("sha256:{}", sha256(bytes))).unwrap()
}

struct Run {
    result: Result<Fetched, Error>,
    lines: Vec<String>,
}

async fn fetch_into(cache: &Path, urls: &[String], checksum: &Checksum) -> Run {
    let (ui, lines) = Ui::memory();
    let result = download::fetch(&download::Request {
        urls,
        checksum,
        target: Target::Cache {
            dir: cache.to_path_buf(),
            ext: "iso".into(),
        },
        retry: Retry {
            attempts: 4,
            backoff: Duration::from_millis(20),
        },
        ui: &ui,
        cancel: &CancellationToken::new(),
    })
    .await;
    let lines = lines.lock().unwrap().clone();
    Run { result, lines }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn cache_file(cache: &Path, bytes: &[u8]) -> PathBuf {
    cache.join(format!("sha256-{}.iso", sha256(bytes)))
}

/// Regression for issue 4: a connection cut mid-body is resumed with `Range` from the byte
/// where it stopped, and the file is still verified whole.
#[tokio::test]
async fn resume_after_a_cut_uses_range_and_verifies_whole() {
    let body = content(3 << 20);
    let cut = 1 << 20;
    let server = FaultyServer::start(vec![("/d.iso", Route::cut_file(&body, true, &[cut]))]);
    let dir = tempfile::tempdir().unwrap();
    let run = fetch_into(dir.path(), &[server.url("/d.iso")], &sum(&body)).await;
    let got = run.result.unwrap();
    assert_eq!(got.origin, Origin::Downloaded);
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, [None, Some(format!("bytes={cut}-"))]);
    assert!(
        run.lines.iter().any(|l| l.contains("interrupted")),
        "{:?}",
        run.lines
    );
}

/// A server that ignores `Range` answers 200 to the retry: kiln starts over cleanly instead
/// of appending the whole file to the part it had.
#[tokio::test]
async fn server_without_ranges_restarts_cleanly() {
    let body = content(2 << 20);
    let server = FaultyServer::start(vec![("/d.iso", Route::cut_file(&body, false, &[700_000]))]);
    let dir = tempfile::tempdir().unwrap();
    let run = fetch_into(dir.path(), &[server.url("/d.iso")], &sum(&body)).await;
    let got = run.result.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    assert_eq!(server.requests().len(), 2);
    assert!(
        run.lines.iter().any(|l| l.contains("does not resume")),
        "{:?}",
        run.lines
    );
}

/// A partial file left by an interrupted run (say, a killed kiln) is resumed by the next one.
#[tokio::test]
async fn a_part_left_by_an_earlier_run_is_resumed() {
    let body = content(1 << 20);
    let server = FaultyServer::start(vec![("/d.iso", Route::file(&body, true))]);
    let dir = tempfile::tempdir().unwrap();
    let part = PathBuf::from(format!("{}.part", cache_file(dir.path(), &body).display()));
    std::fs::write(&part, &body[..300_000]).unwrap();
    let run = fetch_into(dir.path(), &[server.url("/d.iso")], &sum(&body)).await;
    assert_eq!(std::fs::read(run.result.unwrap().path).unwrap(), body);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, [Some("bytes=300000-".to_owned())]);
    assert!(!part.exists());
}

/// A stale partial file (other content) fails verification after resuming; kiln downloads
/// once more from zero rather than failing or caching it.
#[tokio::test]
async fn a_stale_part_is_replaced_by_a_full_download() {
    let body = content(1 << 20);
    let server = FaultyServer::start(vec![("/d.iso", Route::file(&body, true))]);
    let dir = tempfile::tempdir().unwrap();
    let part = PathBuf::from(format!("{}.part", cache_file(dir.path(), &body).display()));
    std::fs::write(&part, vec![0u8; 300_000]).unwrap();
    let run = fetch_into(dir.path(), &[server.url("/d.iso")], &sum(&body)).await;
    assert_eq!(std::fs::read(run.result.unwrap().path).unwrap(), body);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, [Some("bytes=300000-".to_owned()), None]);
}

/// A server announcing more bytes than it sends never yields a cached file: each try is
/// retried (bounded), then the error says what happened.
#[tokio::test]
async fn lying_lengths_are_never_cached() {
    let body = content(100_000);
    let server = FaultyServer::start(vec![
        (
            "/long.iso",
            Route::LyingLength {
                body: body.clone().into(),
                claimed: body.len() + 5000,
            },
        ),
        (
            "/short.iso",
            Route::LyingLength {
                body: body.clone().into(),
                claimed: body.len() - 5000,
            },
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let run = fetch_into(dir.path(), &[server.url("/long.iso")], &sum(&body)).await;
    let err = run.result.unwrap_err();
    assert!(matches!(err, Error::Retries { attempts: 4, .. }), "{err:?}");
    assert_eq!(server.requests_for("/long.iso").len(), 4);

    // Fewer bytes announced than the file has: the body is cut short, so it cannot verify.
    let run = fetch_into(dir.path(), &[server.url("/short.iso")], &sum(&body)).await;
    let err = run.result.unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert!(!cache_file(dir.path(), &body).exists());
}

/// `iso_urls`: a 404 is reported (with the URL) and the next URL is tried; a redirect is
/// followed.
#[tokio::test]
async fn not_found_then_redirect_to_the_file() {
    let body = content(50_000);
    let server = FaultyServer::start(vec![
        ("/real.iso", Route::file(&body, true)),
        ("/moved.iso", Route::Redirect("/real.iso".into())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let urls = [server.url("/missing.iso"), server.url("/moved.iso")];
    let run = fetch_into(dir.path(), &urls, &sum(&body)).await;
    let got = run.result.unwrap();
    assert_eq!(got.url, urls[1]);
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let warned = run
        .lines
        .iter()
        .any(|l| l.contains("warning") && l.contains(&urls[0]) && l.contains("404"));
    assert!(warned, "{:?}", run.lines);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/missing.iso", "/moved.iso", "/real.iso"]);

    // Every URL failing names how many were tried, and the last failure. (A fresh cache: in
    // the first one the ISO is found by its checksum, whatever the URL.)
    let run = fetch_into(
        &dir.path().join("empty"),
        &[server.url("/a.iso"), server.url("/b.iso")],
        &sum(&body),
    )
    .await;
    let err = run.result.unwrap_err();
    assert!(
        matches!(err, Error::AllUrlsFailed { count: 2, .. }),
        "{err:?}"
    );
}

/// Regression for issue 4 (Packer keys its cache by the checksum string): the same ISO
/// named by another spelling of its checksum, or through a checksum file, is a cache hit,
/// and a hit makes no request to the ISO's server.
#[tokio::test]
async fn cache_hit_makes_zero_requests_whatever_the_checksum_spelling() {
    let body = content(200_000);
    let hex = sha256(&body);
    let server = FaultyServer::start(vec![("/d.iso", Route::file(&body, true))]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let url = [server.url("/d.iso")];
    let first = fetch_into(&cache, &url, &sum(&body)).await.result.unwrap();
    assert_eq!(first.origin, Origin::Downloaded);

    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(&sums, format!("{hex} *d.iso\n")).unwrap();
    for spelling in [
        hex.to_uppercase(),
        format!("SHA256:{hex}"),
        format!("file:{}", sums.display()),
    ] {
        let got = fetch_into(&cache, &url, &parse_checksum(&spelling).unwrap())
            .await
            .result
            .unwrap();
        assert_eq!(got.path, first.path, "{spelling}");
        assert_eq!(got.origin, Origin::Cached { rehashed: false }, "{spelling}");
    }
    assert_eq!(server.requests().len(), 1, "only the first fetch downloads");

    // A cached file changed behind kiln's back is hashed again, found corrupt, replaced.
    std::fs::write(&first.path, b"corrupt").unwrap();
    let again = fetch_into(&cache, &url, &sum(&body)).await.result.unwrap();
    assert_eq!(again.origin, Origin::Downloaded);
    assert_eq!(std::fs::read(&again.path).unwrap(), body);
}

/// Every checksum form resolves and verifies: md5, sha1, sha512, GNU and BSD checksum files
/// (served over HTTP and read from a path), clearsigned.
#[tokio::test]
async fn every_checksum_form_verifies() {
    use kiln::types::HashAlgo;
    let body = content(70_000);
    let digest = |algo| {
        let mut h = kiln::download::hash::Hasher::new(algo);
        h.update(&body);
        h.finalize_hex()
    };
    let (md5, sha1, sha512) = (
        digest(HashAlgo::Md5),
        digest(HashAlgo::Sha1),
        digest(HashAlgo::Sha512),
    );
    let gnu = format!("{}  other.iso\n{}  d.iso\n", "0".repeat(64), sha256(&body));
    let bsd_signed = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA512 (d.iso) = {sha512}\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n"
    );
    let server = FaultyServer::start(vec![
        ("/d.iso", Route::file(&body, true)),
        ("/SHA256SUMS", Route::file(gnu.as_bytes(), false)),
        ("/CHECKSUM", Route::file(bsd_signed.as_bytes(), false)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let local_sums = dir.path().join("CHECKSUM");
    std::fs::write(&local_sums, &bsd_signed).unwrap();
    let forms = [
        format!("md5:{md5}"),
        sha1.clone(),
        format!("sha512:{sha512}"),
        format!("file:{}", server.url("/SHA256SUMS")),
        format!("file:{}", server.url("/CHECKSUM")),
        format!("file:file://{}", local_sums.display()),
    ];
    for (i, form) in forms.iter().enumerate() {
        let cache = dir.path().join(format!("cache{i}"));
        let run = fetch_into(
            &cache,
            &[server.url("/d.iso")],
            &parse_checksum(form).unwrap(),
        )
        .await;
        let got = run.result.unwrap_or_else(|e| panic!("{form}: {e:?}"));
        assert_eq!(std::fs::read(&got.path).unwrap(), body, "{form}");
    }
    // A checksum file that does not list the ISO names both.
    let run = fetch_into(
        &dir.path().join("c"),
        &[server.url("/other-name.iso")],
        &parse_checksum(&format!("file:{}", server.url("/SHA256SUMS"))).unwrap(),
    )
    .await;
    let msg = run.result.unwrap_err().to_string();
    assert!(
        msg.contains("other-name.iso") && msg.contains("SHA256SUMS"),
        "{msg}"
    );
}

/// Two kilns fetching the same ISO into one cache at once: one downloads, the other waits for
/// the lock and then uses the verified file. One request, one file, no leftovers.
#[test]
fn two_kilns_share_one_cache() {
    let body = content(4 << 20);
    let server = FaultyServer::start(vec![(
        "/d.iso",
        Route::File {
            body: body.clone().into(),
            ranges: true,
            cuts: Default::default(),
            // 64 chunks of 64 KiB at 10 ms: the first download takes about 0.6 s.
            pace: Some(Duration::from_millis(10)),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let spawn = || {
        KillOnDrop(
            kiln()
                .env("KILN_CACHE_DIR", &cache)
                .args(["cache", "fetch", "--checksum"])
                .arg(format!("sha256:{}", sha256(&body)))
                .arg(server.url("/d.iso"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let (a, b) = (spawn(), spawn());
    for mut child in [a, b] {
        let out = std::mem::replace(
            &mut child.0,
            std::process::Command::new("true").spawn().unwrap(),
        )
        .wait_with_output()
        .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    let name = format!("sha256-{}.iso", sha256(&body));
    assert_eq!(
        files(&cache),
        [
            name.clone(),
            format!("{name}.lock"),
            format!("{name}.verified")
        ]
    );
    assert_eq!(std::fs::read(cache.join(&name)).unwrap(), body);

    // `kiln cache list` shows it, `kiln cache clean` removes it.
    let list = kiln()
        .env("KILN_CACHE_DIR", &cache)
        .args(["cache", "list"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", describe(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains(&name) && text.contains("verified sha256"),
        "{text}"
    );
    let clean = kiln()
        .env("KILN_CACHE_DIR", &cache)
        .args(["cache", "clean"])
        .output()
        .unwrap();
    assert!(clean.status.success(), "{}", describe(&clean));
    assert_eq!(files(&cache), Vec::<String>::new());
}

/// `kiln cache verify` hashes every entry again: a corrupted one fails the command and is
/// removed, a good one passes; a partial download is listed as such.
#[tokio::test]
async fn cache_verify_finds_and_removes_a_corrupt_entry() {
    let good = content(100_000);
    let bad = content(90_000);
    let server = FaultyServer::start(vec![
        ("/good.iso", Route::file(&good, true)),
        ("/bad.iso", Route::file(&bad, true)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for (path, body) in [("/good.iso", &good), ("/bad.iso", &bad)] {
        fetch_into(&cache, &[server.url(path)], &sum(body))
            .await
            .result
            .unwrap();
    }
    std::fs::write(cache_file(&cache, &bad), b"bit rot").unwrap();
    std::fs::write(cache.join("sha256-x.iso.part"), b"half").unwrap();

    let list = kiln()
        .env("KILN_CACHE_DIR", &cache)
        .args(["cache", "list"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("partial"),
        "{}",
        describe(&list)
    );
    let out = kiln()
        .env("KILN_CACHE_DIR", &cache)
        .args(["cache", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("ok  {}", cache_file(&cache, &good).display())),
        "{text}"
    );
    assert!(text.contains("MISMATCH, removed"), "{text}");
    assert!(!cache_file(&cache, &bad).exists());
    assert!(cache_file(&cache, &good).exists());
}

/// `iso_skip_cache`: the first URL whose server answers `HEAD` with `Accept-Ranges: bytes` is
/// handed to QEMU; without one, the error says why.
#[tokio::test]
async fn skip_cache_picks_a_url_with_byte_ranges() {
    let body = content(1000);
    let server = FaultyServer::start(vec![
        ("/plain.iso", Route::file(&body, false)),
        ("/ranged.iso", Route::file(&body, true)),
    ]);
    let (ui, lines) = Ui::memory();
    let urls = [
        server.url("/missing.iso"),
        server.url("/plain.iso"),
        server.url("/ranged.iso"),
    ];
    let got = download::probe_byte_serving(&urls, &ui).await.unwrap();
    assert_eq!(got, urls[2]);
    assert_eq!(
        lines.lock().unwrap().len(),
        2,
        "{:?}",
        lines.lock().unwrap()
    );
    assert!(server.requests().iter().all(|r| r.method == "HEAD"));
    let err = download::probe_byte_serving(&urls[..2], &ui)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoByteServing), "{err:?}");
}

/// Offline rebuilds: with `iso_checksum = "file:URL"` and the ISO cached, a checksum file that
/// cannot be fetched any more falls back to the copy kept in the cache (with a warning).
#[tokio::test]
async fn offline_rebuild_uses_the_cached_checksum_file() {
    let body = content(60_000);
    let sums = format!("{}  d.iso\n", sha256(&body));
    let server = FaultyServer::start(vec![
        ("/d.iso", Route::file(&body, true)),
        ("/SHA256SUMS", Route::file(sums.as_bytes(), false)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let checksum = parse_checksum(&format!("file:{}", server.url("/SHA256SUMS"))).unwrap();
    let urls = [server.url("/d.iso")];
    let first = fetch_into(dir.path(), &urls, &checksum)
        .await
        .result
        .unwrap();
    assert_eq!(first.origin, Origin::Downloaded);
    drop(server); // offline from here on

    let run = fetch_into(dir.path(), &urls, &checksum).await;
    let again = run.result.unwrap();
    assert_eq!(
        (again.path, again.origin),
        (first.path, Origin::Cached { rehashed: false })
    );
    assert!(
        run.lines
            .iter()
            .any(|l| l.contains("warning") && l.contains("copy kept in the cache")),
        "{:?}",
        run.lines
    );
}
