//! The `qemu` builder: from an installer ISO to a provisioned, compacted disk.
//!
//! A build is the literal list of steps in [`steps`]; read it as the builder's architecture.
//! Every step documents what it uses from [`BuildContext`] (its [`Core`] included) and what it
//! produces there; whatever it acquires it releases in its cleanup (see [`crate::step`]).

pub mod accel;
pub mod args;
pub mod config;
pub mod firmware;
pub mod process;
pub mod qmp;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;

use super::{Core, HasCore, Provision, Settings};
use crate::artifact::{Artifact, Disk};
use crate::provisioner::BuildEnv;
use crate::step::{self, OnError, Step, Timings};
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
    /// The main disk in the output directory (`create_disk`).
    pub disk_path: Option<PathBuf>,
    /// The `disk_additional_size` disks, in order (`create_disk`).
    pub additional_disk_paths: Vec<PathBuf>,
    /// Port of the HTTP server, 0 when none runs (`http_server`).
    pub http_port: u16,
    /// The accelerator QEMU runs with (`run_qemu`).
    pub accel: Option<accel::ResolvedAccel>,
    /// Host port forwarded to the guest's SSH port (`run_qemu`).
    pub ssh_host_port: Option<u16>,
    /// The running QEMU (`run_qemu`); killed by its cleanup, and by its guard on drop.
    pub qemu: Option<process::QemuProcess>,
    /// QMP connection to that QEMU (`run_qemu`).
    pub qmp: Option<qmp::Qmp>,
    /// The guest's serial console log (`run_qemu`).
    pub serial_log: Option<PathBuf>,
    /// QEMU's trace of the guest's keyboard reads, for guest-paced typing (`run_qemu`).
    pub key_trace: Option<PathBuf>,
    /// The address of QEMU's VNC server (`run_qemu`).
    pub vnc_addr: Option<std::net::SocketAddr>,
    /// The build's temporary SSH key pair and its public key (`ssh-ed25519 …`), made when the
    /// template gives neither `ssh_password` nor `ssh_private_key_file` (as Packer does).
    pub ssh_temp_key: Option<(Arc<PrivateKey>, String)>,
}

impl BuildContext {
    pub fn new(config: Config, core: Core, settings: &Settings) -> Self {
        let ssh_temp_key = config
            .ssh
            .as_ref()
            .filter(|s| s.password.is_none() && s.private_key_file.is_none())
            .map(|_| crate::communicator::ssh::temporary_key_pair());
        Self {
            ssh_temp_key,
            config,
            core,
            force: settings.force,
            cache_dir: settings.cache_dir.clone(),
            iso_path: None,
            cd_path: None,
            disk_path: None,
            additional_disk_paths: Vec::new(),
            http_port: 0,
            accel: None,
            ssh_host_port: None,
            qemu: None,
            qmp: None,
            serial_log: None,
            key_trace: None,
            vnc_addr: None,
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
            (self.http_port != 0).then_some((steps::boot_command::HTTP_IP, self.http_port)),
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
        Box::new(steps::create_cd::CreateCd::default()),
        Box::new(steps::create_disk::CreateDisk),
        Box::new(steps::copy_disk::CopyDisk),
        Box::new(steps::resize_disk::ResizeDisk),
        Box::new(steps::http_server::StartHttpServer::default()),
        Box::new(steps::run_qemu::RunQemu::default()),
        Box::new(steps::boot_command::TypeBootCommand),
        Box::new(steps::wait_ssh::WaitSsh),
        Box::new(Provision),
        Box::new(steps::shutdown::Shutdown),
        Box::new(steps::compact_disk::CompactDisk),
    ]
}

/// Packer's id of the qemu builder.
pub const BUILDER_ID: &str = "transcend.qemu";

/// Runs the qemu build for `config` and returns the disk it produced.
pub async fn build(
    ctx: &mut BuildContext,
    on_error: OnError,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let cancel = ctx.core.cancel.clone();
    let mut steps = steps();
    step::run(&mut steps, ctx, &cancel, on_error, timings).await?;
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
        files: vec![disk_path.clone()],
        disk: Some(Disk {
            path: disk_path,
            format: info.format,
            virtual_size: info.virtual_size,
            architecture: default_architecture(&ctx.config.qemu_binary).to_owned(),
            accelerated: accel == accel::ResolvedAccel::Kvm,
        }),
    })
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
        Error::OutputDirExists { .. } => {
            Some("pass `-force` to replace it, or remove it yourself".into())
        }
        Error::WaitSsh(_) => Some(
            "check the guest's serial console log in the output directory (rerun with \
             `-on-error=abort` to keep it and the VM), and that ssh_username/ssh_password \
             match what the answer file creates"
                .into(),
        ),
        _ => None,
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
    /// `qemu-img create`, `convert` or `resize` failed on a build disk.
    #[error("Could not create the disk")]
    CreateDisk(#[source] crate::qemu_img::Error),
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
    QemuArgs(#[source] crate::bootcmd::Error),
    /// QEMU could not be started.
    #[error("Could not start QEMU")]
    StartQemu(#[source] process::Error),
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
    /// SSH never became available.
    #[error("Could not connect to the guest over SSH")]
    WaitSsh(#[source] crate::communicator::ssh::Error),
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
