//! The `boot_command` engine: render the template variables, parse Packer's key grammar into
//! actions, then type them into the VM through a [`KeyDriver`].
//!
//! Rendering and parsing are pure and happen before anything is typed, so a bad boot command
//! fails before the VM sees a single key. Typing is paced (see [`Pacing`]) and stops at once
//! when the build is cancelled.

mod driver;
pub mod feedback;
mod grammar;
pub mod keys;
pub mod screen;
pub mod vnc;

use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

pub use driver::QmpKeyDriver;
pub use feedback::{Backlog, GuestReads, QemuKeyboard};
pub use grammar::{parse, parse_with};
pub use keys::{Key, Keymap};
pub use screen::{QmpScreen, Screen};
pub use vnc::VncKeyDriver;

/// The VM's monitor: what [`QmpKeyDriver`] types through and [`QemuKeyboard`] reads guest memory
/// with. The qemu builder's QMP client implements it, so this module does not depend on it.
#[async_trait::async_trait]
pub trait Monitor: Sync {
    /// Runs `command` with `arguments` and returns its reply.
    async fn execute(
        &self,
        command: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, MonitorError>;
}

/// Why a [`Monitor`] command failed (the monitor's own error).
pub type MonitorError = Box<dyn std::error::Error + Send + Sync>;

/// Why a boot command could not be rendered, parsed or typed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `{{ … }}` names a variable or expression kiln does not provide.
    #[error(
        "Unknown template variable `{expr}` (known: `{{{{ .HTTPIP }}}}`, `{{{{ .HTTPPort }}}}`, \
         `{{{{ .Name }}}}`, `{{{{ .SSHPublicKey }}}}`)"
    )]
    UnknownVariable { expr: String, offset: usize },
    /// A `{{` has no closing `}}`.
    #[error("Unclosed `{{{{`")]
    UnclosedVariable { offset: usize },
    /// A character has no key on the keyboard layout (`boot_keymap`).
    #[error("Character {ch:?} cannot be typed with the `{keymap}` keyboard layout (boot_keymap)")]
    Untypable {
        ch: char,
        offset: usize,
        keymap: &'static str,
    },
    /// A `<wait…>` has a duration that is malformed or not positive.
    #[error("Invalid wait `{text}`: {reason}")]
    Wait {
        text: String,
        offset: usize,
        reason: String,
    },
    /// The driver could not deliver key events to the VM.
    #[error("Could not send key events to the VM")]
    SendKeys(#[source] MonitorError),
    /// The VNC driver could not deliver key events.
    #[error("Could not send key events over VNC")]
    Vnc(#[source] vnc::VncError),
    /// The guest's keyboard reads could not be observed.
    #[error("Could not follow the guest's keyboard reads")]
    Feedback(#[source] feedback::Error),
    /// The build was cancelled while typing.
    #[error("Typing the boot command was cancelled")]
    Cancelled,
    /// A screen wait ran where kiln cannot see the screen (no QMP).
    #[error("`<waitFor>` and `<waitStill>` need QEMU's QMP connection")]
    NoScreen,
    /// The guest's screen could not be read.
    #[error("Could not read the guest's screen")]
    ReadScreen(#[source] screen::ScreenError),
    /// The text of a `<waitFor>` did not appear in time.
    #[error(
        "`<waitFor \"{text}\">`: the text did not appear on the guest's screen within {}s{}{}",
        waited.as_secs(),
        if *graphics { " (the screen was in a graphics mode, where kiln cannot read text: use <waitStill>)" } else { "" },
        screenshot.as_ref().map(|p| format!("; the screen is saved as {}", p.display())).unwrap_or_default()
    )]
    ScreenTimeout {
        text: String,
        waited: Duration,
        /// Whether the screen was never in text mode during the wait.
        graphics: bool,
        screenshot: Option<std::path::PathBuf>,
    },
    /// The screen did not stop changing in time.
    #[error(
        "`<waitStill>`: the guest's screen kept changing for {}s{}",
        waited.as_secs(),
        screenshot.as_ref().map(|p| format!("; the screen is saved as {}", p.display())).unwrap_or_default()
    )]
    StillTimeout {
        waited: Duration,
        screenshot: Option<std::path::PathBuf>,
    },
}

impl Error {
    /// The byte offset into the boot command this error points at, if any.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Error::UnknownVariable { offset, .. }
            | Error::UnclosedVariable { offset }
            | Error::Untypable { offset, .. }
            | Error::Wait { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    fn with_offset(mut self, map: impl Fn(usize) -> usize) -> Self {
        match &mut self {
            Error::UnknownVariable { offset, .. }
            | Error::UnclosedVariable { offset }
            | Error::Untypable { offset, .. }
            | Error::Wait { offset, .. } => *offset = map(*offset),
            _ => {}
        }
        self
    }
}

/// The values `{{ .HTTPIP }}`, `{{ .HTTPPort }}` and `{{ .Name }}` stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootVars {
    /// Address the guest reaches the build's HTTP server at (e.g. `10.0.2.2`).
    pub http_ip: String,
    /// Port of the build's HTTP server.
    pub http_port: u16,
    /// The VM name (`vm_name`).
    pub name: String,
    /// The build's temporary SSH public key (`ssh-ed25519 … kiln`), empty when the template
    /// gives a password or key file.
    pub ssh_public_key: String,
}

/// Replaces `{{ .HTTPIP }}`, `{{ .HTTPPort }}`, `{{ .Name }}` and `{{ .SSHPublicKey }}` (spaces
/// inside the braces are optional). Any other `{{ … }}` is an error naming it; offsets are bytes into `template`.
pub fn render(template: &str, vars: &BootVars) -> Result<String, Error> {
    render_mapped(template, vars).map(|(s, _)| s)
}

/// `actions` with a pause of `interval` after each key group (a key pressed and released, or
/// held or released: one `Press`, `Down` or `Up`), for `boot_keygroup_interval`.
pub fn with_group_pauses(actions: Vec<Action>, interval: Duration) -> Vec<Action> {
    let mut out = Vec::with_capacity(actions.len() * 2);
    for action in actions {
        let key = matches!(action, Action::Press(_) | Action::Down(_) | Action::Up(_));
        out.push(action);
        if key {
            out.push(Action::Wait(interval));
        }
    }
    out
}

/// Renders and parses `template` in one go, typing characters as keys of `keymap`; every error
/// offset points into `template` (a character produced by a variable points at its `{{`).
pub fn compile(template: &str, vars: &BootVars, keymap: Keymap) -> Result<Vec<Action>, Error> {
    let (rendered, origin) = render_mapped(template, vars)?;
    parse_with(&rendered, keymap)
        .map_err(|e| e.with_offset(|at| origin.get(at).copied().unwrap_or(template.len())))
}

/// [`render`], plus for each byte of the output the offset in `template` it came from.
fn render_mapped(template: &str, vars: &BootVars) -> Result<(String, Vec<usize>), Error> {
    let port = vars.http_port.to_string();
    let lookup = |name: &str| -> Option<std::borrow::Cow<'_, str>> {
        Some(match name {
            "HTTPIP" => vars.http_ip.as_str().into(),
            "HTTPPort" => port.clone().into(),
            "Name" => vars.name.as_str().into(),
            "SSHPublicKey" => vars.ssh_public_key.as_str().into(),
            _ => return None,
        })
    };
    crate::render::render_mapped(template, lookup).map_err(|e| match e {
        crate::render::Error::Unclosed { offset } => Error::UnclosedVariable { offset },
        crate::render::Error::Unknown {
            placeholder,
            offset,
        } => Error::UnknownVariable {
            expr: placeholder,
            offset,
        },
    })
}

/// One step of a parsed boot command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Press and release a key (with Shift around it when the key needs it).
    Press(Key),
    /// Press and hold (`<leftCtrlOn>`, `<cOn>`).
    Down(Key),
    /// Release a held key (`<leftCtrlOff>`).
    Up(Key),
    /// Pause (`<wait>`, `<wait5>`, `<wait1m30s>`).
    Wait(Duration),
    /// kiln's `<waitFor "TEXT">` / `<waitFor 'TEXT' 2m>`: wait until `text` is on the guest's
    /// text-mode screen, for at most `timeout`.
    WaitForText { text: String, timeout: Duration },
    /// kiln's `<waitStill>` / `<waitStill 3s>`: wait until the screen has not changed for
    /// `quiet`, for at most `timeout`.
    WaitStill { quiet: Duration, timeout: Duration },
}

/// How long `<waitFor …>` and `<waitStill>` wait unless the command says otherwise.
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the screen must stay unchanged for a bare `<waitStill>`.
pub const STILL_QUIET: Duration = Duration::from_secs(2);

/// One key going down or up, named by its QEMU qcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEvent {
    /// The QMP `QKeyCode` name.
    pub qcode: &'static str,
    /// `true` for press, `false` for release.
    pub down: bool,
}

/// Delivers key events to a VM (QMP today; VNC later).
#[async_trait::async_trait]
pub trait KeyDriver: Send {
    /// Sends `events` in order.
    async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error>;
}

/// How fast to type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Pause this long after every key event (Packer's `boot_key_interval` semantics).
    Interval(Duration),
    /// Send as fast as the guest reads: before each event, wait until at most `window - 1`
    /// scancode bytes are still unread (counted through [`GuestReads`]). When the guest reads
    /// nothing for `stall`, send anyway (it may be busy loading a kernel and not reading);
    /// when no read was ever seen, the feedback is taken as unavailable and typing continues
    /// with `Interval(fallback)`. See [`feedback`] for the measurements behind the defaults.
    GuestPaced {
        window: u32,
        stall: Duration,
        fallback: Duration,
    },
}

/// The guest-paced window: one shifted key (4 bytes). Measured exact in every run; a window of
/// 8 lost keys (see [`feedback`]).
pub const GUEST_WINDOW: u32 = 4;
/// At most this many keys may wait in the guest's BIOS keyboard buffer (15 slots) before the
/// next one is sent; with the PS/2 window in flight on top, it never overflows.
pub const BIOS_WINDOW: u32 = 8;
/// The per-event interval used without guest feedback (the VNC driver, a QEMU without the
/// `log` trace backend). Measured at the isolinux prompt under load 3–8 on 2 cores: 1 ms was
/// exact in 8 of 10 runs (stalls of the guest lost keys); 10 ms tolerates a 160 ms stall with
/// the 16-byte queue and still types ten times faster than Packer's 100 ms.
pub const FALLBACK_INTERVAL: Duration = Duration::from_millis(10);

/// Packer's pause after every key event, used where kiln can neither follow the guest's reads
/// nor trust its fast fallback (a USB keyboard in `qemuargs`).
pub const PACKER_INTERVAL: Duration = Duration::from_millis(100);

impl Pacing {
    /// Guest-paced typing with kiln's measured defaults.
    pub fn guest_paced() -> Self {
        Pacing::GuestPaced {
            window: GUEST_WINDOW,
            stall: Duration::from_secs(1),
            fallback: FALLBACK_INTERVAL,
        }
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::Interval(FALLBACK_INTERVAL)
    }
}

/// What typing a boot command took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Typed {
    /// Key events sent.
    pub events: usize,
    /// Time spent typing, `<wait>`s excluded.
    pub typing: Duration,
    /// Guest pacing was asked for but the guest's reads were never seen, so the fallback
    /// interval was used.
    pub fell_back: bool,
}

/// Packer's typing time for `actions` with its default 100 ms after every key event, `<wait>`s
/// excluded: what kiln's typing time is compared against.
pub fn packer_typing_time(actions: &[Action]) -> Duration {
    let events: usize = actions.iter().map(|a| key_events(a).len()).sum();
    Duration::from_millis(100) * u32::try_from(events).unwrap_or(u32::MAX)
}

/// The key events of one action; a `Wait` has none.
fn key_events(action: &Action) -> Vec<KeyEvent> {
    let ev = |qcode, down| KeyEvent { qcode, down };
    let shift = |k: &Key, down| k.shift.then(|| ev(keys::SHIFT, down));
    let altgr = |k: &Key, down| k.altgr.then(|| ev(keys::ALTGR, down));
    match action {
        Action::Press(k) => [
            shift(k, true),
            altgr(k, true),
            Some(ev(k.qcode, true)),
            Some(ev(k.qcode, false)),
            altgr(k, false),
            shift(k, false),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Action::Down(k) => [shift(k, true), altgr(k, true), Some(ev(k.qcode, true))]
            .into_iter()
            .flatten()
            .collect(),
        Action::Up(k) => [Some(ev(k.qcode, false)), altgr(k, false), shift(k, false)]
            .into_iter()
            .flatten()
            .collect(),
        Action::Wait(_) | Action::WaitForText { .. } | Action::WaitStill { .. } => Vec::new(),
    }
}

/// Types `actions` through `driver`, one event per send, paced by `pacing` (guest pacing needs
/// `reads`; screen waits need `screen`), and returns [`Error::Cancelled`] as soon as `cancel`
/// fires (even mid-wait or mid-send).
pub async fn type_actions(
    actions: &[Action],
    driver: &mut dyn KeyDriver,
    mut reads: Option<&mut dyn GuestReads>,
    mut screen: Option<&mut dyn Screen>,
    cancel: &CancellationToken,
    pacing: Pacing,
) -> Result<Typed, Error> {
    let mut typed = Typed::default();
    let mut pacing = match (pacing, &reads) {
        (Pacing::GuestPaced { fallback, .. }, None) => Pacing::Interval(fallback),
        (p, _) => p,
    };
    // Guest pacing state: bytes sent, and the read count when typing started.
    let mut sent: u64 = 0;
    let mut base: Option<u64> = None;
    let mut seen_read = false;
    for action in actions {
        match action {
            Action::Wait(d) => {
                tracing::debug!(wait = ?d, "Boot command wait");
                pause(*d, cancel).await?;
                continue;
            }
            Action::WaitForText { text, timeout } => {
                let screen = screen.as_deref_mut().ok_or(Error::NoScreen)?;
                screen::wait_for_text(screen, text, *timeout, cancel).await?;
                continue;
            }
            Action::WaitStill { quiet, timeout } => {
                let screen = screen.as_deref_mut().ok_or(Error::NoScreen)?;
                screen::wait_still(screen, *quiet, *timeout, cancel).await?;
                continue;
            }
            _ => {}
        }
        for event in key_events(action) {
            let started = Instant::now();
            if let (
                Pacing::GuestPaced {
                    window,
                    stall,
                    fallback,
                },
                Some(r),
            ) = (pacing, reads.as_deref_mut())
            {
                if base.is_none() {
                    base = Some(r.backlog().await.map_err(Error::Feedback)?.reads);
                }
                let base = base.unwrap_or_default();
                match wait_for_guest(r, base, sent, window, stall, cancel).await? {
                    GuestWait::Ready { any_read } => seen_read |= any_read,
                    GuestWait::Stalled { any_read, reads } if any_read || seen_read => {
                        seen_read = true;
                        tracing::debug!("guest read no key for {stall:?}; sending anyway");
                        sent = reads.saturating_sub(base);
                    }
                    GuestWait::Stalled { .. } => {
                        tracing::warn!(
                            "no keyboard read seen from the guest; typing at {fallback:?} per key event"
                        );
                        typed.fell_back = true;
                        pacing = Pacing::Interval(fallback);
                    }
                }
                sent += u64::from(keys::scancode_len(event.qcode));
            }
            let batch = [event];
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                sent = driver.send(&batch) => sent?,
            }
            typed.events += 1;
            if let Pacing::Interval(d) = pacing {
                // Deliberate rate limit for the guest's keyboard queue, not a wait for an event.
                pause(d, cancel).await?;
            }
            typed.typing += started.elapsed();
        }
    }
    Ok(typed)
}

/// How [`wait_for_guest`] ended.
enum GuestWait {
    /// Fewer than `window` bytes are unread and the BIOS buffer has room.
    Ready { any_read: bool },
    /// The guest made no progress for the stall time; `reads` is its read count.
    Stalled { any_read: bool, reads: u64 },
}

/// How often the guest's backlog is looked at while waiting (tokio's timer granularity).
const READ_POLL: Duration = Duration::from_millis(1);

/// Waits until fewer than `window` of the `sent` bytes are unread and fewer than
/// [`BIOS_WINDOW`] keys wait in the BIOS buffer, polling every [`READ_POLL`]; gives up after
/// `stall` without progress (a new read, or a key taken from the BIOS buffer).
async fn wait_for_guest(
    reads: &mut dyn GuestReads,
    base: u64,
    sent: u64,
    window: u32,
    stall: Duration,
    cancel: &CancellationToken,
) -> Result<GuestWait, Error> {
    let mut last = reads.backlog().await.map_err(Error::Feedback)?;
    let mut any_read = last.reads > base;
    let mut progress = Instant::now();
    loop {
        let consumed = last.reads.saturating_sub(base);
        if sent.saturating_sub(consumed) < u64::from(window) && last.bios_keys < BIOS_WINDOW {
            return Ok(GuestWait::Ready { any_read });
        }
        if progress.elapsed() >= stall {
            return Ok(GuestWait::Stalled {
                any_read,
                reads: last.reads,
            });
        }
        pause(READ_POLL, cancel).await?;
        let now = reads.backlog().await.map_err(Error::Feedback)?;
        if now.reads > last.reads || now.bios_keys < last.bios_keys {
            any_read |= now.reads > last.reads;
            progress = Instant::now();
        }
        last = now;
    }
}

/// Sleeps for `d` unless cancelled first.
async fn pause(d: Duration, cancel: &CancellationToken) -> Result<(), Error> {
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    if d.is_zero() {
        return Ok(());
    }
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Error::Cancelled),
        () = tokio::time::sleep(d) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BootVars {
        BootVars {
            http_ip: "10.0.2.2".into(),
            http_port: 8123,
            name: "deb12".into(),
            ssh_public_key: "ssh-ed25519 AAAAkey kiln".into(),
        }
    }

    #[test]
    fn render_table() {
        let cases = [
            ("plain", "plain", "no variables"),
            (
                "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x",
                "url=http://10.0.2.2:8123/x",
                "spaced variables",
            ),
            ("{{.HTTPIP}}", "10.0.2.2", "no spaces inside braces"),
            ("{{   .Name\t}}", "deb12", "extra whitespace"),
            ("a}}b", "a}}b", "lone closing braces stay"),
            (
                "echo '{{ .SSHPublicKey }}' >> k",
                "echo 'ssh-ed25519 AAAAkey kiln' >> k",
                "the temporary public key (issue 6)",
            ),
            (
                "<enter>{{ .Name }}<wait>",
                "<enter>deb12<wait>",
                "mixed with keys",
            ),
        ];
        for (input, want, why) in cases {
            assert_eq!(render(input, &vars()).unwrap(), want, "{why}");
        }
    }

    #[test]
    fn render_errors() {
        let err = render("ab{{ .WinRMPassword }}", &vars()).unwrap_err();
        match &err {
            Error::UnknownVariable { expr, offset } => {
                assert_eq!((expr.as_str(), *offset), ("{{ .WinRMPassword }}", 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains(".WinRMPassword"), "{err}");
        assert!(matches!(
            render("{{ .httpip }}", &vars()),
            Err(Error::UnknownVariable { .. })
        ));
        assert!(matches!(
            render("x {{ .Name", &vars()),
            Err(Error::UnclosedVariable { offset: 2 })
        ));
    }

    /// Records every event instead of sending it.
    #[derive(Default)]
    struct Recorder(Vec<(&'static str, bool)>);

    #[async_trait::async_trait]
    impl KeyDriver for Recorder {
        async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
            self.0.extend(events.iter().map(|e| (e.qcode, e.down)));
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn types_exact_event_sequence() {
        let actions = parse("aB!<enter>").unwrap();
        let mut rec = Recorder::default();
        type_actions(
            &actions,
            &mut rec,
            None,
            None,
            &CancellationToken::new(),
            Pacing::default(),
        )
        .await
        .unwrap();
        let want = [
            ("a", true),
            ("a", false),
            ("shift", true),
            ("b", true),
            ("b", false),
            ("shift", false),
            ("shift", true),
            ("1", true),
            ("1", false),
            ("shift", false),
            ("ret", true),
            ("ret", false),
        ];
        assert_eq!(rec.0, want);
    }

    #[tokio::test(start_paused = true)]
    async fn toggles_hold_until_released() {
        let actions = parse("<leftCtrlOn>c<leftCtrlOff><AOn>").unwrap();
        let mut rec = Recorder::default();
        let pacing = Pacing::Interval(Duration::ZERO);
        type_actions(
            &actions,
            &mut rec,
            None,
            None,
            &CancellationToken::new(),
            pacing,
        )
        .await
        .unwrap();
        let want = [
            ("ctrl", true),
            ("c", true),
            ("c", false),
            ("ctrl", false),
            ("shift", true),
            ("a", true),
        ];
        assert_eq!(rec.0, want);
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_and_waits_take_their_time() {
        let actions = parse("ab<wait2>").unwrap();
        let start = tokio::time::Instant::now();
        type_actions(
            &actions,
            &mut Recorder::default(),
            None,
            None,
            &CancellationToken::new(),
            Pacing::Interval(Duration::from_millis(100)),
        )
        .await
        .unwrap();
        // 4 events x 100 ms + 2 s.
        assert_eq!(start.elapsed(), Duration::from_millis(2400));
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_a_long_wait_at_once() {
        let actions = parse("a<wait1h>b").unwrap();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            c2.cancel();
        });
        let start = tokio::time::Instant::now();
        let mut rec = Recorder::default();
        let err = type_actions(&actions, &mut rec, None, None, &cancel, Pacing::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(6));
        assert_eq!(rec.0, [("a", true), ("a", false)], "nothing after the wait");
    }

    #[tokio::test]
    async fn cancelled_before_start_sends_nothing() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut rec = Recorder::default();
        let err = type_actions(
            &parse("abc").unwrap(),
            &mut rec,
            None,
            None,
            &cancel,
            Pacing::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        assert!(rec.0.is_empty());
    }

    /// A simulated guest keyboard: a 16-byte queue that drops what does not fit, emptied one
    /// byte per 100 µs except while the guest is stalled (between 20 ms and 520 ms).
    #[derive(Clone, Default)]
    struct SimGuest(std::sync::Arc<std::sync::Mutex<SimState>>);

    #[derive(Default)]
    struct SimState {
        start: Option<tokio::time::Instant>,
        queued: u64,
        consumed: u64,
        lost: u64,
        /// Whether the guest reads at all (false: no feedback ever).
        silent: bool,
    }

    impl SimState {
        fn advance(&mut self) {
            let start = *self.start.get_or_insert_with(tokio::time::Instant::now);
            let t = start.elapsed();
            let stalled = Duration::from_millis(20);
            let resumed = Duration::from_millis(520);
            let active = if t < stalled {
                t
            } else if t < resumed {
                stalled
            } else {
                t - (resumed - stalled)
            };
            let can = (active.as_micros() / 100) as u64;
            self.consumed = self.queued.min(can.max(self.consumed));
        }
    }

    #[async_trait::async_trait]
    impl KeyDriver for SimGuest {
        async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
            let mut g = self.0.lock().unwrap();
            g.advance();
            for e in events {
                let len = u64::from(keys::scancode_len(e.qcode));
                if g.queued - g.consumed + len > 16 {
                    g.lost += 1;
                } else {
                    g.queued += len;
                }
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl GuestReads for SimGuest {
        async fn backlog(&mut self) -> Result<Backlog, feedback::Error> {
            let mut g = self.0.lock().unwrap();
            g.advance();
            let reads = if g.silent { 0 } else { g.consumed };
            Ok(Backlog {
                reads,
                bios_keys: 0,
            })
        }
    }

    fn long_text() -> Vec<Action> {
        parse(&"Hello, World! ~!@#$%^&*() ".repeat(12)).unwrap()
    }

    /// Issue 5: a stalled guest stalls guest-paced typing instead of losing keys.
    #[tokio::test(start_paused = true)]
    async fn guest_pacing_survives_a_stall_without_loss() {
        let sim = SimGuest::default();
        let (mut driver, mut reads) = (sim.clone(), sim.clone());
        let typed = type_actions(
            &long_text(),
            &mut driver,
            Some(&mut reads),
            None,
            &CancellationToken::new(),
            Pacing::guest_paced(),
        )
        .await
        .unwrap();
        let g = sim.0.lock().unwrap();
        assert_eq!(g.lost, 0, "keys lost");
        assert!(!typed.fell_back);
        assert!(typed.events > 600, "{typed:?}");
        // Bounded by the guest (events x 100 µs) plus the 500 ms stall, not by a fixed delay.
        assert!(typed.typing < Duration::from_secs(2), "{typed:?}");
    }

    /// The same guest loses keys with a fixed 1 ms interval: the test above can fail.
    #[tokio::test(start_paused = true)]
    async fn fixed_interval_loses_keys_in_a_stall() {
        let sim = SimGuest::default();
        let mut driver = sim.clone();
        type_actions(
            &long_text(),
            &mut driver,
            None,
            None,
            &CancellationToken::new(),
            Pacing::Interval(Duration::from_millis(1)),
        )
        .await
        .unwrap();
        assert!(sim.0.lock().unwrap().lost > 0);
    }

    /// A guest whose interrupt handler empties the PS/2 queue at once but whose boot loader
    /// takes keys from the BIOS buffer only every 5 ms (like isolinux redrawing its line).
    #[derive(Default)]
    struct SlowLoader {
        start: Option<tokio::time::Instant>,
        sent_keys: u64,
        bytes: u64,
        max_bios: u64,
    }

    impl SlowLoader {
        fn taken(&mut self) -> u64 {
            let start = *self.start.get_or_insert_with(tokio::time::Instant::now);
            (start.elapsed().as_millis() / 5) as u64
        }
    }

    #[async_trait::async_trait]
    impl KeyDriver for SlowLoader {
        async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
            for e in events {
                self.bytes += u64::from(keys::scancode_len(e.qcode));
                if e.down && e.qcode != keys::SHIFT {
                    self.sent_keys += 1;
                }
            }
            let waiting = self.sent_keys.saturating_sub(self.taken());
            self.max_bios = self.max_bios.max(waiting);
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl GuestReads for SlowLoader {
        async fn backlog(&mut self) -> Result<Backlog, feedback::Error> {
            let waiting = self.sent_keys.saturating_sub(self.taken());
            Ok(Backlog {
                reads: self.bytes,
                bios_keys: u32::try_from(waiting).unwrap(),
            })
        }
    }

    /// Issue 5: keys read from the PS/2 queue but not yet taken from the BIOS buffer hold the
    /// typing back, so the 15-key buffer never overflows.
    #[tokio::test(start_paused = true)]
    async fn bios_buffer_backlog_holds_typing_back() {
        let shared = std::sync::Arc::new(tokio::sync::Mutex::new(SlowLoader::default()));
        struct Both(std::sync::Arc<tokio::sync::Mutex<SlowLoader>>);
        #[async_trait::async_trait]
        impl KeyDriver for Both {
            async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
                self.0.lock().await.send(events).await
            }
        }
        #[async_trait::async_trait]
        impl GuestReads for Both {
            async fn backlog(&mut self) -> Result<Backlog, feedback::Error> {
                self.0.lock().await.backlog().await
            }
        }
        let (mut driver, mut reads) = (Both(shared.clone()), Both(shared.clone()));
        let typed = type_actions(
            &long_text(),
            &mut driver,
            Some(&mut reads),
            None,
            &CancellationToken::new(),
            Pacing::guest_paced(),
        )
        .await
        .unwrap();
        let max = shared.lock().await.max_bios;
        assert!(max <= u64::from(BIOS_WINDOW), "BIOS buffer held {max} keys");
        assert!(!typed.fell_back);
    }

    #[tokio::test(start_paused = true)]
    async fn no_reads_ever_falls_back_to_the_interval() {
        let sim = SimGuest::default();
        sim.0.lock().unwrap().silent = true;
        let (mut driver, mut reads) = (sim.clone(), sim.clone());
        let actions = parse("abcdefgh").unwrap();
        let typed = type_actions(
            &actions,
            &mut driver,
            Some(&mut reads),
            None,
            &CancellationToken::new(),
            Pacing::guest_paced(),
        )
        .await
        .unwrap();
        assert!(typed.fell_back);
        assert_eq!(typed.events, 16);
        // The window's worth of events, one stall, then the fallback interval per event.
        let want = Duration::from_secs(1) + FALLBACK_INTERVAL * 12;
        assert!(typed.typing >= want, "{typed:?}");
        assert!(typed.typing < want + Duration::from_millis(50), "{typed:?}");
    }

    #[test]
    fn compile_maps_offsets_back_to_the_template() {
        let vars = vars();
        let us = Keymap::us();
        // The rendered text is longer than the template before the bad wait.
        let err = compile("{{ .HTTPIP }}:{{ .HTTPPort }}/x<wait1m-30s>", &vars, us).unwrap_err();
        assert_eq!(err.offset(), Some(31), "{err}");
        let err = compile("ab{{ .Name }}é", &vars, us).unwrap_err();
        assert_eq!(err.offset(), Some(13), "{err}");
        let name = BootVars {
            name: "né".into(),
            ..vars
        };
        let err = compile("ab{{ .Name }}", &name, us).unwrap_err();
        assert_eq!(
            err.offset(),
            Some(2),
            "a variable's character points at its braces"
        );
        assert_eq!(
            compile("a{{.Name}}<enter>", &super::tests::vars(), us)
                .unwrap()
                .len(),
            1 + 5 + 1
        );
    }

    #[test]
    fn packer_time_counts_events() {
        // a: 2 events, B: 4, <enter>: 2, <wait>: none.
        let actions = parse("aB<enter><wait5>").unwrap();
        assert_eq!(packer_typing_time(&actions), Duration::from_millis(800));
    }

    /// Issue 14: `boot_keygroup_interval` pauses after each key group, not inside one, and
    /// adds nothing after waits.
    #[test]
    fn issue_14_group_pauses() {
        let vars = vars();
        let actions =
            compile("aB<leftCtrlOn>c<leftCtrlOff><wait>", &vars, Keymap::us()).expect("compiles");
        let g = Duration::from_millis(250);
        let paused = with_group_pauses(actions.clone(), g);
        let mut want = Vec::new();
        for a in actions {
            let key = !matches!(a, Action::Wait(_));
            want.push(a);
            if key {
                want.push(Action::Wait(g));
            }
        }
        assert_eq!(paused, want);
        assert_eq!(paused.iter().filter(|a| **a == Action::Wait(g)).count(), 5);
    }

    /// Issue 14: on a German layout `@` is AltGr+Q, `/` Shift+7 and `y` the Z key; special keys
    /// are unchanged; a character the layout lacks is an error naming it and the layout.
    #[tokio::test(start_paused = true)]
    async fn issue_14_types_with_the_layout() {
        let de = Keymap::named("de").expect("de");
        let actions = compile("y@/{{ .HTTPIP }}<enter><leftCtrlOn>", &vars(), de).unwrap();
        let mut rec = Recorder::default();
        type_actions(
            &actions,
            &mut rec,
            None,
            None,
            &CancellationToken::new(),
            Pacing::Interval(Duration::ZERO),
        )
        .await
        .unwrap();
        let mut want = vec![
            ("z", true),
            ("z", false),
            ("alt_r", true),
            ("q", true),
            ("q", false),
            ("alt_r", false),
            ("shift", true),
            ("7", true),
            ("7", false),
            ("shift", false),
        ];
        for c in ["1", "0", "dot", "0", "dot", "2", "dot", "2"] {
            want.extend([(c, true), (c, false)]);
        }
        want.extend([("ret", true), ("ret", false), ("ctrl", true)]);
        assert_eq!(rec.0, want);

        let err = compile("ab{{ .Name }}é", &vars(), de).unwrap_err();
        assert_eq!(err.offset(), Some(13));
        let msg = err.to_string();
        assert!(msg.contains("'é'") && msg.contains("`de`"), "{msg}");
        let fr = Keymap::named("fr").expect("fr");
        assert!(compile("ç", &vars(), fr).is_ok());
    }
}
