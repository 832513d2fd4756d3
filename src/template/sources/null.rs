//! `source "null" "NAME"` → [`crate::builder::null::Config`]: the SSH host the provisioners
//! run against.

use std::path::Path;

use super::{Kind, check_winrm, qemu, refuse_winrm, ssh};
use crate::builder::{SourceConfig, null::Config};
use crate::template::Diagnostic;
use crate::template::options::Options;

pub(crate) const KIND: Kind = Kind {
    type_name: "null",
    supported: SUPPORTED,
    // As before the table: Packer's qemu options are "not supported yet" here too.
    known: qemu::KNOWN,
    known_blocks: false,
    read: |name, o, dir, d| SourceConfig::Null(Box::new(source(name, o, dir, d))),
};

/// The options of `source "null"` kiln reads.
#[rustfmt::skip]
const SUPPORTED: &[&str] = &[
    "communicator", "ssh_host", "ssh_port", "ssh_username", "ssh_password",
    "ssh_private_key_file", "ssh_timeout", "pause_before_connecting", "ssh_pty",
    "ssh_wait_timeout", "ssh_read_write_timeout", "winrm_username", "winrm_password",
    "winrm_host", "winrm_port", "winrm_timeout", "winrm_use_ssl", "winrm_insecure",
    "winrm_use_ntlm", "winrm_no_proxy", "ssh_handshake_attempts", "ssh_keep_alive_interval",
    "ssh_ciphers", "ssh_key_exchange_algorithms",
    "ssh_file_transfer_method", "ssh_agent_auth", "ssh_disable_agent_forwarding",
    "ssh_certificate_file", "ssh_keypair_name", "ssh_bastion_host", "ssh_bastion_port",
    "ssh_bastion_username", "ssh_bastion_password", "ssh_bastion_private_key_file",
    "ssh_bastion_certificate_file", "ssh_bastion_agent_auth", "ssh_bastion_interactive",
    "ssh_proxy_host", "ssh_proxy_port", "ssh_proxy_username", "ssh_proxy_password",
    "ssh_local_tunnels", "ssh_remote_tunnels",
];

/// A `source "null"` block: the SSH host the provisioners run against.
fn source(name: &str, o: &Options<'_>, base_dir: &Path, d: &mut Vec<Diagnostic>) -> Config {
    let none = refuse_winrm(o, d)
        || o.one_of("communicator", &["ssh", "none"], &[], d)
            .as_deref()
            == Some("none");
    let host = o.string("ssh_host", d).unwrap_or_default();
    if !none && host.is_empty() && !o.has("ssh_host") {
        o.missing("ssh_host", " (the machine the provisioners run on)", d);
    }
    check_winrm(o, d);
    Config {
        name: name.to_owned(),
        host,
        ssh: (!none).then(|| ssh(o, base_dir, d)),
    }
}
