//! Step (`-debug` only): say how to reach the machine — its VNC address and the exact `ssh`
//! command — so that a paused build can be looked at.
//!
//! Uses: `core.debug`, `vnc_addr`, `ssh_host_port`, `ssh_temp_key`, `config.ssh`,
//! `config.output_directory`, `core.name`.
//! Produces: with a temporary key pair, its private key in
//! `<output_directory>/<name>-debug.pem` (mode 0600), which the `ssh` command names.
//! Cleanup: removes that file (the key opens the machine, whatever becomes of the build).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct DebugAccess {
    key_file: Option<PathBuf>,
}

#[async_trait]
impl Step<BuildContext, Error> for DebugAccess {
    fn name(&self) -> &'static str {
        "debug_access"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        if !ctx.core.debug {
            return Ok(());
        }
        let ui = ctx.core.ui.clone();
        if let Some(vnc) = ctx.vnc_addr {
            ui.say(format!("Debug: the screen is on VNC at {vnc}"));
        }
        let (Some(ssh), Some(port)) = (&ctx.config.ssh, ctx.ssh_host_port) else {
            return Ok(());
        };
        let key = match (&ssh.private_key_file, &ctx.ssh_temp_key) {
            (Some(file), _) => Some(file.clone()),
            (None, Some((private, _))) => {
                let path = ctx
                    .config
                    .output_directory
                    .join(format!("{}-debug.pem", ctx.core.name));
                let text = private
                    .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                    .map(|k| k.to_string())
                    .unwrap_or_default();
                write_private(&path, &text).map_err(|source| Error::WriteDebugKey {
                    path: path.clone(),
                    source,
                })?;
                self.key_file = Some(path.clone());
                Some(path)
            }
            (None, None) => None,
        };
        // On `net_bridge` the guest's address is known only once it shows up on the bridge.
        let host = match (&ctx.config.net_bridge, &ctx.config.ssh_host) {
            (Some(_), None) => "GUEST_ADDRESS",
            _ => ctx.config.ssh_host(),
        };
        ui.say(format!(
            "Debug: once SSH is up, {}",
            ssh_command(host, port, &ssh.username, key.as_deref())
        ));
        Ok(())
    }

    async fn cleanup(&mut self, _ctx: &mut BuildContext, _outcome: Outcome) {
        if let Some(path) = self.key_file.take()
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the debug key");
        }
    }
}

/// Writes `text` to a new file readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The `ssh` command that reaches the guest through QEMU's forward: the guest's host key is
/// new, so it is neither checked nor remembered.
fn ssh_command(host: &str, port: u16, user: &str, key: Option<&std::path::Path>) -> String {
    let key = key.map_or_else(String::new, |k| format!(" -i {}", k.display()));
    let with = if key.is_empty() {
        " (with the template's ssh_password)"
    } else {
        ""
    };
    format!(
        "ssh -p {port}{key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         {user}@{host}{with}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_command() {
        assert_eq!(
            ssh_command(
                "127.0.0.1",
                3022,
                "root",
                Some(std::path::Path::new("out/x-debug.pem"))
            ),
            "ssh -p 3022 -i out/x-debug.pem -o StrictHostKeyChecking=no -o \
             UserKnownHostsFile=/dev/null root@127.0.0.1"
        );
        assert!(
            ssh_command("192.0.2.7", 22, "u", None)
                .ends_with("u@192.0.2.7 (with the template's ssh_password)")
        );
    }

    #[test]
    fn the_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k.pem");
        write_private(&path, "secret").expect("written");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
