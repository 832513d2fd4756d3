//! placeholder (being written)

/// Errors of the SSH communicator.
#[derive(Debug, thiserror::Error)]
pub enum Error {}
