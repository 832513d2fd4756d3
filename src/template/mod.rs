//! Loads Packer HCL2 templates (`*.pkr.hcl`) into typed configurations.

use std::fmt;
use std::path::PathBuf;

use crate::builder::qemu;
use crate::postprocessor::vagrant;
use crate::provisioner::shell;

/// Where something is in a template file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    pub sources: Vec<Source>,
    pub builds: Vec<Build>,
}

/// A `source` block.
#[derive(Debug, Clone)]
pub enum Source {
    Qemu(qemu::config::Config),
}

/// A `build` block.
#[derive(Debug, Clone)]
pub struct Build {
    pub name: Option<String>,
    /// The sources it builds, as `(type, name)`, e.g. `("qemu", "testos")`.
    pub sources: Vec<(String, String)>,
    pub provisioners: Vec<Provisioner>,
    pub post_processors: Vec<PostProcessor>,
}

/// A `provisioner` block inside `build`.
#[derive(Debug, Clone)]
pub enum Provisioner {
    Shell(shell::Config),
}

/// A `post-processor` block inside `build`.
#[derive(Debug, Clone)]
pub enum PostProcessor {
    Vagrant(vagrant::Config),
}
