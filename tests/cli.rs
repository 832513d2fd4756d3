//! The `kiln` binary's commands, without booting a guest.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn version_prints_the_crate_version() {
    let out = kiln().arg("version").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kiln {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_test_os_template_validates() {
    let out = kiln()
        .arg("validate")
        .arg(repo_root().join("boot-configs/testos"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn validate_reports_unknown_option_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("bad.pkr.hcl");
    std::fs::write(
        &tpl,
        "source \"qemu\" \"x\" {\n  iso_url = \"a.iso\"\n  iso_checksum = \"none\"\n  ssh_username = \"root\"\n  memroy = 1024\n}\nbuild {\n  sources = [\"source.qemu.x\"]\n}\n",
    )
    .unwrap();
    let out = kiln().arg("validate").arg(&tpl).output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.pkr.hcl:5:"),
        "no file:line in\n{stderr}"
    );
    assert!(stderr.contains("memroy"), "option not named in\n{stderr}");
    assert!(stderr.contains("memory"), "no suggestion in\n{stderr}");
}

/// A wrong `iso_checksum` stops the build before anything runs, showing expected and actual,
/// and leaves no output directory.
#[test]
fn checksum_mismatch_shows_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("fake.iso");
    std::fs::write(&iso, b"not really an ISO").unwrap();
    let wrong = "0".repeat(64);
    let tpl = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &tpl,
        format!(
            "source \"qemu\" \"x\" {{\n  iso_url = \"fake.iso\"\n  iso_checksum = \"sha256:{wrong}\"\n  ssh_username = \"root\"\n}}\nbuild {{\n  sources = [\"source.qemu.x\"]\n}}\n"
        ),
    )
    .unwrap();
    let out = kiln()
        .current_dir(dir.path())
        .arg("build")
        .arg(&tpl)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // sha256 of "not really an ISO"
    let actual = sha256_hex(b"not really an ISO");
    assert!(
        stderr.contains(&wrong),
        "expected digest not shown\n{stderr}"
    );
    assert!(
        stderr.contains(&actual),
        "actual digest not shown\n{stderr}"
    );
    assert!(!dir.path().join("output-x").exists());
    assert_eq!(
        std::fs::read(&iso).unwrap(),
        b"not really an ISO",
        "the local ISO must be untouched"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn existing_output_directory_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fake.iso"), b"iso").unwrap();
    std::fs::create_dir(dir.path().join("output-x")).unwrap();
    std::fs::write(dir.path().join("output-x/keep"), b"precious").unwrap();
    let tpl = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &tpl,
        "source \"qemu\" \"x\" {\n  iso_url = \"fake.iso\"\n  iso_checksum = \"none\"\n  ssh_username = \"root\"\n}\nbuild {\n  sources = [\"source.qemu.x\"]\n}\n",
    )
    .unwrap();
    let out = kiln()
        .current_dir(dir.path())
        .arg("build")
        .arg(&tpl)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("-force"), "no hint\n{stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("output-x/keep")).unwrap(),
        b"precious"
    );
}

#[test]
fn unknown_checksum_type_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("pp.pkr.hcl");
    std::fs::write(
        &tpl,
        "source \"qemu\" \"x\" {\n  iso_url = \"a.iso\"\n  iso_checksum = \"none\"\n  ssh_username = \"root\"\n}\nbuild {\n  sources = [\"source.qemu.x\"]\n  post-processor \"checksum\" {\n    checksum_types = [\"sha256\", \"crc32\"]\n  }\n}\n",
    )
    .unwrap();
    let out = kiln().arg("validate").arg(&tpl).output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pp.pkr.hcl:9:"), "no location\n{stderr}");
    assert!(stderr.contains("unknown checksum type `crc32`"), "{stderr}");
}

/// Issue 5: a malformed boot command fails `kiln validate` at the line and column it is at,
/// before any VM starts; so do `boot_steps` next to `boot_command`.
#[test]
fn validate_reports_boot_command_errors_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("boot.pkr.hcl");
    std::fs::write(
        &tpl,
        r#"source "qemu" "x" {
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
  boot_command = ["install<enter>", "x<wait1m-30s>"]
  boot_steps   = [["a{{ .Nmae }}", "typo"]]
}
build {
  sources = ["source.qemu.x"]
}
"#,
    )
    .unwrap();
    let out = kiln().arg("validate").arg(&tpl).output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("boot.pkr.hcl:5:39: Invalid wait `1m-30s`"),
        "no wait position in\n{stderr}"
    );
    assert!(
        stderr.contains("boot.pkr.hcl:6:22: Unknown template variable `{{ .Nmae }}`"),
        "no variable position in\n{stderr}"
    );
    assert!(
        stderr.contains("cannot be used together"),
        "no conflict in\n{stderr}"
    );
}

/// Issue 5: `http_content` is a map of strings and excludes `http_directory`;
/// `http_bind_address` must be an IP address.
#[test]
fn validate_checks_http_content_and_bind_address() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, extra: &str| {
        let tpl = dir.path().join(name);
        std::fs::write(
            &tpl,
            format!(
                "source \"qemu\" \"x\" {{\n  iso_url = \"a.iso\"\n  iso_checksum = \"none\"\n  ssh_username = \"root\"\n{extra}}}\nbuild {{\n  sources = [\"source.qemu.x\"]\n}}\n"
            ),
        )
        .unwrap();
        kiln().arg("validate").arg(&tpl).output().unwrap()
    };
    let ok = write(
        "ok.pkr.hcl",
        "  http_content = { \"/preseed.cfg\" = \"d-i x\" }\n  http_bind_address = \"127.0.0.1\"\n",
    );
    assert!(ok.status.success(), "{}", describe(&ok));
    let bad = write(
        "bad.pkr.hcl",
        "  http_directory = \".\"\n  http_content = { \"/a\" = \"b\" }\n  http_bind_address = \"localhost:80\"\n",
    );
    assert!(!bad.status.success(), "{}", describe(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("cannot be used together"), "{stderr}");
    assert!(stderr.contains("must be an IP address"), "{stderr}");
}

/// Issue 3: `-var-file`, `PKR_VAR_`, `validate -syntax-only` and `inspect` from the command
/// line, with Packer's single-dash spelling; a sensitive value never printed.
#[test]
fn var_files_env_syntax_only_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &tpl,
        "variable \"cpus\" {\n  type = number\n}\nvariable \"pw\" {\n  type = string\n  sensitive = true\n}\nvariable \"tags\" {\n  type = list(string)\n  default = []\n}\nsource \"qemu\" \"x\" {\n  iso_url = \"a.iso\"\n  iso_checksum = \"none\"\n  ssh_username = \"root\"\n  ssh_password = var.pw\n  cpus = var.cpus\n}\nbuild {\n  sources = [\"source.qemu.x\"]\n}\n",
    )
    .unwrap();
    let vars = dir.path().join("v.pkrvars.hcl");
    std::fs::write(&vars, "cpus = 2\ntags = [\"a\", \"b\"]\n").unwrap();
    let out = kiln().arg("validate").arg(&tpl).output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("variable `cpus` has no value"), "{stderr}");
    assert!(stderr.contains("variable `pw` has no value"), "{stderr}");

    let out = kiln()
        .args(["validate", "-syntax-only"])
        .arg(&tpl)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));

    let out = kiln()
        .args(["inspect", "-var-file"])
        .arg(&vars)
        .arg(&tpl)
        .env("PKR_VAR_pw", "hunter22-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("var.cpus: 2\n"), "{stdout}");
    assert!(stdout.contains("var.pw: <sensitive>\n"), "{stdout}");
    assert!(stdout.contains("var.tags: [\"a\", \"b\"]\n"), "{stdout}");
    assert!(
        !describe(&out).contains("hunter22-secret"),
        "{}",
        describe(&out)
    );

    let broken = dir.path().join("broken.pkr.hcl");
    std::fs::write(&broken, "build {\n  sources = [\n").unwrap();
    let out = kiln()
        .args(["validate", "-syntax-only"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken.pkr.hcl:"),
        "{}",
        describe(&out)
    );
}

/// Issue 3: `build -machine-readable` prints only `timestamp,target,type,data…` lines, with
/// commas in data escaped as Packer does, and the artifact list in Packer's shape.
#[test]
fn build_machine_readable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &tpl,
        "source \"null\" \"local\" {\n  communicator = \"none\"\n}\nbuild {\n  sources = [\"source.null.local\"]\n  provisioner \"shell-local\" {\n    inline = [\"echo one, two\"]\n  }\n  post-processor \"manifest\" {\n    output = \"manifest.json\"\n  }\n}\n",
    )
    .unwrap();
    let out = kiln()
        .args(["build", "-machine-readable"])
        .arg(&tpl)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(
            fields.len() >= 3 && fields[0].parse::<u64>().is_ok(),
            "not a machine-readable line: {line:?}\n{stdout}"
        );
    }
    assert!(
        stdout.contains(",null.local,ui,message,") && stdout.contains("one%!(PACKER_COMMA) two"),
        "{stdout}"
    );
    assert!(
        stdout.contains(",null.local,artifact-count,1\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(",null.local,artifact,0,file,0,"),
        "{stdout}"
    );
    assert!(stdout.contains(",null.local,artifact,0,end\n"), "{stdout}");
    // The builder id comes from the artifact: Packer's null builder, not a qemu id (issue 16).
    assert!(
        stdout.contains(",null.local,artifact,0,builder-id,fnoeding.null\n"),
        "{stdout}"
    );
}

/// Issue 18: `validate` and `inspect` do not read `data "http"` (nothing listens at its
/// address), as Packer; `validate -evaluate-datasources` and `build` do, and fail.
#[test]
fn validate_does_not_read_http_data_unless_asked_issue_18() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tpl = dir.path().join("x.pkr.hcl");
    std::fs::write(
        &tpl,
        format!(
            r#"
data "http" "sums" {{
  url = "http://127.0.0.1:{port}/SHA256SUMS"
}}
locals {{
  sum = data.http.sums.body
}}
source "qemu" "x" {{
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
  boot_command = ["${{local.sum}}<enter>"]
  qemuargs     = [for k, v in data.http.sums.request_headers : ["-${{k}}", v]]
}}
build {{
  sources = ["source.qemu.x"]
}}
"#
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        kiln()
            .args(args)
            .arg(&tpl)
            .env("KILN_CACHE_DIR", dir.path().join("cache"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["validate"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(&["inspect"]);
    assert!(out.status.success(), "{}", describe(&out));
    let failed = format!(
        "data source `data.http.sums` failed: Request to `http://127.0.0.1:{port}/SHA256SUMS` failed"
    );
    for args in [&["validate", "-evaluate-datasources"][..], &["build"]] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&failed), "{args:?}: {stderr}");
    }
}
