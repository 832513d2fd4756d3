//! Hints printed under an error (`hint: …`) when kiln knows the fix, and the rendering of
//! template diagnostics found anywhere in an error chain. Used only by `main`.

use std::error::Error;

/// The hint for this one error (not its causes), if kiln has one.
pub fn for_error(err: &(dyn Error + 'static)) -> Option<String> {
    if let Some(h) = crate::builder::hint(err) {
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

/// Every template diagnostic in the chain of `err`, rendered with source lines and carets.
pub fn diagnostics(err: &(dyn Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(crate::template::Error::Invalid(diags)) =
            e.downcast_ref::<crate::template::Error>()
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
