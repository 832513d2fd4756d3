//! Issue 3: realistic Packer templates validate and inspect unchanged; every failure mode of
//! `kiln validate` has its full message pinned.
//!
//! Each `tests/fixtures/templates/bad/NAME.pkr.hcl` (or directory `NAME/`) is validated with the
//! arguments in `NAME.args` (if any); its stderr must equal `NAME.expected` byte for byte. After
//! an intended change of wording, `KILN_BLESS=1 cargo nextest run --test templates` rewrites
//! the `.expected` files; review them with `git diff`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

const BAD: &str = "tests/fixtures/templates/bad";
const OK: &str = "tests/fixtures/templates/ok";

/// Runs `kiln ARGS` from the repository root (so paths in messages are relative).
fn run(args: &[&str]) -> std::process::Output {
    kiln().args(args).current_dir(repo_root()).output().unwrap()
}

fn bad_fixtures() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(repo_root().join(BAD))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let file = p.file_name()?.to_str()?.to_owned();
            let name = if p.is_dir() {
                file
            } else {
                file.strip_suffix(".pkr.hcl")?.to_owned()
            };
            Some((name, p))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn bad_templates_have_pinned_messages() {
    let bless = std::env::var_os("KILN_BLESS").is_some();
    let fixtures = bad_fixtures();
    assert!(fixtures.len() >= 20, "fixtures missing: {fixtures:?}");
    let mut failures = Vec::new();
    for (name, path) in fixtures {
        let dir = repo_root().join(BAD);
        let args = std::fs::read_to_string(dir.join(format!("{name}.args"))).unwrap_or_default();
        let rel = path
            .strip_prefix(repo_root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let mut argv: Vec<&str> = vec!["validate"];
        argv.extend(args.split_whitespace());
        argv.push(&rel);
        let out = run(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(1) {
            failures.push(format!("{name}: exit {:?}\n{}", out.status, describe(&out)));
            continue;
        }
        let expected = dir.join(format!("{name}.expected"));
        if bless {
            std::fs::write(&expected, &stderr).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected) {
            Ok(want) if want == stderr => {}
            Ok(want) => failures.push(format!(
                "{name}: message changed\n--- want ({})\n{want}\n--- got\n{stderr}",
                expected.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no `{}`; got\n{stderr}",
                expected.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_sensitive_value_never_reaches_a_message() {
    let out = run(&["validate", &format!("{BAD}/secret-in-error.pkr.hcl")]);
    assert!(!out.status.success());
    let all = describe(&out);
    assert!(!all.contains("correct-horse-battery"), "{all}");
    assert!(all.contains("<sensitive>"), "{all}");
}

/// The realistic templates, each with the var files it is used with.
fn ok_templates() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("bento-debian.pkr.hcl", vec![]),
        ("bento", vec!["bento/debian-12.pkrvars.hcl"]),
        ("bento", vec!["bento/ubuntu-24.04.pkrvars.hcl"]),
        ("cloud-image.pkr.hcl", vec![]),
        ("no-communicator.pkr.hcl", vec![]),
        ("docker.pkr.hcl", vec![]),
    ]
}

#[test]
fn realistic_templates_validate_and_inspect() {
    for (template, var_files) in ok_templates() {
        let path = format!("{OK}/{template}");
        for command in ["validate", "inspect"] {
            let mut owned = vec![command.to_owned()];
            for f in &var_files {
                owned.push("-var-file".to_owned());
                owned.push(format!("{OK}/{f}"));
            }
            owned.push(path.clone());
            let argv: Vec<&str> = owned.iter().map(String::as_str).collect();
            let out = run(&argv);
            assert!(
                out.status.success(),
                "kiln {}:\n{}",
                argv.join(" "),
                describe(&out)
            );
            // The only word about a working template: plugins are built in (said once).
            let stderr = String::from_utf8_lossy(&out.stderr);
            let plugins = stderr.matches("`required_plugins` is not needed").count();
            assert_eq!(
                stderr.matches("warning:").count(),
                plugins,
                "unexpected warnings for {template}: {stderr}"
            );
            assert!(plugins <= 1, "said more than once: {stderr}");
        }
    }
}

/// Validation has no side effects: nothing is written next to the templates or into the
/// working directory, and no ISO is fetched (the URLs are unreachable here).
#[test]
fn validate_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for (template, var_files) in ok_templates() {
        let mut cmd = kiln();
        cmd.arg("validate")
            .current_dir(work.path())
            .env("KILN_CACHE_DIR", cache.path());
        for f in &var_files {
            cmd.arg("-var-file").arg(repo_root().join(OK).join(f));
        }
        let out = cmd
            .arg(repo_root().join(OK).join(template))
            .output()
            .unwrap();
        assert!(out.status.success(), "{template}: {}", describe(&out));
    }
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "validate wrote {left:?}");
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert!(cached.is_empty(), "validate cached {cached:?}");
}

#[test]
fn bento_inspect_is_pinned() {
    let out = run(&[
        "inspect",
        "-var-file",
        &format!("{OK}/bento/debian-12.pkrvars.hcl"),
        &format!("{OK}/bento"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let got = String::from_utf8_lossy(&out.stdout)
        .replace(&repo_root().to_string_lossy().into_owned(), "ROOT");
    let expected = Path::new(&repo_root())
        .join(OK)
        .join("bento.inspect.expected");
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(&expected, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&expected).unwrap());
}

/// `kiln fmt` round-trips every template and var file of the repository: all are in canonical
/// layout already (the syntax-error fixtures aside, which cannot be parsed).
#[test]
fn fixtures_and_boot_configs_are_in_fmt_layout() {
    let mut argv = vec![
        "fmt".to_owned(),
        "-check".to_owned(),
        "-recursive".to_owned(),
        format!("{OK}"),
        "tests/fixtures/e2e".to_owned(),
        "tests/fixtures/issue-13".to_owned(),
        "boot-configs".to_owned(),
        format!("{BAD}/var-file"),
    ];
    for (name, path) in bad_fixtures() {
        if !["syntax-error", "unclosed-block"].contains(&name.as_str()) && path.is_file() {
            argv.push(format!("{BAD}/{name}.pkr.hcl"));
        }
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert!(out.status.success(), "{}", describe(&out));
}
