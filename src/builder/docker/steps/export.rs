//! Step: export the container's filesystem to `export_path` (a tar file, written beside it
//! under a temporary name and renamed when complete: a failed or interrupted export leaves the
//! old file, and no temporary one).
//!
//! Uses: `engine`, `container`, `config.output`. Produces: the file. Cleanup: none (the file
//! is the artifact).

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error, Output};
use crate::engine::argv;
use crate::step::Step;

pub struct Export;

#[async_trait]
impl Step<DockerContext, Error> for Export {
    fn name(&self) -> &'static str {
        "export"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let (Some(engine), Some(container), Output::Export(path)) =
            (&ctx.engine, &ctx.container, &ctx.config.output)
        else {
            return Ok(());
        };
        ctx.core.ui.say("Exporting the container");
        engine
            .output_to_file(argv::export(container), path, &ctx.core.cancel)
            .await
            .map_err(|source| Error::Export {
                path: path.clone(),
                source,
            })?;
        ctx.core
            .ui
            .message(format!("Exported Docker file: {}", path.display()));
        Ok(())
    }
}
