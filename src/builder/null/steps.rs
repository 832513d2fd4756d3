//! The null builder's own step (the other is the shared `Provision`).
//!
//! `Connect` — uses `config.host`, `config.ssh`; produces `core.session` (the connection, and how
//! to reconnect); cleanup closes the connection.

use async_trait::async_trait;

use super::{Error, NullContext};
use crate::step::{Outcome, Step};

pub struct Connect;

#[async_trait]
impl Step<NullContext, Error> for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&mut self, ctx: &mut NullContext) -> Result<(), Error> {
        let Some(cfg) = &ctx.config.ssh else {
            return Ok(());
        };
        let target = cfg
            .target(ctx.config.host.clone(), cfg.port, None)
            .map_err(Error::Connect)?;
        ctx.core
            .connect_ssh(target, cfg.timeout)
            .await
            .map_err(Error::Connect)?;
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut NullContext, _outcome: Outcome) {
        ctx.core.session.disconnect().await;
    }
}
