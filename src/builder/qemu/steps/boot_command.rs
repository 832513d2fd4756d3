//! Step: wait `boot_wait`, then type `boot_command` (or each of `boot_steps`) into the guest.
//!
//! Uses: `config.boot_wait`, `config.boot_command`, `config.boot_steps`,
//! `config.boot_key_interval`, `config.boot_keygroup_interval`, `config.boot_key_driver`, `config.boot_keymap`, `config.vm_name`, `http_port`, `http_ip`, `qmp`,
//! `qemu`, `key_trace`, `vnc_addr`.
//! `config.disable_vnc`: the step does nothing, as in Packer.
//! `install_layer`: a guest resumed from the install cache is past its boot command; nothing is
//! waited for or typed.
//! Produces: nothing. Cleanup: none.
//! kiln's `<waitFor "TEXT">` and `<waitStill>` read the screen over QMP (see
//! [`bootcmd::screen`]); a `<waitFor>` that times out saves the screen as
//! `kiln-NAME-waitfor-timeout.png` in the working directory.
//! Every command is rendered and parsed before the wait, so a bad one fails at once. Without
//! `boot_key_interval`, keys go as fast as the guest reads them (see `bootcmd::Pacing`).

use async_trait::async_trait;

use crate::bootcmd::{
    self, BootVars, Pacing, QemuKeyboard, QmpKeyDriver, QmpScreen, Typed, VncKeyDriver,
};
use crate::builder::qemu::config::KeyDriverKind;
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;

/// The host as the guest sees it on QEMU's user network.
pub const HTTP_IP: &str = "10.0.2.2";

/// The values of `{{ .HTTPIP }}`, `{{ .HTTPPort }}`, `{{ .Name }}` and `{{ .SSHPublicKey }}`
/// for this build (also rendered into `qemuargs`).
pub fn boot_vars(ctx: &BuildContext) -> BootVars {
    BootVars {
        http_ip: ctx.http_ip.clone(),
        http_port: ctx.http_port,
        name: ctx.config.vm_name.clone(),
        ssh_public_key: ctx
            .ssh_temp_key
            .as_ref()
            .map(|(_, public)| public.clone())
            .unwrap_or_default(),
    }
}

/// Keyboards `qemuargs` may add besides the PS/2 one: QEMU hands key events to the one the
/// guest uses (SeaBIOS drives a USB keyboard itself), which kiln's guest pacing cannot follow
/// (it watches PS/2 reads), and a fast fixed pace loses keys there (Bento adds `usb-kbd`).
const OTHER_KEYBOARDS: &[&str] = &["usb-kbd", "virtio-keyboard"];

/// The first keyboard of [`OTHER_KEYBOARDS`] that `qemuargs` add, if any.
fn other_keyboard(qemuargs: &[Vec<String>]) -> Option<&'static str> {
    OTHER_KEYBOARDS
        .iter()
        .copied()
        .find(|k| qemuargs.iter().flatten().any(|part| part.contains(k)))
}

pub struct TypeBootCommand;

#[async_trait]
impl Step<BuildContext, Error> for TypeBootCommand {
    fn name(&self) -> &'static str {
        "boot_command"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        if ctx.install_layer.is_some() {
            // The guest was kept after its install: it waits for nothing to be typed.
            return Ok(());
        }
        if ctx.config.disable_vnc {
            // As Packer: no boot command (the template cannot have one) and no `boot_wait`.
            return Ok(());
        }
        let cfg = &ctx.config;
        let vars = boot_vars(ctx);
        // Packer joins boot_command's entries with no separator; boot_steps are typed one by one.
        let commands: Vec<(String, &str)> = if cfg.boot_steps.is_empty() {
            vec![(cfg.boot_command.concat(), "")]
        } else {
            cfg.boot_steps
                .iter()
                .map(|s| (s.command.clone(), s.description.as_str()))
                .collect()
        };
        let mut compiled = Vec::with_capacity(commands.len());
        for (command, description) in &commands {
            let mut actions =
                bootcmd::compile(command, &vars, cfg.boot_keymap).map_err(Error::BootCommand)?;
            if let Some(interval) = cfg.boot_keygroup_interval {
                actions = bootcmd::with_group_pauses(actions, interval);
            }
            compiled.push((actions, *description));
        }

        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let wait = cfg.boot_wait.or_zero();
        if !wait.is_zero() {
            ctx.core
                .ui
                .say(format!("Waiting {}s for boot", wait.as_secs_f64()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                reason = qemu.died() => return Err(Error::QemuExited { during: "boot_wait", reason }),
            }
        }
        if compiled.iter().all(|(a, _)| a.is_empty()) {
            return Ok(());
        }
        let qmp = ctx.qmp.as_deref().ok_or(Error::Missing { what: "qmp" })?;
        let other_keyboard = other_keyboard(&cfg.qemuargs);
        if let (None, Some(device)) = (cfg.boot_key_interval, other_keyboard) {
            ctx.core.ui.say(format!(
                "qemuargs add a `{device}`, which receives the keys and whose reads kiln cannot \
                 follow: typing at Packer's {} ms per key event",
                bootcmd::PACKER_INTERVAL.as_millis()
            ));
        }
        let (pacing, mut reads) = match (cfg.boot_key_interval, &ctx.key_trace) {
            (Some(interval), _) => (Pacing::Interval(interval), None),
            (None, _) if other_keyboard.is_some() => {
                (Pacing::Interval(bootcmd::PACKER_INTERVAL), None)
            }
            (None, Some(trace)) => (
                Pacing::guest_paced(),
                Some(QemuKeyboard::new(trace.clone(), qmp, bootcmd::BIOS_WINDOW)),
            ),
            (None, None) => (Pacing::default(), None),
        };
        let mut qmp_driver;
        let mut vnc_driver;
        // Said only for a non-US layout, the one a reader might not expect.
        let layout = if cfg.boot_keymap == bootcmd::Keymap::us() {
            String::new()
        } else {
            format!(" with the `{}` keyboard layout", cfg.boot_keymap.name())
        };
        let driver: &mut dyn bootcmd::KeyDriver = match cfg.boot_key_driver {
            KeyDriverKind::Qmp => {
                ctx.core
                    .ui
                    .say(format!("Typing the boot command over QMP{layout}"));
                qmp_driver = QmpKeyDriver::new(qmp);
                &mut qmp_driver
            }
            KeyDriverKind::Vnc => {
                let addr = ctx.vnc_addr.ok_or(Error::Missing { what: "vnc_addr" })?;
                ctx.core
                    .ui
                    .say(format!("Typing the boot command over VNC ({addr}){layout}"));
                vnc_driver = VncKeyDriver::connect(addr)
                    .await
                    .map_err(|e| Error::BootCommand(bootcmd::Error::Vnc(e)))?;
                &mut vnc_driver
            }
        };
        let waits_for_screen = compiled.iter().flat_map(|(a, _)| a).any(|a| {
            matches!(
                a,
                bootcmd::Action::WaitForText { .. } | bootcmd::Action::WaitStill { .. }
            )
        });
        let mut screen = if waits_for_screen {
            let shot = std::path::PathBuf::from(format!("kiln-{}-waitfor-timeout.png", cfg.name));
            Some(QmpScreen::new(qmp, shot).map_err(Error::TempDir)?)
        } else {
            None
        };
        let mut total = Typed::default();
        let mut packer = std::time::Duration::ZERO;
        for (actions, description) in &compiled {
            if !description.is_empty() {
                ctx.core.ui.say(format!("Typing boot step: {description}"));
            }
            let reads = reads.as_mut().map(|r| r as &mut dyn bootcmd::GuestReads);
            let screen = screen.as_mut().map(|s| s as &mut dyn bootcmd::Screen);
            let typed = tokio::select! {
                r = bootcmd::type_actions(actions, driver, reads, screen, &ctx.core.cancel, pacing) => r.map_err(Error::BootCommand)?,
                reason = qemu.died() => return Err(Error::QemuExited { during: "boot command typing", reason }),
            };
            total.events += typed.events;
            total.typing += typed.typing;
            total.fell_back |= typed.fell_back;
            packer += bootcmd::packer_typing_time(actions);
        }
        if total.fell_back {
            ctx.core.ui.warn(format!(
                "The guest's keyboard reads could not be followed; typed at {} ms per key event",
                bootcmd::FALLBACK_INTERVAL.as_millis()
            ));
        }
        ctx.core.ui.say(format!(
            "Typed the boot command: {} key events in {:.3}s ({}; Packer's 100 ms per event: {:.1}s)",
            total.events,
            total.typing.as_secs_f64(),
            match pacing {
                Pacing::Interval(d) => format!("{} ms per event", d.as_secs_f64() * 1000.0),
                Pacing::GuestPaced { .. } if !total.fell_back => "paced by the guest's reads".to_owned(),
                Pacing::GuestPaced { .. } => "fallback interval".to_owned(),
            },
            packer.as_secs_f64()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bento's qemuargs add USB and virtio keyboards: kiln types at Packer's pace then
    /// (issue 13, found on chef/bento's Debian 12 template).
    #[test]
    fn issue_13_other_keyboards_are_found_in_qemuargs() {
        let args = |parts: &[&str]| -> Vec<Vec<String>> {
            parts
                .iter()
                .map(|p| vec!["-device".to_owned(), (*p).to_owned()])
                .collect()
        };
        assert_eq!(
            other_keyboard(&args(&["virtio-gpu-pci", "qemu-xhci"])),
            None
        );
        assert_eq!(
            other_keyboard(&args(&["qemu-xhci", "driver=usb-kbd"])),
            Some("usb-kbd")
        );
        assert_eq!(
            other_keyboard(&args(&["driver=virtio-keyboard-pci"])),
            Some("virtio-keyboard")
        );
    }
}
