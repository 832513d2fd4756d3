//! The extra CD of `cd_files` / `cd_content` / `cd_label` (e.g. a cloud-init `cidata` seed):
//! files are staged in a temporary directory, then an ISO 9660 image (Rock Ridge + Joliet) is
//! made with the first tool found on the system: `xorriso`, `genisoimage` or `mkisofs`.
//!
//! The tool's argv comes from [`tool_args`], a pure table-tested function.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Longest a CD build may take (it copies the staged files once).
const TIMEOUT: Duration = Duration::from_secs(600);

/// Why the CD could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// None of the ISO tools is installed.
    #[error(
        "Cannot find `xorriso`, `genisoimage` or `mkisofs` to build the CD (hint: apt-get install -y xorriso)"
    )]
    NoTool,
    /// A `cd_files` entry does not exist (or a pattern matches nothing).
    #[error("`cd_files` entry `{}` does not exist", path.display())]
    MissingFile { path: PathBuf },
    /// A `cd_files` glob pattern is malformed.
    #[error("`cd_files` pattern `{pattern}` is invalid")]
    Pattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    /// Copying or writing into the staging directory failed.
    #[error("Cannot stage `{}` for the CD", path.display())]
    Stage {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The ISO tool could not be run.
    #[error("Cannot run `{tool}`")]
    Run {
        tool: &'static str,
        #[source]
        source: io::Error,
    },
    /// The ISO tool failed; `stderr` is its explanation.
    #[error("`{tool}` failed to build `{}`: {stderr}", out.display())]
    Failed {
        tool: &'static str,
        out: PathBuf,
        stderr: String,
    },
    /// The ISO tool did not finish in time (it was killed).
    #[error("`{tool}` did not finish within {TIMEOUT:?}")]
    Timeout { tool: &'static str },
}

/// An ISO-making program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Xorriso,
    Genisoimage,
    Mkisofs,
}

impl Tool {
    /// In order of preference.
    pub const ALL: [Tool; 3] = [Tool::Xorriso, Tool::Genisoimage, Tool::Mkisofs];

    pub fn program(self) -> &'static str {
        match self {
            Tool::Xorriso => "xorriso",
            Tool::Genisoimage => "genisoimage",
            Tool::Mkisofs => "mkisofs",
        }
    }
}

/// The first tool of [`Tool::ALL`] on `PATH`.
pub fn find_tool() -> Option<Tool> {
    let path = std::env::var_os("PATH")?;
    Tool::ALL
        .into_iter()
        .find(|t| std::env::split_paths(&path).any(|dir| dir.join(t.program()).is_file()))
}

/// The arguments making `out` from the directory `stage`, with volume ID `label`.
pub fn tool_args(tool: Tool, label: &str, out: &Path, stage: &Path) -> Vec<String> {
    let (out, stage) = (
        out.to_string_lossy().into_owned(),
        stage.to_string_lossy().into_owned(),
    );
    let mut a: Vec<String> = Vec::new();
    if tool == Tool::Xorriso {
        a.extend(["-as".into(), "genisoimage".into()]);
    }
    a.extend([
        "-quiet".into(),
        "-rock".into(),
        "-joliet".into(),
        "-volid".into(),
        label.into(),
        "-o".into(),
        out,
        stage,
    ]);
    a
}

/// Copies `files` (directories recursively) to the root of `stage` and writes `content`
/// (path → text) there; `content` wins over a copied file of the same name.
pub fn stage(
    stage: &Path,
    files: &[PathBuf],
    content: &BTreeMap<String, String>,
) -> Result<(), Error> {
    for f in files {
        let meta = std::fs::metadata(f).map_err(|_| Error::MissingFile { path: f.clone() })?;
        let name = f
            .file_name()
            .map_or_else(|| f.as_os_str().to_owned(), ToOwned::to_owned);
        let dest = stage.join(name);
        if meta.is_dir() {
            copy_dir(f, &dest)?;
        } else {
            std::fs::copy(f, &dest).map_err(|source| Error::Stage {
                path: f.clone(),
                source,
            })?;
        }
    }
    for (path, text) in content {
        let dest = stage.join(path);
        let stage_err = |source| Error::Stage {
            path: dest.clone(),
            source,
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(stage_err)?;
        }
        std::fs::write(&dest, text).map_err(stage_err)?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Stage { path, source }
    };
    std::fs::create_dir_all(to).map_err(err(to))?;
    for entry in std::fs::read_dir(from).map_err(err(from))? {
        let entry = entry.map_err(err(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(err(&src))?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(err(&src))?;
        }
    }
    Ok(())
}

/// Stages the files in a temporary directory and writes the CD image to `out`.
pub async fn build(
    files: &[PathBuf],
    content: &BTreeMap<String, String>,
    label: &str,
    out: &Path,
) -> Result<Tool, Error> {
    let tool = find_tool().ok_or(Error::NoTool)?;
    let dir = tempfile::Builder::new()
        .prefix("kiln-cd-")
        .tempdir()
        .map_err(|source| Error::Stage {
            path: std::env::temp_dir(),
            source,
        })?;
    stage(dir.path(), files, content)?;
    let args = tool_args(tool, label, out, dir.path());
    tracing::debug!(tool = tool.program(), ?args, "building CD");
    let child = tokio::process::Command::new(tool.program())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Run {
            tool: tool.program(),
            source,
        })?;
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| Error::Timeout {
            tool: tool.program(),
        })?
        .map_err(|source| Error::Run {
            tool: tool.program(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Failed {
            tool: tool.program(),
            out: out.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_table() {
        let (out, stage) = (Path::new("/t/cd.iso"), Path::new("/t/stage"));
        #[rustfmt::skip]
        let rows: &[(&str, Vec<String>, &[&str])] = &[
            ("xorriso in genisoimage mode", tool_args(Tool::Xorriso, "cidata", out, stage),
                &["-as", "genisoimage", "-quiet", "-rock", "-joliet", "-volid", "cidata", "-o", "/t/cd.iso", "/t/stage"]),
            ("genisoimage", tool_args(Tool::Genisoimage, "packer", out, stage),
                &["-quiet", "-rock", "-joliet", "-volid", "packer", "-o", "/t/cd.iso", "/t/stage"]),
            ("mkisofs takes the same options", tool_args(Tool::Mkisofs, "L", out, stage),
                &["-quiet", "-rock", "-joliet", "-volid", "L", "-o", "/t/cd.iso", "/t/stage"]),
        ];
        for (reason, got, want) in rows {
            assert_eq!(got, want, "{reason}");
        }
    }

    #[test]
    fn staging_copies_files_and_dirs_then_writes_content() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir_all(src.path().join("d/e")).unwrap();
        std::fs::write(src.path().join("d/e/f.txt"), "f").unwrap();
        std::fs::write(src.path().join("user-data"), "old").unwrap();
        let stage_dir = tempfile::tempdir().unwrap();
        let files = [
            src.path().join("a.txt"),
            src.path().join("d"),
            src.path().join("user-data"),
        ];
        let content = BTreeMap::from([
            ("user-data".to_owned(), "#cloud-config\n".to_owned()),
            ("x/y.txt".to_owned(), "y".to_owned()),
        ]);
        stage(stage_dir.path(), &files, &content).unwrap();
        let read = |p: &str| std::fs::read_to_string(stage_dir.path().join(p)).unwrap();
        assert_eq!(read("a.txt"), "a");
        assert_eq!(read("d/e/f.txt"), "f");
        assert_eq!(read("user-data"), "#cloud-config\n", "content wins");
        assert_eq!(read("x/y.txt"), "y");

        let err = stage(
            stage_dir.path(),
            &[src.path().join("nope")],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    /// A real seed CD: the volume ID and a file's content are read back with xorriso.
    #[tokio::test]
    async fn builds_a_cidata_seed_with_the_system_tool() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seed.iso");
        let content = BTreeMap::from([
            ("meta-data".to_owned(), "instance-id: kiln\n".to_owned()),
            ("user-data".to_owned(), "#cloud-config\n".to_owned()),
        ]);
        let tool = build(&[], &content, "cidata", &out)
            .await
            .expect("needs xorriso, genisoimage or mkisofs (apt-get install -y xorriso)");
        assert_eq!(
            tool,
            Tool::Xorriso,
            "xorriso is installed by scripts/test.sh"
        );
        let listing = std::process::Command::new("xorriso")
            .args(["-indev"])
            .arg(&out)
            .args(["-pvd_info", "-osirrox", "on", "-extract", "/meta-data"])
            .arg(dir.path().join("meta-data"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(text.contains("Volume Id    : cidata"), "{text}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("meta-data")).unwrap(),
            "instance-id: kiln\n"
        );
    }
}
