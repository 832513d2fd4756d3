//! Communicators: how kiln runs commands in and copies files to the machine it builds.
//! Provisioners only see the [`Communicator`] trait, so they work with any builder.

pub mod ssh;

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
}
