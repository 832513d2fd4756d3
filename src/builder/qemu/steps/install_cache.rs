//! Step: with `install_cache`, compute the install key (see [`crate::builder::qemu::install`])
//! and look the installed system up in kiln's cache.
//!
//! On a hit the later steps resume the kept guest instead of installing: `create_disk` makes
//! the disks over the layer's, `run_qemu` loads its RAM state, `boot_command` types nothing,
//! and the build's temporary SSH key is the one the layer was made with. On a miss
//! `save_install` keeps the system once SSH answers.
//!
//! Uses: `config` (the install inputs), `config.install_cache`, `iso_path`, `cache_dir`.
//! Produces: `install_layer` (hit, held until the build ends) or `install_key` (miss), and on a
//! hit `ssh_temp_key`. Cleanup: none (the layer's lock goes with the context).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::builder::qemu::config::{CommunicatorKind, Config};
use crate::builder::qemu::install::{self, KeyInputs};
use crate::builder::qemu::{BuildContext, Error, accel};
use crate::install_cache;
use crate::step::Step;
use crate::types::Checksum;

pub struct FindInstall;

#[async_trait]
impl Step<BuildContext, Error> for FindInstall {
    fn name(&self) -> &'static str {
        "install_cache"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.install_cache {
            return Ok(());
        }
        if cfg.communicator != CommunicatorKind::Ssh {
            ctx.core.ui.warn(
                "install_cache is not used: it keeps the installed system when SSH first \
                 answers, and this build has no SSH communicator",
            );
            return Ok(());
        }
        let why_not = if cfg.vtpm {
            Some("`vtpm`: the software TPM's state is not kept with the installed system")
        } else if cfg.net_bridge.is_some() {
            Some(
                "`net_bridge`: a resumed guest may never show up again in the host's neighbour \
                 table",
            )
        } else {
            None
        };
        if let Some(why) = why_not {
            ctx.core
                .ui
                .warn(format!("install_cache is not used with {why}"));
            return Ok(());
        }
        let iso = ctx
            .iso_path
            .clone()
            .ok_or(Error::Missing { what: "iso_path" })?;
        let inputs = key_inputs(cfg, &iso).await?;
        let key = install::key(cfg, &inputs);
        let layer = install_cache::open(&ctx.cache_dir, &key).map_err(Error::InstallCache)?;
        let Some(layer) = layer else {
            ctx.core.ui.say(format!(
                "Install cache: no installed system for key {}; installing (it is kept when SSH \
                 first answers)",
                &key[..12]
            ));
            ctx.install_key = Some(key);
            return Ok(());
        };
        ctx.core.ui.say(format!(
            "Install cache: resuming the installed system kept in `{}` (from build {}); no \
             boot command, no install",
            layer.dir.display(),
            layer.meta.source
        ));
        if let Some(name) = &layer.meta.ssh_key {
            let key = crate::communicator::ssh::load_private_key(&layer.file(name))
                .map_err(Error::InstallKey)?;
            let public = key
                .public_key()
                .to_openssh()
                .unwrap_or_else(|_| String::from("ssh-ed25519"));
            ctx.ssh_temp_key = Some((key, public));
        }
        ctx.install_layer = Some(layer);
        Ok(())
    }
}

/// Reads the digests that go into the key (hashing the ISO only when its checksum does not
/// already name its digest) and asks QEMU for its version.
async fn key_inputs(cfg: &Config, iso: &Path) -> Result<KeyInputs, Error> {
    let iso_digest = match &cfg.iso_checksum {
        Checksum::Digest { algo, hex } => format!("{algo}:{hex}"),
        _ => {
            let iso = iso.to_owned();
            let hex = blocking(move || install_cache::file_digest(&iso)).await?;
            format!("sha256:{hex}")
        }
    };
    let http_dir = cfg.http_directory.clone();
    let cd_paths = cfg.cd_files.clone();
    let floppy = (
        cfg.floppy_files.clone(),
        cfg.floppy_dirs.clone(),
        cfg.floppy_content.clone(),
    );
    let (http_files, cd_files, floppy_files) = blocking(move || {
        let http = match &http_dir {
            Some(dir) => install_cache::tree_digests(dir)?,
            None => Vec::new(),
        };
        let (files, dirs, content) = &floppy;
        Ok((
            http,
            cd_digests(&cd_paths)?,
            floppy_digests(files, dirs, content)?,
        ))
    })
    .await?;
    Ok(KeyInputs {
        iso_digest,
        qemu_version: qemu_version(&cfg.qemu_binary).await?,
        accel: accel::resolve(cfg.accelerator).accel,
        http_files,
        cd_files,
        floppy_files,
    })
}

/// The floppy's files as it holds them (see [`crate::floppy::plan`]), with their digests.
fn floppy_digests(
    files: &[PathBuf],
    dirs: &[PathBuf],
    content: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<Vec<(String, String)>> {
    use crate::floppy::Entry;
    let entries = crate::floppy::plan(files, dirs, content).map_err(std::io::Error::other)?;
    entries
        .into_iter()
        .map(|e| {
            Ok(match e {
                Entry::Dir(name) => (name, String::new()),
                Entry::Copy { name, from } => (name, install_cache::file_digest(&from)?),
                Entry::Text { name, text } => (name, install_cache::digest(text.as_bytes())),
            })
        })
        .collect()
}

/// The files of `cd_files` as the CD holds them: each under its base name, directories whole.
fn cd_digests(paths: &[PathBuf]) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in paths {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
        for (rel, digest) in install_cache::tree_digests(path)? {
            let name = if is_dir { format!("{base}/{rel}") } else { rel };
            out.push((name, digest));
        }
    }
    Ok(out)
}

/// The first line of `QEMU --version`.
async fn qemu_version(binary: &str) -> Result<String, Error> {
    let out = tokio::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Error::InstallInputs(std::io::Error::new(
                e.kind(),
                format!("`{binary} --version`: {e}"),
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
        .map_err(Error::InstallInputs)
}
