//! Step: with `disk_image`, grow the build disk to `disk_size` unless `skip_resize_disk`.
//! A disk that already has that size (an overlay `copy_disk` or `create_disk` made at
//! `disk_size`) is left alone: only its header is read.
//!
//! Uses: `config.disk_image`, `config.use_backing_file`, `config.skip_resize_disk`,
//! `config.format`, `config.disk_size`, `config.qemu_img_args` (resize), `disk_path`, `install_layer` (with one, there is nothing to do).
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
        if !cfg.disk_image
            || cfg.skip_resize_disk
            || cfg.use_backing_file
            || ctx.install_layer.is_some()
        {
            return Ok(());
        }
        let disk = ctx
            .disk_path
            .as_ref()
            .ok_or(Error::Missing { what: "disk_path" })?;
        let info = crate::qemu_img::info(disk)
            .await
            .map_err(Error::CreateDisk)?;
        if info.virtual_size == cfg.disk_size {
            return Ok(());
        }
        ctx.core.ui.say("Resizing hard drive");
        crate::qemu_img::resize(cfg.format, disk, cfg.disk_size, &cfg.qemu_img_args.resize)
            .await
            .map_err(Error::CreateDisk)
    }
}
