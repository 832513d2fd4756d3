//! Legacy JSON templates (issue 14): the HCL2 text written, positions kept, and loading a
//! JSON template giving what loading its upgrade gives.

use std::path::Path;

use super::*;
use crate::template::{Error, Inputs, Template, load};

fn upgraded(json: &str) -> String {
    let (up, diags) = upgrade(Path::new("t.json"), json);
    assert!(diags.is_empty(), "{diags:?}");
    up.expect("an upgrade").text
}

fn problems(json: &str) -> Vec<String> {
    upgrade(Path::new("t.json"), json)
        .1
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
        .collect()
}

#[test]
fn issue_14_json_template_becomes_packer_shaped_hcl() {
    let json = r#"{
  "min_packer_version": "1.6.0",
  "description": "d",
  "variables": {"b": "{{user `a`}}-x", "a": "1", "pw": null, "t": "{{timestamp}}", "home": "{{env `HOME`}}"},
  "sensitive-variables": ["pw", "t"],
  "builders": [
    {"type": "qemu", "iso_url": "u", "qemu_img_args": {"create": ["-o", "x"]}, "empty": [], "n": null, "tags": {"k": "v"}},
    {"type": "null", "name": "second host", "ssh_host": "h"}
  ],
  "provisioners": [{"type": "shell", "inline": ["{{user `b`}} {{user `extra`}}"], "except": ["second_host"], "max_retries": "3", "override": {"qemu": {"inline": ["q"]}}}],
  "error-cleanup-provisioner": {"type": "shell-local", "inline": ["echo cleanup"]},
  "post-processors": ["checksum", [{"type": "vagrant", "name": "box", "only": ["qemu"]}], [{"type": "compress"}, {"type": "manifest"}]]
}"#;
    let want = r#"packer {
  required_version = ">= 1.6.0"
}

variable "a" {
  type = string
  default = "1"
}

variable "home" {
  type = string
  default = "${env("HOME")}"
}

variable "pw" {
  type = string
  sensitive = true
}

variable "extra" {
  type = string
}

locals { timestamp = regex_replace(timestamp(), "[- TZ:]", "") }

locals {
  b = "${var.a}-x"
}

local "t" {
  sensitive = true
  expression = "${local.timestamp}"
}

source "null" "second_host" {
  ssh_host = "h"
}

source "qemu" "qemu" {
  iso_url = "u"
  qemu_img_args {
    create = ["-o", "x"]
  }
  tags = { "k" = "v" }
}

build {
  description = "d"
  sources = ["source.null.second_host", "source.qemu.qemu"]
  provisioner "shell" {
    except = ["null.second_host"]
    override = { "qemu" = { "inline" = ["q"] } }
    max_retries = 3
    inline = ["${local.b} ${var.extra}"]
  }
  error-cleanup-provisioner "shell-local" {
    inline = ["echo cleanup"]
  }
  post-processor "checksum" {
  }
  post-processor "vagrant" {
    name = "box"
    only = ["qemu.qemu"]
  }
  post-processors {
    post-processor "compress" {
    }
    post-processor "manifest" {
    }
  }
}
"#;
    assert_eq!(upgraded(json), want);
}

#[test]
fn issue_14_json_mistakes_are_all_reported_where_they_are() {
    let json = "{\n  \"builders\": [{\"name\": \"x\"}, {\"type\": \"qemu\", \"a\": 1, \"a\": 2}],\n  \"variables\": {\"v\": 3},\n  \"sensitive-variables\": [\"nope\"],\n  \"provisioners\": {},\n  \"post-processors\": [7],\n  \"extra\": 1\n}";
    assert_eq!(
        problems(json),
        [
            "7:3: unknown key `extra` in a JSON template",
            "2:16: this builder has no `type`",
            "2:56: `a` is given twice",
            "5:3: `provisioners` expects an array of objects, found an object",
            "6:23: a post-processor is an object or a type name, found a number",
            "3:22: variable `v` must be a string or null, found a number",
            "4:3: sensitive variable `nope` is not declared in `variables`",
        ]
    );
    assert_eq!(
        problems("[]"),
        ["1:1: a JSON template is an object with `builders`, found an array"]
    );
    assert_eq!(
        problems("{}"),
        ["1:1: a JSON template needs `builders`: at least one builder"]
    );
    assert_eq!(
        problems(r#"{"builders": [{"type": "qemu"}, {"type": "null", "name": "qemu"}]}"#),
        ["1:33: two builders are named `qemu`: give each a unique `name`"]
    );
}

#[test]
fn positions_map_back_into_the_json() {
    let map = [(0, 5), (10, 20), (30, 40)];
    let table = [(0, 5), (9, 5), (10, 20), (29, 20), (30, 40), (1000, 40)];
    for (hcl, json) in table {
        assert_eq!(json_offset(&map, hcl), json, "{hcl}");
    }
    assert_eq!(json_offset(&[], 3), 0);
}

/// Writes `json` as `t.json` and its formatted upgrade as `t.json.pkr.hcl` in a fresh
/// directory, and loads both.
fn load_both(json: &str, vars: &[(&str, &str)]) -> (Template, Template) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.json");
    std::fs::write(&path, json).expect("write");
    let out = crate::upgrade::default_output(&path);
    crate::upgrade::run(&path, &out).expect("upgrade");
    let inputs = Inputs {
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Inputs::default()
    };
    let a = load(&path, &inputs).expect("the JSON loads");
    let b = load(&out, &inputs).expect("its upgrade loads");
    (a, b)
}

#[test]
fn issue_14_json_loads_as_its_upgrade() {
    let json = r#"{
  "variables": {"name": "deb", "dir": "{{template_dir}}", "size": "4096", "v": null},
  "builders": [{"type": "qemu", "iso_url": "{{user `dir`}}/x.iso", "iso_checksum": "none",
    "disk_size": "{{user `size`}}", "headless": "true", "vm_name": "{{user `name`}}-{{build_name}}-{{user `v`}}",
    "boot_command": ["<esc>{{ .HTTPIP }}:{{ .HTTPPort }}/{{ user `name` | upper }}<enter>"],
    "qemuargs": [["-m", "512M"]], "ssh_username": "u", "ssh_password": "p"}],
  "provisioners": [{"type": "shell", "inline": ["echo {{user `name`}}"], "pause_before": "1s"}],
  "post-processors": [[{"type": "vagrant", "output": "{{user `name`}}.box"}, "checksum"]]
}"#;
    let (a, b) = load_both(json, &[("v", "1")]);
    assert_eq!(format!("{:?}", a.sources), format!("{:?}", b.sources));
    assert_eq!(format!("{:?}", a.variables), format!("{:?}", b.variables));
    assert_eq!(a.builds.len(), 1);
    let (ra, rb) = (&a.builds[0].runs, &b.builds[0].runs);
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    let debug = format!("{:?}", a.sources);
    for seen in ["deb-qemu-1", "DEB", "{{ .HTTPIP }}"] {
        assert!(debug.contains(seen), "{seen} in {debug}");
    }
}

#[test]
fn issue_14_json_errors_name_the_json_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.json");
    let json = "{\n  \"builders\": [{\n    \"type\": \"qemu\",\n    \"iso_url\": \"x\", \"iso_checksum\": \"none\",\n    \"cpus\": \"many\",\n    \"bogus\": 1\n  }]\n}\n";
    std::fs::write(&path, json).expect("write");
    let Err(Error::Invalid(diags)) = load(&path, &Inputs::default()) else {
        panic!("expected problems")
    };
    let got: Vec<String> = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
        .collect();
    assert!(diags.iter().all(|d| d.location.file == path));
    assert!(got.iter().any(|g| g.starts_with("5:13: `cpus`")), "{got:?}");
    assert!(
        got.iter().any(|g| g == "6:5: unknown option `bogus`"),
        "{got:?}"
    );
}

/// Loads `text` written as `dir/NAME` in a fresh directory (the directory is the template).
fn load_dir(name: &str, text: &str) -> Result<Template, Error> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(name), text).expect("write");
    let inputs = Inputs::default();
    load(dir.path(), &inputs).map(|mut t| {
        t.path = "t".into();
        t
    })
}

#[test]
fn issue_14_pkr_json_loads_as_the_same_hcl() {
    let json = r#"{
  "//": "HCL's JSON syntax",
  "variable": {"size": {"type": "number", "default": 4096, "validation": {"condition": "${var.size > 0}", "error_message": "Must be positive."}}},
  "locals": {"name": "deb-${var.size}"},
  "source": {"qemu": {"x": {"iso_url": "x.iso", "iso_checksum": "none", "disk_size": "${var.size}",
    "qemu_img_args": {"create": ["-o", "cluster_size=2M"]}, "qemuargs": [["-m", "512M"]],
    "boot_command": ["<esc>{{ .HTTPIP }}<enter>"], "ssh_username": "u", "ssh_password": "p",
    "vm_name": "${local.name}"}}},
  "build": {"name": "b", "sources": ["source.qemu.x"],
    "provisioner": [{"shell": {"inline": ["echo $${HOME}"]}}, {"file": {"source": "Cargo.toml", "destination": "/tmp/a", "override": {"x": {"destination": "/tmp/b"}}}}],
    "post-processors": [{"post-processor": [{"vagrant": {"output": "x.box"}}, {"checksum": {}}]}],
    "post-processor": {"manifest": {}}}
}"#;
    let hcl = r#"
variable "size" {
  type    = number
  default = 4096
  validation {
    condition     = var.size > 0
    error_message = "Must be positive."
  }
}
locals { name = "deb-${var.size}" }
source "qemu" "x" {
  iso_url      = "x.iso"
  iso_checksum = "none"
  disk_size    = var.size
  qemu_img_args {
    create = ["-o", "cluster_size=2M"]
  }
  qemuargs     = [["-m", "512M"]]
  boot_command = ["<esc>{{ .HTTPIP }}<enter>"]
  ssh_username = "u"
  ssh_password = "p"
  vm_name      = local.name
}
build {
  name    = "b"
  sources = ["source.qemu.x"]
  provisioner "shell" { inline = ["echo $${HOME}"] }
  provisioner "file" {
    source      = "Cargo.toml"
    destination = "/tmp/a"
    override    = { x = { destination = "/tmp/b" } }
  }
  post-processors {
    post-processor "vagrant" { output = "x.box" }
    post-processor "checksum" {}
  }
  post-processor "manifest" {}
}
"#;
    let a = load_dir("t.pkr.json", json).expect("the JSON loads");
    let b = load_dir("t.pkr.hcl", hcl).expect("the HCL loads");
    assert_eq!(format!("{:?}", a.sources), format!("{:?}", b.sources));
    assert_eq!(format!("{:?}", a.variables), format!("{:?}", b.variables));
    let (ra, rb) = (&a.builds[0].runs, &b.builds[0].runs);
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    assert!(format!("{ra:?}").contains("/tmp/b") && format!("{ra:?}").contains("echo ${HOME}"));
}

#[test]
fn issue_14_pkr_json_problems_name_json_positions() {
    let json = "{\n  \"source\": {\"qemu\": {\"x\": {\n    \"iso_url\": \"x.iso\", \"iso_checksum\": \"none\",\n    \"cpus\": true,\n    \"nope\": 1}}},\n  \"build\": {\"sources\": [\"source.qemu.x\"]}\n}";
    let Err(Error::Invalid(diags)) = load_dir("t.pkr.json", json) else {
        panic!("expected problems")
    };
    let got: Vec<String> = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
        .collect();
    assert!(got.iter().any(|g| g.starts_with("4:13: `cpus`")), "{got:?}");
    assert!(
        got.iter().any(|g| g == "5:5: unknown option `nope`"),
        "{got:?}"
    );
    let Err(Error::Invalid(diags)) = load_dir("t.pkr.json", "{\"build\": [1]}") else {
        panic!("expected problems")
    };
    assert_eq!(
        diags[0].message,
        "block `build` expects an object, found a number"
    );
}

/// Packer decodes legacy JSON weakly (bento's `"headless": "{{user `headless`}}"` with
/// `"headless": ""`, almalinux's one-string `boot_command`); HCL and `*.pkr.json` stay strict.
#[test]
fn issue_14_legacy_json_values_are_weakly_typed() {
    let json = r#"{"variables": {"headless": ""}, "builders": [{"type": "qemu", "iso_url": "x.iso",
      "iso_checksum": "none", "ssh_username": "u", "headless": "{{user `headless`}}",
      "boot_command": "<esc><enter>", "use_default_display": "T"}]}"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.json");
    std::fs::write(&path, json).expect("write");
    let t = load(&path, &Inputs::default()).expect("loads");
    let debug = format!("{:?}", t.sources);
    for seen in [
        "headless: false",
        "\"<esc><enter>\"",
        "use_default_display: true",
    ] {
        assert!(debug.contains(seen), "{seen} in {debug}");
    }
    let strict = r#"{"source": {"qemu": {"x": {"iso_url": "x.iso", "iso_checksum": "none",
      "ssh_username": "u", "headless": ""}}}, "build": {"sources": ["source.qemu.x"]}}"#;
    let Err(Error::Invalid(diags)) = load_dir("t.pkr.json", strict) else {
        panic!("expected problems")
    };
    assert_eq!(diags[0].message, "`headless` expects a bool, found string");
}
