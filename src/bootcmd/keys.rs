//! Key tables: which QEMU key (a QMP `QKeyCode` name), with which modifiers, types each
//! character on a keyboard layout (`boot_keymap`, default `en-us`), and which key each `<name>`
//! of Packer's boot-command grammar means.
//!
//! QEMU turns qcodes into scancodes itself, so what we send is layout-free; the guest reads the
//! scancodes with its own layout. The layout tables are QEMU's own (`/usr/share/qemu/keymaps`),
//! turned into Rust by `scripts/gen-keymaps.py` (`keymaps_data.rs`), so kiln types a character
//! as the key QEMU's `-k LAYOUT` would press for it.

#[path = "keymaps_data.rs"]
mod data;

/// A key to press: the QEMU qcode and the modifiers held with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The QMP `QKeyCode` name, e.g. `a`, `ret`, `bracket_left`.
    pub qcode: &'static str,
    /// Whether Shift is held while the key is pressed (`A`, `!`, `{`…).
    pub shift: bool,
    /// Whether AltGr (right Alt) is held while the key is pressed (`@` on a German layout).
    pub altgr: bool,
}

const fn key(qcode: &'static str, shift: bool) -> Key {
    Key {
        qcode,
        shift,
        altgr: false,
    }
}

/// The layout `boot_keymap` defaults to.
pub const DEFAULT_KEYMAP: &str = "en-us";

/// A keyboard layout: which key types each character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keymap {
    name: &'static str,
    /// Sorted by character: (character, qcode, modifiers: 1 Shift, 2 AltGr).
    chars: &'static [(char, &'static str, u8)],
}

impl Keymap {
    /// The layout QEMU calls `name` (`de`, `fr`, `en-us`…), if kiln has it.
    pub fn named(name: &str) -> Option<Keymap> {
        data::LAYOUTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(name, chars)| Keymap { name, chars })
    }

    /// The US layout, the default.
    pub fn us() -> Keymap {
        // The generated table always has en-us (a unit test checks it); an empty table would
        // only make every character untypable.
        Keymap::named(DEFAULT_KEYMAP).unwrap_or(Keymap {
            name: DEFAULT_KEYMAP,
            chars: &[],
        })
    }

    /// Every layout name, sorted.
    pub fn names() -> impl Iterator<Item = &'static str> {
        data::LAYOUTS.iter().map(|(n, _)| *n)
    }

    /// The layout's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key that types `c` on this layout, or `None` when it has none.
    ///
    /// A newline is typed as Enter (`ret`) and a tab as Tab. Packer's VNC driver sends them as
    /// keysyms 0x0A/0x09 instead, which QEMU may not map at all; Enter and Tab are what a
    /// template author means.
    pub fn key(&self, c: char) -> Option<Key> {
        match c {
            '\n' => return Some(key("ret", false)),
            '\t' => return Some(key("tab", false)),
            _ => {}
        }
        let i = self.chars.binary_search_by(|(k, _, _)| k.cmp(&c)).ok()?;
        let (_, qcode, mods) = self.chars[i];
        Some(Key {
            qcode,
            shift: mods & 1 != 0,
            altgr: mods & 2 != 0,
        })
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::us()
    }
}

/// The key that types `c` with the US layout, or `None` when it has none.
pub fn char_key(c: char) -> Option<Key> {
    Keymap::us().key(c)
}

/// The PC scancode (set 1, with 0x80 marking the 0xE0-prefixed keys, QEMU's numbering) of
/// `qcode`: what the VNC driver sends in QEMU's extended key events.
pub fn scancode(qcode: &str) -> Option<u16> {
    data::SCANCODES
        .binary_search_by(|(q, _)| (*q).cmp(qcode))
        .ok()
        .map(|i| data::SCANCODES[i].1)
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

/// The qcode of the AltGr key (right Alt) used for third-level characters.
pub const ALTGR: &str = "alt_r";

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
            assert_eq!(char_key(c), Some(key(qcode, shift)), "{why}");
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

    /// Issue 14: `boot_keymap` layouts come from QEMU's tables. Rows: layout, character, qcode,
    /// Shift, AltGr.
    #[test]
    fn issue_14_layout_table() {
        let cases = [
            ("en-us", 'y', "y", false, false),
            ("en-us", '/', "slash", false, false),
            ("en-us", ':', "semicolon", true, false),
            ("en-us", '"', "apostrophe", true, false),
            ("en-us", '@', "2", true, false),
            ("en-us", '<', "comma", true, false),
            ("en-us", '|', "backslash", true, false),
            ("de", 'y', "z", false, false),
            ("de", 'Z', "y", true, false),
            ("de", '/', "7", true, false),
            ("de", ':', "dot", true, false),
            ("de", '"', "2", true, false),
            ("de", '@', "q", false, true),
            ("de", '<', "less", false, false),
            ("de", '>', "less", true, false),
            ("de", '|', "less", false, true),
            ("de", '{', "7", false, true),
            ("de", '-', "slash", false, false),
            ("de", 'ß', "minus", false, false),
            ("de", 'ü', "bracket_left", false, false),
            ("de", '€', "e", false, true),
            ("fr", 'a', "q", false, false),
            ("fr", 'q', "a", false, false),
            ("fr", 'z', "w", false, false),
            ("fr", 'm', "semicolon", false, false),
            ("fr", '1', "1", true, false),
            ("fr", '0', "0", true, false),
            ("fr", '.', "comma", true, false),
            ("fr", '/', "dot", true, false),
            ("fr", ':', "dot", false, false),
            ("fr", '"', "3", false, false),
            ("fr", '@', "0", false, true),
            ("fr", '&', "1", false, false),
            ("fr", 'é', "2", false, false),
            ("fr", '\\', "8", false, true),
        ];
        for (layout, c, qcode, shift, altgr) in cases {
            let map = Keymap::named(layout).expect("layout exists");
            let want = Key {
                qcode,
                shift,
                altgr,
            };
            assert_eq!(map.key(c), Some(want), "{layout} {c:?}");
        }
    }

    #[test]
    fn issue_14_untypable_and_unknown() {
        let de = Keymap::named("de").expect("de");
        assert_eq!(de.key('é'), None, "no é on a German keyboard");
        assert_eq!(Keymap::named("ru").expect("ru").key('a'), None);
        assert_eq!(Keymap::named("klingon"), None);
        assert_eq!(Keymap::default().name(), DEFAULT_KEYMAP);
        let names: Vec<_> = Keymap::names().collect();
        for want in ["de", "en-gb", "en-us", "fr", "fr-ch", "sv"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    /// Special keys and the modifiers have scancodes (for the VNC driver's extended key events).
    #[test]
    fn issue_14_scancodes() {
        let cases = [
            ("esc", 0x01),
            ("a", 0x1e),
            ("less", 0x56),
            ("alt_r", 0xb8),
            ("ctrl_r", 0x9d),
            ("ret", 0x1c),
        ];
        for (qcode, code) in cases {
            assert_eq!(scancode(qcode), Some(code), "{qcode}");
        }
        for (_, qcode) in NAMED {
            assert!(scancode(qcode).is_some(), "{qcode}");
        }
        for name in Keymap::names() {
            let map = Keymap::named(name).expect("listed");
            for &(c, qcode, _) in map.chars {
                assert!(scancode(qcode).is_some(), "{name} {c:?} {qcode}");
            }
        }
    }

    #[test]
    fn named_keys_are_lower_case() {
        for (name, _) in NAMED {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }
}
