//! The `shell` provisioner: uploads a script (inline lines or a file) and runs it remotely.

use std::path::PathBuf;

/// What a `provisioner "shell"` block runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellSource {
    /// `inline`: one command per line, run by `inline_shebang` (default `/bin/sh -e`).
    Inline(Vec<String>),
    /// `script`: a local file (resolved against the template directory).
    Script(PathBuf),
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
}

impl Config {
    pub fn with_defaults(source: ShellSource) -> Self {
        Self {
            source,
            inline_shebang: "/bin/sh -e".into(),
            environment_vars: Vec::new(),
            execute_command: "chmod +x {{.Path}}; {{.Vars}} {{.Path}}".into(),
            remote_folder: "/tmp".into(),
        }
    }
}
