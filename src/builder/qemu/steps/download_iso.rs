//! Step: fetch and verify the ISO (or, with `disk_image`, the disk image).
//!
//! Uses: `config.iso_urls`, `config.iso_checksum`, `config.iso_target_path`,
//! `config.iso_target_extension`, `config.iso_skip_cache`, `cache_dir`, `ui`, `cancel`.
//! Produces: `iso_path` (a local file, or with `iso_skip_cache` the URL QEMU reads).
//! Cleanup: none (the cache keeps the file; local files are used in place).

use std::path::PathBuf;

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::download::{self, Origin, Retry, Target};
use crate::step::Step;
use crate::types::Checksum;

pub struct DownloadIso;

#[async_trait]
impl Step<BuildContext, Error> for DownloadIso {
    fn name(&self) -> &'static str {
        "download_iso"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        ctx.core.ui.say("Retrieving ISO");
        if cfg.iso_skip_cache {
            let url = download::probe_byte_serving(&cfg.iso_urls, &ctx.core.ui)
                .await
                .map_err(Error::DownloadIso)?;
            ctx.core
                .ui
                .message(format!("QEMU will read `{url}` directly (iso_skip_cache)"));
            ctx.iso_path = Some(PathBuf::from(url));
            return Ok(());
        }
        if cfg.iso_checksum == Checksum::None {
            ctx.core.ui.warn(
                "A checksum of `none` was specified: the ISO is not verified. \
                 Since ISO files are so big, a checksum is highly recommended",
            );
        }
        let target = target(
            &ctx.cache_dir,
            cfg.iso_target_path.as_ref(),
            &cfg.iso_target_extension,
        );
        let fetched = download::fetch(&download::Request {
            urls: &cfg.iso_urls,
            checksum: &cfg.iso_checksum,
            target,
            retry: Retry::default(),
            ui: &ctx.core.ui,
            cancel: &ctx.core.cancel,
        })
        .await
        .map_err(Error::DownloadIso)?;
        let how = match fetched.origin {
            Origin::Local => "local file, verified in place",
            Origin::Cached { rehashed: false } => "cached, unchanged since verified",
            Origin::Cached { rehashed: true } => "cached, verified again",
            Origin::Downloaded => "downloaded and verified",
        };
        ctx.core
            .ui
            .message(format!("Using `{}` ({how})", fetched.path.display()));
        ctx.iso_path = Some(fetched.path);
        Ok(())
    }
}

/// Where the download is kept: `iso_target_path` when set (a path without an extension is a
/// directory), else the cache.
fn target(cache_dir: &std::path::Path, target_path: Option<&PathBuf>, ext: &str) -> Target {
    match target_path {
        Some(p) if p.extension().is_some() => Target::File(p.clone()),
        Some(dir) => Target::Cache {
            dir: dir.clone(),
            ext: ext.to_owned(),
        },
        None => Target::Cache {
            dir: cache_dir.to_path_buf(),
            ext: ext.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let cache = std::path::Path::new("/c");
        let table = [
            (
                None,
                Target::Cache {
                    dir: "/c".into(),
                    ext: "iso".into(),
                },
                "default: the cache",
            ),
            (
                Some(PathBuf::from("/isos")),
                Target::Cache {
                    dir: "/isos".into(),
                    ext: "iso".into(),
                },
                "no extension: a directory",
            ),
            (
                Some(PathBuf::from("/isos/debian.iso")),
                Target::File("/isos/debian.iso".into()),
                "with an extension: the file",
            ),
        ];
        for (path, want, reason) in table {
            assert_eq!(target(cache, path.as_ref(), "iso"), want, "{reason}");
        }
    }
}
