//! The `breakpoint` provisioner: pauses the build until Enter is pressed, so a person can look
//! at the machine (`disable = true` skips it).

use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::ui::Ui;

/// A validated `provisioner "breakpoint"` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `note`, shown when pausing.
    pub note: String,
    /// `disable`.
    pub disable: bool,
}

/// Why the breakpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Standard input could not be read (or was closed before Enter).
    #[error("Cannot read Enter from standard input")]
    ReadStdin(#[source] std::io::Error),
    /// The build was cancelled while paused.
    #[error("Cancelled at the breakpoint")]
    Cancelled,
}

/// Pauses until a line arrives on standard input.
pub async fn run(config: &Config, ui: &Ui, cancel: &CancellationToken) -> Result<(), Error> {
    if config.disable {
        ui.say("Breakpoint disabled, continuing");
        return Ok(());
    }
    ui.say(format!(
        "Pausing at breakpoint provisioner with note \"{}\".",
        config.note
    ));
    ui.message("Press enter to continue.");
    let mut line = String::new();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    tokio::select! {
        () = cancel.cancelled() => Err(Error::Cancelled),
        read = stdin.read_line(&mut line) => match read {
            Ok(0) => Err(Error::ReadStdin(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "standard input is closed",
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(Error::ReadStdin(e)),
        },
    }
}
