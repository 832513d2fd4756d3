//! Data sources: `data "TYPE" "NAME" { … }` blocks, whose outputs templates read as
//! `data.TYPE.NAME.ATTR` while they are loaded.
//!
//! Each type is a [`DataSource`]: its block's options, already read into a config, and how to
//! produce its outputs (an object). The template loader holds the table from type names to
//! readers (`src/template/data.rs`); this module holds what runs. Reading may take I/O (the
//! `http` data source makes a request), so it is async; [`read_blocking`] runs it to
//! completion for the loader, which is synchronous.

pub mod amazon_ami;
pub mod http;
pub mod null;

use std::time::Duration;

use async_trait::async_trait;
use hcl::Value;

/// One configured data source.
#[async_trait]
pub trait DataSource: Send + Sync + std::fmt::Debug {
    /// Its outputs, as an object (`body`, `url`, … for `http`).
    async fn read(&self) -> Result<Outputs, Error>;
}

/// What a data source produced: its outputs, and anything that works but deserves a word.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// An object of the type's output attributes.
    pub value: Value,
    pub warnings: Vec<String>,
}

/// Why a data source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `http` request could not be made or its body not read.
    #[error("Request to `{url}` failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The `http` request got an answer outside 2xx.
    #[error("Request to `{url}` was answered with HTTP status {status}")]
    Status { url: String, status: u16 },
    /// The `http` request did not finish in time.
    #[error("Request to `{url}` did not finish within {}s", limit.as_secs())]
    Timeout { url: String, limit: Duration },
    /// `amazon-ami`: no AWS credentials or region.
    #[error("Cannot find AWS credentials")]
    AwsCredentials(#[source] crate::aws::credentials::Error),
    /// `amazon-ami`: EC2 could not be asked.
    #[error("Cannot look the AMI up in EC2")]
    Aws(#[source] crate::aws::Error),
    /// `amazon-ami`: nothing matches.
    #[error("No AMI matches the filters and owners")]
    NoAmi,
    /// `amazon-ami`: several match and `most_recent` is not set.
    #[error("{0}")]
    AmbiguousAmi(String),
    /// The runtime for the read could not be started.
    #[error("Could not start a runtime to read the data source")]
    Runtime(#[source] std::io::Error),
    /// The thread reading the data source panicked.
    #[error("The thread reading the data source failed")]
    Thread,
}

/// Runs `source.read()` to completion on a thread of its own with its own runtime, so that the
/// synchronous template loader can read data sources from inside or outside an async runtime.
pub fn read_blocking(source: &dyn DataSource) -> Result<Outputs, Error> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::Runtime)?;
            rt.block_on(source.read())
        })
        .join()
        .map_err(|_| Error::Thread)?
    })
}
