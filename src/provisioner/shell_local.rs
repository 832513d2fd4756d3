//! `shell-local`, the provisioner and the post-processor: runs commands on the build machine
//! with Packer's environment (`PACKER_BUILD_NAME`, `PACKER_BUILDER_TYPE`, the template's
//! variables). As a post-processor it passes its input artifact through unchanged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::local_process;
use crate::communicator::sh_quote;
use crate::ui::Ui;

/// What a `shell-local` block runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `inline` (or the deprecated `command`): lines of a script run by `inline_shebang`.
    Inline(Vec<String>),
    /// `script` / `scripts`: local files, run in order.
    Scripts(Vec<PathBuf>),
}

/// A validated `shell-local` block (provisioner or post-processor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: Source,
    /// `execute_command` (default `["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]`; a single string
    /// is run by `/bin/sh -c`, as in Packer).
    pub execute_command: Vec<String>,
    /// `inline_shebang` (default `/bin/sh -e`).
    pub inline_shebang: String,
    /// `environment_vars` as `KEY=VALUE` pairs, and `env`, merged (keys sorted).
    pub environment_vars: Vec<(String, String)>,
    /// `env_var_format` (default `%s='%s' `): how each variable is written into `{{.Vars}}`.
    pub env_var_format: String,
    /// `only_on`: operating systems (Go names: `linux`, `darwin`, …) to run on; empty = all.
    pub only_on: Vec<String>,
    /// `valid_exit_codes` (default `[0]`).
    pub valid_exit_codes: Vec<i64>,
}

impl Config {
    /// A config with Packer's defaults for everything but the source.
    pub fn with_defaults(source: Source) -> Self {
        Self {
            source,
            execute_command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "{{.Vars}} {{.Script}}".into(),
            ],
            inline_shebang: "/bin/sh -e".into(),
            environment_vars: Vec::new(),
            env_var_format: "%s='%s' ".into(),
            only_on: Vec::new(),
            valid_exit_codes: vec![0],
        }
    }
}

/// Why shell-local failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The temporary file for the inline script could not be written.
    #[error("Cannot write the inline script to a temporary file")]
    WriteScript(#[source] std::io::Error),
    /// `execute_command` uses a placeholder other than `{{.Vars}}` and `{{.Script}}`.
    #[error(
        "Unsupported placeholder in execute_command `{command}` (kiln fills {{{{.Vars}}}} and {{{{.Script}}}})"
    )]
    ExecuteCommand { command: String },
    /// `execute_command` is empty.
    #[error("execute_command is empty")]
    EmptyCommand,
    /// The command could not be started.
    #[error("Cannot run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("Lost track of `{script}` while it ran")]
    Wait {
        script: String,
        #[source]
        source: std::io::Error,
    },
    /// The command exited with a status not in `valid_exit_codes`.
    #[error("Script `{script}` exited with status {status} (valid: {valid:?}){}", if *status == 126 { "; 126 means it could not be executed: is it executable?" } else { "" })]
    ExitStatus {
        script: String,
        status: i64,
        valid: Vec<i64>,
    },
    /// The command was killed by a signal.
    #[error("Script `{script}` was killed by a signal")]
    Killed { script: String },
    /// The build was cancelled while the command ran (it was killed).
    #[error("Cancelled while `{script}` ran")]
    Cancelled { script: String },
}

/// The operating system name Packer's `only_on` uses for this machine.
fn this_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Runs every script of `config` in order with `env` (kiln's `PACKER_*` values) plus the
/// template's variables, output shown through `ui`. Skips (and says so) when `only_on` excludes
/// this system.
pub async fn run(
    config: &Config,
    ui: &Ui,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<(), Error> {
    if !config.only_on.is_empty() && !config.only_on.iter().any(|os| os == this_os()) {
        ui.say(format!(
            "Skipping shell-local: `only_on` does not list `{}`",
            this_os()
        ));
        return Ok(());
    }
    let vars: BTreeMap<&str, &str> = env
        .iter()
        .chain(&config.environment_vars)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let vars_text: String = vars
        .iter()
        .map(|(k, v)| format_var(&config.env_var_format, k, v))
        .collect();

    // The inline script lives in a temporary file for as long as it runs.
    let mut inline_file = None;
    let scripts: Vec<(String, PathBuf)> = match &config.source {
        Source::Inline(lines) => {
            let file = inline_script(&config.inline_shebang, lines).map_err(Error::WriteScript)?;
            let path = file.to_path_buf();
            inline_file = Some(file);
            vec![("inline script".to_owned(), path)]
        }
        Source::Scripts(paths) => paths
            .iter()
            .map(|p| (p.display().to_string(), p.clone()))
            .collect(),
    };
    for (name, path) in scripts {
        ui.say(format!("Running local shell script: {name}"));
        let argv = render_command(&config.execute_command, &vars_text, &path.to_string_lossy())?;
        let status = run_one(&argv, &vars, ui, cancel, &name).await?;
        if !config.valid_exit_codes.contains(&status) {
            return Err(Error::ExitStatus {
                script: name,
                status,
                valid: config.valid_exit_codes.clone(),
            });
        }
    }
    drop(inline_file);
    Ok(())
}

/// `{{.Vars}}` and `{{.Script}}` filled into each element of `execute_command`.
fn render_command(template: &[String], vars: &str, script: &str) -> Result<Vec<String>, Error> {
    if template.is_empty() {
        return Err(Error::EmptyCommand);
    }
    template
        .iter()
        .map(|arg| {
            let known = [("Vars", vars), ("Script", script)];
            crate::render::render(arg, crate::render::pairs(&known)).map_err(|_| {
                Error::ExecuteCommand {
                    command: template.join(" "),
                }
            })
        })
        .collect()
}

/// One variable in `env_var_format` (two `%s`: the name, then the value). With the default
/// single-quoted format, quotes inside the value are escaped the way sh needs.
fn format_var(format: &str, key: &str, value: &str) -> String {
    let quoted_default = format.contains("'%s'");
    let value = if quoted_default {
        // `'` + sh_quote's inner text + `'`: drop the outer quotes sh_quote adds.
        let q = sh_quote(value);
        q[1..q.len() - 1].to_owned()
    } else {
        value.to_owned()
    };
    format.replacen("%s", key, 1).replacen("%s", &value, 1)
}

/// The inline lines as an executable temporary script.
fn inline_script(shebang: &str, lines: &[String]) -> std::io::Result<tempfile::TempPath> {
    let mut file = tempfile::Builder::new()
        .prefix("kiln-shell-local-")
        .suffix(".sh")
        .tempfile()?;
    writeln!(file, "#!{shebang}")?;
    for line in lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o700))?;
    }
    // Closed before it runs: executing a file still open for writing fails (ETXTBSY).
    Ok(file.into_temp_path())
}

/// Runs `argv`, streaming its output lines to `ui`; returns its exit status.
async fn run_one(
    argv: &[String],
    vars: &BTreeMap<&str, &str>,
    ui: &Ui,
    cancel: &CancellationToken,
    script: &str,
) -> Result<i64, Error> {
    let (program, args) = argv.split_first().ok_or(Error::EmptyCommand)?;
    tracing::debug!(?argv, "running shell-local command");
    let mut command = tokio::process::Command::new(program);
    command.args(args).envs(vars.iter().map(|(k, v)| (*k, *v)));
    let code = local_process::run(&mut command, ui, cancel)
        .await
        .map_err(|e| match e {
            local_process::Error::Spawn { program, source } => Error::Spawn { program, source },
            local_process::Error::Wait { source, .. } => Error::Wait {
                script: script.to_owned(),
                source,
            },
            local_process::Error::Cancelled { .. } => Error::Cancelled {
                script: script.to_owned(),
            },
        })?;
    code.map(i64::from).ok_or_else(|| Error::Killed {
        script: script.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("PACKER_BUILD_NAME".into(), "testos".into()),
            ("PACKER_BUILDER_TYPE".into(), "qemu".into()),
        ]
    }

    #[test]
    fn vars_are_formatted_and_quoted() {
        assert_eq!(format_var("%s='%s' ", "A", "it's"), "A='it'\"'\"'s' ");
        assert_eq!(format_var("export %s=%s; ", "A", "x"), "export A=x; ");
    }

    #[test]
    fn execute_command_placeholders() {
        let argv = render_command(
            &Config::with_defaults(Source::Inline(vec![])).execute_command,
            "A='1' ",
            "/tmp/s.sh",
        )
        .unwrap();
        assert_eq!(argv, ["/bin/sh", "-c", "A='1'  /tmp/s.sh"]);
        let err = render_command(&["{{.Path}}".into()], "", "x").unwrap_err();
        assert!(matches!(err, Error::ExecuteCommand { .. }));
        assert!(matches!(
            render_command(&[], "", "x"),
            Err(Error::EmptyCommand)
        ));
    }

    #[tokio::test]
    async fn inline_runs_with_packer_env_and_output_shown() {
        let (ui, lines) = Ui::memory();
        let mut c = Config::with_defaults(Source::Inline(vec![
            "echo \"build=$PACKER_BUILD_NAME type=$PACKER_BUILDER_TYPE v=$V\"".into(),
            "echo to-stderr >&2".into(),
        ]));
        c.environment_vars = vec![("V".into(), "a b'c".into())];
        run(&c, &ui, &env(), &CancellationToken::new())
            .await
            .unwrap();
        let lines = lines.lock().unwrap().join("\n");
        assert!(lines.contains("build=testos type=qemu v=a b'c"), "{lines}");
        assert!(lines.contains("to-stderr"), "{lines}");
    }

    #[tokio::test]
    async fn exit_codes_scripts_and_only_on() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (ui, lines) = Ui::memory();
        let cancel = CancellationToken::new();
        let mut c = Config::with_defaults(Source::Scripts(vec![script.clone()]));
        let err = run(&c, &ui, &env(), &cancel).await.unwrap_err();
        assert!(
            matches!(err, Error::ExitStatus { status: 3, .. }),
            "{err:?}"
        );
        c.valid_exit_codes = vec![0, 3];
        run(&c, &ui, &env(), &cancel).await.unwrap();
        c.only_on = vec!["windows".into()];
        std::fs::write(&script, "#!/bin/sh\nexit 1\n").unwrap();
        run(&c, &ui, &env(), &cancel).await.unwrap();
        assert!(lines.lock().unwrap().iter().any(|l| l.contains("only_on")));
    }

    #[tokio::test]
    async fn cancel_kills_the_command() {
        let (ui, _) = Ui::memory();
        let cancel = CancellationToken::new();
        let c = Config::with_defaults(Source::Inline(vec!["sleep 600".into()]));
        let trigger = cancel.clone();
        tokio::spawn(async move { trigger.cancel() });
        let err = run(&c, &ui, &env(), &cancel).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    }
}
