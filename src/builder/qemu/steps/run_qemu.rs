//! Step: start QEMU and connect to its QMP socket.
//!
//! Uses: `config` (machine options), `disk_path`, `additional_disk_paths`, `iso_path` (not
//! attached with `disk_image`: it is the disk), `cd_path`, `install_layer`. With `efi_boot` it copies the OVMF
//! variable store to `<output_directory>/efivars.fd` (removed with the output directory).
//! Resuming an install cache layer (`install_layer`), QEMU starts with `-incoming defer`, the
//! UEFI variables come from the layer, and the guest's RAM state is loaded before this step
//! ends: the guest then runs on from the moment it was kept.
//! With `vnc_use_password` it sets the VNC password over QMP; with `qmp_enable` QEMU also opens
//! the user's QMP socket; the SSH forward listens on `ssh_host`'s address (none with
//! `skip_nat_mapping`).
//! Produces: `accel`, `ssh_host_port`, `qemu`, `qmp`, `serial_log`, `key_trace`, `vnc_addr`,
//! and starts the QMP event watcher ([`monitor`]) that records a guest fault in `monitor` and
//! cancels `cancel`.
//! The SSH and VNC ports are probed free and may be taken by another build before QEMU binds
//! them: QEMU then exits at once, and is started again on other ports (up to
//! [`PORT_ATTEMPTS`] times).
//! Cleanup: closes QMP, kills QEMU if it still runs, lets the watcher finish, removes the
//! socket's temp directory and the user's QMP socket. QEMU also dies with kiln (parent-death signal) and when its guard
//! drops.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::bootcmd::feedback;
use crate::builder::qemu::args::{self, RunParams};
use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::process::QemuProcess;
use crate::builder::qemu::qmp::Qmp;
use crate::builder::qemu::{BuildContext, Error};
use crate::builder::qemu::{accel, firmware, monitor};
use crate::step::{Outcome, Step};
use crate::types::Secret;

/// How long QEMU gets to open its QMP socket.
const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times QEMU is started when the ports it was given were taken meanwhile.
const PORT_ATTEMPTS: u32 = 10;
/// How long a broken QMP connection waits for QEMU's exit, which explains it.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Lines of QEMU's stderr searched for a port clash.
const STDERR_LINES: usize = 20;
/// How long the cleanup waits for the event watcher once QEMU is gone.
const WATCHER_DRAIN: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct RunQemu {
    socket_dir: Option<tempfile::TempDir>,
    /// The SSH forward and VNC ports, kept from other builds of this kiln until cleanup.
    ports: Vec<args::PortLease>,
    /// The QMP event watcher ([`monitor::spawn`]).
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// The user's QMP socket (`qmp_enable`), removed in cleanup.
    user_qmp_socket: Option<std::path::PathBuf>,
}

/// The address `ssh_host` names, for the SSH forward to listen on.
async fn forward_ip(host: &str) -> Result<IpAddr, Error> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    let resolve = |source| Error::ResolveSshHost {
        host: host.to_owned(),
        source,
    };
    let mut addrs = tokio::net::lookup_host((host, 0)).await.map_err(resolve)?;
    addrs.next().map(|a| a.ip()).ok_or_else(|| {
        resolve(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))
    })
}

/// Gives QEMU's VNC server (started with `password=on`) its password.
async fn set_vnc_password(
    qmp: &Qmp,
    password: &Secret,
) -> Result<(), crate::builder::qemu::qmp::Error> {
    let args = serde_json::json!({ "password": password.expose() });
    qmp.execute("change-vnc-password", Some(args))
        .await
        .map(drop)
}

/// Packer's random VNC password: 8 characters from its alphabet (which lacks `7`).
fn random_vnc_password() -> String {
    const ALPHABET: &[u8] = b"012345689abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..8)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
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
        self.user_qmp_socket = cfg.qmp_socket_path.clone();

        let resolution = accel::resolve(cfg.accelerator);
        if let Some(reason) = &resolution.fallback_reason {
            ctx.core.ui.warn(format!(
                "KVM is not usable ({reason}); falling back to TCG software emulation, \
                 which is much slower"
            ));
        }
        ctx.accel = Some(resolution.accel);

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
        let types_paced = ctx.install_layer.is_none()
            && cfg.boot_key_interval.is_none()
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
            let kept = ctx
                .install_layer
                .as_ref()
                .and_then(|l| l.meta.efivars.as_ref().map(|name| l.file(name)));
            let vars = kept.unwrap_or(vars);
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
        // qemuargs may name the HTTP server, the VM, the output directory and the SSH port:
        // they are rendered once the ports are chosen.
        let boot_vars = super::boot_command::boot_vars(ctx);
        let qemuargs_vars = |ssh_host_port| args::QemuArgsVars {
            http_ip: boot_vars.http_ip.clone(),
            http_port: boot_vars.http_port,
            http_dir: cfg.http_directory.clone(),
            output_dir: cfg.output_directory.clone(),
            name: boot_vars.name.clone(),
            ssh_host_port,
            ssh_public_key: boot_vars.ssh_public_key.clone(),
        };
        if cfg.run_once {
            ctx.core.ui.warn(
                "`run_once` has no effect: Packer's qemu builder never used it, and neither \
                 does kiln",
            );
        }
        ctx.core.ui.say(format!(
            "Starting VM, booting {} ({} acceleration)",
            if ctx.install_layer.is_some() {
                "nothing: resuming the install cache layer"
            } else if cfg.disk_image {
                "disk image"
            } else {
                "from CD-ROM"
            },
            resolution.accel.as_machine_accel().unwrap_or("default")
        ));
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // The SSH forward listens where kiln connects: 127.0.0.1 unless `ssh_host` says.
        let ssh_forward_ip = match &cfg.ssh_host {
            Some(host) if !cfg.skip_nat_mapping && cfg.net_bridge.is_none() => {
                forward_ip(host).await?
            }
            _ => localhost,
        };
        let vnc_ip: IpAddr = cfg.vnc_bind_address.parse().unwrap_or(localhost);
        let stderr_log = cfg.output_directory.join("qemu-stderr.log");
        let mut attempt = 1;
        let (qmp, ssh_host_port, vnc_port) = loop {
            // A port probed free may be taken by another process before QEMU binds it: then
            // QEMU exits at once, and starts again on other ports.
            let ssh_host_port = match (&cfg.communicator, &cfg.ssh) {
                // No forward: kiln connects to `ssh_host`:`ssh_port` as they are.
                (CommunicatorKind::Ssh, Some(_))
                    if cfg.skip_nat_mapping || cfg.net_bridge.is_some() =>
                {
                    None
                }
                (CommunicatorKind::Ssh, Some(ssh)) => {
                    let lease =
                        args::lease_free_port(ssh_forward_ip, ssh.host_port_min, ssh.host_port_max)
                            .map_err(|source| Error::FindPort {
                                what: "SSH forwarding",
                                source,
                            })?;
                    let port = lease.port;
                    self.ports.push(lease);
                    Some(port)
                }
                _ => None,
            };
            let vnc_lease = args::lease_free_port(vnc_ip, cfg.vnc_port_min, cfg.vnc_port_max)
                .map_err(|source| Error::FindPort {
                    what: "VNC",
                    source,
                })?;
            let vnc_port = vnc_lease.port;
            self.ports.push(vnc_lease);
            let mut rendered = cfg.clone();
            rendered.qemuargs = args::render_qemuargs(&cfg.qemuargs, &qemuargs_vars(ssh_host_port))
                .map_err(Error::QemuArgs)?;
            let params = RunParams {
                disk_path: disk_path.clone(),
                additional_disks: ctx.additional_disk_paths.clone(),
                iso_path: ctx.iso_path.clone().filter(|_| !cfg.disk_image),
                cd_path: ctx.cd_path.clone(),
                floppy_path: ctx.floppy_path.clone(),
                tpm_socket: ctx.tpm_socket.clone(),
                accel: resolution.accel,
                vnc_port,
                qmp_socket: qmp_socket.clone(),
                ssh_host_port,
                ssh_forward_ip,
                serial_log: serial_log.clone(),
                key_trace: key_trace.clone(),
                efi: efi.clone(),
            };
            let mut argv = args::qemu_args(&rendered, &params);
            if ctx.install_layer.is_some() {
                argv.extend(["-incoming".to_owned(), "defer".to_owned()]);
            }
            tracing::info!(binary = %cfg.qemu_binary, args = ?argv, "starting QEMU");
            let qemu = QemuProcess::spawn(&cfg.qemu_binary, &argv, &stderr_log)
                .map_err(Error::StartQemu)?;
            let qemu = ctx.qemu.insert(qemu);
            let reason = tokio::select! {
                r = Qmp::connect(&qmp_socket, QMP_CONNECT_TIMEOUT) => match r {
                    Ok(qmp) => break (qmp, ssh_host_port, vnc_port),
                    // QEMU opens its QMP socket before it binds VNC: the connection breaks
                    // when it then fails and exits.
                    Err(e) => match tokio::time::timeout(EXIT_GRACE, qemu.died()).await {
                        Ok(reason) => reason,
                        Err(_) => return Err(Error::ConnectQmp(e)),
                    },
                },
                reason = qemu.died() => reason,
            };
            match args::port_clash(&qemu.stderr_tail(STDERR_LINES)) {
                Some(what) if attempt < PORT_ATTEMPTS => {
                    ctx.core.ui.message(format!(
                        "The {what} port was taken before QEMU could bind it (another build?); \
                         starting QEMU again on other ports"
                    ));
                    attempt += 1;
                    self.ports.clear();
                }
                _ => {
                    return Err(Error::QemuExited {
                        during: "start-up",
                        reason,
                    });
                }
            }
        };
        let vnc_password = if cfg.vnc_use_password {
            let (password, made) = match &cfg.vnc_password {
                Some(p) => (p.clone(), false),
                None => (Secret::new(random_vnc_password()), true),
            };
            set_vnc_password(&qmp, &password)
                .await
                .map_err(Error::VncPassword)?;
            // A password the template gives is never shown; the one kiln made is the only way in.
            if made {
                format!(" with the password `{}`", password.expose())
            } else {
                " with `vnc_password`".to_owned()
            }
        } else {
            String::new()
        };
        ctx.core.ui.message(format!(
            "To watch the VM, connect with VNC to {}:{vnc_port}{vnc_password}; serial console \
             log: `{}`",
            cfg.vnc_bind_address,
            serial_log.display()
        ));
        if let Some(socket) = &cfg.qmp_socket_path {
            ctx.core
                .ui
                .message(format!("QMP socket for you at `{}`", socket.display()));
        }
        if let (Some(layer), Some(qemu)) = (&ctx.install_layer, &ctx.qemu) {
            let vmstate = layer.file(&layer.meta.vmstate);
            tokio::select! {
                r = super::super::install::resume(&qmp, &vmstate) => r.map_err(Error::ResumeInstall)?,
                reason = qemu.died() => return Err(Error::QemuExited { during: "resuming the install cache layer", reason }),
            }
            ctx.core
                .ui
                .say("Resumed the installed system from the install cache");
        }
        let qmp = Arc::new(qmp);
        self.watcher = Some(monitor::spawn(
            ctx.monitor.clone(),
            Arc::clone(&qmp),
            monitor::Report {
                ui: ctx.core.ui.clone(),
                serial_log: serial_log.clone(),
                screenshot_prefix: format!("kiln-{}-", cfg.name),
                stop: ctx.core.cancel.clone(),
                poweroff_expected: cfg.communicator == CommunicatorKind::None,
            },
        ));
        ctx.serial_log = Some(serial_log);
        ctx.key_trace = key_trace;
        ctx.vnc_addr = Some(std::net::SocketAddr::new(vnc_ip, vnc_port));
        // With `skip_nat_mapping`, kiln connects to the guest's own port.
        let direct = cfg.skip_nat_mapping || cfg.net_bridge.is_some();
        ctx.ssh_host_port = match (&cfg.ssh, direct) {
            (Some(ssh), true) if cfg.communicator == CommunicatorKind::Ssh => Some(ssh.port),
            _ => ssh_host_port,
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
        // With QEMU gone its event stream ends: let the watcher finish what it saw (a fault
        // that made QEMU exit is recorded now), then stop it.
        if let Some(mut watcher) = self.watcher.take()
            && tokio::time::timeout(WATCHER_DRAIN, &mut watcher)
                .await
                .is_err()
        {
            watcher.abort();
        }
        self.socket_dir = None;
        self.ports.clear();
        // QEMU removes its sockets when it exits, but not when it is killed.
        if let Some(socket) = self.user_qmp_socket.take()
            && let Err(e) = std::fs::remove_file(&socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %socket.display(), error = %e, "could not remove the QMP socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::qemu::qmp::test_qemu;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The security types QEMU's VNC server at `port` offers (RFB 3.8).
    async fn security_types(port: u16) -> Vec<u8> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to VNC");
        let mut version = [0u8; 12];
        s.read_exact(&mut version).await.expect("greeting");
        s.write_all(b"RFB 003.008\n").await.expect("version");
        let n = s.read_u8().await.expect("count");
        let mut types = vec![0u8; usize::from(n)];
        s.read_exact(&mut types).await.expect("types");
        types
    }

    /// Issue 14: `-vnc …,password=on` and a user's QMP socket as `qemu_args` writes them are
    /// accepted by a real QEMU; the password set over QMP makes VNC ask for it (RFB security
    /// type 2), and the user's socket answers QMP commands beside kiln's.
    #[tokio::test]
    async fn issue_14_vnc_password_and_user_qmp_socket_on_real_qemu() {
        let port = args::find_free_port(IpAddr::V4(Ipv4Addr::LOCALHOST), 5900, 6000)
            .expect("a free VNC port");
        let dir = tempfile::tempdir().expect("temp dir");
        let user_socket = dir.path().join("user.monitor");
        let vnc = format!("127.0.0.1:{},password=on", port - 5900);
        let user_qmp = format!("unix:{},server=on,wait=off", user_socket.display());
        let qemu = test_qemu::spawn(&["-S", "-vnc", &vnc, "-qmp", &user_qmp]);
        let qmp = Qmp::connect(&qemu.socket, Duration::from_secs(30))
            .await
            .expect("kiln's QMP socket");
        set_vnc_password(&qmp, &Secret::new("pw7"))
            .await
            .expect("change-vnc-password");
        assert_eq!(security_types(port).await, [2], "VNC authentication only");
        let user = Qmp::connect(&user_socket, Duration::from_secs(10))
            .await
            .expect("the user's QMP socket");
        let status = user
            .execute("query-status", None)
            .await
            .expect("query-status");
        assert_eq!(status["status"], "prelaunch");
    }

    #[test]
    fn random_vnc_password_is_packers_shape() {
        for _ in 0..50 {
            let p = random_vnc_password();
            assert_eq!(p.len(), 8);
            assert!(
                p.chars().all(|c| c.is_ascii_alphanumeric() && c != '7'),
                "{p}"
            );
        }
        assert_ne!(random_vnc_password(), random_vnc_password());
    }
}
