//! Step: find the container engine and ask it for its version (which says docker or podman).
//!
//! Uses: `config.docker_path`. Produces: `engine`. Cleanup: none.

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::engine::Engine;
use crate::step::Step;

pub struct FindEngine;

#[async_trait]
impl Step<DockerContext, Error> for FindEngine {
    fn name(&self) -> &'static str {
        "engine"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let engine = Engine::detect(&ctx.config.docker_path)
            .await
            .map_err(Error::Engine)?;
        ctx.engine = Some(engine);
        Ok(())
    }
}
