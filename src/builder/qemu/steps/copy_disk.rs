//! Step: with `disk_image` (and no backing file), make the build disk from the fetched image
//! with `qemu-img convert`, which reads any image format and writes `format`.
//!
//! Uses: `config.disk_image`, `config.use_backing_file`, `config.format`, `iso_path`,
//! `disk_path`.
//! Produces: the disk at `disk_path`. Cleanup: none (it lives in the output directory).

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct CopyDisk;

#[async_trait]
impl Step<BuildContext, Error> for CopyDisk {
    fn name(&self) -> &'static str {
        "copy_disk"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.disk_image || cfg.use_backing_file {
            return Ok(());
        }
        let missing = |what| Error::Missing { what };
        let image = ctx.iso_path.as_ref().ok_or(missing("iso_path"))?;
        let disk = ctx.disk_path.as_ref().ok_or(missing("disk_path"))?;
        ctx.core.ui.say("Copying hard drive");
        crate::qemu_img::convert(cfg.format, false, image, disk)
            .await
            .map_err(Error::CreateDisk)
    }
}
