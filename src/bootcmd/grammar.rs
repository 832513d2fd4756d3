//! Packer's `boot_command` grammar, hand-written after its PEG (`boot_command.pigeon`).
//!
//! At each position the first alternative that matches wins: `<wait…>`, then a one-character
//! toggle (`<cOn>`), then a special key (`<enter>`, `<leftCtrlOff>`), else the character itself
//! is typed. So anything unrecognised (`<foo>`, `<WAIT>`, `<wait 5>`) is typed literally, as
//! Packer does. Only a malformed wait duration or an untypable character is an error.

use std::time::Duration;

use super::keys::{self, Key, Keymap};
use super::{Action, Error};

/// Parses a rendered boot command into actions, typing characters with the US layout. Error
/// offsets are byte offsets into `input`.
pub fn parse(input: &str) -> Result<Vec<Action>, Error> {
    parse_with(input, Keymap::us())
}

/// [`parse`], typing characters as keys of `keymap`.
pub fn parse_with(input: &str, keymap: Keymap) -> Result<Vec<Action>, Error> {
    let mut actions = Vec::new();
    let mut at = 0;
    while let Some(c) = input[at..].chars().next() {
        let rest = &input[at..];
        if c == '<' {
            if let Some((len, action)) = screen_wait(rest, at)? {
                actions.push(action);
                at += len;
                continue;
            }
            let matched = match wait(rest, at)? {
                Some(m) => Some(m),
                None => match char_toggle(rest, at, keymap)? {
                    Some(m) => Some(m),
                    None => special(rest),
                },
            };
            if let Some((len, action)) = matched {
                actions.push(action);
                at += len;
                continue;
            }
        }
        actions.push(Action::Press(typable(c, at, keymap)?));
        at += c.len_utf8();
    }
    Ok(actions)
}

/// The key for a literal character, or the error saying it cannot be typed.
fn typable(c: char, offset: usize, keymap: Keymap) -> Result<Key, Error> {
    keymap.key(c).ok_or(Error::Untypable {
        ch: c,
        offset,
        keymap: keymap.name(),
    })
}

/// `"<" "wait" ( Duration / Integer )? ">"`, where `wait` is case-sensitive.
/// Returns the matched length and the action, or `None` when this is no wait.
fn wait(rest: &str, offset: usize) -> Result<Option<(usize, Action)>, Error> {
    const HEAD: usize = "<wait".len();
    let Some(body) = rest.strip_prefix("<wait") else {
        return Ok(None);
    };
    let (len, dur) = if let Some(len) = duration_len(body) {
        let text = &body[..len];
        let bad = |reason: String| Error::Wait {
            text: text.to_owned(),
            offset,
            reason,
        };
        let d = crate::types::parse_duration(text).map_err(bad)?;
        if d.negative || d.abs.is_zero() {
            return Err(bad("expected a positive wait".to_owned()));
        }
        (len, d.abs)
    } else if let Some(len) = integer_len(body) {
        let text = &body[..len];
        let secs: u64 = text.parse().map_err(|_| Error::Wait {
            text: text.to_owned(),
            offset,
            reason: "number too large".to_owned(),
        })?;
        // Packer: `<wait0>` falls through to the default of one second.
        (len, Duration::from_secs(secs.max(1)))
    } else {
        (0, Duration::from_secs(1))
    };
    // Once an alternative matched, a missing `>` fails the whole wait (PEG semantics).
    Ok(body[len..]
        .starts_with('>')
        .then_some((HEAD + len + 1, Action::Wait(dur))))
}

/// kiln's screen waits, tried before Packer's grammar: `<waitFor "TEXT"[ DURATION]>` (or with
/// single quotes, easier inside an HCL string; `\` escapes the next character) and
/// `<waitStill[ DURATION]>`. Once the name and a space (or `>`) matched, anything malformed is an
/// error rather than literal text.
fn screen_wait(rest: &str, offset: usize) -> Result<Option<(usize, Action)>, Error> {
    let bad = |text: &str, reason: &str| Error::Wait {
        text: text.to_owned(),
        offset,
        reason: reason.to_owned(),
    };
    if let Some(body) = rest.strip_prefix("<waitFor")
        && (body.starts_with(' ') || body.starts_with('>'))
    {
        let head = "<waitFor".len();
        let after_space = body.trim_start_matches(' ');
        let quote = after_space
            .chars()
            .next()
            .filter(|q| *q == '"' || *q == '\'')
            .ok_or_else(|| {
                bad(
                    "<waitFor",
                    "expected the text to wait for, in quotes: <waitFor \"boot:\">",
                )
            })?;
        let mut text = String::new();
        let mut chars = after_space[1..].char_indices();
        let mut end = None;
        while let Some((i, ch)) = chars.next() {
            if ch == '\\' {
                if let Some((_, next)) = chars.next() {
                    text.push(next);
                }
            } else if ch == quote {
                end = Some(i + 1);
                break;
            } else {
                text.push(ch);
            }
        }
        let end = end.ok_or_else(|| bad("<waitFor", "the quoted text has no closing quote"))?;
        if text.is_empty() {
            return Err(bad("<waitFor", "the text to wait for is empty"));
        }
        let consumed = body.len() - after_space.len() + 1 + end;
        let (len, timeout) = screen_wait_tail(&body[consumed..], &bad, "<waitFor")?;
        let action = Action::WaitForText {
            text,
            timeout: timeout.unwrap_or(super::SCREEN_TIMEOUT),
        };
        return Ok(Some((head + consumed + len, action)));
    }
    if let Some(body) = rest.strip_prefix("<waitStill")
        && (body.starts_with(' ') || body.starts_with('>'))
    {
        let (len, quiet) = screen_wait_tail(body, &bad, "<waitStill")?;
        let action = Action::WaitStill {
            quiet: quiet.unwrap_or(super::STILL_QUIET),
            timeout: super::SCREEN_TIMEOUT,
        };
        return Ok(Some(("<waitStill".len() + len, action)));
    }
    Ok(None)
}

/// `( " "+ Duration )? " "* ">"`: the length matched and the duration, if any.
fn screen_wait_tail(
    s: &str,
    bad: &dyn Fn(&str, &str) -> Error,
    name: &str,
) -> Result<(usize, Option<Duration>), Error> {
    let trimmed = s.trim_start_matches(' ');
    let mut len = s.len() - trimmed.len();
    let mut duration = None;
    if let Some(dlen) = duration_len(trimmed) {
        let text = &trimmed[..dlen];
        let d = crate::types::parse_duration(text).map_err(|reason| bad(text, &reason))?;
        if d.negative || d.abs.is_zero() {
            return Err(bad(text, "expected a positive duration"));
        }
        duration = Some(d.abs);
        len += dlen;
    }
    let rest = &s[len..];
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    if !rest[spaces..].starts_with('>') {
        return Err(bad(
            name,
            "expected `>` (after an optional duration such as 30s)",
        ));
    }
    Ok((len + spaces + 1, duration))
}

/// `"<" Literal ( On / Off ) ">"`: hold or release one character.
fn char_toggle(
    rest: &str,
    offset: usize,
    keymap: Keymap,
) -> Result<Option<(usize, Action)>, Error> {
    let body = &rest[1..];
    let Some(c) = body.chars().next() else {
        return Ok(None);
    };
    let Some((len, down)) = on_off(&body[c.len_utf8()..]) else {
        return Ok(None);
    };
    if !body[c.len_utf8() + len..].starts_with('>') {
        return Ok(None);
    }
    let key = typable(c, offset + 1, keymap)?;
    let action = if down {
        Action::Down(key)
    } else {
        Action::Up(key)
    };
    Ok(Some((1 + c.len_utf8() + len + 1, action)))
}

/// `"<" SpecialKey ( On / Off )? ">"`.
fn special(rest: &str) -> Option<(usize, Action)> {
    let body = &rest[1..];
    let (name_len, key) = keys::named_prefix(body)?;
    let after = &body[name_len..];
    let (toggle_len, action) = match on_off(after) {
        Some((len, true)) => (len, Action::Down(key)),
        Some((len, false)) => (len, Action::Up(key)),
        None => (0, Action::Press(key)),
    };
    after[toggle_len..]
        .starts_with('>')
        .then_some((1 + name_len + toggle_len + 1, action))
}

/// `"on"i / "off"i`: the length matched and whether it is `on`.
fn on_off(s: &str) -> Option<(usize, bool)> {
    let starts = |word: &str| {
        s.get(..word.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(word))
    };
    if starts("on") {
        Some((2, true))
    } else if starts("off") {
        Some((3, false))
    } else {
        None
    }
}

/// `Integer = '0' / NonZeroDigit Digit*`: the length matched.
fn integer_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    match b.first()? {
        b'0' => Some(1),
        b'1'..=b'9' => Some(b.iter().take_while(|c| c.is_ascii_digit()).count()),
        _ => None,
    }
}

/// `Number = '-'? Integer ( '.' Digit+ )?`: the length matched.
fn number_len(s: &str) -> Option<usize> {
    let sign = usize::from(s.starts_with('-'));
    let mut len = sign + integer_len(&s[sign..])?;
    if let Some(frac) = s[len..].strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            len += 1 + digits;
        }
    }
    Some(len)
}

/// `TimeUnit = "ns" / "us" / "µs" / "ms" / "s" / "m" / "h"` (case-sensitive).
fn unit_len(s: &str) -> Option<usize> {
    ["ns", "us", "µs", "ms", "s", "m", "h"]
        .iter()
        .find(|u| s.starts_with(*u))
        .map(|u| u.len())
}

/// `Duration = ( Number TimeUnit )+`: the length matched, at least one group.
fn duration_len(s: &str) -> Option<usize> {
    let mut len = 0;
    while let Some(n) = number_len(&s[len..])
        && let Some(u) = unit_len(&s[len + n..])
    {
        len += n + u;
    }
    (len > 0).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(qcode: &'static str) -> Key {
        Key {
            qcode,
            shift: false,
            altgr: false,
        }
    }
    fn shifted(qcode: &'static str) -> Key {
        Key {
            qcode,
            shift: true,
            altgr: false,
        }
    }
    fn press(s: &str) -> Vec<Action> {
        s.chars()
            .map(|c| Action::Press(keys::char_key(c).expect("typable")))
            .collect()
    }
    fn secs(n: u64) -> Action {
        Action::Wait(Duration::from_secs(n))
    }

    /// Issue 19: kiln's screen waits.
    #[test]
    fn screen_waits() {
        let text = |t: &str, secs: u64| Action::WaitForText {
            text: t.into(),
            timeout: Duration::from_secs(secs),
        };
        let ok = [
            ("<waitFor \"boot:\">", vec![text("boot:", 300)]),
            ("<waitFor 'boot:'>", vec![text("boot:", 300)]),
            (
                "<waitFor 'a \\'b' 30s>x",
                [vec![text("a 'b", 30)], press("x")].concat(),
            ),
            ("<waitFor  \"x\"  1m >", vec![text("x", 60)]),
            (
                "<waitStill>",
                vec![Action::WaitStill {
                    quiet: Duration::from_secs(2),
                    timeout: Duration::from_secs(300),
                }],
            ),
            (
                "<waitStill 500ms>",
                vec![Action::WaitStill {
                    quiet: Duration::from_millis(500),
                    timeout: Duration::from_secs(300),
                }],
            ),
        ];
        for (input, want) in ok {
            assert_eq!(parse(input).unwrap(), want, "{input}");
        }
        for bad in [
            "<waitFor>",
            "<waitFor boot:>",
            "<waitFor 'x'",
            "<waitFor 'x' 5>",
            "<waitFor ''>",
            "<waitStill -1s>",
            "<waitFor 'open",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::Wait { offset: 0, .. }),
                "{bad}: {err:?}"
            );
        }
        // Not a screen wait: Packer's rules apply (typed literally).
        assert_eq!(parse("<waitForever>").unwrap(), press("<waitForever>"));
    }

    #[test]
    fn grammar_table() {
        use Action::*;
        let cat = |parts: &[Vec<Action>]| parts.concat();
        let cases: Vec<(&str, Vec<Action>, &str)> = vec![
            ("", vec![], "empty input types nothing"),
            ("aB!", press("aB!"), "plain literals, shifted included"),
            ("<wait>", vec![secs(1)], "bare wait is one second"),
            ("<wait0>", vec![secs(1)], "wait0 is one second, as Packer"),
            ("<wait5>", vec![secs(5)], "integer wait is seconds"),
            ("<wait10>", vec![secs(10)], "multi-digit integer"),
            ("<wait10s>", vec![secs(10)], "duration with unit"),
            ("<wait1m30s>", vec![secs(90)], "compound duration"),
            (
                "<wait250ms>",
                vec![Wait(Duration::from_millis(250))],
                "milliseconds before minutes",
            ),
            (
                "<wait1.5s>",
                vec![Wait(Duration::from_millis(1500))],
                "fractional duration",
            ),
            ("<WAIT>", press("<WAIT>"), "wait is case-sensitive"),
            (
                "<wait 5>",
                press("<wait 5>"),
                "space inside wait is literal",
            ),
            (
                "<wait05>",
                press("<wait05>"),
                "leading zero integer is no wait",
            ),
            (
                "<wait1s5>",
                press("<wait1s5>"),
                "committed duration then no `>`",
            ),
            ("<foo>", press("<foo>"), "unknown name typed literally"),
            (
                "<f13>",
                press("<f13>"),
                "f13 is no key: f1 matched, then no `>`",
            ),
            ("<f10>", vec![Press(k("f10"))], "f10 is not f1 then 0"),
            ("<f1>", vec![Press(k("f1"))], "f1"),
            ("<enter>", vec![Press(k("ret"))], "enter"),
            (
                "<Return>",
                vec![Press(k("ret"))],
                "names are case-insensitive",
            ),
            ("<enterOFF>", vec![Up(k("ret"))], "Off suffix, any case"),
            ("<f1on>", vec![Down(k("f1"))], "On suffix"),
            ("<pageDown>", vec![Press(k("pgdn"))], "camel case name"),
            ("<spacebar>", vec![Press(k("spc"))], "spacebar"),
            (
                "<bs><del>",
                vec![Press(k("backspace")), Press(k("delete"))],
                "bs and del",
            ),
            ("<leftAlt>", vec![Press(k("alt"))], "leftAlt is not left"),
            ("<left>", vec![Press(k("left"))], "left arrow"),
            ("<rightSuper>", vec![Press(k("meta_r"))], "super is meta"),
            (
                "<leftCtrlOn>c<leftCtrlOff>",
                vec![Down(k("ctrl")), Press(k("c")), Up(k("ctrl"))],
                "ctrl+c as the docs write it",
            ),
            ("<cOn>", vec![Down(k("c"))], "one-character toggle"),
            (
                "<AOff>",
                vec![Up(shifted("a"))],
                "toggle of a shifted character",
            ),
            ("a\nb", press("a\nb"), "newline is a literal (Enter)"),
            (
                "x<enter><wait2>",
                cat(&[press("x"), vec![Press(k("ret")), secs(2)]]),
                "sequence",
            ),
            (
                "<<enter>",
                cat(&[press("<"), vec![Press(k("ret"))]]),
                "lone `<` first",
            ),
            ("<enter", press("<enter"), "unclosed special"),
        ];
        for (input, want, why) in cases {
            assert_eq!(parse(input).unwrap(), want, "{why}: {input:?}");
        }
    }

    #[test]
    fn errors_carry_the_offset() {
        let cases = [
            ("ab<wait1m-30s>", 2, "unknown unit in a matched duration"),
            ("<wait-1s>", 0, "negative wait"),
            ("<wait0s>", 0, "zero duration"),
            ("x<wait99999999999999999999>", 1, "integer overflow"),
            ("héllo", 1, "non-ASCII character"),
            ("ab<éon>", 3, "non-ASCII toggle names the character"),
            ("a\rb", 1, "carriage return"),
        ];
        for (input, offset, why) in cases {
            let err = parse(input).expect_err(why);
            let got = match &err {
                Error::Wait { offset, .. } | Error::Untypable { offset, .. } => *offset,
                other => panic!("{why}: unexpected {other:?}"),
            };
            assert_eq!(got, offset, "{why}: {err}");
        }
    }

    #[test]
    fn untypable_message_names_the_keymap() {
        let msg = parse("é").unwrap_err().to_string();
        assert!(
            msg.contains("'é' cannot be typed with the `en-us` keyboard layout"),
            "{msg}"
        );
        let fr = Keymap::named("fr").expect("fr");
        assert_eq!(
            parse_with("é", fr).unwrap(),
            [Action::Press(k("2"))],
            "é is the 2 key on AZERTY"
        );
    }
}
