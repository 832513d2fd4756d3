//! The command line, Packer-style: `kiln build [-var k=v]… [-force] [-on-error=…] TEMPLATE`.
//!
//! Packer's flags are single-dash long flags (`-var`, `-force`); users paste them from Packer
//! docs and scripts, so [`normalize`] rewrites them to clap's `--var` form before parsing.
//! Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::step::OnError;

/// Build VM images from installer ISOs with QEMU; reads Packer HCL2 templates.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, disable_version_flag = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the images a template describes.
    Build(BuildArgs),
    /// Check a template and report every problem in it.
    Validate(ValidateArgs),
    /// Show a template's variables, sources and builds.
    Inspect(InspectArgs),
    /// Rewrite `*.pkr.hcl` and `*.pkrvars.hcl` files in canonical layout, as `packer fmt`.
    Fmt(FmtArgs),
    /// Write the HCL2 equivalent of a legacy JSON template (`FILE.json` → `FILE.json.pkr.hcl`),
    /// as `packer hcl2_upgrade`.
    #[command(name = "hcl2_upgrade")]
    Hcl2Upgrade(Hcl2UpgradeArgs),
    /// Inspect, check or clear the cache of ISOs and install layers (`KILN_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/kiln`).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Print kiln's version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// List the cached files (verified downloads by digest, unverified ones, partial ones) and
    /// the install layers, with their sizes.
    List,
    /// Remove every cached file and install layer that no running build is using.
    Clean,
    /// Hash every verified file again; remove those that no longer match.
    Verify,
    /// Download a file into the cache, as a build would (e.g. before going offline).
    Fetch {
        /// The checksum, in any `iso_checksum` form (`sha256:HEX`, `file:URL`, `none`, …).
        #[arg(long)]
        checksum: String,
        /// Extension of the cached file (`iso_target_extension`).
        #[arg(long, default_value = "iso")]
        extension: String,
        /// URLs or paths, tried in order.
        #[arg(required = true)]
        urls: Vec<String>,
    },
}

/// Where template variables get their values, besides defaults and `PKR_VAR_*`, and which
/// builds are selected.
#[derive(Debug, clap::Args)]
pub struct VarArgs {
    /// Set a template variable (repeatable): `-var name=value`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Read variable values from a file (repeatable): `-var-file debian12.pkrvars.hcl`.
    #[arg(long = "var-file", value_name = "PATH")]
    pub var_files: Vec<PathBuf>,
    /// Only these builds (comma-separated globs over `TYPE.NAME` and `BUILD.TYPE.NAME`, e.g.
    /// `-only='qemu.*'`); the sources of the others are not even read.
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    pub only: Vec<String>,
    /// Every build but these (globs, as `-only`); also skips post-processors of that `name`.
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    pub except: Vec<String>,
    /// Do not warn about var-file values for variables the template does not declare.
    #[arg(long)]
    pub no_warn_undeclared_var: bool,
}

impl VarArgs {
    /// The inputs of template loading, with this process's `PKR_VAR_*` variables.
    pub fn inputs(self) -> crate::template::Inputs {
        let mut inputs = crate::template::Inputs::with_env(self.vars, self.var_files);
        inputs.selection = crate::template::Selection {
            only: self.only,
            except: self.except,
        };
        inputs.quiet_undeclared = self.no_warn_undeclared_var;
        inputs
    }
}

/// How output looks (`build`).
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Start every output line with the time (RFC 3339).
    #[arg(long)]
    pub timestamp_ui: bool,
    /// `-color=false` turns off the per-build colours (so does `NO_COLOR`).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub color: bool,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Print `timestamp,target,type,data…` lines instead of text, as Packer's
    /// `-machine-readable` (no progress bars).
    #[arg(long)]
    pub machine_readable: bool,
    /// Delete an existing output directory instead of refusing to build.
    #[arg(long)]
    pub force: bool,
    /// Keep the installed system in kiln's cache when SSH first answers, and start from it
    /// when nothing the install depends on has changed (as `install_cache = true` in a source).
    #[arg(long)]
    pub install_cache: bool,
    /// What to do when a step fails: `cleanup` everything (default); `abort`, leaving the VM
    /// and output in place for debugging; `ask` which of those (or retry the step);
    /// `run-cleanup-provisioner`, like `abort` but running the `error-cleanup-provisioner`.
    #[arg(long = "on-error", value_enum, default_value_t = OnErrorArg::Cleanup)]
    pub on_error: OnErrorArg,
    /// Pause after each step, show how to reach the machine, and wait for Enter (builds run
    /// one at a time).
    #[arg(long)]
    pub debug: bool,
    /// How many builds run at once; 0 (default) = all of them.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub parallel_builds: usize,
    /// Warn about var-file values for variables the template does not declare (kiln always
    /// does unless `-no-warn-undeclared-var` is given).
    #[arg(long)]
    pub warn_on_undeclared_var: bool,
    /// A `.pkr.hcl` file or a directory of them.
    pub template: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Only check that the files parse.
    #[arg(long)]
    pub syntax_only: bool,
    /// Read the data sources that reach outside the machine (`http`, `amazon-ami`) while
    /// validating, as `build` does; without it their options are checked and their outputs
    /// are placeholders, so validating needs no credentials and no network (as Packer).
    #[arg(long)]
    pub evaluate_datasources: bool,
    /// A `.pkr.hcl` file or a directory of them.
    pub template: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Print `timestamp,target,type,data…` lines, as Packer's `-machine-readable`.
    #[arg(long)]
    pub machine_readable: bool,
    /// A `.pkr.hcl` file or a directory of them.
    pub template: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct Hcl2UpgradeArgs {
    /// Where to write the HCL2 text (default: the template's path with `.pkr.hcl` appended);
    /// an existing file is replaced, as Packer does.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// The legacy JSON template.
    pub template: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// Only check: list the files that are not formatted and exit with 3 if any; write nothing.
    #[arg(long)]
    pub check: bool,
    /// Print a unified diff of the changes.
    #[arg(long)]
    pub diff: bool,
    /// `-write=false` prints the formatted text instead of writing the files.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub write: bool,
    /// Also format the files in subdirectories.
    #[arg(long)]
    pub recursive: bool,
    /// Files or directories to format; `-` reads standard input and writes standard output.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

impl FmtArgs {
    /// The options of [`crate::fmt::run`].
    pub fn options(&self) -> crate::fmt::Options {
        crate::fmt::Options {
            check: self.check,
            diff: self.diff,
            write: self.write && !self.check,
            recursive: self.recursive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnErrorArg {
    Cleanup,
    Abort,
    Ask,
    RunCleanupProvisioner,
}

impl From<OnErrorArg> for OnError {
    fn from(a: OnErrorArg) -> Self {
        match a {
            OnErrorArg::Cleanup => OnError::Cleanup,
            OnErrorArg::Abort => OnError::Abort,
            OnErrorArg::Ask => OnError::Ask,
            OnErrorArg::RunCleanupProvisioner => OnError::RunCleanupProvisioner,
        }
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

/// Long flags kiln accepts with a single dash, as Packer spells them.
const SINGLE_DASH_FLAGS: &[&str] = &[
    "var",
    "var-file",
    "only",
    "except",
    "force",
    "install-cache",
    "on-error",
    "debug",
    "parallel-builds",
    "timestamp-ui",
    "color",
    "warn-on-undeclared-var",
    "no-warn-undeclared-var",
    "evaluate-datasources",
    "help",
    "syntax-only",
    "machine-readable",
    "check",
    "diff",
    "write",
    "recursive",
    "output-file",
];

/// Packer's flags that kiln does not take, each with why (or what to use instead).
const PACKER_ONLY_FLAGS: &[(&str, &str)] = &[
    (
        "parallel",
        "Packer's old boolean form; use `-parallel-builds=1` for one build at a time",
    ),
    (
        "ignore-prerelease-plugins",
        "kiln's builders, provisioners and post-processors are built in",
    ),
    (
        "use-sequential-evaluation",
        "kiln evaluates locals and data sources in dependency order",
    ),
    ("skip-enforcement", "kiln has no HCP Packer registry"),
    ("upgrade", "kiln has no plugins to install (`packer init`)"),
    (
        "with-annotations",
        "kiln's `hcl2_upgrade` writes the blocks without explanatory comments",
    ),
];

/// A Packer flag kiln does not take (named as such rather than as an unknown argument).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kiln does not take Packer's `-{flag}` flag: {why}")]
pub struct PackerOnlyFlag {
    pub flag: String,
    pub why: &'static str,
}

/// Rewrites Packer-style `-var`, `-force`, `-on-error=x` to `--var`, … ; leaves everything else
/// (including values and arguments after `--`) alone. A Packer flag kiln does not take is an
/// error that names it.
pub fn normalize(args: impl IntoIterator<Item = String>) -> Result<Vec<String>, PackerOnlyFlag> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for a in args {
        if passthrough || a == "--" {
            passthrough = true;
            out.push(a);
            continue;
        }
        let Some(rest) = a
            .strip_prefix('-')
            .map(|r| r.strip_prefix('-').unwrap_or(r))
        else {
            out.push(a);
            continue;
        };
        let name = rest.split('=').next().unwrap_or(rest);
        if let Some((flag, why)) = PACKER_ONLY_FLAGS.iter().find(|(f, _)| *f == name) {
            return Err(PackerOnlyFlag {
                flag: (*flag).to_owned(),
                why,
            });
        }
        let single = !a.starts_with("--");
        if single && SINGLE_DASH_FLAGS.contains(&name) {
            out.push(format!("--{rest}"));
        } else {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(normalize(args.iter().map(|s| s.to_string())).unwrap()).unwrap()
    }

    #[test]
    fn packer_style_flags() {
        let cli = parse(&[
            "kiln",
            "build",
            "-var",
            "a=1",
            "-var=b=2",
            "-force",
            "-on-error=abort",
            "-install-cache",
            "t.pkr.hcl",
        ]);
        let Command::Build(b) = cli.command else {
            panic!("not build")
        };
        assert_eq!(
            b.vars.vars,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(b.force && b.install_cache);
        assert_eq!(b.on_error, OnErrorArg::Abort);
        assert_eq!(b.template, PathBuf::from("t.pkr.hcl"));
    }

    #[test]
    fn normalize_leaves_values_and_unknown_flags() {
        let got = normalize(
            [
                "kiln", "build", "-var", "-x=1", "-v", "--force", "--", "-force",
            ]
            .map(String::from),
        )
        .unwrap();
        // `-x=1` is a value here, but normalize is syntax-only: it is not a known flag, so kept.
        assert_eq!(
            got,
            [
                "kiln", "build", "--var", "-x=1", "-v", "--force", "--", "-force"
            ]
        );
    }

    #[test]
    fn cache_fetch_takes_urls_in_order() {
        let cli = parse(&["kiln", "cache", "fetch", "--checksum", "none", "a", "b"]);
        let Command::Cache {
            action:
                CacheAction::Fetch {
                    checksum,
                    extension,
                    urls,
                },
        } = cli.command
        else {
            panic!("not cache fetch")
        };
        assert_eq!((checksum.as_str(), extension.as_str()), ("none", "iso"));
        assert_eq!(urls, ["a", "b"]);
    }

    #[test]
    fn fmt_takes_packer_flags() {
        let cli = parse(&["kiln", "fmt", "-check", "-diff", "-recursive", "a", "-"]);
        let Command::Fmt(f) = cli.command else {
            panic!("not fmt")
        };
        assert!(f.check && f.diff && f.recursive && f.write);
        assert!(!f.options().write, "-check never writes");
        assert_eq!(f.paths, [PathBuf::from("a"), PathBuf::from("-")]);
        let cli = parse(&["kiln", "fmt", "-write=false", "t.pkr.hcl"]);
        let Command::Fmt(f) = cli.command else {
            panic!("not fmt")
        };
        assert!(!f.write && !f.check);
        let cli = parse(&["kiln", "fmt", "-write", "t.pkr.hcl"]);
        let Command::Fmt(f) = cli.command else {
            panic!("not fmt")
        };
        assert!(f.write, "a bare -write is true, as in Go's flag package");
    }

    #[test]
    fn bad_var_is_rejected() {
        let r = Cli::try_parse_from(
            normalize(["kiln", "build", "-var", "novalue", "t"].map(String::from)).unwrap(),
        );
        assert!(r.is_err());
    }

    /// Bento's own command line parses (issue 13): `-only`, `-timestamp-ui`, `-force`.
    #[test]
    fn issue_13_bento_build_command_line() {
        let cli = parse(&[
            "kiln",
            "build",
            "-timestamp-ui",
            "-force",
            "-only=qemu.vm,qemu.b*",
            "-except",
            "x.y",
            "-var",
            "sources_enabled=[\"qemu.vm\"]",
            "-var-file=os.pkrvars.hcl",
            "-parallel-builds=2",
            "-on-error=run-cleanup-provisioner",
            "-color=false",
            "-debug",
            "packer_templates",
        ]);
        let Command::Build(b) = cli.command else {
            panic!("not build")
        };
        assert!(b.output.timestamp_ui && !b.output.color && b.force && b.debug);
        assert_eq!(b.vars.only, ["qemu.vm", "qemu.b*"]);
        assert_eq!(b.vars.except, ["x.y"]);
        assert_eq!(b.parallel_builds, 2);
        assert_eq!(b.on_error, OnErrorArg::RunCleanupProvisioner);
        let cli = parse(&[
            "kiln",
            "validate",
            "-only=qemu.*",
            "-evaluate-datasources",
            "t",
        ]);
        let Command::Validate(v) = cli.command else {
            panic!("not validate")
        };
        assert_eq!(v.vars.only, ["qemu.*"]);
    }

    #[test]
    fn issue_13_packer_flags_kiln_lacks_are_named() {
        let err = normalize(["kiln", "build", "-parallel=false", "t"].map(String::from))
            .expect_err("named");
        assert_eq!(
            err.to_string(),
            "kiln does not take Packer's `-parallel` flag: Packer's old boolean form; use \
             `-parallel-builds=1` for one build at a time"
        );
        // A value is not a flag.
        assert!(normalize(["kiln", "build", "-var", "x=-parallel", "t"].map(String::from)).is_ok());
    }
}
