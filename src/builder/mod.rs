//! Builders: what makes a machine and hands back its [`Artifact`]. `qemu` installs from an ISO;
//! `docker` provisions a container and commits or exports it; `null` makes nothing and
//! provisions an existing SSH host.
//!
//! This module is the one place that knows the builder kinds: [`SourceConfig`] (a source block,
//! validated) and [`run`] (the dispatch). Each builder is a module with its `Config`, its context
//! (the shared [`Core`] plus its own outputs), its literal `steps()` list and how it makes its
//! artifact. Every builder's list uses the one [`Provision`] step.

pub mod amazon_ebs;
pub mod docker;
pub mod null;
mod provision;
pub mod qemu;

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::artifact::Artifact;
use crate::provisioner::{BuildEnv, ProvisionerBlock, Session};
use crate::step::{self, OnError, Timings};
use crate::ui::Ui;
use crate::unknown::UnknownType;
pub use provision::Provision;

/// A `source "TYPE" "NAME"` block, validated: one variant per builder kind, and the sources
/// of builders kiln does not have (kept for validation; never built).
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Qemu(Box<qemu::config::Config>),
    Docker(Box<docker::Config>),
    Null(Box<null::Config>),
    AmazonEbs(Box<amazon_ebs::Config>),
    /// A source of another builder (`virtualbox-iso`): its name and block.
    Foreign {
        name: String,
        block: UnknownType,
    },
}

impl SourceConfig {
    /// Packer's type name, as in `source "TYPE" "NAME"`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Qemu(_) => "qemu",
            Self::Docker(_) => "docker",
            Self::Null(_) => "null",
            Self::AmazonEbs(_) => "amazon-ebs",
            Self::Foreign { block, .. } => &block.type_name,
        }
    }

    /// The source's name (`NAME`, or the `name` a build gave it).
    pub fn name(&self) -> &str {
        match self {
            Self::Qemu(c) => &c.name,
            Self::Docker(c) => &c.name,
            Self::Null(c) => &c.name,
            Self::AmazonEbs(c) => &c.name,
            Self::Foreign { name, .. } => name,
        }
    }

    /// `(type, name)`.
    pub fn key(&self) -> (&str, &str) {
        (self.type_name(), self.name())
    }

    /// The architecture (Vagrant's names) of the disk the builder makes; `None` when it makes
    /// none.
    pub fn architecture(&self) -> Option<&'static str> {
        match self {
            Self::Qemu(c) => Some(qemu::default_architecture(&c.qemu_binary)),
            Self::Docker(_) | Self::Null(_) | Self::AmazonEbs(_) | Self::Foreign { .. } => None,
        }
    }
}

/// What every builder's context holds (inputs set before the run; `session` filled by the
/// builder's connect step). Builders embed it as `core`.
pub struct Core {
    /// Packer's type of the source (`qemu`) and its name: the build is `TYPE.NAME`.
    pub builder_type: String,
    pub name: String,
    pub ui: Ui,
    pub cancel: CancellationToken,
    /// The build's provisioners, in order.
    pub provisioners: Vec<ProvisionerBlock>,
    /// The build's `error-cleanup-provisioner`.
    pub error_cleanup: Option<ProvisionerBlock>,
    /// This run's id (`build.PackerRunUUID`).
    pub run_uuid: String,
    /// `-on-error`: with `abort` the `error-cleanup-provisioner` does not run either, as in
    /// Packer (everything is left as it failed).
    pub on_error: OnError,
    /// `-debug`: builders say how to reach the machine.
    pub debug: bool,
    /// The communicator: the connection (the builder's connect step makes it; `provision` may
    /// replace it after a reboot; shutdown takes it) and how to make a new one.
    pub session: Session,
    /// What the post-processors will write from the builder's disk (boxes, archives), for the
    /// builder's space check; empty unless the caller sets it.
    pub post_outputs: Vec<PathBuf>,
}

impl Core {
    /// The core of a build of `source`, not connected yet.
    pub fn new(
        source: &SourceConfig,
        ui: Ui,
        cancel: CancellationToken,
        provisioners: Vec<ProvisionerBlock>,
        error_cleanup: Option<ProvisionerBlock>,
        run_uuid: String,
    ) -> Self {
        Self {
            builder_type: source.type_name().to_owned(),
            name: source.name().to_owned(),
            session: Session::new(None, None, cancel.clone()),
            ui,
            cancel,
            provisioners,
            error_cleanup,
            run_uuid,
            on_error: OnError::default(),
            debug: false,
            post_outputs: Vec::new(),
        }
    }
}

impl Core {
    /// Connects over SSH to `target` (retrying for up to `timeout`, stopped by Ctrl-C) and
    /// makes the connection, and the way to reconnect to the same target, the session's.
    pub async fn connect_ssh(
        &mut self,
        target: crate::communicator::ssh::SshTarget,
        timeout: std::time::Duration,
    ) -> Result<(), crate::communicator::ssh::Error> {
        use crate::communicator::ssh;
        self.ui.say(format!(
            "Waiting for SSH on {} (timeout {}s)",
            target.addr(),
            timeout.as_secs()
        ));
        let comm = ssh::wait_for_ssh(
            &target,
            timeout,
            std::future::pending::<String>(),
            &self.cancel,
        )
        .await?;
        self.ui.say("Connected to SSH");
        let cancel = self.cancel.clone();
        let never = Box::new(|| Box::pin(std::future::pending::<String>()) as ssh::AbortFuture);
        let reconnect = ssh::Reconnect::new(target, never, cancel.clone());
        self.session = Session::new(Some(Box::new(comm)), Some(Box::new(reconnect)), cancel);
        Ok(())
    }
}

/// A builder's context: the [`Core`] inside it, and what it tells provisioners about the build.
pub trait HasCore {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;

    /// What the provisioners learn about the build. A builder with an HTTP server or a
    /// temporary key pair adds them.
    fn build_env(&self) -> BuildEnv {
        provision::build_env(self.core(), None, None)
    }
}

/// What `kiln build` decides for every builder (the command line, not the template).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `-force`: replace an existing output directory.
    pub force: bool,
    /// `-on-error`.
    pub on_error: OnError,
    /// `-debug`: pause after each step.
    pub debug: bool,
    /// Where downloads (and install layers) are cached.
    pub cache_dir: PathBuf,
    /// `-install-cache`: keep and reuse installed systems in every build that can.
    pub install_cache: bool,
}

/// Why a build failed: its builder's step error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Qemu(step::Error<qemu::Error>),
    #[error(transparent)]
    Docker(step::Error<docker::Error>),
    #[error(transparent)]
    Null(step::Error<null::Error>),
    #[error(transparent)]
    AmazonEbs(step::Error<amazon_ebs::Error>),
    /// The source's type is not a builder kiln has (`kiln build` refuses such builds before
    /// starting any).
    #[error("kiln has no `{type_name}` builder")]
    Foreign { type_name: String },
}

/// Runs the builder of `source` over `core`: its steps, then its artifact.
pub async fn run(
    source: SourceConfig,
    mut core: Core,
    settings: &Settings,
    timings: &mut Timings,
) -> Result<Artifact, Error> {
    core.on_error = settings.on_error;
    core.debug = settings.debug;
    let mode = step::Mode {
        on_error: settings.on_error,
        debug: settings.debug,
        ui: Some(core.ui.clone()),
    };
    match source {
        SourceConfig::Qemu(config) => {
            let mut ctx = qemu::BuildContext::new(*config, core, settings);
            qemu::build(&mut ctx, mode, timings)
                .await
                .map_err(Error::Qemu)
        }
        SourceConfig::Docker(config) => {
            let mut ctx = docker::DockerContext::new(*config, core);
            docker::build(&mut ctx, mode, timings)
                .await
                .map_err(Error::Docker)
        }
        SourceConfig::Null(config) => {
            let mut ctx = null::NullContext::new(*config, core);
            null::build(&mut ctx, mode, timings)
                .await
                .map_err(Error::Null)
        }
        SourceConfig::AmazonEbs(config) => {
            let mut ctx = amazon_ebs::Context::new(*config, core);
            amazon_ebs::build(&mut ctx, mode, timings)
                .await
                .map_err(Error::AmazonEbs)
        }
        SourceConfig::Foreign { block, .. } => Err(Error::Foreign {
            type_name: block.type_name,
        }),
    }
}

/// The hint for one builder error (not its causes), if the builder has one.
pub fn hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = err.downcast_ref::<amazon_ebs::Error>() {
        return amazon_ebs::hint(e);
    }
    err.downcast_ref::<qemu::Error>().and_then(qemu::hint)
}
