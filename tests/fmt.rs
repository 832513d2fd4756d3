//! `kiln fmt`: Packer's flags, exit codes, files and standard input.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;

use common::*;

const UNFORMATTED: &str = "source \"qemu\" \"x\" {\n\
    # the ISO\n\
    iso_url = \"a.iso\"\n\
    iso_checksum=\"none\" # no checksum\n\
    }\n";

const FORMATTED: &str = "source \"qemu\" \"x\" {\n  \
    # the ISO\n  \
    iso_url      = \"a.iso\"\n  \
    iso_checksum = \"none\" # no checksum\n\
    }\n";

#[test]
fn check_exits_3_until_the_file_is_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.pkr.hcl");
    std::fs::write(&tpl, UNFORMATTED).unwrap();
    std::fs::set_permissions(&tpl, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = kiln()
        .args(["fmt", "-check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("t.pkr.hcl"), "file not listed:\n{stdout}");
    assert_eq!(
        std::fs::read_to_string(&tpl).unwrap(),
        UNFORMATTED,
        "-check writes nothing"
    );

    let out = kiln().arg("fmt").arg(dir.path()).output().unwrap();
    assert_ok(&out, "fmt");
    assert_eq!(std::fs::read_to_string(&tpl).unwrap(), FORMATTED);
    let mode = std::fs::metadata(&tpl).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "permissions kept");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    let out = kiln().args(["fmt", "-check"]).arg(&tpl).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

#[test]
fn diff_shows_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.pkrvars.hcl");
    std::fs::write(&tpl, "a=1\nbbb = 2\n").unwrap();
    let out = kiln()
        .args(["fmt", "-diff", "-write=false"])
        .arg(&tpl)
        .output()
        .unwrap();
    assert_ok(&out, "fmt -diff");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = tpl.display();
    for line in [
        format!("--- old/{name}"),
        format!("+++ new/{name}"),
        "-a=1".to_owned(),
        "+a   = 1".to_owned(),
        " bbb = 2".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in\n{stdout}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&tpl).unwrap(),
        "a=1\nbbb = 2\n",
        "-write=false writes nothing"
    );
}

#[test]
fn stdin_is_formatted_to_stdout() {
    let mut child = kiln()
        .args(["fmt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(UNFORMATTED.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, "fmt -");
    assert_eq!(String::from_utf8_lossy(&out.stdout), FORMATTED);
}

#[test]
fn recursive_reaches_subdirectories_and_skips_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("os/debian");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("d.pkr.hcl"), "a=1\n").unwrap();
    std::fs::write(dir.path().join("notes.hcl"), "a=1\n").unwrap();

    let out = kiln()
        .args(["fmt", "-check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "without -recursive: {}",
        describe(&out)
    );

    let out = kiln()
        .args(["fmt", "-recursive"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ok(&out, "fmt -recursive");
    assert_eq!(
        std::fs::read_to_string(sub.join("d.pkr.hcl")).unwrap(),
        "a = 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.hcl")).unwrap(),
        "a=1\n",
        "only *.pkr.hcl and *.pkrvars.hcl"
    );
}

#[test]
fn a_file_that_does_not_parse_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pkr.hcl");
    let text = "build {\n  sources = [\n}\n";
    std::fs::write(&bad, text).unwrap();
    let good = dir.path().join("good.pkr.hcl");
    std::fs::write(&good, "a=1\n").unwrap();

    let out = kiln().arg("fmt").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1:", bad.display())),
        "no file:line:col in\n{stderr}"
    );
    assert!(stderr.contains("1 file could not be formatted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), text, "untouched");
    assert_eq!(
        std::fs::read_to_string(&good).unwrap(),
        "a = 1\n",
        "the other files are still formatted"
    );
}

/// A template linked from several directories (as `boot-configs/*/variables.pkr.hcl` are)
/// is formatted in place: the link stays a link.
#[test]
fn a_symlinked_file_keeps_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared.pkr.hcl");
    std::fs::write(&shared, UNFORMATTED).unwrap();
    let os = dir.path().join("os");
    std::fs::create_dir(&os).unwrap();
    let link = os.join("t.pkr.hcl");
    std::os::unix::fs::symlink("../shared.pkr.hcl", &link).unwrap();
    let out = kiln().arg("fmt").arg(&os).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), FORMATTED);
}
