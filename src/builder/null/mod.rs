//! The `null` builder: no machine is made; the provisioners run against any SSH host
//! (`ssh_host`), through the same provisioner layer as the qemu builder. Its artifact has no
//! files, as in Packer.

mod steps;

use super::{Core, HasCore, Provision};
use crate::artifact::Artifact;
use crate::communicator::ssh::SshConfig;
use crate::step::{self, Step, Timings};

/// A `source "null" "NAME"` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    /// `ssh_host` (required with SSH).
    pub host: String,
    /// The SSH settings; `None` with `communicator = "none"` (only local provisioners run).
    pub ssh: Option<SshConfig>,
}

/// Everything the steps share: the [`Core`] (`connect` fills its session) and the config.
pub struct NullContext {
    pub config: Config,
    pub core: Core,
}

impl NullContext {
    pub fn new(config: Config, core: Core) -> Self {
        Self { config, core }
    }
}

impl HasCore for NullContext {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// Why a null build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SSH never accepted the connection.
    #[error("Could not connect to SSH")]
    Connect(#[source] crate::communicator::ssh::Error),
    /// A provisioner failed.
    #[error("Provisioning failed")]
    Provision(#[from] crate::provisioner::Failed),
}

/// Packer's id of the null builder.
pub const BUILDER_ID: &str = "fnoeding.null";

/// The steps of a null build, in order.
pub fn steps() -> Vec<Box<dyn Step<NullContext, Error>>> {
    vec![Box::new(steps::Connect), Box::new(Provision)]
}

/// Runs the null build; its artifact has no files.
pub async fn build(
    ctx: &mut NullContext,
    mode: step::Mode,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let cancel = ctx.core.cancel.clone();
    step::run(&mut steps(), ctx, &cancel, mode, timings).await?;
    Ok(Artifact {
        builder_type: "null",
        builder_id: BUILDER_ID,
        id: "Null".into(),
        files: Vec::new(),
        disk: None,
        image: None,
    })
}
