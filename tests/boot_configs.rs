//! The ready boot-configs (`boot-configs/<os>/`, issue 8): every one passes `kiln validate`
//! with each of its pkrvars files, the expected distributions are all there (BIOS and UEFI),
//! they share one variables file, and every answer file a boot command asks for exists in
//! `http/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Directories of `boot-configs/` that are not boot-configs themselves.
const NOT_CONFIGS: &[&str] = &["_common", "ci"];

/// The distributions issue 8 asks for; each must have a BIOS and a UEFI pkrvars file.
const EXPECTED: &[&str] = &[
    "debian",
    "ubuntu",
    "almalinux",
    "rockylinux",
    "fedora",
    "alpine",
];

fn boot_configs() -> PathBuf {
    repo_root().join("boot-configs")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Each boot-config directory and its pkrvars files (empty for a self-contained template).
fn configs() -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(boot_configs()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.is_dir() || NOT_CONFIGS.contains(&name.as_str()) {
            continue;
        }
        assert!(
            !files_ending(&dir, ".pkr.hcl").is_empty(),
            "boot-configs/{name} has no *.pkr.hcl file"
        );
        out.insert(name, files_ending(&dir, ".pkrvars.hcl"));
    }
    out
}

#[test]
fn every_boot_config_validates_with_each_of_its_pkrvars_files() {
    let configs = configs();
    let mut runs = 0;
    let mut failures = Vec::new();
    for (name, var_files) in &configs {
        let dir = boot_configs().join(name);
        // A template without pkrvars files (testos) is validated as it is.
        let variants: Vec<Option<&PathBuf>> = if var_files.is_empty() {
            vec![None]
        } else {
            var_files.iter().map(Some).collect()
        };
        for var_file in variants {
            let mut cmd = kiln();
            cmd.current_dir(repo_root()).arg("validate");
            if let Some(f) = var_file {
                cmd.arg("-var-file").arg(f);
            }
            let out = cmd.arg(&dir).output().unwrap();
            runs += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || stderr.contains("warning") {
                failures.push(format!(
                    "kiln validate {}{}\n{}",
                    var_file
                        .map(|f| format!("-var-file {} ", f.display()))
                        .unwrap_or_default(),
                    dir.display(),
                    describe(&out)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} validations failed or warned:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // 6 distributions × (BIOS + UEFI) at least, plus testos.
    assert!(runs > 2 * EXPECTED.len(), "only {runs} validations ran");
}

#[test]
fn every_distribution_has_bios_and_uefi_pkrvars() {
    let configs = configs();
    for os in EXPECTED {
        let files = configs
            .get(*os)
            .unwrap_or_else(|| panic!("boot-configs/{os} is missing"));
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with("-uefi.pkrvars.hcl")),
            "boot-configs/{os}: no UEFI pkrvars file in {names:?}"
        );
        assert!(
            names.iter().any(|n| !n.ends_with("-uefi.pkrvars.hcl")),
            "boot-configs/{os}: no BIOS pkrvars file in {names:?}"
        );
        for (f, n) in files.iter().zip(&names) {
            let text = std::fs::read_to_string(f).unwrap();
            let efi = n.ends_with("-uefi.pkrvars.hcl");
            assert!(
                text.contains(&format!("efi_boot = {efi}")),
                "{n}: its name says efi_boot = {efi}, its content does not"
            );
            assert!(
                text.contains(&format!("os_name    = \"{os}\"")),
                "{n}: os_name is not \"{os}\""
            );
        }
    }
}

/// The Bento-style sharing: every distribution's template files are the common ones, so a
/// fix to the build reaches all of them.
#[test]
fn distributions_share_one_template() {
    for file in ["variables.pkr.hcl", "build.pkr.hcl"] {
        let common = std::fs::read_to_string(boot_configs().join("_common").join(file)).unwrap();
        for os in EXPECTED {
            let path = boot_configs().join(os).join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                text,
                common,
                "{} differs from boot-configs/_common/{file}",
                path.display()
            );
        }
    }
}

/// Paths a boot command asks kiln's HTTP server for: what follows `{{ .HTTPPort }}` up to a
/// space, `<` or `"`.
fn requested_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("{{ .HTTPPort }}") {
        let rest = &text[i + "{{ .HTTPPort }}".len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '<' || c == '"')
            .unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
    }
    out
}

#[test]
fn every_answer_file_a_boot_command_asks_for_exists() {
    let http = repo_root().join("http");
    let mut checked = 0;
    for (name, var_files) in configs() {
        for f in var_files {
            let text = std::fs::read_to_string(&f).unwrap();
            let paths = requested_paths(&text);
            assert!(
                !paths.is_empty(),
                "{}: the boot command fetches nothing from kiln's HTTP server",
                f.display()
            );
            for p in paths {
                let local = http.join(p.trim_start_matches('/'));
                if p.ends_with('/') {
                    // A cloud-init NoCloud source: user-data and meta-data in that directory.
                    for file in ["user-data", "meta-data"] {
                        assert!(
                            local.join(file).is_file(),
                            "boot-configs/{name}: {} is missing",
                            local.join(file).display()
                        );
                    }
                } else {
                    // A file, or a directory the guest fetches files from (Alpine's KILN_HTTP).
                    assert!(
                        local.is_file() || local.is_dir(),
                        "boot-configs/{name} ({}): {} is missing",
                        f.display(),
                        local.display()
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2 * EXPECTED.len(),
        "only {checked} paths checked"
    );
}

#[test]
fn requested_paths_table() {
    let rows = [
        (
            "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/debian/preseed.cfg x=1<enter>",
            vec!["/debian/preseed.cfg"],
        ),
        (
            "ds=nocloud-net\\;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ubuntu/<wait><f10>\"",
            vec!["/ubuntu/"],
        ),
        (
            "a {{ .HTTPPort }}/x b {{ .HTTPPort }}/y\"",
            vec!["/x", "/y"],
        ),
        ("no server here", vec![]),
    ];
    for (text, want) in rows {
        assert_eq!(requested_paths(text), want, "{text}");
    }
}
