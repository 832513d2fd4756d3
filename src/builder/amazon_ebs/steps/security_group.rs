//! `security_group` — uses `client`, `config.security_group_ids`, `vpc_id`/`subnet_id`,
//! `temporary_security_group_source_cidrs`, the SSH port; produces `security_group_ids`: the
//! template's groups, or a temporary group `packer_<run id>` open to SSH from the given
//! CIDRs. Cleanup: deletes the temporary group (retried while the terminated instance still
//! holds it).

use async_trait::async_trait;

use super::super::{Context, Error, StateError};
use crate::aws::{Client, ec2};
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct SecurityGroup {
    created: Option<(Client, String)>,
}

#[async_trait]
impl Step<Context, Error> for SecurityGroup {
    fn name(&self) -> &'static str {
        "security_group"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        if !ctx.config.security_group_ids.is_empty() {
            ctx.security_group_ids = ctx.config.security_group_ids.clone();
            return Ok(());
        }
        let client = ctx.client()?;
        let cfg = &ctx.config;
        let vpc = match &cfg.vpc_id {
            Some(v) => Some(v.clone()),
            None => ec2::vpc_for(&client, cfg.subnet_id.as_deref())
                .await
                .map_err(Error::CreateSecurityGroup)?,
        };
        let name = ctx.temporary_name();
        ctx.core.ui.say(format!(
            "Creating temporary security group for this instance: {name}"
        ));
        let id = ec2::create_security_group(
            &client,
            &name,
            "Temporary group for Packer",
            vpc.as_deref(),
        )
        .await
        .map_err(Error::CreateSecurityGroup)?;
        self.created = Some((client.clone(), id.clone()));
        let cidrs = &ctx.config.temporary_security_group_source_cidrs;
        ctx.core.ui.say(format!(
            "Authorizing access to port {} from {:?} in the temporary security groups...",
            ctx.config.ssh.port, cidrs
        ));
        ec2::authorize_ingress(&client, &id, ctx.config.ssh.port, cidrs)
            .await
            .map_err(Error::CreateSecurityGroup)?;
        ctx.security_group_ids = vec![id];
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, _outcome: Outcome) {
        let Some((client, id)) = self.created.take() else {
            return;
        };
        ctx.core.ui.say("Deleting temporary security group...");
        // The group stays in use until the instance is fully gone.
        let result = super::poll(ctx.config.polling, || async {
            match ec2::delete_security_group(&client, &id).await {
                Err(e) if e.code() == Some("DependencyViolation") => Err(StateError::NotYet {
                    state: "in use".into(),
                }),
                other => other.map_err(StateError::Aws),
            }
        })
        .await;
        if let Err(e) = result {
            ctx.core.ui.error(format!(
                "Error cleaning up security group {id}: {}. Please delete it manually!",
                crate::ui::error_chain(&e)
            ));
        }
    }
}
