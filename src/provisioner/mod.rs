//! Provisioners: what runs against the machine once the communicator is connected. The layer
//! is the same for every builder: a builder hands [`run_all`] a [`Session`] (the connection it
//! made, and how to make a new one after the machine rebooted) and the build's provisioner
//! blocks. Provisioners see only the [`Communicator`] trait, never SSH.
//!
//! Each block runs through Packer's wrappers, outermost first: `only`/`except` →
//! `pause_before` (cancellable) → `max_retries` (retried at once, saying so) → `timeout`. When
//! one fails, the `error-cleanup-provisioner` runs before the error is returned.

pub mod ansible;
pub mod ansible_local;
pub mod breakpoint;
pub mod file;
mod local_process;
pub mod shell;
pub mod shell_local;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::communicator::{self, Communicator, Connect, Endpoint};
use crate::ui::Ui;
use crate::unknown::UnknownType;

/// A `provisioner` block: its type's options and the options every type has.
#[derive(Debug, Clone)]
pub struct ProvisionerBlock {
    /// `only`: the sources (`TYPE.NAME`) it runs for; empty = all.
    pub only: Vec<String>,
    /// `except`: the sources it skips.
    pub except: Vec<String>,
    /// `pause_before` (default 0).
    pub pause_before: std::time::Duration,
    /// `max_retries` (default 0): further attempts after a failure.
    pub max_retries: u32,
    /// `timeout`: the longest one attempt may take.
    pub timeout: Option<std::time::Duration>,
    pub kind: Provisioner,
    /// `override`: the block as configured for a source, by the source's name (not
    /// `TYPE.NAME`, as in Packer).
    pub overrides: std::collections::BTreeMap<String, Provisioner>,
}

impl ProvisionerBlock {
    /// A block of `kind` with Packer's defaults for the common options.
    pub fn new(kind: Provisioner) -> Self {
        Self {
            only: Vec::new(),
            except: Vec::new(),
            pause_before: std::time::Duration::ZERO,
            max_retries: 0,
            timeout: None,
            kind,
            overrides: std::collections::BTreeMap::new(),
        }
    }

    /// What it runs for the source `TYPE.NAME`: its `override` for NAME, if any.
    pub fn kind_for(&self, source: &str) -> &Provisioner {
        let name = source.split_once('.').map_or(source, |(_, n)| n);
        self.overrides.get(name).unwrap_or(&self.kind)
    }

    /// Whether it runs for the source `TYPE.NAME`.
    pub fn runs_for(&self, source: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|s| s == source))
            && !self.except.iter().any(|s| s == source)
    }
}

/// The provisioner types kiln runs, and the blocks of types it does not have.
#[derive(Debug, Clone)]
pub enum Provisioner {
    Shell(shell::Config),
    File(file::Config),
    ShellLocal(shell_local::Config),
    Breakpoint(breakpoint::Config),
    /// A type kiln does not have (`powershell`): kept as written, never run (`kiln build`
    /// refuses a build that would run one).
    Unknown(UnknownType),
    Ansible(Box<ansible::Config>),
    AnsibleLocal(Box<ansible_local::Config>),
}

impl Provisioner {
    /// The type's name, as in `provisioner "TYPE"`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Shell(_) => "shell",
            Self::File(_) => "file",
            Self::ShellLocal(_) => "shell-local",
            Self::Breakpoint(_) => "breakpoint",
            Self::Unknown(u) => &u.type_name,
            Self::Ansible(_) => "ansible",
            Self::AnsibleLocal(_) => "ansible-local",
        }
    }
}

/// How provisioners reach the machine: the current connection, and what makes a new one after a
/// reboot (`expect_disconnect`) or a dropped connection. Without a connector (a build with
/// `communicator = "none"`) only local provisioners can run.
pub struct Session {
    comm: Option<Box<dyn Communicator>>,
    connector: Option<Box<dyn Connect>>,
    cancel: CancellationToken,
}

impl Session {
    /// A session that starts from `comm` (if connected) and reconnects through `connector`.
    pub fn new(
        comm: Option<Box<dyn Communicator>>,
        connector: Option<Box<dyn Connect>>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            comm,
            connector,
            cancel,
        }
    }

    /// The connection, reconnecting (within `timeout`) when there is none.
    pub async fn connect(
        &mut self,
        timeout: Duration,
    ) -> Result<&dyn Communicator, communicator::Error> {
        if self.comm.is_none() {
            let connector = self
                .connector
                .as_ref()
                .ok_or(communicator::Error::NoCommunicator)?;
            self.comm = Some(connector.connect(timeout).await?);
        }
        self.comm
            .as_deref()
            .ok_or(communicator::Error::NoCommunicator)
    }

    /// Forgets the connection (the machine went away); the next [`connect`](Self::connect)
    /// makes a new one.
    pub async fn disconnect(&mut self) {
        if let Some(comm) = self.comm.take() {
            comm.close().await;
        }
    }

    /// Whether a connection can be (re)made.
    pub fn can_connect(&self) -> bool {
        self.connector.is_some()
    }

    /// Where the connector connects, for the `build.*` values.
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.connector.as_ref().map(|c| c.endpoint())
    }

    /// Takes the connection left at the end, e.g. for the builder's shutdown command.
    pub fn take_comm(&mut self) -> Option<Box<dyn Communicator>> {
        self.comm.take()
    }
}

/// What provisioners learn about the build.
#[derive(Debug, Clone)]
pub struct BuildEnv {
    /// `TYPE.NAME` of the source, which `only` / `except` match.
    pub source: String,
    /// `PACKER_BUILD_NAME`, `PACKER_BUILDER_TYPE`, `PACKER_HTTP_*`.
    pub env: Vec<(String, String)>,
    /// The values of `{{ .Host }}`-style placeholders (Packer's `build.*` variables, and
    /// `source.name` / `source.type`), filled into provisioner options before each runs.
    pub data: Vec<(String, String)>,
}

/// What a builder knows for [`build_data`].
pub struct DataSources<'a> {
    /// `TYPE.NAME`.
    pub source: &'a str,
    /// Where the communicator connects, when there is one.
    pub endpoint: Option<&'a Endpoint>,
    /// The build's HTTP server as the guest reaches it, when there is one.
    pub http: Option<(&'a str, u16)>,
    /// The build's temporary key pair (private, public).
    pub temporary_key: Option<(&'a russh::keys::PrivateKey, &'a str)>,
    pub run_uuid: &'a str,
}

/// The values of Packer's `build.*` variables. The temporary private key is registered as a
/// secret, so that output never shows it; the password is masked when the template marks
/// its variable `sensitive` (as Packer does: a plain `ssh_password = "vagrant"` would
/// otherwise hide every "vagrant" in the output).
pub fn build_data(from: &DataSources) -> Vec<(String, String)> {
    let (builder_type, source_name) = from.source.split_once('.').unwrap_or(("", from.source));
    let mut data = vec![
        ("ID", String::new()),
        ("SourceName", source_name.to_owned()),
        ("BuilderType", builder_type.to_owned()),
        ("PackerRunUUID", from.run_uuid.to_owned()),
        ("ConnType", from.endpoint.map_or("", |e| e.kind).to_owned()),
    ];
    if let Some(t) = from.endpoint {
        data.push(("Host", t.host.clone()));
        data.push(("Port", t.port.to_string()));
        data.push(("User", t.user.clone()));
        let password = t.password.as_ref().map(|p| p.expose().to_owned());
        data.push(("Password", password.unwrap_or_default()));
    }
    if let Some((ip, port)) = from.http {
        data.push(("PackerHTTPIP", ip.to_owned()));
        data.push(("PackerHTTPPort", port.to_string()));
        data.push(("PackerHTTPAddr", format!("{ip}:{port}")));
    }
    if let Some((private, public)) = from.temporary_key {
        let text = private
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map(|k| k.to_string())
            .unwrap_or_default();
        data.push(("SSHPrivateKey", text));
        data.push(("SSHPublicKey", public.to_owned()));
    }
    let secrets: Vec<String> = data
        .iter()
        .filter(|(k, v)| *k == "SSHPrivateKey" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    crate::ui::add_secrets(&secrets);
    data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `kind` with the build's placeholders filled into its commands, environment, paths and
/// content; placeholders it does not know stay as written (see [`crate::render`]).
fn with_build_data(kind: &Provisioner, data: &[(String, String)]) -> Provisioner {
    let lookup = |name: &str| {
        data.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| std::borrow::Cow::Borrowed(v.as_str()))
    };
    let r = |s: &String| crate::render::render_known(s, lookup);
    let env = |vars: &[(String, String)]| -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| (k.clone(), r(v))).collect()
    };
    let mut kind = kind.clone();
    match &mut kind {
        Provisioner::Shell(c) => {
            if let shell::ShellSource::Inline(lines) = &mut c.source {
                *lines = lines.iter().map(r).collect();
            }
            c.environment_vars = env(&c.environment_vars);
            c.execute_command = r(&c.execute_command);
        }
        Provisioner::File(c) => {
            c.destination = r(&c.destination);
            match &mut c.source {
                file::FileSource::Paths(paths) => *paths = paths.iter().map(r).collect(),
                file::FileSource::Content(text) => *text = r(text),
            }
        }
        Provisioner::ShellLocal(c) => {
            if let shell_local::Source::Inline(lines) = &mut c.source {
                *lines = lines.iter().map(r).collect();
            }
            c.environment_vars = env(&c.environment_vars);
            c.execute_command = c.execute_command.iter().map(r).collect();
        }
        Provisioner::Breakpoint(_) | Provisioner::Unknown(_) => {}
        // `inventory_file_template` is filled when the inventory is made: its `User` is
        // Ansible's user, not the build's.
        Provisioner::Ansible(c) => {
            c.extra_arguments = c.extra_arguments.iter().map(r).collect();
            c.ansible_env_vars = env(&c.ansible_env_vars);
            c.ssh_extra_args = c.ssh_extra_args.iter().map(r).collect();
        }
        Provisioner::AnsibleLocal(c) => {
            c.extra_arguments = c.extra_arguments.iter().map(r).collect();
            c.command = r(&c.command);
        }
    }
    kind
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Shell(#[from] shell::Error),
    #[error(transparent)]
    File(#[from] file::Error),
    #[error(transparent)]
    ShellLocal(#[from] shell_local::Error),
    #[error(transparent)]
    Breakpoint(#[from] breakpoint::Error),
    #[error(transparent)]
    Ansible(#[from] ansible::Error),
    #[error(transparent)]
    AnsibleLocal(#[from] ansible_local::Error),
    /// No connection could be (re)made.
    #[error("No connection to the machine to run it on")]
    Connect(#[source] communicator::Error),
    /// The provisioner ran longer than its `timeout`.
    #[error("Timed out after {0:?}")]
    Timeout(Duration),
    /// Ctrl-C or SIGTERM.
    #[error("Cancelled")]
    Cancelled,
    /// The block's type is not one kiln has.
    #[error("kiln has no `{0}` provisioner")]
    NotBuiltIn(String),
}

/// A failed provisioner block: its position (1-based), type and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("Provisioner {index} (`{kind}`) failed")]
pub struct Failed {
    pub index: usize,
    pub kind: String,
    #[source]
    pub source: Error,
}

/// What the provision step of every builder does: runs `blocks` (and `error_cleanup`) over
/// `session`. When they succeeded and the last one dropped the connection (a reboot), makes a
/// new one, so that the builder's shutdown command can run.
pub async fn provision(
    blocks: &[ProvisionerBlock],
    error_cleanup: Option<&ProvisionerBlock>,
    session: &mut Session,
    build: &BuildEnv,
    ui: &Ui,
) -> Result<(), Failed> {
    let result = run_all(blocks, error_cleanup, session, build, ui).await;
    // Without a connection the builder falls back to its other ways of stopping the machine.
    if result.is_ok()
        && session.can_connect()
        && let Err(e) = session.connect(shell::DEFAULT_START_RETRY).await
    {
        ui.warn(format!("Could not reconnect after the provisioners: {e}"));
    }
    result
}

/// Runs `blocks` in order; when one fails, runs `error_cleanup` (if any) and returns the
/// first failure.
pub async fn run_all(
    blocks: &[ProvisionerBlock],
    error_cleanup: Option<&ProvisionerBlock>,
    session: &mut Session,
    build: &BuildEnv,
    ui: &Ui,
) -> Result<(), Failed> {
    for (i, block) in blocks.iter().enumerate() {
        if !block.runs_for(&build.source) {
            continue;
        }
        if let Err(source) = run_block(block, session, build, ui).await {
            let failed = Failed {
                index: i + 1,
                kind: block.kind.type_name().to_owned(),
                source,
            };
            if let Some(cleanup) = error_cleanup {
                ui.say("Provisioning failed: running the error-cleanup-provisioner");
                if let Err(e) = run_block(cleanup, session, build, ui).await {
                    ui.error(format!("error-cleanup-provisioner failed: {e}"));
                }
            }
            return Err(failed);
        }
    }
    Ok(())
}

/// One block with its `pause_before`, `max_retries` and `timeout`.
async fn run_block(
    block: &ProvisionerBlock,
    session: &mut Session,
    build: &BuildEnv,
    ui: &Ui,
) -> Result<(), Error> {
    let cancel = session.cancel.clone();
    if !block.pause_before.is_zero() {
        ui.say(format!(
            "Pausing {:?} before the next provisioner...",
            block.pause_before
        ));
        tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            () = tokio::time::sleep(block.pause_before) => {}
        }
    }
    let mut tries_left = block.max_retries;
    loop {
        let attempt = run_kind(block.kind_for(&build.source), session, build, ui);
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Error::Cancelled),
            r = with_timeout(block.timeout, attempt) => r,
        };
        match result {
            Err(e) if tries_left > 0 && !matches!(e, Error::Cancelled) => {
                ui.warn(format!(
                    "Provisioner failed with \"{e}\", retrying with {tries_left} trie(s) left"
                ));
                tries_left -= 1;
            }
            other => return other,
        }
    }
}

async fn with_timeout(
    limit: Option<Duration>,
    f: impl Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, f)
            .await
            .unwrap_or(Err(Error::Timeout(limit))),
        None => f.await,
    }
}

async fn run_kind(
    kind: &Provisioner,
    session: &mut Session,
    build: &BuildEnv,
    ui: &Ui,
) -> Result<(), Error> {
    match &with_build_data(kind, &build.data) {
        Provisioner::Shell(cfg) => shell::run_with_session(cfg, session, ui, &build.env).await,
        Provisioner::File(cfg) => {
            let comm = session
                .connect(shell::DEFAULT_START_RETRY)
                .await
                .map_err(Error::Connect)?;
            Ok(file::run(cfg, comm, ui).await?)
        }
        Provisioner::ShellLocal(cfg) => {
            Ok(shell_local::run(cfg, ui, &build.env, &session.cancel).await?)
        }
        Provisioner::Breakpoint(cfg) => Ok(breakpoint::run(cfg, ui, &session.cancel).await?),
        Provisioner::Unknown(u) => Err(Error::NotBuiltIn(u.type_name.clone())),
        Provisioner::Ansible(cfg) => {
            // Ansible makes its own connection; this one waits until the machine is back
            // after a reboot.
            if session.can_connect() {
                session
                    .connect(shell::DEFAULT_START_RETRY)
                    .await
                    .map_err(Error::Connect)?;
            }
            let endpoint = session.endpoint();
            Ok(ansible::run(cfg, endpoint, build, ui, &session.cancel).await?)
        }
        Provisioner::AnsibleLocal(cfg) => {
            let comm = session
                .connect(shell::DEFAULT_START_RETRY)
                .await
                .map_err(Error::Connect)?;
            Ok(ansible_local::run(cfg, comm, build, ui).await?)
        }
    }
}

/// The hint for one provisioner error (not its causes), if there is one.
pub fn hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    match err.downcast_ref::<Error>() {
        Some(Error::Ansible(e)) => ansible::hint(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a communicator (`communicator = "none"`), a provisioner that needs the machine
    /// fails at once instead of retrying a connection that cannot exist (issue 16).
    #[tokio::test]
    async fn a_session_without_a_connector_fails_at_once() {
        let mut session = Session::new(None, None, CancellationToken::new());
        assert!(!session.can_connect());
        assert!(session.endpoint().is_none());
        let err = session
            .connect(Duration::from_secs(300))
            .await
            .err()
            .expect("no communicator");
        assert!(
            matches!(err, communicator::Error::NoCommunicator),
            "{err:?}"
        );
    }
}
