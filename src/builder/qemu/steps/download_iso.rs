//! Step: fetch and verify the ISO.
//!
//! Uses: `config.iso_url`, `config.iso_checksum`, `cache_dir`, `cancel`.
//! Produces: `iso_path`. Cleanup: none (the cache keeps the ISO; local files are used in place).

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
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
        ctx.ui.say("Retrieving ISO");
        if cfg.iso_checksum == Checksum::None {
            ctx.ui.warn(
                "A checksum of `none` was specified: the ISO is not verified. \
                 Since ISO files are so big, a checksum is highly recommended",
            );
        }
        ctx.ui.message(format!("Using {}", cfg.iso_url));
        let path = crate::download::fetch_iso(
            &cfg.iso_url,
            &cfg.iso_checksum,
            &ctx.cache_dir,
            &ctx.cancel,
        )
        .await
        .map_err(Error::DownloadIso)?;
        ctx.iso_path = Some(path);
        Ok(())
    }
}
