//! External plugins: a `provisioner` or `post-processor` whose type kiln does not have runs the
//! executable `kiln-plugin-TYPE`, written in any language. The protocol (docs/plugins.md) is one
//! JSON object on the plugin's stdin and one on its stdout; its stderr lines are its output.
//!
//! Where a plugin is found ([`places`]): beside the template file, in the per-user plugin
//! directory ([`user_dir`]), then on `PATH`; the block's `kiln_plugin` attribute names one
//! explicitly instead. The template reader does the lookup; a type with no plugin stays an
//! [`crate::unknown::UnknownType`].
//!
//! Every run is in its own process group, killed on Ctrl-C and on `timeout`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::artifact::{Artifact, Disk, Image};
use crate::provisioner::local_process::{self, Exchanged};
use crate::ui::Ui;

/// The protocol version kiln speaks.
pub const PROTOCOL: u32 = 1;
/// A plugin's executable is this prefix and the block's type.
pub const PREFIX: &str = "kiln-plugin-";
/// The attribute that names a plugin's executable explicitly (kiln's, never sent).
pub const PATH_ATTRIBUTE: &str = "kiln_plugin";
/// How long `validate` mode may take when the block sets no `timeout`.
pub const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which kind of block a plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Provisioner,
    PostProcessor,
}

impl Kind {
    /// As the protocol and templates name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioner => "provisioner",
            Self::PostProcessor => "post-processor",
        }
    }
}

/// A place in a template file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

/// A block run by a plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub kind: Kind,
    /// The block's type (`tfvars`).
    pub type_name: String,
    /// The executable found for it.
    pub program: PathBuf,
    /// The block's attributes as JSON (nested blocks as lists of objects), without the options
    /// kiln handles itself (`only`, `except`, `timeout`, …, `kiln_plugin`).
    pub config: Map<String, Value>,
    /// `timeout`: the longest a run may take (for a provisioner, the provisioner layer applies
    /// it; for a post-processor and `validate` mode, this module does).
    pub timeout: Option<Duration>,
    /// Where the block is written.
    pub at: Place,
    /// Where each attribute (and nested block) is written, by name.
    pub attributes_at: BTreeMap<String, Place>,
}

/// The build a plugin runs for.
#[derive(Debug, Clone, Serialize)]
pub struct BuildRef {
    /// The source's name (`PACKER_BUILD_NAME`).
    pub name: String,
    /// The builder's type (`PACKER_BUILDER_TYPE`).
    #[serde(rename = "type")]
    pub builder_type: String,
    /// `TYPE.NAME` of the source.
    pub source: String,
}

/// One problem a plugin found in its configuration (`validate` mode).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// The attribute it is about, when there is one.
    #[serde(default)]
    pub attribute: Option<String>,
    pub message: String,
}

/// Why a plugin run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not be run, or was cancelled.
    #[error("Plugin `{}` did not run to its end", program.display())]
    Run {
        program: PathBuf,
        #[source]
        source: local_process::Error,
    },
    /// Its request could not be written as JSON.
    #[error("Cannot write the request for plugin `{}`", program.display())]
    Encode {
        program: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// It exited non-zero (or was killed by a signal).
    #[error("Plugin `{}` exited with {status}{}", program.display(), tail_text(tail))]
    Exited {
        program: PathBuf,
        status: String,
        tail: Vec<String>,
    },
    /// Its stdout was not one JSON object.
    #[error(
        "Plugin `{}` printed {what} on stdout, where kiln expects one JSON object (protocol {PROTOCOL})",
        program.display()
    )]
    Garbage {
        program: PathBuf,
        what: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    /// It ran longer than its `timeout` (its process group was killed).
    #[error("Plugin `{}` did not finish within {limit:?}; its processes were killed", program.display())]
    Timeout { program: PathBuf, limit: Duration },
    /// In `run` mode it reported configuration problems.
    #[error("Plugin `{}` rejected its configuration: {}", program.display(), problems_text(problems))]
    Rejected {
        program: PathBuf,
        problems: Vec<Problem>,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return " and printed nothing on stderr".into();
    }
    let mut s = String::from("; the end of its stderr:");
    for line in tail {
        s.push_str("\n    ");
        s.push_str(line);
    }
    s
}

fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match &p.attribute {
            Some(a) => format!("`{a}`: {}", p.message),
            None => p.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The per-user plugin directory: `$XDG_DATA_HOME/kiln/plugins`, by default
/// `~/.local/share/kiln/plugins`.
pub fn user_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
        return Some(d.join("kiln/plugins"));
    }
    std::env::var_os("HOME")
        .and_then(absolute)
        .map(|h| h.join(".local/share/kiln/plugins"))
}

/// Every place kiln looks for the plugin of `type_name`, in order: `template_dir`, the
/// [`user_dir`], each `PATH` directory. None for a type that cannot be a file name.
pub fn places(type_name: &str, template_dir: &Path) -> Vec<PathBuf> {
    let valid = !type_name.is_empty()
        && type_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !type_name.starts_with('.');
    if !valid {
        return Vec::new();
    }
    let name = format!("{PREFIX}{type_name}");
    let mut dirs = vec![template_dir.to_owned()];
    dirs.extend(user_dir());
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let p = d.join(&name);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The first of [`places`] holding an executable, or all the places looked.
pub fn find(type_name: &str, template_dir: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let places = places(type_name, template_dir);
    match places.iter().find(|p| is_executable(p)) {
        Some(p) => Ok(p.clone()),
        None => Err(places),
    }
}

/// Whether `path` is a file someone may execute.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What kiln writes on a plugin's stdin.
#[derive(Serialize)]
struct Request<'a> {
    protocol: u32,
    kind: &'static str,
    #[serde(rename = "type")]
    type_name: &'a str,
    mode: &'static str,
    config: &'a Map<String, Value>,
    build: &'a BuildRef,
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    build_values: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<ArtifactIn<'a>>,
}

impl<'a> Request<'a> {
    /// The request for `plugin` in `mode`, without the optional parts.
    fn new(plugin: &'a Plugin, mode: &'static str, build: &'a BuildRef, run_id: &'a str) -> Self {
        Self {
            protocol: PROTOCOL,
            kind: plugin.kind.as_str(),
            type_name: &plugin.type_name,
            mode,
            config: &plugin.config,
            build,
            run_id,
            build_values: None,
            artifact: None,
        }
    }
}

/// A post-processor's input artifact, as sent.
#[derive(Serialize)]
struct ArtifactIn<'a> {
    builder_type: &'a str,
    builder_id: &'a str,
    id: &'a str,
    files: &'a [PathBuf],
    state: State,
}

/// What an artifact carries besides its files.
#[derive(Serialize, Deserialize, Default)]
struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disk: Option<Disk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<Image>,
}

/// What kiln reads from a plugin's stdout.
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    errors: Vec<Problem>,
    #[serde(default)]
    artifact: Option<ArtifactOut>,
    #[serde(default)]
    keep_input: Option<bool>,
}

/// A post-processor's new artifact.
#[derive(Deserialize)]
struct ArtifactOut {
    id: String,
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    state: State,
}

/// Asks the plugin whether `plugin.config` is right (`validate` mode): the problems it found.
pub async fn validate(
    plugin: &Plugin,
    build: &BuildRef,
    run_id: &str,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Vec<Problem>, Error> {
    let request = Request::new(plugin, "validate", build, run_id);
    let limit = plugin.timeout.unwrap_or(VALIDATE_TIMEOUT);
    let response = call(plugin, &request, &[], Some(limit), ui, cancel).await?;
    Ok(response.errors)
}

/// Runs a provisioner plugin. `build_values` are Packer's `build.*` values (`Host`, `Port`,
/// `User`, …), `env` the build's `PACKER_*` variables. Its `timeout` is applied by the caller.
pub async fn provision(
    plugin: &Plugin,
    build: &BuildRef,
    run_id: &str,
    build_values: &[(String, String)],
    env: &[(String, String)],
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    ui.say(format!(
        "Provisioning with plugin `{}`",
        plugin.program.display()
    ));
    let request = Request {
        build_values: Some(
            build_values
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        ),
        ..Request::new(plugin, "run", build, run_id)
    };
    let response = call(plugin, &request, env, None, ui, cancel).await?;
    rejected(plugin, response).map(|_| ())
}

/// Runs a post-processor plugin on `input`: its artifact (the input itself when it names none)
/// and whether it keeps its input (by default it does).
pub async fn post_process(
    plugin: &Plugin,
    build: &BuildRef,
    run_id: &str,
    input: &Artifact,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<(Artifact, bool), Error> {
    ui.say(format!(
        "Running post-processor plugin `{}`",
        plugin.program.display()
    ));
    let request = Request {
        artifact: Some(ArtifactIn {
            builder_type: input.builder_type,
            builder_id: input.builder_id,
            id: &input.id,
            files: &input.files,
            state: State {
                disk: input.disk.clone(),
                image: input.image.clone(),
            },
        }),
        ..Request::new(plugin, "run", build, run_id)
    };
    let env = [
        ("PACKER_BUILD_NAME".to_owned(), build.name.clone()),
        ("PACKER_BUILDER_TYPE".to_owned(), build.builder_type.clone()),
    ];
    let response = call(plugin, &request, &env, plugin.timeout, ui, cancel).await?;
    let response = rejected(plugin, response)?;
    let keep = response.keep_input.unwrap_or(true);
    let artifact = match response.artifact {
        None => input.clone(),
        Some(out) => Artifact {
            id: out.id,
            files: out.files,
            disk: out.state.disk,
            image: out.state.image,
            ..input.clone()
        },
    };
    Ok((artifact, keep))
}

/// A `run` answer that reports problems is a failure.
fn rejected(plugin: &Plugin, response: Response) -> Result<Response, Error> {
    if response.errors.is_empty() {
        Ok(response)
    } else {
        Err(Error::Rejected {
            program: plugin.program.clone(),
            problems: response.errors,
        })
    }
}

/// One exchange: `request` in, the answer out, within `limit`.
async fn call(
    plugin: &Plugin,
    request: &Request<'_>,
    env: &[(String, String)],
    limit: Option<Duration>,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Response, Error> {
    let program = plugin.program.clone();
    let input = serde_json::to_vec(request).map_err(|source| Error::Encode {
        program: program.clone(),
        source,
    })?;
    let mut command = tokio::process::Command::new(&program);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.env("KILN_PLUGIN_PROTOCOL", PROTOCOL.to_string());
    let ran = local_process::exchange(&mut command, &input, ui, cancel);
    let ran = match limit {
        Some(limit) => tokio::time::timeout(limit, ran)
            .await
            .map_err(|_| Error::Timeout {
                program: program.clone(),
                limit,
            })?,
        None => ran.await,
    };
    let out = ran.map_err(|source| Error::Run {
        program: program.clone(),
        source,
    })?;
    parse(&program, out)
}

/// The answer in `out`, when the plugin succeeded and printed one JSON object.
fn parse(program: &Path, out: Exchanged) -> Result<Response, Error> {
    if out.code != Some(0) {
        return Err(Error::Exited {
            program: program.to_owned(),
            status: out
                .code
                .map_or_else(|| "a signal".to_owned(), |c| format!("status {c}")),
            tail: out.stderr_tail,
        });
    }
    let garbage = |what: String, source| Error::Garbage {
        program: program.to_owned(),
        what,
        source,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Err(garbage("nothing".into(), None));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        let mut shown: String = text.trim().chars().take(80).collect();
        if text.trim().chars().count() > 80 {
            shown.push('…');
        }
        garbage(format!("{shown:?}"), Some(e))
    })?;
    if !value.is_object() {
        return Err(garbage(format!("a JSON {}", json_kind(&value)), None));
    }
    serde_json::from_value(value).map_err(|e| garbage("an object kiln cannot read".into(), Some(e)))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `config` with the build's placeholders (`{{ .Host }}`) filled into every string.
pub fn render_config(config: &Map<String, Value>, data: &[(String, String)]) -> Map<String, Value> {
    fn walk(v: &Value, data: &[(String, String)]) -> Value {
        match v {
            Value::String(s) => Value::String(crate::render::render_known(s, |name| {
                data.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| std::borrow::Cow::Borrowed(v.as_str()))
            })),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, data)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, data)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    config
        .iter()
        .map(|(k, v)| (k.clone(), walk(v, data)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchanged(code: i32, stdout: &str) -> Exchanged {
        Exchanged {
            code: Some(code),
            stdout: stdout.as_bytes().to_vec(),
            stderr_tail: vec!["last words".into()],
        }
    }

    #[test]
    fn answers_are_read_or_named_as_garbage() {
        let p = Path::new("/x/kiln-plugin-t");
        let ok = parse(p, exchanged(0, r#"{"keep_input": false, "extra": 1}"#)).unwrap();
        assert_eq!(ok.keep_input, Some(false));
        let table = [
            (exchanged(0, ""), "printed nothing on stdout"),
            (exchanged(0, "hello world"), "printed \"hello world\""),
            (exchanged(0, "[1]"), "printed a JSON array"),
            (
                exchanged(0, r#"{"errors": 3}"#),
                "an object kiln cannot read",
            ),
            (
                exchanged(2, "{}"),
                "exited with status 2; the end of its stderr:\n    last words",
            ),
        ];
        for (out, want) in table {
            let err = parse(p, out).err().unwrap().to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn places_are_the_template_dir_the_user_dir_then_path() {
        let places = places("tfvars", Path::new("/tpl"));
        assert_eq!(places[0], Path::new("/tpl/kiln-plugin-tfvars"));
        if let Some(user) = user_dir() {
            assert_eq!(places[1], user.join("kiln-plugin-tfvars"));
        }
        assert!(places.iter().all(|p| p.ends_with("kiln-plugin-tfvars")));
        // A type that is not a plain name is never looked up as a path.
        assert!(super::places("../x", Path::new("/tpl")).is_empty());
        assert!(super::places("a/b", Path::new("/tpl")).is_empty());
    }

    #[test]
    fn build_placeholders_are_filled_into_every_string() {
        let config: Map<String, Value> = serde_json::from_str(
            r#"{"a": "{{ .Host }}:{{ .Port }}", "b": [{"c": "{{ .Nope }}"}], "n": 3}"#,
        )
        .unwrap();
        let data = [
            ("Host".to_owned(), "10.0.0.1".to_owned()),
            ("Port".to_owned(), "22".to_owned()),
        ];
        let out = Value::Object(render_config(&config, &data));
        assert_eq!(
            out,
            serde_json::json!({"a": "10.0.0.1:22", "b": [{"c": "{{ .Nope }}"}], "n": 3})
        );
    }
}
