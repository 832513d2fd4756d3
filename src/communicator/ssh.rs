//! The SSH communicator, on `russh`: connect with a password, run commands with their output
//! streamed, and upload files without needing `sftp-server` or `scp` on the guest.
//!
//! [`wait_for_ssh`] is how a build learns that the installed system is up: it retries until the
//! guest's sshd accepts the credentials, and stops early when QEMU dies.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, MethodKind};
use tokio_util::sync::CancellationToken;

pub use super::sh_quote;
use super::{Communicator, Connect, Endpoint, Stream};
use crate::types::Secret;
use crate::wait::{self, Attempt};

mod route;
mod scp;
mod sftp;

pub use route::{Bastion, Proxy, Tunnel};

/// How often [`wait_for_ssh`] starts a new attempt. An attempt on a port nobody listens on
/// costs a refused TCP connect, so polling often is cheap and gets the first command running
/// within a fraction of a second of sshd starting (Packer waits up to 5 s).
const ATTEMPT_INTERVAL: Duration = Duration::from_millis(250);

/// Ciphers in order of preference: AES-GCM first, as it runs on the CPU's AES instructions
/// (and measured faster than ChaCha20 for uploads), then russh's defaults.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_CTR,
];

/// How long one attempt of [`wait_for_ssh`] may take. Longer than the interval: a guest under
/// TCG emulation can need several seconds for the key exchange.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keyboard-interactive rounds answered before giving up (a server may ask again and again).
const MAX_KEYBOARD_INTERACTIVE_ROUNDS: usize = 5;

/// Errors of the SSH communicator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the TCP connection failed.
    #[error("Cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The SSH handshake (version exchange, key exchange) failed.
    #[error("SSH handshake with {addr} failed")]
    Handshake {
        addr: String,
        #[source]
        source: russh::Error,
    },
    /// The protocol broke down while authenticating.
    #[error("SSH authentication as `{user}` failed")]
    Authenticate {
        user: String,
        #[source]
        source: russh::Error,
    },
    /// The server refused the credentials.
    #[error("SSH server refused the credentials of user `{user}`")]
    AuthenticationFailed { user: String },
    /// One connection attempt (TCP, handshake, authentication) took too long.
    #[error("Connecting to {addr} took longer than {limit:?}")]
    ConnectTimeout { addr: String, limit: Duration },
    /// [`wait_for_ssh`] ran out of time; the last attempt's error is the source.
    #[error("Timed out waiting for SSH on {addr} after {waited:?}")]
    Timeout {
        addr: String,
        waited: Duration,
        #[source]
        last: Option<Box<Error>>,
    },
    /// The server refused the credentials `ssh_handshake_attempts` times.
    #[error("SSH server refused the credentials {attempts} times (ssh_handshake_attempts)")]
    HandshakeAttempts {
        attempts: u32,
        #[source]
        last: Box<Error>,
    },
    /// [`wait_for_ssh`] was stopped by its `abort` future (e.g. QEMU exited).
    #[error("Stopped waiting for SSH: {reason}")]
    Aborted { reason: String },
    /// [`wait_for_ssh`] was cancelled (e.g. Ctrl-C).
    #[error("Cancelled while waiting for SSH")]
    Cancelled,
    /// Opening a session channel or sending the command failed.
    #[error("Cannot run remote command")]
    Exec {
        #[source]
        source: russh::Error,
    },
    /// The server refused the `exec` request.
    #[error("SSH server refused to run the command")]
    ExecRefused,
    /// The remote command was killed by a signal.
    #[error("Remote command was killed by signal {signal}")]
    Signal { signal: String },
    /// Sending a file's bytes failed.
    #[error("Cannot upload to {path}")]
    Upload {
        path: String,
        #[source]
        source: russh::Error,
    },
    /// The remote side of an upload (`cat`, `chmod`) failed.
    #[error("Uploading to {path} failed with exit status {status}: {stderr}")]
    UploadStatus {
        path: String,
        status: u32,
        stderr: String,
    },
    /// The channel closed without an exit status (the guest rebooted or powered off, or the
    /// connection dropped).
    #[error("SSH connection closed before the command finished")]
    Disconnected,
    /// A local file or directory of a transfer could not be read or written.
    #[error("Cannot access local `{}`", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The remote side of a download (`cat`, `tar`) failed.
    #[error("Downloading {path} failed with exit status {status}: {stderr}")]
    DownloadStatus {
        path: String,
        status: u32,
        stderr: String,
    },
    /// The temporary key pair could not be made.
    #[error("Cannot make a temporary {kind} key pair: {reason}")]
    GenerateKey { kind: &'static str, reason: String },
    /// The remote `scp` refused a step of a transfer.
    #[error("scp of {path} failed: {message}")]
    Scp { path: String, message: String },
    /// The remote `scp` ended before the transfer was done (e.g. no `scp` on the machine).
    #[error("scp of {path} ended early (exit status {}): {stderr}", status.map_or("none".to_owned(), |s| s.to_string()))]
    ScpEnded {
        path: String,
        status: Option<u32>,
        stderr: String,
    },
    /// The server has no SFTP subsystem.
    #[error("SSH server refused the `sftp` subsystem (no `Subsystem sftp` in its sshd_config?)")]
    SftpRefused,
    /// An SFTP request failed.
    #[error("SFTP transfer of {path} failed")]
    Sftp {
        path: String,
        #[source]
        source: russh_sftp::client::error::Error,
    },
    /// The SOCKS5 proxy could not connect kiln to the machine.
    #[error("Cannot connect to {addr} through the SOCKS proxy {proxy}")]
    Proxy {
        proxy: String,
        addr: String,
        #[source]
        source: tokio_socks::Error,
    },
    /// Logging in on the jump host failed.
    #[error("Cannot use the jump host {addr} (ssh_bastion_host)")]
    Bastion {
        addr: String,
        #[source]
        source: Box<Error>,
    },
    /// The server refused a forward (a `direct-tcpip` channel or a remote tunnel).
    #[error("SSH server refused to forward {what}")]
    Forward {
        what: String,
        #[source]
        source: russh::Error,
    },
    /// A local tunnel's port could not be listened on.
    #[error("Cannot listen on 127.0.0.1 for the local tunnel `{spec}`")]
    Tunnel {
        spec: String,
        #[source]
        source: std::io::Error,
    },
    /// The SSH agent could not be reached or used.
    #[error("Cannot use the SSH agent ({what})")]
    Agent {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `ssh_keypair_name` names no key of the agent.
    #[error("The SSH agent has no key named `{name}` (ssh_keypair_name); it has: {have}")]
    AgentKeyMissing { name: String, have: String },
    /// The certificate file could not be read or decoded.
    #[error("Cannot load the SSH certificate `{}`", path.display())]
    LoadCertificate {
        path: PathBuf,
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    /// The private key file could not be read or decoded.
    #[error("Cannot load the SSH private key `{}`", path.display())]
    LoadKey {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },
}

/// SSH settings (`ssh_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// `ssh_username` (required with the SSH communicator).
    pub username: String,
    /// `ssh_password`; sensitive, never logged.
    pub password: Option<Secret>,
    /// `ssh_port`: the guest's port (default 22).
    pub port: u16,
    /// `ssh_timeout` (default 5m).
    pub timeout: Duration,
    /// `ssh_private_key_file` (resolved against the working directory). Without it and
    /// without a password, kiln generates a temporary ed25519 key pair for the build.
    pub private_key_file: Option<PathBuf>,
    /// `pause_before_connecting` (default 0): wait this long before the first attempt.
    pub pause_before_connecting: Duration,
    /// `ssh_clear_authorized_keys`: remove the temporary key from the guest before shutdown.
    pub clear_authorized_keys: bool,
    /// `ssh_pty`: run commands on a pseudo-terminal.
    pub pty: bool,
    /// `host_port_min` / `host_port_max` (default 2222 / 4444): host side of the forward.
    pub host_port_min: u16,
    pub host_port_max: u16,
    /// `ssh_read_write_timeout`: a connection on which nothing arrives for this long (kiln
    /// sends keep-alives every 5 s, which a live server answers) is given up. Default off.
    pub read_write_timeout: Option<Duration>,
    /// `ssh_handshake_attempts`, `ssh_keep_alive_interval`, `ssh_ciphers`,
    /// `ssh_key_exchange_algorithms`.
    pub options: SshOptions,
}

impl SshConfig {
    /// The target to connect to `host:port` with these settings: the key of
    /// `ssh_private_key_file` when set (loaded now), else `temporary_key` (the build's
    /// temporary key pair), and the password.
    pub fn target(
        &self,
        host: String,
        port: u16,
        temporary_key: Option<&Arc<PrivateKey>>,
    ) -> Result<SshTarget, Error> {
        let private_key = match &self.private_key_file {
            Some(path) => Some(load_private_key(path)?),
            None => temporary_key.cloned(),
        };
        Ok(SshTarget {
            host,
            port,
            username: self.username.clone(),
            private_key,
            password: self.password.clone(),
            pty: self.pty,
            read_write_timeout: self.read_write_timeout,
            options: self.options.clone(),
        })
    }
}

/// How kiln connects, beyond where and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `ssh_handshake_attempts`: [`wait_for_ssh`] gives up once the server has refused the
    /// credentials this many times. `None` (kiln's default): refusals are retried until the
    /// timeout, since an installer's own sshd may refuse them before the installed system runs.
    pub handshake_attempts: Option<u32>,
    /// `ssh_keep_alive_interval` (default 5s; `None`, from a negative value: no keep-alives).
    pub keep_alive_interval: Option<Duration>,
    /// `ssh_ciphers`, in order of preference; empty: kiln's [`CIPHERS`].
    pub ciphers: Vec<String>,
    /// `ssh_key_exchange_algorithms`, in order of preference; empty: russh's defaults.
    pub kex: Vec<String>,
    /// The build's temporary key pair, when the template gives no password or key file.
    pub temporary_key_pair: TemporaryKeyPair,
    /// `ssh_file_transfer_method`: how files are copied.
    pub transfer: TransferMethod,
    /// `ssh_agent_auth`: also try the keys of the agent at `SSH_AUTH_SOCK`.
    pub agent_auth: bool,
    /// `ssh_keypair_name`: with `agent_auth`, only the agent's key with this comment.
    pub keypair_name: Option<String>,
    /// Not `ssh_disable_agent_forwarding` (default on, as Packer): when kiln has an agent
    /// (`SSH_AUTH_SOCK`), commands on the machine can use it.
    pub agent_forwarding: bool,
    /// `ssh_certificate_file`: an OpenSSH user certificate for the private key.
    pub certificate_file: Option<PathBuf>,
    /// Whether keyboard-interactive prompts are answered with the password (always for the
    /// machine, as Packer; for a jump host only with `ssh_bastion_interactive`).
    pub keyboard_interactive: bool,
    /// `ssh_bastion_*`: reach the machine through this jump host.
    pub bastion: Option<Box<Bastion>>,
    /// `ssh_proxy_*`: reach the machine through this SOCKS5 proxy.
    pub proxy: Option<Box<Proxy>>,
    /// `ssh_local_tunnels`: `PORT:HOST:PORT`, listening on 127.0.0.1 here while connected.
    pub local_tunnels: Vec<Tunnel>,
    /// `ssh_remote_tunnels`: `PORT:HOST:PORT`, listening on the machine's loopback.
    pub remote_tunnels: Vec<Tunnel>,
}

/// How files are copied to and from the machine (`ssh_file_transfer_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// Unset: a remote `cat`/`tar` over an `exec` channel; needs only a shell, `cat` and
    /// `tar` on the machine (kiln's default, the fastest).
    #[default]
    Exec,
    /// `scp`: the scp protocol with the machine's `scp -t`/`-f` (Packer's default).
    Scp,
    /// `sftp`: the machine's SFTP subsystem.
    Sftp,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            handshake_attempts: None,
            keep_alive_interval: Some(Duration::from_secs(5)),
            ciphers: Vec::new(),
            kex: Vec::new(),
            temporary_key_pair: TemporaryKeyPair::default(),
            transfer: TransferMethod::Exec,
            agent_auth: false,
            keypair_name: None,
            agent_forwarding: true,
            certificate_file: None,
            keyboard_interactive: true,
            bastion: None,
            proxy: None,
            local_tunnels: Vec::new(),
            remote_tunnels: Vec::new(),
        }
    }
}

/// The cipher names kiln can use (`ssh_ciphers`).
pub fn cipher_names() -> Vec<&'static str> {
    russh::cipher::ALL_CIPHERS
        .iter()
        .map(|n| n.as_ref())
        .filter(|n| !matches!(*n, "clear" | "none"))
        .collect()
}

/// The key exchange names kiln can use (`ssh_key_exchange_algorithms`).
pub fn kex_names() -> Vec<&'static str> {
    russh::kex::ALL_KEX_ALGORITHMS
        .iter()
        .map(|n| n.as_ref())
        .filter(|n| *n != "none")
        .collect()
}

/// russh's client configuration for `target`.
fn client_config(target: &SshTarget) -> client::Config {
    let mut preferred = russh::Preferred {
        cipher: std::borrow::Cow::Borrowed(CIPHERS),
        ..Default::default()
    };
    let o = &target.options;
    if !o.ciphers.is_empty() {
        let names: Vec<russh::cipher::Name> = russh::cipher::ALL_CIPHERS
            .iter()
            .copied()
            .copied()
            .filter(|n| o.ciphers.iter().any(|c| c == n.as_ref()))
            .collect();
        // In the template's order of preference.
        let ordered = o
            .ciphers
            .iter()
            .filter_map(|c| names.iter().find(|n| n.as_ref() == c).copied())
            .collect::<Vec<_>>();
        preferred.cipher = std::borrow::Cow::Owned(ordered);
    }
    if !o.kex.is_empty() {
        let ordered = o
            .kex
            .iter()
            .filter_map(|k| {
                russh::kex::ALL_KEX_ALGORITHMS
                    .iter()
                    .find(|n| n.as_ref() == k)
                    .map(|n| **n)
            })
            .collect::<Vec<_>>();
        preferred.kex = std::borrow::Cow::Owned(ordered);
    }
    client::Config {
        keepalive_interval: o.keep_alive_interval,
        inactivity_timeout: target.read_write_timeout,
        preferred,
        ..Default::default()
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Tried first, when set (`ssh_private_key_file`, or the build's temporary key pair).
    pub private_key: Option<Arc<PrivateKey>>,
    /// Tried with `password`, then `keyboard-interactive`. With neither a key nor a password,
    /// the `none` method is tried.
    pub password: Option<Secret>,
    /// `ssh_pty`: run commands on a pseudo-terminal (some `sudo` setups require one); stdout
    /// and stderr then arrive merged.
    pub pty: bool,
    /// `ssh_read_write_timeout` (see [`SshConfig::read_write_timeout`]).
    pub read_write_timeout: Option<Duration>,
    /// See [`SshOptions`].
    pub options: SshOptions,
}

/// Loads `ssh_private_key_file` (OpenSSH or PEM, unencrypted).
pub fn load_private_key(path: &Path) -> Result<Arc<PrivateKey>, Error> {
    russh::keys::load_secret_key(path, None)
        .map(Arc::new)
        .map_err(|source| Error::LoadKey {
            path: path.to_owned(),
            source,
        })
}

/// The build's temporary key pair (`temporary_key_pair_type`, `_bits`, `_name`) and its
/// public key in `authorized_keys` form. The default is an ed25519 key named `kiln`.
pub fn temporary_key_pair() -> (Arc<PrivateKey>, String) {
    make_key_pair(&TemporaryKeyPair::default()).unwrap_or_else(|_| unreachable_ed25519())
}

/// An ed25519 key pair cannot fail to be made; this keeps the signature simple.
fn unreachable_ed25519() -> (Arc<PrivateKey>, String) {
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
        &seed,
    ));
    let public = key.public_key().to_openssh().unwrap_or_default();
    (Arc::new(key), public)
}

/// Makes the key pair `spec` describes.
pub fn make_key_pair(spec: &TemporaryKeyPair) -> Result<(Arc<PrivateKey>, String), Error> {
    use russh::keys::ssh_key::EcdsaCurve;
    use russh::keys::ssh_key::private::{EcdsaKeypair, Ed25519Keypair, RsaKeypair};
    let mut rng = rand::rng();
    let generate = |e: russh::keys::ssh_key::Error| Error::GenerateKey {
        kind: spec.kind.name(),
        reason: e.to_string(),
    };
    let mut key = match spec.kind {
        KeyKind::Ed25519 => PrivateKey::from(Ed25519Keypair::random(&mut rng)),
        KeyKind::Rsa => PrivateKey::from(
            RsaKeypair::random(&mut rng, spec.bits.unwrap_or(4096) as usize).map_err(generate)?,
        ),
        KeyKind::Ecdsa => {
            let curve = match spec.bits.unwrap_or(521) {
                256 => EcdsaCurve::NistP256,
                384 => EcdsaCurve::NistP384,
                _ => EcdsaCurve::NistP521,
            };
            PrivateKey::from(EcdsaKeypair::random(&mut rng, curve).map_err(generate)?)
        }
    };
    key.set_comment(spec.name.as_str());
    let public = key.public_key().to_openssh().map_err(generate)?;
    Ok((Arc::new(key), public))
}

/// The kinds of temporary key pair kiln makes (`temporary_key_pair_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ecdsa,
    Ed25519,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::Ecdsa => "ecdsa",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// `temporary_key_pair_type`, `temporary_key_pair_bits`, `temporary_key_pair_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryKeyPair {
    pub kind: KeyKind,
    /// RSA: the modulus size (default 4096); ECDSA: 256, 384 or 521 (default 521).
    pub bits: Option<u32>,
    /// The key's comment, as `authorized_keys` shows it (default `kiln`).
    pub name: String,
}

impl Default for TemporaryKeyPair {
    fn default() -> Self {
        Self {
            kind: KeyKind::Ed25519,
            bits: None,
            name: "kiln".to_owned(),
        }
    }
}

impl SshTarget {
    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The russh event handler: accepts the host key, and connects the channels the server opens
/// (forwarded agent requests, remote tunnels).
struct Client {
    /// The agent forwarded requests go to (`SSH_AUTH_SOCK`, when forwarding is on).
    agent: Option<PathBuf>,
    /// `ssh_remote_tunnels`, to find where a forwarded connection goes.
    remote_tunnels: Vec<Tunnel>,
}

impl Client {
    fn for_target(target: &SshTarget) -> Client {
        Client {
            agent: agent_socket().filter(|_| target.options.agent_forwarding),
            remote_tunnels: target.options.remote_tunnels.clone(),
        }
    }
}

/// kiln's SSH agent (`SSH_AUTH_SOCK`), if it has one.
fn agent_socket() -> Option<PathBuf> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

impl client::Handler for Client {
    type Error = russh::Error;

    /// Accepts any host key: the guest is a machine this build just installed, its host keys
    /// were generated minutes ago and cannot be known in advance, and the connection goes to a
    /// port QEMU forwards on the local host.
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        // Without forwarding on, dropping `reply` refuses the channel.
        if let Some(socket) = &self.agent {
            reply.accept().await;
            route::agent(channel, socket.clone());
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let tunnel = self
            .remote_tunnels
            .iter()
            .find(|t| u32::from(t.listen) == connected_port);
        if let Some(t) = tunnel {
            reply.accept().await;
            route::forwarded(channel, (t.host.clone(), t.port));
        }
        Ok(())
    }
}

/// An authenticated SSH connection.
pub struct SshCommunicator {
    handle: Arc<client::Handle<Client>>,
    pty: bool,
    transfer: TransferMethod,
    /// Whether commands get the agent forwarded (see [`SshOptions::agent_forwarding`]).
    agent_forwarding: bool,
    /// The jump host's session, open while this connection is.
    _jump: Option<client::Handle<Client>>,
    /// `ssh_local_tunnels`' listeners, stopped with this connection.
    _tunnels: route::Tunnels,
}

impl SshCommunicator {
    /// One connection attempt with a deadline: TCP connect + handshake + authentication.
    pub async fn connect(target: &SshTarget, timeout: Duration) -> Result<SshCommunicator, Error> {
        let addr = target.addr();
        match tokio::time::timeout(timeout, Self::connect_inner(target, &addr)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::ConnectTimeout {
                addr,
                limit: timeout,
            }),
        }
    }

    async fn connect_inner(target: &SshTarget, addr: &str) -> Result<SshCommunicator, Error> {
        let (stream, jump) = route::open(target, addr).await?;
        let mut handle = route::handshake(target, stream).await?;
        authenticate(&mut handle, target).await?;
        tracing::debug!(addr, user = %target.username, "SSH connected");
        let handle = Arc::new(handle);
        let tunnels = route::start_tunnels(&handle, &target.options).await?;
        Ok(SshCommunicator {
            agent_forwarding: target.options.agent_forwarding && agent_socket().is_some(),
            handle,
            pty: target.pty,
            transfer: target.options.transfer,
            _jump: jump,
            _tunnels: tunnels,
        })
    }

    /// Says goodbye to the server and closes the connection.
    pub async fn close(self) {
        if let Err(e) = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await
        {
            tracing::debug!(error = %e, "SSH disconnect failed (connection already gone)");
        }
    }
}

/// Password, then keyboard-interactive answered with the password, as Packer does.
async fn authenticate(
    handle: &mut client::Handle<Client>,
    target: &SshTarget,
) -> Result<(), Error> {
    let user = target.username.as_str();
    let protocol = |source| Error::Authenticate {
        user: user.to_owned(),
        source,
    };
    let refused = || Error::AuthenticationFailed {
        user: user.to_owned(),
    };
    if let Some(key) = &target.private_key {
        let result = match &target.options.certificate_file {
            Some(path) => {
                let cert = russh::keys::load_openssh_certificate(path).map_err(|source| {
                    Error::LoadCertificate {
                        path: path.clone(),
                        source,
                    }
                })?;
                handle
                    .authenticate_openssh_cert(user, Arc::clone(key), cert)
                    .await
            }
            None => {
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(protocol)?
                    .flatten();
                let with_alg = PrivateKeyWithHashAlg::new(Arc::clone(key), hash);
                handle.authenticate_publickey(user, with_alg).await
            }
        };
        match result.map_err(protocol)? {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure { .. } => tracing::debug!(user, "public key refused"),
        }
    }
    if target.options.agent_auth && agent_authenticate(handle, target).await? {
        return Ok(());
    }
    if target.password.is_none() && (target.private_key.is_some() || target.options.agent_auth) {
        return Err(refused());
    }
    let Some(password) = &target.password else {
        return match handle.authenticate_none(user).await.map_err(protocol)? {
            AuthResult::Success => Ok(()),
            AuthResult::Failure { .. } => Err(refused()),
        };
    };
    let remaining = match handle
        .authenticate_password(user, password.expose())
        .await
        .map_err(protocol)?
    {
        AuthResult::Success => return Ok(()),
        AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods,
    };
    if !target.options.keyboard_interactive || !remaining.contains(&MethodKind::KeyboardInteractive)
    {
        return Err(refused());
    }
    tracing::debug!(user, "password refused; trying keyboard-interactive");
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(protocol)?;
    for _ in 0..MAX_KEYBOARD_INTERACTIVE_ROUNDS {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(()),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Err(refused()),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = vec![password.expose().to_owned(); prompts.len()];
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(protocol)?;
            }
        }
    }
    Err(refused())
}

/// `ssh_agent_auth`: offers the agent's keys (only the one named `ssh_keypair_name`, when
/// set) until one is accepted; whether one was.
async fn agent_authenticate(
    handle: &mut client::Handle<Client>,
    target: &SshTarget,
) -> Result<bool, Error> {
    let user = target.username.as_str();
    let socket = std::env::var("SSH_AUTH_SOCK").unwrap_or_default();
    let agent_err = |what: &str| {
        let what = format!("{what}, SSH_AUTH_SOCK=`{socket}`");
        move |e: russh::keys::Error| Error::Agent {
            what,
            source: Box::new(e),
        }
    };
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(agent_err("connect"))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(agent_err("list keys"))?;
    let wanted = target.options.keypair_name.as_deref();
    let chosen: Vec<_> = identities
        .iter()
        .filter(|id| wanted.is_none_or(|name| id.comment() == name))
        .collect();
    if let (Some(name), true) = (wanted, chosen.is_empty()) {
        let have: Vec<&str> = identities.iter().map(|id| id.comment()).collect();
        return Err(Error::AgentKeyMissing {
            name: name.to_owned(),
            have: have.join(", "),
        });
    }
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|source| Error::Authenticate {
            user: user.to_owned(),
            source,
        })?
        .flatten();
    for id in chosen {
        let key = id.public_key().into_owned();
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
            .map_err(|e| Error::Agent {
                what: format!("sign with key `{}`", id.comment()),
                source: Box::new(e),
            })? {
            AuthResult::Success => return Ok(true),
            AuthResult::Failure { .. } => {
                tracing::debug!(user, key = id.comment(), "agent key refused");
            }
        }
    }
    Ok(false)
}

/// Waits until SSH accepts the credentials: one attempt at least every second until `timeout`,
/// and stops at once when `abort` resolves with a reason (e.g. "QEMU exited: <stderr tail>") or
/// `cancel` is cancelled.
///
/// Every failure is retried, wrong credentials included: an installer may run its own sshd
/// with other credentials before the installed system boots. The timeout error carries the
/// last attempt's error. With `ssh_handshake_attempts` (`target.options`), the wait ends once
/// the server has refused the credentials that many times.
pub async fn wait_for_ssh<F: Future<Output = String> + Send>(
    target: &SshTarget,
    timeout: Duration,
    abort: F,
    cancel: &CancellationToken,
) -> Result<SshCommunicator, Error> {
    let addr = target.addr();
    tracing::info!(addr, timeout = ?timeout, "waiting for SSH");
    let refusals = std::sync::atomic::AtomicU32::new(0);
    let attempts = wait::until_ok(timeout, ATTEMPT_INTERVAL, || async {
        match SshCommunicator::connect(target, ATTEMPT_TIMEOUT).await {
            Ok(comm) => Attempt::Done(comm),
            Err(e) => {
                tracing::debug!(addr, error = %crate::ui::error_chain(&e), "SSH not ready");
                // Retrying cannot fix kiln's own configuration: a key, certificate or agent
                // that cannot be used.
                if matches!(
                    e,
                    Error::Agent { .. }
                        | Error::AgentKeyMissing { .. }
                        | Error::LoadCertificate { .. }
                        | Error::LoadKey { .. }
                ) {
                    return Attempt::Fatal(e);
                }
                let refused = matches!(e, Error::AuthenticationFailed { .. });
                match target.options.handshake_attempts {
                    Some(limit) if refused => {
                        let n = refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if n >= limit {
                            return Attempt::Fatal(Error::HandshakeAttempts {
                                attempts: n,
                                last: Box::new(e),
                            });
                        }
                        Attempt::Retry(e)
                    }
                    _ => Attempt::Retry(e),
                }
            }
        }
    });
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Error::Cancelled),
        reason = abort => Err(Error::Aborted { reason }),
        result = attempts => match result {
            Ok(comm) => Ok(comm),
            Err(wait::Error::Timeout { waited, last, .. }) => Err(Error::Timeout {
                addr,
                waited,
                last: last.map(Box::new),
            }),
            // `ssh_handshake_attempts` ran out.
            Err(wait::Error::Fatal(e)) => Err(e),
        },
    }
}

/// The command an upload runs: write stdin to `path`, then set its mode.
fn upload_command(path: &str, mode: u32) -> String {
    let path = sh_quote(path);
    format!("cat > {path} && chmod {mode:o} {path}")
}

/// What a channel said until it closed.
#[derive(Default)]
struct Outcome {
    status: Option<u32>,
    signal: Option<String>,
    refused: bool,
}

impl Outcome {
    fn into_status(self) -> Result<u32, Error> {
        if self.refused {
            return Err(Error::ExecRefused);
        }
        match (self.status, self.signal) {
            (Some(status), _) => Ok(status),
            (None, Some(signal)) => Err(Error::Signal { signal }),
            (None, None) => Err(Error::Disconnected),
        }
    }
}

/// Reads a channel until it closes, passing output to `output`.
async fn drain<F: FnMut(Stream, &[u8]) + Send + ?Sized>(
    read: &mut russh::ChannelReadHalf,
    output: &mut F,
) -> Outcome {
    let mut outcome = Outcome::default();
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => output(Stream::Stdout, &data),
            ChannelMsg::ExtendedData { data, ext: 1 } => output(Stream::Stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => outcome.status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                outcome.signal = Some(format!("{signal_name:?}"));
            }
            ChannelMsg::Failure => outcome.refused = true,
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    outcome
}

/// The transfers, with SSH's own errors; the [`Communicator`] impl below passes them on.
impl SshCommunicator {
    /// Runs `command` through the remote user's shell, passing output chunks to `output` as
    /// they arrive; returns the exit status.
    pub async fn exec(
        &self,
        command: &str,
        output: &mut (dyn for<'b> FnMut(Stream, &'b [u8]) + Send),
    ) -> Result<u32, Error> {
        // The command is not logged: it may carry secrets (environment variables, sudo -S).
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|source| Error::Exec { source })?;
        if self.agent_forwarding {
            channel
                .agent_forward(false)
                .await
                .map_err(|source| Error::Exec { source })?;
        }
        if self.pty {
            channel
                .request_pty(false, "vt100", 80, 40, 0, 0, &[])
                .await
                .map_err(|source| Error::Exec { source })?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|source| Error::Exec { source })?;
        let (mut read, _write) = channel.split();
        let status = drain(&mut read, output).await.into_status()?;
        tracing::debug!(status, "remote command finished");
        Ok(status)
    }

    /// Writes `data` to `remote_path` (created or truncated) with permission bits `mode`.
    pub async fn upload(&self, remote_path: &str, data: &[u8], mode: u32) -> Result<(), Error> {
        tracing::debug!(
            path = remote_path,
            bytes = data.len(),
            mode = format!("{mode:o}"),
            "uploading"
        );
        match self.transfer {
            TransferMethod::Exec => {
                self.feed(remote_path, &upload_command(remote_path, mode), data)
                    .await
            }
            TransferMethod::Scp => {
                scp::upload(&self.handle, remote_path, data, data.len() as u64, mode).await
            }
            TransferMethod::Sftp => sftp::upload(&self.handle, remote_path, data, mode).await,
        }
    }

    /// Streams the local file `local` to `remote_path` (created or truncated), mode `mode`.
    pub async fn upload_file(
        &self,
        remote_path: &str,
        local: &Path,
        mode: u32,
    ) -> Result<(), Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(local).await.map_err(local_err)?;
        let size = file.metadata().await.map_err(local_err)?.len();
        tracing::debug!(path = remote_path, local = %local.display(), "uploading file");
        let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
        match self.transfer {
            TransferMethod::Exec => {
                self.feed(remote_path, &upload_command(remote_path, mode), reader)
                    .await
            }
            TransferMethod::Scp => scp::upload(&self.handle, remote_path, reader, size, mode).await,
            TransferMethod::Sftp => sftp::upload(&self.handle, remote_path, reader, mode).await,
        }
    }

    /// Copies the local directory `local` into `remote_dir` (created if missing): its contents,
    /// not the directory itself. Needs `tar` on the remote side.
    pub async fn upload_dir(&self, remote_dir: &str, local: &Path) -> Result<(), Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        if !tokio::fs::metadata(local)
            .await
            .map_err(local_err)?
            .is_dir()
        {
            return Err(local_err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        match self.transfer {
            TransferMethod::Exec => {}
            TransferMethod::Scp => {
                // `scp -t` copies into an existing directory.
                self.feed(
                    remote_dir,
                    &format!("mkdir -p {}", sh_quote(remote_dir)),
                    &[][..],
                )
                .await?;
                return scp::upload_dir(&self.handle, remote_dir, local).await;
            }
            TransferMethod::Sftp => return sftp::upload_dir(&self.handle, remote_dir, local).await,
        }
        // The tar is written by a blocking thread into a pipe the channel reads from.
        let (reader, writer) = tokio::io::duplex(1 << 20);
        let dir = local.to_owned();
        let packer = tokio::task::spawn_blocking(move || {
            let mut tar = tar::Builder::new(tokio_util::io::SyncIoBridge::new(writer));
            tar.follow_symlinks(false);
            tar.append_dir_all(".", &dir)?;
            tar.into_inner()?.shutdown()
        });
        let dir = sh_quote(remote_dir);
        let command = format!("mkdir -p {dir} && tar -x -f - -C {dir}");
        let sent = self.feed(remote_dir, &command, reader).await;
        let packed = packer
            .await
            .map_err(|e| local_err(std::io::Error::other(e)))?;
        sent?;
        packed.map_err(local_err)
    }

    /// Copies the remote file `remote_path` to `local` (written to a temporary name beside it,
    /// then renamed).
    pub async fn download(&self, remote_path: &str, local: &Path) -> Result<(), Error> {
        let tmp = match self.transfer {
            TransferMethod::Exec => {
                let command = format!("cat {}", sh_quote(remote_path));
                self.collect(remote_path, &command, local).await?
            }
            method => self.fetch(method, remote_path, local).await?,
        };
        tmp.persist(local).map_err(|e| Error::Local {
            path: local.to_owned(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Copies the contents of the remote directory `remote_dir` into `local` (created if
    /// missing). Needs `tar` on the remote side.
    pub async fn download_dir(&self, remote_dir: &str, local: &Path) -> Result<(), Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        match self.transfer {
            TransferMethod::Exec => {}
            TransferMethod::Scp => return scp::download_dir(&self.handle, remote_dir, local).await,
            TransferMethod::Sftp => {
                return sftp::download_dir(&self.handle, remote_dir, local).await;
            }
        }
        tokio::fs::create_dir_all(local).await.map_err(local_err)?;
        let command = format!("tar -c -f - -C {} .", sh_quote(remote_dir));
        let tmp = self
            .collect(remote_dir, &command, &local.join(".kiln-download.tar"))
            .await?;
        let dir = local.to_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(tmp.path())?;
            tar::Archive::new(file).unpack(&dir)
        })
        .await
        .map_err(|e| local_err(std::io::Error::other(e)))?
        .map_err(local_err)
    }
}

#[async_trait]
impl Communicator for SshCommunicator {
    async fn exec(
        &self,
        command: &str,
        output: &mut (dyn for<'b> FnMut(Stream, &'b [u8]) + Send),
    ) -> Result<u32, super::Error> {
        Ok(SshCommunicator::exec(self, command, output).await?)
    }

    async fn upload(&self, remote_path: &str, data: &[u8], mode: u32) -> Result<(), super::Error> {
        Ok(SshCommunicator::upload(self, remote_path, data, mode).await?)
    }

    async fn upload_file(
        &self,
        remote_path: &str,
        local: &Path,
        mode: u32,
    ) -> Result<(), super::Error> {
        Ok(SshCommunicator::upload_file(self, remote_path, local, mode).await?)
    }

    async fn upload_dir(&self, remote_dir: &str, local: &Path) -> Result<(), super::Error> {
        Ok(SshCommunicator::upload_dir(self, remote_dir, local).await?)
    }

    async fn download(&self, remote_path: &str, local: &Path) -> Result<(), super::Error> {
        Ok(SshCommunicator::download(self, remote_path, local).await?)
    }

    async fn download_dir(&self, remote_dir: &str, local: &Path) -> Result<(), super::Error> {
        Ok(SshCommunicator::download_dir(self, remote_dir, local).await?)
    }

    async fn close(self: Box<Self>) {
        SshCommunicator::close(*self).await;
    }
}

/// A transfer's error as the provisioner layer sees it: a broken channel or connection is
/// [`Lost`](super::Error::Lost) (reconnecting may help), anything else
/// [`Failed`](super::Error::Failed).
impl From<Error> for super::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Upload { .. } | Error::Disconnected | Error::Exec { .. } => {
                super::Error::Lost(Box::new(e))
            }
            e => super::Error::Failed(Box::new(e)),
        }
    }
}

/// A future that resolves with a reason when the machine is gone (e.g. "QEMU exited: …").
pub type AbortFuture = std::pin::Pin<Box<dyn Future<Output = String> + Send>>;

/// How the provisioner layer reconnects over SSH: [`wait_for_ssh`] on the same target, stopped
/// when the machine is gone (`abort`) or the build is cancelled.
pub struct Reconnect {
    target: SshTarget,
    abort: Box<dyn Fn() -> AbortFuture + Send + Sync>,
    cancel: CancellationToken,
}

impl Reconnect {
    /// Reconnects to `target`; `abort` makes a future that resolves when reconnecting is
    /// pointless (the machine is gone).
    pub fn new(
        target: SshTarget,
        abort: Box<dyn Fn() -> AbortFuture + Send + Sync>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            target,
            abort,
            cancel,
        }
    }
}

#[async_trait]
impl Connect for Reconnect {
    async fn connect(&self, timeout: Duration) -> Result<Box<dyn Communicator>, super::Error> {
        tracing::info!(addr = %self.target.addr(), "reconnecting SSH");
        let comm = wait_for_ssh(&self.target, timeout, (self.abort)(), &self.cancel).await?;
        Ok(Box::new(comm))
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            kind: "ssh",
            host: self.target.host.clone(),
            port: self.target.port,
            user: self.target.username.clone(),
            password: self.target.password.clone(),
            private_key: self.target.private_key.as_ref().and_then(|k| {
                k.to_openssh(russh::keys::ssh_key::LineEnding::LF)
                    .ok()
                    .map(|text| Secret::new(text.as_str()))
            }),
        }
    }
}

impl SshCommunicator {
    /// Runs `command` with `input` as its stdin; an exit status other than 0 is an upload error
    /// carrying the remote stderr.
    async fn feed<R: tokio::io::AsyncRead + Unpin + Send>(
        &self,
        what: &str,
        command: &str,
        input: R,
    ) -> Result<(), Error> {
        let send_err = |source| Error::Upload {
            path: what.to_owned(),
            source,
        };
        let channel = self.handle.channel_open_session().await.map_err(send_err)?;
        channel.exec(true, command).await.map_err(send_err)?;
        let (mut read, write) = channel.split();
        // Send and read at once: if the command fails early, its stderr and status still arrive.
        let send = async {
            write.data(input).await?;
            write.eof().await
        };
        let mut stderr = Vec::new();
        let mut collect = |stream: Stream, chunk: &[u8]| {
            if stream == Stream::Stderr {
                stderr.extend_from_slice(chunk);
            }
        };
        let (sent, outcome) = tokio::join!(send, drain(&mut read, &mut collect));
        match outcome.into_status()? {
            0 => sent.map_err(send_err),
            status => Err(Error::UploadStatus {
                path: what.to_owned(),
                status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
            }),
        }
    }

    /// Copies `remote_path` with scp or sftp into a temporary file beside `local`; returns it
    /// (removed on drop).
    async fn fetch(
        &self,
        method: TransferMethod,
        remote_path: &str,
        local: &Path,
    ) -> Result<tempfile::NamedTempFile, Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        let tmp = temp_beside(local).map_err(local_err)?;
        let file = tokio::fs::File::from_std(tmp.reopen().map_err(local_err)?);
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        match method {
            TransferMethod::Sftp => {
                sftp::download(&self.handle, remote_path, &mut out, local).await?
            }
            _ => scp::download(&self.handle, remote_path, &mut out, local).await?,
        }
        Ok(tmp)
    }

    /// Runs `command` and writes its stdout into a temporary file beside `local`; returns it
    /// (removed on drop) once the command exited 0.
    async fn collect(
        &self,
        what: &str,
        command: &str,
        local: &Path,
    ) -> Result<tempfile::NamedTempFile, Error> {
        let local_err = |source| Error::Local {
            path: local.to_owned(),
            source,
        };
        let tmp = temp_beside(local).map_err(local_err)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let mut write_error = None;
        let mut stderr = Vec::new();
        let mut sink = |stream: Stream, chunk: &[u8]| match stream {
            Stream::Stdout if write_error.is_none() => {
                if let Err(e) = std::io::Write::write_all(&mut out, chunk) {
                    write_error = Some(e);
                }
            }
            Stream::Stdout => {}
            Stream::Stderr => stderr.extend_from_slice(chunk),
        };
        let status = self.exec(command, &mut sink).await?;
        if let Some(e) = write_error {
            return Err(local_err(e));
        }
        std::io::Write::flush(&mut out).map_err(local_err)?;
        drop(out);
        if status != 0 {
            return Err(Error::DownloadStatus {
                path: what.to_owned(),
                status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
            });
        }
        Ok(tmp)
    }
}

/// The entries of the local directory `dir` with their names, in name order (for the scp and
/// sftp directory uploads).
async fn local_entries(dir: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
    let local_err = |source| Error::Local {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    let mut read = tokio::fs::read_dir(dir).await.map_err(local_err)?;
    while let Some(e) = read.next_entry().await.map_err(local_err)? {
        entries.push((e.path(), e.file_name().to_string_lossy().into_owned()));
    }
    entries.sort();
    Ok(entries)
}

/// A temporary file in `local`'s directory, for a download renamed to `local` once complete.
fn temp_beside(local: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = match local.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".kiln-download-")
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The endpoint carries the key the communicator logs in with, in OpenSSH's text form,
    /// for tools that connect on their own (the `ansible` provisioner, issue 17).
    #[test]
    fn endpoint_carries_the_private_key() {
        let (key, public) = temporary_key_pair();
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port: 2222,
            username: "root".into(),
            private_key: Some(key),
            password: None,
            pty: false,
            read_write_timeout: None,
            options: SshOptions::default(),
        };
        let never = Box::new(|| Box::pin(std::future::pending::<String>()) as AbortFuture);
        let reconnect = Reconnect::new(target.clone(), never, CancellationToken::new());
        let text = reconnect.endpoint().private_key.expect("a key");
        assert!(
            text.expose()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        let decoded = PrivateKey::from_openssh(text.expose()).expect("decodes");
        assert_eq!(decoded.public_key().to_openssh().expect("public"), public);
        let never = Box::new(|| Box::pin(std::future::pending::<String>()) as AbortFuture);
        let no_key = SshTarget {
            private_key: None,
            ..target
        };
        let reconnect = Reconnect::new(no_key, never, CancellationToken::new());
        assert!(reconnect.endpoint().private_key.is_none());
    }

    #[test]
    fn sh_quote_cases() {
        let cases = [
            ("plain", "/tmp/a", "'/tmp/a'"),
            ("space stays inside quotes", "/tmp/a b", "'/tmp/a b'"),
            (
                "single quote closes, escapes, reopens",
                "it's",
                r#"'it'"'"'s'"#,
            ),
            (
                "shell metacharacters are inert",
                "$(rm -rf /);`x`",
                "'$(rm -rf /);`x`'",
            ),
            ("empty string is an empty word", "", "''"),
        ];
        for (reason, input, want) in cases {
            assert_eq!(sh_quote(input), want, "{reason}");
        }
    }

    #[test]
    fn upload_command_cases() {
        let cases = [
            (
                "mode in octal",
                "/tmp/s.sh",
                0o755,
                "cat > '/tmp/s.sh' && chmod 755 '/tmp/s.sh'",
            ),
            (
                "leading zero dropped",
                "/x",
                0o644,
                "cat > '/x' && chmod 644 '/x'",
            ),
            (
                "path quoted",
                "/a b'c",
                0o600,
                r#"cat > '/a b'"'"'c' && chmod 600 '/a b'"'"'c'"#,
            ),
        ];
        for (reason, path, mode, want) in cases {
            assert_eq!(upload_command(path, mode), want, "{reason}");
        }
    }

    #[test]
    fn outcome_without_status_is_disconnected() {
        let cases = [
            ("status wins", Some(7), None, false, "ok 7"),
            ("no status, no signal", None, None, false, "Disconnected"),
            (
                "signal only",
                None,
                Some("KILL".to_owned()),
                false,
                "Signal",
            ),
            ("refused exec", Some(0), None, true, "ExecRefused"),
        ];
        for (reason, status, signal, refused, want) in cases {
            let got = match (Outcome {
                status,
                signal,
                refused,
            })
            .into_status()
            {
                Ok(s) => format!("ok {s}"),
                Err(Error::Disconnected) => "Disconnected".into(),
                Err(Error::Signal { .. }) => "Signal".into(),
                Err(Error::ExecRefused) => "ExecRefused".into(),
                Err(e) => format!("{e:?}"),
            };
            assert_eq!(got, want, "{reason}");
        }
    }

    #[tokio::test]
    async fn connect_refused_is_connect_error() {
        // Bind then drop a listener to get a port with nothing behind it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port,
            username: "nobody".into(),
            private_key: None,
            password: None,
            pty: false,
            read_write_timeout: None,
            options: SshOptions::default(),
        };
        let err = SshCommunicator::connect(&target, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    }

    /// Issue 14: `ssh_keep_alive_interval`, `ssh_ciphers` and `ssh_key_exchange_algorithms`
    /// reach russh's configuration, in the template's order.
    #[test]
    fn issue_14_client_config_follows_the_options() {
        let mut target = SshTarget {
            host: "127.0.0.1".into(),
            port: 22,
            username: "u".into(),
            private_key: None,
            password: None,
            pty: false,
            read_write_timeout: None,
            options: SshOptions::default(),
        };
        let c = client_config(&target);
        assert_eq!(c.keepalive_interval, Some(Duration::from_secs(5)));
        assert_eq!(&*c.preferred.cipher, CIPHERS);
        target.options = SshOptions {
            handshake_attempts: Some(2),
            keep_alive_interval: None,
            ciphers: vec!["aes128-ctr".into(), "aes256-gcm@openssh.com".into()],
            kex: vec!["curve25519-sha256".into()],
            ..SshOptions::default()
        };
        let c = client_config(&target);
        assert_eq!(c.keepalive_interval, None);
        let ciphers: Vec<&str> = c.preferred.cipher.iter().map(|n| n.as_ref()).collect();
        assert_eq!(ciphers, ["aes128-ctr", "aes256-gcm@openssh.com"]);
        let kex: Vec<&str> = c.preferred.kex.iter().map(|n| n.as_ref()).collect();
        assert_eq!(kex, ["curve25519-sha256"]);
        assert!(cipher_names().contains(&"chacha20-poly1305@openssh.com"));
        assert!(!cipher_names().contains(&"none"));
    }

    /// Issue 14: `temporary_key_pair_type`, `_bits` and `_name` make that kind of key.
    #[test]
    fn issue_14_temporary_key_pairs() {
        let rows = [
            (KeyKind::Ed25519, None, "ssh-ed25519 "),
            (KeyKind::Ecdsa, Some(256), "ecdsa-sha2-nistp256 "),
            (KeyKind::Ecdsa, None, "ecdsa-sha2-nistp521 "),
            (KeyKind::Rsa, Some(2048), "ssh-rsa "),
        ];
        for (kind, bits, prefix) in rows {
            let spec = TemporaryKeyPair {
                kind,
                bits,
                name: "packer_x".into(),
            };
            let (key, public) = make_key_pair(&spec).expect("key pair");
            assert!(public.starts_with(prefix), "{kind:?}: {public}");
            assert!(public.ends_with(" packer_x"), "{kind:?}: {public}");
            assert_eq!(key.comment().as_bytes(), b"packer_x");
        }
        let (_, default) = temporary_key_pair();
        assert!(
            default.starts_with("ssh-ed25519 ") && default.ends_with(" kiln"),
            "{default}"
        );
    }
}
