//! A loopback HTTP/1.1 server for download tests that misbehaves on purpose: it serves files
//! (with or without byte ranges), cuts connections mid-body, lies about lengths, answers 404
//! and redirects, and logs every request. It binds 127.0.0.1 only and stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does for one path.
#[derive(Clone)]
pub enum Route {
    /// Serves `body`; honours `Range: bytes=N-` when `ranges`. For each queued cut, one response
    /// stops after that many body bytes and the connection is closed. `pace` slows the body
    /// down (a slow link), 64 KiB at a time.
    File {
        body: Arc<Vec<u8>>,
        ranges: bool,
        cuts: Arc<Mutex<VecDeque<usize>>>,
        pace: Option<Duration>,
    },
    /// Announces `claimed` bytes in `Content-Length` but sends `body` and closes.
    LyingLength { body: Arc<Vec<u8>>, claimed: usize },
    /// `302 Found` to `location`.
    Redirect(String),
}

impl Route {
    pub fn file(body: &[u8], ranges: bool) -> Self {
        Route::File {
            body: Arc::new(body.to_vec()),
            ranges,
            cuts: Arc::default(),
            pace: None,
        }
    }

    /// A file whose first responses break off after `cuts[i]` body bytes.
    pub fn cut_file(body: &[u8], ranges: bool, cuts: &[usize]) -> Self {
        Route::File {
            body: Arc::new(body.to_vec()),
            ranges,
            cuts: Arc::new(Mutex::new(cuts.iter().copied().collect())),
            pace: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

pub struct FaultyServer {
    port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultyServer {
    pub fn start(routes: Vec<(&str, Route)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let routes: Arc<HashMap<String, Route>> =
            Arc::new(routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect());
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (log, stop) = (log.clone(), stop.clone());
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (routes, log) = (routes.clone(), log.clone());
                    std::thread::spawn(move || {
                        let _ = serve(conn, &routes, &log);
                    });
                }
            }
        });
        Self {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The requests for `path` only.
    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    routes: &HashMap<String, Route>,
    log: &Mutex<Vec<Logged>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_owned());
        }
    }
    log.lock().unwrap().push(Logged {
        method: method.to_owned(),
        path: path.to_owned(),
        range: range.clone(),
    });
    let head_only = method == "HEAD";
    let mut out = conn;
    match routes.get(path) {
        None => write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
        Some(Route::Redirect(location)) => write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
        Some(Route::LyingLength { body, claimed }) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n"
            )?;
            if !head_only {
                out.write_all(body)?;
            }
        }
        Some(Route::File {
            body,
            ranges,
            cuts,
            pace,
        }) => {
            let len = body.len();
            let start = range
                .as_deref()
                .filter(|_| *ranges)
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            let accept = if *ranges {
                "Accept-Ranges: bytes\r\n"
            } else {
                ""
            };
            let from = match start {
                Some(s) if s >= len => {
                    write!(
                        out,
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )?;
                    return Ok(());
                }
                Some(s) => {
                    write!(
                        out,
                        "HTTP/1.1 206 Partial Content\r\n{accept}Content-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        len - 1,
                        len - s
                    )?;
                    s
                }
                None => {
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\n{accept}Content-Length: {len}\r\nConnection: close\r\n\r\n"
                    )?;
                    0
                }
            };
            if head_only {
                return Ok(());
            }
            let cut = cuts.lock().unwrap().pop_front();
            let end = cut.map_or(len, |n| (from + n).min(len));
            for piece in body[from..end].chunks(64 << 10) {
                out.write_all(piece)?;
                if let Some(p) = pace {
                    std::thread::sleep(*p);
                }
            }
            if cut.is_some() {
                out.flush()?;
                out.shutdown(Shutdown::Both)?;
            }
        }
    }
    Ok(())
}
