//! `kiln hcl2_upgrade`: writes the HCL2 equivalent of a legacy JSON template, as
//! `packer hcl2_upgrade` does — the same text kiln loads when given the JSON file
//! ([`crate::template::hcl2_upgrade`]), laid out by [`crate::fmt`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the upgrade failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JSON template has problems (all of them in the source).
    #[error("Cannot upgrade `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: crate::template::Error,
    },
    /// Laying out the text failed (a kiln bug: the text is kiln's own).
    #[error("Cannot lay out the HCL2 text of `{}`", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: crate::fmt::SourceError,
    },
    /// Writing the output file failed.
    #[error("Cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The output file Packer picks: the template's path with `.pkr.hcl` appended.
pub fn default_output(template: &Path) -> PathBuf {
    let mut name = template.as_os_str().to_owned();
    name.push(".pkr.hcl");
    PathBuf::from(name)
}

/// Writes the HCL2 text of `template` to `output`, replacing it if it exists (as Packer
/// does), through a temporary file: a failed upgrade leaves nothing half-written, and an
/// existing output is untouched when the JSON has problems.
pub fn run(template: &Path, output: &Path) -> Result<(), Error> {
    let text = crate::template::hcl2_upgrade(template).map_err(|source| Error::Read {
        path: template.to_owned(),
        source,
    })?;
    let text = crate::fmt::format_source(&text).map_err(|source| Error::Format {
        path: template.to_owned(),
        source,
    })?;
    let write_err = |source| Error::Write {
        path: output.to_owned(),
        source,
    };
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Packer creates the output's directory.
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-upgrade-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(text.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(output).map_err(|e| write_err(e.error))?;
    Ok(())
}
