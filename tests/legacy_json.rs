//! Issue 14: legacy JSON templates (`"builders": [...]`) validate and inspect as their HCL2
//! upgrade does, `kiln hcl2_upgrade` writes that upgrade, and problems in the JSON name
//! `file:line:col`. The fixtures in `tests/fixtures/legacy/` are kiln's own, in Packer's
//! legacy format.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

const FIXTURES: &str = "tests/fixtures/legacy";

/// Copies the fixture template and its `http/` and `scripts/` into a fresh directory.
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join(FIXTURES);
    std::fs::copy(src.join("debian.json"), dir.path().join("debian.json")).unwrap();
    for sub in ["http", "scripts"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    kiln().args(args).current_dir(dir).output().unwrap()
}

#[test]
fn issue_14_hcl2_upgrade_round_trip() {
    let dir = fixture_dir();
    let d = dir.path();
    let out = run_in(d, &["validate", "-var", "version=1", "debian.json"]);
    assert_ok(&out, "validate of the JSON template");

    let out = run_in(d, &["hcl2_upgrade", "debian.json"]);
    assert_ok(&out, "hcl2_upgrade");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Successfully created debian.json.pkr.hcl"
    );
    let hcl = std::fs::read_to_string(d.join("debian.json.pkr.hcl")).unwrap();
    for expected in [
        "variable \"ssh_password\" {",
        "sensitive = true",
        "default = \"${env(\"http_proxy\")}\"",
        "locals { timestamp = regex_replace(timestamp(), \"[- TZ:]\", \"\") }",
        "template = \"debian-12-amd64-${var.cpus}cpu\"",
        "source \"qemu\" \"debian\" {",
        "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/${var.preseed_path} ",
        "mirror/http/hostname=${lower(var.mirror_host)}<enter>",
        "sources     = [\"source.qemu.debian\"]",
        "only              = [\"qemu.debian\"]",
        "post-processors {",
    ] {
        assert!(hcl.contains(expected), "`{expected}` missing from:\n{hcl}");
    }
    // The output is laid out as `kiln fmt` (Packer's hclwrite) would.
    let out = run_in(d, &["fmt", "-check", "debian.json.pkr.hcl"]);
    assert_ok(&out, "fmt -check of the upgrade");

    let out = run_in(d, &["validate", "-var", "version=1", "debian.json.pkr.hcl"]);
    assert_ok(&out, "validate of the upgrade");
    let plan = |file: &str| {
        let out = run_in(d, &["inspect", "-var", "version=1", file]);
        assert_ok(&out, "inspect");
        String::from_utf8(out.stdout).unwrap()
    };
    let (json_plan, hcl_plan) = (plan("debian.json"), plan("debian.json.pkr.hcl"));
    assert_eq!(json_plan, hcl_plan);
    for expected in [
        "qemu.debian",
        "var.ssh_password: <sensitive>",
        "vagrant\n        checksum",
    ] {
        assert!(
            json_plan.contains(expected),
            "`{expected}` missing from:\n{json_plan}"
        );
    }
}

#[test]
fn issue_14_hcl2_upgrade_output_file_and_overwrite() {
    let dir = fixture_dir();
    let d = dir.path();
    // As Packer: `-output-file` (its directory made), and an existing file is replaced.
    std::fs::create_dir(d.join("old")).unwrap();
    std::fs::write(d.join("old/debian.pkr.hcl"), "stale").unwrap();
    let out = run_in(
        d,
        &[
            "hcl2_upgrade",
            "-output-file=old/debian.pkr.hcl",
            "debian.json",
        ],
    );
    assert_ok(&out, "hcl2_upgrade over an existing file");
    let written = std::fs::read_to_string(d.join("old/debian.pkr.hcl")).unwrap();
    assert!(written.starts_with("packer {"), "{written}");
    let out = run_in(
        d,
        &[
            "hcl2_upgrade",
            "-output-file",
            "new/sub/x.pkr.hcl",
            "debian.json",
        ],
    );
    assert_ok(&out, "hcl2_upgrade into a new directory");
    assert!(d.join("new/sub/x.pkr.hcl").is_file());

    // A template with problems writes nothing and leaves an existing output as it was.
    std::fs::copy(
        repo_root().join(FIXTURES).join("errors.json"),
        d.join("errors.json"),
    )
    .unwrap();
    std::fs::write(d.join("errors.json.pkr.hcl"), "mine").unwrap();
    let out = run_in(d, &["hcl2_upgrade", "errors.json"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("errors.json:15:18: unknown template function `nosuch`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("errors.json.pkr.hcl")).unwrap(),
        "mine"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kiln"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = run_in(d, &["hcl2_upgrade", "-with-annotations", "debian.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`-with-annotations`"));
}

/// Every problem of the template at once, each at its JSON `line:col` with the line shown.
#[test]
fn issue_14_json_errors_name_file_line_col() {
    let out = kiln()
        .args(["validate", &format!("{FIXTURES}/errors.json")])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = format!("{FIXTURES}/errors.json");
    for expected in [
        "error: Template has 8 errors".to_owned(),
        format!(
            "{f}:11:7: unknown option `iso_ur`\n 11 |       \"iso_ur\": \"http://127.0.0.1:1/y.iso\",\n    |       ^\nhint: did you mean `iso_url`?"
        ),
        format!("{f}:12:19: `headless` expects a bool, found list"),
        format!("{f}:14:23: `env` can only be used in the `variables` section, as in Packer"),
        format!("{f}:15:18: unknown template function `nosuch`"),
        format!("{f}:19:34: variable `missing_var` has no value"),
        format!("{f}:19:75: `only` names `vmware`, which is not a builder of this template"),
        format!("{f}:20:5: this provisioner has no `type`"),
        format!(
            "{f}:22:3: unknown key `post-processor` in a JSON template\n 22 |   \"post-processor\": []\n    |   ^\nhint: did you mean `post-processors`?"
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "`{expected}` missing from:\n{stderr}"
        );
    }

    for args in [&["validate"][..], &["validate", "-syntax-only"][..]] {
        let out = kiln()
            .args(args)
            .arg(format!("{FIXTURES}/bad-syntax.json"))
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!(
                "{FIXTURES}/bad-syntax.json:3:21: syntax error: a trailing comma before `}}` is not allowed in JSON\n 3 |     {{\"type\": \"qemu\",}}\n   |                     ^"
            )),
            "{}",
            describe(&out)
        );
    }
}
