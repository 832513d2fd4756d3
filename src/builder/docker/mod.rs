//! The `docker` builder: starts a container from an image with a docker-compatible engine
//! (`docker`, or `podman`), runs the provisioners in it through the docker communicator
//! (`exec` and `cp`), then commits it as an image, exports its filesystem, or discards it, as
//! Packer's docker builder does. The container is removed whatever happens.
//!
//! A build is the literal list of steps in [`steps`]; each step file says what it uses from
//! [`DockerContext`] and what it produces there.

mod steps;

use std::path::PathBuf;

use super::{Core, HasCore, Provision};
use crate::artifact::{Artifact, Image, docker_id};
use crate::engine::{self, Engine, Login, RunOptions};
use crate::provisioner::BuildEnv;
use crate::step::{self, Step, Timings};

/// Packer's default `run_command`: a shell kept waiting on a terminal, so `exec` can run in it.
pub const DEFAULT_RUN_COMMAND: [&str; 6] =
    ["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "{{.Image}}"];

/// The Dockerfile instructions `changes` may hold (what `docker commit --change` applies).
pub const CHANGE_INSTRUCTIONS: [&str; 11] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A `source "docker" "NAME"` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    /// `docker_path`: the engine command. `None`: `docker`, or `podman` when docker is not
    /// installed.
    pub docker_path: Option<String>,
    /// `image`: what the container starts from.
    pub image: String,
    /// `pull` (default true): pull `image` first.
    pub pull: bool,
    /// `login` with `login_server`, `login_username`, `login_password`: credentials for the pull.
    pub login: Option<Login>,
    /// `device`, `cap_add`, `cap_drop`, `privileged`, `runtime`, `platform`, `tmpfs`, `volumes`.
    pub run: RunOptions,
    /// `run_command` (default [`DEFAULT_RUN_COMMAND`]); `{{.Image}}` is filled in at run time.
    pub run_command: Vec<String>,
    /// `container_dir` (default `/packer-files`): where a temporary host directory is mounted.
    pub container_dir: String,
    /// `exec_user`: who runs the provisioners' commands (default the container's user).
    pub exec_user: Option<String>,
    /// `pty`: run commands with a terminal.
    pub pty: bool,
    /// `fix_upload_owner` (default true): uploads belong to the container's user.
    pub fix_upload_owner: bool,
    /// `false` with `communicator = "none"`: provisioners cannot reach the container.
    pub communicator: bool,
    /// `commit`, `export_path` or `discard`.
    pub output: Output,
}

/// What becomes of the container after provisioning (exactly one is set in a template).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `commit = true`: an image, with `author`, `message` and `changes`.
    Commit {
        author: Option<String>,
        message: Option<String>,
        changes: Vec<String>,
    },
    /// `export_path`: the container's filesystem as a tar file.
    Export(PathBuf),
    /// `discard = true`: nothing is kept.
    Discard,
}

impl Config {
    /// A config with Packer's defaults for everything but the image and the output.
    pub fn with_defaults(name: &str, image: String, output: Output) -> Self {
        Self {
            name: name.to_owned(),
            docker_path: None,
            image,
            pull: true,
            login: None,
            run: RunOptions::default(),
            run_command: DEFAULT_RUN_COMMAND.map(String::from).to_vec(),
            container_dir: "/packer-files".into(),
            exec_user: None,
            pty: false,
            fix_upload_owner: true,
            communicator: true,
            output,
        }
    }
}

/// Everything the steps share: the [`Core`], the config, and what the steps produce.
pub struct DockerContext {
    pub config: Config,
    pub core: Core,
    /// The engine, checked to run (`engine`).
    pub engine: Option<Engine>,
    /// The host directory mounted at `container_dir` (`temp_dir`).
    pub temp_dir: Option<tempfile::TempDir>,
    /// The build container's id (`run_container`).
    pub container: Option<String>,
    /// The committed image's id (`commit`).
    pub image_id: Option<String>,
}

impl DockerContext {
    pub fn new(config: Config, core: Core) -> Self {
        Self {
            config,
            core,
            engine: None,
            temp_dir: None,
            container: None,
            image_id: None,
        }
    }
}

impl HasCore for DockerContext {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Packer's view; `build.ID` is the container's id.
    fn build_env(&self) -> BuildEnv {
        let mut env = super::provision::build_env(&self.core, None, None);
        if let (Some(id), Some(slot)) = (
            &self.container,
            env.data.iter_mut().find(|(k, _)| k == "ID"),
        ) {
            slot.1 = id.clone();
        }
        env
    }
}

/// Why a docker build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `docker_path` does not run.
    #[error("Could not run the container engine")]
    Engine(#[source] engine::Error),
    /// The host directory for `container_dir` could not be made.
    #[error("Cannot create a temporary directory to share with the container")]
    TempDir(#[source] std::io::Error),
    /// `login`.
    #[error("Could not log in to the registry")]
    Login(#[source] engine::Error),
    #[error("Could not pull image `{image}`")]
    Pull {
        image: String,
        #[source]
        source: engine::Error,
    },
    #[error("Could not start the container from `{image}`")]
    Run {
        image: String,
        #[source]
        source: engine::Error,
    },
    /// Its user could not be read (for `fix_upload_owner`).
    #[error("Could not inspect the container")]
    Inspect(#[source] engine::Error),
    /// The image's CMD and ENTRYPOINT, kept on commit, could not be read.
    #[error("Could not read the configuration of image `{image}`")]
    ImageConfig {
        image: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Could not commit the container")]
    Commit(#[source] engine::Error),
    #[error("Could not export the container to `{}`", path.display())]
    Export {
        path: PathBuf,
        #[source]
        source: engine::Error,
    },
    /// A provisioner failed.
    #[error("Provisioning failed")]
    Provision(#[from] crate::provisioner::Failed),
}

/// The steps of a docker build, in order. This list is the builder.
pub fn steps(config: &Config) -> Vec<Box<dyn Step<DockerContext, Error>>> {
    let mut list: Vec<Box<dyn Step<DockerContext, Error>>> = vec![
        Box::new(steps::engine::FindEngine),
        Box::new(steps::temp_dir::TempDir),
        Box::new(steps::pull::Pull),
        Box::new(steps::run_container::RunContainer),
        Box::new(steps::connect::Connect),
        Box::new(Provision),
    ];
    match config.output {
        Output::Commit { .. } => list.push(Box::new(steps::commit::Commit)),
        Output::Export(_) => list.push(Box::new(steps::export::Export)),
        Output::Discard => {}
    }
    list
}

/// Runs the docker build; its artifact is the image (`commit`), the tar file (`export_path`)
/// or nothing (`discard`).
pub async fn build(
    ctx: &mut DockerContext,
    mode: step::Mode,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let cancel = ctx.core.cancel.clone();
    step::run(&mut steps(&ctx.config), ctx, &cancel, mode, timings).await?;
    let image = ctx.engine.as_ref().map(|e| Image {
        engine: e.program().to_owned(),
        tags: Vec::new(),
    });
    let artifact = match (&ctx.config.output, &ctx.image_id) {
        (Output::Commit { .. }, Some(id)) => Artifact {
            builder_type: "docker",
            builder_id: docker_id::IMAGE,
            id: id.clone(),
            files: Vec::new(),
            disk: None,
            image,
        },
        (Output::Export(path), _) => Artifact {
            builder_type: "docker",
            builder_id: docker_id::EXPORT,
            id: "Container".into(),
            files: vec![path.clone()],
            disk: None,
            image,
        },
        _ => Artifact {
            builder_type: "docker",
            builder_id: docker_id::EXPORT,
            id: "Container".into(),
            files: Vec::new(),
            disk: None,
            image: None,
        },
    };
    Ok(artifact)
}
