//! The only module that prints.
//!
//! Messages for people go through [`Ui`]; logs go through `tracing` (to stderr, filtered by
//! `KILN_LOG`). Output follows Packer's shape so users can read kiln's output the way they read
//! Packer's: `==> qemu.NAME: Creating disk` for a step, `    qemu.NAME: ...` for detail and
//! provisioner output. A [`Ui`] can record into memory instead, for tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where a [`Ui`] writes.
#[derive(Clone)]
enum Sink {
    /// stdout for messages, stderr for warnings and errors.
    Terminal,
    /// Every line, in order, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Prints user-facing messages, prefixed with the build's name once one is set.
#[derive(Clone)]
pub struct Ui {
    sink: Sink,
    prefix: Option<String>,
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
        }
    }

    /// A UI that records lines in memory; the returned handle reads them.
    pub fn memory() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                sink: Sink::Memory(lines.clone()),
                prefix: None,
            },
            lines,
        )
    }

    /// The same sink, with every line prefixed by `prefix` (e.g. `qemu.testos`).
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self {
            sink: self.sink.clone(),
            prefix: Some(prefix.into()),
        }
    }

    /// A step-level message: `==> qemu.NAME: msg`.
    pub fn say(&self, msg: impl AsRef<str>) {
        self.write(false, &self.line("==> ", msg.as_ref()));
    }

    /// A detail line: `    qemu.NAME: msg`.
    pub fn message(&self, msg: impl AsRef<str>) {
        self.write(false, &self.line("    ", msg.as_ref()));
    }

    /// A warning, on stderr: `==> qemu.NAME: warning: msg`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.write(
            true,
            &self.line("==> ", &format!("warning: {}", msg.as_ref())),
        );
    }

    /// A non-fatal error, on stderr.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.write(
            true,
            &self.line("==> ", &format!("error: {}", msg.as_ref())),
        );
    }

    /// Plain text with no prefix (e.g. `kiln version`, an error chain printed by `main`).
    pub fn raw(&self, to_stderr: bool, text: impl AsRef<str>) {
        self.write(to_stderr, text.as_ref());
    }

    fn line(&self, lead: &str, msg: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{lead}{p}: {msg}"),
            None => format!("{lead}{msg}"),
        }
    }

    fn write(&self, to_stderr: bool, text: &str) {
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
        }
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
}
