//! Step: create the main disk with `qemu-img create`.
//!
//! Uses: `config.output_directory`, `config.vm_name`, `config.format`, `config.disk_size`.
//! Produces: `disk_path`. Cleanup: none (it lives in the output directory, whose step removes it).

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct CreateDisk;

#[async_trait]
impl Step<BuildContext, Error> for CreateDisk {
    fn name(&self) -> &'static str {
        "create_disk"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        let path = cfg.output_directory.join(&cfg.vm_name);
        ctx.ui.say("Creating hard drive");
        crate::qemu_img::create(cfg.format, &path, cfg.disk_size)
            .await
            .map_err(Error::CreateDisk)?;
        ctx.disk_path = Some(path);
        Ok(())
    }
}
