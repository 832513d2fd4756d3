//! The null builder's own step (the other is the shared `Provision`).
//!
//! `Connect` — uses `config.host`, `config.ssh`; produces `core.session` (the connection, and how
//! to reconnect); cleanup closes the connection.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Error, NullContext};
use crate::communicator::ssh::{self, SshTarget};
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
        let private_key = match &cfg.private_key_file {
            Some(path) => Some(ssh::load_private_key(path).map_err(Error::Connect)?),
            None => None,
        };
        let target = SshTarget {
            host: ctx.config.host.clone(),
            port: cfg.port,
            username: cfg.username.clone(),
            private_key: private_key.map(|k: Arc<_>| k),
            password: cfg.password.clone(),
            pty: cfg.pty,
            read_write_timeout: cfg.read_write_timeout,
            options: cfg.options.clone(),
        };
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
