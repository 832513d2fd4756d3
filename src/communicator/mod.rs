//! Communicators: how kiln runs commands in and copies files to the machine it builds.
//! Provisioners only see the [`Communicator`] trait, so they work with any builder.

pub mod ssh;

use std::path::Path;

use async_trait::async_trait;

/// Which output stream a chunk of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
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
    ) -> Result<u32, ssh::Error>;

    /// Writes `data` to `remote_path` (created or truncated) with permission bits `mode`.
    async fn upload(&self, remote_path: &str, data: &[u8], mode: u32) -> Result<(), ssh::Error>;

    /// Streams the local file `local` to `remote_path` (created or truncated), mode `mode`.
    async fn upload_file(
        &self,
        remote_path: &str,
        local: &Path,
        mode: u32,
    ) -> Result<(), ssh::Error>;

    /// Copies the local directory `local` into `remote_dir` (created if missing): its contents,
    /// not the directory itself. Needs `tar` on the remote side.
    async fn upload_dir(&self, remote_dir: &str, local: &Path) -> Result<(), ssh::Error>;

    /// Copies the remote file `remote_path` to `local` (written to a temporary name beside it,
    /// then renamed).
    async fn download(&self, remote_path: &str, local: &Path) -> Result<(), ssh::Error>;

    /// Copies the contents of the remote directory `remote_dir` into `local` (created if
    /// missing). Needs `tar` on the remote side.
    async fn download_dir(&self, remote_dir: &str, local: &Path) -> Result<(), ssh::Error>;
}
