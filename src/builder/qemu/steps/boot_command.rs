//! Step: wait `boot_wait`, then type `boot_command` into the guest through QMP.
//!
//! Uses: `config.boot_wait`, `config.boot_command`, `config.vm_name`, `http_port`, `qmp`, `qemu`.
//! Produces: nothing. Cleanup: none.
//! The boot command is rendered and parsed before the wait, so a bad one fails at once.

use async_trait::async_trait;

use crate::bootcmd::{self, BootVars, Pacing, QmpKeyDriver};
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

/// The host as the guest sees it on QEMU's user network.
pub const HTTP_IP: &str = "10.0.2.2";

pub struct TypeBootCommand;

#[async_trait]
impl Step<BuildContext, Error> for TypeBootCommand {
    fn name(&self) -> &'static str {
        "boot_command"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        let vars = BootVars {
            http_ip: HTTP_IP.to_owned(),
            http_port: ctx.http_port,
            name: cfg.vm_name.clone(),
        };
        // Packer joins the entries with no separator, then renders and parses the whole.
        let joined = cfg.boot_command.concat();
        let rendered = bootcmd::render(&joined, &vars).map_err(Error::BootCommand)?;
        let actions = bootcmd::parse(&rendered).map_err(Error::BootCommand)?;

        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let wait = cfg.boot_wait.or_zero();
        if !wait.is_zero() {
            ctx.ui
                .say(format!("Waiting {}s for boot", wait.as_secs_f64()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                reason = qemu.died() => return Err(Error::QemuExited { during: "boot_wait", reason }),
            }
        }
        if actions.is_empty() {
            return Ok(());
        }
        let qmp = ctx.qmp.as_ref().ok_or(Error::Missing { what: "qmp" })?;
        ctx.ui.say("Typing the boot command over QMP");
        let mut driver = QmpKeyDriver::new(qmp);
        tokio::select! {
            r = bootcmd::type_actions(&actions, &mut driver, &ctx.cancel, Pacing::default()) => r.map_err(Error::BootCommand)?,
            reason = qemu.died() => return Err(Error::QemuExited { during: "boot command typing", reason }),
        }
        Ok(())
    }
}
