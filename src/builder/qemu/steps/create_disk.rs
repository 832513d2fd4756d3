//! Step: create the build disks with `qemu-img create`.
//!
//! The main disk is blank (`disk_size`), or with `use_backing_file` a qcow2 overlay over the
//! fetched `disk_image`; with `disk_image` alone it is made by `copy_disk` instead. Each
//! `disk_additional_size` adds a blank disk `<vm_name>-N`.
//!
//! Resuming an install cache layer (`install_layer`), every disk is made from the layer's
//! instead: a qcow2 overlay over it (the layer is never written), or a raw copy.
//!
//! Uses: `config.output_directory`, `config.vm_name`, `config.format`, `config.disk_size`,
//! `config.disk_image`, `config.use_backing_file`, `config.skip_resize_disk`,
//! `config.disk_additional_size`, `config.qemu_img_args` (create), `iso_path`, `install_layer`.
//! Produces: `disk_path`, `additional_disk_paths`. Cleanup: none (they live in the output
//! directory, whose step removes it).

use async_trait::async_trait;

use crate::builder::qemu::config::DiskFormat;
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
        if let Some(layer) = &ctx.install_layer {
            let extra = (1..=cfg.disk_additional_size.len())
                .map(|i| cfg.output_directory.join(format!("{}-{i}", cfg.vm_name)));
            let targets: Vec<_> = std::iter::once(path.clone()).chain(extra).collect();
            ctx.core
                .ui
                .say("Creating hard drive over the install cache layer's disk");
            for (target, name) in targets.iter().zip(&layer.meta.disks) {
                let kept = layer.file(name);
                match cfg.format {
                    DiskFormat::Qcow2 => {
                        crate::qemu_img::create_backed(target, &kept, "qcow2", None, &[]).await
                    }
                    DiskFormat::Raw => {
                        crate::qemu_img::convert(DiskFormat::Raw, false, &kept, target, &[]).await
                    }
                }
                .map_err(Error::CreateDisk)?;
            }
            ctx.disk_path = Some(path);
            ctx.additional_disk_paths = targets.into_iter().skip(1).collect();
            return Ok(());
        }
        if cfg.disk_image && cfg.use_backing_file {
            let image = ctx
                .iso_path
                .as_ref()
                .ok_or(Error::Missing { what: "iso_path" })?;
            // The overlay names its backing file; an absolute path keeps it valid wherever
            // the disk is opened from.
            let image = std::path::absolute(image).unwrap_or_else(|_| image.clone());
            let info = crate::qemu_img::info(&image)
                .await
                .map_err(Error::CreateDisk)?;
            ctx.core.ui.say(format!(
                "Creating hard drive over `{}` ({}) as backing file",
                image.display(),
                info.format
            ));
            let size = (!cfg.skip_resize_disk).then_some(cfg.disk_size);
            crate::qemu_img::create_backed(
                &path,
                &image,
                &info.format,
                size,
                &cfg.qemu_img_args.create,
            )
            .await
            .map_err(Error::CreateDisk)?;
        } else if !cfg.disk_image {
            ctx.core.ui.say("Creating hard drive");
            crate::qemu_img::create(cfg.format, &path, cfg.disk_size, &cfg.qemu_img_args.create)
                .await
                .map_err(Error::CreateDisk)?;
        }
        ctx.disk_path = Some(path);
        for (i, size) in cfg.disk_additional_size.iter().enumerate() {
            let extra = cfg
                .output_directory
                .join(format!("{}-{}", cfg.vm_name, i + 1));
            ctx.core
                .ui
                .message(format!("Creating additional disk `{}`", extra.display()));
            crate::qemu_img::create(cfg.format, &extra, *size, &cfg.qemu_img_args.create)
                .await
                .map_err(Error::CreateDisk)?;
            ctx.additional_disk_paths.push(extra);
        }
        Ok(())
    }
}
