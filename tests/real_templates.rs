//! Issue 13: real Packer templates run unchanged. A Bento-shaped template written for these
//! tests (`tests/fixtures/issue-13/bento`: sources of several builders, `sources` from a
//! variable, a plugin data source read through `try`, Windows provisioners kept away with
//! `except`) validates with Bento's command lines; `-only` / `-except` select builds before
//! their sources are read; `kiln build` refuses what it cannot run before starting anything;
//! and the template defects found on real templates stay fixed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn bento() -> PathBuf {
    repo_root().join("tests/fixtures/issue-13/bento")
}

/// `kiln ARGS` run in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    kiln().args(args).current_dir(dir).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kiln validate` of the Bento-shaped template with `extra` arguments, from the repository.
fn validate_bento(extra: &[&str]) -> Output {
    let vars = bento().join("debian-12.pkrvars.hcl");
    let template = bento();
    let mut args = vec!["validate", "-var-file", vars.to_str().unwrap()];
    args.extend(extra);
    args.push(template.to_str().unwrap());
    run_in(&repo_root(), &args)
}

#[test]
fn issue_13_bento_validate_command_line_passes_with_warnings() {
    let out = validate_bento(&[]);
    assert_ok(&out, "bento's `validate -var-file=X packer_templates`");
    let err = stderr(&out);
    for want in [
        "source type `virtualbox-iso` is not built into kiln: its builds are only validated \
         (selected build `virtualbox-iso.vm`)",
        "source type `vmware-iso` is not built into kiln",
        "hint: kiln builds `qemu`, `docker`, `null` or `amazon-ebs` sources; run the builds it \
         can with `-only`, e.g. `-only=qemu.vm`",
        "data source type `host-info` is not built into kiln",
        "`except` names `utm-iso.vm`, which this build does not build",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert!(!err.contains("error"), "{err}");
    // The Windows provisioners are excepted for every Linux build: not even named.
    assert!(!err.contains("powershell"), "{err}");
    assert!(!err.contains("utm-vagrant"), "{err}");
}

#[test]
fn issue_13_bento_build_selection_command_line_passes() {
    let out = validate_bento(&["-only=qemu.vm", "-var", r#"sources_enabled=["qemu.vm"]"#]);
    assert_ok(&out, "bento's build flags");
    let err = stderr(&out);
    assert!(!err.contains("is not built into kiln: its builds"), "{err}");
    // `TYPE.NAME` without `source.` is accepted in `sources`, as Bento passes it.
    assert!(
        err.contains("it builds `qemu.vm`"),
        "the build has only qemu.vm:\n{err}"
    );
}

/// `-only` / `-except` globs, and a pattern that matches nothing.
#[test]
fn issue_13_only_and_except_globs() {
    let foreign = |out: &Output| stderr(out).matches("its builds are only validated").count();
    let table: &[(&[&str], usize, &str)] = &[
        (&["-only=*.vm"], 2, "every build"),
        (&["-only=qemu.*"], 0, "the qemu build"),
        (
            &["-only=qemu.vm,vmware-*"],
            1,
            "two builds, comma-separated",
        ),
        (&["-except=virtualbox-*,vmware-iso.vm"], 0, "except two"),
        (&["-except=qemu.vm"], 2, "except qemu"),
    ];
    for (args, want, reason) in table {
        let out = validate_bento(args);
        assert_ok(&out, reason);
        assert_eq!(foreign(&out), *want, "{reason}: {}", stderr(&out));
    }
    let out = validate_bento(&["-only=nothing.*"]);
    assert_ok(&out, "an unmatched pattern is a warning");
    let err = stderr(&out);
    assert!(
        err.contains("warning: command line: `-only=nothing.*` matches no build"),
        "{err}"
    );
    assert!(
        err.contains("the builds are `qemu.vm`, `virtualbox-iso.vm`, `vmware-iso.vm`"),
        "{err}"
    );
}

/// `kiln build` refuses, before anything starts, a selected build kiln cannot run; with no
/// build left it says so.
#[test]
fn issue_13_build_refuses_foreign_builds_before_starting() {
    let work = tempfile::tempdir().unwrap();
    let vars = bento().join("debian-12.pkrvars.hcl");
    let out_dir = work.path().join("out");
    let output = format!("output_directory={}", out_dir.display());
    let out = run_in(
        work.path(),
        &[
            "build",
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &output,
            bento().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("selects builds kiln cannot run"), "{err}");
    assert!(
        err.contains("The selected builds use 2 blocks kiln cannot run"),
        "{err}"
    );
    assert!(
        err.contains("sources.pkr.hcl:51:1: source type `virtualbox-iso`"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Retrieving ISO"));
    assert!(
        std::fs::read_dir(work.path()).unwrap().next().is_none(),
        "nothing may be written"
    );

    let out = run_in(
        work.path(),
        &[
            "build",
            "-only=nothing",
            "-var-file",
            vars.to_str().unwrap(),
            bento().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("has no build to run"),
        "{}",
        describe(&out)
    );
}

/// The options of a source that is not selected are never an error.
#[test]
fn issue_13_unselected_sources_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.pkr.hcl");
    std::fs::write(
        &t,
        r#"
source "qemu" "ok" {
  iso_url      = "https://example.org/a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}
source "qemu" "broken" {
  iso_url = "https://example.org/a.iso"
  memroy  = 1
}
build {
  sources = ["qemu.ok", "qemu.broken"]
}
"#,
    )
    .unwrap();
    let t = t.to_str().unwrap();
    let out = run_in(dir.path(), &["validate", "-only=qemu.ok", t]);
    assert_ok(&out, "the broken source is not selected");
    let out = run_in(dir.path(), &["validate", "-except=qemu.broken", t]);
    assert_ok(&out, "the broken source is excepted");
    let out = run_in(dir.path(), &["validate", t]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("unknown option `memroy`"));
}

/// The defects found on real templates (issue 13, item 9).
#[test]
fn issue_13_template_defects_found_on_real_templates() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path();
    std::fs::create_dir_all(repo.join("packer")).unwrap();
    std::fs::create_dir_all(repo.join("scripts")).unwrap();
    std::fs::create_dir_all(repo.join("http")).unwrap();
    std::fs::write(repo.join("scripts/x.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(
        repo.join("packer/t.pkr.hcl"),
        r#"
variable "headless" {}
variable "n" {
  default = 1
}
source "qemu" "deb-12" {
  iso_url           = "https://example.org/a.iso"
  iso_checksum      = "none"
  ssh_username      = "root"
  http_directory    = "http"
  http_bind_address = ""
  headless          = var.headless
  memory            = var.n + 1000
  vm_name           = var.headless ? "x" : "debian-${split("-", source.name)[1]}"
}
build {
  sources = ["source.qemu.deb-12"]
  source "qemu.deb-12" {
    name             = "deb-13"
    output_directory = "out-${source.name}"
  }
  provisioner "shell" {
    scripts = ["scripts/x.sh", "/dev/null"]
  }
}
"#,
    )
    .unwrap();
    // Relative paths in options are relative to where kiln runs, as `packer build packer/`
    // from a repository's root expects; an untyped `-var x=false` is a bool where one is
    // needed, `-var n=2` a number.
    let out = run_in(
        repo,
        &[
            "inspect",
            "-var",
            "headless=false",
            "-var",
            "n=24",
            "packer",
        ],
    );
    assert_ok(&out, "from the repository's root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("qemu.deb-12") && stdout.contains("qemu.deb-13"),
        "{stdout}"
    );
    let out = run_in(
        &repo.join("packer"),
        &["validate", "-var", "headless=false", "."],
    );
    assert!(!out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "script `{}` does not exist",
            repo.join("packer/scripts/x.sh").display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("http_bind_address"),
        "an empty address is the default: {err}"
    );
}

/// Packer's flags that kiln does not take are named as such (never "unexpected argument
/// '-o'").
#[test]
fn issue_13_packer_flags_are_named() {
    let out = kiln()
        .args(["build", "-parallel=false", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: kiln does not take Packer's `-parallel` flag: Packer's old boolean form; use \
         `-parallel-builds=1` for one build at a time"
    );
}
