//! The null builder's two steps.
//!
//! `Connect` — uses `config.host`, `config.ssh`; produces `ssh_target`, `comm`; cleanup closes
//! the connection. `Provision` — uses `provisioners`, `error_cleanup`, `comm`, `ssh_target`;
//! produces changes on the host; cleanup: none.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Error, NullContext};
use crate::communicator::ssh::{self, SshTarget};
use crate::provisioner::{self, BuildEnv};
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
        };
        ctx.ui.say(format!(
            "Waiting for SSH on {} (timeout {}s)",
            target.addr(),
            cfg.timeout.as_secs()
        ));
        let comm = ssh::wait_for_ssh(
            &target,
            cfg.timeout,
            std::future::pending::<String>(),
            &ctx.cancel,
        )
        .await
        .map_err(Error::Connect)?;
        ctx.ui.say("Connected to SSH");
        ctx.comm = Some(comm);
        ctx.ssh_target = Some(target);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut NullContext, _outcome: Outcome) {
        if let Some(comm) = ctx.comm.take() {
            comm.close().await;
        }
    }
}

pub struct Provision;

#[async_trait]
impl Step<NullContext, Error> for Provision {
    fn name(&self) -> &'static str {
        "provision"
    }

    async fn run(&mut self, ctx: &mut NullContext) -> Result<(), Error> {
        let source = format!("null.{}", ctx.config.name);
        let data = provisioner::build_data(&provisioner::DataSources {
            source: &source,
            target: ctx.ssh_target.as_ref(),
            http: None,
            temporary_key: None,
            run_uuid: &ctx.run_uuid,
        });
        let build = BuildEnv {
            source,
            data,
            env: vec![
                ("PACKER_BUILD_NAME".to_owned(), ctx.config.name.clone()),
                ("PACKER_BUILDER_TYPE".to_owned(), "null".to_owned()),
            ],
        };
        let (result, comm) = provisioner::provision(
            &ctx.provisioners,
            ctx.error_cleanup.as_ref(),
            ctx.comm.take(),
            ctx.ssh_target.clone(),
            Box::new(|| Box::pin(std::future::pending::<String>())),
            &build,
            &ctx.ui,
            ctx.cancel.clone(),
        )
        .await;
        ctx.comm = comm;
        result.map_err(Error::Provision)
    }
}
