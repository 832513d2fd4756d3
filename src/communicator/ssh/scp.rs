//! `ssh_file_transfer_method = "scp"`: transfers in the scp protocol, with the guest's `scp`
//! run as the other end over an `exec` channel (`scp -t` receives, `scp -f` sends), as Packer
//! does. Records: `C<mode> <size> <name>` (a file), `D<mode> 0 <name>` … `E` (a directory);
//! every step is answered by one byte: 0 (fine), 1 or 2 followed by a message line (refused).

use std::path::{Path, PathBuf};

use russh::client;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Client, Error, sh_quote};

/// The remote `scp` on an exec channel, read and written record by record.
struct Remote {
    /// The remote path, for messages.
    path: String,
    read: ChannelReadHalf,
    write: ChannelWriteHalf<client::Msg>,
    buf: Vec<u8>,
    pos: usize,
    stderr: Vec<u8>,
    status: Option<u32>,
    closed: bool,
}

impl Remote {
    /// Runs `command` (an `scp -t`/`-f`) on a new session channel.
    async fn start(
        handle: &client::Handle<Client>,
        path: &str,
        command: &str,
    ) -> Result<Remote, Error> {
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|source| Error::Exec { source })?;
        channel
            .exec(true, command)
            .await
            .map_err(|source| Error::Exec { source })?;
        let (read, write) = channel.split();
        Ok(Remote {
            path: path.to_owned(),
            read,
            write,
            buf: Vec::new(),
            pos: 0,
            stderr: Vec::new(),
            status: None,
            closed: false,
        })
    }

    /// Waits for more stdout; false once the channel closed.
    async fn fill(&mut self) -> bool {
        while !self.closed {
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                    self.buf.extend_from_slice(&data);
                    return true;
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => self.status = Some(exit_status),
                Some(ChannelMsg::Close) | None => self.closed = true,
                Some(_) => {}
            }
        }
        false
    }

    /// The error when the remote `scp` stopped answering: its exit status and stderr.
    fn ended(&self) -> Error {
        Error::ScpEnded {
            path: self.path.clone(),
            status: self.status,
            stderr: String::from_utf8_lossy(&self.stderr).trim().to_owned(),
        }
    }

    async fn byte(&mut self) -> Result<u8, Error> {
        while self.pos >= self.buf.len() {
            if !self.fill().await {
                return Err(self.ended());
            }
        }
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    /// One line, without its `\n`.
    async fn line(&mut self) -> Result<String, Error> {
        let mut line = Vec::new();
        loop {
            match self.byte().await? {
                b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
                b => line.push(b),
            }
        }
    }

    /// Reads the answer to the last step: 0, or a refusal with its message.
    async fn ack(&mut self) -> Result<(), Error> {
        match self.byte().await? {
            0 => Ok(()),
            1 | 2 => {
                let message = self.line().await?;
                Err(self.refused(message))
            }
            other => Err(self.refused(format!("unexpected answer byte {other}"))),
        }
    }

    fn refused(&self, message: String) -> Error {
        Error::Scp {
            path: self.path.clone(),
            message,
        }
    }

    async fn send<R: AsyncRead + Unpin>(&self, data: R) -> Result<(), Error> {
        self.write.data(data).await.map_err(|source| Error::Upload {
            path: self.path.clone(),
            source,
        })
    }

    /// Copies `size` bytes of file content, then its trailing answer byte, into `out`.
    async fn receive<W: AsyncWrite + Unpin>(
        &mut self,
        mut size: u64,
        out: &mut W,
        local: &Path,
    ) -> Result<(), Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        while size > 0 {
            if self.pos >= self.buf.len() && !self.fill().await {
                return Err(self.ended());
            }
            let n = (self.buf.len() - self.pos).min(usize::try_from(size).unwrap_or(usize::MAX));
            out.write_all(&self.buf[self.pos..self.pos + n])
                .await
                .map_err(local_err)?;
            self.pos += n;
            size -= n as u64;
        }
        out.flush().await.map_err(local_err)?;
        self.ack().await
    }

    /// Ends the transfer: EOF, then the remote `scp`'s exit status must be 0.
    async fn finish(mut self) -> Result<(), Error> {
        let _ = self.write.eof().await;
        while self.fill().await {}
        match self.status {
            Some(0) => Ok(()),
            _ => Err(self.ended()),
        }
    }
}

/// A `C` record for a file of `size` bytes named `name`.
fn file_record(mode: u32, size: u64, name: &str) -> String {
    format!("C{:04o} {size} {name}\n", mode & 0o7777)
}

/// The last path component of `remote` (the name the record carries).
fn base_name(remote: &str) -> &str {
    remote
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("file")
}

/// Parses a `C`/`D` record: mode, size, name.
fn parse_record(line: &str) -> Option<(u32, u64, &str)> {
    let mut parts = line.get(1..)?.splitn(3, ' ');
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    let size = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    // A name is one component: never `..` or a path (a remote side could otherwise write
    // anywhere below or above the download directory).
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    Some((mode, size, name))
}

/// Writes `size` bytes from `data` to `remote_path` with mode `mode` (`scp -p` applies the
/// mode exactly, umask aside, also to an existing file).
pub(super) async fn upload<R: AsyncRead + Unpin>(
    handle: &client::Handle<Client>,
    remote_path: &str,
    data: R,
    size: u64,
    mode: u32,
) -> Result<(), Error> {
    let command = format!("scp -p -t -- {}", sh_quote(remote_path));
    let mut remote = Remote::start(handle, remote_path, &command).await?;
    remote.ack().await?;
    remote
        .send(file_record(mode, size, base_name(remote_path)).as_bytes())
        .await?;
    remote.ack().await?;
    remote
        .send(tokio::io::AsyncReadExt::take(data, size))
        .await?;
    remote.send(&[0u8][..]).await?;
    remote.ack().await?;
    remote.finish().await
}

/// Copies the contents of the local directory `local` into `remote_dir`, which `mkdir -p`
/// made first.
pub(super) async fn upload_dir(
    handle: &client::Handle<Client>,
    remote_dir: &str,
    local: &Path,
) -> Result<(), Error> {
    let command = format!("scp -r -p -t -- {}", sh_quote(remote_dir));
    let mut remote = Remote::start(handle, remote_dir, &command).await?;
    remote.ack().await?;
    send_entries(&mut remote, local).await?;
    remote.finish().await
}

/// Sends the entries of `dir` (files as `C`, directories as `D` … `E`), in name order.
async fn send_entries(remote: &mut Remote, dir: &Path) -> Result<(), Error> {
    let local_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Local { path, source }
    };
    for (path, name) in super::local_entries(dir).await? {
        // Symbolic links are followed: scp has no record for them.
        let meta = tokio::fs::metadata(&path).await.map_err(local_err(&path))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        if meta.is_dir() {
            remote
                .send(format!("D{:04o} 0 {name}\n", mode & 0o7777).as_bytes())
                .await?;
            remote.ack().await?;
            Box::pin(send_entries(remote, &path)).await?;
            remote.send(&b"E\n"[..]).await?;
            remote.ack().await?;
        } else if meta.is_file() {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(local_err(&path))?;
            remote
                .send(file_record(mode, meta.len(), &name).as_bytes())
                .await?;
            remote.ack().await?;
            let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
            remote
                .send(tokio::io::AsyncReadExt::take(reader, meta.len()))
                .await?;
            remote.send(&[0u8][..]).await?;
            remote.ack().await?;
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
    let command = format!("scp -f -- {}", sh_quote(remote_path));
    let mut remote = Remote::start(handle, remote_path, &command).await?;
    remote.send(&[0u8][..]).await?;
    let line = next_record(&mut remote).await?;
    let Some((_, size, _)) = line.starts_with('C').then(|| parse_record(&line)).flatten() else {
        return Err(remote.refused(format!("expected a file record, got `{line}`")));
    };
    remote.send(&[0u8][..]).await?;
    remote.receive(size, out, local).await?;
    remote.send(&[0u8][..]).await?;
    remote.finish().await
}

/// Reads the next record line; a refusal (1 or 2 and a message) is an error.
async fn next_record(remote: &mut Remote) -> Result<String, Error> {
    match remote.byte().await? {
        1 | 2 => {
            let message = remote.line().await?;
            Err(remote.refused(message))
        }
        b => {
            let rest = remote.line().await?;
            Ok(format!("{}{rest}", char::from(b)))
        }
    }
}

/// Copies the contents of the remote directory `remote_dir` into `local` (created if missing).
pub(super) async fn download_dir(
    handle: &client::Handle<Client>,
    remote_dir: &str,
    local: &Path,
) -> Result<(), Error> {
    let command = format!("scp -r -f -- {}", sh_quote(remote_dir));
    let mut remote = Remote::start(handle, remote_dir, &command).await?;
    remote.send(&[0u8][..]).await?;
    // The first record is the directory itself: its contents go into `local`.
    let mut stack: Vec<PathBuf> = Vec::new();
    loop {
        let line = next_record(&mut remote).await?;
        match line.as_bytes().first() {
            Some(b'D') => {
                let Some((_, _, name)) = parse_record(&line) else {
                    return Err(remote.refused(format!("bad directory record `{line}`")));
                };
                let dir = match stack.last() {
                    Some(parent) => parent.join(name),
                    None => local.to_owned(),
                };
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|source| Error::Local {
                        path: dir.clone(),
                        source,
                    })?;
                stack.push(dir);
                remote.send(&[0u8][..]).await?;
            }
            Some(b'C') => {
                let (Some((mode, size, name)), Some(parent)) = (parse_record(&line), stack.last())
                else {
                    return Err(remote.refused(format!("bad file record `{line}`")));
                };
                let path = parent.join(name);
                let local_err = |source| Error::Local {
                    path: path.clone(),
                    source,
                };
                let file = tokio::fs::File::create(&path).await.map_err(local_err)?;
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
                remote.send(&[0u8][..]).await?;
                remote.receive(size, &mut out, &path).await?;
                let perms = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777);
                tokio::fs::set_permissions(&path, perms)
                    .await
                    .map_err(local_err)?;
                remote.send(&[0u8][..]).await?;
            }
            Some(b'E') => {
                stack.pop();
                remote.send(&[0u8][..]).await?;
                if stack.is_empty() {
                    break;
                }
            }
            // Times (`T`): only sent with `-p`, which kiln does not ask for.
            _ => return Err(remote.refused(format!("unexpected record `{line}`"))),
        }
    }
    remote.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(file_record(0o100644, 12, "a b"), "C0644 12 a b\n");
        assert_eq!(file_record(0o4755, 0, "x"), "C4755 0 x\n");
        assert_eq!(base_name("/tmp/dir/file.sh"), "file.sh");
        assert_eq!(base_name("/tmp/dir/"), "dir");
        assert_eq!(base_name("/"), "file");
        let rows = [
            ("C0644 12 a b", Some((0o644, 12, "a b"))),
            ("D0755 0 sub", Some((0o755, 0, "sub"))),
            ("C0644 1 ..", None),
            ("C0644 1 a/b", None),
            ("C0644 x a", None),
            ("C", None),
        ];
        for (line, want) in rows {
            assert_eq!(parse_record(line), want, "{line}");
        }
    }
}
