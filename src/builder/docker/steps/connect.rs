//! Step: connect the docker communicator to the container (`exec` and `cp`).
//!
//! Uses: `engine`, `container`, `config.exec_user`, `config.pty`, `config.fix_upload_owner`,
//! `config.communicator`. Produces: `core.session`. Cleanup: closes it.

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error};
use crate::communicator::docker::DockerCommunicator;
use crate::engine::{Input, argv};
use crate::provisioner::Session;
use crate::step::{Outcome, Step};

pub struct Connect;

#[async_trait]
impl Step<DockerContext, Error> for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let (Some(engine), Some(container), true) =
            (&ctx.engine, &ctx.container, ctx.config.communicator)
        else {
            return Ok(());
        };
        let owner = if ctx.config.fix_upload_owner {
            let user = engine
                .output(argv::container_user(container), Input::Nothing)
                .await
                .map_err(Error::Inspect)?;
            Some(user)
        } else {
            None
        };
        let comm = DockerCommunicator::new(
            engine.clone(),
            container.clone(),
            ctx.config.exec_user.clone(),
            ctx.config.pty,
            owner,
        );
        let connector = comm.connector();
        let cancel = ctx.core.cancel.clone();
        ctx.core.session = Session::new(Some(Box::new(comm)), Some(Box::new(connector)), cancel);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut DockerContext, _outcome: Outcome) {
        ctx.core.session.disconnect().await;
    }
}
