//! Key tables: which QEMU key (a QMP `QKeyCode` name) types each character on a US keyboard,
//! and which key each `<name>` of Packer's boot-command grammar means.
//!
//! QEMU turns qcodes into scancodes itself, so what we send is layout-free; the guest reads the
//! scancodes with its own layout, which for installers is US by default (as with Packer, whose
//! VNC keysyms QEMU maps with its US keymap).

/// A key to press: the QEMU qcode and whether Shift must be held with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The QMP `QKeyCode` name, e.g. `a`, `ret`, `bracket_left`.
    pub qcode: &'static str,
    /// Whether Shift is held while the key is pressed (`A`, `!`, `{`…).
    pub shift: bool,
}

const fn key(qcode: &'static str, shift: bool) -> Key {
    Key { qcode, shift }
}

/// Letters and digits are their own qcodes (`a`..`z`, `0`..`9`); this table maps their
/// `&'static str` names, which `char` cannot give us without allocating.
const LETTERS: [&str; 26] = [
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
    "t", "u", "v", "w", "x", "y", "z",
];
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The key that types `c` with the US layout, or `None` when it has none.
///
/// A newline is typed as Enter (`ret`) and a tab as Tab. Packer's VNC driver sends them as
/// keysyms 0x0A/0x09 instead, which QEMU may not map at all; Enter and Tab are what a template
/// author means.
pub fn char_key(c: char) -> Option<Key> {
    let k = match c {
        'a'..='z' => key(LETTERS[c as usize - 'a' as usize], false),
        'A'..='Z' => key(LETTERS[c as usize - 'A' as usize], true),
        '0'..='9' => key(DIGITS[c as usize - '0' as usize], false),
        '\n' => key("ret", false),
        '\t' => key("tab", false),
        ' ' => key("spc", false),
        '-' => key("minus", false),
        '_' => key("minus", true),
        '=' => key("equal", false),
        '+' => key("equal", true),
        '[' => key("bracket_left", false),
        '{' => key("bracket_left", true),
        ']' => key("bracket_right", false),
        '}' => key("bracket_right", true),
        '\\' => key("backslash", false),
        '|' => key("backslash", true),
        ';' => key("semicolon", false),
        ':' => key("semicolon", true),
        '\'' => key("apostrophe", false),
        '"' => key("apostrophe", true),
        ',' => key("comma", false),
        '<' => key("comma", true),
        '.' => key("dot", false),
        '>' => key("dot", true),
        '/' => key("slash", false),
        '?' => key("slash", true),
        '`' => key("grave_accent", false),
        '~' => key("grave_accent", true),
        '!' => key("1", true),
        '@' => key("2", true),
        '#' => key("3", true),
        '$' => key("4", true),
        '%' => key("5", true),
        '^' => key("6", true),
        '&' => key("7", true),
        '*' => key("8", true),
        '(' => key("9", true),
        ')' => key("0", true),
        _ => return None,
    };
    Some(k)
}

/// Packer's special key names, lower-cased, with their qcodes, in the grammar's order of
/// preference: the first name that prefixes the input wins, hence `f10` before `f1` and
/// `left`/`right` last (after `leftAlt`…).
///
/// `leftCommand`/`rightCommand` are Alt and `leftOption`/`rightOption` Alt too, because with the
/// qemu builder Packer sends them as the Alt_L/Alt_R and Meta_L/Meta_R keysyms, which QEMU's US
/// keymap turns into the Alt keys.
pub const NAMED: &[(&str, &str)] = &[
    ("bs", "backspace"),
    ("del", "delete"),
    ("enter", "ret"),
    ("esc", "esc"),
    ("f10", "f10"),
    ("f11", "f11"),
    ("f12", "f12"),
    ("f1", "f1"),
    ("f2", "f2"),
    ("f3", "f3"),
    ("f4", "f4"),
    ("f5", "f5"),
    ("f6", "f6"),
    ("f7", "f7"),
    ("f8", "f8"),
    ("f9", "f9"),
    ("return", "ret"),
    ("tab", "tab"),
    ("up", "up"),
    ("down", "down"),
    ("spacebar", "spc"),
    ("insert", "insert"),
    ("home", "home"),
    ("end", "end"),
    ("pageup", "pgup"),
    ("pagedown", "pgdn"),
    ("leftalt", "alt"),
    ("leftctrl", "ctrl"),
    ("leftshift", "shift"),
    ("rightalt", "alt_r"),
    ("rightctrl", "ctrl_r"),
    ("rightshift", "shift_r"),
    ("leftsuper", "meta_l"),
    ("rightsuper", "meta_r"),
    ("leftcommand", "alt"),
    ("rightcommand", "alt_r"),
    ("leftoption", "alt"),
    ("rightoption", "alt_r"),
    ("left", "left"),
    ("right", "right"),
    ("menu", "menu"),
];

/// How many bytes a press or a release of `qcode` puts into the guest's PS/2 keyboard queue
/// (scancode set 1, which the i8042 hands to the guest): two for the `0xE0`-prefixed keys
/// (right-hand modifiers, the navigation block, the Windows and menu keys), one otherwise.
/// The guest-paced typing counts these against the bytes the guest has read.
pub fn scancode_len(qcode: &str) -> u32 {
    match qcode {
        "ctrl_r" | "alt_r" | "meta_l" | "meta_r" | "menu" | "insert" | "delete" | "home"
        | "end" | "pgup" | "pgdn" | "up" | "down" | "left" | "right" | "kp_divide" | "kp_enter" => {
            2
        }
        _ => 1,
    }
}

/// The qcode of the Shift key used for shifted characters.
pub const SHIFT: &str = "shift";

/// Finds the first special key name (in [`NAMED`] order) that `input` starts with, ignoring
/// case; returns the name's length in bytes and the key.
pub fn named_prefix(input: &str) -> Option<(usize, Key)> {
    NAMED.iter().find_map(|&(name, qcode)| {
        let head = input.get(..name.len())?;
        head.eq_ignore_ascii_case(name)
            .then_some((name.len(), key(qcode, false)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_char_has_a_key() {
        for c in ' '..='~' {
            assert!(char_key(c).is_some(), "{c:?} has no key");
        }
    }

    #[test]
    fn shift_follows_the_us_layout() {
        let cases = [
            ('a', "a", false, "lower case letter"),
            ('Q', "q", true, "upper case letter needs shift"),
            ('7', "7", false, "digit"),
            ('&', "7", true, "shifted digit row"),
            ('_', "minus", true, "shifted minus"),
            ('"', "apostrophe", true, "shifted quote"),
            ('~', "grave_accent", true, "tilde is shifted grave"),
            ('`', "grave_accent", false, "grave itself"),
            ('|', "backslash", true, "pipe"),
            ('<', "comma", true, "less-than is shifted comma"),
            (' ', "spc", false, "space"),
            ('\n', "ret", false, "newline is Enter"),
            ('\t', "tab", false, "tab is Tab"),
        ];
        for (c, qcode, shift, why) in cases {
            assert_eq!(char_key(c), Some(Key { qcode, shift }), "{why}");
        }
    }

    #[test]
    fn shifted_set_matches_packer() {
        // Packer's shiftedChars plus upper case letters; everything else printable is unshifted.
        let shifted = "~!@#$%^&*()_+{}|:\"<>?";
        for c in ' '..='~' {
            let want = shifted.contains(c) || c.is_ascii_uppercase();
            assert_eq!(char_key(c).map(|k| k.shift), Some(want), "{c:?}");
        }
    }

    #[test]
    fn non_ascii_and_controls_have_no_key() {
        for c in ['é', '界', '\r', '\u{7f}', '\0'] {
            assert_eq!(char_key(c), None, "{c:?}");
        }
    }

    #[test]
    fn named_prefix_prefers_grammar_order() {
        let cases = [
            ("f10>", Some((3, "f10")), "f10 before f1"),
            ("f1>", Some((2, "f1")), "f1"),
            ("LeftAltOn>", Some((7, "alt")), "leftAlt before left"),
            ("left>", Some((4, "left")), "plain left"),
            ("PAGEup>", Some((6, "pgup")), "case-insensitive"),
            ("foo>", None, "unknown"),
        ];
        for (input, want, why) in cases {
            let got = named_prefix(input).map(|(n, k)| (n, k.qcode));
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn extended_keys_take_two_bytes() {
        let cases = [
            ("a", 1, "letter"),
            ("shift", 1, "left shift"),
            ("ctrl_r", 2, "right ctrl is E0-prefixed"),
            ("up", 2, "arrow"),
            ("delete", 2, "navigation block"),
            ("ret", 1, "main enter"),
        ];
        for (qcode, len, why) in cases {
            assert_eq!(scancode_len(qcode), len, "{why}");
        }
    }

    #[test]
    fn named_keys_are_lower_case() {
        for (name, _) in NAMED {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }
}
