//! Step: find the container engine and ask it for its version (which says docker or podman).
//! Without `docker_path`, podman stands in when docker is not installed.
//!
//! Uses: `config.docker_path`. Produces: `engine`. Cleanup: none.

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::engine::{self, Engine};
use crate::step::Step;

pub struct FindEngine;

#[async_trait]
impl Step<DockerContext, Error> for FindEngine {
    fn name(&self) -> &'static str {
        "engine"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let engine = match &ctx.config.docker_path {
            Some(program) => Engine::detect(program).await,
            None => match Engine::detect("docker").await {
                Err(engine::Error::NotFound { .. }) => {
                    let podman = Engine::detect("podman").await;
                    if podman.is_ok() {
                        ctx.core.ui.say(
                            "`docker` is not installed: using podman (set `docker_path` to choose)",
                        );
                    }
                    // Not found either: the error names docker, the engine the template asked for.
                    podman.map_err(|e| match e {
                        engine::Error::NotFound { .. } => engine::Error::NotFound {
                            program: "docker".into(),
                        },
                        other => other,
                    })
                }
                other => other,
            },
        }
        .map_err(Error::Engine)?;
        ctx.engine = Some(engine);
        Ok(())
    }
}
