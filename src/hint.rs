//! Hints printed under an error (`hint: …`) when kiln knows the fix, and the rendering of
//! template diagnostics found anywhere in an error chain. Used only by `main`.

use std::error::Error;

/// The hint for this one error (not its causes), if kiln has one.
pub fn for_error(err: &(dyn Error + 'static)) -> Option<String> {
    if let Some(h) = crate::builder::hint(err).or_else(|| crate::provisioner::hint(err)) {
        return Some(h);
    }
    if let Some(h) = err
        .downcast_ref::<crate::engine::Error>()
        .and_then(crate::engine::hint)
    {
        return Some(h);
    }
    if let Some(crate::postprocessor::Error::VagrantCatalog(e)) =
        err.downcast_ref::<crate::postprocessor::Error>()
    {
        use crate::postprocessor::vagrant_catalog::Error as Catalog;
        return match e {
            Catalog::AlreadyListed { .. } => Some(
                "give the build a new `version`, or pass `-force` to replace that entry".into(),
            ),
            Catalog::NoBox { .. } | Catalog::NotABox { .. } => Some(
                "put `vagrant-catalog` right after `vagrant` in a `post-processors` block".into(),
            ),
            _ => None,
        };
    }
    let no_space = match err.downcast_ref::<crate::qemu_img::Error>() {
        Some(crate::qemu_img::Error::Convert { stderr, .. }) => {
            stderr.contains("No space left on device")
        }
        _ => err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(ENOSPC)),
    };
    if no_space {
        return Some(
            "that filesystem is full (kiln removed what it was writing): free space there, or \
             point `output_directory` (or the post-processor's `output`, or `KILN_CACHE_DIR` for \
             the ISO cache) at a larger filesystem"
                .into(),
        );
    }
    match err.downcast_ref::<crate::download::Error>() {
        Some(crate::download::Error::ChecksumMismatch { .. }) => {
            return Some(
                "the file changed or `iso_checksum` is wrong; check the checksum published next to the ISO".into(),
            );
        }
        Some(crate::download::Error::NoChecksumFor { .. }) => {
            return Some(
                "a checksum file lists files by name: check that the name at the end of `iso_url` appears in it".into(),
            );
        }
        _ => {}
    }
    None
}

/// `ENOSPC`: no space left on device.
const ENOSPC: i32 = 28;

/// Every template diagnostic in the chain of `err`, rendered with source lines and carets.
pub fn diagnostics(err: &(dyn Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(
            crate::template::Error::Invalid(diags) | crate::template::Error::Unrunnable(diags),
        ) = e.downcast_ref::<crate::template::Error>()
        {
            let rendered: Vec<String> = diags
                .iter()
                .map(|d| d.render(std::fs::read_to_string(&d.location.file).ok().as_deref()))
                .collect();
            return Some(rendered.join("\n\n"));
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_anywhere_gets_the_space_hint() {
        let io = std::io::Error::from_raw_os_error(ENOSPC);
        assert!(for_error(&io).is_some_and(|h| h.contains("filesystem is full")));
        let convert = crate::qemu_img::Error::Convert {
            src: "d".into(),
            temp: "d.convert".into(),
            dst: "d".into(),
            stderr: "qemu-img: error while writing at byte 0: No space left on device".into(),
        };
        assert!(for_error(&convert).is_some_and(|h| h.contains("filesystem is full")));
        assert!(for_error(&std::io::Error::other("x")).is_none());
    }
}
