//! Step: on an install cache miss, keep the installed system now that SSH answers, before any
//! provisioner runs.
//!
//! The guest is paused (QMP `stop`: QEMU drains and flushes its disks), its RAM and device
//! state are written with a migration to a file, and each disk is copied (`qemu-img convert`,
//! which also flattens an overlay) while it stays paused; then it runs on and the build goes on
//! as if nothing happened (the SSH connection survives the pause). A layer is a guest paused
//! between two instructions: resumed, it goes on from there with no file system to repair.
//! A layer that cannot be written is reported as a warning: the build itself is unaffected.
//!
//! Uses: `install_key`, `qmp`, `qemu`, `disk_path`, `additional_disk_paths`, `cache_dir`,
//! `config.efi_boot`, `config.output_directory`, `ssh_temp_key`, `config.ssh`.
//! Produces: a layer in the install cache. Cleanup: none (an unfinished layer removes itself).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::builder::qemu::config::DiskFormat;
use crate::builder::qemu::qmp::{self, Qmp};
use crate::builder::qemu::{BuildContext, Error};
use crate::install_cache::{Meta, NewLayer};
use crate::step::Step;
use crate::wait::{self, Attempt};

/// The longest writing the RAM state may take.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often the migration's progress is asked for.
const POLL: Duration = Duration::from_millis(50);

pub struct SaveInstall;

/// Why a layer could not be written (reported as a warning).
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error("QMP")]
    Qmp(#[from] qmp::Error),
    #[error("the RAM state could not be written: {0}")]
    Migrate(String),
    #[error("a disk could not be copied")]
    Disk(#[from] crate::qemu_img::Error),
    #[error("a file could not be written")]
    Io(#[from] std::io::Error),
    #[error("the layer could not be stored")]
    Cache(#[from] crate::install_cache::Error),
}

#[async_trait]
impl Step<BuildContext, Error> for SaveInstall {
    fn name(&self) -> &'static str {
        "save_install"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let Some(key) = ctx.install_key.take() else {
            return Ok(());
        };
        let Some(layer) = NewLayer::create(&ctx.cache_dir, &key).map_err(Error::InstallCache)?
        else {
            ctx.core.ui.say(
                "Install cache: another kiln is writing or using this install's layer; not \
                 keeping it twice",
            );
            return Ok(());
        };
        let qmp = ctx.qmp.as_ref().ok_or(Error::Missing { what: "qmp" })?;
        let started = std::time::Instant::now();
        ctx.core
            .ui
            .say("Install cache: pausing the guest to keep the installed system");
        let saved = save(ctx, qmp, &layer).await;
        // Whatever happened, the guest runs on.
        let resumed = qmp.execute("cont", None).await;
        match saved {
            Ok(meta) => match layer.commit(&meta) {
                Ok(dir) => ctx.core.ui.say(format!(
                    "Install cache: kept the installed system in `{}` in {:.1}s",
                    dir.display(),
                    started.elapsed().as_secs_f64()
                )),
                Err(e) => warn(ctx, &SaveError::Cache(e)),
            },
            Err(e) => warn(ctx, &e),
        }
        resumed.map_err(Error::ResumeInstall)?;
        Ok(())
    }
}

fn warn(ctx: &BuildContext, e: &SaveError) {
    let mut text = format!("Install cache: could not keep the installed system: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    ctx.core.ui.warn(text);
}

/// Writes the RAM state, the disks, the UEFI variables and the temporary SSH key into the
/// layer's directory; the guest stays paused.
async fn save(ctx: &BuildContext, qmp: &Qmp, layer: &NewLayer) -> Result<Meta, SaveError> {
    let dir = layer.dir();
    qmp.execute(
        "migrate-set-parameters",
        Some(json!({"max-bandwidth": i64::MAX / 2})),
    )
    .await?;
    qmp.execute("stop", None).await?;
    let vmstate = "vmstate";
    qmp.execute(
        "migrate",
        Some(json!({"uri": format!("exec:cat > {}", shell_quote(&dir.join(vmstate)))})),
    )
    .await?;
    wait_migrated(qmp).await?;

    let mut disks = Vec::new();
    let main = ctx
        .disk_path
        .as_ref()
        .ok_or_else(|| SaveError::Migrate("internal error: no disk_path".to_owned()))?;
    for (i, disk) in std::iter::once(main)
        .chain(&ctx.additional_disk_paths)
        .enumerate()
    {
        let name = format!("disk-{i}.qcow2");
        crate::qemu_img::convert(DiskFormat::Qcow2, false, disk, &dir.join(&name), &[]).await?;
        disks.push(name);
    }
    let efivars = if ctx.config.efi_boot {
        let name = "efivars.fd";
        std::fs::copy(
            ctx.config.output_directory.join("efivars.fd"),
            dir.join(name),
        )?;
        Some(name.to_owned())
    } else {
        None
    };
    let uses_temp_key = ctx
        .config
        .ssh
        .as_ref()
        .is_some_and(|s| s.password.is_none() && s.private_key_file.is_none());
    let ssh_key = match (&ctx.ssh_temp_key, uses_temp_key) {
        (Some((key, _)), true) => {
            let name = "ssh-key";
            let text = key
                .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            write_private(&dir.join(name), text.as_bytes())?;
            Some(name.to_owned())
        }
        _ => None,
    };
    Ok(Meta {
        source: format!("qemu.{}", ctx.config.name),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        disks,
        vmstate: vmstate.to_owned(),
        efivars,
        ssh_key,
    })
}

/// Polls `query-migrate` until the outgoing migration has completed.
async fn wait_migrated(qmp: &Qmp) -> Result<(), SaveError> {
    let r = wait::until_ok(MIGRATE_TIMEOUT, POLL, || async {
        match qmp.execute("query-migrate", None).await {
            Ok(v) => match v["status"].as_str() {
                Some("completed") => Attempt::Done(()),
                Some("failed" | "cancelled") => Attempt::Fatal(SaveError::Migrate(
                    v["error-desc"].as_str().unwrap_or("failed").to_owned(),
                )),
                _ => Attempt::Retry(SaveError::Migrate("still running".to_owned())),
            },
            Err(e) => Attempt::Fatal(SaveError::Qmp(e)),
        }
    })
    .await;
    match r {
        Ok(()) => Ok(()),
        Err(wait::Error::Fatal(e)) => Err(e),
        Err(e) => Err(SaveError::Migrate(e.to_string())),
    }
}

/// `path` quoted for `/bin/sh` (QEMU runs `exec:` migrations through it).
pub(crate) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_the_exec_migration() {
        assert_eq!(shell_quote(Path::new("/c/a b")), "'/c/a b'");
        assert_eq!(shell_quote(Path::new("/c/it's")), r"'/c/it'\''s'");
    }
}
