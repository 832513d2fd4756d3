//! The only module that prints.
//!
//! Messages for people go through [`Ui`]; logs go through `tracing` (to stderr, filtered by
//! `KILN_LOG`). Output follows Packer's shape so users can read kiln's output the way they read
//! Packer's: `==> qemu.NAME: Creating disk` for a step, `    qemu.NAME: ...` for detail and
//! provisioner output. A [`Ui`] can record into memory instead, for tests.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// `-timestamp-ui`: every line starts with the time, as Packer's `2006-01-02T15:04:05Z: `.
static TIMESTAMPS: AtomicBool = AtomicBool::new(false);
/// Whether terminal lines are coloured per build (off with `-color=false`, `NO_COLOR`, or when
/// stdout is not a terminal).
static COLOR: AtomicBool = AtomicBool::new(false);

/// Sets how terminal lines look, for the whole process (`main` calls it once).
pub fn configure(timestamps: bool, color: bool) {
    TIMESTAMPS.store(timestamps, Ordering::Relaxed);
    COLOR.store(color, Ordering::Relaxed);
}

/// The colours of builds' lines, in Packer's order (green, cyan, magenta, yellow, blue).
const BUILD_COLORS: [u8; 5] = [32, 36, 35, 33, 34];
/// The colour of errors and warnings (red).
const ERROR_COLOR: u8 = 31;

/// `2024-05-01T12:00:00Z`: the current time in RFC 3339, UTC.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = crate::types::civil_from_days(secs.div_euclid(86400));
    let t = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// Values that must never be shown (sensitive variables), process-wide like the terminal:
/// every line the UI writes and every log line passes through [`mask`].
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds values to hide from all output from now on (shorter than 3 bytes are ignored: they
/// would mask ordinary text).
pub fn add_secrets<'a>(secrets: impl IntoIterator<Item = &'a String>) {
    if let Ok(mut all) = SECRETS.write() {
        all.extend(secrets.into_iter().filter(|s| s.len() >= 3).cloned());
        // Longest first, so a secret containing another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
    }
}

/// `text` with every registered secret replaced by `<sensitive>`.
pub fn mask(text: &str) -> std::borrow::Cow<'_, str> {
    let Ok(all) = SECRETS.read() else {
        return text.into();
    };
    let mut out = std::borrow::Cow::Borrowed(text);
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<sensitive>").into();
        }
    }
    out
}

/// One `-machine-readable` line: `timestamp,target,type,data…`, with commas in the fields
/// written as Packer writes them (`%!(PACKER_COMMA)`) and newlines as `\n`.
pub fn machine_line(timestamp: u64, target: &str, kind: &str, data: &[&str]) -> String {
    let escape = |s: &str| {
        s.replace(',', "%!(PACKER_COMMA)")
            .replace('\r', "\\r")
            .replace('\n', "\\n")
    };
    let mut line = format!("{timestamp},{},{}", escape(target), escape(kind));
    for d in data {
        line.push(',');
        line.push_str(&escape(d));
    }
    line
}

/// A log writer that masks secrets, for `tracing_subscriber`'s `with_writer`.
pub struct MaskedStderr;

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// How often a plain (non-terminal) progress report prints a line.
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Where a [`Ui`] writes.
#[derive(Clone)]
enum Sink {
    /// stdout for messages, stderr for warnings and errors.
    Terminal,
    /// Every line, in order, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
    /// `-machine-readable`: `timestamp,target,ui,KIND,message` lines on stdout, no progress.
    Machine,
}

/// Prints user-facing messages, prefixed with the build's name once one is set.
#[derive(Clone)]
pub struct Ui {
    sink: Sink,
    prefix: Option<String>,
    /// The build's colour (an index into [`BUILD_COLORS`]), for builds running side by side.
    color: Option<usize>,
    /// Answers to [`Ui::ask`] given in advance (tests), instead of stdin.
    answers: Option<Arc<Mutex<std::collections::VecDeque<String>>>>,
}

/// Lines of stdin, read by one thread for the whole process; the lock makes prompts of builds
/// running side by side take turns.
static STDIN_LINES: std::sync::OnceLock<
    tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>,
> = std::sync::OnceLock::new();

fn stdin_lines() -> &'static tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>> {
    STDIN_LINES.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // Never joined: it ends with the process, or when stdin closes.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        tokio::sync::Mutex::new(rx)
    })
}

impl Default for Ui {
    fn default() -> Self {
        Self::terminal()
    }
}

impl Ui {
    /// A UI that writes to the terminal.
    pub fn terminal() -> Self {
        Self {
            sink: Sink::Terminal,
            prefix: None,
            color: None,
            answers: None,
        }
    }

    /// A UI that records lines in memory; the returned handle reads them.
    pub fn memory() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                sink: Sink::Memory(lines.clone()),
                prefix: None,
                color: None,
                answers: None,
            },
            lines,
        )
    }

    /// A UI that writes Packer's `-machine-readable` lines to stdout.
    pub fn machine_readable() -> Self {
        Self {
            sink: Sink::Machine,
            prefix: None,
            color: None,
            answers: None,
        }
    }

    /// Whether this UI writes `-machine-readable` lines.
    pub fn is_machine_readable(&self) -> bool {
        matches!(self.sink, Sink::Machine)
    }

    /// The same sink, with every line prefixed by `prefix` (e.g. `qemu.testos`).
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self {
            prefix: Some(prefix.into()),
            ..self.clone()
        }
    }

    /// A UI that records lines in memory and answers [`Ui::ask`] with `answers`, in order
    /// (then as if stdin were not a terminal).
    pub fn scripted(answers: &[&str]) -> (Self, Arc<Mutex<Vec<String>>>) {
        let (ui, lines) = Self::memory();
        let answers = answers.iter().map(|a| (*a).to_owned()).collect();
        (
            Self {
                answers: Some(Arc::new(Mutex::new(answers))),
                ..ui
            },
            lines,
        )
    }

    /// Shows `question` as a step line and waits for one line of input. `None` when there is
    /// no terminal to answer from (stdin is not one, or it closed).
    pub async fn ask(&self, question: &str) -> Option<String> {
        if let Some(answers) = &self.answers {
            self.say(question);
            return answers.lock().ok()?.pop_front();
        }
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let mut lines = stdin_lines().lock().await;
        self.say(question);
        lines.recv().await
    }

    /// The same UI, its lines in the `n`th build colour (when colours are on).
    pub fn with_color(&self, n: usize) -> Self {
        Self {
            color: Some(n % BUILD_COLORS.len()),
            ..self.clone()
        }
    }

    /// A step-level message: `==> qemu.NAME: msg`.
    pub fn say(&self, msg: impl AsRef<str>) {
        self.emit("say", false, "==> ", msg.as_ref());
    }

    /// A detail line: `    qemu.NAME: msg`.
    pub fn message(&self, msg: impl AsRef<str>) {
        self.emit("message", false, "    ", msg.as_ref());
    }

    /// A warning, on stderr: `==> qemu.NAME: warning: msg`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.emit("say", true, "==> ", &format!("warning: {}", msg.as_ref()));
    }

    /// A non-fatal error, on stderr.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.emit("error", true, "==> ", &format!("error: {}", msg.as_ref()));
    }

    /// One machine-readable line (`timestamp,target,kind,data…`) in machine-readable mode;
    /// nothing otherwise.
    pub fn machine(&self, kind: &str, data: &[&str]) {
        if self.is_machine_readable() {
            let target = self.prefix.as_deref().unwrap_or("");
            let masked: Vec<String> = data.iter().map(|d| mask(d).into_owned()).collect();
            let fields: Vec<&str> = masked.iter().map(String::as_str).collect();
            self.write(false, &machine_line(unix_now(), target, kind, &fields));
        }
    }

    fn emit(&self, kind: &str, to_stderr: bool, lead: &str, msg: &str) {
        if self.is_machine_readable() {
            self.machine("ui", &[kind, msg]);
            return;
        }
        let line = self.line(lead, msg);
        let color = match (to_stderr, self.color) {
            _ if !COLOR.load(Ordering::Relaxed) || !matches!(self.sink, Sink::Terminal) => None,
            (true, _) => Some(ERROR_COLOR),
            (false, Some(i)) => Some(BUILD_COLORS[i]),
            (false, None) => None,
        };
        match color {
            // Bold for step lines, as Packer.
            Some(c) => {
                let bold = u8::from(lead.starts_with("==>"));
                self.write(to_stderr, &format!("\x1b[{bold};{c}m{line}\x1b[0m"));
            }
            None => self.write(to_stderr, &line),
        }
    }

    /// Starts a progress report for a transfer of `total` bytes (when known), labelled `label`:
    /// a bar with rate and ETA on a terminal, a plain line every few seconds otherwise.
    pub fn progress(&self, label: impl Into<String>, total: Option<u64>) -> Progress {
        let label = label.into();
        let display = match &self.sink {
            Sink::Terminal if std::io::stderr().is_terminal() => {
                let bar = indicatif::ProgressBar::with_draw_target(
                    total,
                    indicatif::ProgressDrawTarget::stderr(),
                );
                let template = if total.is_some() {
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, ETA {eta}"
                } else {
                    "{msg} {bytes} {binary_bytes_per_sec}"
                };
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(self.line("    ", &label));
                Display::Bar(bar)
            }
            Sink::Machine => Display::Silent,
            _ => Display::Lines {
                last: Instant::now(),
            },
        };
        Progress {
            ui: self.clone(),
            label,
            total,
            position: 0,
            started: Instant::now(),
            display,
        }
    }

    /// Plain text with no prefix (e.g. `kiln version`, an error chain printed by `main`); a
    /// `ui,say` (or `ui,error` for stderr) line in machine-readable mode.
    pub fn raw(&self, to_stderr: bool, text: impl AsRef<str>) {
        if self.is_machine_readable() {
            self.machine(
                "ui",
                &[if to_stderr { "error" } else { "say" }, text.as_ref()],
            );
        } else {
            self.write(to_stderr, text.as_ref());
        }
    }

    fn line(&self, lead: &str, msg: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{lead}{p}: {msg}"),
            None => format!("{lead}{msg}"),
        }
    }

    fn write(&self, to_stderr: bool, text: &str) {
        let text = &*mask(text);
        let stamped;
        let text = if TIMESTAMPS.load(Ordering::Relaxed) && !matches!(self.sink, Sink::Machine) {
            let now = rfc3339_now();
            stamped = text
                .lines()
                .map(|l| format!("{now}: {l}"))
                .collect::<Vec<_>>()
                .join("\n");
            &stamped
        } else {
            text
        };
        match &self.sink {
            Sink::Terminal => {
                // A closed stdout/stderr (e.g. `kiln ... | head`) must not panic the build.
                if to_stderr {
                    let _ = writeln!(std::io::stderr().lock(), "{text}");
                } else {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
            }
            Sink::Memory(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.extend(text.lines().map(str::to_owned));
                }
            }
            Sink::Machine => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a [`Progress`] shows itself.
enum Display {
    Bar(indicatif::ProgressBar),
    /// Periodic detail lines; `last` is when the previous one was printed.
    Lines {
        last: Instant,
    },
    /// Nothing while it runs (machine-readable output).
    Silent,
}

/// A running progress report, made by [`Ui::progress`]; [`Progress::finish`] ends it.
pub struct Progress {
    ui: Ui,
    label: String,
    total: Option<u64>,
    position: u64,
    started: Instant,
    display: Display,
}

impl Progress {
    /// Moves the report to `position` bytes done.
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
        match &mut self.display {
            Display::Bar(bar) => bar.set_position(position),
            Display::Lines { last } => {
                if last.elapsed() >= PROGRESS_LINE_INTERVAL {
                    *last = Instant::now();
                    let line =
                        progress_line(&self.label, position, self.total, self.started.elapsed());
                    self.ui.message(line);
                }
            }
            Display::Silent => {}
        }
    }

    /// Ends the report: the bar is cleared, and one closing line says what was done.
    pub fn finish(self) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
        let line = progress_line(&self.label, self.position, None, self.started.elapsed());
        self.ui.message(line);
    }
}

/// `label: 512.0 MiB of 2.0 GiB (25%), 150.0 MiB/s, about 10s left`.
pub fn progress_line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut line = format!("{label}: {}", bytes(done as f64));
    if let Some(total) = total.filter(|t| *t > 0) {
        let pct = (done as f64 * 100.0 / total as f64).min(100.0);
        line.push_str(&format!(" of {} ({pct:.0}%)", bytes(total as f64)));
        line.push_str(&format!(", {}/s", bytes(rate)));
        if rate > 0.0 && done < total {
            let left = ((total - done) as f64 / rate).ceil();
            line.push_str(&format!(", about {left:.0}s left"));
        }
    } else {
        line.push_str(&format!(" in {secs:.1}s, {}/s", bytes(rate)));
    }
    line
}

/// `1.5 GiB`, with binary units, for messages about sizes.
pub fn human_bytes(n: u64) -> String {
    bytes(n as f64)
}

/// `1.5 GiB`, with binary units.
fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_packer_shape() {
        let (ui, lines) = Ui::memory();
        let ui = ui.with_prefix("qemu.testos");
        ui.say("Creating disk");
        ui.message("detail");
        ui.warn("falling back");
        assert_eq!(
            *lines.lock().unwrap(),
            vec![
                "==> qemu.testos: Creating disk",
                "    qemu.testos: detail",
                "==> qemu.testos: warning: falling back",
            ]
        );
    }

    #[test]
    fn progress_lines() {
        let s = Duration::from_secs;
        let table = [
            (
                (512 << 20, Some(2 << 30), s(4)),
                "Downloading: 512.0 MiB of 2.0 GiB (25%), 128.0 MiB/s, about 12s left",
                "known total",
            ),
            (
                (2 << 30, Some(2 << 30), s(8)),
                "Downloading: 2.0 GiB of 2.0 GiB (100%), 256.0 MiB/s",
                "done: no time left shown",
            ),
            (
                (1536, None, s(2)),
                "Downloading: 1.5 KiB in 2.0s, 768 B/s",
                "unknown total",
            ),
        ];
        for ((done, total, elapsed), want, reason) in table {
            assert_eq!(
                progress_line("Downloading", done, total, elapsed),
                want,
                "{reason}"
            );
        }
    }

    #[test]
    fn progress_in_memory_ends_with_one_line() {
        let (ui, lines) = Ui::memory();
        let mut p = ui.progress("Downloading x", Some(10));
        p.set_position(10);
        p.finish();
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("    Downloading x: 10 B in "),
            "{lines:?}"
        );
    }
}
