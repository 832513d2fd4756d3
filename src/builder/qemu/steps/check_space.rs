//! Step: warn when a filesystem the build writes to may be too small for what the build can
//! grow to there (see [`crate::builder::qemu::space`]). Disks are sparse, so it never fails.
//!
//! Uses: `config.disk_size`, `config.disk_additional_size`, `config.skip_compaction`,
//! `config.disk_compression`, `disk_path`, `additional_disk_paths`, `core.post_outputs`.
//! Produces: nothing (warnings). Cleanup: none.

use async_trait::async_trait;

use crate::builder::qemu::space;
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

pub struct CheckSpace;

#[async_trait]
impl Step<BuildContext, Error> for CheckSpace {
    fn name(&self) -> &'static str {
        "check_space"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let disk = ctx
            .disk_path
            .as_ref()
            .ok_or(Error::Missing { what: "disk_path" })?;
        let needs = space::needs(
            &ctx.config,
            disk,
            &ctx.additional_disk_paths,
            &ctx.core.post_outputs,
        );
        match space::shortfalls(needs, space::free_bytes) {
            Ok(short) => {
                for s in short {
                    ctx.core.ui.warn(s.message());
                }
            }
            // Only a warning would have come of it: say why there is none.
            Err(e) => tracing::warn!(error = %e, "could not check the free disk space"),
        }
        Ok(())
    }
}
