//! Loader tests: small inline templates written to a temporary directory, and the fixtures in
//! `tests/fixtures/templates/{ok,bad}` (one bad file per failure mode).

use std::path::{Path, PathBuf};

use super::*;
use crate::builder::SourceConfig;
use crate::builder::qemu::config::{Accelerator, CommunicatorKind, DiskFormat};
use crate::postprocessor::{PostProcessor, PostProcessorBlock};
use crate::provisioner::Provisioner;
use crate::provisioner::shell::ShellSource;
use crate::types::Checksum;

/// The `TYPE.NAME` of each source a build builds.
fn keys(b: &Build) -> Vec<String> {
    b.runs
        .iter()
        .map(|r| {
            let (k, n) = r.source.key();
            format!("{k}.{n}")
        })
        .collect()
}

/// Inputs with only `-var`s.
fn cli(vars: &[(String, String)]) -> Inputs {
    Inputs {
        vars: vars.to_vec(),
        ..Inputs::default()
    }
}

/// Writes `files` (name, text) into a fresh directory.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// Every diagnostic rendered with its source text, file paths shown relative to `base`.
fn rendered(err: &Error, base: &Path) -> String {
    let Error::Invalid(diags) = err else {
        panic!("expected Invalid, got {err:?}");
    };
    diags
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(&d.location.file).ok();
            let mut d = d.clone();
            if let Ok(rel) = d.location.file.strip_prefix(base) {
                d.location.file = rel.to_owned();
            }
            d.render(text.as_deref())
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Loads `t.pkr.hcl` holding `text`; the error rendered, or the template.
fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Template, String> {
    let dir = dir_with(&[("t.pkr.hcl", text)]);
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load(&dir.path().join("t.pkr.hcl"), &cli(&vars)).map_err(|e| rendered(&e, dir.path()))
}

fn errors(text: &str) -> String {
    match load_text(text, &[]) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e,
    }
}

fn qemu_of(t: &Template) -> &crate::builder::qemu::config::Config {
    match t.sources.first() {
        Some(SourceConfig::Qemu(c)) => c,
        _ => panic!("no qemu source"),
    }
}

const MINIMAL: &str = r#"
source "qemu" "m" {
  iso_url      = "https://example.org/a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}
build { sources = ["source.qemu.m"] }
"#;

/// [`MINIMAL`] with `extra` option lines in its source.
fn minimal_with(extra: &str) -> String {
    MINIMAL.replace(
        "ssh_username = \"root\"",
        &format!("ssh_username = \"root\"\n  {extra}"),
    )
}

#[test]
fn minimal_source_gets_packer_defaults() {
    let t = load_text(MINIMAL, &[]).expect("loads");
    let c = qemu_of(&t);
    assert_eq!(c.output_directory, PathBuf::from("output-m"));
    assert_eq!(c.vm_name, "packer-m");
    assert_eq!(c.disk_size, 40960 << 20);
    assert_eq!(c.boot_wait.abs, std::time::Duration::from_secs(10));
    assert_eq!(c.ssh.as_ref().map(|s| s.port), Some(22));
    assert_eq!(keys(&t.builds[0]), ["qemu.m"]);
}

#[test]
fn demo_template_loads() {
    let dir = dir_with(&[
        (
            "examples/testos/testos.pkr.hcl",
            include_str!("../../tests/fixtures/templates/ok/testos.pkr.hcl"),
        ),
        ("scripts/testos-provision.sh", "#!/bin/sh\n"),
    ]);
    let path = dir.path().join("examples/testos/testos.pkr.hcl");
    let t = load(&path, &cli(&[("memory".into(), "1024".into())])).expect("demo template loads");
    let root = std::path::absolute(dir.path()).expect("absolute temp dir");
    let c = qemu_of(&t);
    assert_eq!(c.name, "testos");
    assert_eq!(
        c.iso_urls,
        [root
            .join("target/test-iso/kiln-testos.iso")
            .to_string_lossy()]
    );
    assert_eq!(c.iso_checksum, Checksum::None);
    assert_eq!(c.output_directory, PathBuf::from("output-testos"));
    assert_eq!(c.vm_name, "testos.qcow2");
    assert_eq!(c.disk_size, 1 << 30);
    assert_eq!(c.format, DiskFormat::Qcow2);
    assert_eq!(c.accelerator, Accelerator::Auto);
    assert_eq!(
        c.memory, 1024,
        "-var overrides the default and is converted to a number"
    );
    assert_eq!(c.cpus, 2);
    assert!(c.headless);
    assert_eq!(c.http_directory, Some(root.join("http")));
    assert_eq!(c.boot_wait.abs, std::time::Duration::from_secs(3));
    assert_eq!(
        c.boot_command,
        ["install kiln.answer=http://{{ .HTTPIP }}:{{ .HTTPPort }}/testos.cfg<enter>"]
    );
    assert_eq!(c.communicator, CommunicatorKind::Ssh);
    let ssh = c.ssh.as_ref().expect("ssh settings");
    assert_eq!(ssh.username, "root");
    assert_eq!(ssh.password.as_ref().map(|p| p.expose()), Some("kiln"));
    assert_eq!(ssh.timeout, std::time::Duration::from_secs(300));
    assert_eq!(c.shutdown_command.as_deref(), Some("poweroff"));

    let b = &t.builds[0];
    assert_eq!(keys(b), ["qemu.testos"]);
    let kinds: Vec<&Provisioner> = b.runs[0].provisioners.iter().map(|p| &p.kind).collect();
    let [Provisioner::Shell(p1), Provisioner::Shell(p2)] = kinds.as_slice() else {
        panic!("two shell provisioners expected");
    };
    assert_eq!(
        p1.source,
        ShellSource::Script(root.join("scripts/testos-provision.sh"))
    );
    assert_eq!(
        p2.source,
        ShellSource::Inline(vec!["echo hello from $(hostname)".into()])
    );
    assert_eq!(p2.environment_vars, [("A".to_owned(), "b".to_owned())]);
    let [chain] = b.runs[0].post_processors.as_slice() else {
        panic!("one post-processor chain expected");
    };
    let [
        PostProcessorBlock {
            kind: PostProcessor::Vagrant(v),
            ..
        },
    ] = chain.as_slice()
    else {
        panic!("one vagrant post-processor expected");
    };
    assert_eq!(v.output, "output-testos/testos.box");
}

#[test]
fn ok_fixtures_load() {
    let path = Path::new("tests/fixtures/templates/ok/bento-debian.pkr.hcl");
    if let Err(e) = load(path, &Inputs::default()) {
        panic!("{}", rendered(&e, Path::new("")));
    }
}

#[test]
fn directory_loads_all_files_in_order() {
    let dir = dir_with(&[
        (
            "a.pkr.hcl",
            "variable \"n\" {\n  type = string\n  default = \"x\"\n}\n",
        ),
        ("b.pkr.hcl", &MINIMAL.replace("\"root\"", "var.n")),
        ("notes.txt", "not a template"),
    ]);
    let t = load(dir.path(), &Inputs::default()).expect("loads");
    assert_eq!(
        qemu_of(&t).ssh.as_ref().map(|s| s.username.as_str()),
        Some("x")
    );
    let empty = tempfile::tempdir().expect("temp dir");
    assert!(matches!(
        load(empty.path(), &Inputs::default()),
        Err(Error::NoTemplates { .. })
    ));
    assert!(matches!(
        load(&empty.path().join("nope.pkr.hcl"), &Inputs::default()),
        Err(Error::ReadFile { .. })
    ));
}

#[test]
fn locals_in_any_order_and_interpolation() {
    let t = load_text(
        &MINIMAL.replace(
            "iso_checksum = \"none\"",
            "iso_checksum = \"none\"\n  vm_name = \"${local.full}\"\n  cpus = var.c",
        )
        .replace("source \"qemu\"", "locals {\n  full = \"${local.base}-${var.c}.img\"\n  base = \"disk\"\n}\nvariable \"c\" {\n  type = number\n  default = \"3\"\n}\nsource \"qemu\""),
        &[],
    )
    .expect("loads");
    assert_eq!(qemu_of(&t).vm_name, "disk-3.img");
    assert_eq!(qemu_of(&t).cpus, 3);
}

#[test]
fn option_rules() {
    // (extra option lines, check) — one Packer rule per row.
    type Check = fn(&crate::builder::qemu::config::Config) -> bool;
    let table: [(&str, Check, &str); 6] = [
        (
            "format = \"raw\"",
            |c| c.skip_compaction && c.format == DiskFormat::Raw,
            "raw forces skip_compaction",
        ),
        (
            "memory = 4",
            |c| c.memory == 512,
            "memory below 10 means 512",
        ),
        (
            "disk_size = 2048",
            |c| c.disk_size == 2048 << 20,
            "numeric disk_size is MiB",
        ),
        (
            "ssh_port = \"2200\"",
            |c| c.ssh.as_ref().is_some_and(|s| s.port == 2200),
            "numeric string converts",
        ),
        (
            "boot_wait = \"-1s\"",
            |c| c.boot_wait.negative,
            "negative boot_wait kept",
        ),
        (
            "communicator = \"none\"",
            |c| c.ssh.is_none(),
            "no ssh settings without ssh",
        ),
    ];
    for (extra, check, reason) in table {
        match load_text(&minimal_with(extra), &[]) {
            Ok(t) => assert!(check(qemu_of(&t)), "{reason}"),
            Err(e) => panic!("{reason}: {e}"),
        }
    }
}

#[test]
fn unknown_function_is_a_diagnostic() {
    let e = errors(&MINIMAL.replace("\"root\"", "vault(\"/kv/x\", \"user\")"));
    assert!(
        e.contains("t.pkr.hcl:5:18: function `vault` is not supported by kiln yet"),
        "{e}"
    );
    let e = errors(&MINIMAL.replace("\"root\"", "frobnicate(1)"));
    assert!(
        e.contains("t.pkr.hcl:5:18: unknown function `frobnicate`"),
        "{e}"
    );
}

#[test]
fn locals_cycle_is_reported() {
    let e = errors(&format!(
        "locals {{\n  a = local.b\n  b = local.a\n  c = local.a\n}}\n{MINIMAL}"
    ));
    assert!(
        e.contains("t.pkr.hcl:2:3: local `a` depends on itself"),
        "{e}"
    );
    assert!(
        e.contains("t.pkr.hcl:3:3: local `b` depends on itself"),
        "{e}"
    );
    assert!(
        !e.contains("local `c`"),
        "a local that only uses the cycle is not reported: {e}"
    );
}

#[test]
fn sensitive_values_never_shown() {
    let text = format!(
        "variable \"pw\" {{\n  type = string\n  sensitive = true\n  default = \"hunter2\"\n}}\n{}",
        MINIMAL.replace("iso_checksum = \"none\"", "iso_checksum = var.pw")
    );
    let e = errors(&text);
    assert!(
        e.contains("t.pkr.hcl:9:18: unknown type for checksum `<sensitive>`"),
        "{e}"
    );
    let e = match load_text(&text, &[("pw", "s3cret-value")]) {
        Ok(_) => panic!("bad checksum accepted"),
        Err(e) => e,
    };
    assert!(!e.contains("s3cret-value"), "{e}");
}

#[test]
fn variable_values_are_type_checked() {
    let text = format!("variable \"n\" {{\n  type = number\n  default = 1\n}}\n{MINIMAL}");
    let e = match load_text(&text, &[("n", "many")]) {
        Ok(_) => panic!("bad -var accepted"),
        Err(e) => e,
    };
    assert_eq!(
        e,
        "command line: -var `n`: the value does not fit type number: expected a number, found string"
    );
    let e = errors(&format!(
        "variable \"n\" {{\n  type = bool\n  default = \"yes\"\n}}\n{MINIMAL}"
    ));
    assert!(
        e.starts_with(
            "t.pkr.hcl:3:13: the default of variable `n` does not fit its type bool: expected a bool, found string"
        ),
        "{e}"
    );
    let e = errors(&format!(
        "variable \"n\" {{\n  type = string\n}}\n{MINIMAL}"
    ));
    assert!(
        e.starts_with("t.pkr.hcl:1:1: variable `n` has no value"),
        "{e}"
    );
    assert!(
        e.contains("hint: give it a `default`, pass `-var n=VALUE`, set it in a `-var-file`, or export `PKR_VAR_n`"),
        "{e}"
    );
}

#[test]
fn error_display_counts() {
    let one = Error::Invalid(vec![Diagnostic::new(diag::command_line(), "x")]);
    assert_eq!(one.to_string(), "Template has 1 error");
}

#[test]
fn one_problem_is_reported_once() {
    let text = format!(
        "variable \"l\" {{\n  type = list\n}}\n{}",
        MINIMAL.replace("\"root\"", "var.l")
    );
    let e = errors(&text);
    assert_eq!(
        e,
        "t.pkr.hcl:2:10: invalid type for variable: `list` needs an element type, as in `list(string)`\n 2 |   type = list\n   |          ^",
        "no cascade of undeclared-variable or missing-option reports"
    );
}

/// `MINIMAL` with `body` inside its build block.
fn with_build(body: &str) -> String {
    MINIMAL.replace(
        "build { sources = [\"source.qemu.m\"] }",
        &format!("build {{\n  sources = [\"source.qemu.m\"]\n{body}\n}}"),
    )
}

#[test]
fn post_processor_chains_and_common_options() {
    let text = with_build(
        r#"
  post-processor "checksum" {
    checksum_types = ["sha256"]
    only           = ["qemu.m"]
  }
  post-processors {
    post-processor "vagrant" {
      keep_input_artifact = false
      architecture        = "arm64"
    }
    post-processor "compress" {
      output            = "out/{{.BuildName}}.tar.zst"
      compression_level = 19
      name              = "pack"
    }
  }
  post-processor "manifest" {
    except = ["qemu.m"]
  }
  post-processor "shell-local" {
    inline           = ["echo done"]
    only             = ["qemu.m"]
    execute_command  = "bash {{.Script}}"
    valid_exit_codes = [0, 2]
    env              = { B = "2" }
    environment_vars = ["A=1"]
  }
"#,
    );
    let t = load_text(&text, &[]).expect("loads");
    let chains = &t.builds[0].runs[0].post_processors;
    let shape: Vec<Vec<&str>> = chains
        .iter()
        .map(|c| c.iter().map(|pp| pp.kind.type_name()).collect())
        .collect();
    assert_eq!(
        shape,
        [
            vec!["checksum"],
            vec!["vagrant", "compress"],
            vec!["shell-local"]
        ]
    );
    // The manifest's `except` keeps it out of the only build (it is not even read).
    assert!(chains[0][0].runs_for("qemu.m") && !chains[0][0].runs_for("qemu.y"));
    assert!(chains[2][0].runs_for("qemu.m"));
    assert_eq!(chains[1][0].keep_input_artifact, Some(false));
    let PostProcessor::Vagrant(v) = &chains[1][0].kind else {
        panic!("vagrant")
    };
    assert_eq!(v.architecture.as_deref(), Some("arm64"));
    assert_eq!(chains[1][1].name.as_deref(), Some("pack"));
    let PostProcessor::Compress(c) = &chains[1][1].kind else {
        panic!("compress")
    };
    assert_eq!(c.compression_level, Some(19));
    let PostProcessor::ShellLocal(s) = &chains[2][0].kind else {
        panic!("shell-local")
    };
    assert_eq!(s.execute_command, ["/bin/sh", "-c", "bash {{.Script}}"]);
    assert_eq!(s.valid_exit_codes, [0, 2]);
    assert_eq!(
        s.environment_vars,
        [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "1".to_owned())
        ]
    );
}

#[test]
fn post_processor_errors_are_all_reported() {
    let got = errors(&with_build(
        r#"
  post-processor "compress" {
    output = "disk.tar.xz"
  }
  post-processor "checksum" {
    only   = ["qemu.z"]
    except = ["qemu.m"]
  }
  post-processor "vagrant" {
    include              = ["missing.txt"]
    vagrantfile_template = "absent.tpl"
  }
  post-processor "shell-local" {
    inline = ["true"]
    script = "x.sh"
  }
  post-processors {
    name = "chain"
    post-processor "checksum" {}
  }
"#,
    ));
    for want in [
        "kiln cannot write `.xz` archives",
        "only one of `only` or `except` may be set",
        "`include`: file",
        "missing.txt` does not exist",
        "absent.tpl` does not exist",
        "only one of `inline`, `command`, `script` or `scripts` may be set",
        "`post-processors` holds only `post-processor` blocks, not the option `name`",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
}

/// Issue 15: `vagrant-catalog` follows `vagrant` in a chain; its required options and the forms
/// of `url` and `version` (what Vagrant accepts) are checked when the template loads.
#[test]
fn vagrant_catalog_options() {
    let text = with_build(
        r#"
  post-processors {
    post-processor "vagrant" {}
    post-processor "vagrant-catalog" {
      catalog     = "boxes/{{ .BuildName }}.json"
      url         = "https://boxes.example/{{ .Version }}/{{ .BoxName }}"
      version     = "2026.06.01"
      box_name    = "acme/m"
      description = "M, for tests"
    }
  }
"#,
    );
    let t = load_text(&text, &[]).expect("loads");
    let chain = &t.builds[0].runs[0].post_processors[0];
    let PostProcessor::VagrantCatalog(c) = &chain[1].kind else {
        panic!("vagrant-catalog second in the chain");
    };
    assert_eq!(
        c,
        &crate::postprocessor::vagrant_catalog::Config {
            catalog: "boxes/{{ .BuildName }}.json".into(),
            url: "https://boxes.example/{{ .Version }}/{{ .BoxName }}".into(),
            version: "2026.06.01".into(),
            box_name: Some("acme/m".into()),
            description: Some("M, for tests".into()),
            architecture: None,
        }
    );
    let got = errors(&with_build(
        r#"
  post-processor "vagrant-catalog" {
    url     = "boxes/{{ .BoxName }}"
    version = "v1"
  }
"#,
    ));
    for want in [
        "missing required option `catalog`",
        "`url` must be an https://, http:// or file:// URL, got `boxes/{{ .BoxName }}`",
        "`version` `v1` is not a version Vagrant accepts",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
}

/// Issue 13: a post-processor or provisioner of a type kiln does not have is kept as written
/// (its attributes as JSON), and named as something a selected build would run; `only` /
/// `except` naming a source the build does not build is a warning.
#[test]
fn issue_13_unknown_types_are_kept_and_named() {
    let t = load_text(
        &with_build(
            r#"
  provisioner "powershell" {
    inline  = ["Write-Host ${source.name}"]
    elevated_user = "vagrant"
    timeout = local.missing
  }
  provisioner "windows-restart" {
    except = ["qemu.m"]
  }
  post-processor "checksum" {
    only = ["qemu.z"]
  }
  post-processors {
    post-processor "artifice" {
      files = ["a"]
      nested { x = 1 }
    }
  }
  post-processor "vagrnat" {}
"#,
        ),
        &[],
    )
    .expect("loads");
    let warnings: Vec<&str> = t.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        ["`only` names `qemu.z`, which this build does not build (did you mean `qemu.m`?)"]
    );
    let named: Vec<String> = t
        .unrunnable
        .iter()
        .map(|d| {
            // Where kiln looked for a plugin (issue 17) depends on the machine's PATH.
            let (what, looked) = d
                .message
                .split_once(", and no plugin")
                .expect("places named");
            let dir = d.location.file.parent().expect("in a directory");
            assert!(
                looked.contains(&format!("kiln looked for `{}/kiln-plugin-", dir.display())),
                "{looked}"
            );
            let build = looked.rsplit_once(" (").map_or("", |(_, b)| b);
            format!("{}: {what} ({build} / {:?}", d.location.line, d.hint)
        })
        .collect();
    assert_eq!(
        named,
        [
            "10: provisioner type `powershell` is not built into kiln (selected build `qemu.m`) / Some(\"kiln's provisioners are `shell`, `file`, `shell-local`, `breakpoint`, `ansible` or `ansible-local`; a plugin runs any other type (an executable `kiln-plugin-powershell`, see docs/plugins.md); or keep this one away from the builds kiln runs with `only` / `except`\")",
            "22: post-processor type `artifice` is not built into kiln (selected build `qemu.m`) / Some(\"kiln's post-processors are `vagrant`, `checksum`, `manifest`, `compress`, `shell-local`, `docker-import`, `docker-tag`, `docker-push`, `docker-save` or `vagrant-catalog`; a plugin runs any other type (an executable `kiln-plugin-artifice`, see docs/plugins.md); or keep this one away from the builds kiln runs with `only` / `except`\")",
            "27: post-processor type `vagrnat` is not built into kiln (selected build `qemu.m`) / Some(\"did you mean `vagrant`?\")",
        ],
        "windows-restart is excepted for the only build"
    );
    let run = &t.builds[0].runs[0];
    let Provisioner::Unknown(ps) = &run.provisioners[0].kind else {
        panic!("unknown type kept")
    };
    assert_eq!(ps.block, "provisioner");
    assert_eq!(ps.type_name, "powershell");
    assert!(ps.at.ends_with("t.pkr.hcl:10:3"), "{}", ps.at);
    assert_eq!(
        serde_json::Value::Object(ps.attributes.clone()),
        serde_json::json!({"inline": ["Write-Host m"], "elevated_user": "vagrant"}),
        "what does not evaluate is left out"
    );
    let PostProcessor::Unknown(artifice) = &run.post_processors[0][0].kind else {
        panic!("unknown type kept")
    };
    assert_eq!(
        serde_json::Value::Object(artifice.attributes.clone()),
        serde_json::json!({"files": ["a"], "nested": [{"x": 1}]})
    );
}

/// The input options of issue 4: `iso_urls` in order, `file:` checksums, target path and
/// extension (relative paths are relative to the working directory, issue 13),
/// `iso_skip_cache` forcing `none`.
#[test]
fn input_options() {
    let text = r#"
source "qemu" "m" {
  iso_urls             = ["isos/a.iso", "https://example.org/a.iso"]
  iso_checksum         = "file:isos/SHA256SUMS"
  iso_target_path      = "downloads"
  iso_target_extension = ".QCOW2"
  ssh_username         = "root"
}
build { sources = ["source.qemu.m"] }
"#;
    let dir = dir_with(&[("t.pkr.hcl", text)]);
    let t = load(&dir.path().join("t.pkr.hcl"), &Inputs::default()).expect("loads");
    let root = std::env::current_dir().expect("working directory");
    let c = qemu_of(&t);
    assert_eq!(
        c.iso_urls,
        [
            root.join("isos/a.iso").to_string_lossy().into_owned(),
            "https://example.org/a.iso".to_owned()
        ]
    );
    assert_eq!(
        c.iso_checksum,
        Checksum::File {
            url: root.join("isos/SHA256SUMS").to_string_lossy().into_owned()
        }
    );
    assert_eq!(c.iso_target_path, Some(root.join("downloads")));
    assert_eq!(c.iso_target_extension, "qcow2");

    let t = load_text(
        &MINIMAL.replace(
            "iso_checksum = \"none\"",
            &format!(
                "iso_checksum = \"sha256:{}\"\n  iso_skip_cache = true",
                "a".repeat(64)
            ),
        ),
        &[],
    )
    .expect("loads");
    assert!(qemu_of(&t).iso_skip_cache);
    assert_eq!(qemu_of(&t).iso_checksum, Checksum::None, "as Packer");
}

#[test]
fn iso_url_and_iso_urls_are_exclusive() {
    let both = MINIMAL.replace(
        "iso_checksum",
        "iso_urls = [\"https://example.org/b.iso\"]\n  iso_checksum",
    );
    let e = errors(&both);
    assert!(
        e.contains("t.pkr.hcl:4:14: only one of `iso_url` or `iso_urls` must be specified"),
        "{e}"
    );
    let neither = MINIMAL.replace("iso_url      = \"https://example.org/a.iso\"", "");
    let e = errors(&neither);
    assert!(
        e.contains("missing required option `iso_url` (or `iso_urls`)"),
        "{e}"
    );
    let empty = MINIMAL.replace(
        "iso_url      = \"https://example.org/a.iso\"",
        "iso_urls = []",
    );
    assert!(errors(&empty).contains("`iso_urls` is empty"));
}

/// `disk_image` and friends, the seed CD options, and their cross-field rules (as Packer's).
#[test]
fn disk_image_and_cd_options() {
    let text = MINIMAL.replace(
        "iso_checksum = \"none\"",
        r##"iso_checksum = "none"
  disk_image = true
  use_backing_file = true
  skip_resize_disk = true
  disk_additional_size = ["1G", "512"]
  cd_files = ["seed/extra.txt"]
  cd_content = { "meta-data" = "instance-id: x", "user-data" = "#cloud-config" }
  cd_label = "cidata""##,
    );
    let t = load_text(&text, &[]).expect("loads");
    let c = qemu_of(&t);
    assert!(c.disk_image && c.use_backing_file && c.skip_resize_disk);
    assert!(c.skip_compaction, "a backing file forces skip_compaction");
    assert_eq!(c.disk_additional_size, [1 << 30, 512 << 20]);
    assert!(
        c.cd_files[0].ends_with("seed/extra.txt"),
        "{:?}",
        c.cd_files
    );
    assert_eq!(c.cd_content["meta-data"], "instance-id: x");
    assert_eq!(c.cd_label, "cidata");

    let e = errors(&MINIMAL.replace(
        "iso_checksum = \"none\"",
        "iso_checksum = \"none\"\n  use_backing_file = true\n  skip_resize_disk = true\n  cd_content = { \"../x\" = \"y\" }",
    ));
    assert!(
        e.contains("`use_backing_file` can only be used with `disk_image = true`"),
        "{e}"
    );
    assert!(
        e.contains("`skip_resize_disk` can only be used when `disk_image` is true"),
        "{e}"
    );
    assert!(
        e.contains("`../x` must be a relative path inside the CD"),
        "{e}"
    );
}

/// `override` re-reads a provisioner for one source, by its name (issue 6).
#[test]
fn provisioner_override_per_source() {
    let text = with_build(
        r#"
  provisioner "shell" {
    inline = ["echo default"]
    override = {
      m = {
        inline           = ["echo for m"]
        environment_vars = ["X=1"]
      }
    }
  }
"#,
    );
    let t = load_text(&text, &[]).expect("loads");
    let p = &t.builds[0].runs[0].provisioners[0];
    let Provisioner::Shell(default) = p.kind_for("qemu.other") else {
        panic!("shell")
    };
    assert_eq!(
        default.source,
        ShellSource::Inline(vec!["echo default".into()])
    );
    let Provisioner::Shell(m) = p.kind_for("qemu.m") else {
        panic!("shell")
    };
    assert_eq!(m.source, ShellSource::Inline(vec!["echo for m".into()]));
    assert_eq!(m.environment_vars, [("X".to_owned(), "1".to_owned())]);

    let got = errors(&with_build(
        r#"
  provisioner "shell" {
    inline   = ["true"]
    override = {
      nope = { inline = ["x"] }
      m    = { inlin = ["x"], remote_folder = 3 }
    }
  }
"#,
    ));
    for want in [
        "`override` names `nope`, which this build does not build",
        "`override.m.inlin` is not an option of provisioner `shell`",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
}

/// A template declaring `var.v` with `decl`.
fn shows_var(decl: &str) -> String {
    format!("variable \"v\" {{\n{decl}\n}}\n{MINIMAL}")
}

/// The final value of `var.v`, as compact HCL (strings bare).
fn vm_name(t: &Template) -> String {
    let v = t
        .variables
        .iter()
        .find(|v| v.name == "v")
        .expect("declared");
    match v.value.as_ref().expect("has a value") {
        hcl::Value::String(s) => s.clone(),
        other => serde_json::to_string(other).expect("json"),
    }
}

#[test]
fn variable_precedence_default_env_auto_file_var_file_cli() {
    let text = shows_var("  type = string\n  default = \"default\"");
    let dir = dir_with(&[
        ("t.pkr.hcl", text.as_str()),
        ("a.auto.pkrvars.hcl", "v = \"auto-a\"\n"),
        ("b.auto.pkrvars.hcl", "v = \"auto-b\"\n"),
        ("x.pkrvars.hcl", "v = \"file-x\"\n"),
        ("y.pkrvars.json", "{\"v\": \"file-y\"}\n"),
    ]);
    let env = vec![("v".to_owned(), "env".to_owned())];
    let file = dir.path().join("t.pkr.hcl");
    let table: Vec<(&str, Inputs, &str)> = vec![
        ("default only", Inputs::default(), "default"),
        (
            "env beats default",
            Inputs {
                env: env.clone(),
                ..Inputs::default()
            },
            "env",
        ),
        (
            "var file beats env",
            Inputs {
                env: env.clone(),
                var_files: vec![dir.path().join("x.pkrvars.hcl")],
                ..Inputs::default()
            },
            "file-x",
        ),
        (
            "later var file wins, JSON too",
            Inputs {
                var_files: vec![
                    dir.path().join("x.pkrvars.hcl"),
                    dir.path().join("y.pkrvars.json"),
                ],
                ..Inputs::default()
            },
            "file-y",
        ),
        (
            "-var beats everything",
            Inputs {
                env: env.clone(),
                var_files: vec![dir.path().join("x.pkrvars.hcl")],
                vars: vec![("v".into(), "cli".into())],
                ..Inputs::default()
            },
            "cli",
        ),
    ];
    for (reason, inputs, want) in table {
        let t = load(&file, &inputs).expect(reason);
        assert_eq!(vm_name(&t), want, "{reason}");
    }
    // A directory loads its auto files in name order (b after a), below -var-file.
    let t = load(dir.path(), &Inputs::default()).expect("dir loads");
    assert_eq!(vm_name(&t), "auto-b", "auto files in name order");
    let inputs = Inputs {
        var_files: vec![dir.path().join("x.pkrvars.hcl")],
        ..Inputs::default()
    };
    let t = load(dir.path(), &inputs).expect("dir loads");
    assert_eq!(vm_name(&t), "file-x", "-var-file beats auto files");
}

#[test]
fn complex_types_from_every_input() {
    let text = shows_var(
        "  type = object({ cpus = number, disks = list(string), tag = optional(string) })\n  default = { cpus = \"2\", disks = [\"a\"] }",
    );
    let t = load_text(&text, &[]).expect("default converts");
    assert_eq!(vm_name(&t), r#"{"cpus":2,"disks":["a"],"tag":null}"#);
    let t = load_text(&text, &[("v", "{ cpus = 4, disks = [], extra = 1 }")]).expect("-var parses");
    assert_eq!(
        vm_name(&t),
        r#"{"cpus":4,"disks":[],"tag":null}"#,
        "extra attribute dropped"
    );
    let e = load_text(&text, &[("v", "{ cpus = 4 }")]).expect_err("missing attribute");
    assert_eq!(
        e,
        "command line: -var `v`: the value does not fit type object({cpus = number, disks = list(string), tag = optional(string)}): attribute `disks` is required"
    );
    let e = load_text(&text, &[("v", "{ cpus = ")]).expect_err("not HCL");
    assert!(
        e.starts_with("command line: -var `v`: the value is not a valid object("),
        "{e}"
    );
    let list = shows_var("  type = list(string)");
    let dir = dir_with(&[
        ("t.pkr.hcl", list.as_str()),
        ("v.pkrvars.hcl", "v = [\"x\", 1]\nunknown_one = 2\n"),
    ]);
    let inputs = Inputs {
        var_files: vec![dir.path().join("v.pkrvars.hcl")],
        env: vec![("v".into(), "[\"from-env\"]".into())],
        ..Inputs::default()
    };
    let t = load(&dir.path().join("t.pkr.hcl"), &inputs).expect("loads");
    assert_eq!(vm_name(&t), r#"["x","1"]"#);
    let warned: Vec<String> = t.warnings.iter().map(|w| w.render(None)).collect();
    assert_eq!(
        warned,
        [format!(
            "{}:2:1: variable `unknown_one` is set here but not declared in the template",
            dir.path().join("v.pkrvars.hcl").display()
        )],
        "an undeclared var-file key warns, as in Packer"
    );
    let bool_var = shows_var("  type = bool");
    let inputs = Inputs {
        env: vec![
            ("v".into(), "true".into()),
            ("other".into(), "ignored".into()),
        ],
        ..Inputs::default()
    };
    let dir = dir_with(&[("t.pkr.hcl", bool_var.as_str())]);
    let t = load(&dir.path().join("t.pkr.hcl"), &inputs).expect("PKR_VAR_ bool");
    assert_eq!(vm_name(&t), "true");
}

#[test]
fn var_file_problems_are_located() {
    let text = shows_var("  type = number");
    let dir = dir_with(&[
        ("t.pkr.hcl", text.as_str()),
        ("bad.pkrvars.hcl", "v = \"many\"\nvariable \"w\" {}\n"),
        ("syntax.pkrvars.hcl", "v = = 1\n"),
    ]);
    let inputs = |f: &str| Inputs {
        var_files: vec![dir.path().join(f)],
        ..Inputs::default()
    };
    let e = load(&dir.path().join("t.pkr.hcl"), &inputs("bad.pkrvars.hcl"))
        .map_err(|e| rendered(&e, dir.path()))
        .expect_err("bad var file");
    assert_eq!(
        e,
        "bad.pkrvars.hcl:1:1: the value of variable `v` does not fit its type number: expected a number, found string\n 1 | v = \"many\"\n   | ^\n\nbad.pkrvars.hcl:2:1: a var file cannot declare variables: move this block into a `.pkr.hcl` file\n 2 | variable \"w\" {}\n   | ^"
    );
    let e = load(&dir.path().join("t.pkr.hcl"), &inputs("syntax.pkrvars.hcl"))
        .map_err(|e| rendered(&e, dir.path()))
        .expect_err("syntax");
    assert!(e.starts_with("syntax.pkrvars.hcl:1:5: syntax error"), "{e}");
    let missing = load(&dir.path().join("t.pkr.hcl"), &inputs("nope.pkrvars.hcl"));
    assert!(
        matches!(missing, Err(Error::ReadFile { .. })),
        "{missing:?}"
    );
}

#[test]
fn validation_blocks() {
    let text = shows_var(
        "  type = number\n  default = 1\n  validation {\n    condition = var.v >= 2\n    error_message = \"At least 2 CPUs are needed.\"\n  }",
    );
    let e = load_text(&text, &[]).expect_err("fails validation");
    assert_eq!(
        e,
        "t.pkr.hcl:5:17: invalid value for variable `v`: At least 2 CPUs are needed.\n 5 |     condition = var.v >= 2\n   |                 ^\nhint: this validation condition is false for the value given"
    );
    load_text(&text, &[("v", "4")]).expect("passes validation");
    let e = load_text(
        &text.replace("At least 2 CPUs are needed.", "too few"),
        &[("v", "4")],
    )
    .expect_err("not a sentence");
    assert!(e.contains("`error_message` must be a sentence"), "{e}");
    let e = load_text(&text.replace("var.v >= 2", "var.other"), &[("v", "4")])
        .expect_err("only the variable itself");
    assert!(e.contains("undeclared variable `var.other`"), "{e}");
}

#[test]
fn local_blocks_and_sensitive_locals() {
    let text = format!(
        "local \"pw\" {{\n  expression = \"se${{\"cret\"}}-word\"\n  sensitive = true\n}}\nlocals {{\n  shown = \"x-${{local.pw}}\"\n}}\n{}",
        MINIMAL.replace("iso_checksum = \"none\"", "iso_checksum = local.shown")
    );
    let e = load_text(&text, &[]).expect_err("bad checksum");
    assert!(!e.contains("secret-word"), "{e}");
    assert!(e.contains("x-<sensitive>"), "{e}");
}

#[test]
fn packer_block_and_unsupported_blocks() {
    let text = format!(
        "packer {{\n  required_version = \">= 1.9\"\n  required_plugins {{\n    qemu = {{ version = \">= 1.1\", source = \"github.com/hashicorp/qemu\" }}\n  }}\n}}\n{MINIMAL}"
    );
    let t = load_text(&text, &[]).expect("packer block accepted");
    assert_eq!(t.warnings.len(), 1, "said once: {:?}", t.warnings);
    assert!(t.warnings[0].message.contains("built in"));
}

#[test]
fn inspect_masks_sensitive_values() {
    let text = format!(
        "variable \"pw\" {{\n  type = string\n  sensitive = true\n  default = \"hunter22\"\n}}\nvariable \"n\" {{\n  type = list(number)\n  default = [1, 2]\n  description = \"numbers, two\"\n}}\n{}",
        MINIMAL.replace(
            "build { sources = [\"source.qemu.m\"] }",
            "build {\n  name = \"b\"\n  description = \"d\"\n  sources = [\"source.qemu.m\"]\n  provisioner \"shell\" {\n    inline = [\"echo ${var.pw}\"]\n  }\n  post-processor \"checksum\" {}\n  post-processors {\n    post-processor \"vagrant\" {}\n    post-processor \"compress\" {}\n  }\n}"
        )
    );
    let t = load_text(&text, &[]).expect("loads");
    let human = inspect::human(&t);
    assert_eq!(
        human,
        "kiln inspect\n\n> input-variables:\n\nvar.n: [1, 2]\nvar.pw: <sensitive>\n\n> sources:\n\n  qemu.m\n\n> builds:\n\n  > b:\n\n    description: d\n\n    sources:\n\n      qemu.m\n\n    provisioners:\n\n      shell\n\n    post-processors:\n\n      0:\n        checksum\n      1:\n        vagrant\n        compress\n"
    );
    let machine = inspect::machine_readable(&t, 7);
    assert_eq!(
        machine,
        "7,,template-variable,n,[1%!(PACKER_COMMA) 2],list(number),0\n7,,template-variable,pw,<sensitive>,string,1\n7,,template-builder,qemu.m,qemu\n7,b,template-build-source,qemu.m\n7,b,template-provisioner,shell\n7,b,template-postprocessor,0,checksum\n7,b,template-postprocessor,1,vagrant\n7,b,template-postprocessor,1,compress\n"
    );
}

#[test]
fn build_blocks_rename_and_override_sources() {
    let text = MINIMAL.replace(
        "build { sources = [\"source.qemu.m\"] }",
        r#"build {
  name = "golden"
  sources = ["source.qemu.m"]
  source "qemu.m" {
    name = "big"
    memory = 4096
    vm_name = "v${packer.version}"
  }
  provisioner "shell" {
    inline = ["echo ${build.Host}:${build.Port} ${source.name} ${build.SSHPublicKey}"]
    only = ["qemu.big"]
  }
}"#,
    );
    let t = load_text(&text, &[]).expect("loads");
    let b = &t.builds[0];
    assert_eq!(b.name.as_deref(), Some("golden"));
    assert_eq!(keys(b), ["qemu.m", "qemu.big"]);
    let SourceConfig::Qemu(big) = &b.runs[1].source else {
        panic!("not qemu")
    };
    assert_eq!(big.memory, 4096, "override applied");
    assert_eq!(big.vm_name, format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(big.output_directory, PathBuf::from("output-big"), "renamed");
    let SourceConfig::Qemu(m) = &b.runs[0].source else {
        panic!("not qemu")
    };
    assert_eq!(
        m.memory,
        qemu_of(&t).memory,
        "the listed source is untouched"
    );
    assert!(
        b.runs[0].provisioners.is_empty(),
        "`only` keeps the provisioner away from qemu.m"
    );
    let Provisioner::Shell(shell) = &b.runs[1].provisioners[0].kind else {
        panic!("not shell")
    };
    assert_eq!(
        shell.source,
        ShellSource::Inline(vec![
            "echo {{ .Host }}:{{ .Port }} big {{ .SSHPublicKey }}".into()
        ]),
        "build.* stand for placeholders the build fills in; source.name is the source's"
    );
}

#[test]
fn build_block_source_errors() {
    let text = MINIMAL.replace(
        "build { sources = [\"source.qemu.m\"] }",
        r#"build {
  sources = ["source.qemu.m"]
  # Built twice: the block is not read, so its options are not checked.
  source "qemu.m" {
    memroy = 1
  }
  source "qemu.nope" {}
  provisioner "shell" {
    inline = ["${build.Hots}"]
  }
}"#,
    );
    let e = errors(&text);
    assert_eq!(
        e,
        "t.pkr.hcl:10:3: source `qemu.m` is built twice by this build\n 10 |   source \"qemu.m\" {\n    |   ^\nhint: give one of them another `name`\n\nt.pkr.hcl:13:3: unknown source `qemu.nope`\n 13 |   source \"qemu.nope\" {}\n    |   ^\nhint: did you mean `source.qemu.m`?\n\nt.pkr.hcl:15:18: unknown `build.Hots`\n 15 |     inline = [\"${build.Hots}\"]\n    |                  ^\nhint: did you mean `build.Host`?"
    );
    let outside = errors(&MINIMAL.replace("ssh_username = \"root\"", "ssh_username = build.User"));
    assert!(
        outside.contains("`build.User` can only be used inside a `build` block"),
        "{outside}"
    );
}

/// Every kind in the template's table reads into the builder config of the same type name, so
/// the parser and the dispatch agree (issue 16).
#[test]
fn each_source_kind_reads_into_its_builder() {
    let text = r#"
source "qemu" "q" {
  iso_url      = "https://example.org/a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}
source "null" "n" {
  communicator = "none"
}
source "docker" "d" {
  image  = "debian:12"
  commit = true
}
build { sources = ["source.qemu.q", "source.null.n", "source.docker.d"] }
"#;
    let t = load_text(text, &[]).expect("loads");
    let got: Vec<(&str, &str)> = t.sources.iter().map(|s| s.key()).collect();
    assert_eq!(got, [("qemu", "q"), ("null", "n"), ("docker", "d")]);
    let kinds: Vec<&str> = super::sources::KINDS.iter().map(|k| k.type_name).collect();
    assert_eq!(kinds, ["qemu", "docker", "null", "amazon-ebs"]);
}

/// Serves `status` with `content_type` and `body` to every request on 127.0.0.1 until the
/// returned guard is dropped; the URL of the server.
fn http_answer(status: &str, content_type: &str, body: &str) -> (String, ServerGuard) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}/v");
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nX-Kiln: a\r\nX-Kiln: b\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (url, ServerGuard(stop, addr, Some(thread)))
}

/// Stops the server of [`http_answer`] when dropped (a last connection wakes it).
struct ServerGuard(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::net::SocketAddr,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.1);
        if let Some(t) = self.2.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn issue_13_null_data_source_passes_its_input() {
    // A local feeds the data source, whose output feeds another local.
    let text = format!(
        "data \"null\" \"n\" {{\n  input = {{ os = local.os }}\n}}\nlocals {{\n  os = \"debian\"\n  name = \"${{data.null.n.output.os}}-12\"\n}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  vm_name = local.name"
        )
    );
    let t = load_text(&text, &[]).expect("loads");
    assert_eq!(qemu_of(&t).vm_name, "debian-12");
}

#[test]
fn issue_13_http_data_source_reads_a_local_server() {
    let (url, _server) = http_answer("200 OK", "text/plain; charset=utf-8", "12.7");
    let text = format!(
        "data \"http\" \"release\" {{\n  url = \"{url}\"\n  request_headers = {{ Accept = \"text/plain\" }}\n}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  vm_name = \"debian-${data.http.release.body}-${data.http.release.request_headers[\"X-Kiln\"]}\""
        )
    );
    let t = load_text(&text, &[]).expect("loads");
    assert_eq!(qemu_of(&t).vm_name, "debian-12.7-a, b");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn issue_13_http_data_source_failures_are_located() {
    let (url, _server) = http_answer("404 Not Found", "text/plain", "no");
    let text = format!(
        "data \"http\" \"release\" {{\n  url = \"{url}\"\n}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  vm_name = data.http.release.body"
        )
    );
    let e = errors(&text);
    assert!(
        e.starts_with("t.pkr.hcl:1:1: data source `data.http.release` failed: Request to"),
        "{e}"
    );
    assert!(e.contains("answered with HTTP status 404"), "{e}");
    // The use of the failed data source is not reported again.
    assert_eq!(e.matches("t.pkr.hcl:").count(), 1, "{e}");

    let (url, _server) = http_answer("200 OK", "application/octet-stream", "x");
    let t = load_text(
        &format!("data \"http\" \"bin\" {{\n  url = \"{url}\"\n}}\n{MINIMAL}"),
        &[],
    )
    .expect("a binary answer still loads");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(
        t.warnings[0].message.contains("is not text"),
        "{:?}",
        t.warnings
    );

    let bad = errors(&format!(
        "data \"http\" \"x\" {{\n  method = \"FETCH\"\n}}\n{MINIMAL}"
    ));
    assert!(bad.contains("missing required option `url`"), "{bad}");
    assert!(bad.contains("`method` must be one of"), "{bad}");
}

#[test]
fn issue_13_unknown_data_source_is_a_warning_and_try_catches_its_use() {
    let text = format!(
        "data \"host-info\" \"this\" {{}}\nlocals {{\n  host_os = try(data.host-info.this.os_type, \"unknown\")\n  known = can(data.host-info.this.os_type)\n}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  vm_name = \"${local.host_os}-${local.known}\""
        )
    );
    let t = load_text(&text, &[]).expect("loads");
    assert_eq!(qemu_of(&t).vm_name, "unknown-false");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(
        t.warnings[0]
            .message
            .contains("data source type `host-info` is not built into kiln"),
        "{:?}",
        t.warnings
    );
    let e = errors(&format!(
        "data \"host-info\" \"this\" {{}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  vm_name = data.host-info.this.os_type"
        )
    ));
    assert!(
        e.contains(
            "`data.host-info.this` has no value: kiln does not have the `host-info` data source"
        ),
        "{e}"
    );
    assert!(
        e.contains("hint: write the use as `try(data.…, FALLBACK)`"),
        "{e}"
    );
    let undeclared = errors(&format!(
        "data \"null\" \"n\" {{\n  input = 1\n}}\n{}",
        MINIMAL.replace(
            "ssh_username = \"root\"",
            "ssh_username = \"root\"\n  memory = data.null.m.output"
        )
    ));
    assert!(
        undeclared.contains("undeclared data source `data.null.m`")
            && undeclared.contains("did you mean `data.null.n`?"),
        "{undeclared}"
    );
}

#[test]
fn issue_13_data_sources_in_a_cycle_are_reported() {
    let e = errors(&format!(
        "data \"null\" \"n\" {{\n  input = local.a\n}}\nlocals {{\n  a = data.null.n.output\n}}\n{MINIMAL}"
    ));
    assert!(
        e.contains("data source `data.null.n` depends on itself"),
        "{e}"
    );
    assert!(e.contains("local `a` depends on itself"), "{e}");
    assert!(
        e.contains("these locals and data sources refer to each other in a cycle"),
        "{e}"
    );
}

/// Issue 14: the qemu options kiln now reads, each with Packer's name, default and rule.
#[test]
fn issue_14_qemu_options() {
    use crate::builder::qemu::config::Config;
    type Check = fn(&Config) -> bool;
    let table: &[(&str, Check, &str)] = &[
        (
            "cdrom_interface = \"ide\"",
            |c| c.cdrom_interface.as_deref() == Some("ide"),
            "cdrom_interface",
        ),
        (
            "cdrom_interface = \"\"",
            |c| c.cdrom_interface.is_none(),
            "empty cdrom_interface: the machine's default",
        ),
        ("disable_vnc = true", |c| c.disable_vnc, "disable_vnc"),
        (
            "vnc_use_password = true",
            |c| {
                c.vnc_use_password
                    && c.vnc_password.is_none()
                    && c.qmp_socket_path.as_deref() == Some(Path::new("output-m/packer-m.monitor"))
            },
            "vnc_use_password: random password, QMP socket on as in Packer",
        ),
        (
            "vnc_use_password = true\n vnc_password = \"s3cret\"",
            |c| c.vnc_password.as_ref().map(|p| p.expose()) == Some("s3cret"),
            "vnc_password kept",
        ),
        (
            "qmp_enable = true\n qmp_socket_path = \"/run/q.sock\"",
            |c| c.qmp_socket_path.as_deref() == Some(Path::new("/run/q.sock")),
            "qmp_socket_path",
        ),
        (
            "qmp_enable = true\n vm_name = \"deb\"\n output_directory = \"out\"",
            |c| c.qmp_socket_path.as_deref() == Some(Path::new("out/deb.monitor")),
            "qmp socket default beside the disk",
        ),
        (
            "efi_drop_efivars = true",
            |c| c.efi_drop_efivars,
            "efi_drop_efivars",
        ),
        (
            "boot_keygroup_interval = \"250ms\"",
            |c| c.boot_keygroup_interval == Some(std::time::Duration::from_millis(250)),
            "boot_keygroup_interval",
        ),
        (
            "http_interface = \"lo\"\n http_network_protocol = \"tcp4\"",
            |c| c.http_interface.as_deref() == Some("lo"),
            "http_interface",
        ),
        (
            "ssh_handshake_attempts = 3\n ssh_keep_alive_interval = \"-1s\"",
            |c| {
                c.ssh.as_ref().is_some_and(|s| {
                    s.options.handshake_attempts == Some(3)
                        && s.options.keep_alive_interval.is_none()
                })
            },
            "ssh_handshake_attempts; negative keep-alive disables it",
        ),
        (
            "ssh_ciphers = [\"aes128-ctr\", \"chacha20-poly1305@openssh.com\"]\n ssh_key_exchange_algorithms = [\"curve25519-sha256\"]",
            |c| {
                c.ssh.as_ref().is_some_and(|s| {
                    s.options.ciphers == ["aes128-ctr", "chacha20-poly1305@openssh.com"]
                        && s.options.kex == ["curve25519-sha256"]
                        && s.options.keep_alive_interval == Some(std::time::Duration::from_secs(5))
                })
            },
            "ssh_ciphers and ssh_key_exchange_algorithms; keep-alive default 5s",
        ),
        (
            "temporary_key_pair_type = \"ecdsa\"\n temporary_key_pair_bits = 384\n temporary_key_pair_name = \"packer_x\"",
            |c| {
                c.ssh.as_ref().is_some_and(|s| {
                    let k = &s.options.temporary_key_pair;
                    k.kind == crate::communicator::ssh::KeyKind::Ecdsa
                        && k.bits == Some(384)
                        && k.name == "packer_x"
                })
            },
            "temporary_key_pair_*",
        ),
        (
            "boot_keygroup_interval = \"0s\"",
            |c| c.boot_keygroup_interval.is_none(),
            "zero: no group pause",
        ),
        (
            "ssh_host_port_min = 3000\n ssh_host_port_max = 3010",
            |c| {
                c.ssh
                    .as_ref()
                    .is_some_and(|s| (s.host_port_min, s.host_port_max) == (3000, 3010))
            },
            "ssh_host_port_* are host_port_*'s old names",
        ),
        (
            "ssh_host_port_min = 3000\n host_port_min = 2500\n host_port_max = 2600",
            |c| {
                c.ssh
                    .as_ref()
                    .is_some_and(|s| (s.host_port_min, s.host_port_max) == (2500, 2600))
            },
            "host_port_* win over their old names",
        ),
        (
            "skip_nat_mapping = true\n ssh_host = \"192.0.2.9\"",
            |c| c.skip_nat_mapping && c.ssh_host() == "192.0.2.9",
            "skip_nat_mapping and ssh_host",
        ),
        (
            "qemu_img_args {\n create = [\"-o\", \"preallocation=metadata\"]\n resize = [\"--shrink\"]\n }",
            |c| {
                c.qemu_img_args.create == ["-o", "preallocation=metadata"]
                    && c.qemu_img_args.resize == ["--shrink"]
                    && c.qemu_img_args.convert.is_empty()
            },
            "qemu_img_args block",
        ),
    ];
    for (extra, check, reason) in table {
        match load_text(&minimal_with(extra), &[]) {
            Ok(t) => assert!(check(qemu_of(&t)), "{reason}"),
            Err(e) => panic!("{reason}: {e}"),
        }
    }
    let default = load_text(MINIMAL, &[]).expect("loads");
    let c = qemu_of(&default);
    assert!(c.qmp_socket_path.is_none() && !c.vnc_use_password && !c.disable_vnc);
    assert_eq!(c.ssh_host(), "127.0.0.1");
}

/// Issue 14: the rules of those options, reported at the option.
#[test]
fn issue_14_qemu_option_errors() {
    let rows = [
        (
            "cdrom_interface = \"floppy\"",
            "unrecognized `cdrom_interface` `floppy`",
        ),
        (
            "vnc_password = \"123456789\"",
            "`vnc_password` is 9 bytes long; VNC passwords have at most 8",
        ),
        (
            "http_interface = \"eth0\"\n http_bind_address = \"0.0.0.0\"",
            "either `http_interface` or `http_bind_address` can be specified",
        ),
        (
            "http_network_protocol = \"unix\"",
            "over QEMU's IPv4 user network",
        ),
        (
            "http_network_protocol = \"tcp4\"\n http_bind_address = \"::\"",
            "needs an IPv4 `http_bind_address`",
        ),
        (
            "ssh_ciphers = [\"arcfour\"]",
            "kiln's SSH client has no `arcfour`",
        ),
        (
            "ssh_key_exchange_algorithms = [\"diffie-hellman-group99\"]",
            "kiln's SSH client has no `diffie-hellman-group99`",
        ),
        (
            "temporary_key_pair_type = \"dsa\"",
            "OpenSSH no longer accepts DSA keys",
        ),
        (
            "temporary_key_pair_type = \"rsa\"\n temporary_key_pair_bits = 1024",
            "1024 bits is not a size of rsa key",
        ),
        (
            "qmp_socket_path = \"/run/q.sock\"",
            "`qmp_socket_path` needs `qmp_enable = true`",
        ),
        (
            "disable_vnc = true\n boot_command = [\"<enter>\"]",
            "a boot command cannot be used when VNC is disabled",
        ),
        (
            "vnc_use_password = true\n boot_key_driver = \"vnc\"",
            "with `vnc_use_password`, leave `boot_key_driver`",
        ),
        (
            "qemu_img_args {\n create = \"-o\"\n }",
            "`create` expects a list",
        ),
        (
            "qemu_img_args {\n shrink = [\"x\"]\n }",
            "unknown option `shrink`",
        ),
        (
            "qemu_img_args {\n }\n qemu_img_args {\n }",
            "block `qemu_img_args` is given twice",
        ),
        (
            "ssh_host_port_min = 3000\n ssh_host_port_max = 2000",
            "`ssh_host_port_min` (3000) is greater than `ssh_host_port_max` (2000)",
        ),
    ];
    for (extra, want) in rows {
        let e = errors(&minimal_with(extra));
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.contains("t.pkr.hcl:"), "{extra}: names file:line: {e}");
    }
}

/// Issue 14 (devices): the floppy, TPM and remaining qemu options, as read from a template.
#[test]
fn issue_14_device_options() {
    let files = tempfile::tempdir().expect("temp dir");
    let f = files.path();
    std::fs::write(f.join("Autounattend.xml"), "<x/>").expect("write");
    std::fs::create_dir(f.join("drivers")).expect("mkdir");
    let t = load_text(
        &minimal_with(&format!(
            "floppy_files = [\"{0}/Autounattend.xml\", \"{0}/*.ps1\"]\n floppy_dirs = [\"{0}/drivers\"]\n floppy_content = {{ \"/a/b.cfg\" = \"x\" }}\n floppy_label = \"WINSETUP\"\n run_once = true\n vtpm = true\n use_tpm1 = true\n tpm_device_type = \"tpm-crb\"",
            f.display()
        )),
        &[],
    )
    .expect("loads");
    let c = qemu_of(&t);
    assert_eq!(
        c.floppy_files,
        [f.join("Autounattend.xml"), f.join("*.ps1")],
        "paths kept, patterns expanded when the floppy is made"
    );
    assert_eq!(c.floppy_dirs, [f.join("drivers")]);
    assert_eq!(
        c.floppy_content.get("a/b.cfg").map(String::as_str),
        Some("x"),
        "a leading / is the floppy's root"
    );
    assert_eq!(c.floppy_label, "WINSETUP");
    assert!(c.run_once);
    assert!(c.vtpm && c.use_tpm1 && c.tpm_device_type == "tpm-crb");
    let bridged = load_text(&minimal_with("net_bridge = \"br0\""), &[]).expect("loads");
    let c = qemu_of(&bridged);
    assert_eq!(c.net_bridge.as_deref(), Some("br0"));
    assert_eq!(
        c.http_interface.as_deref(),
        Some("br0"),
        "as Packer, {{ .HTTPIP }} is the bridge's address: the server listens there"
    );
    let bound = load_text(
        &minimal_with("net_bridge = \"br0\"\n http_bind_address = \"0.0.0.0\""),
        &[],
    )
    .expect("loads");
    assert_eq!(
        qemu_of(&bound).http_interface,
        None,
        "an explicit bind wins"
    );
    let default = load_text(MINIMAL, &[]).expect("loads");
    let c = qemu_of(&default);
    assert_eq!(c.floppy_label, "packer", "Packer's default label");
    assert!(c.floppy_files.is_empty() && !c.run_once);
    assert!(
        !c.vtpm && !c.use_tpm1 && c.tpm_device_type == "tpm-tis",
        "Packer's defaults"
    );
}

/// Issue 14 (devices): their rules, reported at the option.
#[test]
fn issue_14_device_option_errors() {
    let rows = [
        (
            "floppy_files = [\"/nonexistent/Autounattend.xml\"]",
            "`/nonexistent/Autounattend.xml` does not exist",
        ),
        (
            "floppy_dirs = [\"/nonexistent/drivers\"]",
            "`/nonexistent/drivers` does not exist",
        ),
        ("floppy_files = [\"/tmp/[x\"]", "is not a valid pattern"),
        (
            "floppy_content = { \"../x\" = \"y\" }",
            "must be a path inside the floppy",
        ),
        (
            "floppy_content = { \"a*\" = \"y\" }",
            "glob patterns are not allowed",
        ),
        (
            "floppy_label = \"TWELVE_CHARS\"",
            "a FAT volume label is at most 11 ASCII characters",
        ),
        ("run_once = \"yes\"", "`run_once`"),
        (
            "net_bridge = \"br0,helper=/x\"",
            "is not a Linux interface name",
        ),
        (
            "vtpm = true\n tpm_device_type = \"tpm-xyz\"",
            "`tpm_device_type` must be one of `tpm-tis`",
        ),
        (
            "communicator = \"winrm\"\n winrm_username = \"Administrator\"",
            "kiln reaches Windows guests over SSH (OpenSSH Server), not WinRM",
        ),
        (
            "communicator = \"winrm\"\n winrm_port = \"x\"",
            "`winrm_port`",
        ),
    ];
    for (extra, want) in rows {
        let e = errors(&minimal_with(extra));
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.contains("t.pkr.hcl:"), "{extra}: names file:line: {e}");
    }
    let e = errors(&MINIMAL.replace(
        "ssh_username = \"root\"",
        "communicator = \"winrm\"\n  winrm_username = \"vagrant\"",
    ));
    assert!(e.contains("hint: install and start OpenSSH Server"), "{e}");
    assert!(
        !e.contains("missing required option"),
        "no SSH options asked for: {e}"
    );
    assert!(!e.contains("not supported by kiln yet"), "{e}");
}

/// Issue 14 (SSH part): the communicator options, read into the SSH settings.
#[test]
fn issue_14_ssh_options() {
    use crate::communicator::ssh::{SshConfig, TransferMethod};
    type Check = fn(&SshConfig) -> bool;
    let table: &[(&str, Check, &str)] = &[
        (
            "",
            |s| s.options.transfer == TransferMethod::Exec,
            "unset: kiln's exec transfer",
        ),
        (
            "ssh_file_transfer_method = \"scp\"",
            |s| s.options.transfer == TransferMethod::Scp,
            "scp",
        ),
        (
            "ssh_file_transfer_method = \"sftp\"",
            |s| s.options.transfer == TransferMethod::Sftp,
            "sftp",
        ),
        (
            "",
            |s| {
                let o = &s.options;
                !o.agent_auth
                    && o.agent_forwarding
                    && o.bastion.is_none()
                    && o.proxy.is_none()
                    && o.local_tunnels.is_empty()
            },
            "defaults: no agent auth, agent forwarded (Packer), direct connection",
        ),
        (
            "ssh_agent_auth = true\n ssh_keypair_name = \"deploy\"\n ssh_disable_agent_forwarding = true",
            |s| {
                s.options.agent_auth
                    && s.options.keypair_name.as_deref() == Some("deploy")
                    && !s.options.agent_forwarding
            },
            "agent auth, key name, forwarding off",
        ),
        (
            "ssh_bastion_host = \"jump.example\"\n ssh_bastion_password = \"pw\"",
            |s| {
                s.options.bastion.as_ref().is_some_and(|b| {
                    b.host == "jump.example"
                        && b.port == 22
                        && b.username == s.username
                        && b.password.as_ref().map(|p| p.expose()) == Some("pw")
                        && !b.interactive
                })
            },
            "bastion: port 22, ssh_username by default",
        ),
        (
            "ssh_bastion_host = \"j\"\n ssh_bastion_port = 2200\n ssh_bastion_username = \"ops\"\n ssh_bastion_agent_auth = true\n ssh_bastion_interactive = true\n ssh_bastion_password = \"x\"",
            |s| {
                s.options.bastion.as_ref().is_some_and(|b| {
                    b.port == 2200 && b.username == "ops" && b.agent_auth && b.interactive
                })
            },
            "bastion options",
        ),
        (
            "ssh_proxy_host = \"socks.example\"",
            |s| {
                s.options.proxy.as_ref().is_some_and(|p| {
                    p.host == "socks.example" && p.port == 1080 && p.username.is_none()
                })
            },
            "SOCKS proxy: port 1080",
        ),
        (
            "ssh_proxy_host = \"p\"\n ssh_proxy_port = 9050\n ssh_proxy_username = \"u\"\n ssh_proxy_password = \"s\"",
            |s| {
                s.options.proxy.as_ref().is_some_and(|p| {
                    p.port == 9050
                        && p.username.as_deref() == Some("u")
                        && p.password.as_ref().map(|p| p.expose()) == Some("s")
                })
            },
            "SOCKS proxy with credentials",
        ),
        (
            "ssh_local_tunnels = [\"8080:localhost:80\"]\n ssh_remote_tunnels = [\"9000:127.0.0.1:3128\", \"9001:h:1\"]",
            |s| {
                s.options.local_tunnels.len() == 1
                    && s.options.local_tunnels[0].listen == 8080
                    && s.options.local_tunnels[0].host == "localhost"
                    && s.options.remote_tunnels.len() == 2
                    && s.options.remote_tunnels[0].port == 3128
            },
            "tunnels",
        ),
    ];
    for (extra, check, reason) in table {
        match load_text(&minimal_with(extra), &[]) {
            Ok(t) => assert!(check(qemu_of(&t).ssh.as_ref().expect("ssh")), "{reason}"),
            Err(e) => panic!("{reason}: {e}"),
        }
    }
}

/// Issue 14 (SSH part): the rules of the communicator options, reported at the option.
#[test]
fn issue_14_ssh_option_errors() {
    let rows = [
        (
            "ssh_file_transfer_method = \"rsync\"",
            "`ssh_file_transfer_method` must be one of",
        ),
        (
            "ssh_keypair_name = \"deploy\"",
            "needs `ssh_agent_auth = true`",
        ),
        (
            "ssh_certificate_file = \"t.pkr.hcl\"",
            "`ssh_certificate_file` needs `ssh_private_key_file`",
        ),
        (
            "ssh_certificate_file = \"absent-cert.pub\"",
            "absent-cert.pub` does not exist",
        ),
        (
            "ssh_bastion_port = 2200",
            "`ssh_bastion_port` needs `ssh_bastion_host`",
        ),
        (
            "ssh_proxy_password = \"x\"",
            "`ssh_proxy_password` needs `ssh_proxy_host`",
        ),
        (
            "ssh_bastion_host = \"j\"",
            "the jump host needs `ssh_bastion_password`",
        ),
        (
            "ssh_bastion_host = \"j\"\n ssh_bastion_agent_auth = true\n ssh_bastion_interactive = true",
            "answers the jump host's keyboard-interactive prompts",
        ),
        (
            "ssh_bastion_host = \"j\"\n ssh_bastion_password = \"x\"\n ssh_proxy_host = \"p\"",
            "cannot be used together",
        ),
        (
            "ssh_local_tunnels = [\"8080:80\"]",
            "is not of the form `PORT:HOST:PORT`",
        ),
        ("ssh_remote_tunnels = [\"0:h:80\"]", "is not a port"),
    ];
    for (extra, want) in rows {
        let e = errors(&minimal_with(extra));
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.contains("t.pkr.hcl:"), "{extra}: names file:line: {e}");
    }
}

/// Issue 14 (SSH part): amazon-ebs reads the jump host, proxy, agent and certificate options
/// through the same `ssh()` (Packer's amazon-ebs users reach private subnets this way).
#[test]
fn issue_14_amazon_ebs_reads_the_ssh_routes() {
    let text = r#"
source "amazon-ebs" "u" {
  region        = "eu-west-1"
  instance_type = "t3.micro"
  source_ami    = "ami-12345678"
  ssh_username  = "ubuntu"
  ami_name      = "kiln-test"
  ssh_bastion_host     = "jump.example"
  ssh_bastion_username = "ec2-user"
  ssh_bastion_agent_auth = true
  ssh_agent_auth       = true
  ssh_local_tunnels    = ["5432:db.internal:5432"]
  ssh_file_transfer_method = "sftp"
  ssh_handshake_attempts   = 3
  ssh_keep_alive_interval  = "10s"
}
build { sources = ["source.amazon-ebs.u"] }
"#;
    let t = load_text(text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let Some(SourceConfig::AmazonEbs(c)) = t.sources.first() else {
        panic!("no amazon-ebs source");
    };
    let o = &c.ssh.options;
    let b = o.bastion.as_ref().expect("bastion");
    assert_eq!(
        (b.host.as_str(), b.port, b.username.as_str()),
        ("jump.example", 22, "ec2-user")
    );
    assert!(b.agent_auth && o.agent_auth);
    assert_eq!(o.local_tunnels[0].host, "db.internal");
    assert_eq!(o.transfer, crate::communicator::ssh::TransferMethod::Sftp);
    assert_eq!(o.handshake_attempts, Some(3));
    assert_eq!(
        o.keep_alive_interval,
        Some(std::time::Duration::from_secs(10))
    );
}

/// Issue 14: `boot_keymap` picks one of QEMU's layouts (default `en-us`); an unknown name lists
/// the layouts, and a character the layout cannot type is reported at the character, naming it
/// and the layout.
#[test]
fn issue_14_boot_keymap() {
    let default = load_text(MINIMAL, &[]).expect("loads");
    assert_eq!(qemu_of(&default).boot_keymap.name(), "en-us");
    let de = load_text(
        &minimal_with("boot_keymap = \"de\"\n boot_command = [\"url=http://{{ .HTTPIP }}/@\"]"),
        &[],
    )
    .expect("loads");
    assert_eq!(qemu_of(&de).boot_keymap.name(), "de");

    let e = errors(&minimal_with("boot_keymap = \"dvorak\""));
    assert!(e.contains("`boot_keymap` must be one of"), "{e}");
    for name in ["`de`", "`en-us`", "`fr`", "`sv`"] {
        assert!(e.contains(name), "lists {name}: {e}");
    }
    let e = errors(&minimal_with("boot_keymap = \"frr\""));
    assert!(e.contains("did you mean `fr`"), "{e}");
    let upper = load_text(&minimal_with("boot_keymap = \"DE-CH\""), &[]).expect("any case");
    assert_eq!(qemu_of(&upper).boot_keymap.name(), "de-ch");

    let e = errors(&minimal_with(
        "boot_keymap = \"de\"\n boot_command = [\"<enter>\", \"caf\u{e9}\"]",
    ));
    assert!(
        e.contains("Character 'é' cannot be typed with the `de` keyboard layout"),
        "{e}"
    );
    assert!(e.contains("in `boot_command`"), "{e}");
    let e = errors(&minimal_with(
        "boot_keymap = \"ru\"\n boot_steps = [[\"linux\", \"kernel\"]]",
    ));
    assert!(
        e.contains("Character 'l' cannot be typed with the `ru`"),
        "{e}"
    );
    // The same character is fine on a layout that has it.
    assert!(
        load_text(
            &minimal_with("boot_keymap = \"fr\"\n boot_command = [\"café\"]"),
            &[]
        )
        .is_ok()
    );
}

/// Issue 14: `communicator = "winrm"` on a null or amazon-ebs source gets the same validate
/// error as on qemu (kiln reaches Windows guests over SSH), not "not supported by kiln yet".
#[test]
fn issue_14_winrm_refused_on_every_ssh_source() {
    for source in [
        "source \"null\" \"w\" {\n  communicator = \"winrm\"\n  ssh_host = \"192.0.2.1\"\n}\n",
        "source \"amazon-ebs\" \"w\" {\n  communicator = \"winrm\"\n  region = \"us-east-1\"\n  \
         source_ami = \"ami-1\"\n  instance_type = \"t3.micro\"\n  ami_name = \"a\"\n  \
         ssh_username = \"admin\"\n}\n",
    ] {
        let text = format!("{source}build {{\n  sources = [\"source.{}.w\"]\n}}\n", {
            let kind = source.split('"').nth(1).unwrap();
            kind.to_owned()
        });
        let e = errors(&text);
        assert!(
            e.contains("kiln reaches Windows guests over SSH (OpenSSH Server), not WinRM"),
            "{source}: {e}"
        );
        assert!(
            e.contains("t.pkr.hcl:2:"),
            "{source}: names file:line:col: {e}"
        );
        assert!(!e.contains("not supported by kiln yet"), "{source}: {e}");
    }
}
