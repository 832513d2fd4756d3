//! `ssh_file_transfer_method = "sftp"`: transfers over the guest's SFTP subsystem
//! (`russh-sftp`), one SFTP session per transfer.

use std::path::Path;

use russh::ChannelMsg;
use russh::client;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::FileAttributes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Client, Error};

/// Starts the `sftp` subsystem; the server's refusal (no `Subsystem sftp` line) is an error.
async fn session(handle: &client::Handle<Client>, path: &str) -> Result<SftpSession, Error> {
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|source| Error::Exec { source })?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|source| Error::Exec { source })?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) | None => {
                return Err(Error::SftpRefused);
            }
            Some(_) => {}
        }
    }
    SftpSession::new(channel.into_stream())
        .await
        .map_err(sftp_err(path))
}

fn sftp_err(path: &str) -> impl Fn(russh_sftp::client::error::Error) -> Error + '_ {
    move |source| Error::Sftp {
        path: path.to_owned(),
        source,
    }
}

fn mode_only(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode & 0o7777),
        ..FileAttributes::empty()
    }
}

/// Writes `data` to `remote_path` (created or truncated), then sets its mode.
pub(super) async fn upload<R: AsyncRead + Unpin>(
    handle: &client::Handle<Client>,
    remote_path: &str,
    mut data: R,
    mode: u32,
) -> Result<(), Error> {
    let sftp = session(handle, remote_path).await?;
    write_file(&sftp, remote_path, &mut data, mode).await?;
    let _ = sftp.close().await;
    Ok(())
}

async fn write_file<R: AsyncRead + Unpin>(
    sftp: &SftpSession,
    remote_path: &str,
    data: &mut R,
    mode: u32,
) -> Result<(), Error> {
    let io_err = |source: std::io::Error| Error::Sftp {
        path: remote_path.to_owned(),
        source: source.into(),
    };
    let mut file = sftp
        .create(remote_path)
        .await
        .map_err(sftp_err(remote_path))?;
    tokio::io::copy(data, &mut file).await.map_err(io_err)?;
    file.shutdown().await.map_err(io_err)?;
    sftp.set_metadata(remote_path, mode_only(mode))
        .await
        .map_err(sftp_err(remote_path))
}

/// Creates `path` and its missing parents (as `mkdir -p`).
async fn create_dirs(sftp: &SftpSession, path: &str) -> Result<(), Error> {
    let mut prefix = String::new();
    for part in path.split('/') {
        if part.is_empty() {
            if prefix.is_empty() {
                prefix.push('/');
            }
            continue;
        }
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        let exists = sftp.try_exists(prefix.as_str()).await.unwrap_or(false);
        if !exists {
            sftp.create_dir(prefix.as_str())
                .await
                .map_err(sftp_err(path))?;
        }
    }
    Ok(())
}

/// Copies the contents of `local` into `remote_dir` (created if missing).
pub(super) async fn upload_dir(
    handle: &client::Handle<Client>,
    remote_dir: &str,
    local: &Path,
) -> Result<(), Error> {
    let sftp = session(handle, remote_dir).await?;
    create_dirs(&sftp, remote_dir).await?;
    put_entries(&sftp, remote_dir, local).await?;
    let _ = sftp.close().await;
    Ok(())
}

async fn put_entries(sftp: &SftpSession, remote: &str, dir: &Path) -> Result<(), Error> {
    let local_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Local { path, source }
    };
    for (path, name) in super::local_entries(dir).await? {
        let target = format!("{}/{name}", remote.trim_end_matches('/'));
        let meta = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(local_err(&path))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        if meta.file_type().is_symlink() {
            let to = tokio::fs::read_link(&path)
                .await
                .map_err(local_err(&path))?;
            sftp.symlink(target.as_str(), to.to_string_lossy())
                .await
                .map_err(sftp_err(&target))?;
        } else if meta.is_dir() {
            if !sftp.try_exists(target.as_str()).await.unwrap_or(false) {
                sftp.create_dir(target.as_str())
                    .await
                    .map_err(sftp_err(&target))?;
            }
            Box::pin(put_entries(sftp, &target, &path)).await?;
            sftp.set_metadata(target.as_str(), mode_only(mode))
                .await
                .map_err(sftp_err(&target))?;
        } else if meta.is_file() {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(local_err(&path))?;
            let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
            write_file(sftp, &target, &mut reader, mode).await?;
        }
    }
    Ok(())
}

/// Copies the remote file `remote_path` into `out` (`local` names it in errors).
pub(super) async fn download<W: AsyncWrite + Unpin>(
    handle: &client::Handle<Client>,
    remote_path: &str,
    out: &mut W,
    local: &Path,
) -> Result<(), Error> {
    let sftp = session(handle, remote_path).await?;
    read_file(&sftp, remote_path, out, local).await?;
    let _ = sftp.close().await;
    Ok(())
}

async fn read_file<W: AsyncWrite + Unpin>(
    sftp: &SftpSession,
    remote_path: &str,
    out: &mut W,
    local: &Path,
) -> Result<(), Error> {
    let mut file = sftp
        .open(remote_path)
        .await
        .map_err(sftp_err(remote_path))?;
    // A read error and a write error look alike to `copy`; reading first into a buffer would
    // cost memory, so the message names both ends.
    tokio::io::copy(&mut file, out)
        .await
        .map_err(|source| Error::Local {
            path: local.to_owned(),
            source,
        })?;
    out.flush().await.map_err(|source| Error::Local {
        path: local.to_owned(),
        source,
    })
}

/// Copies the contents of the remote directory `remote_dir` into `local` (created if missing).
pub(super) async fn download_dir(
    handle: &client::Handle<Client>,
    remote_dir: &str,
    local: &Path,
) -> Result<(), Error> {
    let sftp = session(handle, remote_dir).await?;
    get_entries(&sftp, remote_dir, local).await?;
    let _ = sftp.close().await;
    Ok(())
}

async fn get_entries(sftp: &SftpSession, remote: &str, local: &Path) -> Result<(), Error> {
    let local_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Local { path, source }
    };
    tokio::fs::create_dir_all(local)
        .await
        .map_err(local_err(local))?;
    let mut entries: Vec<_> = sftp
        .read_dir(remote)
        .await
        .map_err(sftp_err(remote))?
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.contains('/') {
            continue;
        }
        let from = format!("{}/{name}", remote.trim_end_matches('/'));
        let to = local.join(&name);
        let meta = entry.metadata();
        // The file type bits (`S_IFMT`): russh-sftp's `is_regular` is also true for links.
        let kind = meta.permissions.unwrap_or(0) & 0o170000;
        if kind == 0o040000 {
            Box::pin(get_entries(sftp, &from, &to)).await?;
        } else if kind == 0o120000 {
            let target = sftp
                .read_link(from.as_str())
                .await
                .map_err(sftp_err(&from))?;
            let _ = tokio::fs::remove_file(&to).await;
            tokio::fs::symlink(&target, &to)
                .await
                .map_err(local_err(&to))?;
        } else if kind == 0o100000 {
            let file = tokio::fs::File::create(&to).await.map_err(local_err(&to))?;
            let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
            read_file(sftp, &from, &mut out, &to).await?;
            if let Some(mode) = meta.permissions {
                let perms = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777);
                tokio::fs::set_permissions(&to, perms)
                    .await
                    .map_err(local_err(&to))?;
            }
        }
    }
    Ok(())
}
