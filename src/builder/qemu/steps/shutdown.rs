//! Step: shut the guest down.
//!
//! Uses: `config.shutdown_command`, `config.shutdown_timeout`, `comm`, `qemu`.
//! Produces: a stopped QEMU (the disk is consistent). Cleanup: none (run_qemu's kills QEMU).
//! With a `shutdown_command` it runs through the communicator and kiln waits for QEMU to
//! exit; without one QEMU is stopped at once, as Packer does.

use async_trait::async_trait;

use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::{BuildContext, Error};
use crate::communicator::Communicator;
use crate::step::Step;

pub struct Shutdown;

#[async_trait]
impl Step<BuildContext, Error> for Shutdown {
    fn name(&self) -> &'static str {
        "shutdown"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let timeout = ctx.config.shutdown_timeout;
        let qemu = ctx.qemu.as_mut().ok_or(Error::Missing { what: "qemu" })?;
        match (
            &ctx.config.communicator,
            &ctx.config.shutdown_command,
            ctx.comm.take(),
        ) {
            (CommunicatorKind::None, _, _) => {
                ctx.ui.say(format!(
                    "Waiting up to {}s for the guest to power off",
                    timeout.as_secs()
                ));
            }
            (_, Some(cmd), Some(comm)) => {
                ctx.ui.say("Gracefully halting virtual machine");
                let mut sink = |_: crate::communicator::Stream, chunk: &[u8]| {
                    tracing::debug!(output = %String::from_utf8_lossy(chunk), "shutdown_command output");
                };
                // The connection usually drops as the guest goes down; that is expected.
                match comm.exec(cmd, &mut sink).await {
                    Ok(0) => {}
                    Ok(status) => ctx
                        .ui
                        .warn(format!("shutdown_command exited with status {status}")),
                    Err(e) => {
                        tracing::debug!(error = %e, "shutdown_command ended without a status")
                    }
                }
                comm.close().await;
            }
            (_, _, comm) => {
                if let Some(comm) = comm {
                    comm.close().await;
                }
                ctx.ui.say("Halting the virtual machine");
                qemu.kill().await.map_err(Error::StopQemu)?;
                return Ok(());
            }
        }
        match qemu.wait_exit(timeout).await.map_err(Error::StopQemu)? {
            Some(status) => {
                tracing::info!(%status, "QEMU exited");
                Ok(())
            }
            None => {
                qemu.kill().await.map_err(Error::StopQemu)?;
                Err(Error::ShutdownTimeout { timeout })
            }
        }
    }
}
