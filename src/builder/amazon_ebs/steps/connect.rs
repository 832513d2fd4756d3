//! `connect` — uses `instance` (its address per `ssh_interface`, or `ssh_host`), the SSH
//! options and `key_pair`; produces `core.session`. Cleanup: closes the connection.

use async_trait::async_trait;

use super::super::{Context, Error, SshInterface};
use crate::step::{Outcome, Step};

pub struct Connect;

/// The address SSH goes to, and its name for messages.
fn address(ctx: &Context) -> Result<String, Error> {
    if let Some(host) = &ctx.config.ssh_host {
        return Ok(host.clone());
    }
    let instance = ctx.instance.clone().unwrap_or_default();
    let (found, what) = match ctx.config.ssh_interface {
        SshInterface::PublicIp => (instance.public_ip, "public IP"),
        SshInterface::PrivateIp => (instance.private_ip, "private IP"),
        SshInterface::PublicDns => (instance.public_dns, "public DNS name"),
        SshInterface::PrivateDns => (instance.private_dns, "private DNS name"),
        SshInterface::Auto => (
            instance
                .public_ip
                .or(instance.private_ip)
                .or(instance.public_dns)
                .or(instance.private_dns),
            "address",
        ),
    };
    found.ok_or(Error::NoAddress {
        id: instance.id,
        what,
    })
}

#[async_trait]
impl Step<Context, Error> for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let host = address(ctx)?;
        let cfg = &ctx.config.ssh;
        let target = cfg
            .target(host, cfg.port, ctx.key_pair.as_ref().map(|(_, key, _)| key))
            .map_err(Error::Connect)?;
        if !cfg.pause_before_connecting.is_zero() {
            ctx.core.ui.say(format!(
                "Pausing {}s before connecting",
                cfg.pause_before_connecting.as_secs()
            ));
            // The template asks for this pause (the step runner still cancels it).
            tokio::time::sleep(cfg.pause_before_connecting).await;
        }
        ctx.core
            .connect_ssh(target, cfg.timeout)
            .await
            .map_err(Error::Connect)?;
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, _outcome: Outcome) {
        ctx.core.session.disconnect().await;
    }
}
