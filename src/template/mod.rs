//! Loads Packer HCL2 templates (`*.pkr.hcl`) into typed configurations. `*.pkr.json` files
//! (HCL's JSON syntax) and legacy JSON templates (`"builders": [...]`) are first written as
//! HCL text by `legacy`, keeping their JSON positions, and then loaded the same way.
//!
//! Loading has no side effects and reports every problem of a run at once: parse errors of
//! all files, or (when all parse) unknown and unsupported options, wrong types, missing
//! options and bad references, each as a [`Diagnostic`] with its `file:line:col`.
//!
//! The subset read now: `packer` (ignored), `variable` (string/number/bool), `locals`,
//! `source` blocks of the kinds in `sources/` (one table: qemu, null), and `build` with
//! `provisioner` blocks, `post-processor` blocks (vagrant, checksum, manifest, compress,
//! shell-local) and `post-processors` chains.
//!
//! The parser depends on the domain modules (it builds their config types:
//! [`crate::builder::SourceConfig`], [`crate::provisioner::ProvisionerBlock`],
//! [`crate::postprocessor::PostProcessorBlock`]); no runtime module imports it.
//! Expressions may use `var.*`, `local.*`, `path.root`, `path.cwd` and Packer's functions
//! (`functions.rs`); `{{ .HTTPIP }}`-style text is left for the build to render.

mod ansible;
mod brackets;
mod build;
mod data;
mod diag;
mod eval;
mod functions;
pub mod inspect;
mod legacy;
mod load;
mod options;
mod select;
mod sources;
mod variables;
mod vartype;

pub use load::Stage;
pub use select::Selection;
pub use variables::{DataSources, Inputs, Variable};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::builder::SourceConfig;
use crate::postprocessor::PostProcessorBlock;
use crate::provisioner::ProvisionerBlock;

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

/// The HCL2 text of the legacy JSON template at `path` (`kiln hcl2_upgrade`), unformatted.
/// Problems in the JSON are [`Error::Invalid`], all of them.
pub fn hcl2_upgrade(path: &Path) -> Result<String, Error> {
    load::upgrade(path)
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
    /// The directory holds no `*.pkr.hcl` or `*.pkr.json` file.
    #[error("No `*.pkr.hcl` or `*.pkr.json` file in `{}`", path.display())]
    NoTemplates { path: PathBuf },
    /// The template has problems, all of them here (print each with [`Diagnostic::render`]).
    #[error("Template has {} error{}", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    /// The selected builds use types kiln does not have ([`Template::unrunnable`]).
    #[error(
        "The selected builds use {} block{} kiln cannot run",
        .0.len(),
        if .0.len() == 1 { "" } else { "s" }
    )]
    Unrunnable(Vec<Diagnostic>),
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
    /// The declared sources of types kiln builds, as read: all of them, or with `-only` /
    /// `-except` those the selected builds use.
    pub sources: Vec<SourceConfig>,
    pub builds: Vec<Build>,
    /// Things that work but deserve a word (print each with [`Diagnostic::render`]).
    pub warnings: Vec<Diagnostic>,
    /// Blocks of types kiln does not have that a selected build would run: `validate` warns,
    /// `build` refuses to start.
    pub unrunnable: Vec<Diagnostic>,
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
            unrunnable: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// `text` with the values of sensitive variables replaced by `<sensitive>`.
    pub fn mask(&self, text: &str) -> String {
        load::mask(text, &self.secrets)
    }
}

/// A `build` block.
#[derive(Debug, Clone)]
pub struct Build {
    pub name: Option<String>,
    /// `description`, shown by `inspect`.
    pub description: Option<String>,
    /// Every source it names, as `TYPE.NAME` (after renaming), selected or not.
    pub source_names: Vec<String>,
    /// The types of its blocks, for `inspect`.
    pub outline: Outline,
    /// What runs: one per selected source, in order (the `sources` list, then the `source`
    /// blocks).
    pub runs: Vec<Run>,
}

/// One source of a build with what runs for it: what Packer calls a build and shows as
/// `[BUILD.]TYPE.NAME`.
#[derive(Debug, Clone)]
pub struct Run {
    /// `[BUILD.]TYPE.NAME`.
    pub name: String,
    /// The source, with the build's own `source` block applied (options and `name`).
    pub source: SourceConfig,
    /// The provisioners that run for it, in order.
    pub provisioners: Vec<ProvisionerBlock>,
    /// `error-cleanup-provisioner`: runs when a provisioner failed.
    pub error_cleanup: Option<ProvisionerBlock>,
    /// Post-processor chains, in template order: a `post-processor` block directly in `build`
    /// is a chain of one; a `post-processors` block is a chain whose post-processors each get
    /// the previous one's artifact.
    pub post_processors: Vec<Vec<PostProcessorBlock>>,
}

/// The types of a build's provisioner and post-processor blocks, as written.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    pub provisioners: Vec<String>,
    pub error_cleanup: Option<String>,
    pub post_processors: Vec<Vec<String>>,
}

#[cfg(test)]
mod tests;
