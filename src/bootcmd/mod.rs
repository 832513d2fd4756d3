//! The `boot_command` engine: render the template variables, parse Packer's key grammar into
//! actions, then type them into the VM through a [`KeyDriver`].
//!
//! Rendering and parsing are pure and happen before anything is typed, so a bad boot command
//! fails before the VM sees a single key. Typing is paced (see [`Pacing`]) and stops at once
//! when the build is cancelled.

mod driver;
mod grammar;
pub mod keys;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use driver::QmpKeyDriver;
pub use grammar::parse;
pub use keys::Key;

/// Why a boot command could not be rendered, parsed or typed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `{{ … }}` names a variable or expression kiln does not provide.
    #[error(
        "Unknown template variable `{expr}` at byte {offset} of the boot command \
         (known: `{{{{ .HTTPIP }}}}`, `{{{{ .HTTPPort }}}}`, `{{{{ .Name }}}}`)"
    )]
    UnknownVariable { expr: String, offset: usize },
    /// A `{{` has no closing `}}`.
    #[error("Unclosed `{{{{` at byte {offset} of the boot command")]
    UnclosedVariable { offset: usize },
    /// A character has no key on the US keyboard layout.
    #[error("Character {ch:?} at byte {offset} cannot be typed with the US keymap")]
    Untypable { ch: char, offset: usize },
    /// A `<wait…>` has a duration that is malformed or not positive.
    #[error("Invalid wait `{text}` at byte {offset} of the boot command: {reason}")]
    Wait {
        text: String,
        offset: usize,
        reason: String,
    },
    /// The driver could not deliver key events to the VM.
    #[error("Could not send key events to the VM")]
    SendKeys(#[source] crate::builder::qemu::qmp::Error),
    /// The build was cancelled while typing.
    #[error("Typing the boot command was cancelled")]
    Cancelled,
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
}

/// Replaces `{{ .HTTPIP }}`, `{{ .HTTPPort }}` and `{{ .Name }}` (spaces inside the braces are
/// optional). Any other `{{ … }}` is an error naming it; offsets are bytes into `template`.
pub fn render(template: &str, vars: &BootVars) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let offset = template.len() - rest.len() + open;
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(Error::UnclosedVariable { offset })?;
        let expr = after[..close].trim();
        match expr {
            ".HTTPIP" => out.push_str(&vars.http_ip),
            ".HTTPPort" => out.push_str(&vars.http_port.to_string()),
            ".Name" => out.push_str(&vars.name),
            _ => {
                return Err(Error::UnknownVariable {
                    expr: format!("{{{{ {expr} }}}}"),
                    offset,
                });
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One step of a parsed boot command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Press and release a key (with Shift around it when the key needs it).
    Press(Key),
    /// Press and hold (`<leftCtrlOn>`, `<cOn>`).
    Down(Key),
    /// Release a held key (`<leftCtrlOff>`).
    Up(Key),
    /// Pause (`<wait>`, `<wait5>`, `<wait1m30s>`).
    Wait(Duration),
}

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
///
/// The BIOS keyboard buffer holds 15 keys and boot loaders such as isolinux read it through
/// BIOS calls, so a burst with no delay loses keys. How small the interval can safely be is not
/// measured yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Pause after every key event: between press and release, and between keys.
    pub key_interval: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            key_interval: Duration::from_millis(10),
        }
    }
}

/// The key events of one action; a `Wait` has none.
fn key_events(action: &Action) -> Vec<KeyEvent> {
    let ev = |qcode, down| KeyEvent { qcode, down };
    let shift = |k: &Key, down| k.shift.then(|| ev(keys::SHIFT, down));
    match action {
        Action::Press(k) => [
            shift(k, true),
            Some(ev(k.qcode, true)),
            Some(ev(k.qcode, false)),
            shift(k, false),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Action::Down(k) => [shift(k, true), Some(ev(k.qcode, true))]
            .into_iter()
            .flatten()
            .collect(),
        Action::Up(k) => [Some(ev(k.qcode, false)), shift(k, false)]
            .into_iter()
            .flatten()
            .collect(),
        Action::Wait(_) => Vec::new(),
    }
}

/// Types `actions` through `driver`, one event at a time with `pacing` after each, and returns
/// [`Error::Cancelled`] as soon as `cancel` fires (even mid-wait or mid-send).
pub async fn type_actions(
    actions: &[Action],
    driver: &mut dyn KeyDriver,
    cancel: &CancellationToken,
    pacing: Pacing,
) -> Result<(), Error> {
    for action in actions {
        if let Action::Wait(d) = action {
            tracing::debug!(wait = ?d, "Boot command wait");
            pause(*d, cancel).await?;
            continue;
        }
        for event in key_events(action) {
            let batch = [event];
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                sent = driver.send(&batch) => sent?,
            }
            // Deliberate rate limit for the guest's keyboard buffer, not a wait for an event.
            pause(pacing.key_interval, cancel).await?;
        }
    }
    Ok(())
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
        let err = render("ab{{ .SSHPublicKey }}", &vars()).unwrap_err();
        match &err {
            Error::UnknownVariable { expr, offset } => {
                assert_eq!((expr.as_str(), *offset), ("{{ .SSHPublicKey }}", 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains(".SSHPublicKey"), "{err}");
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
        let pacing = Pacing {
            key_interval: Duration::ZERO,
        };
        type_actions(&actions, &mut rec, &CancellationToken::new(), pacing)
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
            &CancellationToken::new(),
            Pacing {
                key_interval: Duration::from_millis(100),
            },
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
        let err = type_actions(&actions, &mut rec, &cancel, Pacing::default())
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
        let err = type_actions(&parse("abc").unwrap(), &mut rec, &cancel, Pacing::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        assert!(rec.0.is_empty());
    }
}
