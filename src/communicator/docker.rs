//! The docker communicator: runs commands in a build container with the engine's `exec` and
//! moves files with `cp` as tar streams, as Packer's docker communicator does. The container
//! needs `/bin/sh`, and `mkdir`/`chown` for directory uploads and owner fixes; no SSH, no tar.
//!
//! A remote path is a path in the container; a relative one is taken from its root, as `cp`
//! does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::SyncIoBridge;

use super::{Communicator, Connect, Endpoint, Stream, sh_quote};
use crate::engine::{self, Engine, argv};

/// A running build container, reached through its engine.
#[derive(Debug, Clone)]
pub struct DockerCommunicator {
    engine: Engine,
    container: String,
    /// `exec_user`: who runs commands (`None`: the container's user).
    exec_user: Option<String>,
    /// Allocate a terminal for commands (`pty`).
    pty: bool,
    /// With `fix_upload_owner`: who is made owner of uploads (the container's user).
    upload_owner: Option<String>,
}

/// Why a transfer or command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A local file could not be read or written.
    #[error("Cannot access `{}`", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The tar stream to or from the engine broke.
    #[error("Cannot copy `{path}` as a tar stream")]
    Tar {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A download asked for a file, and the container has something else there.
    #[error("`{path}` in the container is not a file")]
    NotAFile { path: String },
    /// `fix_upload_owner`: the uploaded path's owner could not be set.
    #[error("Cannot make `{owner}` the owner of `{path}` in the container")]
    Owner {
        path: String,
        owner: String,
        #[source]
        source: engine::Error,
    },
}

/// Nothing about a container reconnects: every failure is final.
impl From<Error> for super::Error {
    fn from(e: Error) -> Self {
        super::Error::Failed(Box::new(e))
    }
}

impl DockerCommunicator {
    /// The communicator for `container`. `upload_owner` is the container's user when uploads
    /// should belong to it (`fix_upload_owner`).
    pub fn new(
        engine: Engine,
        container: String,
        exec_user: Option<String>,
        pty: bool,
        upload_owner: Option<String>,
    ) -> Self {
        Self {
            engine,
            container,
            exec_user,
            pty,
            upload_owner,
        }
    }

    /// What makes the connection again (the same container: nothing to wait for).
    pub fn connector(&self) -> DockerConnect {
        DockerConnect(self.clone())
    }

    async fn run_as_root(&self, command: &str) -> Result<(), engine::Error> {
        let args = argv::exec_as_root(&self.container, command);
        self.engine
            .output(args, engine::Input::Nothing)
            .await
            .map(drop)
    }

    /// Packer's `fix_upload_owner`: the container's user owns what was uploaded to `path`.
    async fn fix_owner(&self, path: &str) -> Result<(), Error> {
        let Some(owner) = self
            .upload_owner
            .as_deref()
            .filter(|o| !matches!(*o, "" | "root" | "0" | "0:0" | "root:root"))
        else {
            // `cp` creates files as root already.
            return Ok(());
        };
        let command = format!("chown -R {} {}", sh_quote(owner), sh_quote(path));
        self.run_as_root(&command)
            .await
            .map_err(|source| Error::Owner {
                path: path.to_owned(),
                owner: owner.to_owned(),
                source,
            })
    }

    /// Streams a tar archive that `pack` writes into the container's directory `dir`.
    async fn copy_in(
        &self,
        dir: &str,
        what: &str,
        pack: impl FnOnce(&mut tar::Builder<Box<dyn Write + Send>>) -> std::io::Result<()>
        + Send
        + 'static,
    ) -> Result<(), Error> {
        let args = argv::copy_in(&self.container, dir);
        let mut child = self.engine.spawn(&args, Stdio::piped(), Stdio::null())?;
        let stdin = child.stdin.take().map(SyncIoBridge::new);
        let packer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let stdin = stdin.ok_or(std::io::ErrorKind::BrokenPipe)?;
            let mut tar = tar::Builder::new(Box::new(stdin) as Box<dyn Write + Send>);
            tar.follow_symlinks(false);
            pack(&mut tar)?;
            // Dropping the pipe closes it: the engine sees the end of the stream.
            tar.into_inner()?.flush()
        });
        let (packed, out) = tokio::join!(packer, child.wait_with_output());
        self.engine.finished(&args, out)?;
        packed
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| Error::Tar {
                path: what.to_owned(),
                source,
            })
    }

    /// Reads `path` of the container as a tar stream through `unpack` (the rest of the stream
    /// is drained, so the engine always finishes).
    async fn copy_out<T: Send + 'static>(
        &self,
        path: &str,
        unpack: impl FnOnce(&mut tar::Archive<Box<dyn Read + Send>>) -> Result<T, Error>
        + Send
        + 'static,
    ) -> Result<T, Error> {
        let args = argv::copy_out(&self.container, path);
        let mut child = self.engine.spawn(&args, Stdio::null(), Stdio::piped())?;
        let stdout = child.stdout.take().map(SyncIoBridge::new);
        let what = path.to_owned();
        let unpacker = tokio::task::spawn_blocking(move || -> Result<T, Error> {
            let tar_err = |source| Error::Tar {
                path: what.clone(),
                source,
            };
            let stdout = stdout.ok_or_else(|| tar_err(std::io::ErrorKind::BrokenPipe.into()))?;
            let mut archive = tar::Archive::new(Box::new(stdout) as Box<dyn Read + Send>);
            let result = unpack(&mut archive);
            std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(tar_err)?;
            result
        });
        let (unpacked, out) = tokio::join!(unpacker, child.wait_with_output());
        // The engine's own error (no such path, container gone) says more than a broken stream.
        self.engine.finished(&args, out)?;
        unpacked.map_err(|e| Error::Tar {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?
    }

    /// Uploads one file entry named after `remote_path`'s last part into its directory.
    async fn upload_entry(
        &self,
        remote_path: &str,
        fill: impl FnOnce(&mut tar::Builder<Box<dyn Write + Send>>, &str) -> std::io::Result<()>
        + Send
        + 'static,
    ) -> Result<(), Error> {
        let (dir, name) = split_remote(remote_path);
        self.copy_in(&dir, remote_path, move |tar| fill(tar, &name))
            .await?;
        self.fix_owner(remote_path).await
    }
}

/// `(directory, file name)` of a remote path, the directory made absolute.
fn split_remote(path: &str) -> (String, String) {
    let path = path.trim_end_matches('/');
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = if dir.is_empty() {
        "/".to_owned()
    } else if dir.starts_with('/') {
        dir.to_owned()
    } else {
        format!("/{dir}")
    };
    (dir, name.to_owned())
}

/// A regular file's tar header: `size` bytes, permission bits `mode`, owned by root, dated now.
fn file_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    h.set_mtime(now);
    h
}

/// Reads `pipe` (when there is one) into `buf`; `None` once it is closed.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(p) => p.read(buf).await.ok().filter(|n| *n > 0),
        None => std::future::pending().await,
    }
}

#[async_trait]
impl Communicator for DockerCommunicator {
    async fn exec(
        &self,
        command: &str,
        output: &mut (dyn for<'b> FnMut(Stream, &'b [u8]) + Send),
    ) -> Result<u32, super::Error> {
        // The command is not logged: it may carry secrets (environment variables).
        let args = argv::exec(
            &self.container,
            self.exec_user.as_deref(),
            self.pty,
            command,
        );
        let mut child = self
            .engine
            .spawn(&args, Stdio::null(), Stdio::piped())
            .map_err(Error::from)?;
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let (mut out_buf, mut err_buf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
        while out.is_some() || err.is_some() {
            tokio::select! {
                n = read_some(&mut out, &mut out_buf) => match n {
                    Some(n) => output(Stream::Stdout, &out_buf[..n]),
                    None => out = None,
                },
                n = read_some(&mut err, &mut err_buf) => match n {
                    Some(n) => output(Stream::Stderr, &err_buf[..n]),
                    None => err = None,
                },
            }
        }
        let status = child.wait().await.map_err(|source| {
            Error::Engine(engine::Error::Pipe {
                command: format!("{} exec", self.engine.program()),
                source,
            })
        })?;
        tracing::debug!(?status, "command in the container finished");
        match status.code() {
            Some(code) => Ok(code as u32),
            None => Err(Error::Engine(engine::Error::Failed {
                command: format!("{} exec", self.engine.program()),
                status: engine::status_text(&status),
                stderr: String::new(),
            })
            .into()),
        }
    }

    async fn upload(&self, remote_path: &str, data: &[u8], mode: u32) -> Result<(), super::Error> {
        tracing::debug!(path = remote_path, bytes = data.len(), "uploading");
        let data = data.to_vec();
        self.upload_entry(remote_path, move |tar, name| {
            let mut header = file_header(data.len() as u64, mode);
            tar.append_data(&mut header, name, data.as_slice())
        })
        .await
        .map_err(Into::into)
    }

    async fn upload_file(
        &self,
        remote_path: &str,
        local: &Path,
        mode: u32,
    ) -> Result<(), super::Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        let file = std::fs::File::open(local).map_err(local_err)?;
        let size = file.metadata().map_err(local_err)?.len();
        tracing::debug!(path = remote_path, local = %local.display(), "uploading file");
        self.upload_entry(remote_path, move |tar, name| {
            let mut header = file_header(size, mode);
            tar.append_data(&mut header, name, file)
        })
        .await
        .map_err(Into::into)
    }

    async fn upload_dir(&self, remote_dir: &str, local: &Path) -> Result<(), super::Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        if !std::fs::metadata(local).map_err(local_err)?.is_dir() {
            return Err(local_err(std::io::ErrorKind::NotADirectory.into()).into());
        }
        let (parent, name) = split_remote(remote_dir);
        let dir = format!("{}/{name}", parent.trim_end_matches('/'));
        self.run_as_root(&format!("mkdir -p {}", sh_quote(&dir)))
            .await
            .map_err(Error::from)?;
        let src = local.to_owned();
        self.copy_in(&dir, remote_dir, move |tar| tar.append_dir_all(".", &src))
            .await?;
        self.fix_owner(&dir).await.map_err(Into::into)
    }

    async fn download(&self, remote_path: &str, local: &Path) -> Result<(), super::Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        let dir = match local.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".kiln-download-")
            .tempfile_in(&dir)
            .map_err(local_err)?;
        let mut file = tmp.reopen().map_err(local_err)?;
        let what = remote_path.to_owned();
        self.copy_out(remote_path, move |archive| {
            let tar_err = |source| Error::Tar {
                path: what.clone(),
                source,
            };
            let mut entries = archive.entries().map_err(tar_err)?;
            let mut entry = entries
                .next()
                .ok_or_else(|| Error::NotAFile { path: what.clone() })?
                .map_err(tar_err)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(Error::NotAFile { path: what.clone() });
            }
            std::io::copy(&mut entry, &mut file).map_err(tar_err)?;
            Ok(())
        })
        .await?;
        tmp.persist(local).map_err(|e| local_err(e.error))?;
        Ok(())
    }

    async fn download_dir(&self, remote_dir: &str, local: &Path) -> Result<(), super::Error> {
        std::fs::create_dir_all(local).map_err(|source| Error::Local {
            path: local.to_owned(),
            source,
        })?;
        // `DIR/.` streams the directory's contents, not the directory.
        let contents = format!("{}/.", remote_dir.trim_end_matches('/'));
        let (dest, what) = (local.to_owned(), remote_dir.to_owned());
        self.copy_out(&contents, move |archive| {
            archive
                .unpack(&dest)
                .map_err(|source| Error::Tar { path: what, source })
        })
        .await
        .map_err(Into::into)
    }

    async fn close(self: Box<Self>) {}
}

/// Makes the same container's communicator again (a container does not reboot away).
pub struct DockerConnect(DockerCommunicator);

#[async_trait]
impl Connect for DockerConnect {
    async fn connect(&self, _timeout: Duration) -> Result<Box<dyn Communicator>, super::Error> {
        Ok(Box::new(self.0.clone()))
    }

    /// Packer's docker communicator has no host, port or user (`build.ConnType` is `docker`).
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            kind: "docker",
            host: String::new(),
            port: 0,
            user: String::new(),
            password: None,
            private_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_split_into_directory_and_name() {
        let cases = [
            ("/tmp/script.sh", "/tmp", "script.sh"),
            ("/top", "/", "top"),
            ("relative/x", "/relative", "x"),
            ("x", "/", "x"),
            ("/etc/app/", "/etc", "app"),
        ];
        for (path, dir, name) in cases {
            assert_eq!(split_remote(path), (dir.into(), name.into()), "{path}");
        }
    }
}
