//! Step: create the host directory the container gets at `container_dir`, as Packer does.
//!
//! Uses: nothing. Produces: `temp_dir`. Cleanup: removes it.

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::step::{Outcome, Step};

pub struct TempDir;

#[async_trait]
impl Step<DockerContext, Error> for TempDir {
    fn name(&self) -> &'static str {
        "temp_dir"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        ctx.core
            .ui
            .say("Creating a temporary directory for sharing data...");
        let dir = tempfile::Builder::new()
            .prefix("kiln-docker-")
            .tempdir()
            .map_err(Error::TempDir)?;
        ctx.temp_dir = Some(dir);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut DockerContext, _outcome: Outcome) {
        if let Some(dir) = ctx.temp_dir.take() {
            let path = dir.path().to_owned();
            if let Err(e) = dir.close() {
                ctx.core
                    .ui
                    .error(format!("Could not delete `{}`: {e}", path.display()));
            }
        }
    }
}
