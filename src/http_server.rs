//! The HTTP server for `http_directory`: installers fetch their answer files (preseed,
//! kickstart, autoinstall) from it while the build runs.
//!
//! kiln binds loopback; under QEMU user networking the guest reaches it as `10.0.2.2`. Every
//! request is logged (method, path, status, bytes) because "the installer never asked for the
//! preseed" is the first thing to check when an unattended install stalls.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::services::ServeDir;

use crate::ui::Ui;

/// How long [`HttpServer::shutdown`] waits for open requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory to serve could not be read.
    #[error("Cannot read HTTP directory `{path}`")]
    ReadDirectory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path to serve exists but is not a directory.
    #[error("HTTP directory `{path}` is not a directory")]
    NotADirectory { path: PathBuf },
    /// `port_min` is above `port_max`.
    #[error("HTTP port range {min}–{max} is empty")]
    EmptyPortRange { min: u16, max: u16 },
    /// Every port of the range was in use.
    #[error("No free port for the HTTP server on {bind} in {min}–{max}")]
    NoFreePort { bind: IpAddr, min: u16, max: u16 },
    /// Binding failed for a reason other than the port being in use.
    #[error("Cannot bind the HTTP server to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A running file server; stopped by [`HttpServer::shutdown`] or, abruptly, when dropped.
pub struct HttpServer {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: DropGuard,
    task: JoinHandle<io::Result<()>>,
}

impl HttpServer {
    /// Serves `dir` on `bind` at the first free port in `[port_min, port_max]`, trying the ports
    /// in order from a random offset and wrapping around. A range of `0..=0` lets the OS choose.
    pub async fn start(
        dir: &Path,
        bind: IpAddr,
        port_min: u16,
        port_max: u16,
    ) -> Result<HttpServer, Error> {
        Self::start_logged(dir, bind, port_min, port_max, None).await
    }

    /// [`start`](Self::start), also writing one access-log line per request to `ui`:
    /// `HTTP GET /preseed.cfg 200 1234 bytes from 127.0.0.1:41234`.
    pub async fn start_logged(
        dir: &Path,
        bind: IpAddr,
        port_min: u16,
        port_max: u16,
        ui: Option<Ui>,
    ) -> Result<HttpServer, Error> {
        let meta = tokio::fs::metadata(dir)
            .await
            .map_err(|source| Error::ReadDirectory {
                path: dir.to_path_buf(),
                source,
            })?;
        if !meta.is_dir() {
            return Err(Error::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let root = tokio::fs::canonicalize(dir)
            .await
            .map_err(|source| Error::ReadDirectory {
                path: dir.to_path_buf(),
                source,
            })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback_service(ServeDir::new(&root))
            .layer(middleware::from_fn({
                let root = Arc::new(root.clone());
                move |req: Request, next: Next| inside_root(Arc::clone(&root), req, next)
            }))
            .layer(middleware::from_fn({
                let log = Arc::clone(&log);
                let ui = ui.clone();
                move |req: Request, next: Next| access_log(Arc::clone(&log), ui.clone(), req, next)
            }));
        let server = Self::serve(app, log, bind, port_min, port_max).await?;
        tracing::info!(dir = %dir.display(), port = server.port, "HTTP server started");
        Ok(server)
    }

    /// Serves `content` (`http_content`: URL path → body) on `bind` in the port range, with an
    /// access-log line per request on `ui`. Paths are matched after removing `.` and `..`
    /// segments and repeated slashes, as Packer's `path.Clean`; a miss is a 404 that suggests
    /// the nearest path.
    pub async fn start_content(
        content: BTreeMap<String, String>,
        bind: IpAddr,
        port_min: u16,
        port_max: u16,
        ui: Option<Ui>,
    ) -> Result<HttpServer, Error> {
        let content: BTreeMap<String, String> = content
            .into_iter()
            .map(|(k, v)| (clean_path(&k), v))
            .collect();
        let content = Arc::new(content);
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback({
                let content = Arc::clone(&content);
                move |req: Request| serve_content(Arc::clone(&content), req)
            })
            .layer(middleware::from_fn({
                let log = Arc::clone(&log);
                move |req: Request, next: Next| access_log(Arc::clone(&log), ui.clone(), req, next)
            }));
        let server = Self::serve(app, log, bind, port_min, port_max).await?;
        tracing::info!(
            paths = content.len(),
            port = server.port,
            "HTTP server started"
        );
        Ok(server)
    }

    async fn serve(
        app: Router,
        log: Arc<Mutex<Vec<String>>>,
        bind: IpAddr,
        port_min: u16,
        port_max: u16,
    ) -> Result<HttpServer, Error> {
        let listener = bind_in_range(bind, port_min, port_max).await?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: SocketAddr::new(bind, port_min),
            source,
        })?;
        let token = CancellationToken::new();
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(token.clone().cancelled_owned());
        let task = tokio::spawn(serve.into_future());
        Ok(HttpServer {
            port: addr.port(),
            log,
            stop: token.drop_guard(),
            task,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests served so far, oldest first, as `"GET /testos.cfg 200"`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// Stops accepting connections and waits (bounded) for open requests to finish.
    pub async fn shutdown(self) {
        let HttpServer {
            port, stop, task, ..
        } = self;
        drop(stop); // cancels the token: graceful shutdown begins
        let abort = task.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
            Ok(Ok(Ok(()))) => tracing::debug!(port, "HTTP server stopped"),
            Ok(Ok(Err(e))) => tracing::warn!(port, error = %e, "HTTP server failed"),
            Ok(Err(e)) => tracing::warn!(port, error = %e, "HTTP server task failed"),
            Err(_) => {
                tracing::warn!(
                    port,
                    "HTTP server did not stop in {SHUTDOWN_GRACE:?}; aborting"
                );
                abort.abort();
            }
        }
    }
}

/// Tries each port of the range once, starting at a random one; only "in use" moves on.
async fn bind_in_range(bind: IpAddr, min: u16, max: u16) -> Result<TcpListener, Error> {
    if min > max {
        return Err(Error::EmptyPortRange { min, max });
    }
    let start = rand::random_range(min..=max);
    for port in (start..=max).chain(min..start) {
        let addr = SocketAddr::new(bind, port);
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                tracing::debug!(%addr, "port in use, trying the next one");
            }
            Err(source) => return Err(Error::Bind { addr, source }),
        }
    }
    Err(Error::NoFreePort { bind, min, max })
}

/// Middleware: answers 404 when the request's path resolves (through symlinks) outside
/// `root`. `..` segments, also percent-encoded, are refused outright (ServeDir refuses them too).
async fn inside_root(root: Arc<PathBuf>, req: Request, next: Next) -> Response {
    let decoded = percent_decode(req.uri().path());
    let mut path = PathBuf::from(root.as_path());
    let mut escapes = decoded.is_none();
    for segment in decoded.as_deref().unwrap_or("").split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => escapes = true,
            s => path.push(s),
        }
    }
    if !escapes && let Ok(real) = tokio::fs::canonicalize(&path).await {
        escapes = !real.starts_with(root.as_path());
    }
    if escapes {
        tracing::debug!(uri = %req.uri(), "refusing a path outside the HTTP directory");
        let mut response = Response::new(axum::body::Body::from("404 Not Found\n"));
        *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
        return response;
    }
    next.run(req).await
}

/// A URL path with `.`/`..` segments resolved and slashes collapsed, always starting with `/`.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The `http_content` handler: GET and HEAD of a known path, else 404 (405 for other methods).
async fn serve_content(content: Arc<BTreeMap<String, String>>, req: Request) -> Response {
    use axum::http::{Method, StatusCode};
    let text = |status, body: String| {
        let mut r = Response::new(axum::body::Body::from(body));
        *r.status_mut() = status;
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 Method Not Allowed\n".into(),
        );
    }
    let path = clean_path(&percent_decode(req.uri().path()).unwrap_or_default());
    match content.get(&path) {
        Some(body) => {
            let mut r = text(StatusCode::OK, body.clone());
            r.headers_mut()
                .insert(CONTENT_LENGTH, axum::http::HeaderValue::from(body.len()));
            if req.method() == Method::HEAD {
                *r.body_mut() = axum::body::Body::empty();
            }
            r
        }
        None => {
            let hint = crate::suggest::suggest(&path, content.keys().map(String::as_str))
                .map(|near| format!(" Did you mean \"{near}\"?"))
                .unwrap_or_default();
            text(StatusCode::NOT_FOUND, format!("{path} not found.{hint}\n"))
        }
    }
}

/// `%XX`-decodes a URL path; `None` when the result is not UTF-8 or a `%` is malformed.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Middleware: one log line (and one stored entry) per request.
async fn access_log(
    log: Arc<Mutex<Vec<String>>>,
    ui: Option<Ui>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let bytes = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info!(target: "kiln::http", "{method} {path} {status} {bytes}");
    if let Some(ui) = &ui {
        let from = peer.map(|p| format!(" from {p}")).unwrap_or_default();
        ui.message(format!("HTTP {method} {path} {status} {bytes} bytes{from}"));
    }
    lock(&log).push(format!("{method} {path} {status}"));
    response
}

/// Locks the access log; a panic while holding it cannot leave a `Vec` of strings inconsistent.
fn lock(log: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A served directory `root/http` with `testos.cfg`, and a secret beside it in `root`.
    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("http")).unwrap();
        std::fs::write(root.path().join("http/testos.cfg"), "preseed\n").unwrap();
        std::fs::write(root.path().join("secret.txt"), "do not serve").unwrap();
        root
    }

    /// Sends a raw request line (so nothing normalises the path) and returns the whole response.
    async fn raw_get(port: u16, target: &str) -> String {
        let mut s = tokio::net::TcpStream::connect((LOCALHOST, port))
            .await
            .unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        out
    }

    /// A port that was free a moment ago.
    fn free_port() -> u16 {
        std::net::TcpListener::bind((LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn serves_files_and_logs_requests() {
        let root = fixture();
        let server = HttpServer::start(&root.path().join("http"), LOCALHOST, 0, 0)
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}/testos.cfg", server.port());
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "preseed\n");
        let missing = format!("http://127.0.0.1:{}/nope.cfg", server.port());
        assert_eq!(reqwest::get(&missing).await.unwrap().status(), 404);
        assert_eq!(
            server.requests(),
            ["GET /testos.cfg 200", "GET /nope.cfg 404"]
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn refuses_paths_outside_the_directory() {
        let root = fixture();
        let server = HttpServer::start(&root.path().join("http"), LOCALHOST, 0, 0)
            .await
            .unwrap();
        // Control: the raw client does fetch a file inside.
        assert!(
            raw_get(server.port(), "/testos.cfg")
                .await
                .starts_with("HTTP/1.1 200")
        );
        for target in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/..%2fsecret.txt",
        ] {
            let resp = raw_get(server.port(), target).await;
            assert!(!resp.starts_with("HTTP/1.1 200"), "{target}: {resp}");
            assert!(!resp.contains("do not serve"), "{target}: {resp}");
        }
        server.shutdown().await;
    }

    /// Issue 5: a symlink inside the directory never serves a file outside it.
    #[tokio::test]
    async fn refuses_symlinks_that_leave_the_directory() {
        let root = fixture();
        let http = root.path().join("http");
        std::os::unix::fs::symlink(root.path().join("secret.txt"), http.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(root.path(), http.join("up")).unwrap();
        std::os::unix::fs::symlink(http.join("testos.cfg"), http.join("alias.cfg")).unwrap();
        let server = HttpServer::start(&http, LOCALHOST, 0, 0).await.unwrap();
        for target in [
            "/leak.txt",
            "/up/secret.txt",
            "/up%2fsecret.txt",
            "/%6c%65ak.txt",
        ] {
            let resp = raw_get(server.port(), target).await;
            assert!(resp.starts_with("HTTP/1.1 404"), "{target}: {resp}");
            assert!(!resp.contains("do not serve"), "{target}: {resp}");
        }
        let inside = raw_get(server.port(), "/alias.cfg").await;
        assert!(
            inside.starts_with("HTTP/1.1 200"),
            "a link inside is fine: {inside}"
        );
        server.shutdown().await;
    }

    /// Issue 5: HEAD answers the file's Content-Length without a body; each request is one
    /// access-log line on the UI.
    #[tokio::test]
    async fn head_has_length_and_requests_reach_the_ui() {
        let root = fixture();
        let (ui, lines) = Ui::memory();
        let server = HttpServer::start_logged(&root.path().join("http"), LOCALHOST, 0, 0, Some(ui))
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}/testos.cfg", server.port());
        let resp = reqwest::Client::new().head(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[CONTENT_LENGTH], "8");
        assert_eq!(resp.bytes().await.unwrap().len(), 0);
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.headers()[CONTENT_LENGTH], "8");
        server.shutdown().await;
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("HTTP HEAD /testos.cfg 200 8 bytes from 127.0.0.1:"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("HTTP GET /testos.cfg 200 8 bytes"),
            "{lines:?}"
        );
    }

    /// Issue 5: `http_content` serves each path's text with its length (HEAD too), cleans
    /// paths like Packer, and suggests the nearest path on a miss.
    #[tokio::test]
    async fn serves_http_content() {
        let content = BTreeMap::from([
            ("/preseed.cfg".to_owned(), "d-i foo\n".to_owned()),
            ("ks/anaconda.ks".to_owned(), "text\n".to_owned()),
        ]);
        let (ui, lines) = Ui::memory();
        let server = HttpServer::start_content(content, LOCALHOST, 0, 0, Some(ui))
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", server.port());
        let resp = reqwest::get(format!("{base}/preseed.cfg")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[CONTENT_LENGTH], "8");
        assert_eq!(resp.text().await.unwrap(), "d-i foo\n");
        let resp = raw_get(server.port(), "/x/../ks//anaconda.ks").await;
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.ends_with("text\n"),
            "{resp}"
        );
        let head = reqwest::Client::new()
            .head(format!("{base}/preseed.cfg"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.headers()[CONTENT_LENGTH], "8");
        assert_eq!(head.bytes().await.unwrap().len(), 0);
        let miss = reqwest::get(format!("{base}/preseed.cgf")).await.unwrap();
        assert_eq!(miss.status(), 404);
        let body = miss.text().await.unwrap();
        assert!(body.contains("Did you mean \"/preseed.cfg\""), "{body}");
        server.shutdown().await;
        assert_eq!(lines.lock().unwrap().len(), 4);
    }

    #[test]
    fn clean_path_table() {
        for (input, want) in [
            ("/a/b", "/a/b"),
            ("a/b", "/a/b"),
            ("/a/./b//c", "/a/b/c"),
            ("/../../a", "/a"),
            ("/a/b/..", "/a"),
            ("", "/"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }

    #[tokio::test]
    async fn missing_directory_names_the_path() {
        let root = fixture();
        let dir = root.path().join("absent");
        let err = HttpServer::start(&dir, LOCALHOST, 0, 0)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::ReadDirectory { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.display().to_string()));
        let file = root.path().join("secret.txt");
        let err = HttpServer::start(&file, LOCALHOST, 0, 0)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn all_ports_taken_is_an_error() {
        let root = fixture();
        let held = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let err = HttpServer::start(root.path(), LOCALHOST, port, port)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::NoFreePort { .. }), "{err:?}");
        let err = HttpServer::start(root.path(), LOCALHOST, 9, 8)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::EmptyPortRange { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn skips_a_taken_port_in_the_range() {
        let root = fixture();
        // Find p such that p is held by us and p+1 is free (as far as we can tell).
        let (held, port) = loop {
            let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
            let p = l.local_addr().unwrap().port();
            if p < u16::MAX && std::net::TcpListener::bind((LOCALHOST, p + 1)).is_ok() {
                break (l, p);
            }
        };
        let server = HttpServer::start(root.path(), LOCALHOST, port, port + 1)
            .await
            .unwrap();
        assert_eq!(server.port(), port + 1);
        server.shutdown().await;
        drop(held);
    }

    #[tokio::test]
    async fn port_is_reusable_after_shutdown() {
        let root = fixture();
        let port = free_port();
        let dir = root.path().join("http");
        let server = HttpServer::start(&dir, LOCALHOST, port, port)
            .await
            .unwrap();
        // A served request leaves a closed connection (TIME_WAIT) on the port.
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/testos.cfg");
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .unwrap();
        let again = HttpServer::start(&dir, LOCALHOST, port, port)
            .await
            .unwrap();
        assert_eq!(again.port(), port);
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        again.shutdown().await;
    }
}
