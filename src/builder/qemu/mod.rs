//! The `qemu` builder: from an installer ISO to a provisioned, compacted disk.
//!
//! A build is the literal list of steps in [`steps`]; read it as the builder's architecture.
//! Every step documents what it uses from [`BuildContext`] (its [`Core`] included) and what it
//! produces there; whatever it acquires it releases in its cleanup (see [`crate::step`]).

pub mod accel;
pub mod args;
pub mod config;
pub mod firmware;
pub mod install;
pub mod monitor;
pub mod process;
pub mod qmp;
pub mod space;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Core, HasCore, Provision, Settings};
use crate::artifact::{Artifact, Disk};
use crate::communicator::ssh;
use crate::provisioner::BuildEnv;
use crate::step::{self, Step, Timings};
use config::Config;
use russh::keys::PrivateKey;

/// Everything the steps share. Inputs are set before the run; outputs start empty and are
/// filled by the step named on each field.
pub struct BuildContext {
    // Inputs.
    pub config: Config,
    /// What every builder has: ui, cancel, provisioners, run id, and the communicator session
    /// (`wait_ssh` connects it).
    pub core: Core,
    /// `-force`: replace an existing output directory.
    pub force: bool,
    /// Where downloaded ISOs are cached.
    pub cache_dir: PathBuf,

    // Outputs.
    /// Local path of the verified ISO (`download_iso`).
    pub iso_path: Option<PathBuf>,
    /// The extra CD of `cd_files` / `cd_content` (`create_cd`).
    pub cd_path: Option<PathBuf>,
    /// The control socket of the build's software TPM (`start_tpm`, with `vtpm`).
    pub tpm_socket: Option<PathBuf>,
    /// The floppy of `floppy_files` / `floppy_dirs` / `floppy_content` (`create_floppy`).
    pub floppy_path: Option<PathBuf>,
    /// The main disk in the output directory (`create_disk`).
    pub disk_path: Option<PathBuf>,
    /// The `disk_additional_size` disks, in order (`create_disk`).
    pub additional_disk_paths: Vec<PathBuf>,
    /// Port of the HTTP server, 0 when none runs (`http_server`).
    pub http_port: u16,
    /// The address the guest reaches the HTTP server at (`{{ .HTTPIP }}`): 10.0.2.2, QEMU's
    /// gateway to the host's loopback, unless the server listens on one address of the host
    /// (`http_bind_address`, `http_interface`) (`http_server`).
    pub http_ip: String,
    /// The accelerator QEMU runs with (`run_qemu`).
    pub accel: Option<accel::ResolvedAccel>,
    /// Host port forwarded to the guest's SSH port (`run_qemu`).
    pub ssh_host_port: Option<u16>,
    /// The guest's address on `net_bridge`, found in the host's neighbour table
    /// (`wait_guest_address`); kiln connects there unless `ssh_host` is set.
    pub guest_address: Option<String>,
    /// The running QEMU (`run_qemu`); killed by its cleanup, and by its guard on drop.
    pub qemu: Option<process::QemuProcess>,
    /// QMP connection to that QEMU (`run_qemu`), shared with the event watcher.
    pub qmp: Option<Arc<qmp::Qmp>>,
    /// The QMP event watcher's state: steps set its phase, it records a guest fault
    /// (`run_qemu` starts it).
    pub monitor: monitor::Monitor,
    /// The guest's serial console log (`run_qemu`).
    pub serial_log: Option<PathBuf>,
    /// QEMU's trace of the guest's keyboard reads, for guest-paced typing (`run_qemu`).
    pub key_trace: Option<PathBuf>,
    /// The address of QEMU's VNC server (`run_qemu`).
    pub vnc_addr: Option<std::net::SocketAddr>,
    /// The build's temporary SSH key pair and its public key (`ssh-ed25519 …`), made when the
    /// template gives neither `ssh_password` nor `ssh_private_key_file` (as Packer does).
    pub ssh_temp_key: Option<(Arc<PrivateKey>, String)>,
    /// The install cache layer this build resumes (`install_cache`, on a hit); held against
    /// removal until the build ends.
    pub install_layer: Option<crate::install_cache::Layer>,
    /// The install cache key to keep the installed system under (`install_cache`, on a miss);
    /// `save_install` takes it.
    pub install_key: Option<String>,
}

impl BuildContext {
    pub fn new(mut config: Config, core: Core, settings: &Settings) -> Self {
        config.install_cache |= settings.install_cache;
        let ssh_temp_key = config
            .ssh
            .as_ref()
            .filter(|s| {
                s.password.is_none() && s.private_key_file.is_none() && !s.options.agent_auth
            })
            .map(|s| {
                // The template's kind and size were checked when it was read.
                ssh::make_key_pair(&s.options.temporary_key_pair).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "using an ed25519 temporary key pair instead");
                    ssh::temporary_key_pair()
                })
            });
        Self {
            ssh_temp_key,
            config,
            core,
            force: settings.force,
            cache_dir: settings.cache_dir.clone(),
            iso_path: None,
            cd_path: None,
            floppy_path: None,
            tpm_socket: None,
            disk_path: None,
            additional_disk_paths: Vec::new(),
            http_port: 0,
            http_ip: steps::boot_command::HTTP_IP.to_owned(),
            accel: None,
            ssh_host_port: None,
            guest_address: None,
            qemu: None,
            qmp: None,
            monitor: monitor::Monitor::default(),
            serial_log: None,
            key_trace: None,
            vnc_addr: None,
            install_layer: None,
            install_key: None,
        }
    }
}

impl HasCore for BuildContext {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Packer's view plus the build's HTTP server and temporary key pair.
    fn build_env(&self) -> BuildEnv {
        super::provision::build_env(
            &self.core,
            (self.http_port != 0).then_some((self.http_ip.as_str(), self.http_port)),
            self.ssh_temp_key
                .as_ref()
                .map(|(private, public)| (&**private, public.as_str())),
        )
    }
}

/// The steps of a qemu build, in order. This list is the builder.
pub fn steps() -> Vec<Box<dyn Step<BuildContext, Error>>> {
    vec![
        Box::new(steps::download_iso::DownloadIso),
        Box::new(steps::output_dir::PrepareOutputDir::default()),
        Box::new(steps::start_tpm::StartTpm::default()),
        Box::new(steps::create_floppy::CreateFloppy::default()),
        Box::new(steps::create_cd::CreateCd::default()),
        Box::new(steps::install_cache::FindInstall),
        Box::new(steps::create_disk::CreateDisk),
        Box::new(steps::copy_disk::CopyDisk),
        Box::new(steps::resize_disk::ResizeDisk),
        Box::new(steps::check_space::CheckSpace),
        Box::new(steps::http_server::StartHttpServer::default()),
        Box::new(steps::run_qemu::RunQemu::default()),
        Box::new(steps::debug_access::DebugAccess::default()),
        Box::new(steps::boot_command::TypeBootCommand),
        Box::new(steps::wait_guest_address::WaitGuestAddress),
        Box::new(steps::wait_ssh::WaitSsh),
        Box::new(steps::save_install::SaveInstall),
        Box::new(Provision),
        Box::new(steps::shutdown::Shutdown),
        Box::new(steps::compact_disk::CompactDisk),
    ]
}

/// Packer's id of the qemu builder.
pub const BUILDER_ID: &str = "transcend.qemu";

/// How long a failed build waits for the QMP event watcher to tell whether a fault explains it.
const FAULT_SETTLE: Duration = Duration::from_secs(2);

/// Runs the qemu build for `config` and returns the disk it produced.
///
/// The steps run under a child of the caller's cancellation token: the QMP event watcher
/// ([`monitor`]) cancels it when the guest cannot go on, and the build then fails with that
/// [`monitor::Fault`] rather than as cancelled (a Ctrl-C still cancels the whole build).
pub async fn build(
    ctx: &mut BuildContext,
    mode: step::Mode,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let user_cancel = ctx.core.cancel.clone();
    ctx.core.cancel = user_cancel.child_token();
    let cancel = ctx.core.cancel.clone();
    let mut steps = steps();
    let result = step::run(&mut steps, ctx, &cancel, mode, timings).await;
    ctx.core.cancel = user_cancel.clone();
    if let Err(e) = &result
        && !user_cancel.is_cancelled()
        && let Some(fault) = match ctx.qemu.as_mut().map(|q| q.exited()) {
            // Still running (`-on-error=abort`): the watcher has said all it will say.
            Some(None) => ctx.monitor.fault(),
            _ => ctx.monitor.settle(FAULT_SETTLE).await,
        }
    {
        return Err(step::Error::Failed {
            step: e.step(),
            source: Error::GuestFault(fault),
        });
    }
    result?;
    artifact(ctx).await.map_err(|source| step::Error::Failed {
        step: "artifact",
        source,
    })
}

/// The disk the steps left, as the post-processors see it.
async fn artifact(ctx: &BuildContext) -> Result<Artifact, Error> {
    let disk_path = ctx
        .disk_path
        .clone()
        .ok_or(Error::Missing { what: "disk_path" })?;
    let accel = ctx.accel.ok_or(Error::Missing {
        what: "accelerator",
    })?;
    let info = crate::qemu_img::info(&disk_path)
        .await
        .map_err(Error::InspectDisk)?;
    Ok(Artifact {
        builder_type: "qemu",
        builder_id: BUILDER_ID,
        id: "VM".into(),
        files: artifact_files(&ctx.config, &disk_path),
        disk: Some(Disk {
            path: disk_path,
            format: info.format,
            virtual_size: info.virtual_size,
            architecture: default_architecture(&ctx.config.qemu_binary).to_owned(),
            accelerated: accel == accel::ResolvedAccel::Kvm,
        }),
        image: None,
    })
}

/// The artifact's files: the disk, then (with `efi_boot`, unless `efi_drop_efivars`) the
/// build's UEFI variable store, as Packer lists it.
fn artifact_files(cfg: &Config, disk: &std::path::Path) -> Vec<PathBuf> {
    let mut files = vec![disk.to_owned()];
    if cfg.efi_boot && !cfg.efi_drop_efivars {
        files.push(cfg.output_directory.join("efivars.fd"));
    }
    files
}

/// The Vagrant architecture name of the guest a `qemu-system-*` binary emulates (`amd64` for
/// anything unrecognised, as for x86_64).
pub fn default_architecture(qemu_binary: &str) -> &'static str {
    let base = qemu_binary.rsplit('/').next().unwrap_or(qemu_binary);
    match base.strip_prefix("qemu-system-").unwrap_or(base) {
        "aarch64" => "arm64",
        "i386" => "i386",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "ppc64" | "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        _ => "amd64",
    }
}

/// The hint for a qemu build error, if kiln has one.
pub(super) fn hint(e: &Error) -> Option<String> {
    match e {
        Error::OutputDirExists { .. } => Some(
            "pass `-force` to replace it (also when a killed kiln left it half-written), or \
             remove it yourself"
                .into(),
        ),
        Error::WaitSsh(e) => ssh_hint(e),
        Error::GuestFault(f) => Some(fault_hint(f).into()),
        _ => None,
    }
}

/// Why SSH never came up, as far as kiln can tell: the credentials hint only when the guest's
/// SSH server answered and refused them.
fn ssh_hint(e: &ssh::Error) -> Option<String> {
    let refused = |e: &ssh::Error| matches!(e, ssh::Error::AuthenticationFailed { .. });
    match e {
        e if refused(e) => Some(CREDENTIALS.into()),
        ssh::Error::Timeout {
            last: Some(last), ..
        } if refused(last) => Some(CREDENTIALS.into()),
        ssh::Error::Timeout { .. } => Some(
            "the guest never accepted an SSH login on its forwarded port: see its last serial \
             lines and the screenshot above. The installer may wait for input (check \
             `boot_command` and `boot_wait`) or still be running (raise `ssh_timeout`); rerun \
             with `-on-error=abort` to keep the VM and the output directory"
                .into(),
        ),
        ssh::Error::Aborted { .. } => Some(
            "QEMU exited while kiln waited for SSH: its reason is above, its whole output in \
             `qemu-stderr.log` (rerun with `-on-error=abort` to keep the output directory)"
                .into(),
        ),
        _ => None,
    }
}

const CREDENTIALS: &str = "the guest's SSH server answered but refused the login: check that \
    `ssh_username` and `ssh_password` (or `ssh_private_key_file`) match the user the answer file \
    creates";

/// What to do about a guest fault.
fn fault_hint(f: &monitor::Fault) -> &'static str {
    use monitor::Fault;
    match f {
        Fault::DiskFull { .. } => {
            "free space on that filesystem, or point `output_directory` at a larger one: the \
             disk may grow to `disk_size`, and compaction and the post-processors need room \
             for a copy each (kiln warns before starting QEMU when the build may not fit)"
        }
        Fault::IoError { .. } => {
            "the host could not write the disk image: check the host's disk and its kernel log \
             (`dmesg`)"
        }
        Fault::Panicked { .. } => {
            "the guest's kernel crashed; its last serial lines are above. Common causes: a \
             wrong kernel command line in `boot_command`, too little `memory`, or a `cpu_model` \
             the kernel does not support"
        }
        Fault::InternalError => {
            "QEMU could not run the guest's code: try another `cpu_model` or `accelerator`"
        }
        Fault::BootLoop { .. } => {
            "the guest restarts before it comes up: its bootloader or kernel fails at once. See \
             the screenshot and serial lines above (or watch over VNC); check `cpu_model`, \
             `memory`, `efi_boot` and what the installer wrote to the disk"
        }
        Fault::PoweredOff => {
            "the installer powered the guest off instead of rebooting into the installed \
             system: make the answer file reboot at the end (Debian's preseed: `d-i \
             debian-installer/exit/poweroff boolean false`), or set `communicator = \"none\"` \
             when powering off is how the build ends"
        }
    }
}

/// Why a qemu build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ISO could not be fetched or verified.
    #[error("Could not get the ISO")]
    DownloadIso(#[source] crate::download::Error),
    /// The output directory exists and `-force` was not given.
    #[error("Output directory `{}` already exists", path.display())]
    OutputDirExists { path: PathBuf },
    /// The output directory could not be created or replaced.
    #[error("Could not prepare output directory `{}`", path.display())]
    PrepareOutputDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `cd_files` / `cd_content` CD could not be made.
    #[error("Could not create the CD")]
    CreateCd(#[source] crate::cd::Error),
    /// `swtpm` (for `vtpm`) could not be started.
    #[error("Could not start the software TPM")]
    StartTpm(#[source] process::Error),
    /// `swtpm` did not open its control socket.
    #[error("The software TPM did not open `{}`: {reason}", socket.display())]
    TpmNotReady { socket: PathBuf, reason: String },
    /// The `floppy_files` / `floppy_dirs` / `floppy_content` floppy could not be made.
    #[error("Could not create the floppy")]
    CreateFloppy(#[source] crate::floppy::Error),
    /// `qemu-img create`, `convert` or `resize` failed on a build disk.
    #[error("Could not create the disk")]
    CreateDisk(#[source] crate::qemu_img::Error),
    /// `http_interface` has no IPv4 address to listen on.
    #[error("Could not find an IPv4 address of `http_interface` `{interface}`")]
    HttpInterface {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server for `http_directory` could not start.
    #[error("Could not start the HTTP server")]
    StartHttpServer(#[source] crate::http_server::Error),
    /// No free port for SSH forwarding or VNC.
    #[error("Could not find a free port for {what}")]
    FindPort {
        what: &'static str,
        #[source]
        source: args::Error,
    },
    /// A temporary directory for the QMP socket could not be made.
    #[error("Could not create a temporary directory")]
    TempDir(#[source] std::io::Error),
    /// The UEFI firmware for `efi_boot` could not be found or prepared.
    #[error("Could not prepare the UEFI firmware")]
    Firmware(#[source] firmware::Error),
    /// A `qemuargs` value could not be rendered.
    #[error("Could not render `qemuargs`")]
    QemuArgs(#[source] crate::render::Error),
    /// `-debug`: the temporary private key could not be written for the `ssh` command.
    #[error("Could not write the debug key `{}`", path.display())]
    WriteDebugKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// QEMU could not be started.
    #[error("Could not start QEMU")]
    StartQemu(#[source] process::Error),
    /// `ssh_host` names no address the SSH forward could listen on.
    #[error("Could not resolve `ssh_host` `{host}`")]
    ResolveSshHost {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// QEMU did not take the VNC password (`vnc_use_password`).
    #[error("Could not set the VNC password")]
    VncPassword(#[source] qmp::Error),
    /// QEMU's QMP socket did not answer.
    #[error("Could not connect to QEMU's QMP socket")]
    ConnectQmp(#[source] qmp::Error),
    /// QEMU exited while kiln still needed it.
    #[error("QEMU exited during {during}: {reason}")]
    QemuExited {
        during: &'static str,
        reason: String,
    },
    /// The boot command could not be rendered, parsed or typed.
    #[error("Could not type the boot command")]
    BootCommand(#[source] crate::bootcmd::Error),
    /// The guest on `net_bridge` never showed up in the host's neighbour table.
    #[error("Could not find the guest's address on bridge `{bridge}`")]
    GuestAddress {
        bridge: String,
        #[source]
        source: steps::wait_guest_address::AddressError,
    },
    /// SSH never became available.
    #[error("Could not connect to the guest over SSH")]
    WaitSsh(#[source] crate::communicator::ssh::Error),
    /// The guest cannot go on: a full disk, a panic, a boot loop… (see [`monitor`]).
    #[error("The guest stopped making progress")]
    GuestFault(#[source] monitor::Fault),
    /// A provisioner failed.
    #[error("Provisioning failed")]
    Provision(#[from] crate::provisioner::Failed),
    /// The guest did not power off in time after `shutdown_command`.
    #[error("Timeout while waiting for the machine to shut down ({}s)", timeout.as_secs())]
    ShutdownTimeout { timeout: std::time::Duration },
    /// QEMU could not be stopped.
    #[error("Could not stop QEMU")]
    StopQemu(#[source] process::Error),
    /// `qemu-img convert` failed.
    #[error("Could not compact the disk")]
    CompactDisk(#[source] crate::qemu_img::Error),
    /// The inputs of the install cache key could not be read.
    #[error("Could not read the inputs of the install cache key")]
    InstallInputs(#[source] std::io::Error),
    /// The install cache could not be read or written.
    #[error("Could not use the install cache")]
    InstallCache(#[source] crate::install_cache::Error),
    /// The SSH key kept with an install cache layer could not be loaded.
    #[error("Could not load the SSH key of the install cache layer")]
    InstallKey(#[source] crate::communicator::ssh::Error),
    /// The guest could not be resumed from an install cache layer.
    #[error("Could not resume the installed system from the install cache")]
    ResumeInstall(#[source] qmp::Error),
    /// `qemu-img info` failed on the built disk.
    #[error("Could not inspect the built disk")]
    InspectDisk(#[source] crate::qemu_img::Error),
    /// A step ran without what an earlier step should have produced (a bug in the step list).
    #[error("Internal error: `{what}` was not produced by an earlier step")]
    Missing { what: &'static str },
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor::Fault;

    fn hint_of(e: Error) -> String {
        hint(&e).unwrap_or_default()
    }

    fn timeout(last: Option<ssh::Error>) -> Error {
        Error::WaitSsh(ssh::Error::Timeout {
            addr: "127.0.0.1:2222".into(),
            waited: Duration::from_secs(600),
            last: last.map(Box::new),
        })
    }

    /// Issue 20: the credentials hint only when the guest's SSH server answered and refused.
    #[test]
    fn ssh_hints_follow_what_happened() {
        let refused = || ssh::Error::AuthenticationFailed {
            user: "root".into(),
        };
        assert!(hint_of(timeout(Some(refused()))).contains("refused the login"));
        assert!(hint_of(Error::WaitSsh(refused())).contains("ssh_password"));
        let never = timeout(Some(ssh::Error::ConnectTimeout {
            addr: "127.0.0.1:2222".into(),
            limit: Duration::from_secs(10),
        }));
        let h = hint_of(never);
        assert!(h.contains("never accepted an SSH login"), "{h}");
        assert!(!h.contains("ssh_password"), "{h}");
        assert!(!hint_of(timeout(None)).contains("ssh_password"));
        let gone = Error::WaitSsh(ssh::Error::Aborted {
            reason: "exit status 1".into(),
        });
        assert!(hint_of(gone).contains("QEMU exited"));
    }

    #[test]
    fn every_fault_has_its_own_hint() {
        let faults = [
            Fault::DiskFull {
                device: "virtio0".into(),
                file: None,
                free: None,
            },
            Fault::IoError {
                device: "virtio0".into(),
                file: None,
                reason: "Input/output error".into(),
            },
            Fault::Panicked {
                action: "poweroff".into(),
            },
            Fault::InternalError,
            Fault::BootLoop {
                resets: 10,
                within: Duration::from_secs(2),
            },
            Fault::PoweredOff,
        ];
        let hints: std::collections::BTreeSet<String> = faults
            .into_iter()
            .map(|f| hint_of(Error::GuestFault(f)))
            .collect();
        assert_eq!(hints.len(), 6, "{hints:#?}");
        assert!(
            hints
                .iter()
                .all(|h| !h.is_empty() && !h.contains("ssh_password"))
        );
    }

    /// Issue 14: `efivars.fd` is an artifact file unless `efi_drop_efivars`.
    #[test]
    fn efivars_in_the_artifact_unless_dropped() {
        let base = Config::with_defaults("t", ".".into(), "x".into(), crate::types::Checksum::None);
        let disk = std::path::Path::new("output-t/packer-t");
        let efi = Config {
            efi_boot: true,
            ..base.clone()
        };
        let dropped = Config {
            efi_drop_efivars: true,
            ..efi.clone()
        };
        let rows: [(&Config, &[&str]); 3] = [
            (&base, &["output-t/packer-t"]),
            (&efi, &["output-t/packer-t", "output-t/efivars.fd"]),
            (&dropped, &["output-t/packer-t"]),
        ];
        for (cfg, want) in rows {
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(artifact_files(cfg, disk), want);
        }
    }

    #[test]
    fn architecture_follows_the_qemu_binary() {
        let table = [
            ("qemu-system-x86_64", "amd64"),
            ("/usr/bin/qemu-system-aarch64", "arm64"),
            ("qemu-system-i386", "i386"),
            ("qemu-system-riscv64", "riscv64"),
            ("/opt/qemu/bin/qemu-kvm", "amd64"),
        ];
        for (binary, want) in table {
            assert_eq!(default_architecture(binary), want, "{binary}");
        }
    }
}
