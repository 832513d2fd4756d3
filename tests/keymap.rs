//! Non-US keyboard layouts end to end (`boot_keymap`, issue 14): the test ISO's `kbdde` and
//! `kbdfr` labels switch the guest's console to a German or French layout (made from XKB's
//! tables with `ckbcomp`, as Debian's installer does) and report the line typed there on the
//! serial port. kiln types it with the same `boot_keymap`; it must arrive exact, including
//! `{{ .HTTPIP }}`, `/`, `:`, `"`, `@`, `<>|` (the ISO key on both layouts) and the AltGr
//! characters. Both type over QMP, one boot each (see `issue_14_french_layout_over_qmp`).
//!
//! The payload leaves out `^` and `` ` ``: they are dead keys on these console layouts (see the
//! issue's closing note), which QEMU's tables (the `nodeadkeys` variants) do not say.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// Everything printable in ASCII but `^`, `` ` `` and `~`, plus the template variable.
const PAYLOAD: &str = "url=http://{{ .HTTPIP }}:8080/d-i/preseed.cfg \"q@Z;y\" a|b 1<2>3 \
                       #$%&*()_+-=[]{}'?!,.\\ AZERTYQWERTZ azertyqwertz m:M";

#[test]
fn issue_14_german_layout_over_qmp() {
    type_with_layout("de", "qmp");
}

#[test]
fn issue_14_french_layout_over_qmp() {
    // Over VNC this payload lost one character in 2 of ~12 runs on a heavily loaded machine
    // (issue 14's closing note); QMP was exact in every run. Until that is understood, both
    // layouts type over QMP; VNC's extended key events are covered by `vnc::tests` and the
    // US typing test over VNC.
    type_with_layout("fr", "qmp");
}

fn type_with_layout(layout: &str, driver: &str) {
    require_qemu();
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let outdir = work.path().join("output-keymap");
    let out = kiln()
        .current_dir(work.path())
        .arg("build")
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(format!("-var=output_directory={}", outdir.display()))
        .arg(format!("-var=layout={layout}"))
        .arg(format!("-var=payload={PAYLOAD}"))
        .arg(format!("-var=boot_key_driver={driver}"))
        .arg(repo_root().join("tests/fixtures/e2e/keymap.pkr.hcl"))
        .output()
        .unwrap();
    assert_ok(&out, "kiln build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("over {}", driver.to_uppercase())),
        "driver {driver} not used\n{}",
        describe(&out)
    );

    assert!(
        stdout.contains(&format!("with the `{layout}` keyboard layout")),
        "layout {layout} not announced\n{}",
        describe(&out)
    );
    assert!(
        stdout.contains("paced by the guest's reads"),
        "guest pacing was not used\n{}",
        describe(&out)
    );

    let serial = read_or_note(&outdir.join("serial.log"));
    assert!(
        serial.contains(&format!("kiln-testos: console keymap {layout} loaded")),
        "the guest did not switch its console to {layout}; serial log:\n{serial}"
    );
    let line = serial_hex(&serial, "typed")
        .unwrap_or_else(|| panic!("no typed line reported; serial log:\n{serial}"));
    let want = PAYLOAD.replace("{{ .HTTPIP }}", "10.0.2.2");
    assert_eq!(line, want, "typed line differs from the payload ({layout})");
}

/// `src/bootcmd/keymaps_data.rs` is what `scripts/gen-keymaps.py` makes from the installed
/// QEMU keymaps and X11 keysym names (qemu-system-data, x11proto-dev: scripts/test.sh installs
/// both).
#[test]
fn issue_14_keymap_tables_are_generated_from_qemu() {
    for input in ["/usr/share/qemu/keymaps/de", "/usr/include/X11/keysymdef.h"] {
        assert!(
            std::path::Path::new(input).is_file(),
            "{input} is missing: install qemu-system-data and x11proto-dev (scripts/test.sh does)"
        );
    }
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/gen-keymaps.py"))
        .arg("-")
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    assert_ok(&out, "scripts/gen-keymaps.py failed");
    let committed = read_or_note(&repo_root().join("src/bootcmd/keymaps_data.rs"));
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "src/bootcmd/keymaps_data.rs differs from what scripts/gen-keymaps.py makes from this \
         machine's QEMU keymaps: run the script and commit the result"
    );
}
