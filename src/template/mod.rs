//! Loads Packer HCL2 templates (`*.pkr.hcl`) into typed configurations.
//!
//! Loading has no side effects and reports every problem of a run at once: parse errors of
//! all files, or (when all parse) unknown and unsupported options, wrong types, missing
//! options and bad references, each as a [`Diagnostic`] with its `file:line:col`.
//!
//! The subset read now: `packer` (ignored), `variable` (string/number/bool), `locals`,
//! `source "qemu"`, and `build` with `provisioner "shell"`, `post-processor` blocks (vagrant,
//! checksum, manifest, compress, shell-local) and `post-processors` chains.
//! Expressions may use `var.*`, `local.*`, `path.root`, `path.cwd` and Packer's functions
//! (`functions.rs`); `{{ .HTTPIP }}`-style text is left for the build to render.

mod build;
mod diag;
pub(crate) use diag::suggest as closest;
mod eval;
mod functions;
pub mod inspect;
mod load;
mod options;
mod qemu_source;
mod variables;
mod vartype;

pub use load::Stage;
pub use variables::{Inputs, Variable};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::builder::qemu;
use crate::postprocessor::vagrant;
use crate::provisioner::shell;

/// Loads the template at `path` (a `.pkr.hcl` file, or a directory whose `*.pkr.hcl` files are
/// read in name order, with its `*.auto.pkrvars.hcl` files), with variable values from
/// `inputs`.
pub fn load(path: &Path, inputs: &Inputs) -> Result<Template, Error> {
    load::load(path, inputs, Stage::Full)
}

/// Only parses the template and var files (`validate -syntax-only`): the template returned
/// is empty.
pub fn check_syntax(path: &Path, inputs: &Inputs) -> Result<(), Error> {
    load::load(path, inputs, Stage::Syntax).map(|_| ())
}

/// Why a template could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a template file (or the path given) failed.
    #[error("Cannot read template `{}`", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Listing the template directory failed.
    #[error("Cannot list template directory `{}`", path.display())]
    ListDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The directory holds no `*.pkr.hcl` file.
    #[error("No `*.pkr.hcl` file in `{}`", path.display())]
    NoTemplates { path: PathBuf },
    /// The template has problems, all of them here (print each with [`Diagnostic::render`]).
    #[error("Template has {} error{}", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
}

/// Where something is in a template file (1-based line and column). Problems on the command
/// line (`-var`) have line 0 and display as the file name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}", self.file.display());
        }
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// One problem found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
    pub hint: Option<String>,
}

/// A loaded, validated template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file or directory given on the command line.
    pub path: PathBuf,
    /// Declared variables with their values, in name order.
    pub variables: Vec<Variable>,
    pub sources: Vec<Source>,
    pub builds: Vec<Build>,
    /// Things that work but deserve a word (print each with [`Diagnostic::render`]).
    pub warnings: Vec<Diagnostic>,
    /// Values of sensitive variables and locals: never to be shown (see [`Template::mask`]).
    pub secrets: Vec<String>,
}

impl Template {
    fn empty(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            variables: Vec::new(),
            sources: Vec::new(),
            builds: Vec::new(),
            warnings: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// `text` with the values of sensitive variables replaced by `<sensitive>`.
    pub fn mask(&self, text: &str) -> String {
        load::mask(text, &self.secrets)
    }
}

/// A `source` block.
#[derive(Debug, Clone)]
pub enum Source {
    Qemu(Box<qemu::config::Config>),
    Null(crate::builder::null::Config),
}

impl Source {
    /// `(type, name)`, as in `source "TYPE" "NAME"`.
    pub fn key(&self) -> (&'static str, &str) {
        match self {
            Self::Qemu(c) => ("qemu", &c.name),
            Self::Null(c) => ("null", &c.name),
        }
    }
}

/// A `build` block.
#[derive(Debug, Clone)]
pub struct Build {
    pub name: Option<String>,
    /// `description`, shown by `inspect`.
    pub description: Option<String>,
    /// The sources it builds, with the build's own `source` blocks applied (options and
    /// `name`), in order: the `sources` list, then the `source` blocks.
    pub sources: Vec<Source>,
    pub provisioners: Vec<ProvisionerBlock>,
    /// `error-cleanup-provisioner`: runs when a provisioner failed.
    pub error_cleanup: Option<ProvisionerBlock>,
    /// Post-processor chains, in template order: a `post-processor` block directly in `build`
    /// is a chain of one; a `post-processors` block is a chain whose post-processors each get
    /// the previous one's artifact.
    pub post_processors: Vec<Vec<PostProcessorBlock>>,
}

/// One `post-processor` block: its type's options and the options every type has.
#[derive(Debug, Clone)]
pub struct PostProcessorBlock {
    /// `name`, shown in messages instead of the type.
    pub name: Option<String>,
    /// `only`: the sources (`qemu.NAME`) it runs for; empty = all.
    pub only: Vec<String>,
    /// `except`: the sources it skips.
    pub except: Vec<String>,
    /// `keep_input_artifact`, when set (each type has its default).
    pub keep_input_artifact: Option<bool>,
    pub kind: PostProcessor,
}

impl PostProcessorBlock {
    /// Whether it runs for the source `qemu.NAME` (Packer matches `TYPE.NAME` exactly).
    pub fn runs_for(&self, source: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|s| s == source))
            && !self.except.iter().any(|s| s == source)
    }
}

/// A `provisioner` block: its type's options and the options every type has.
#[derive(Debug, Clone)]
pub struct ProvisionerBlock {
    /// `only`: the sources (`TYPE.NAME`) it runs for; empty = all.
    pub only: Vec<String>,
    /// `except`: the sources it skips.
    pub except: Vec<String>,
    /// `pause_before` (default 0).
    pub pause_before: std::time::Duration,
    /// `max_retries` (default 0): further attempts after a failure.
    pub max_retries: u32,
    /// `timeout`: the longest one attempt may take.
    pub timeout: Option<std::time::Duration>,
    pub kind: Provisioner,
    /// `override`: the block as configured for a source, by the source's name (not
    /// `TYPE.NAME`, as in Packer).
    pub overrides: std::collections::BTreeMap<String, Provisioner>,
}

impl ProvisionerBlock {
    /// A block of `kind` with Packer's defaults for the common options.
    pub fn new(kind: Provisioner) -> Self {
        Self {
            only: Vec::new(),
            except: Vec::new(),
            pause_before: std::time::Duration::ZERO,
            max_retries: 0,
            timeout: None,
            kind,
            overrides: std::collections::BTreeMap::new(),
        }
    }

    /// What it runs for the source `TYPE.NAME`: its `override` for NAME, if any.
    pub fn kind_for(&self, source: &str) -> &Provisioner {
        let name = source.split_once('.').map_or(source, |(_, n)| n);
        self.overrides.get(name).unwrap_or(&self.kind)
    }

    /// Whether it runs for the source `TYPE.NAME`.
    pub fn runs_for(&self, source: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|s| s == source))
            && !self.except.iter().any(|s| s == source)
    }
}

/// The provisioner types kiln runs.
#[derive(Debug, Clone)]
pub enum Provisioner {
    Shell(shell::Config),
    File(crate::provisioner::file::Config),
    ShellLocal(crate::provisioner::shell_local::Config),
    Breakpoint(crate::provisioner::breakpoint::Config),
}

impl Provisioner {
    /// The type's name, as in `provisioner "TYPE"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Shell(_) => "shell",
            Self::File(_) => "file",
            Self::ShellLocal(_) => "shell-local",
            Self::Breakpoint(_) => "breakpoint",
        }
    }
}

/// A `post-processor` block inside `build`.
#[derive(Debug, Clone)]
pub enum PostProcessor {
    Vagrant(vagrant::Config),
    Checksum(crate::postprocessor::checksum::Config),
    Manifest(crate::postprocessor::manifest::Config),
    Compress(crate::postprocessor::compress::Config),
    ShellLocal(crate::provisioner::shell_local::Config),
    VagrantCatalog(crate::postprocessor::vagrant_catalog::Config),
}

impl PostProcessor {
    /// The type's name, as in `post-processor "TYPE"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Vagrant(_) => "vagrant",
            Self::Checksum(_) => "checksum",
            Self::Manifest(_) => "manifest",
            Self::Compress(_) => "compress",
            Self::ShellLocal(_) => "shell-local",
            Self::VagrantCatalog(_) => "vagrant-catalog",
        }
    }
}

#[cfg(test)]
mod tests;
