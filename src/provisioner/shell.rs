//! The `shell` provisioner: uploads a script (inline lines or a file) and runs it remotely.
//!
//! It follows Packer's `shell` provisioner: the script goes to
//! `<remote_folder>/script_<n>.sh`, runs through `execute_command` with the environment as
//! `KEY='value' ` assignments, its output is shown line by line, and it is removed afterwards.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::communicator::{self, Communicator, Stream, sh_quote};
use crate::ui::Ui;

/// What a `provisioner "shell"` block runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellSource {
    /// `inline`: one command per line, run by `inline_shebang` (default `/bin/sh -e`).
    Inline(Vec<String>),
    /// `script`: a local file (resolved against the working directory).
    Script(PathBuf),
    /// `scripts`: local files, run in order.
    Scripts(Vec<PathBuf>),
}

/// A validated `provisioner "shell"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: ShellSource,
    /// `inline_shebang` (default `/bin/sh -e`).
    pub inline_shebang: String,
    /// `environment_vars` as `KEY=VALUE` pairs, in template order.
    pub environment_vars: Vec<(String, String)>,
    /// `execute_command` (default `chmod +x {{.Path}}; {{.Vars}} {{.Path}}`).
    pub execute_command: String,
    /// `remote_folder` (default `/tmp`).
    pub remote_folder: String,
    /// `remote_file` (default `script_<random>.sh`).
    pub remote_file: Option<String>,
    /// `remote_path`: the whole remote path, overriding the two above.
    pub remote_path: Option<String>,
    /// `valid_exit_codes` (default `[0]`).
    pub valid_exit_codes: Vec<u32>,
    /// `expect_disconnect`: the connection dropping while a script runs (e.g. it reboots the
    /// machine) is not an error; the next provisioner reconnects.
    pub expect_disconnect: bool,
    /// `skip_clean`: leave the uploaded script in place.
    pub skip_clean: bool,
    /// `start_retry_timeout` (default 5m): how long to keep reconnecting when a script cannot
    /// be started because the connection is gone (e.g. the machine is still rebooting).
    pub start_retry_timeout: Duration,
    /// `pause_after`: wait after the scripts ran.
    pub pause_after: Duration,
    /// `binary`: send script files as they are (default: Windows line endings become Unix
    /// ones, as in Packer).
    pub binary: bool,
}

/// Packer's default `start_retry_timeout`.
pub const DEFAULT_START_RETRY: Duration = Duration::from_secs(300);

/// The default `inline_shebang`.
const DEFAULT_SHEBANG: &str = "/bin/sh -e";

impl Config {
    /// A config with Packer's defaults for everything but the source.
    pub fn with_defaults(source: ShellSource) -> Self {
        Self {
            source,
            inline_shebang: DEFAULT_SHEBANG.into(),
            environment_vars: Vec::new(),
            execute_command: "chmod +x {{.Path}}; {{.Vars}} {{.Path}}".into(),
            remote_folder: "/tmp".into(),
            remote_file: None,
            remote_path: None,
            valid_exit_codes: vec![0],
            expect_disconnect: false,
            skip_clean: false,
            start_retry_timeout: DEFAULT_START_RETRY,
            pause_after: Duration::ZERO,
            binary: false,
        }
    }
}

/// Errors of the shell provisioner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the local script file failed.
    #[error("Cannot read script {}", path.display())]
    ReadScript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `execute_command` uses a placeholder other than `{{.Path}}` and `{{.Vars}}`.
    #[error("Unsupported placeholder `{placeholder}` in execute_command")]
    ExecuteCommand { placeholder: String },
    /// Uploading the script failed.
    #[error("Cannot upload script to {path}")]
    Upload {
        path: String,
        #[source]
        source: communicator::Error,
    },
    /// Running the script failed (not a non-zero exit: the command could not run or finish).
    #[error("Cannot run script {script}")]
    Run {
        script: String,
        #[source]
        source: communicator::Error,
    },
    /// The script ran and exited with a status not in `valid_exit_codes`.
    #[error("Script exited with non-zero exit status: {status}")]
    NonZeroExit { status: u32, script: String },
    /// Removing the uploaded script failed.
    #[error("Cannot remove temporary script {path}")]
    Remove {
        path: String,
        #[source]
        source: Option<communicator::Error>,
    },
}

/// Runs every script of the provisioner on `comm` (one connection; no reconnecting): builds
/// or reads each script, uploads it, runs it through `execute_command` with `env` plus
/// `environment_vars` (the template's values win), shows its output through `ui`, and removes
/// it unless `skip_clean`. Like Packer, a failing script is left in place.
pub async fn run(
    config: &Config,
    comm: &dyn Communicator,
    ui: &Ui,
    env: &[(String, String)],
) -> Result<(), Error> {
    for (name, script) in scripts(config).await? {
        run_script(config, comm, ui, env, &name, &script).await?;
    }
    Ok(())
}

/// [`run`] through the provisioner layer's session: a script that cannot start because the
/// connection is gone is retried on a new connection until `start_retry_timeout`; with
/// `expect_disconnect`, the connection dropping while a script runs ends it successfully.
pub async fn run_with_session(
    config: &Config,
    session: &mut super::Session,
    ui: &Ui,
    env: &[(String, String)],
) -> Result<(), super::Error> {
    for (name, script) in scripts(config).await? {
        let deadline = tokio::time::Instant::now() + config.start_retry_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let comm = session.connect(left).await.map_err(super::Error::Connect)?;
            match run_script(config, comm, ui, env, &name, &script).await {
                Ok(()) => break,
                Err(Error::Upload { source, .. })
                    if tokio::time::Instant::now() < deadline && is_connection_error(&source) =>
                {
                    ui.message(format!(
                        "Cannot start the script yet ({source}); reconnecting"
                    ));
                    session.disconnect().await;
                }
                Err(Error::Run { .. } | Error::Remove { .. }) if config.expect_disconnect => {
                    ui.message("Remote end disconnected, as expected (expect_disconnect)");
                    session.disconnect().await;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !config.pause_after.is_zero() {
        ui.say(format!(
            "Pausing {:?} after the scripts",
            config.pause_after
        ));
        tokio::time::sleep(config.pause_after).await;
    }
    Ok(())
}

/// Whether an upload failed because the connection (not the remote command) failed.
fn is_connection_error(e: &communicator::Error) -> bool {
    matches!(e, communicator::Error::Lost(_))
}

/// Every script of the provisioner, as (name for messages, bytes to upload).
async fn scripts(config: &Config) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let paths = match &config.source {
        ShellSource::Inline(lines) => {
            return Ok(vec![(
                "inline script".to_owned(),
                inline_script(&config.inline_shebang, lines),
            )]);
        }
        ShellSource::Script(path) => std::slice::from_ref(path),
        ShellSource::Scripts(paths) => paths.as_slice(),
    };
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| Error::ReadScript {
                path: path.clone(),
                source,
            })?;
        let bytes = if config.binary {
            bytes
        } else {
            crlf_to_lf(&bytes)
        };
        out.push((path.display().to_string(), bytes));
    }
    Ok(out)
}

/// Where a script goes on the remote side.
fn remote_path(config: &Config) -> String {
    if let Some(p) = &config.remote_path {
        return p.clone();
    }
    let file = config
        .remote_file
        .clone()
        .unwrap_or_else(|| format!("script_{}.sh", rand::random_range(0..9999u32)));
    format!("{}/{file}", config.remote_folder.trim_end_matches('/'))
}

async fn run_script(
    config: &Config,
    comm: &dyn Communicator,
    ui: &Ui,
    env: &[(String, String)],
    name: &str,
    script: &[u8],
) -> Result<(), Error> {
    let remote = remote_path(config);
    let command = render_execute_command(
        &config.execute_command,
        &remote,
        &vars_string(env, &config.environment_vars),
    )?;

    ui.say(format!("Provisioning with shell script: {name}"));
    tracing::debug!(script = %name, remote, "uploading shell script");
    comm.upload(&remote, script, 0o755)
        .await
        .map_err(|source| Error::Upload {
            path: remote.clone(),
            source,
        })?;

    let status = exec_shown(comm, &command, ui)
        .await
        .map_err(|source| Error::Run {
            script: name.to_owned(),
            source,
        })?;
    if !config.valid_exit_codes.contains(&status) {
        return Err(Error::NonZeroExit {
            status,
            script: name.to_owned(),
        });
    }
    if config.skip_clean {
        return Ok(());
    }
    let remove = comm
        .exec(&format!("rm -f {}", sh_quote(&remote)), &mut |_, _| {})
        .await;
    match remove {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::Remove {
            path: remote,
            source: None,
        }),
        Err(source) => Err(Error::Remove {
            path: remote,
            source: Some(source),
        }),
    }
}

/// Runs `command` on `comm`, showing its output line by line through `ui`; returns its exit
/// status.
pub(super) async fn exec_shown(
    comm: &dyn Communicator,
    command: &str,
    ui: &Ui,
) -> Result<u32, communicator::Error> {
    let mut stdout = LineBuffer::default();
    let mut stderr = LineBuffer::default();
    let status = comm
        .exec(command, &mut |stream, chunk| {
            let buffer = match stream {
                Stream::Stdout => &mut stdout,
                Stream::Stderr => &mut stderr,
            };
            for line in buffer.push(chunk) {
                ui.message(line);
            }
        })
        .await;
    for line in stdout.finish().into_iter().chain(stderr.finish()) {
        ui.message(line);
    }
    status
}

/// The script for `inline` lines: `#!<shebang>` then one line per command. A first line that
/// is already a `#!` line is kept as the shebang when `shebang` is the default, as Packer does.
fn inline_script(shebang: &str, lines: &[String]) -> Vec<u8> {
    let mut script = String::new();
    let own_shebang = lines.first().is_some_and(|l| l.starts_with("#!"));
    if !(own_shebang && shebang == DEFAULT_SHEBANG) {
        script.push_str(&format!("#!{shebang}\n"));
    }
    for line in lines {
        script.push_str(line);
        script.push('\n');
    }
    script.into_bytes()
}

/// Script files are sent with Unix line endings, as Packer does unless `binary = true`.
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// `{{.Vars}}`: `KEY='value' ` for each variable, keys sorted, `'` written as `'"'"'`.
/// `overrides` (the template's `environment_vars`) win over `base` (kiln's `PACKER_*`).
fn vars_string(base: &[(String, String)], overrides: &[(String, String)]) -> String {
    let merged: BTreeMap<&str, &str> = base
        .iter()
        .chain(overrides)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    merged
        .into_iter()
        .map(|(k, v)| format!("{k}={} ", sh_quote(v)))
        .collect()
}

/// Fills `{{.Path}}` and `{{.Vars}}` (spaces inside the braces allowed, as in Go templates).
fn render_execute_command(template: &str, path: &str, vars: &str) -> Result<String, Error> {
    use crate::render::{self, pairs};
    let known = [("Path", path), ("Vars", vars)];
    match render::render(template, pairs(&known)) {
        Ok(s) => Ok(s),
        // An unclosed `{{` is plain text, as before.
        Err(render::Error::Unclosed { .. }) => Ok(render::render_known(template, pairs(&known))),
        Err(render::Error::Unknown { offset, .. }) => Err(Error::ExecuteCommand {
            placeholder: render::written(template, offset).to_owned(),
        }),
    }
}

/// Splits streamed output into lines, keeping a partial line until its newline arrives.
#[derive(Default)]
struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// The lines completed by `chunk`, without their `\n` (or `\r\n`).
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        complete[..last_newline]
            .split(|&b| b == b'\n')
            .map(line_text)
            .collect()
    }

    /// The last line if it had no newline.
    fn finish(self) -> Option<String> {
        (!self.partial.is_empty()).then(|| line_text(&self.partial))
    }
}

fn line_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn vars_string_cases() {
        let cases: [(&str, &[(&str, &str)], &[(&str, &str)], &str); 5] = [
            ("nothing", &[], &[], ""),
            (
                "keys sorted",
                &[("B", "2"), ("A", "1")],
                &[],
                "A='1' B='2' ",
            ),
            (
                "template wins",
                &[("A", "kiln")],
                &[("A", "tpl")],
                "A='tpl' ",
            ),
            ("quote escaped", &[], &[("Q", "it's")], r#"Q='it'"'"'s' "#),
            (
                "spaces and $ kept literal",
                &[],
                &[("S", "a $b c")],
                "S='a $b c' ",
            ),
        ];
        for (reason, base, over, want) in cases {
            assert_eq!(vars_string(&pairs(base), &pairs(over)), want, "{reason}");
        }
    }

    #[test]
    fn render_execute_command_cases() {
        let cases = [
            (
                "packer default",
                "chmod +x {{.Path}}; {{.Vars}} {{.Path}}",
                "chmod +x /tmp/s.sh; A='1'  /tmp/s.sh",
            ),
            (
                "spaces inside braces",
                "sudo {{ .Vars }}{{ .Path }}",
                "sudo A='1' /tmp/s.sh",
            ),
            ("no placeholders", "true", "true"),
            ("unclosed braces kept", "echo {{.Path", "echo {{.Path"),
        ];
        for (reason, template, want) in cases {
            let got = render_execute_command(template, "/tmp/s.sh", "A='1' ").unwrap();
            assert_eq!(got, want, "{reason}");
        }
    }

    #[test]
    fn render_execute_command_rejects_unknown_placeholder() {
        let err = render_execute_command("{{.EnvVarFile}}", "/p", "").unwrap_err();
        assert!(
            matches!(&err, Error::ExecuteCommand { placeholder } if placeholder == "{{.EnvVarFile}}"),
            "{err:?}"
        );
    }

    #[test]
    fn inline_script_cases() {
        let cases: [(&str, &str, &[&str], &str); 4] = [
            (
                "default shebang first",
                DEFAULT_SHEBANG,
                &["echo a", "echo b"],
                "#!/bin/sh -e\necho a\necho b\n",
            ),
            (
                "custom shebang",
                "/bin/bash -x",
                &["echo a"],
                "#!/bin/bash -x\necho a\n",
            ),
            (
                "own shebang kept with default",
                DEFAULT_SHEBANG,
                &["#!/bin/bash", "echo a"],
                "#!/bin/bash\necho a\n",
            ),
            (
                "custom shebang wins over own",
                "/bin/dash",
                &["#!/bin/bash"],
                "#!/bin/dash\n#!/bin/bash\n",
            ),
        ];
        for (reason, shebang, lines, want) in cases {
            let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            assert_eq!(
                String::from_utf8(inline_script(shebang, &lines)).unwrap(),
                want,
                "{reason}"
            );
        }
    }

    #[test]
    fn crlf_to_lf_cases() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            ("crlf becomes lf", b"a\r\nb\r\n", b"a\nb\n"),
            ("lone cr kept", b"a\rb", b"a\rb"),
            ("trailing cr kept", b"a\r", b"a\r"),
            ("lf untouched", b"a\nb", b"a\nb"),
        ];
        for (reason, input, want) in cases {
            assert_eq!(crlf_to_lf(input), want, "{reason}");
        }
    }

    #[test]
    fn line_buffer_cases() {
        let cases: [(&str, &[&[u8]], &[&str]); 5] = [
            ("one line per chunk", &[b"a\n", b"b\n"], &["a", "b"]),
            (
                "line split across chunks",
                &[b"he", b"llo\nwor", b"ld\n"],
                &["hello", "world"],
            ),
            ("partial tail flushed at end", &[b"a\nb"], &["a", "b"]),
            (
                "crlf trimmed, empty line kept",
                &[b"a\r\n\nb\n"],
                &["a", "", "b"],
            ),
            ("invalid utf-8 replaced", &[b"\xff\n"], &["\u{fffd}"]),
        ];
        for (reason, chunks, want) in cases {
            let mut buf = LineBuffer::default();
            let mut got: Vec<String> = chunks.iter().flat_map(|c| buf.push(c)).collect();
            got.extend(buf.finish());
            assert_eq!(got, want, "{reason}");
        }
    }
}
