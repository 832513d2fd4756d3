//! Step: with `disk_image`, grow the build disk to `disk_size` unless `skip_resize_disk`.
//! (An overlay made with `use_backing_file` was already created at that size.)
//!
//! Uses: `config.disk_image`, `config.use_backing_file`, `config.skip_resize_disk`,
//! `config.format`, `config.disk_size`, `disk_path`.
//! Produces: nothing new. Cleanup: none.

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct ResizeDisk;

#[async_trait]
impl Step<BuildContext, Error> for ResizeDisk {
    fn name(&self) -> &'static str {
        "resize_disk"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.disk_image || cfg.skip_resize_disk || cfg.use_backing_file {
            return Ok(());
        }
        let disk = ctx
            .disk_path
            .as_ref()
            .ok_or(Error::Missing { what: "disk_path" })?;
        ctx.core.ui.say("Resizing hard drive");
        crate::qemu_img::resize(cfg.format, disk, cfg.disk_size)
            .await
            .map_err(Error::CreateDisk)
    }
}
