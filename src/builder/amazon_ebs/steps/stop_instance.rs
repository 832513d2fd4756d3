//! `stop_instance` — uses `client`, `instance`; closes the SSH connection, stops the instance
//! and waits until it is stopped, so its volumes are consistent for the AMI. Skipped with
//! `skip_create_ami`. Cleanup: none (`run_instance` terminates it).

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::ec2;
use crate::step::Step;

pub struct StopInstance;

#[async_trait]
impl Step<Context, Error> for StopInstance {
    fn name(&self) -> &'static str {
        "stop_instance"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        if ctx.config.skip_create_ami {
            return Ok(());
        }
        ctx.core.session.disconnect().await;
        let client = ctx.client()?;
        let id = ctx
            .instance
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default();
        ctx.core.ui.say("Stopping the source instance...");
        ec2::stop_instance(&client, &id)
            .await
            .map_err(|source| Error::StopInstance {
                id: id.clone(),
                source,
            })?;
        ctx.core.ui.say("Waiting for the instance to stop...");
        super::instance_state(&client, ctx.config.polling, &id, "stopped")
            .await
            .map_err(|source| Error::Wait {
                id,
                state: "stopped",
                source,
            })?;
        Ok(())
    }
}
