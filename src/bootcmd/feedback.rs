//! Guest-paced typing: knowing when the guest has taken the keys it was sent.
//!
//! QEMU's PS/2 keyboard keeps pending scancode bytes in a small queue and drops what does not
//! fit; the guest empties it one byte per read of the i8042 data port. A fixed delay per key
//! cannot be exact: when the host is busy the guest's vCPU thread is not scheduled for tens of
//! milliseconds, the queue fills and keys vanish. Measured on this project's machine (2 cores,
//! load 3–8, QEMU 7.2 under TCG, isolinux `boot:` prompt, 1424 key events, no `<bs>`): one
//! event per QMP command with no delay was exact in 4 of 10 runs, 1 ms per event in 8 of 10,
//! 2 ms in 10 of 10, 3 ms in 8 of 10 — losses come in runs of 1–20 characters whenever the
//! vCPU thread is descheduled (stalls of 20–60 ms), so no fixed delay is safe, only slower.
//!
//! So kiln watches the guest read: QEMU is started with its `ps2_read_data` trace event
//! written to a file ([`qemu_trace_args`]), one line per byte the guest reads, and the typing
//! loop keeps at most a few bytes unread ([`super::Pacing::GuestPaced`]). A stalled guest then
//! stalls the typing instead of losing keys, and an idle guest is typed into as fast as it
//! reads. A window of 4 bytes (one shifted key) was exact in every run; 8 bytes lost a key in 1
//! of 3 runs (QEMU keeps part of the 16-byte queue as headroom for command replies).
//!
//! A second queue sits behind it on BIOS machines: the BIOS keyboard interrupt moves each key
//! into its 15-key buffer (BIOS data area `0x41a`–`0x43d`), and boot loaders such as isolinux
//! and GRUB take keys from there. While isolinux redraws its command line (after `<bs>` it
//! reprints all of it, ~540 characters on the serial console) the interrupt still empties the
//! PS/2 queue but nobody empties the BIOS buffer: measured, the keys after a `<bs>` in a
//! 450-character payload overflowed it and were lost, Enter included. So [`QemuKeyboard`] also
//! reads the buffer's head and tail through QMP (`xp`) and typing waits while more than a few
//! keys sit there. The check is skipped when the BIOS data area does not describe the standard
//! buffer (UEFI guests), and costs nothing to guests that never use it (the buffer stays empty).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Monitor, MonitorError};

/// The QEMU trace event fired each time the guest reads a byte from the PS/2 keyboard.
pub const READ_EVENT: &str = "ps2_read_data";

/// QEMU arguments that write one line per keyboard byte read by the guest to `path`.
pub fn qemu_trace_args(path: &Path) -> [String; 2] {
    [
        "-trace".to_owned(),
        format!(
            "enable={READ_EVENT},file={}",
            path.to_string_lossy().replace(',', ",,")
        ),
    ]
}

/// Whether `qemu_binary` can trace [`READ_EVENT`] (QEMU built with the `log` trace backend, as
/// Debian's is). Asks `qemu -trace help`, for at most 10 s; any failure means no.
pub async fn qemu_can_trace_reads(qemu_binary: &str) -> bool {
    let probe = tokio::process::Command::new(qemu_binary)
        .args(["-trace", "help"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == READ_EVENT),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not ask QEMU for its trace events");
            false
        }
        Err(_) => false,
    }
}

/// Why the guest's keyboard reads could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the BIOS keyboard buffer's pointers over QMP failed.
    #[error("Could not read the guest's BIOS keyboard buffer over QMP")]
    ReadBiosBuffer(#[source] MonitorError),
    /// The trace file exists but could not be read.
    #[error("Could not read QEMU's keyboard trace `{}`", path.display())]
    ReadTrace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How far behind the guest is with the keys sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Keyboard bytes the guest has read since the VM started (never decreases).
    pub reads: u64,
    /// Keys waiting in the BIOS keyboard buffer (0 when not applicable).
    pub bios_keys: u32,
}

/// Observes the guest taking keys.
#[async_trait::async_trait]
pub trait GuestReads: Send {
    async fn backlog(&mut self) -> Result<Backlog, Error>;
}

/// QEMU's view of the guest keyboard: the read trace plus the BIOS buffer (see the module doc).
pub struct QemuKeyboard<'a> {
    trace: TraceFileReads,
    qmp: &'a dyn Monitor,
    /// Whether the BIOS data area holds the standard buffer; `None` until first looked at.
    bios: Option<bool>,
    /// The last BIOS buffer reading: PS/2 reads at the time, and keys waiting.
    last_bios: (u64, u32),
    /// Below this many keys an upper bound is good enough (see [`GuestReads::backlog`]).
    bios_exact_from: u32,
}

/// The BIOS data area words: buffer head and tail (`0x41a`), buffer start and end (`0x480`).
const BDA_HEAD: u32 = 0x41a;
const BDA_START: u32 = 0x480;

impl<'a> QemuKeyboard<'a> {
    /// Follows `trace` and, over `qmp`, the BIOS buffer; the BIOS buffer is read exactly only
    /// when it might hold `bios_exact_from` keys or more.
    pub fn new(trace: PathBuf, qmp: &'a dyn Monitor, bios_exact_from: u32) -> Self {
        QemuKeyboard {
            trace: TraceFileReads::new(trace),
            qmp,
            bios: None,
            last_bios: (0, 0),
            bios_exact_from,
        }
    }

    /// Two little-endian words of guest physical memory at `addr`, through HMP `xp`.
    async fn words(&self, addr: u32) -> Result<Option<(u16, u16)>, Error> {
        let cmd = serde_json::json!({ "command-line": format!("xp /2xh {addr:#x}") });
        let out = self
            .qmp
            .execute("human-monitor-command", Some(cmd))
            .await
            .map_err(Error::ReadBiosBuffer)?;
        Ok(out.as_str().and_then(parse_xp_words))
    }
}

/// `"000000000000041a: 0x003c 0x003e\r\n"` → `(0x3c, 0x3e)`.
fn parse_xp_words(out: &str) -> Option<(u16, u16)> {
    let mut words = out
        .split_once(':')?
        .1
        .split_whitespace()
        .map(|w| u16::from_str_radix(w.trim_start_matches("0x"), 16).ok());
    Some((words.next()??, words.next()??))
}

#[async_trait::async_trait]
impl GuestReads for QemuKeyboard<'_> {
    async fn backlog(&mut self) -> Result<Backlog, Error> {
        let reads = self.trace.reads()?;
        if self.bios.is_none() {
            let standard = self.words(BDA_START).await? == Some((0x1e, 0x3e));
            tracing::debug!(standard, "BIOS keyboard buffer");
            self.bios = Some(standard);
        }
        if self.bios != Some(true) {
            return Ok(Backlog {
                reads,
                bios_keys: 0,
            });
        }
        // Only the keyboard interrupt adds to the BIOS buffer, at most one key per byte it
        // reads, so the last reading plus the bytes read since is an upper bound. While that
        // bound is small it is used as is, which saves a QMP round trip on most keys.
        let (read_then, keys_then) = self.last_bios;
        let bound = u64::from(keys_then) + reads.saturating_sub(read_then);
        if bound < u64::from(self.bios_exact_from) {
            return Ok(Backlog {
                reads,
                bios_keys: bound as u32,
            });
        }
        let mut bios_keys = 0;
        if let Some((head, tail)) = self.words(BDA_HEAD).await? {
            // Two bytes per key in a 32-byte ring.
            bios_keys = u32::from(tail.wrapping_sub(head) % 32 / 2);
        }
        self.last_bios = (reads, bios_keys);
        Ok(Backlog { reads, bios_keys })
    }
}

/// Counts [`READ_EVENT`] lines in QEMU's trace file, reading only what was appended since the
/// last call. A file that does not exist yet counts as no reads.
pub struct TraceFileReads {
    path: PathBuf,
    file: Option<std::fs::File>,
    partial: Vec<u8>,
    count: u64,
}

impl TraceFileReads {
    pub fn new(path: PathBuf) -> Self {
        TraceFileReads {
            path,
            file: None,
            partial: Vec::new(),
            count: 0,
        }
    }
}

impl TraceFileReads {
    /// The number of [`READ_EVENT`] lines so far.
    pub fn reads(&mut self) -> Result<u64, Error> {
        let read_err = |source| Error::ReadTrace {
            path: self.path.clone(),
            source,
        };
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(self.count),
                Err(e) => return Err(read_err(e)),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(self.count);
        };
        file.read_to_end(&mut self.partial).map_err(read_err)?;
        // Count complete lines only; a line QEMU is still writing waits for the next call.
        let complete = self
            .partial
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let event = READ_EVENT.as_bytes();
        self.count += self.partial[..complete]
            .split(|&b| b == b'\n')
            .filter(|line| line.starts_with(event))
            .count() as u64;
        self.partial.drain(..complete);
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn counts_complete_read_lines_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        let mut reads = TraceFileReads::new(path.clone());
        assert_eq!(reads.reads().unwrap(), 0, "no file yet");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "ps2_read_data 0x55ab1ae159d0\nps2_put_keycode 0x1 keycode 0x1c\nps2_read_da"
        )
        .unwrap();
        assert_eq!(reads.reads().unwrap(), 1, "partial line not counted");
        write!(f, "ta 0x55ab1ae159d0\nps2_read_data 0x55ab1ae159d0\n").unwrap();
        assert_eq!(reads.reads().unwrap(), 3);
        assert_eq!(reads.reads().unwrap(), 3, "nothing new");
    }

    #[test]
    fn xp_output_parses() {
        assert_eq!(
            parse_xp_words("000000000000041a: 0x003c 0x001e\r\n"),
            Some((0x3c, 0x1e))
        );
        assert_eq!(parse_xp_words("garbage"), None);
        assert_eq!(parse_xp_words("0000041a: 0x003c"), None);
    }

    #[test]
    fn trace_args_escape_commas() {
        assert_eq!(
            qemu_trace_args(Path::new("/t/a,b")),
            ["-trace", "enable=ps2_read_data,file=/t/a,,b"]
        );
    }
}
