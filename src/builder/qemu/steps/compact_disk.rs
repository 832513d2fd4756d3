//! Step: compact the disk with `qemu-img convert` (and compress it with `disk_compression`).
//!
//! Uses: `disk_path`, `config.format`, `config.skip_compaction`, `config.disk_compression`, `config.qemu_img_args` (convert).
//! Produces: the compacted disk at the same path (written to a temp name, then renamed).
//! Cleanup: none.

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct CompactDisk;

#[async_trait]
impl Step<BuildContext, Error> for CompactDisk {
    fn name(&self) -> &'static str {
        "compact_disk"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if cfg.skip_compaction && !cfg.disk_compression {
            return Ok(());
        }
        let disk = ctx
            .disk_path
            .as_ref()
            .ok_or(Error::Missing { what: "disk_path" })?;
        ctx.core.ui.say("Converting hard drive");
        crate::qemu_img::convert(
            cfg.format,
            cfg.disk_compression,
            disk,
            disk,
            &cfg.qemu_img_args.convert,
        )
        .await
        .map_err(Error::CompactDisk)?;
        Ok(())
    }
}
