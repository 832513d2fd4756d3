//! Step: pull `image` (when `pull`), logged in with the `login_*` credentials when `login`.
//!
//! Uses: `engine`, `config.image`, `config.pull`, `config.login`, `config.run.platform`.
//! Produces: the image in the engine's store. Cleanup: none (the login ends within the step).

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::engine::{Input, argv};
use crate::step::Step;

pub struct Pull;

#[async_trait]
impl Step<DockerContext, Error> for Pull {
    fn name(&self) -> &'static str {
        "pull"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let (Some(engine), true) = (&ctx.engine, ctx.config.pull) else {
            return Ok(());
        };
        let image = &ctx.config.image;
        let platform = ctx.config.run.platform.as_deref();
        ctx.core.ui.say(format!("Pulling Docker image: {image}"));
        let creds = match &ctx.config.login {
            Some(login) => {
                ctx.core.ui.message("Logging in...");
                Some(engine.login(login).await.map_err(Error::Login)?)
            }
            None => None,
        };
        let auth = creds.as_ref().map(|c| c.path());
        let args = argv::pull(engine.flavor(), image, platform, auth);
        let pulled = engine.output(args, Input::Nothing).await;
        if let Some(creds) = creds {
            ctx.core.ui.message("Logging out...");
            if let Err(e) = engine.logout(creds).await {
                ctx.core.ui.error(format!("Error logging out: {e}"));
            }
        }
        pulled.map(drop).map_err(|source| Error::Pull {
            image: image.clone(),
            source,
        })
    }
}
