//! A small QMP client that tolerates whatever QEMU sends.
//!
//! QMP is line-delimited JSON over a Unix socket. We do not use the `qapi` crate: its typed event
//! enum has no catch-all, so one event unknown to its schema kills the stream (see
//! `crates.md` §1). This client keeps every message as a [`serde_json::Value`]: replies are routed
//! to the caller by `id`, every event (known or not) goes to a broadcast channel, and a malformed
//! line is logged and skipped. When the socket closes, pending and later commands fail at once
//! with [`Error::Disconnected`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::wait::{self, Attempt};

/// How long one command may take before [`Qmp::execute`] gives up on it.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`Qmp::connect`] retries while QEMU has not created or opened the socket yet.
const CONNECT_INTERVAL: Duration = Duration::from_millis(50);

/// Events not yet read by a slow subscriber; older ones are dropped for that subscriber.
const EVENT_BUFFER: usize = 256;

/// Why a QMP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket did not accept a connection before the deadline.
    #[error("Could not connect to QMP socket `{path}`")]
    Connect {
        path: PathBuf,
        #[source]
        source: wait::Error<io::Error>,
    },
    /// Reading the greeting failed, or it did not arrive in time.
    #[error("Could not read the QMP greeting from `{path}`")]
    ReadGreeting {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The first line was not a QMP greeting (`{"QMP": …}`).
    #[error("`{path}` did not greet like QMP; first line: {line}")]
    Greeting { path: PathBuf, line: String },
    /// Writing a command to the socket failed.
    #[error("Could not send `{command}` to QMP socket `{path}`")]
    Write {
        command: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The connection closed before the command was answered.
    #[error("QMP connection closed before `{command}` was answered")]
    Disconnected { command: String },
    /// No answer came within the command deadline.
    #[error("QMP command `{command}` got no answer within {after:?}")]
    Timeout { command: String, after: Duration },
    /// QEMU answered the command with an error.
    #[error("QMP command `{command}` failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    /// The answer had neither `return` nor `error`.
    #[error("QMP answer to `{command}` has neither `return` nor `error`: {reply}")]
    Reply { command: String, reply: String },
}

/// One QMP event, passed through as QEMU sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event name, e.g. `SHUTDOWN` or `STOP`.
    pub name: String,
    /// The event's `data` member, or `Null` when it has none.
    pub data: Value,
}

/// State shared between callers and the reader task.
#[derive(Default)]
struct Shared {
    /// Commands sent and not yet answered, by id.
    pending: HashMap<u64, oneshot::Sender<Value>>,
    /// `None` once the connection has closed: that is how callers learn of it.
    events: Option<broadcast::Sender<Event>>,
}

/// A connected QMP session. Methods take `&self`, so one `Qmp` can serve several tasks.
/// Dropping it stops the reader task and closes the socket.
pub struct Qmp {
    path: PathBuf,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    shared: Arc<Mutex<Shared>>,
    next_id: AtomicU64,
    command_timeout: Duration,
    reader: JoinHandle<()>,
}

impl Qmp {
    /// Connects to the QMP socket at `path`, retrying until it accepts or `timeout` passes (QEMU
    /// may not have created it yet), reads the greeting and negotiates capabilities.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, Error> {
        let stream = wait::until_ok(timeout, CONNECT_INTERVAL, || async {
            match UnixStream::connect(path).await {
                Ok(s) => Attempt::Done(s),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    Attempt::Retry(e)
                }
                Err(e) => Attempt::Fatal(e),
            }
        })
        .await
        .map_err(|source| Error::Connect {
            path: path.to_owned(),
            source,
        })?;
        let (read, writer) = stream.into_split();
        let mut lines = BufReader::new(read);
        let greeting = read_greeting(&mut lines, path, timeout).await?;
        tracing::debug!(path = %path.display(), greeting = %greeting, "QMP greeting");

        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Mutex::new(Shared {
            pending: HashMap::new(),
            events: Some(events),
        }));
        let reader = tokio::spawn(read_loop(lines, path.to_owned(), shared.clone()));
        let qmp = Qmp {
            path: path.to_owned(),
            writer: tokio::sync::Mutex::new(writer),
            shared,
            next_id: AtomicU64::new(1),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            reader,
        };
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Sets the deadline of each later [`execute`](Self::execute) (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Runs one QMP command and returns its `return` value.
    pub async fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut shared = lock(&self.shared);
            if shared.events.is_none() {
                return Err(Error::Disconnected {
                    command: command.to_owned(),
                });
            }
            shared.pending.insert(id, tx);
        }
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut line = msg.to_string();
        line.push('\n');
        tracing::debug!(command, id, "QMP execute");

        let sent = async {
            let mut w = self.writer.lock().await;
            w.write_all(line.as_bytes()).await?;
            w.flush().await
        };
        let answer = async {
            sent.await.map_err(|source| Error::Write {
                command: command.to_owned(),
                path: self.path.clone(),
                source,
            })?;
            rx.await.map_err(|_closed| Error::Disconnected {
                command: command.to_owned(),
            })
        };
        let reply = match tokio::time::timeout(self.command_timeout, answer).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                lock(&self.shared).pending.remove(&id);
                return Err(e);
            }
            Err(_elapsed) => {
                lock(&self.shared).pending.remove(&id);
                return Err(Error::Timeout {
                    command: command.to_owned(),
                    after: self.command_timeout,
                });
            }
        };
        interpret_reply(command, reply)
    }

    /// Subscribes to every event received from now on. The receiver ends (`Closed`) once the
    /// connection has closed.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        match &lock(&self.shared).events {
            Some(tx) => tx.subscribe(),
            // Closed already: hand out a receiver whose sender is gone.
            None => broadcast::channel(1).1,
        }
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Locks the shared state; a panic while holding the lock cannot leave it inconsistent (each
/// critical section is a single map or option update), so poisoning is ignored.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads the greeting: the first line that is not an event (QEMU may write an event, e.g.
/// `VNC_DISCONNECTED`, on a newly accepted monitor connection before its greeting).
async fn read_greeting(
    lines: &mut BufReader<OwnedReadHalf>,
    path: &Path,
    timeout: Duration,
) -> Result<Value, Error> {
    let read_err = |source| Error::ReadGreeting {
        path: path.to_owned(),
        source,
    };
    let read = async {
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await.map_err(read_err)? == 0 {
                return Err(read_err(io::ErrorKind::UnexpectedEof.into()));
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.get("QMP").is_some() => return Ok(v),
                Ok(v) if v.get("event").is_some() => {
                    tracing::debug!(path = %path.display(), event = %v, "QMP event before the greeting");
                }
                _ => {
                    return Err(Error::Greeting {
                        path: path.to_owned(),
                        line: line.trim_end().to_owned(),
                    });
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_elapsed| read_err(io::ErrorKind::TimedOut.into()))?
}

/// Turns a reply into the command's `return` value or an [`Error::Command`].
fn interpret_reply(command: &str, mut reply: Value) -> Result<Value, Error> {
    if let Some(ret) = reply.get_mut("return") {
        return Ok(ret.take());
    }
    if let Some(err) = reply.get("error") {
        let field = |name: &str| {
            err.get(name)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        return Err(Error::Command {
            command: command.to_owned(),
            class: field("class"),
            desc: field("desc"),
        });
    }
    Err(Error::Reply {
        command: command.to_owned(),
        reply: reply.to_string(),
    })
}

/// Reads messages until the socket closes, then fails everything pending.
async fn read_loop(mut lines: BufReader<OwnedReadHalf>, path: PathBuf, shared: Arc<Mutex<Shared>>) {
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) => {
                tracing::debug!(path = %path.display(), "QMP socket closed");
                break;
            }
            Ok(_) => dispatch(&line, &shared),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "QMP socket read failed");
                break;
            }
        }
    }
    let mut s = lock(&shared);
    // Dropping the senders wakes every pending `execute` with `Disconnected`, and dropping the
    // event sender ends every subscriber's stream.
    s.pending.clear();
    s.events = None;
}

/// Routes one line: events to subscribers, replies to the command that waits for them.
fn dispatch(line: &str, shared: &Mutex<Shared>) {
    let msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(line = line.trim_end(), error = %e, "Skipping malformed QMP line");
            return;
        }
    };
    if let Some(name) = msg.get("event").and_then(Value::as_str) {
        let event = Event {
            name: name.to_owned(),
            data: msg.get("data").cloned().unwrap_or(Value::Null),
        };
        tracing::debug!(event = %event.name, data = %event.data, "QMP event");
        if let Some(tx) = &lock(shared).events {
            // An error only means nobody is subscribed right now.
            let _ = tx.send(event);
        }
        return;
    }
    let Some(id) = msg.get("id").and_then(Value::as_u64) else {
        tracing::debug!(
            line = line.trim_end(),
            "Ignoring QMP message without id or event"
        );
        return;
    };
    match lock(shared).pending.remove(&id) {
        // The caller may have given up (timeout, cancellation); then the reply is dropped.
        Some(tx) => {
            let _ = tx.send(msg);
        }
        None => tracing::debug!(id, "Ignoring QMP reply nobody waits for"),
    }
}

/// Boot command typing goes through QMP (see [`crate::bootcmd::Monitor`]).
#[async_trait::async_trait]
impl crate::bootcmd::Monitor for Qmp {
    async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, crate::bootcmd::MonitorError> {
        Qmp::execute(self, command, arguments)
            .await
            .map_err(Into::into)
    }
}

/// A real QEMU for tests: started with a QMP socket in a temporary directory, killed on drop.
#[cfg(test)]
pub(crate) mod test_qemu {
    use std::path::PathBuf;
    use std::process::Stdio;

    /// A running `qemu-system-x86_64`; dropping it kills the process.
    pub struct TestQemu {
        pub child: tokio::process::Child,
        pub socket: PathBuf,
        _dir: tempfile::TempDir,
    }

    /// Starts `qemu-system-x86_64 -accel tcg -display none -nodefaults` plus `extra`, with a QMP
    /// server socket. Panics, naming the Debian package, when the binary is missing.
    pub fn spawn(extra: &[&str]) -> TestQemu {
        let dir = tempfile::tempdir().expect("create temp dir");
        let socket = dir.path().join("qmp.sock");
        let mut cmd = tokio::process::Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel",
            "tcg",
            "-display",
            "none",
            "-nodefaults",
            "-m",
            "64",
        ])
        .args(extra)
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "qemu-system-x86_64 is not installed; this test needs it: \
                 apt-get install qemu-system-x86 (Debian package `qemu-system-x86`)"
            ),
            Err(e) => panic!("could not start qemu-system-x86_64: {e}"),
        };
        TestQemu {
            child,
            socket,
            _dir: dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    const T: Duration = Duration::from_secs(5);

    /// Server side of one fake QMP connection.
    struct Peer {
        lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
        w: OwnedWriteHalf,
    }

    impl Peer {
        async fn send(&mut self, v: Value) {
            let mut s = v.to_string();
            s.push('\n');
            self.w.write_all(s.as_bytes()).await.unwrap();
        }
        async fn send_raw(&mut self, s: &str) {
            self.w.write_all(s.as_bytes()).await.unwrap();
        }
        /// Reads one command, returning (execute, id).
        async fn recv(&mut self) -> (String, Value) {
            let line = self.lines.next_line().await.unwrap().expect("a command");
            let v: Value = serde_json::from_str(&line).unwrap();
            (v["execute"].as_str().unwrap().to_owned(), v["id"].clone())
        }
    }

    /// Starts a fake QMP server in a temp dir; `script` runs once the client has negotiated.
    async fn fake_server<F, Fut>(script: F) -> (tempfile::TempDir, PathBuf, JoinHandle<()>)
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, w) = stream.into_split();
            let mut peer = Peer {
                lines: BufReader::new(r).lines(),
                w,
            };
            peer.send(json!({"QMP": {"version": {"qemu": {"major": 99, "minor": 0, "micro": 0}}, "capabilities": ["oob"]}}))
                .await;
            let (cmd, id) = peer.recv().await;
            assert_eq!(cmd, "qmp_capabilities");
            peer.send(json!({"return": {}, "id": id})).await;
            script(peer).await;
        });
        (dir, path, server)
    }

    #[tokio::test]
    async fn unknown_event_is_passed_through_and_command_still_succeeds() {
        let (_dir, path, server) = fake_server(|mut p| async move {
            let (cmd, id) = p.recv().await;
            assert_eq!(cmd, "query-status");
            p.send(json!({"event": "KILN_FROM_THE_FUTURE", "data": {"x": 1},
                          "timestamp": {"seconds": 1, "microseconds": 2}}))
                .await;
            p.send_raw("this is not json\n").await;
            p.send(
                json!({"return": {"status": "running", "running": true, "new_field": [1]},
                          "id": id}),
            )
            .await;
            // Keep the connection open until the client is done.
            let _ = p.lines.next_line().await;
        })
        .await;
        let qmp = Qmp::connect(&path, T).await.unwrap();
        let mut events = qmp.events();
        let ret = qmp.execute("query-status", None).await.unwrap();
        assert_eq!(ret["status"], "running");
        let ev = tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ev,
            Event {
                name: "KILN_FROM_THE_FUTURE".into(),
                data: json!({"x": 1})
            }
        );
        drop(qmp);
        tokio::time::timeout(T, server).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn arguments_are_sent_and_error_reply_is_a_command_error() {
        let (_dir, path, _server) = fake_server(|mut p| async move {
            let line = p.lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["arguments"], json!({"filename": "/x.png"}));
            p.send(json!({"error": {"class": "GenericError", "desc": "nope"}, "id": v["id"]}))
                .await;
            let _ = p.lines.next_line().await;
        })
        .await;
        let qmp = Qmp::connect(&path, T).await.unwrap();
        let err = qmp
            .execute("screendump", Some(json!({"filename": "/x.png"})))
            .await
            .unwrap_err();
        match err {
            Error::Command {
                command,
                class,
                desc,
            } => {
                assert_eq!(
                    (command.as_str(), class.as_str(), desc.as_str()),
                    ("screendump", "GenericError", "nope")
                );
            }
            other => panic!("expected Error::Command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn server_closing_fails_pending_and_later_commands_promptly() {
        let (_dir, path, _server) = fake_server(|mut p| async move {
            let _ = p.recv().await;
            // Drop the connection without answering.
        })
        .await;
        let qmp = Qmp::connect(&path, T).await.unwrap();
        let mut events = qmp.events();
        let started = std::time::Instant::now();
        let err = qmp.execute("query-status", None).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let err = qmp.execute("cont", None).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        assert!(matches!(
            events.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
    }

    #[tokio::test]
    async fn silent_server_makes_execute_time_out() {
        let (_dir, path, _server) = fake_server(|mut p| async move {
            let _ = p.recv().await;
            std::future::pending::<()>().await;
        })
        .await;
        let mut qmp = Qmp::connect(&path, T).await.unwrap();
        qmp.set_command_timeout(Duration::from_millis(200));
        let err = qmp.execute("query-status", None).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(lock(&qmp.shared).pending.is_empty());
    }

    #[tokio::test]
    async fn connect_waits_for_the_socket_to_appear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.sock");
        let p2 = path.clone();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let listener = UnixListener::bind(&p2).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (r, w) = stream.into_split();
            let mut peer = Peer {
                lines: BufReader::new(r).lines(),
                w,
            };
            peer.send(json!({"QMP": {}})).await;
            let (_, id) = peer.recv().await;
            peer.send(json!({"return": {}, "id": id})).await;
            let _ = peer.lines.next_line().await;
        });
        let qmp = Qmp::connect(&path, T).await.unwrap();
        drop(qmp);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn connect_times_out_when_nobody_listens() {
        let dir = tempfile::tempdir().unwrap();
        let err = Qmp::connect(&dir.path().join("none.sock"), Duration::from_millis(200))
            .await
            .err()
            .expect("nothing listens");
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    }

    /// Issue 14 (seen in CI): an event QEMU writes before the greeting is skipped.
    #[tokio::test]
    async fn an_event_before_the_greeting_is_skipped_issue_14() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("early.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, w) = stream.into_split();
            let mut peer = Peer {
                lines: BufReader::new(r).lines(),
                w,
            };
            peer.send(json!({"event": "VNC_DISCONNECTED", "data": {}}))
                .await;
            peer.send(json!({"QMP": {}})).await;
            let (_, id) = peer.recv().await;
            peer.send(json!({"return": {}, "id": id})).await;
            let _ = peer.lines.next_line().await;
        });
        Qmp::connect(&path, T)
            .await
            .expect("connects after the event");
    }

    #[tokio::test]
    async fn non_qmp_greeting_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n").await.unwrap();
        });
        let err = Qmp::connect(&path, T).await.err().expect("not QMP");
        assert!(matches!(err, Error::Greeting { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn real_qemu_query_status_and_quit() {
        let mut qemu = test_qemu::spawn(&["-S"]);
        let qmp = Qmp::connect(&qemu.socket, Duration::from_secs(20))
            .await
            .unwrap();
        let mut events = qmp.events();
        let status = qmp.execute("query-status", None).await.unwrap();
        assert_eq!(status["status"], "prelaunch");
        assert_eq!(status["running"], false);
        let err = qmp.execute("no-such-command", None).await.unwrap_err();
        assert!(
            matches!(&err, Error::Command { class, .. } if class == "CommandNotFound"),
            "{err:?}"
        );
        qmp.execute("quit", None).await.unwrap();
        let shutdown = tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(shutdown.name, "SHUTDOWN");
        let exit = tokio::time::timeout(T, qemu.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}
