//! Watches QEMU's QMP events for the whole build and stops the build at once when the guest
//! cannot get anywhere any more, saying what happened:
//!
//! - `BLOCK_IO_ERROR` with `nospace`: the filesystem holding a disk image is full. QEMU pauses
//!   the guest on ENOSPC (its default `werror=enospc`) and would wait for ever;
//! - `STOP` with status `io-error` (another I/O error QEMU paused for), `guest-panicked` or
//!   `internal-error`;
//! - `GUEST_PANICKED`, from the pvpanic device kiln attaches (see [`super::args`]);
//! - until SSH answers: [`BOOT_LOOP_RESETS`] guest `RESET`s within [`BOOT_LOOP_WINDOW`] (a boot
//!   loop), or a `SHUTDOWN` by the guest (it powered off instead of coming up).
//!
//! The decision is a pure function of the events ([`Watch`], table-tested). The task around it
//! ([`spawn`]) finds the file behind a failing drive and the free space left there, shows the
//! guest's last serial lines, saves a screenshot, records the [`Fault`] in the build's
//! [`Monitor`] and cancels the build's token, so the running step stops at its next await
//! point; `qemu::build` then reports the fault as the build's error.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::qmp::{Event, Qmp};
use crate::ui::Ui;

/// Guest resets that make a boot loop when they come within [`BOOT_LOOP_WINDOW`] before SSH
/// answers. One reboot of a BIOS guest shows as two `RESET`s (SeaBIOS resets the machine again
/// on a warm boot), so an installer's reboot or two stays far below it.
pub const BOOT_LOOP_RESETS: usize = 10;
/// See [`BOOT_LOOP_RESETS`].
pub const BOOT_LOOP_WINDOW: Duration = Duration::from_secs(300);
/// Lines of the serial console shown when the guest fails.
pub const SERIAL_TAIL_LINES: usize = 15;
/// How long a screenshot may take before it is given up.
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(3);

/// What made the build stop: the guest cannot get anywhere any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// ENOSPC on a disk image: QEMU paused the guest.
    #[error(
        "The filesystem holding `{}` is full ({}); QEMU paused the guest",
        drive_name(device, file),
        free_text(*free)
    )]
    DiskFull {
        /// QEMU's name of the drive (`virtio0`, or a node name).
        device: String,
        /// The image file behind it, when QEMU said.
        file: Option<PathBuf>,
        /// Bytes still free on its filesystem, when known.
        free: Option<u64>,
    },
    /// Another I/O error on a disk image made QEMU pause the guest.
    #[error(
        "QEMU paused the guest after an I/O error on `{}`: {reason}",
        drive_name(device, file)
    )]
    IoError {
        device: String,
        file: Option<PathBuf>,
        /// QEMU's description (`Input/output error`).
        reason: String,
    },
    /// The guest's kernel panicked (reported by the pvpanic device).
    #[error("The guest's kernel panicked (reported by QEMU's pvpanic device)")]
    Panicked {
        /// What QEMU did about it: `poweroff` (its default), `pause` or `run`.
        action: String,
    },
    /// QEMU stopped the guest after an internal error (an instruction it cannot emulate, a
    /// KVM failure).
    #[error("QEMU stopped the guest after an internal error of the emulator")]
    InternalError,
    /// The guest kept resetting before SSH answered.
    #[error(
        "The guest reset {resets} times in {}s without coming up: it is in a boot loop",
        within.as_secs().max(1)
    )]
    BootLoop { resets: usize, within: Duration },
    /// The guest powered itself off before SSH answered.
    #[error("The guest powered itself off before SSH answered")]
    PoweredOff,
}

impl Fault {
    /// A short name for the screenshot's file name.
    pub fn slug(&self) -> &'static str {
        match self {
            Fault::DiskFull { .. } => "disk-full",
            Fault::IoError { .. } => "io-error",
            Fault::Panicked { .. } => "panic",
            Fault::InternalError => "internal-error",
            Fault::BootLoop { .. } => "boot-loop",
            Fault::PoweredOff => "powered-off",
        }
    }

    /// Whether QEMU still runs after this fault, so a screenshot can be taken.
    fn guest_still_there(&self) -> bool {
        match self {
            Fault::PoweredOff => false,
            Fault::Panicked { action } => action != "poweroff",
            _ => true,
        }
    }
}

fn drive_name(device: &str, file: &Option<PathBuf>) -> String {
    match file {
        Some(f) => f.display().to_string(),
        None => format!("drive {device}"),
    }
}

fn free_text(free: Option<u64>) -> String {
    match free {
        Some(n) => format!("{} free", crate::ui::human_bytes(n)),
        None => "free space unknown".to_owned(),
    }
}

/// Where the build is, as far as the watcher cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// From QEMU's start until SSH answers: resets count towards a boot loop, and a power-off
    /// is a fault (unless the build has no communicator).
    Booting,
    /// SSH answered: provisioners may reboot the guest.
    Connected,
    /// `shutdown` runs: the guest is expected to power off.
    ShuttingDown,
}

/// The watcher's state as the steps see it: the phase they set, and the fault it found.
/// Cheap to clone; every clone is the same monitor.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    phase: AtomicU8,
    fault: Mutex<Option<Fault>>,
    /// [`Task::Idle`] until [`spawn`], [`Task::Running`], then [`Task::Done`] when the event
    /// stream has ended or a fault was recorded.
    task: watch::Sender<Task>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Idle,
    Running,
    Done,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(0),
                fault: Mutex::new(None),
                task: watch::channel(Task::Idle).0,
            }),
        }
    }
}

impl Monitor {
    /// The phase the steps last set.
    pub fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::SeqCst) {
            0 => Phase::Booting,
            1 => Phase::Connected,
            _ => Phase::ShuttingDown,
        }
    }

    /// Sets the phase (`wait_ssh` once connected, `shutdown` before it shuts the guest down).
    pub fn set_phase(&self, phase: Phase) {
        let n = match phase {
            Phase::Booting => 0,
            Phase::Connected => 1,
            Phase::ShuttingDown => 2,
        };
        self.inner.phase.store(n, Ordering::SeqCst);
    }

    /// The fault found, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.inner
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, fault: Fault) {
        let mut slot = self
            .inner
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(fault);
    }

    /// The fault, once the watcher has seen every event QEMU sent before the step that asks
    /// failed: waits (up to `timeout`) while a watcher runs and has found nothing yet. Used when
    /// a step failed because QEMU went away, which may be the end of a fault's story (a guest
    /// that powered off or panicked makes QEMU exit right after the event).
    pub async fn settle(&self, timeout: Duration) -> Option<Fault> {
        let mut rx = self.inner.task.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|t| *t != Task::Running)).await;
        self.fault()
    }
}

/// What one event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Nothing,
    /// The build cannot go on.
    Fault(Fault),
    /// QEMU stopped the guest: its run state (`query-status`) says why.
    AskStatus,
    /// Worth telling the user, not a reason to stop (an I/O error QEMU passed to the guest).
    Warn(String),
}

/// The pure part of the watcher: events in, verdicts out.
#[derive(Debug)]
pub struct Watch {
    /// Whether the guest powering off before SSH is the expected end (`communicator = "none"`).
    poweroff_expected: bool,
    /// Times of the recent guest resets.
    resets: VecDeque<Instant>,
    /// The last I/O error QEMU stopped the guest for (device, reason), waiting for its `STOP`.
    io_error: Option<(String, String)>,
    /// Drives already warned about.
    warned: BTreeSet<String>,
}

impl Watch {
    pub fn new(poweroff_expected: bool) -> Self {
        Self {
            poweroff_expected,
            resets: VecDeque::new(),
            io_error: None,
            warned: BTreeSet::new(),
        }
    }

    /// What `event`, arriving at `now` while the build is in `phase`, means.
    pub fn on_event(&mut self, event: &Event, phase: Phase, now: Instant) -> Verdict {
        let data = &event.data;
        let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or("");
        match event.name.as_str() {
            "BLOCK_IO_ERROR" => {
                let device = match text("device") {
                    "" => text("node-name"),
                    d => d,
                }
                .to_owned();
                let reason = match text("reason") {
                    "" => "I/O error".to_owned(),
                    r => r.to_owned(),
                };
                if data.get("nospace").and_then(Value::as_bool) == Some(true) {
                    return Verdict::Fault(Fault::DiskFull {
                        device,
                        file: None,
                        free: None,
                    });
                }
                if text("action") == "stop" {
                    self.io_error = Some((device, reason));
                    return Verdict::Nothing;
                }
                if self.warned.insert(device.clone()) {
                    return Verdict::Warn(format!(
                        "QEMU passed an I/O error on drive {device} to the guest ({} failed: \
                         {reason}); the image may be damaged",
                        text("operation")
                    ));
                }
                Verdict::Nothing
            }
            "STOP" => Verdict::AskStatus,
            "GUEST_PANICKED" => Verdict::Fault(Fault::Panicked {
                action: text("action").to_owned(),
            }),
            "RESET" if data.get("guest").and_then(Value::as_bool) == Some(true) => {
                if phase == Phase::Connected {
                    return Verdict::Nothing;
                }
                self.resets.push_back(now);
                while self
                    .resets
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > BOOT_LOOP_WINDOW)
                {
                    self.resets.pop_front();
                }
                match self.resets.front() {
                    Some(first) if self.resets.len() >= BOOT_LOOP_RESETS => {
                        Verdict::Fault(Fault::BootLoop {
                            resets: self.resets.len(),
                            within: now.duration_since(*first),
                        })
                    }
                    _ => Verdict::Nothing,
                }
            }
            "SHUTDOWN"
                if data.get("guest").and_then(Value::as_bool) == Some(true)
                    && text("reason") == "guest-shutdown"
                    && phase == Phase::Booting
                    && !self.poweroff_expected =>
            {
                Verdict::Fault(Fault::PoweredOff)
            }
            _ => Verdict::Nothing,
        }
    }

    /// What a `STOP` meant, given the run state QEMU reported after it.
    pub fn on_status(&mut self, status: &str) -> Option<Fault> {
        match status {
            "io-error" => {
                let (device, reason) = self
                    .io_error
                    .take()
                    .unwrap_or_else(|| ("?".to_owned(), "I/O error".to_owned()));
                Some(Fault::IoError {
                    device,
                    file: None,
                    reason,
                })
            }
            "guest-panicked" => Some(Fault::Panicked {
                action: "pause".to_owned(),
            }),
            "internal-error" => Some(Fault::InternalError),
            _ => None,
        }
    }
}

/// What the watcher needs besides QMP: where to report, and what to stop.
pub struct Report {
    pub ui: Ui,
    /// The guest's serial console log, whose last lines are shown.
    pub serial_log: PathBuf,
    /// Where the screenshot goes: `kiln-NAME-` + the fault's slug + `.png` is appended.
    pub screenshot_prefix: String,
    /// Cancelled once a fault is recorded: the build's own token.
    pub stop: CancellationToken,
    /// `communicator = "none"`: the guest powering off is how the build ends.
    pub poweroff_expected: bool,
}

/// Starts watching `qmp`'s events for `monitor` (see the module doc). The task ends when the
/// event stream ends (QEMU exited or the connection was dropped) or after a fault.
pub fn spawn(monitor: Monitor, qmp: Arc<Qmp>, report: Report) -> JoinHandle<()> {
    let mut events = qmp.events();
    monitor.inner.task.send_replace(Task::Running);
    tokio::spawn(async move {
        let mut watch = Watch::new(report.poweroff_expected);
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the QMP event watcher fell behind");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let fault = match watch.on_event(&event, monitor.phase(), Instant::now()) {
                Verdict::Nothing => continue,
                Verdict::Warn(msg) => {
                    report.ui.warn(msg);
                    continue;
                }
                Verdict::Fault(f) => f,
                Verdict::AskStatus => {
                    let status = qmp.execute("query-status", None).await;
                    let status = match &status {
                        Ok(v) => v.get("status").and_then(Value::as_str).unwrap_or(""),
                        Err(e) => {
                            tracing::debug!(error = %e, "query-status after STOP failed");
                            continue;
                        }
                    };
                    tracing::info!(status, "QEMU stopped the guest");
                    match watch.on_status(status) {
                        Some(f) => f,
                        None => continue,
                    }
                }
            };
            let fault = locate(fault, &qmp).await;
            tracing::warn!(%fault, "guest fault");
            show(&fault, &qmp, &report).await;
            monitor.record(fault);
            report.stop.cancel();
            break;
        }
        monitor.inner.task.send_replace(Task::Done);
    })
}

/// Fills in the file behind a failing drive (`query-block`) and the space left on its
/// filesystem.
async fn locate(fault: Fault, qmp: &Qmp) -> Fault {
    let file_of = |device: &str, blocks: &Value| -> Option<PathBuf> {
        blocks.as_array()?.iter().find_map(|b| {
            let inserted = b.get("inserted")?;
            let named = b.get("device").and_then(Value::as_str) == Some(device)
                || inserted.get("node-name").and_then(Value::as_str) == Some(device);
            named
                .then(|| inserted.get("file").and_then(Value::as_str))
                .flatten()
                .map(PathBuf::from)
        })
    };
    match fault {
        Fault::DiskFull { device, .. } => {
            let blocks = qmp.execute("query-block", None).await.unwrap_or_default();
            let file = file_of(&device, &blocks);
            let free = file
                .as_deref()
                .and_then(|f| super::space::free_bytes(f).ok());
            Fault::DiskFull { device, file, free }
        }
        Fault::IoError { device, reason, .. } => {
            let blocks = qmp.execute("query-block", None).await.unwrap_or_default();
            let file = file_of(&device, &blocks);
            Fault::IoError {
                device,
                file,
                reason,
            }
        }
        other => other,
    }
}

/// Shows the guest's last serial lines (for a panic, the kernel's panic message) and saves a
/// screenshot while QEMU still runs.
async fn show(fault: &Fault, qmp: &Qmp, report: &Report) {
    let from = matches!(fault, Fault::Panicked { .. }).then_some(PANIC_LINE);
    show_serial(&report.ui, &report.serial_log, from).await;
    if fault.guest_still_there() {
        let png = PathBuf::from(format!("{}{}.png", report.screenshot_prefix, fault.slug()));
        match tokio::time::timeout(SCREENSHOT_TIMEOUT, screendump(qmp, &png)).await {
            Ok(Ok(path)) => report
                .ui
                .error(format!("The guest's screen: {}", path.display())),
            Ok(Err(why)) => tracing::debug!(%why, "no screenshot"),
            Err(_) => tracing::debug!("no screenshot: screendump took too long"),
        }
    }
}

/// Prints the last [`SERIAL_TAIL_LINES`] lines of the guest's serial console, if it wrote any.
pub async fn show_serial_tail(ui: &Ui, log: &Path) {
    show_serial(ui, log, None).await;
}

/// How Linux starts its panic message on the console.
const PANIC_LINE: &str = "Kernel panic - not syncing";

/// Prints [`SERIAL_TAIL_LINES`] lines of the serial console: from just before the last line
/// holding `from` when there is one, else the last ones.
async fn show_serial(ui: &Ui, log: &Path, from: Option<&str>) {
    let Ok(bytes) = tokio::fs::read(log).await else {
        return;
    };
    let tail = excerpt(&String::from_utf8_lossy(&bytes), SERIAL_TAIL_LINES, from);
    if tail.is_empty() {
        return;
    }
    ui.error(format!(
        "Last lines of the guest's serial console ({}):",
        log.display()
    ));
    for line in tail.lines() {
        ui.message(format!("serial: {line}"));
    }
}

/// Saves the guest's screen as a PNG at `path` (QMP `screendump`, QEMU ≥ 7.1); returns its
/// absolute path. Such files live outside the output directory, which a failed build removes.
pub async fn screendump(qmp: &Qmp, path: &Path) -> Result<PathBuf, String> {
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    let args = serde_json::json!({"filename": abs.to_string_lossy(), "format": "png"});
    qmp.execute("screendump", Some(args))
        .await
        .map_err(|e| e.to_string())?;
    Ok(abs)
}

/// `n` non-blank lines of `text`, without carriage returns: from the line before the last one
/// holding `from` (the line that says why, e.g. `sysrq: Trigger a crash`) when there is one,
/// else the last `n`.
fn excerpt(text: &str, n: usize, from: Option<&str>) -> String {
    let text = text.replace('\r', "");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = from
        .and_then(|m| lines.iter().rposition(|l| l.contains(m)))
        .map_or(lines.len().saturating_sub(n), |i| i.saturating_sub(1));
    lines[start..]
        .iter()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(name: &str, data: Value) -> Event {
        Event {
            name: name.to_owned(),
            data,
        }
    }

    fn reset() -> Event {
        ev("RESET", json!({"guest": true, "reason": "guest-reset"}))
    }

    /// Events as QEMU 7.2 sent them in the experiments behind this module.
    #[test]
    fn verdict_table() {
        let full = ev(
            "BLOCK_IO_ERROR",
            json!({"device": "virtio0", "nospace": true, "node-name": "#block191",
                   "reason": "No space left on device", "operation": "write", "action": "stop"}),
        );
        let eio_stop = ev(
            "BLOCK_IO_ERROR",
            json!({"device": "", "node-name": "#block5", "reason": "Input/output error",
                   "operation": "write", "action": "stop"}),
        );
        let eio_report = ev(
            "BLOCK_IO_ERROR",
            json!({"device": "ide0-hd0", "reason": "Input/output error", "operation": "read",
                   "action": "report"}),
        );
        let panic = ev("GUEST_PANICKED", json!({"action": "poweroff"}));
        let off = ev(
            "SHUTDOWN",
            json!({"guest": true, "reason": "guest-shutdown"}),
        );
        let quit = ev(
            "SHUTDOWN",
            json!({"guest": false, "reason": "host-qmp-quit"}),
        );
        let host_reset = ev(
            "RESET",
            json!({"guest": false, "reason": "host-qmp-system-reset"}),
        );
        use Phase::*;
        #[rustfmt::skip]
        let rows: Vec<(&str, bool, Phase, Event, Verdict)> = vec![
            ("ENOSPC stops the build", false, Booting, full.clone(),
                Verdict::Fault(Fault::DiskFull { device: "virtio0".into(), file: None, free: None })),
            ("ENOSPC also after SSH", false, Connected, full.clone(),
                Verdict::Fault(Fault::DiskFull { device: "virtio0".into(), file: None, free: None })),
            ("an I/O error QEMU stops for waits for its STOP", false, Booting, eio_stop.clone(), Verdict::Nothing),
            ("an I/O error passed to the guest is a warning", false, Booting, eio_report.clone(),
                Verdict::Warn("QEMU passed an I/O error on drive ide0-hd0 to the guest (read failed: \
                               Input/output error); the image may be damaged".into())),
            ("STOP asks for the run state", false, Connected, ev("STOP", Value::Null), Verdict::AskStatus),
            ("a panic", false, Connected, panic.clone(),
                Verdict::Fault(Fault::Panicked { action: "poweroff".into() })),
            ("power-off before SSH", false, Booting, off.clone(), Verdict::Fault(Fault::PoweredOff)),
            ("power-off is the end without a communicator", true, Booting, off.clone(), Verdict::Nothing),
            ("power-off after SSH (a provisioner's)", false, Connected, off.clone(), Verdict::Nothing),
            ("power-off while shutting down", false, ShuttingDown, off.clone(), Verdict::Nothing),
            ("kiln's own quit", false, Booting, quit.clone(), Verdict::Nothing),
            ("one reset", false, Booting, reset(), Verdict::Nothing),
            ("a reset kiln asked for", false, Booting, host_reset.clone(), Verdict::Nothing),
            ("unknown events pass", false, Booting, ev("NIC_RX_FILTER_CHANGED", json!({})), Verdict::Nothing),
        ];
        for (why, poweroff_expected, phase, event, want) in rows {
            let mut w = Watch::new(poweroff_expected);
            assert_eq!(w.on_event(&event, phase, Instant::now()), want, "{why}");
        }
    }

    #[test]
    fn stop_reasons() {
        let mut w = Watch::new(false);
        let eio = ev(
            "BLOCK_IO_ERROR",
            json!({"device": "virtio1", "reason": "Input/output error", "operation": "write",
                   "action": "stop"}),
        );
        assert_eq!(
            w.on_event(&eio, Phase::Booting, Instant::now()),
            Verdict::Nothing
        );
        assert_eq!(
            w.on_status("io-error"),
            Some(Fault::IoError {
                device: "virtio1".into(),
                file: None,
                reason: "Input/output error".into()
            })
        );
        assert_eq!(
            w.on_status("guest-panicked"),
            Some(Fault::Panicked {
                action: "pause".into()
            })
        );
        assert_eq!(w.on_status("internal-error"), Some(Fault::InternalError));
        for harmless in ["paused", "running", "shutdown", "suspended", "debug"] {
            assert_eq!(w.on_status(harmless), None, "{harmless}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resets_make_a_boot_loop_only_when_close_together_and_before_ssh() {
        let mut w = Watch::new(false);
        // An installer's reboot (two RESETs from SeaBIOS), then slow ones outside the window.
        for _ in 0..BOOT_LOOP_RESETS - 1 {
            assert_eq!(
                w.on_event(&reset(), Phase::Booting, Instant::now()),
                Verdict::Nothing
            );
            tokio::time::advance(BOOT_LOOP_WINDOW / 4).await;
        }
        assert_eq!(
            w.on_event(&reset(), Phase::Booting, Instant::now()),
            Verdict::Nothing,
            "the early resets have left the window"
        );
        // A burst.
        let mut w = Watch::new(false);
        let mut last = Verdict::Nothing;
        for _ in 0..BOOT_LOOP_RESETS {
            last = w.on_event(&reset(), Phase::Booting, Instant::now());
            tokio::time::advance(Duration::from_millis(300)).await;
        }
        assert_eq!(
            last,
            Verdict::Fault(Fault::BootLoop {
                resets: BOOT_LOOP_RESETS,
                within: Duration::from_millis(300) * (BOOT_LOOP_RESETS as u32 - 1),
            })
        );
        // After SSH answered, reboots are the provisioners' business.
        let mut w = Watch::new(false);
        for _ in 0..BOOT_LOOP_RESETS * 2 {
            assert_eq!(
                w.on_event(&reset(), Phase::Connected, Instant::now()),
                Verdict::Nothing
            );
        }
    }

    #[test]
    fn serial_excerpts() {
        let log = "boot\r\n\nsysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash\n\
                   CPU: 0\nCall Trace:\n a\n b\n c\n";
        assert_eq!(excerpt(log, 3, None), " a\n b\n c");
        assert_eq!(
            excerpt(log, 3, Some(PANIC_LINE)),
            "sysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash\nCPU: 0"
        );
        assert_eq!(excerpt(log, 3, Some("not there")), " a\n b\n c");
        assert_eq!(excerpt("", 3, None), "");
    }

    #[test]
    fn messages_name_the_file_and_the_free_space() {
        let full = Fault::DiskFull {
            device: "virtio0".into(),
            file: Some("output-x/x.qcow2".into()),
            free: Some(764 << 10),
        };
        assert_eq!(
            full.to_string(),
            "The filesystem holding `output-x/x.qcow2` is full (764.0 KiB free); QEMU paused the guest"
        );
        let unknown = Fault::DiskFull {
            device: "virtio0".into(),
            file: None,
            free: None,
        };
        assert_eq!(
            unknown.to_string(),
            "The filesystem holding `drive virtio0` is full (free space unknown); QEMU paused the guest"
        );
        let lp = Fault::BootLoop {
            resets: 10,
            within: Duration::from_millis(2500),
        };
        assert_eq!(
            lp.to_string(),
            "The guest reset 10 times in 2s without coming up: it is in a boot loop"
        );
    }

    /// A real QEMU: `locate` finds the image behind a drive through `query-block`.
    #[tokio::test]
    async fn locate_finds_the_image_of_a_drive() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.raw");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        let drive = format!("file={},if=virtio,format=raw", img.display());
        let _qemu = super::super::qmp::test_qemu::spawn(&["-S", "-drive", &drive]);
        let qmp = Qmp::connect(&_qemu.socket, Duration::from_secs(20))
            .await
            .unwrap();
        let located = locate(
            Fault::DiskFull {
                device: "virtio0".into(),
                file: None,
                free: None,
            },
            &qmp,
        )
        .await;
        match located {
            Fault::DiskFull {
                file: Some(f),
                free: Some(free),
                ..
            } => {
                assert_eq!(f, img);
                assert!(free > 0);
            }
            other => panic!("not located: {other:?}"),
        }
    }
}
