//! Step: start the build container: `run_command` (`{{.Image}}` filled in) with the options,
//! and the temporary directory mounted at `container_dir`.
//!
//! Uses: `engine`, `temp_dir`, `config.run`, `config.run_command`, `config.image`,
//! `config.container_dir`. Produces: `container`. Cleanup: kills and removes the container,
//! whatever the outcome (Ctrl-C and failures included).

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::engine::{Input, argv};
use crate::step::{Outcome, Step};

pub struct RunContainer;

/// `path` with a leading `~/` replaced by the home directory, as Packer does for volumes.
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest).display().to_string(),
        _ => path.to_owned(),
    }
}

#[async_trait]
impl Step<DockerContext, Error> for RunContainer {
    fn name(&self) -> &'static str {
        "run_container"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let Some(engine) = &ctx.engine else {
            return Ok(());
        };
        let config = &ctx.config;
        let mut options = config.run.clone();
        for (host, _) in &mut options.volumes {
            *host = expand_home(host);
        }
        if let Some(dir) = &ctx.temp_dir {
            options.volumes.push((
                dir.path().display().to_string(),
                config.container_dir.clone(),
            ));
        }
        let image = [("Image", config.image.as_str())];
        let run_command: Vec<String> = config
            .run_command
            .iter()
            .map(|a| crate::render::render_known(a, crate::render::pairs(&image)))
            .collect();
        let args = argv::run(&options, &run_command);
        ctx.core.ui.say("Starting docker container...");
        ctx.core.ui.message(format!(
            "Run command: {} {}",
            engine.program(),
            args.join(" ")
        ));
        let out = engine
            .output(args, Input::Nothing)
            .await
            .map_err(|source| Error::Run {
                image: config.image.clone(),
                source,
            })?;
        // The id is alone on the last line (an engine may warn before it).
        let id = out.lines().last().unwrap_or_default().trim().to_owned();
        ctx.core.ui.message(format!("Container ID: {id}"));
        ctx.container = Some(id);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut DockerContext, _outcome: Outcome) {
        let (Some(engine), Some(id)) = (&ctx.engine, ctx.container.take()) else {
            return;
        };
        ctx.core.ui.say(format!("Killing the container: {id}"));
        // A container that already stopped cannot be killed; removing it is what matters.
        if let Err(e) = engine.output(argv::kill(&id), Input::Nothing).await {
            tracing::debug!(error = %e, "kill");
        }
        if let Err(e) = engine
            .output(argv::remove_container(&id), Input::Nothing)
            .await
        {
            ctx.core
                .ui
                .error(format!("Could not remove the container {id}: {e}"));
        }
    }
}
