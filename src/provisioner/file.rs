//! The `file` provisioner: copies files and directories to the machine (or back), with
//! Packer's trailing-slash rules:
//!
//! - a file goes to `destination`, or into it (`destination/NAME`) when it ends with `/`;
//! - a directory without a trailing `/` is copied *into* `destination` (`destination/NAME/…`);
//!   with a trailing `/`, only its contents are (`destination/…`);
//! - `content` is written to `destination` as a file;
//! - `direction = "download"` copies the remote `source` to the local `destination` the same
//!   way; a remote source ending in `/` is a directory.

use std::path::{Path, PathBuf};

use crate::communicator::{self, Communicator};
use crate::ui::Ui;

/// What the provisioner copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// `source` / `sources`: local paths for uploads (as written, trailing `/` kept), remote
    /// paths for downloads.
    Paths(Vec<String>),
    /// `content`: the file's text.
    Content(String),
}

/// `direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// A validated `provisioner "file"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: FileSource,
    pub destination: String,
    pub direction: Direction,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local source does not exist or cannot be read.
    #[error("Cannot read `{}`", path.display())]
    ReadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The transfer failed.
    #[error(
        "Cannot copy `{from}` to `{to}`; this can occur when your file destination is a folder without a trailing slash"
    )]
    Copy {
        from: String,
        to: String,
        #[source]
        source: communicator::Error,
    },
}

/// Copies everything `config` names.
pub async fn run(config: &Config, comm: &dyn Communicator, ui: &Ui) -> Result<(), Error> {
    let copy_err = |from: &str, to: &str| {
        let (from, to) = (from.to_owned(), to.to_owned());
        move |source| Error::Copy { from, to, source }
    };
    match (&config.source, config.direction) {
        (FileSource::Content(text), _) => {
            ui.say(format!("Uploading content to {}", config.destination));
            comm.upload(&config.destination, text.as_bytes(), 0o644)
                .await
                .map_err(copy_err("content", &config.destination))
        }
        (FileSource::Paths(paths), Direction::Upload) => {
            for src in paths {
                let local = Path::new(src);
                let meta =
                    tokio::fs::metadata(local)
                        .await
                        .map_err(|source| Error::ReadSource {
                            path: local.to_owned(),
                            source,
                        })?;
                let dest = upload_target(src, meta.is_dir(), &config.destination);
                ui.say(format!("Uploading {src} => {dest}"));
                if meta.is_dir() {
                    comm.upload_dir(&dest, local).await
                } else {
                    comm.upload_file(&dest, local, file_mode(&meta)).await
                }
                .map_err(copy_err(src, &dest))?;
            }
            Ok(())
        }
        (FileSource::Paths(paths), Direction::Download) => {
            for src in paths {
                let is_dir = src.ends_with('/');
                let dest = PathBuf::from(download_target(src, &config.destination));
                ui.say(format!("Downloading {src} => {}", dest.display()));
                let dest_str = dest.display().to_string();
                if is_dir {
                    comm.download_dir(src, &dest).await
                } else {
                    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                        tokio::fs::create_dir_all(parent).await.map_err(|source| {
                            Error::ReadSource {
                                path: parent.to_owned(),
                                source,
                            }
                        })?;
                    }
                    comm.download(src, &dest).await
                }
                .map_err(copy_err(src, &dest_str))?;
            }
            Ok(())
        }
    }
}

/// The local file's permission bits, kept on the remote copy.
fn file_mode(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o644
    }
}

/// The last path component of `path` (trailing `/` ignored).
fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Where an upload of `src` lands (see the module documentation).
fn upload_target(src: &str, is_dir: bool, destination: &str) -> String {
    let into = |dest: &str| format!("{}/{}", dest.trim_end_matches('/'), base_name(src));
    match (is_dir, src.ends_with('/')) {
        (true, true) => destination.to_owned(),
        (true, false) => into(destination),
        (false, _) if destination.ends_with('/') => into(destination),
        (false, _) => destination.to_owned(),
    }
}

/// Where a download of the remote `src` lands locally.
fn download_target(src: &str, destination: &str) -> String {
    if !src.ends_with('/') && destination.ends_with('/') {
        format!("{}/{}", destination.trim_end_matches('/'), base_name(src))
    } else {
        destination.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_rules() {
        let table = [
            ("file to path", "a/x.txt", false, "/tmp/y.txt", "/tmp/y.txt"),
            ("file into dir", "a/x.txt", false, "/tmp/d/", "/tmp/d/x.txt"),
            ("dir itself", "a/conf", true, "/etc", "/etc/conf"),
            (
                "dir itself, dest slash",
                "a/conf",
                true,
                "/etc/",
                "/etc/conf",
            ),
            ("dir contents", "a/conf/", true, "/etc/app", "/etc/app"),
        ];
        for (reason, src, is_dir, dest, want) in table {
            assert_eq!(upload_target(src, is_dir, dest), want, "{reason}");
        }
        assert_eq!(download_target("/var/log/x.log", "out/"), "out/x.log");
        assert_eq!(download_target("/var/log/x.log", "out/y.log"), "out/y.log");
        assert_eq!(download_target("/var/log/", "out/logs"), "out/logs");
    }
}
