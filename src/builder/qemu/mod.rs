//! The `qemu` builder: from an installer ISO to a provisioned, compacted disk.
//!
//! A build is the literal list of steps in [`steps`]; read it as the builder's architecture.
//! Every step documents what it uses from [`BuildContext`] and what it produces there; whatever
//! it acquires it releases in its cleanup (see [`crate::step`]).

pub mod accel;
pub mod args;
pub mod config;
pub mod firmware;
pub mod monitor;
pub mod process;
pub mod qmp;
pub mod space;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::communicator::ssh::SshCommunicator;
use crate::step::{self, OnError, Step, Timings};
use crate::template::ProvisionerBlock;
use crate::ui::Ui;
use config::Config;
use russh::keys::PrivateKey;

/// Everything the steps share. Inputs are set before the run; outputs start empty and are
/// filled by the step named on each field.
pub struct BuildContext {
    // Inputs.
    pub config: Config,
    pub ui: Ui,
    pub cancel: CancellationToken,
    /// `-force`: replace an existing output directory.
    pub force: bool,
    /// Where downloaded ISOs are cached.
    pub cache_dir: PathBuf,
    /// The build's provisioners, in order.
    pub provisioners: Vec<ProvisionerBlock>,
    /// The build's `error-cleanup-provisioner`.
    pub error_cleanup: Option<ProvisionerBlock>,
    /// What the post-processors will write from the disk (boxes, archives), for the space
    /// check; empty unless the caller sets it.
    pub post_outputs: Vec<PathBuf>,

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
    /// The connected communicator (`wait_ssh`; `provision` may replace it after a reboot).
    pub comm: Option<SshCommunicator>,
    /// Where and as whom SSH connects (`wait_ssh`), for reconnecting.
    pub ssh_target: Option<crate::communicator::ssh::SshTarget>,
    /// The build's temporary SSH key pair and its public key (`ssh-ed25519 …`), made when the
    /// template gives neither `ssh_password` nor `ssh_private_key_file` (as Packer does).
    pub ssh_temp_key: Option<(Arc<PrivateKey>, String)>,
    /// This run's id (`build.PackerRunUUID`); empty unless the caller sets it.
    pub run_uuid: String,
}

impl BuildContext {
    pub fn new(
        config: Config,
        ui: Ui,
        cancel: CancellationToken,
        force: bool,
        cache_dir: PathBuf,
        provisioners: Vec<ProvisionerBlock>,
        error_cleanup: Option<ProvisionerBlock>,
    ) -> Self {
        let ssh_temp_key = config
            .ssh
            .as_ref()
            .filter(|s| s.password.is_none() && s.private_key_file.is_none())
            .map(|_| crate::communicator::ssh::temporary_key_pair());
        Self {
            ssh_temp_key,
            config,
            ui,
            cancel,
            force,
            cache_dir,
            provisioners,
            error_cleanup,
            post_outputs: Vec::new(),
            iso_path: None,
            cd_path: None,
            disk_path: None,
            additional_disk_paths: Vec::new(),
            http_port: 0,
            accel: None,
            ssh_host_port: None,
            qemu: None,
            qmp: None,
            monitor: monitor::Monitor::default(),
            serial_log: None,
            key_trace: None,
            vnc_addr: None,
            comm: None,
            ssh_target: None,
            run_uuid: String::new(),
        }
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
        Box::new(steps::check_space::CheckSpace),
        Box::new(steps::http_server::StartHttpServer::default()),
        Box::new(steps::run_qemu::RunQemu::default()),
        Box::new(steps::boot_command::TypeBootCommand),
        Box::new(steps::wait_ssh::WaitSsh),
        Box::new(steps::provision::Provision),
        Box::new(steps::shutdown::Shutdown),
        Box::new(steps::compact_disk::CompactDisk),
    ]
}

/// What a successful qemu build produced.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub output_directory: PathBuf,
    pub disk_path: PathBuf,
    pub format: config::DiskFormat,
    /// Virtual size of the disk in bytes.
    pub virtual_size: u64,
    pub accel: accel::ResolvedAccel,
}

/// How long a failed build waits for the QMP event watcher to tell whether a fault explains it.
const FAULT_SETTLE: Duration = Duration::from_secs(2);

/// Runs the qemu build for `config` and returns the disk it produced.
///
/// The steps run under a child of the caller's cancellation token: the QMP event watcher
/// ([`monitor`]) cancels it when the guest cannot go on, and the build then fails with that
/// [`monitor::Fault`] rather than as cancelled (a Ctrl-C still cancels the whole build).
pub async fn build(
    ctx: &mut BuildContext,
    on_error: OnError,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let user_cancel = ctx.cancel.clone();
    ctx.cancel = user_cancel.child_token();
    let cancel = ctx.cancel.clone();
    let mut steps = steps();
    let result = step::run(&mut steps, ctx, &cancel, on_error, timings).await;
    ctx.cancel = user_cancel.clone();
    if let Err(e) = &result
        && !user_cancel.is_cancelled()
        && let Some(fault) = ctx.monitor.settle(FAULT_SETTLE).await
    {
        return Err(step::Error::Failed {
            step: e.step(),
            source: Error::GuestFault(fault),
        });
    }
    result?;
    let missing = |what: &'static str| step::Error::Failed {
        step: "artifact",
        source: Error::Missing { what },
    };
    let disk_path = ctx.disk_path.clone().ok_or_else(|| missing("disk_path"))?;
    let accel = ctx.accel.ok_or_else(|| missing("accelerator"))?;
    Ok(Artifact {
        output_directory: ctx.config.output_directory.clone(),
        disk_path,
        format: ctx.config.format,
        virtual_size: ctx.config.disk_size,
        accel,
    })
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
    /// The guest cannot go on: a full disk, a panic, a boot loop… (see [`monitor`]).
    #[error("The guest stopped making progress")]
    GuestFault(#[source] monitor::Fault),
    /// A provisioner failed.
    #[error("Provisioning failed")]
    Provision(#[source] crate::provisioner::Failed),
    /// The guest did not power off in time after `shutdown_command`.
    #[error("Timeout while waiting for the machine to shut down ({}s)", timeout.as_secs())]
    ShutdownTimeout { timeout: std::time::Duration },
    /// QEMU could not be stopped.
    #[error("Could not stop QEMU")]
    StopQemu(#[source] process::Error),
    /// `qemu-img convert` failed.
    #[error("Could not compact the disk")]
    CompactDisk(#[source] crate::qemu_img::Error),
    /// A step ran without what an earlier step should have produced (a bug in the step list).
    #[error("Internal error: `{what}` was not produced by an earlier step")]
    Missing { what: &'static str },
}
