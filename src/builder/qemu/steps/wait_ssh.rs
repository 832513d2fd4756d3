//! Step: wait until the guest accepts SSH logins.
//!
//! Uses: `config.ssh`, `config.ssh_host`, `ssh_temp_key`, `ssh_host_port`, `qemu`, `qmp`, `serial_log`,
//! `monitor`.
//! Produces: `core.session` (the connection, and how to reconnect while QEMU runs); sets
//! `monitor`'s phase to connected (reboots are no longer a boot loop). Cleanup: closes the
//! connection if a later step left it open.
//! QEMU exiting during the wait fails the step at once (a guest fault, when the event watcher
//! saw one, is reported instead: see `monitor`); a timeout reports the last lines of the
//! guest's serial console and saves a screenshot (`kiln-NAME-ssh-timeout.png` in the working
//! directory).

use async_trait::async_trait;

use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::monitor::{self, Phase};
use crate::builder::qemu::{BuildContext, Error};
use crate::communicator::ssh;
use crate::provisioner::Session;
use crate::step::{Outcome, Step};

/// How long a failure because QEMU exited waits for the event watcher's verdict.
const FAULT_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct WaitSsh;

#[async_trait]
impl Step<BuildContext, Error> for WaitSsh {
    fn name(&self) -> &'static str {
        "wait_ssh"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let (CommunicatorKind::Ssh, Some(ssh_cfg)) = (&ctx.config.communicator, &ctx.config.ssh)
        else {
            return Ok(());
        };
        let port = ctx.ssh_host_port.ok_or(Error::Missing {
            what: "ssh_host_port",
        })?;
        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let target = ssh_cfg
            .target(
                ctx.guest_address
                    .clone()
                    .unwrap_or_else(|| ctx.config.ssh_host().to_owned()),
                port,
                ctx.ssh_temp_key.as_ref().map(|(key, _)| key),
            )
            .map_err(Error::WaitSsh)?;
        if !ssh_cfg.pause_before_connecting.is_zero() {
            ctx.core.ui.say(format!(
                "Pausing {}s before connecting (pause_before_connecting)",
                ssh_cfg.pause_before_connecting.as_secs()
            ));
            tokio::select! {
                () = ctx.core.cancel.cancelled() => return Err(Error::WaitSsh(ssh::Error::Cancelled)),
                () = tokio::time::sleep(ssh_cfg.pause_before_connecting) => {}
            }
        }
        ctx.core.ui.say(format!(
            "Waiting for SSH on {}:{port} (timeout {}s)",
            target.host,
            ssh_cfg.timeout.as_secs()
        ));
        match ssh::wait_for_ssh(&target, ssh_cfg.timeout, qemu.died(), &ctx.core.cancel).await {
            Ok(comm) => {
                ctx.core.ui.say("Connected to SSH");
                ctx.monitor.set_phase(Phase::Connected);
                let watch = qemu.death_watch();
                let died = Box::new(move || Box::pin(watch.clone().died()) as ssh::AbortFuture);
                let cancel = ctx.core.cancel.clone();
                let reconnect = ssh::Reconnect::new(target, died, cancel.clone());
                ctx.core.session =
                    Session::new(Some(Box::new(comm)), Some(Box::new(reconnect)), cancel);
                Ok(())
            }
            Err(e) => {
                // QEMU going away may end a fault's story (the guest powered off or
                // panicked): then the watcher has shown what there is to show.
                if matches!(e, ssh::Error::Aborted { .. })
                    && ctx.monitor.settle(FAULT_SETTLE).await.is_some()
                {
                    return Err(Error::WaitSsh(e));
                }
                if let Some(log) = &ctx.serial_log {
                    monitor::show_serial_tail(&ctx.core.ui, log).await;
                }
                if !matches!(e, ssh::Error::Cancelled | ssh::Error::Aborted { .. }) {
                    let png = std::path::PathBuf::from(format!(
                        "kiln-{}-ssh-timeout.png",
                        ctx.config.name
                    ));
                    if let Some(qmp) = &ctx.qmp {
                        match monitor::screendump(qmp, &png).await {
                            Ok(path) => ctx.core.ui.error(format!(
                                "The guest's screen when SSH gave up: {}",
                                path.display()
                            )),
                            Err(why) => tracing::debug!(%why, "no screenshot"),
                        }
                    }
                }
                Err(Error::WaitSsh(e))
            }
        }
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        ctx.core.session.disconnect().await;
    }
}
