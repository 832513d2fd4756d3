//! Step: wait until the guest accepts SSH logins.
//!
//! Uses: `config.ssh`, `ssh_temp_key`, `ssh_host_port`, `qemu`, `serial_log`.
//! Produces: `core.session` (the connection, and how to reconnect while QEMU runs). Cleanup:
//! closes the connection if a later step left it open.
//! QEMU exiting during the wait fails the step at once; a timeout reports the last lines of
//! the guest's serial console and saves a screenshot (`kiln-NAME-ssh-timeout.png` in the
//! working directory).

use std::sync::Arc;

use async_trait::async_trait;

use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::{BuildContext, Error};
use crate::communicator::ssh::{self, SshTarget};
use crate::provisioner::Session;
use crate::step::{Outcome, Step};

/// Lines of the serial console shown when SSH never comes up.
const SERIAL_TAIL_LINES: usize = 15;

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
        let private_key = match (&ssh_cfg.private_key_file, &ctx.ssh_temp_key) {
            (Some(path), _) => Some(ssh::load_private_key(path).map_err(Error::WaitSsh)?),
            (None, Some((key, _))) => Some(Arc::clone(key)),
            (None, None) => None,
        };
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port,
            username: ssh_cfg.username.clone(),
            private_key,
            password: ssh_cfg.password.clone(),
            pty: ssh_cfg.pty,
        };
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
            "Waiting for SSH on 127.0.0.1:{port} (timeout {}s)",
            ssh_cfg.timeout.as_secs()
        ));
        match ssh::wait_for_ssh(&target, ssh_cfg.timeout, qemu.died(), &ctx.core.cancel).await {
            Ok(comm) => {
                ctx.core.ui.say("Connected to SSH");
                let watch = qemu.death_watch();
                let died = Box::new(move || Box::pin(watch.clone().died()) as ssh::AbortFuture);
                let cancel = ctx.core.cancel.clone();
                let reconnect = ssh::Reconnect::new(target, died, cancel.clone());
                ctx.core.session =
                    Session::new(Some(Box::new(comm)), Some(Box::new(reconnect)), cancel);
                Ok(())
            }
            Err(e) => {
                if let Some(log) = &ctx.serial_log {
                    let tail = serial_tail(log, SERIAL_TAIL_LINES).await;
                    if !tail.is_empty() {
                        ctx.core.ui.error(format!(
                            "Last lines of the guest's serial console ({}):",
                            log.display()
                        ));
                        for line in tail.lines() {
                            ctx.core.ui.message(format!("serial: {line}"));
                        }
                    }
                }
                if !matches!(e, ssh::Error::Cancelled | ssh::Error::Aborted { .. }) {
                    let png = std::path::PathBuf::from(format!(
                        "kiln-{}-ssh-timeout.png",
                        ctx.config.name
                    ));
                    if let Some(qmp) = &ctx.qmp {
                        match screendump(qmp, &png).await {
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

/// Saves the guest's screen as a PNG at `path` (QMP `screendump`, QEMU ≥ 7.1); returns its
/// absolute path. The file lives outside the output directory, which a failed build removes.
async fn screendump(
    qmp: &crate::builder::qemu::qmp::Qmp,
    path: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    let args = serde_json::json!({"filename": abs.to_string_lossy(), "format": "png"});
    qmp.execute("screendump", Some(args))
        .await
        .map_err(|e| e.to_string())?;
    Ok(abs)
}

/// The last `n` lines of the serial log (empty if unreadable), stripped of carriage returns.
async fn serial_tail(path: &std::path::Path, n: usize) -> String {
    let Ok(bytes) = tokio::fs::read(path).await else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes).replace('\r', "");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
