//! UEFI firmware for `efi_boot`: finding OVMF's code and variable-store images.
//!
//! Packer defaults to `/usr/share/OVMF/OVMF_CODE.fd`, which Ubuntu 24.04 no longer ships (its
//! maintainers declined a fallback list, `packer-qemu.md` §7 #13). kiln looks through the usual
//! paths of each distribution, as matching code/vars pairs, and never picks the Secure Boot
//! builds (`.secboot`, `.ms`), which need q35 with SMM.

use std::path::{Path, PathBuf};

/// Code and vars images, in order of preference (4 MiB builds first).
pub const OVMF_PAIRS: &[(&str, &str)] = &[
    // Debian 12, Ubuntu 22.04+.
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    // Older Debian and Ubuntu (Packer's default).
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    // Fedora, RHEL.
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    // Arch Linux.
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
    // openSUSE.
    (
        "/usr/share/qemu/ovmf-x86_64-code.bin",
        "/usr/share/qemu/ovmf-x86_64-vars.bin",
    ),
];

/// Why no firmware could be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No known OVMF pair exists and none was configured.
    #[error(
        "No UEFI firmware found (looked for OVMF in the usual places, e.g. `{}`); install the \
         `ovmf` package or set `efi_firmware_code` and `efi_firmware_vars`",
        OVMF_PAIRS[0].0
    )]
    NotFound,
    /// The variable store could not be copied into the output directory.
    #[error("Could not copy the UEFI variable store `{}` to `{}`", from.display(), to.display())]
    CopyVars {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The code and vars images to use: the configured ones where given, else the first pair of
/// [`OVMF_PAIRS`] whose both files exist (by `exists`). A configured path is used even if the
/// other half comes from the search.
pub fn resolve(
    code: Option<&Path>,
    vars: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<(PathBuf, PathBuf), Error> {
    if let (Some(c), Some(v)) = (code, vars) {
        return Ok((c.to_owned(), v.to_owned()));
    }
    let (c, v) = OVMF_PAIRS
        .iter()
        .map(|(c, v)| (Path::new(c), Path::new(v)))
        .find(|(c, v)| exists(c) && exists(v))
        .ok_or(Error::NotFound)?;
    Ok((code.unwrap_or(c).to_owned(), vars.unwrap_or(v).to_owned()))
}

/// Copies the variable store to `to` (the guest writes to its copy, never to the system's).
pub fn copy_vars(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|source| Error::CopyVars {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let p = |s: &str| Some(PathBuf::from(s));
        let ubuntu_2404 = |f: &Path| f.to_string_lossy().contains("_4M");
        let fedora = |f: &Path| f.starts_with("/usr/share/edk2/ovmf");
        let none = |_: &Path| false;
        let code_only = |f: &Path| f == Path::new("/usr/share/OVMF/OVMF_CODE.fd");
        type Row<'a> = (
            &'a str,
            Option<PathBuf>,
            Option<PathBuf>,
            &'a dyn Fn(&Path) -> bool,
            Option<(&'a str, &'a str)>,
        );
        let rows: [Row; 5] = [
            (
                "4M pair (no OVMF_CODE.fd)",
                None,
                None,
                &ubuntu_2404,
                Some((
                    "/usr/share/OVMF/OVMF_CODE_4M.fd",
                    "/usr/share/OVMF/OVMF_VARS_4M.fd",
                )),
            ),
            (
                "Fedora layout",
                None,
                None,
                &fedora,
                Some((
                    "/usr/share/edk2/ovmf/OVMF_CODE.fd",
                    "/usr/share/edk2/ovmf/OVMF_VARS.fd",
                )),
            ),
            (
                "configured paths win, unchecked",
                p("/fw/c.fd"),
                p("/fw/v.fd"),
                &none,
                Some(("/fw/c.fd", "/fw/v.fd")),
            ),
            ("nothing installed", None, None, &none, None),
            ("half a pair is no pair", None, None, &code_only, None),
        ];
        for (why, code, vars, exists, want) in rows {
            let got = resolve(code.as_deref(), vars.as_deref(), exists).ok();
            let want = want.map(|(c, v)| (PathBuf::from(c), PathBuf::from(v)));
            assert_eq!(got, want, "{why}");
        }
    }
}
