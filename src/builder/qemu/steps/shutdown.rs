//! Step: shut the guest down, escalating until QEMU has exited.
//!
//! Uses: `config.shutdown_command`, `config.shutdown_timeout`, `config.ssh`, `ssh_temp_key`,
//! `core.session`, `qmp`, `qemu`.
//! Produces: a stopped QEMU; sets `monitor`'s phase to shutting down (a power-off is now
//! expected). Cleanup: none (run_qemu's kills QEMU if it still runs).
//!
//! The ladder, each rung logged:
//! 1. `shutdown_command` through the communicator (or, with `communicator = "none"`, waiting
//!    for the guest to power itself off), then up to `shutdown_timeout` for QEMU to exit;
//! 2. the ACPI power button (QMP `system_powerdown`) — Packer never tries it, and without a
//!    `shutdown_command` it kills QEMU at once, risking an unflushed disk;
//! 3. SIGKILL. A build whose guest had to be killed after a `shutdown_command` (or with no
//!    communicator) fails, as in Packer, since its disk may be inconsistent.

use std::time::Duration;

use async_trait::async_trait;

use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::monitor::Phase;
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

/// The longest kiln waits after pressing the ACPI power button.
const ACPI_WAIT: Duration = Duration::from_secs(60);

pub struct Shutdown;

/// Deletes the line holding `public_key`'s key material from `~/.ssh/authorized_keys`.
fn clear_key_command(public_key: &str) -> String {
    // The base64 body identifies the key; it holds no `|`, the sed address delimiter.
    let body = public_key.split_whitespace().nth(1).unwrap_or(public_key);
    format!(
        "sed -i.kiln-bak '\\|{body}|d' ~/.ssh/authorized_keys && rm -f ~/.ssh/authorized_keys.kiln-bak"
    )
}

#[async_trait]
impl Step<BuildContext, Error> for Shutdown {
    fn name(&self) -> &'static str {
        "shutdown"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let timeout = ctx.config.shutdown_timeout;
        ctx.monitor.set_phase(Phase::ShuttingDown);
        let qemu = ctx.qemu.as_mut().ok_or(Error::Missing { what: "qemu" })?;
        let comm = ctx.core.session.take_comm();
        // `ssh_clear_authorized_keys`: remove the build's temporary key from the guest.
        if let (Some(comm), Some((_, public)), Some(ssh)) =
            (&comm, &ctx.ssh_temp_key, &ctx.config.ssh)
            && ssh.clear_authorized_keys
        {
            let command = clear_key_command(public);
            match comm.exec(&command, &mut |_, _| {}).await {
                Ok(0) => ctx
                    .core
                    .ui
                    .say("Removed the temporary SSH key from authorized_keys"),
                Ok(status) => ctx.core.ui.warn(format!(
                    "Removing the temporary SSH key exited with status {status}"
                )),
                Err(e) => ctx
                    .core
                    .ui
                    .warn(format!("Removing the temporary SSH key failed: {e}")),
            }
        }
        // Whether the first rung was one the template asked for (so missing it is an error).
        let asked = match (&ctx.config.communicator, &ctx.config.shutdown_command, comm) {
            (CommunicatorKind::None, _, _) => {
                ctx.core.ui.say(format!(
                    "Waiting up to {}s for the guest to power off",
                    timeout.as_secs()
                ));
                true
            }
            (_, Some(cmd), Some(comm)) => {
                ctx.core.ui.say("Gracefully halting virtual machine");
                let mut sink = |_: crate::communicator::Stream, chunk: &[u8]| {
                    tracing::debug!(output = %String::from_utf8_lossy(chunk), "shutdown_command output");
                };
                // The connection usually drops as the guest goes down; that is expected. A
                // command that never returns is bounded by the same timeout.
                match tokio::time::timeout(timeout, comm.exec(cmd, &mut sink)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(status)) => ctx
                        .core
                        .ui
                        .warn(format!("shutdown_command exited with status {status}")),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "shutdown_command ended without a status")
                    }
                    Err(_) => tracing::debug!("shutdown_command still running at the timeout"),
                }
                comm.close().await;
                true
            }
            (_, _, comm) => {
                if let Some(comm) = comm {
                    comm.close().await;
                }
                false
            }
        };
        if asked && let Some(status) = qemu.wait_exit(timeout).await.map_err(Error::StopQemu)? {
            tracing::info!(%status, "QEMU exited");
            return Ok(());
        }

        if asked {
            ctx.core.ui.warn(format!(
                "The guest did not power off within {}s; pressing the ACPI power button \
                 (QMP system_powerdown)",
                timeout.as_secs()
            ));
        } else {
            ctx.core
                .ui
                .say("No shutdown_command: pressing the ACPI power button (QMP system_powerdown)");
        }
        let acpi_wait = timeout.min(ACPI_WAIT);
        if let Some(qmp) = &ctx.qmp {
            match qmp.execute("system_powerdown", None).await {
                Ok(_) => {
                    if let Some(status) =
                        qemu.wait_exit(acpi_wait).await.map_err(Error::StopQemu)?
                    {
                        tracing::info!(%status, "QEMU exited after system_powerdown");
                        return Ok(());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "system_powerdown failed"),
            }
        }

        ctx.core.ui.warn(format!(
            "The guest ignored the ACPI power button for {}s; killing QEMU",
            acpi_wait.as_secs()
        ));
        qemu.kill().await.map_err(Error::StopQemu)?;
        if asked {
            Err(Error::ShutdownTimeout { timeout })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_key_command_deletes_the_key_line() {
        assert_eq!(
            clear_key_command("ssh-ed25519 AAAAC3Nz+ab/c= kiln"),
            "sed -i.kiln-bak '\\|AAAAC3Nz+ab/c=|d' ~/.ssh/authorized_keys && rm -f ~/.ssh/authorized_keys.kiln-bak"
        );
    }
}
