//! `source "docker" "NAME"` → [`crate::builder::docker::Config`], and the docker
//! post-processors' options (`docker-tag`, `docker-import`, `docker-save`, `docker-push`) →
//! [`crate::postprocessor::docker`], with Packer's option names and defaults.

use std::path::{Path, PathBuf};

use super::Kind;
use crate::builder::SourceConfig;
use crate::builder::docker::{CHANGE_INSTRUCTIONS, Config, Output};
use crate::engine::Login;
use crate::postprocessor::docker as pp;
use crate::template::Diagnostic;
use crate::template::diag::did_you_mean;
use crate::template::options::Options;
use crate::types::Secret;

pub(crate) const KIND: Kind = Kind {
    type_name: "docker",
    supported: SUPPORTED,
    blocks: &[],
    known: KNOWN,
    known_blocks: true,
    read: |name, o, dir, d| SourceConfig::Docker(Box::new(source(name, o, dir, d))),
};

/// The options kiln reads from a docker source.
#[rustfmt::skip]
const SUPPORTED: &[&str] = &[
    "image", "pull", "commit", "discard", "export_path", "author", "message", "changes",
    "run_command", "exec_user", "volumes", "container_dir", "privileged", "cap_add", "cap_drop",
    "device", "tmpfs", "runtime", "platform", "docker_path", "fix_upload_owner", "pty", "login",
    "login_server", "login_username", "login_password", "communicator",
];

/// Packer's other docker options and blocks (`build` bootstraps from a Dockerfile), and the
/// SSH options of `communicator = "ssh"`.
#[rustfmt::skip]
const KNOWN: &[&str] = &[
    "build", "windows_container", "ecr_login", "aws_access_key", "aws_secret_key", "aws_token",
    "aws_profile", "aws_force_use_public_ecr", "ssh_host", "ssh_port", "ssh_username",
    "ssh_password", "ssh_private_key_file", "ssh_timeout", "ssh_pty", "pause_before_connecting",
];

/// Options of `post-processor "docker-tag"`.
pub(crate) const TAG_OPTIONS: &[&str] = &["docker_path", "repository", "tag", "tags", "force"];
/// Options of `post-processor "docker-import"`.
pub(crate) const IMPORT_OPTIONS: &[&str] =
    &["docker_path", "repository", "tag", "changes", "platform"];
/// Options of `post-processor "docker-save"`.
pub(crate) const SAVE_OPTIONS: &[&str] = &["docker_path", "path"];
/// Options of `post-processor "docker-push"`.
pub(crate) const PUSH_OPTIONS: &[&str] = &[
    "docker_path",
    "login",
    "login_server",
    "login_username",
    "login_password",
    "platform",
];
/// Packer's docker-push options kiln does not read yet (Amazon ECR).
pub(crate) const PUSH_KNOWN: &[&str] = &[
    "ecr_login",
    "aws_access_key",
    "aws_secret_key",
    "aws_token",
    "aws_profile",
    "aws_force_use_public_ecr",
];

/// A `source "docker"` block.
fn source(name: &str, o: &Options<'_>, _template_dir: &Path, d: &mut Vec<Diagnostic>) -> Config {
    let output = output(o, d);
    let image = o.string("image", d).unwrap_or_default();
    if image.is_empty() && !o.has("image") {
        o.missing("image", " (the image the container starts from)", d);
    }
    let mut c = Config::with_defaults(name, image, output);
    c.docker_path = non_empty(o, "docker_path", d);
    if let Some(b) = o.bool("pull", d) {
        c.pull = b;
    }
    c.login = login(o, d);
    c.run.devices = o.string_list("device", d).unwrap_or_default();
    c.run.cap_add = o.string_list("cap_add", d).unwrap_or_default();
    c.run.cap_drop = o.string_list("cap_drop", d).unwrap_or_default();
    c.run.privileged = o.bool("privileged", d).unwrap_or(false);
    c.run.runtime = non_empty(o, "runtime", d);
    c.run.platform = non_empty(o, "platform", d);
    c.run.tmpfs = o.string_list("tmpfs", d).unwrap_or_default();
    c.run.volumes = o
        .string_map("volumes", d)
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(list) = o.string_list("run_command", d).filter(|l| !l.is_empty()) {
        c.run_command = list;
    }
    if let Some(s) = non_empty(o, "container_dir", d) {
        c.container_dir = s;
    }
    c.exec_user = non_empty(o, "exec_user", d);
    c.pty = o.bool("pty", d).unwrap_or(false);
    if let Some(b) = o.bool("fix_upload_owner", d) {
        c.fix_upload_owner = b;
    }
    let none = o.one_of(
        "communicator",
        &["docker", "none"],
        &["ssh", "winrm", "dockerWindowsContainer"],
        d,
    );
    c.communicator = none.as_deref() != Some("none");
    c
}

/// `commit`, `discard` or `export_path` (exactly one), with `author`, `message` and `changes`
/// only for `commit`.
fn output(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> Output {
    let commit = o.bool("commit", d).unwrap_or(false);
    let discard = o.bool("discard", d).unwrap_or(false);
    let export = o.string("export_path", d).filter(|s| !s.is_empty());
    let set: Vec<&str> = [
        ("commit", commit),
        ("discard", discard),
        ("export_path", export.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    match set.as_slice() {
        [] if !(o.has("commit") || o.has("discard") || o.has("export_path")) => d.push(
            Diagnostic::new(
                o.block_at.clone(),
                "no instructions given for handling the artifact; expected `commit`, `discard`, or `export_path`",
            )
            .with_hint("`commit = true` makes an image; `export_path = \"FILE.tar\"` writes the container's files"),
        ),
        [_, second, ..] => o.error(
            second,
            "only one of `commit`, `discard` and `export_path` may be set",
            d,
        ),
        _ => {}
    }
    let for_commit = ["author", "message", "changes"];
    if !commit {
        for name in for_commit.iter().filter(|n| o.has(n)) {
            o.error(
                name,
                format!("`{name}` applies only with `commit = true`"),
                d,
            );
        }
    }
    match (commit, export) {
        (true, _) => Output::Commit {
            author: non_empty(o, "author", d),
            message: non_empty(o, "message", d),
            changes: changes(o, d),
        },
        (false, Some(path)) => {
            let path = PathBuf::from(path);
            if path.is_dir() {
                o.error(
                    "export_path",
                    format!(
                        "`export_path` must be a file, not the directory `{}`",
                        path.display()
                    ),
                    d,
                );
            }
            Output::Export(path)
        }
        (false, None) => Output::Discard,
    }
}

/// A string option that must not be empty when set.
fn non_empty(o: &Options<'_>, name: &str, d: &mut Vec<Diagnostic>) -> Option<String> {
    let s = o.string(name, d)?;
    if s.is_empty() {
        o.error(name, format!("`{name}` must not be empty"), d);
        return None;
    }
    Some(s)
}

/// `changes`: Dockerfile instructions that `commit` (or `import`) applies to the image.
fn changes(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> Vec<String> {
    let list = o.string_list("changes", d).unwrap_or_default();
    for (i, change) in list.iter().enumerate() {
        let word = change.split_whitespace().next().unwrap_or_default();
        let upper = word.to_ascii_uppercase();
        if CHANGE_INSTRUCTIONS.contains(&upper.as_str()) && word.len() < change.trim().len() {
            continue;
        }
        let message = if word.is_empty() {
            "an empty change: write a Dockerfile instruction such as `CMD [\"app\"]`".to_owned()
        } else if CHANGE_INSTRUCTIONS.contains(&upper.as_str()) {
            format!("`{word}` needs its arguments")
        } else {
            format!(
                "`{word}` is not an instruction an image change can hold (one of {})",
                CHANGE_INSTRUCTIONS.join(", ")
            )
        };
        let diag = Diagnostic::new(o.element_at("changes", &[i], 0), message);
        let hint = match upper.as_str() {
            "MAINTAINER" => Some("the image's author is the source's `author` option".to_owned()),
            known if CHANGE_INSTRUCTIONS.contains(&known) => None,
            _ => did_you_mean(&upper, CHANGE_INSTRUCTIONS.iter().copied()),
        };
        d.push(match hint {
            Some(h) => diag.with_hint(h),
            None => diag,
        });
    }
    list
}

/// `login` with `login_server`, `login_username` and `login_password` (the credentials are
/// needed only, and used only, with `login = true`).
fn login(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> Option<Login> {
    let on = o.bool("login", d).unwrap_or(false);
    let fields = ["login_server", "login_username", "login_password"];
    if !on {
        for name in fields.iter().filter(|n| o.has(n)) {
            o.error(
                name,
                format!("`{name}` is used only with `login = true`"),
                d,
            );
        }
        return None;
    }
    let username = non_empty(o, "login_username", d);
    let password = o.string("login_password", d);
    for (name, given) in [
        ("login_username", username.is_some()),
        ("login_password", password.is_some()),
    ] {
        if !given && !o.has(name) {
            o.missing(name, " (with `login = true`)", d);
        }
    }
    Some(Login {
        server: non_empty(o, "login_server", d),
        username: username.unwrap_or_default(),
        password: Secret::new(password.unwrap_or_default()),
    })
}

/// A required string option of a post-processor.
fn required(o: &Options<'_>, name: &str, d: &mut Vec<Diagnostic>) -> String {
    let s = non_empty(o, name, d);
    if s.is_none() && !o.has(name) {
        o.missing(name, "", d);
    }
    s.unwrap_or_default()
}

/// `post-processor "docker-tag"`: `repository`, `tags` (and the older `tag`, a string or list),
/// `force`.
pub(crate) fn tag(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> pp::TagConfig {
    let mut tags = o.string_list("tags", d).unwrap_or_default();
    let old = match o.value("tag", d) {
        Some(hcl::Value::String(s)) => vec![s],
        Some(_) => o.string_list("tag", d).unwrap_or_default(),
        None => Vec::new(),
    };
    tags.extend(old);
    pp::TagConfig {
        docker_path: non_empty(o, "docker_path", d),
        repository: required(o, "repository", d),
        tags,
        deprecated_tag: o.has("tag"),
        force: o.bool("force", d).unwrap_or(false),
    }
}

/// `post-processor "docker-import"`.
pub(crate) fn import(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> pp::ImportConfig {
    pp::ImportConfig {
        docker_path: non_empty(o, "docker_path", d),
        repository: required(o, "repository", d),
        tag: non_empty(o, "tag", d),
        changes: changes(o, d),
        platform: non_empty(o, "platform", d),
    }
}

/// `post-processor "docker-save"`: `path` (from the current directory, as Packer's).
pub(crate) fn save(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> pp::SaveConfig {
    pp::SaveConfig {
        docker_path: non_empty(o, "docker_path", d),
        path: PathBuf::from(required(o, "path", d)),
    }
}

/// `post-processor "docker-push"`.
pub(crate) fn push(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> pp::PushConfig {
    pp::PushConfig {
        docker_path: non_empty(o, "docker_path", d),
        login: login(o, d),
        platform: non_empty(o, "platform", d),
    }
}
