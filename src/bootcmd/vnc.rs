//! A [`KeyDriver`] that types through QEMU's VNC server with RFB `KeyEvent` messages, the way
//! Packer does (`boot_key_driver = "vnc"`).
//!
//! Only the handshake (protocol 3.8, security type None), `SetEncodings` and key events are
//! needed, so this is a minimal RFB client of its own rather than the `vnc-rs` crate, whose
//! client decodes the framebuffer in its own event loop: a much larger dependency for a few
//! messages.
//!
//! Packer's key events carry X keysyms, which QEMU turns into scancodes with its US keymap: a
//! key that no US keysym names uniquely (the ISO key left of Z, `<>|` on a German layout)
//! cannot be sent that way. kiln asks for QEMU's extended key events (RFB pseudo-encoding
//! -258), which carry the scancode itself, so the VNC driver presses exactly the keys the QMP
//! driver does whatever the `boot_keymap`. Each event still carries the keysym QEMU's US
//! keymap gives that key: QEMU keeps Caps Lock in step with a letter keysym's case and the
//! Shift state, so while Shift is held the driver sends the shifted keysym (`A`, `!`) as Packer
//! does (measured: Shift plus a lower-case keysym toggled Caps Lock, typing `abc` for `ABC`).
//! If QEMU was started with `-k` (a `qemuargs` row), it ignores the scancode and maps the
//! keysym with that keymap.
//!
//! QEMU's VNC server delays each key event by `key-delay-ms` (10 ms unless set) in its own
//! queue; kiln's guest pacing makes that unnecessary, so `run_qemu` sets it to 0 when kiln
//! paces the typing itself.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Error, KeyDriver, KeyEvent};

/// How long the connection and handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one key event's write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// QEMU's extended key event pseudo-encoding.
const EXT_KEY_EVENT: i32 = -258;

/// Why the VNC connection failed.
#[derive(Debug, thiserror::Error)]
pub enum VncError {
    /// Connecting or reading/writing the socket failed.
    #[error("VNC connection to {addr} failed while {during}")]
    Io {
        addr: SocketAddr,
        during: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The server said something kiln does not understand.
    #[error("VNC server at {addr} is not usable: {reason}")]
    Protocol { addr: SocketAddr, reason: String },
    /// The server did not answer in time.
    #[error("VNC server at {addr} did not answer within {timeout:?} while {during}")]
    Timeout {
        addr: SocketAddr,
        during: &'static str,
        timeout: Duration,
    },
}

/// An RFB connection that sends key events.
pub struct VncKeyDriver {
    addr: SocketAddr,
    stream: TcpStream,
    /// Which Shift keys are held (left, right).
    shift: (bool, bool),
}

impl VncKeyDriver {
    /// Connects to `addr` and completes the RFB handshake (security type None, shared).
    pub async fn connect(addr: SocketAddr) -> Result<Self, VncError> {
        let during = "connecting";
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, Self::handshake(addr)).await {
            Ok(r) => r,
            Err(_) => Err(VncError::Timeout {
                addr,
                during,
                timeout: HANDSHAKE_TIMEOUT,
            }),
        }
    }

    async fn handshake(addr: SocketAddr) -> Result<Self, VncError> {
        let io = |during| {
            move |source| VncError::Io {
                addr,
                during,
                source,
            }
        };
        let proto = |reason: String| VncError::Protocol { addr, reason };
        let mut s = TcpStream::connect(addr).await.map_err(io("connecting"))?;
        s.set_nodelay(true).map_err(io("connecting"))?;
        let mut version = [0u8; 12];
        s.read_exact(&mut version)
            .await
            .map_err(io("reading the version"))?;
        if !version.starts_with(b"RFB 003.") {
            return Err(proto(format!(
                "unexpected greeting {:?}",
                String::from_utf8_lossy(&version)
            )));
        }
        s.write_all(b"RFB 003.008\n")
            .await
            .map_err(io("sending the version"))?;
        let count = s.read_u8().await.map_err(io("reading security types"))?;
        if count == 0 {
            return Err(proto("the server refused the connection".to_owned()));
        }
        let mut types = vec![0u8; usize::from(count)];
        s.read_exact(&mut types)
            .await
            .map_err(io("reading security types"))?;
        if !types.contains(&1) {
            return Err(proto(format!(
                "no password-less security type offered (offered {types:?}); vnc_use_password is not supported with boot_key_driver = \"vnc\""
            )));
        }
        s.write_all(&[1]).await.map_err(io("choosing security"))?;
        let result = s
            .read_u32()
            .await
            .map_err(io("reading the security result"))?;
        if result != 0 {
            return Err(proto(format!("security handshake failed ({result})")));
        }
        s.write_all(&[1]).await.map_err(io("sending ClientInit"))?;
        // ServerInit: width, height, 16-byte pixel format, name length, name.
        let mut init = [0u8; 20];
        s.read_exact(&mut init)
            .await
            .map_err(io("reading ServerInit"))?;
        let name_len = s.read_u32().await.map_err(io("reading ServerInit"))?;
        let mut name = vec![0u8; name_len.min(4096) as usize];
        s.read_exact(&mut name)
            .await
            .map_err(io("reading ServerInit"))?;
        tracing::debug!(%addr, name = %String::from_utf8_lossy(&name), "VNC connected");
        // SetEncodings: QEMU's extended key event pseudo-encoding only. QEMU acknowledges it
        // with a FramebufferUpdate holding one rectangle of that encoding.
        let mut set = vec![2u8, 0, 0, 1];
        set.extend_from_slice(&EXT_KEY_EVENT.to_be_bytes());
        s.write_all(&set)
            .await
            .map_err(io("asking for extended key events"))?;
        let mut ack = [0u8; 16];
        s.read_exact(&mut ack)
            .await
            .map_err(io("reading the extended key event acknowledgement"))?;
        let encoding = i32::from_be_bytes([ack[12], ack[13], ack[14], ack[15]]);
        if ack[0] != 0 || u16::from_be_bytes([ack[2], ack[3]]) != 1 || encoding != EXT_KEY_EVENT {
            return Err(proto(format!(
                "the server did not acknowledge QEMU's extended key events (got {ack:02x?})"
            )));
        }
        Ok(VncKeyDriver {
            addr,
            stream: s,
            shift: (false, false),
        })
    }
}

/// The X keysym QEMU's US keymap turns into the key with this qcode.
pub fn keysym(qcode: &str) -> Option<u32> {
    let b = qcode.as_bytes();
    if b.len() == 1 && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return Some(u32::from(b[0]));
    }
    if let Some(n) = qcode.strip_prefix('f').and_then(|n| n.parse::<u32>().ok())
        && (1..=12).contains(&n)
    {
        return Some(0xffbd + n);
    }
    let sym = match qcode {
        "spc" => 0x20,
        "minus" => 0x2d,
        "equal" => 0x3d,
        "bracket_left" => 0x5b,
        "bracket_right" => 0x5d,
        "backslash" => 0x5c,
        "semicolon" => 0x3b,
        "apostrophe" => 0x27,
        "comma" => 0x2c,
        "dot" => 0x2e,
        "slash" => 0x2f,
        "grave_accent" => 0x60,
        "ret" => 0xff0d,
        "tab" => 0xff09,
        "backspace" => 0xff08,
        "delete" => 0xffff,
        "esc" => 0xff1b,
        "insert" => 0xff63,
        "home" => 0xff50,
        "end" => 0xff57,
        "pgup" => 0xff55,
        "pgdn" => 0xff56,
        "up" => 0xff52,
        "down" => 0xff54,
        "left" => 0xff51,
        "right" => 0xff53,
        "shift" => 0xffe1,
        "shift_r" => 0xffe2,
        "ctrl" => 0xffe3,
        "ctrl_r" => 0xffe4,
        "alt" => 0xffe9,
        "alt_r" => 0xffea,
        "meta_l" => 0xffeb,
        "meta_r" => 0xffec,
        "menu" => 0xff67,
        _ => return None,
    };
    Some(sym)
}

/// The keysym of the character a key types with Shift held, for keys that type one.
pub fn shifted_keysym(qcode: &str) -> Option<u32> {
    let b = qcode.as_bytes();
    if b.len() == 1 && b[0].is_ascii_lowercase() {
        return Some(u32::from(b[0].to_ascii_uppercase()));
    }
    let c = match qcode {
        "1" => '!',
        "2" => '@',
        "3" => '#',
        "4" => '$',
        "5" => '%',
        "6" => '^',
        "7" => '&',
        "8" => '*',
        "9" => '(',
        "0" => ')',
        "minus" => '_',
        "equal" => '+',
        "bracket_left" => '{',
        "bracket_right" => '}',
        "backslash" => '|',
        "semicolon" => ':',
        "apostrophe" => '"',
        "comma" => '<',
        "dot" => '>',
        "slash" => '?',
        "grave_accent" => '~',
        _ => return None,
    };
    Some(u32::from(c))
}

/// QEMU's extended key event message (type 255, subtype 0) for `event`, with Shift held or
/// not: the key's scancode, and the keysym the US keymap gives it (0 for keys it has none for,
/// such as the ISO key `less`).
fn key_event_message(event: &KeyEvent, shifted: bool) -> Option<[u8; 12]> {
    let code = u32::from(super::keys::scancode(event.qcode)?);
    let sym = if shifted {
        shifted_keysym(event.qcode).or_else(|| keysym(event.qcode))
    } else {
        keysym(event.qcode)
    }
    .unwrap_or(0);
    let mut msg = [0u8; 12];
    msg[0] = 255;
    msg[3] = u8::from(event.down);
    msg[4..8].copy_from_slice(&sym.to_be_bytes());
    msg[8..12].copy_from_slice(&code.to_be_bytes());
    Some(msg)
}

#[async_trait::async_trait]
impl KeyDriver for VncKeyDriver {
    async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(events.len() * 12);
        for e in events {
            match e.qcode {
                "shift" => self.shift.0 = e.down,
                "shift_r" => self.shift.1 = e.down,
                _ => {}
            }
            let shifted = self.shift.0 || self.shift.1;
            let msg = key_event_message(e, shifted).ok_or_else(|| {
                Error::Vnc(VncError::Protocol {
                    addr: self.addr,
                    reason: format!("no scancode for key `{}`", e.qcode),
                })
            })?;
            buf.extend_from_slice(&msg);
        }
        let addr = self.addr;
        let during = "sending key events";
        match tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&buf)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Vnc(VncError::Io {
                addr,
                during,
                source,
            })),
            Err(_) => Err(Error::Vnc(VncError::Timeout {
                addr,
                during,
                timeout: WRITE_TIMEOUT,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootcmd::keys;

    #[test]
    fn every_key_kiln_types_has_a_keysym() {
        let qcodes = (' '..='~')
            .chain(['\n', '\t'])
            .map(|c| keys::char_key(c).expect("printable").qcode)
            .chain(keys::NAMED.iter().map(|(_, q)| *q))
            .chain([keys::SHIFT]);
        for q in qcodes {
            assert!(keysym(q).is_some(), "{q} has no keysym");
        }
    }

    #[test]
    fn keysym_table() {
        let cases = [
            ("a", 0x61, "letter"),
            ("7", 0x37, "digit"),
            ("f1", 0xffbe, "F1"),
            ("f12", 0xffc9, "F12"),
            ("ret", 0xff0d, "Return"),
            ("grave_accent", 0x60, "grave"),
            ("shift", 0xffe1, "Shift_L"),
        ];
        for (q, sym, why) in cases {
            assert_eq!(keysym(q), Some(sym), "{why}");
        }
        let ev = |qcode| KeyEvent { qcode, down: true };
        let up = |qcode| KeyEvent { qcode, down: false };
        let cases = [
            (
                ev("ret"),
                false,
                [255, 0, 0, 1, 0, 0, 0xff, 0x0d, 0, 0, 0, 0x1c],
            ),
            (ev("a"), true, [255, 0, 0, 1, 0, 0, 0, b'A', 0, 0, 0, 0x1e]),
            (ev("1"), true, [255, 0, 0, 1, 0, 0, 0, b'!', 0, 0, 0, 0x02]),
            (
                up("ret"),
                true,
                [255, 0, 0, 0, 0, 0, 0xff, 0x0d, 0, 0, 0, 0x1c],
            ),
            // Issue 14: the ISO key has no US keysym; its scancode is what QEMU uses.
            (ev("less"), false, [255, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x56]),
            (
                ev("alt_r"),
                false,
                [255, 0, 0, 1, 0, 0, 0xff, 0xea, 0, 0, 0, 0xb8],
            ),
        ];
        for (event, shifted, want) in cases {
            assert_eq!(key_event_message(&event, shifted), Some(want), "{event:?}");
        }
    }

    #[test]
    fn shifted_keysyms_match_the_us_layout() {
        for c in ' '..='~' {
            let k = keys::char_key(c).expect("printable");
            let sym = if k.shift {
                shifted_keysym(k.qcode)
            } else {
                keysym(k.qcode)
            };
            assert_eq!(sym, Some(u32::from(c)), "{c:?}");
        }
    }
}
