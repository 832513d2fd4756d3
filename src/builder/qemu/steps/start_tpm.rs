//! Step: with `vtpm`, start a software TPM for the build, as Packer does: `swtpm socket` with
//! its state in a private temporary directory (mode 0700) and its control channel on a Unix
//! socket there, which QEMU's TPM emulator backend connects to.
//!
//! Uses: `config.vtpm`, `config.use_tpm1` (TPM 1.2 instead of 2.0), `config.output_directory`
//! (swtpm's output goes to `swtpm.log` there).
//! Produces: `tpm_socket`.
//! Cleanup: kills swtpm (by its pid) and removes the directory, with the TPM's state. swtpm is
//! started like QEMU (see `process`): its guard kills it when dropped, and the kernel kills it
//! when kiln dies, even by SIGKILL.

use std::time::Duration;

use async_trait::async_trait;

use crate::builder::qemu::args;
use crate::builder::qemu::process::QemuProcess;
use crate::builder::qemu::{BuildContext, Error};
use crate::step::{Outcome, Step};
use crate::wait::{self, Attempt};

/// How long swtpm gets to open its control socket.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
pub struct StartTpm {
    dir: Option<tempfile::TempDir>,
    swtpm: Option<QemuProcess>,
}

/// Why swtpm's socket did not appear.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotReady(String);

#[async_trait]
impl Step<BuildContext, Error> for StartTpm {
    fn name(&self) -> &'static str {
        "start_tpm"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.vtpm {
            return Ok(());
        }
        let version = if cfg.use_tpm1 { "1.2" } else { "2.0" };
        ctx.core
            .ui
            .say(format!("Starting a software TPM {version} (swtpm)"));
        let dir = tempfile::Builder::new()
            .prefix("kiln-tpm-")
            .tempdir()
            .map_err(Error::TempDir)?;
        // Only kiln's user reaches the TPM's state and socket.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(Error::TempDir)?;
        let socket = dir.path().join("vtpm.sock");
        let argv = args::swtpm_args(dir.path(), &socket, cfg.use_tpm1);
        self.dir = Some(dir);
        let log = cfg.output_directory.join("swtpm.log");
        tracing::info!(args = ?argv, "starting swtpm");
        let swtpm = self
            .swtpm
            .insert(QemuProcess::spawn("swtpm", &argv, &log).map_err(Error::StartTpm)?);
        let ready = wait::until_ok(READY_TIMEOUT, READY_POLL, || {
            let exists = socket.exists();
            let exited = swtpm.exited();
            async move {
                match (exists, exited) {
                    (true, _) => Attempt::Done(()),
                    (false, Some(status)) => {
                        Attempt::Fatal(NotReady(format!("swtpm exited ({status})")))
                    }
                    (false, None) => Attempt::Retry(NotReady("no socket yet".into())),
                }
            }
        })
        .await;
        if let Err(e) = ready {
            let why = match e {
                wait::Error::Fatal(NotReady(why)) => why,
                wait::Error::Timeout { waited, .. } => format!("no socket after {waited:?}"),
            };
            let tail = swtpm.stderr_tail(10);
            return Err(Error::TpmNotReady {
                socket,
                reason: if tail.is_empty() {
                    why
                } else {
                    format!("{why}; it said:\n{tail}")
                },
            });
        }
        ctx.tpm_socket = Some(socket);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        ctx.tpm_socket = None;
        if let Some(mut swtpm) = self.swtpm.take()
            && let Err(e) = swtpm.kill().await
        {
            ctx.core.ui.error(format!("Could not stop swtpm: {e}"));
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            ctx.core.ui.error(format!(
                "Could not remove the software TPM's directory: {e}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::qemu::args::{RunParams, qemu_args};
    use crate::builder::qemu::config::Config;
    use crate::builder::qemu::qmp::{Qmp, test_qemu};
    use crate::builder::{Core, Settings, SourceConfig};

    fn context(out: &std::path::Path, tpm1: bool) -> BuildContext {
        let mut c = Config::with_defaults(
            "t",
            out.into(),
            "x.iso".into(),
            crate::types::Checksum::None,
        );
        c.output_directory = out.to_owned();
        c.vtpm = true;
        c.use_tpm1 = tpm1;
        let core = Core::new(
            &SourceConfig::Qemu(Box::new(c.clone())),
            crate::ui::Ui::default(),
            tokio_util::sync::CancellationToken::new(),
            Vec::new(),
            None,
            "run".into(),
        );
        let settings = Settings {
            force: false,
            on_error: Default::default(),
            debug: false,
            cache_dir: out.join("cache"),
            install_cache: false,
        };
        BuildContext::new(c, core, &settings)
    }

    /// The TPM switches `qemu_args` writes for `socket`.
    fn tpm_switches(c: &Config, socket: &std::path::Path) -> Vec<String> {
        let p = RunParams {
            tpm_socket: Some(socket.to_owned()),
            ..RunParams::for_tests()
        };
        qemu_args(c, &p)
            .chunks(2)
            .filter(|pair| {
                pair[0] == "-chardev" || pair[0] == "-tpmdev" || pair[1].contains("tpmdev=")
            })
            .flatten()
            .cloned()
            .collect()
    }

    /// Issue 14: `vtpm` starts swtpm on a private socket; a real QEMU given kiln's switches has
    /// the TPM (QMP `query-tpm`: TPM 2.0 or 1.2 as asked, on the emulator backend); the
    /// cleanup stops swtpm, by its pid, and removes its directory.
    #[tokio::test]
    async fn issue_14_vtpm_on_real_qemu_and_stopped_in_cleanup() {
        let out = tempfile::tempdir().expect("temp dir");
        for tpm1 in [false, true] {
            let mut ctx = context(out.path(), tpm1);
            let mut step = StartTpm::default();
            step.run(&mut ctx)
                .await
                .expect("swtpm starts (scripts/test.sh installs the Debian package swtpm)");
            let socket = ctx.tpm_socket.clone().expect("a socket");
            let dir = socket.parent().expect("dir").to_owned();
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&dir).expect("dir").permissions(),
            );
            assert_eq!(mode & 0o077, 0, "the TPM's directory is private");
            let pid = step.swtpm.as_ref().and_then(QemuProcess::pid).expect("pid");

            let switches = tpm_switches(&ctx.config, &socket);
            let argv: Vec<&str> = switches.iter().map(String::as_str).collect();
            let qemu = test_qemu::spawn(&[&["-S"][..], &argv].concat());
            let qmp = Qmp::connect(&qemu.socket, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("QEMU refused {argv:?}: {e}"));
            let tpms = qmp.execute("query-tpm", None).await.expect("query-tpm");
            assert_eq!(tpms[0]["id"], "tpm0", "{tpms}");
            assert_eq!(tpms[0]["model"], "tpm-tis", "{tpms}");
            assert_eq!(tpms[0]["options"]["type"], "emulator", "{tpms}");
            drop(qmp);
            drop(qemu);

            step.cleanup(&mut ctx, crate::step::Outcome::Succeeded)
                .await;
            assert!(ctx.tpm_socket.is_none());
            assert!(!dir.exists(), "directory removed");
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "swtpm {pid} stopped"
            );
        }
    }
}
