//! External plugins (issue 17): `kiln-plugin-TYPE` executables run for provisioner and
//! post-processor types kiln does not have, over the JSON protocol of docs/plugins.md. Every
//! build here uses a `null` source without a communicator, so no machine is needed; the plugins
//! are small shell scripts written by the tests, plus the tfvars example (Python 3).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{assert_ok, describe, kiln};

/// A test directory: the template's, with a per-user plugin directory (`XDG_DATA_HOME`) and a
/// `PATH` directory of its own.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/kiln/plugins")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn user_plugins(&self) -> PathBuf {
        self.path().join("data/kiln/plugins")
    }

    /// Writes an executable shell script at `rel` (relative to the case directory).
    fn script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Writes the template `build.pkr.hcl`: a `null` source `x` and `body` inside `build`.
    fn template(&self, body: &str) -> PathBuf {
        let path = self.path().join("build.pkr.hcl");
        std::fs::write(
            &path,
            format!(
                "source \"null\" \"x\" {{\n  communicator = \"none\"\n}}\n\nbuild {{\n  sources = [\"source.null.x\"]\n{body}}}\n"
            ),
        )
        .unwrap();
        path
    }

    /// `kiln ARGS` in the case directory, with its own plugin directory and `PATH` (its `bin`,
    /// then `extra`, then the system's).
    fn kiln(&self, args: &[&str], extra: &[PathBuf]) -> std::process::Command {
        let mut paths = vec![self.path().join("bin")];
        paths.extend(extra.iter().cloned());
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = kiln();
        cmd.args(args)
            .current_dir(self.path())
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("KILN_LOG", "warn");
        cmd
    }

    fn build(&self, extra: &[PathBuf]) -> Output {
        self.kiln(&["build", "build.pkr.hcl"], extra)
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn examples() -> PathBuf {
    common::repo_root().join("examples/plugins")
}

/// `NAME:line:col` where `needle` starts in `file` (kiln is given the template by its name).
fn line_col(file: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {}", file.display()));
    format!(
        "{}:{}:{}",
        file.file_name().unwrap().to_string_lossy(),
        i + 1,
        line.find(needle).unwrap() + 1
    )
}

/// A post-processor test plugin that makes a raw "disk" file and hands it on as the new
/// artifact, disk state included.
const FAKE_DISK: &str = r#"req=$(cat)
case "$req" in *'"mode":"validate"'*) echo '{}'; exit 0;; esac
printf 'disk' > "$PWD/made.raw"
cat <<JSON
{"artifact": {"id": "img-42", "files": ["$PWD/made.raw"],
  "state": {"disk": {"path": "$PWD/made.raw", "format": "raw", "virtual_size": 4,
                     "architecture": "amd64", "accelerated": false}}},
 "keep_input": true}
JSON
"#;

/// Issue 17: the tfvars example, found on PATH, writes the artifact's id and disk into a
/// `.auto.tfvars` file, after another plugin (found beside the template) made the artifact; a
/// second tfvars block takes its default file name from the build's name.
#[test]
fn tfvars_example_writes_the_image_id_and_disk_path() {
    common::require("python3", "python3");
    let case = Case::new();
    case.script("kiln-plugin-fake-disk", FAKE_DISK);
    case.template(
        r#"  post-processors {
    post-processor "fake-disk" {}
    post-processor "tfvars" {
      output   = "${path.root}/out/image.auto.tfvars"
      variable = "base_image"
    }
  }
  post-processor "tfvars" {}
"#,
    );
    std::fs::create_dir(case.path().join("out")).unwrap();
    let out = case.build(&[examples()]);
    assert_ok(&out, "kiln build with the tfvars plugin");
    let tfvars = std::fs::read_to_string(case.path().join("out/image.auto.tfvars")).unwrap();
    let disk = case.path().join("made.raw");
    assert_eq!(
        tfvars,
        format!(
            "base_image = \"img-42\"\ndisk_path = \"{}\"\n",
            disk.display()
        )
    );
    // The null builder's own artifact: id `Null`, no file.
    let default = std::fs::read_to_string(case.path().join("x.auto.tfvars")).unwrap();
    assert_eq!(default, "image_id = \"Null\"\n");
    // The plugin's stderr is its output in kiln's.
    let all = text(&out);
    assert!(
        all.contains("wrote x.auto.tfvars: image_id = Null"),
        "{all}"
    );
    // No temporary file is left beside the output.
    let left: Vec<_> = std::fs::read_dir(case.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// Issue 17: `kiln validate` runs each plugin in `validate` mode and shows its problems at the
/// attributes' file:line:col, all in one run; `kiln build` refuses the same template before
/// anything runs.
#[test]
fn validate_mode_problems_are_located() {
    common::require("python3", "python3");
    let case = Case::new();
    let tpl = case.template(
        r#"  post-processor "tfvars" {
    output = "image.txt"
    colour = "blue"
  }
"#,
    );
    let out = case
        .kiln(&["validate", "build.pkr.hcl"], &[examples()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let all = text(&out);
    for (needle, message) in [
        ("output =", "must be a file name ending in `.tfvars`"),
        ("colour =", "unknown option"),
    ] {
        let at = line_col(&tpl, needle);
        assert!(all.contains(&at), "{at} missing:\n{all}");
        assert!(all.contains(message), "{message} missing:\n{all}");
    }
    let out = case.build(&[examples()]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(text(&out).contains(&line_col(&tpl, "output =")));
    assert!(!case.path().join("image.txt").exists());

    // Fixed, it validates.
    case.template("  post-processor \"tfvars\" {\n    output = \"image.auto.tfvars\"\n  }\n");
    let out = case
        .kiln(&["validate", "build.pkr.hcl"], &[examples()])
        .output()
        .unwrap();
    assert_ok(&out, "kiln validate of a right tfvars block");
}

/// Issue 17: a provisioner plugin from the per-user plugin directory gets the protocol's
/// request (validate, then run), with `build.*` values filled in and kiln's own options left
/// out; its stderr lines are shown. `kiln_plugin` names another by its path.
#[test]
fn provisioner_plugin_gets_the_request_and_shows_its_output() {
    let case = Case::new();
    let log = case.path().join("requests.jsonl");
    let body = format!(
        "cat >> {log}\necho >> {log}\necho \"hello from the plugin\" >&2\necho '{{}}'\n",
        log = log.display()
    );
    std::fs::write(
        case.user_plugins().join("kiln-plugin-greet"),
        format!("#!/bin/sh\n{body}"),
    )
    .unwrap();
    std::fs::set_permissions(
        case.user_plugins().join("kiln-plugin-greet"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    case.script("tools/greeter", &body);
    case.template(
        r#"  provisioner "greet" {
    greeting = "run ${build.PackerRunUUID} of ${source.name}"
    timeout  = "1m"
    nested {
      depth = 2
    }
  }
  provisioner "other-greet" {
    kiln_plugin = "tools/greeter"
    who         = "world"
  }
"#,
    );
    let out = case.build(&[]);
    assert_ok(&out, "kiln build with provisioner plugins");
    let all = text(&out);
    assert_eq!(all.matches("hello from the plugin").count(), 4, "{all}");
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let modes: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r["type"].as_str().unwrap(), r["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        modes,
        [
            ("greet", "validate"),
            ("other-greet", "validate"),
            ("greet", "run"),
            ("other-greet", "run")
        ]
    );
    let run = &requests[2];
    assert_eq!(run["protocol"], 1);
    assert_eq!(run["kind"], "provisioner");
    assert_eq!(
        run["build"],
        serde_json::json!({"name": "x", "type": "null", "source": "null.x"})
    );
    let run_id = run["run_id"].as_str().unwrap();
    assert!(!run_id.is_empty());
    assert_eq!(
        run["config"],
        serde_json::json!({
            "greeting": format!("run {run_id} of x"),
            "nested": [{"depth": 2}]
        })
    );
    assert_eq!(run["build_values"]["PackerRunUUID"], run_id);
    assert_eq!(requests[3]["config"], serde_json::json!({"who": "world"}));
    assert!(run.get("artifact").is_none());
}

/// Issue 17: a plugin that exits non-zero fails its step with the end of its stderr; one that
/// prints garbage on stdout fails with that said.
#[test]
fn failing_and_garbage_plugins_fail_the_build_clearly() {
    let case = Case::new();
    case.script(
        "kiln-plugin-broken",
        r#"req=$(cat)
case "$req" in *'"mode":"validate"'*) echo '{}'; exit 0;; esac
i=1; while [ $i -le 30 ]; do echo "broken line $i" >&2; i=$((i+1)); done
exit 3
"#,
    );
    case.template("  provisioner \"broken\" {}\n");
    let out = case.build(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    let all = text(&out);
    assert!(all.contains("Provisioner 1 (`broken`) failed"), "{all}");
    assert!(
        all.contains("exited with status 3; the end of its stderr:"),
        "{all}"
    );
    assert!(all.contains("    broken line 30"), "{all}");

    case.script(
        "kiln-plugin-chatty",
        r#"req=$(cat)
case "$req" in *'"mode":"validate"'*) echo '{}'; exit 0;; esac
echo "Processing artifact... done"
"#,
    );
    case.template("  post-processor \"chatty\" {}\n");
    let out = case.build(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    let all = text(&out);
    assert!(all.contains("Post-processor `chatty` failed"), "{all}");
    assert!(
        all.contains(
            "printed \"Processing artifact... done\" on stdout, where kiln expects one JSON object"
        ),
        "{all}"
    );
}

/// Issue 17: a plugin that hangs past its `timeout` is stopped with its whole process group;
/// so is one running when kiln gets Ctrl-C.
#[test]
fn hanging_plugins_are_killed_on_timeout_and_ctrl_c() {
    let case = Case::new();
    let pid_file = case.path().join("sleeper.pid");
    case.script(
        "kiln-plugin-hang",
        &format!(
            r#"req=$(cat)
case "$req" in *'"mode":"validate"'*) echo '{{}}'; exit 0;; esac
sleep 600 &
echo $! > {}
wait
"#,
            pid_file.display()
        ),
    );
    let gone = |pid_file: &Path| {
        let pid = std::fs::read_to_string(pid_file).unwrap();
        let pid = pid.trim();
        common::eventually(Duration::from_secs(10), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
        })
    };
    case.template("  provisioner \"hang\" {\n    timeout = \"2s\"\n  }\n");
    let out = case.build(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out).contains("Timed out after 2s"),
        "{}",
        describe(&out)
    );
    assert!(gone(&pid_file), "the plugin's child survived its timeout");

    // A post-processor has kiln's `timeout` too.
    std::fs::remove_file(&pid_file).unwrap();
    case.template("  post-processor \"hang\" {\n    timeout = \"2s\"\n  }\n");
    let out = case.build(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out).contains("did not finish within 2s; its processes were killed"),
        "{}",
        describe(&out)
    );
    assert!(gone(&pid_file), "the plugin's child survived its timeout");

    // Ctrl-C while it runs.
    std::fs::remove_file(&pid_file).unwrap();
    case.template("  provisioner \"hang\" {}\n");
    let child = case
        .kiln(&["build", "build.pkr.hcl"], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(
        common::eventually(Duration::from_secs(30), || pid_file.exists()
            && !std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .is_empty()),
        "the plugin never started"
    );
    common::signal(pid, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(gone(&pid_file), "the plugin's child survived Ctrl-C");
}

/// Issue 17: a type with no plugin anywhere is refused before the build, naming every place
/// kiln looked; `kiln validate` warns with the same; `kiln_plugin` naming a missing file is a
/// template error at its place.
#[test]
fn a_missing_plugin_names_where_kiln_looked() {
    let case = Case::new();
    case.template("  provisioner \"no-such-thing\" {}\n");
    let out = case.build(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    let all = text(&out);
    assert!(
        all.contains("provisioner type `no-such-thing` is not built into kiln"),
        "{all}"
    );
    for place in [
        case.path().join("kiln-plugin-no-such-thing"),
        case.user_plugins().join("kiln-plugin-no-such-thing"),
        case.path().join("bin/kiln-plugin-no-such-thing"),
        PathBuf::from("/usr/bin/kiln-plugin-no-such-thing"),
    ] {
        assert!(
            all.contains(&place.display().to_string()),
            "{} missing:\n{all}",
            place.display()
        );
    }
    let out = case
        .kiln(&["validate", "build.pkr.hcl"], &[])
        .output()
        .unwrap();
    let all = text(&out);
    assert!(all.contains("warning:"), "{all}");
    assert!(
        all.contains(
            &case
                .user_plugins()
                .join("kiln-plugin-no-such-thing")
                .display()
                .to_string()
        ),
        "{all}"
    );

    let tpl = case.template("  post-processor \"x\" {\n    kiln_plugin = \"tools/nope\"\n  }\n");
    let out = case
        .kiln(&["validate", "build.pkr.hcl"], &[])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let all = text(&out);
    assert!(all.contains(&line_col(&tpl, "\"tools/nope\"")), "{all}");
    assert!(all.contains("is not an executable file"), "{all}");
}
