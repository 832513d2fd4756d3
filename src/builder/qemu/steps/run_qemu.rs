//! Step: start QEMU and connect to its QMP socket.
//!
//! Uses: `config` (machine options), `disk_path`, `additional_disk_paths`, `iso_path` (not
//! attached with `disk_image`: it is the disk), `cd_path`. With `efi_boot` it copies the OVMF
//! variable store to `<output_directory>/efivars.fd` (removed with the output directory).
//! Produces: `accel`, `ssh_host_port`, `qemu`, `qmp`, `serial_log`, `key_trace`, `vnc_addr`.
//! Cleanup: closes QMP, kills QEMU if it still runs, removes the socket's temp directory.
//! QEMU also dies with kiln (parent-death signal) and when its guard drops.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use async_trait::async_trait;

use crate::bootcmd::feedback;
use crate::builder::qemu::args::{self, RunParams};
use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::process::QemuProcess;
use crate::builder::qemu::qmp::Qmp;
use crate::builder::qemu::{BuildContext, Error};
use crate::builder::qemu::{accel, firmware};
use crate::step::{Outcome, Step};

/// How long QEMU gets to open its QMP socket.
const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct RunQemu {
    socket_dir: Option<tempfile::TempDir>,
}

#[async_trait]
impl Step<BuildContext, Error> for RunQemu {
    fn name(&self) -> &'static str {
        "run_qemu"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let missing = |what| Error::Missing { what };
        let cfg = &ctx.config;
        let disk_path = ctx.disk_path.clone().ok_or(missing("disk_path"))?;

        let resolution = accel::resolve(cfg.accelerator);
        if let Some(reason) = &resolution.fallback_reason {
            ctx.core.ui.warn(format!(
                "KVM is not usable ({reason}); falling back to TCG software emulation, \
                 which is much slower"
            ));
        }
        ctx.accel = Some(resolution.accel);

        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ssh_host_port = match (&cfg.communicator, &cfg.ssh) {
            (CommunicatorKind::Ssh, Some(ssh)) => Some(
                args::find_free_port(localhost, ssh.host_port_min, ssh.host_port_max).map_err(
                    |source| Error::FindPort {
                        what: "SSH forwarding",
                        source,
                    },
                )?,
            ),
            _ => None,
        };
        let vnc_ip: IpAddr = cfg.vnc_bind_address.parse().unwrap_or(localhost);
        let vnc_port =
            args::find_free_port(vnc_ip, cfg.vnc_port_min, cfg.vnc_port_max).map_err(|source| {
                Error::FindPort {
                    what: "VNC",
                    source,
                }
            })?;

        // Unix socket paths are limited to 108 bytes, so the socket lives in a short temp dir
        // rather than in the (possibly deep) output directory.
        let socket_dir = tempfile::Builder::new()
            .prefix("kiln-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let qmp_socket = socket_dir.path().join("qmp.sock");
        let socket_dir_path = socket_dir.path().to_owned();
        self.socket_dir = Some(socket_dir);

        // Guest-paced typing follows the guest's keyboard reads through a QEMU trace file.
        let types_paced = cfg.boot_key_interval.is_none()
            && (cfg.boot_command.iter().any(|c| !c.is_empty()) || !cfg.boot_steps.is_empty());
        let key_trace = if types_paced && feedback::qemu_can_trace_reads(&cfg.qemu_binary).await {
            Some(socket_dir_path.join("keyboard-reads.trace"))
        } else {
            None
        };
        let efi = if cfg.efi_boot {
            let (code, vars) = firmware::resolve(
                cfg.efi_firmware_code.as_deref(),
                cfg.efi_firmware_vars.as_deref(),
                std::path::Path::exists,
            )
            .map_err(Error::Firmware)?;
            let copy = cfg.output_directory.join("efivars.fd");
            firmware::copy_vars(&vars, &copy).map_err(Error::Firmware)?;
            ctx.core.ui.message(format!(
                "UEFI firmware `{}`, variables copied from `{}`",
                code.display(),
                vars.display()
            ));
            Some((code, copy))
        } else {
            None
        };
        let serial_log = cfg.output_directory.join("serial.log");
        let params = RunParams {
            disk_path,
            additional_disks: ctx.additional_disk_paths.clone(),
            iso_path: ctx.iso_path.clone().filter(|_| !cfg.disk_image),
            cd_path: ctx.cd_path.clone(),
            accel: resolution.accel,
            vnc_port,
            qmp_socket: qmp_socket.clone(),
            ssh_host_port,
            serial_log: serial_log.clone(),
            key_trace: key_trace.clone(),
            efi,
        };
        // qemuargs may name the HTTP server and the VM: render them before merging.
        let vars = super::boot_command::boot_vars(ctx);
        let mut rendered = cfg.clone();
        for part in rendered.qemuargs.iter_mut().flatten() {
            *part = crate::bootcmd::render(part, &vars).map_err(Error::QemuArgs)?;
        }
        let argv = args::qemu_args(&rendered, &params);
        tracing::info!(binary = %cfg.qemu_binary, args = ?argv, "starting QEMU");
        ctx.core.ui.say(format!(
            "Starting VM, booting {} ({} acceleration)",
            if cfg.disk_image {
                "disk image"
            } else {
                "from CD-ROM"
            },
            resolution.accel.as_machine_accel().unwrap_or("default")
        ));
        let stderr_log = cfg.output_directory.join("qemu-stderr.log");
        let qemu =
            QemuProcess::spawn(&cfg.qemu_binary, &argv, &stderr_log).map_err(Error::StartQemu)?;
        ctx.core.ui.message(format!(
            "To watch the VM, connect with VNC to {}:{vnc_port}; serial console log: `{}`",
            cfg.vnc_bind_address,
            serial_log.display()
        ));
        ctx.serial_log = Some(serial_log);
        ctx.key_trace = key_trace;
        ctx.vnc_addr = Some(std::net::SocketAddr::new(vnc_ip, vnc_port));
        ctx.ssh_host_port = ssh_host_port;
        let qemu = ctx.qemu.insert(qemu);

        let qmp = tokio::select! {
            r = Qmp::connect(&qmp_socket, QMP_CONNECT_TIMEOUT) => r.map_err(Error::ConnectQmp)?,
            reason = qemu.died() => return Err(Error::QemuExited { during: "start-up", reason }),
        };
        ctx.qmp = Some(qmp);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        ctx.qmp = None;
        ctx.key_trace = None;
        ctx.vnc_addr = None;
        if let Some(mut qemu) = ctx.qemu.take() {
            if qemu.exited().is_none() {
                ctx.core.ui.say("Stopping QEMU");
            }
            if let Err(e) = qemu.kill().await {
                ctx.core.ui.error(format!("Could not kill QEMU: {e}"));
            }
        }
        self.socket_dir = None;
    }
}
