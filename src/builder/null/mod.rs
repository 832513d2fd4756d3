//! The `null` builder: no machine is made; the provisioners run against any SSH host
//! (`ssh_host`), through the same provisioner layer as the qemu builder. Its artifact has no
//! files, as in Packer.

mod steps;

use tokio_util::sync::CancellationToken;

use crate::communicator::ssh::SshConfig;
use crate::communicator::ssh::{SshCommunicator, SshTarget};
use crate::provisioner::ProvisionerBlock;
use crate::step::{self, OnError, Step, Timings};
use crate::ui::Ui;

/// A `source "null" "NAME"` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    /// `ssh_host` (required with SSH).
    pub host: String,
    /// The SSH settings; `None` with `communicator = "none"` (only local provisioners run).
    pub ssh: Option<SshConfig>,
}

/// Everything the steps share (see the qemu builder's `BuildContext`).
pub struct NullContext {
    // Inputs.
    pub config: Config,
    pub ui: Ui,
    pub cancel: CancellationToken,
    pub provisioners: Vec<ProvisionerBlock>,
    pub error_cleanup: Option<ProvisionerBlock>,
    // Outputs.
    /// Where and as whom SSH connects (`connect`).
    pub ssh_target: Option<SshTarget>,
    /// The connection (`connect`; `provision` may replace it).
    pub comm: Option<SshCommunicator>,
    /// This run's id (`build.PackerRunUUID`).
    pub run_uuid: String,
}

/// Why a null build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SSH never accepted the connection.
    #[error("Could not connect to SSH")]
    Connect(#[source] crate::communicator::ssh::Error),
    /// A provisioner failed.
    #[error("Provisioning failed")]
    Provision(#[source] crate::provisioner::Failed),
}

/// The steps of a null build, in order.
pub fn steps() -> Vec<Box<dyn Step<NullContext, Error>>> {
    vec![Box::new(steps::Connect), Box::new(steps::Provision)]
}

/// Runs the null build.
pub async fn build(
    ctx: &mut NullContext,
    on_error: OnError,
    timings: &mut Timings,
) -> Result<(), step::Error<Error>> {
    let cancel = ctx.cancel.clone();
    step::run(&mut steps(), ctx, &cancel, on_error, timings).await
}
