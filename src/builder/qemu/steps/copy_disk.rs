//! Step: with `disk_image` (and no `use_backing_file`), make the build disk from the fetched
//! image, reading and writing it as few times as possible:
//!
//! - when the compaction step will rewrite the disk anyway (qcow2, compaction not skipped), the
//!   build disk is a qcow2 overlay over the image, created at `disk_size`: no copy and no
//!   resize now; compaction reads the image once and writes the standalone disk once;
//! - otherwise a standalone qcow2 image is copied byte for byte into a qcow2 build disk
//!   (`copy_file_range`: an in-kernel copy, or a clone where the filesystem has reflinks);
//! - anything else (`qemu_img_args.convert` given, raw, which `qemu-img` keeps sparse; another
//!   format; an image with its own backing file) goes through `qemu-img convert`, which reads
//!   any format and writes `format`.
//!
//! Uses: `config.disk_image`, `config.use_backing_file`, `config.format`,
//! `config.skip_compaction`, `config.skip_resize_disk`, `config.disk_size`,
//! `config.qemu_img_args` (convert), `iso_path`, `disk_path`, `install_layer` (with one, there is nothing to do).
//! Produces: the disk at `disk_path`. Cleanup: none (it lives in the output directory).

use async_trait::async_trait;

use crate::builder::qemu::config::{Config, DiskFormat};
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct CopyDisk;

/// How the build disk is made from the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A qcow2 overlay over the image, flattened later by compaction.
    Overlay,
    /// A byte-for-byte copy of the file.
    Copy,
    /// `qemu-img convert` into `format`.
    Convert,
}

/// Picks the method for an image (`qemu_img_args.convert`, when given, is applied by
/// compaction to an overlay, or by converting instead of copying) of `image_format` (with or without its own backing file).
pub fn method(cfg: &Config, image_format: &str, image_has_backing: bool) -> Method {
    let compacts = cfg.format == DiskFormat::Qcow2 && !cfg.skip_compaction;
    if compacts {
        Method::Overlay
    } else if cfg.format == DiskFormat::Qcow2
        && image_format == "qcow2"
        && !image_has_backing
        && cfg.qemu_img_args.convert.is_empty()
    {
        Method::Copy
    } else {
        Method::Convert
    }
}

#[async_trait]
impl Step<BuildContext, Error> for CopyDisk {
    fn name(&self) -> &'static str {
        "copy_disk"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.disk_image || cfg.use_backing_file || ctx.install_layer.is_some() {
            return Ok(());
        }
        let missing = |what| Error::Missing { what };
        let image = ctx.iso_path.as_ref().ok_or(missing("iso_path"))?;
        let disk = ctx.disk_path.as_ref().ok_or(missing("disk_path"))?;
        let info = crate::qemu_img::info(image)
            .await
            .map_err(Error::CreateDisk)?;
        match method(cfg, &info.format, info.backing_filename.is_some()) {
            Method::Overlay => {
                ctx.core.ui.say(format!(
                    "Creating hard drive as an overlay over `{}` ({}); compaction writes the \
                     standalone disk",
                    image.display(),
                    info.format
                ));
                // The overlay names its backing file; an absolute path keeps it valid.
                let image = std::path::absolute(image).unwrap_or_else(|_| image.clone());
                // A `disk_size` below the image's is left to `resize_disk`, which refuses it.
                let size = (!cfg.skip_resize_disk && cfg.disk_size >= info.virtual_size)
                    .then_some(cfg.disk_size);
                crate::qemu_img::create_backed(disk, &image, &info.format, size, &[])
                    .await
                    .map_err(Error::CreateDisk)
            }
            Method::Copy => {
                ctx.core.ui.say("Copying hard drive");
                crate::qemu_img::copy(image, disk)
                    .await
                    .map_err(Error::CreateDisk)
            }
            Method::Convert => {
                ctx.core.ui.say("Copying hard drive");
                crate::qemu_img::convert(cfg.format, false, image, disk, &cfg.qemu_img_args.convert)
                    .await
                    .map_err(Error::CreateDisk)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table() {
        let base = Config::with_defaults("t", ".".into(), "x".into(), crate::types::Checksum::None);
        let skip = Config {
            skip_compaction: true,
            ..base.clone()
        };
        let raw = Config {
            format: DiskFormat::Raw,
            skip_compaction: true,
            ..base.clone()
        };
        let convert_args = Config {
            qemu_img_args: crate::qemu_img::ExtraArgs {
                convert: vec!["-W".into()],
                ..Default::default()
            },
            ..skip.clone()
        };
        #[rustfmt::skip]
        let rows = [
            (&convert_args, "qcow2", false, Method::Convert, "qemu_img_args convert: converted, not copied (issue 14)"),
            (&base, "qcow2", false, Method::Overlay, "compaction flattens an overlay: no copy"),
            (&base, "raw", false, Method::Overlay, "any image format can back the overlay"),
            (&skip, "qcow2", false, Method::Copy, "no compaction: a standalone copy"),
            (&skip, "qcow2", true, Method::Convert, "an image with a backing file is flattened"),
            (&skip, "raw", false, Method::Convert, "another format is converted"),
            (&raw, "raw", false, Method::Convert, "raw is converted: qemu-img keeps it sparse"),
        ];
        for (cfg, fmt, backing, want, why) in rows {
            assert_eq!(method(cfg, fmt, backing), want, "{why}");
        }
    }
}
