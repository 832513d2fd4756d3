//! How the connection reaches the machine — straight, through a SOCKS5 proxy (`ssh_proxy_*`)
//! or through a jump host (`ssh_bastion_*`) — and the port forwards it carries for the build
//! (`ssh_local_tunnels`, `ssh_remote_tunnels`).

use std::path::PathBuf;
use std::sync::Arc;

use russh::client;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use super::{Client, Error, SshOptions, SshTarget, authenticate, client_config};
use crate::types::Secret;

/// A jump host (`ssh_bastion_*`): kiln logs in there, then reaches the machine through a
/// `direct-tcpip` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bastion {
    pub host: String,
    /// `ssh_bastion_port` (default 22).
    pub port: u16,
    /// `ssh_bastion_username` (kiln's default: `ssh_username`).
    pub username: String,
    pub password: Option<Secret>,
    /// `ssh_bastion_private_key_file` (default: `ssh_private_key_file`).
    pub private_key_file: Option<PathBuf>,
    /// `ssh_bastion_certificate_file` (default: `ssh_certificate_file`).
    pub certificate_file: Option<PathBuf>,
    pub agent_auth: bool,
    /// `ssh_bastion_interactive`: keyboard-interactive prompts are answered (with
    /// `ssh_bastion_password`).
    pub interactive: bool,
}

/// A SOCKS5 proxy (`ssh_proxy_*`); names are resolved by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    /// `ssh_proxy_port` (default 1080).
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// One forward, Packer's `"PORT:HOST:PORT"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The port listened on: on 127.0.0.1 of this host (local) or on the machine's loopback
    /// (remote).
    pub listen: u16,
    /// Where connections go: seen from the machine (local) or from this host (remote).
    pub host: String,
    pub port: u16,
}

impl Tunnel {
    /// Parses `"PORT:HOST:PORT"`.
    pub fn parse(spec: &str) -> Result<Tunnel, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let [listen, host, port] = parts[..] else {
            return Err(format!(
                "`{spec}` is not of the form `PORT:HOST:PORT` (e.g. `8080:localhost:80`)"
            ));
        };
        let port_of = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{s}` in `{spec}` is not a port (1 to 65535)"))
        };
        if host.is_empty() {
            return Err(format!("`{spec}` has no host"));
        }
        Ok(Tunnel {
            listen: port_of(listen)?,
            host: host.to_owned(),
            port: port_of(port)?,
        })
    }

    fn spec(&self) -> String {
        format!("{}:{}:{}", self.listen, self.host, self.port)
    }
}

/// A byte stream the SSH session runs over.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// The stream to `target`, and the jump host's session when there is one (kept open while
/// the connection lives).
pub(super) async fn open(
    target: &SshTarget,
    addr: &str,
) -> Result<(Box<dyn Transport>, Option<client::Handle<Client>>), Error> {
    let o = &target.options;
    if let Some(proxy) = &o.proxy {
        let via = format!("{}:{}", proxy.host, proxy.port);
        let to = (target.host.as_str(), target.port);
        let stream = match (&proxy.username, &proxy.password) {
            (Some(user), password) => {
                let password = password.as_ref().map_or("", |p| p.expose());
                tokio_socks::tcp::Socks5Stream::connect_with_password(
                    via.as_str(),
                    to,
                    user,
                    password,
                )
                .await
            }
            (None, _) => tokio_socks::tcp::Socks5Stream::connect(via.as_str(), to).await,
        }
        .map_err(|source| Error::Proxy {
            proxy: via.clone(),
            addr: addr.to_owned(),
            source,
        })?;
        let _ = stream.set_nodelay(true);
        return Ok((Box::new(stream), None));
    }
    if let Some(bastion) = &o.bastion {
        let jump = bastion_target(bastion, o)?;
        let jump_addr = jump.addr();
        let wrap = |e: Error| Error::Bastion {
            addr: jump_addr.clone(),
            source: Box::new(e),
        };
        let mut handle = handshake(&jump, Box::new(tcp(&jump, &jump_addr).await.map_err(wrap)?))
            .await
            .map_err(wrap)?;
        authenticate(&mut handle, &jump).await.map_err(wrap)?;
        let channel = handle
            .channel_open_direct_tcpip(target.host.as_str(), u32::from(target.port), "127.0.0.1", 0)
            .await
            .map_err(|source| Error::Forward {
                what: format!("{addr} through the jump host {jump_addr}"),
                source,
            })?;
        return Ok((Box::new(channel.into_stream()), Some(handle)));
    }
    Ok((Box::new(tcp(target, addr).await?), None))
}

async fn tcp(target: &SshTarget, addr: &str) -> Result<tokio::net::TcpStream, Error> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The SSH handshake over `stream`.
pub(super) async fn handshake(
    target: &SshTarget,
    stream: Box<dyn Transport>,
) -> Result<client::Handle<Client>, Error> {
    let config = Arc::new(client_config(target));
    let handler = Client::for_target(target);
    client::connect_stream(config, stream, handler)
        .await
        .map_err(|source| Error::Handshake {
            addr: target.addr(),
            source,
        })
}

/// Where and as whom to log in on the jump host.
fn bastion_target(b: &Bastion, o: &SshOptions) -> Result<SshTarget, Error> {
    let private_key = match &b.private_key_file {
        Some(path) => Some(super::load_private_key(path)?),
        None => None,
    };
    Ok(SshTarget {
        host: b.host.clone(),
        port: b.port,
        username: b.username.clone(),
        private_key,
        password: b.password.clone(),
        pty: false,
        read_write_timeout: None,
        options: SshOptions {
            agent_auth: b.agent_auth,
            certificate_file: b.certificate_file.clone(),
            keyboard_interactive: b.interactive,
            agent_forwarding: false,
            keep_alive_interval: o.keep_alive_interval,
            ciphers: o.ciphers.clone(),
            kex: o.kex.clone(),
            ..SshOptions::default()
        },
    })
}

/// The forwards of one connection; they stop when it is dropped.
#[derive(Default)]
pub(super) struct Tunnels {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Tunnels {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts `ssh_local_tunnels` (listeners on 127.0.0.1 here) and asks the server for
/// `ssh_remote_tunnels` (the handler connects what arrives, see [`Client`]).
pub(super) async fn start_tunnels(
    handle: &Arc<client::Handle<Client>>,
    o: &SshOptions,
) -> Result<Tunnels, Error> {
    let mut tunnels = Tunnels::default();
    for t in &o.local_tunnels {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", t.listen))
            .await
            .map_err(|source| Error::Tunnel {
                spec: t.spec(),
                source,
            })?;
        let handle = Arc::clone(handle);
        let t = t.clone();
        tunnels.tasks.push(tokio::spawn(async move {
            while let Ok((mut socket, peer)) = listener.accept().await {
                let handle = Arc::clone(&handle);
                let t = t.clone();
                tokio::spawn(async move {
                    let channel = handle
                        .channel_open_direct_tcpip(
                            t.host.as_str(),
                            u32::from(t.port),
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await;
                    match channel {
                        Ok(channel) => {
                            let mut stream = channel.into_stream();
                            let _ = tokio::io::copy_bidirectional(&mut socket, &mut stream).await;
                        }
                        Err(e) => tracing::warn!(tunnel = %t.spec(), error = %e,
                            "the machine refused a local tunnel's connection"),
                    }
                });
            }
        }));
    }
    for t in &o.remote_tunnels {
        handle
            .tcpip_forward("localhost", u32::from(t.listen))
            .await
            .map_err(|source| Error::Forward {
                what: format!("remote tunnel `{}`", t.spec()),
                source,
            })?;
    }
    Ok(tunnels)
}

/// Connects a connection the server forwarded (`ssh_remote_tunnels`) to its local end.
pub(super) fn forwarded(channel: russh::Channel<client::Msg>, to: (String, u16)) {
    tokio::spawn(async move {
        match tokio::net::TcpStream::connect((to.0.as_str(), to.1)).await {
            Ok(mut socket) => {
                let mut stream = channel.into_stream();
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut stream).await;
            }
            Err(e) => tracing::warn!(to = %format!("{}:{}", to.0, to.1), error = %e,
                "cannot connect a remote tunnel's connection"),
        }
    });
}

/// Connects an agent channel the server opened to kiln's agent.
pub(super) fn agent(channel: russh::Channel<client::Msg>, socket: PathBuf) {
    tokio::spawn(async move {
        match tokio::net::UnixStream::connect(&socket).await {
            Ok(mut agent) => {
                let mut stream = channel.into_stream();
                let _ = tokio::io::copy_bidirectional(&mut agent, &mut stream).await;
            }
            Err(e) => tracing::warn!(socket = %socket.display(), error = %e,
                "cannot reach the SSH agent for a forwarded request"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_specs() {
        assert_eq!(
            Tunnel::parse("8080:localhost:80"),
            Ok(Tunnel {
                listen: 8080,
                host: "localhost".into(),
                port: 80
            })
        );
        for bad in ["8080:80", "0:h:1", "x:h:1", "1::2", "1:h:70000", "1:a:b:2"] {
            assert!(Tunnel::parse(bad).is_err(), "{bad}");
        }
    }
}
