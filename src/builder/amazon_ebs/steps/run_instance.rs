//! `run_instance` — uses `client`, `source`, `key_pair`, `security_group_ids` and the launch
//! options; produces `instance` (running, with its addresses). Cleanup: terminates the
//! instance and waits until it is gone, on every outcome; a guard does the same if the
//! build panics.

use async_trait::async_trait;
use base64::Engine as _;

use super::super::{Context, Error};
use crate::aws::{Client, ec2};
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct RunInstance {
    guard: Option<Guard>,
}

/// Terminates the instance when dropped armed (a panic unwinding through the build): the
/// step's cleanup disarms it after terminating the instance itself.
struct Guard {
    client: Client,
    id: String,
    armed: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (client, id) = (self.client.clone(), self.id.clone());
        tracing::warn!(id, "terminating the instance from the panic guard");
        // A thread with its own runtime: the build's runtime may be the one unwinding.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(ec2::terminate_instance(&client, &id));
            }
        });
        let _ = done.join();
    }
}

#[async_trait]
impl Step<Context, Error> for RunInstance {
    fn name(&self) -> &'static str {
        "run_instance"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let client = ctx.client()?;
        let cfg = &ctx.config;
        let launch = ec2::Launch {
            image_id: ctx
                .source
                .as_ref()
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            instance_type: cfg.instance_type.clone(),
            key_name: ctx.key_pair.as_ref().map(|(name, _, _)| name.clone()),
            security_group_ids: ctx.security_group_ids.clone(),
            subnet_id: cfg.subnet_id.clone(),
            associate_public_ip_address: cfg.associate_public_ip_address,
            iam_instance_profile: cfg.iam_instance_profile.clone(),
            user_data: cfg
                .user_data
                .as_ref()
                .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
            block_devices: cfg.launch_block_device_mappings.clone(),
            shutdown_behavior: cfg.shutdown_behavior.clone(),
            tags: ctx.render_tags(&cfg.run_tags)?,
        };
        ctx.core.ui.say("Launching a source AWS instance...");
        let id = ec2::run_instance(&client, &launch)
            .await
            .map_err(Error::RunInstance)?;
        self.guard = Some(Guard {
            client: client.clone(),
            id: id.clone(),
            armed: true,
        });
        ctx.core.ui.say(format!("Instance ID: {id}"));
        ctx.core
            .ui
            .say(format!("Waiting for instance ({id}) to become ready..."));
        let instance = super::instance_state(&client, ctx.config.polling, &id, "running")
            .await
            .map_err(|source| Error::Wait {
                id: id.clone(),
                state: "running",
                source,
            })?;
        ctx.instance = Some(instance);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, _outcome: Outcome) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let (client, id) = (guard.client.clone(), guard.id.clone());
        ctx.core.ui.say("Terminating the source AWS instance...");
        let result = match ec2::terminate_instance(&client, &id).await {
            Ok(()) => super::instance_state(&client, ctx.config.polling, &id, "terminated")
                .await
                .map(drop)
                .map_err(|e| crate::ui::error_chain(&e)),
            Err(e) => Err(crate::ui::error_chain(&e)),
        };
        // Terminated, or tried and reported: the guard has nothing more to do.
        guard.armed = false;
        if let Err(e) = result {
            ctx.core.ui.error(format!(
                "Error terminating instance {id}: {e}. Please terminate it manually!"
            ));
        }
    }
}
