//! Communicators: how kiln runs commands in and copies files to the machine it builds.
//! Provisioners only see the [`Communicator`] trait (and [`Connect`], to make a new one after a
//! reboot), so they work with any builder: SSH ([`ssh`]), a container's `exec` and `cp`
//! ([`docker`]), or whatever a builder brings.

pub mod docker;
pub mod ssh;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use crate::types::Secret;

/// Which output stream a chunk of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Why a communicator could not do what it was asked. The communicator's own error is inside,
/// shown as is; the variant says whether a new connection may help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection could not carry the request or dropped during it (e.g. the machine
    /// rebooted): a new connection may succeed.
    #[error(transparent)]
    Lost(Box<dyn std::error::Error + Send + Sync>),
    /// The request failed: no connection could be made, the remote side refused or failed, or a
    /// local file could not be read or written.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The build has no communicator (`communicator = "none"`).
    #[error("The build has no communicator (`communicator = \"none\"`)")]
    NoCommunicator,
}

/// A connected channel to the machine.
#[async_trait]
pub trait Communicator: Send + Sync {
    /// Runs `command` through the remote user's shell, passing output chunks to `output` as
    /// they arrive; returns the exit status.
    async fn exec(
        &self,
        command: &str,
        output: &mut (dyn for<'b> FnMut(Stream, &'b [u8]) + Send),
    ) -> Result<u32, Error>;

    /// Writes `data` to `remote_path` (created or truncated) with permission bits `mode`.
    async fn upload(&self, remote_path: &str, data: &[u8], mode: u32) -> Result<(), Error>;

    /// Streams the local file `local` to `remote_path` (created or truncated), mode `mode`.
    async fn upload_file(&self, remote_path: &str, local: &Path, mode: u32) -> Result<(), Error>;

    /// Copies the local directory `local` into `remote_dir` (created if missing): its contents,
    /// not the directory itself.
    async fn upload_dir(&self, remote_dir: &str, local: &Path) -> Result<(), Error>;

    /// Copies the remote file `remote_path` to `local` (written to a temporary name beside it,
    /// then renamed).
    async fn download(&self, remote_path: &str, local: &Path) -> Result<(), Error>;

    /// Copies the contents of the remote directory `remote_dir` into `local` (created if
    /// missing).
    async fn download_dir(&self, remote_dir: &str, local: &Path) -> Result<(), Error>;

    /// Ends the connection politely (a connection already gone is fine).
    async fn close(self: Box<Self>);
}

/// What a builder hands the provisioner layer to make a new connection: after a provisioner
/// rebooted the machine (`expect_disconnect`) or the connection dropped.
#[async_trait]
pub trait Connect: Send + Sync {
    /// A new connection, waiting up to `timeout` for the machine to accept it.
    async fn connect(&self, timeout: Duration) -> Result<Box<dyn Communicator>, Error>;

    /// Where and as whom it connects (Packer's `build.Host`, `build.Port`, …).
    fn endpoint(&self) -> Endpoint;
}

/// Where a communicator connects, as provisioners see it (Packer's `build.ConnType`,
/// `build.Host`, `build.Port`, `build.User`, `build.Password`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `ssh` or `docker`.
    pub kind: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    /// The private key it authenticates with (the build's temporary key or
    /// `ssh_private_key_file`), in OpenSSH's text form, for tools that connect on their own
    /// (the `ansible` provisioner).
    pub private_key: Option<Secret>,
}

/// Quotes `s` for a POSIX shell: `'...'`, with each `'` written as `'"'"'`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}
