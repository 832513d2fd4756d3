//! The source kinds kiln builds, in one table: for each, its type name, the options it reads,
//! the options Packer has that kiln does not read yet, and its reader. The loader looks kinds
//! up here; a new builder adds a module and one row to [`KINDS`].

pub(super) mod amazon_ebs;
pub(super) mod docker;
mod null;
mod qemu;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::structure::Block;

use super::diag::SourceFile;
use super::eval::Scope;
use super::options::{Options, reject_blocks_except};
use super::{Diagnostic, Location};
use crate::builder::SourceConfig;
use crate::communicator::ssh::{
    Bastion, KeyKind, Proxy, SshConfig, SshOptions, TemporaryKeyPair, TransferMethod, Tunnel,
    cipher_names, kex_names,
};
use crate::types::{GoDuration, Secret, parse_duration};

/// One source kind.
pub(crate) struct Kind {
    /// As in `source "TYPE" "NAME"`.
    pub type_name: &'static str,
    /// The options kiln reads.
    pub supported: &'static [&'static str],
    /// Options and blocks Packer's builder has that kiln does not read yet ("not supported by
    /// kiln yet" rather than "unknown").
    pub known: &'static [&'static str],
    /// Whether Packer's blocks in `known` are reported as such (else every block is unknown).
    pub known_blocks: bool,
    /// Turns the block's options into the builder's config, reporting problems.
    pub read: fn(&str, &Options<'_>, &Path, &mut Vec<Diagnostic>) -> SourceConfig,
}

/// Every source kind kiln builds; the first is the one hints suggest.
pub(crate) const KINDS: &[Kind] = &[qemu::KIND, docker::KIND, null::KIND, amazon_ebs::KIND];

/// The kind of `source "TYPE" …`, if kiln builds it.
pub(crate) fn kind(type_name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.type_name == type_name)
}

/// Reads a `source` block of `kind` as `name`, with `overrides` (from a `source` block inside
/// `build`) replacing or adding options.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_source(
    kind: &Kind,
    file: &SourceFile,
    block: &Block,
    name: &str,
    scope: &Scope,
    overrides: Option<(BTreeMap<String, Value>, Location)>,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> SourceConfig {
    let at = file.at(block.ident.span());
    let mut o = Options::read(file, scope, &block.body, at, kind.supported, kind.known, d);
    if let Some((values, at)) = overrides {
        o = o.with_overrides(values, at);
    }
    let known_blocks = if kind.known_blocks { kind.known } else { &[] };
    // Blocks named in `supported` are the reader's (`source_ami_filter { … }`).
    reject_blocks_except(file, &block.body, known_blocks, kind.supported, d);
    (kind.read)(name, &o, base_dir, d)
}

const PORT_MAX: u64 = u16::MAX as u64;

/// The `ssh_*` options (and `host_port_*`) every builder that connects over SSH reads.
pub(crate) fn ssh(o: &Options<'_>, base_dir: &Path, d: &mut Vec<Diagnostic>) -> SshConfig {
    let username = o.string("ssh_username", d).unwrap_or_default();
    if username.is_empty() && !o.has("ssh_username") {
        o.missing(
            "ssh_username",
            " (required when `communicator` is `ssh`)",
            d,
        );
    }
    let (host_port_min, host_port_max) = port_range(o, "host_port", 0, (2222, 4444), d);
    let mut c = SshConfig {
        username,
        password: o.string("ssh_password", d).map(Secret::new),
        port: o.uint("ssh_port", 0, PORT_MAX, d).map_or(22, |p| p as u16),
        // `ssh_wait_timeout` is Packer's old name; when both are set it wins, as in Packer.
        timeout: non_negative(o, "ssh_wait_timeout", d)
            .or(non_negative(o, "ssh_timeout", d))
            .unwrap_or(Duration::from_secs(300)),
        private_key_file: file_option(o, "ssh_private_key_file", base_dir, d),
        pause_before_connecting: non_negative(o, "pause_before_connecting", d).unwrap_or_default(),
        clear_authorized_keys: o.bool("ssh_clear_authorized_keys", d).unwrap_or(false),
        pty: o.bool("ssh_pty", d).unwrap_or(false),
        host_port_min,
        host_port_max,
        read_write_timeout: non_negative(o, "ssh_read_write_timeout", d).filter(|t| !t.is_zero()),
        options: ssh_options(o, d),
    };
    ssh_auth_and_routes(o, base_dir, &mut c, d);
    c
}

/// A file option, resolved against `base_dir`; a file that does not exist is an error.
fn file_option(
    o: &Options<'_>,
    name: &str,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> Option<PathBuf> {
    o.string(name, d).map(|f| {
        let path = resolve(base_dir, Path::new(&f));
        if !path.is_file() {
            o.error(name, format!("`{}` does not exist", path.display()), d);
        }
        path
    })
}

/// `ssh_agent_auth`, `ssh_keypair_name`, `ssh_disable_agent_forwarding`,
/// `ssh_certificate_file`, the jump host (`ssh_bastion_*`), the SOCKS proxy (`ssh_proxy_*`)
/// and the tunnels, with Packer's defaults and rules.
fn ssh_auth_and_routes(
    o: &Options<'_>,
    base_dir: &Path,
    c: &mut SshConfig,
    d: &mut Vec<Diagnostic>,
) {
    let opts = &mut c.options;
    opts.agent_auth = o.bool("ssh_agent_auth", d).unwrap_or(false);
    opts.agent_forwarding = !o.bool("ssh_disable_agent_forwarding", d).unwrap_or(false);
    opts.keypair_name = o.string("ssh_keypair_name", d).filter(|n| !n.is_empty());
    if opts.keypair_name.is_some() && !opts.agent_auth {
        o.error(
            "ssh_keypair_name",
            "`ssh_keypair_name` picks the SSH agent's key with that name (comment) and needs \
             `ssh_agent_auth = true` (a qemu or null build has no cloud key pairs; give the key \
             itself with `ssh_private_key_file`)",
            d,
        );
    }
    opts.certificate_file = file_option(o, "ssh_certificate_file", base_dir, d);
    if opts.certificate_file.is_some() && c.private_key_file.is_none() {
        o.error(
            "ssh_certificate_file",
            "`ssh_certificate_file` needs `ssh_private_key_file` (the certificate's key)",
            d,
        );
    }
    let bastion_host = o.string("ssh_bastion_host", d).filter(|h| !h.is_empty());
    let proxy_host = o.string("ssh_proxy_host", d).filter(|h| !h.is_empty());
    for (prefix, host, names) in [
        (
            "ssh_bastion",
            &bastion_host,
            &[
                "ssh_bastion_port",
                "ssh_bastion_username",
                "ssh_bastion_password",
                "ssh_bastion_private_key_file",
                "ssh_bastion_certificate_file",
                "ssh_bastion_agent_auth",
                "ssh_bastion_interactive",
            ][..],
        ),
        (
            "ssh_proxy",
            &proxy_host,
            &["ssh_proxy_port", "ssh_proxy_username", "ssh_proxy_password"][..],
        ),
    ] {
        if host.is_none()
            && let Some(name) = names.iter().find(|n| o.has(n))
        {
            o.error(name, format!("`{name}` needs `{prefix}_host`"), d);
        }
    }
    if bastion_host.is_some() && proxy_host.is_some() {
        o.error(
            "ssh_proxy_host",
            "`ssh_bastion_host` and `ssh_proxy_host` cannot be used together",
            d,
        );
    }
    if let Some(host) = bastion_host {
        let b = Bastion {
            host,
            port: o
                .uint("ssh_bastion_port", 1, PORT_MAX, d)
                .map_or(22, |p| p as u16),
            username: o
                .string("ssh_bastion_username", d)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| c.username.clone()),
            password: o
                .string("ssh_bastion_password", d)
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            private_key_file: file_option(o, "ssh_bastion_private_key_file", base_dir, d)
                .or_else(|| c.private_key_file.clone()),
            certificate_file: file_option(o, "ssh_bastion_certificate_file", base_dir, d)
                .or_else(|| opts.certificate_file.clone()),
            agent_auth: o.bool("ssh_bastion_agent_auth", d).unwrap_or(false),
            interactive: o.bool("ssh_bastion_interactive", d).unwrap_or(false),
        };
        if b.password.is_none() && b.private_key_file.is_none() && !b.agent_auth {
            o.error(
                "ssh_bastion_host",
                "the jump host needs `ssh_bastion_password`, `ssh_bastion_private_key_file` \
                 or `ssh_bastion_agent_auth = true`",
                d,
            );
        }
        if b.interactive && b.password.is_none() {
            o.error(
                "ssh_bastion_interactive",
                "kiln answers the jump host's keyboard-interactive prompts with \
                 `ssh_bastion_password`, which is not set",
                d,
            );
        }
        if b.certificate_file.is_some() && b.private_key_file.is_none() {
            o.error(
                "ssh_bastion_certificate_file",
                "`ssh_bastion_certificate_file` needs `ssh_bastion_private_key_file`",
                d,
            );
        }
        opts.bastion = Some(Box::new(b));
    }
    if let Some(host) = proxy_host {
        opts.proxy = Some(Box::new(Proxy {
            host,
            port: o
                .uint("ssh_proxy_port", 1, PORT_MAX, d)
                .map_or(1080, |p| p as u16),
            username: o.string("ssh_proxy_username", d).filter(|u| !u.is_empty()),
            password: o
                .string("ssh_proxy_password", d)
                .filter(|p| !p.is_empty())
                .map(Secret::new),
        }));
    }
    for (name, field) in [
        ("ssh_local_tunnels", &mut opts.local_tunnels),
        ("ssh_remote_tunnels", &mut opts.remote_tunnels),
    ] {
        for spec in o.string_list(name, d).unwrap_or_default() {
            match Tunnel::parse(&spec) {
                Ok(t) => field.push(t),
                Err(m) => o.error(name, m, d),
            }
        }
    }
}

/// `ssh_handshake_attempts`, `ssh_keep_alive_interval`, `ssh_ciphers`,
/// `ssh_key_exchange_algorithms` (read by the builders whose `supported` list has them).
fn ssh_options(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> SshOptions {
    let mut options = SshOptions::default();
    if let Some(n) = o.uint("ssh_handshake_attempts", 0, u64::from(u32::MAX), d) {
        options.handshake_attempts = (n > 0).then_some(n as u32);
    }
    if let Some(t) = duration(o, "ssh_keep_alive_interval", d) {
        // As Packer: negative disables keep-alives; zero means the default.
        options.keep_alive_interval = match (t.negative, t.abs.is_zero()) {
            (true, _) => None,
            (false, true) => options.keep_alive_interval,
            (false, false) => Some(t.abs),
        };
    }
    for (name, known, field) in [
        ("ssh_ciphers", cipher_names(), &mut options.ciphers),
        ("ssh_key_exchange_algorithms", kex_names(), &mut options.kex),
    ] {
        let Some(list) = o.string_list(name, d) else {
            continue;
        };
        for item in &list {
            if !known.contains(&item.as_str()) {
                o.error(
                    name,
                    format!(
                        "kiln's SSH client has no `{item}` (it has {})",
                        super::options::list(&known)
                    ),
                    d,
                );
            }
        }
        *field = list;
    }
    temporary_key_pair(o, &mut options.temporary_key_pair, d);
    options.transfer = match o
        .one_of("ssh_file_transfer_method", &["scp", "sftp"], &[], d)
        .as_deref()
    {
        Some("scp") => TransferMethod::Scp,
        Some("sftp") => TransferMethod::Sftp,
        _ => TransferMethod::Exec,
    };
    options
}

/// `temporary_key_pair_type` (`rsa`, `ecdsa`, `ed25519`; kiln's default ed25519),
/// `temporary_key_pair_bits`, `temporary_key_pair_name`.
fn temporary_key_pair(o: &Options<'_>, k: &mut TemporaryKeyPair, d: &mut Vec<Diagnostic>) {
    match o.string("temporary_key_pair_type", d).as_deref() {
        None | Some("") => {}
        Some("rsa") => k.kind = KeyKind::Rsa,
        Some("ecdsa") => k.kind = KeyKind::Ecdsa,
        Some("ed25519") => k.kind = KeyKind::Ed25519,
        Some("dsa") => o.error(
            "temporary_key_pair_type",
            "`temporary_key_pair_type = \"dsa\"`: OpenSSH no longer accepts DSA keys (9.8 removed \
             them); use `ed25519`, `ecdsa` or `rsa`",
            d,
        ),
        Some(other) => o.error(
            "temporary_key_pair_type",
            format!("`temporary_key_pair_type` must be one of `rsa`, `ecdsa` or `ed25519`, got `{other}`"),
            d,
        ),
    }
    if let Some(bits) = o.uint("temporary_key_pair_bits", 0, u64::from(u32::MAX), d)
        && bits != 0
    {
        let ok = match k.kind {
            KeyKind::Rsa => (2048..=16384).contains(&bits),
            KeyKind::Ecdsa => [256, 384, 521].contains(&bits),
            // As Packer: ed25519 keys have one size.
            KeyKind::Ed25519 => true,
        };
        if !ok {
            o.error(
                "temporary_key_pair_bits",
                format!(
                    "{bits} bits is not a size of {} key (rsa: 2048 to 16384; ecdsa: 256, 384 or 521)",
                    k.kind.name()
                ),
                d,
            );
        }
        k.bits = Some(bits as u32);
    }
    if let Some(name) = o
        .string("temporary_key_pair_name", d)
        .filter(|n| !n.is_empty())
    {
        k.name = name;
    }
}

/// `communicator = "winrm"`: true, with a validate error saying how kiln reaches Windows
/// guests instead (issue 14).
pub(crate) fn refuse_winrm(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> bool {
    if o.string("communicator", d).as_deref() != Some("winrm") {
        return false;
    }
    d.push(
        Diagnostic::new(
            o.at("communicator"),
            "`communicator = \"winrm\"`: kiln reaches Windows guests over SSH (OpenSSH \
             Server), not WinRM",
        )
        .with_hint(
            "install and start OpenSSH Server in the guest (e.g. from the answer file: \
             `Add-WindowsCapability -Online -Name OpenSSH.Server~~~~0.0.1.0`, then \
             `Start-Service sshd`), and set `communicator = \"ssh\"` with `ssh_username` \
             and `ssh_password`",
        ),
    );
    true
}

/// Checks the types of the `winrm_*` options, which Packer reads even when the communicator
/// is SSH; nothing else is done with them (kiln reaches machines over SSH only).
pub(crate) fn check_winrm(o: &Options<'_>, d: &mut Vec<Diagnostic>) {
    for name in ["winrm_username", "winrm_password", "winrm_host"] {
        let _ = o.string(name, d);
    }
    let _ = o.uint("winrm_port", 0, PORT_MAX, d);
    let _ = non_negative(o, "winrm_timeout", d);
    for name in [
        "winrm_use_ssl",
        "winrm_insecure",
        "winrm_use_ntlm",
        "winrm_no_proxy",
    ] {
        let _ = o.bool(name, d);
    }
}

/// Reads `<prefix>_min` / `<prefix>_max` (each within `floor..=65535`, min ≤ max).
pub(crate) fn port_range(
    o: &Options<'_>,
    prefix: &str,
    floor: u64,
    default: (u16, u16),
    d: &mut Vec<Diagnostic>,
) -> (u16, u16) {
    let (min_name, max_name) = (format!("{prefix}_min"), format!("{prefix}_max"));
    let min = o
        .uint(&min_name, floor, PORT_MAX, d)
        .map_or(default.0, |p| p as u16);
    let max = o
        .uint(&max_name, floor, PORT_MAX, d)
        .map_or(default.1, |p| p as u16);
    if min > max {
        let at = if o.has(&min_name) {
            &min_name
        } else {
            &max_name
        };
        o.error(
            at,
            format!("`{min_name}` ({min}) is greater than `{max_name}` ({max})"),
            d,
        );
    }
    (min, max)
}

pub(crate) fn duration(o: &Options<'_>, name: &str, d: &mut Vec<Diagnostic>) -> Option<GoDuration> {
    let s = o.string(name, d)?;
    parse_duration(&s).map_err(|m| o.error(name, m, d)).ok()
}

pub(crate) fn non_negative(
    o: &Options<'_>,
    name: &str,
    d: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    let t = duration(o, name, d)?;
    if t.negative {
        o.error(name, format!("`{name}` must not be negative"), d);
        return None;
    }
    Some(t.abs)
}

/// `path` against `base` (unless absolute), with `.` and `..` removed lexically.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in base.join(path).components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(comp);
                }
            }
            other => out.push(other),
        }
    }
    out
}
