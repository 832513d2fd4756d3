//! Readers of `provisioner "ansible"` and `provisioner "ansible-local"`: Packer's options, local
//! paths checked where they are written.

use std::path::{Path, PathBuf};

use super::Diagnostic;
use super::build::env_pairs;
use super::options::Options;
use super::sources::resolve;
use crate::provisioner::ansible::{self, Galaxy};
use crate::provisioner::ansible_local::{self, Playbooks};

/// Options of Packer's SSH proxy: kiln connects directly, so they are accepted and named
/// when the provisioner runs (see `crate::provisioner::ansible`).
const PROXY_OPTIONS: &[&str] = &[
    "local_port",
    "ssh_host_key_file",
    "ssh_authorized_key_file",
    "sftp_command",
    "ansible_proxy_key_type",
];

/// What `provisioner "ansible"` reads.
pub(super) const OPTIONS: &[&str] = &[
    "playbook_file",
    "command",
    "extra_arguments",
    "ansible_env_vars",
    "ansible_ssh_extra_args",
    "user",
    "host_alias",
    "groups",
    "empty_groups",
    "inventory_directory",
    "inventory_file",
    "inventory_file_template",
    "keep_inventory_file",
    "galaxy_file",
    "galaxy_command",
    "galaxy_force_install",
    "galaxy_force_with_deps",
    "roles_path",
    "collections_path",
    "skip_version_check",
    "use_sftp",
    "use_proxy",
    "local_port",
    "ssh_host_key_file",
    "ssh_authorized_key_file",
    "sftp_command",
    "ansible_proxy_key_type",
];

/// Packer options of `ansible` kiln lacks (it has no WinRM communicator).
pub(super) const KNOWN: &[&str] = &["ansible_winrm_use_http", "continue_on_error"];

/// What `provisioner "ansible-local"` reads.
pub(super) const LOCAL_OPTIONS: &[&str] = &[
    "playbook_file",
    "playbook_files",
    "playbook_dir",
    "playbook_paths",
    "role_paths",
    "collection_paths",
    "group_vars",
    "host_vars",
    "inventory_file",
    "inventory_groups",
    "extra_arguments",
    "command",
    "staging_directory",
    "clean_staging_directory",
    "galaxy_file",
    "galaxy_command",
    "galaxy_force_install",
    "galaxy_roles_path",
    "galaxy_collections_path",
];

/// Packer options of `ansible-local` kiln lacks.
pub(super) const LOCAL_KNOWN: &[&str] = &["continue_on_error"];

/// What a path option must name.
#[derive(Clone, Copy)]
enum Expect {
    File,
    Dir,
    Exists,
}

/// The local path option `name`, resolved against the working directory (as in Packer) and checked.
fn path(
    o: &Options,
    name: &str,
    expect: Expect,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> Option<PathBuf> {
    let p = resolve(base_dir, Path::new(&o.string(name, d)?));
    check(o, name, &p, expect, d);
    Some(p)
}

/// The local paths of list option `name`, each checked.
fn paths(
    o: &Options,
    name: &str,
    expect: Expect,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let list = o.string_list(name, d).unwrap_or_default();
    list.iter()
        .map(|s| {
            let p = resolve(base_dir, Path::new(s));
            check(o, name, &p, expect, d);
            p
        })
        .collect()
}

fn check(o: &Options, name: &str, p: &Path, expect: Expect, d: &mut Vec<Diagnostic>) {
    let problem = match (expect, std::fs::metadata(p)) {
        (_, Err(_)) => "does not exist",
        (Expect::File, Ok(m)) if m.is_dir() => "is a directory, not a file",
        (Expect::Dir, Ok(m)) if !m.is_dir() => "is not a directory",
        _ => return,
    };
    o.error(name, format!("`{name}`: `{}` {problem}", p.display()), d);
}

/// One `provisioner "ansible"` block.
pub(super) fn ansible(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> ansible::Config {
    let playbook = path(o, "playbook_file", Expect::File, base_dir, d);
    if !o.has("playbook_file") {
        o.missing("playbook_file", "", d);
    }
    let mut c = ansible::Config::with_defaults(playbook.unwrap_or_default());
    if let Some(s) = o.string("command", d) {
        c.command = s;
    }
    c.extra_arguments = o.string_list("extra_arguments", d).unwrap_or_default();
    c.ansible_env_vars = env_pairs(o, "ansible_env_vars", d);
    if let Some(args) = o.string_list("ansible_ssh_extra_args", d) {
        c.ssh_extra_args = args;
    }
    c.user = o.string("user", d).filter(|u| !u.is_empty());
    if let Some(s) = o.string("host_alias", d) {
        c.host_alias = s;
    }
    c.groups = o.string_list("groups", d).unwrap_or_default();
    c.empty_groups = o.string_list("empty_groups", d).unwrap_or_default();
    c.inventory_directory = path(o, "inventory_directory", Expect::Dir, base_dir, d);
    c.inventory_file = path(o, "inventory_file", Expect::Exists, base_dir, d);
    c.inventory_file_template = o.string("inventory_file_template", d);
    c.keep_inventory_file = o.bool("keep_inventory_file", d).unwrap_or(false);
    c.galaxy = galaxy(o, base_dir, d);
    c.galaxy.force_with_deps = o.bool("galaxy_force_with_deps", d).unwrap_or(false);
    let local_path = |name: &str, d: &mut Vec<Diagnostic>| {
        o.string(name, d)
            .map(|s| resolve(base_dir, Path::new(&s)).display().to_string())
    };
    c.galaxy.roles_path = local_path("roles_path", d);
    c.galaxy.collections_path = local_path("collections_path", d);
    c.skip_version_check = o.bool("skip_version_check", d).unwrap_or(false);
    c.use_sftp = o.bool("use_sftp", d).unwrap_or(false);
    if o.bool("use_proxy", d) == Some(true) {
        c.proxy_options.push("`use_proxy = true`".into());
    }
    for name in PROXY_OPTIONS {
        // Evaluated so that a broken value is still reported.
        if o.value(name, d).is_some() {
            c.proxy_options.push(format!("`{name}`"));
        }
    }
    c
}

/// `galaxy_file`, `galaxy_command` and `galaxy_force_install`, which both provisioners have.
fn galaxy(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> Galaxy {
    let mut g = Galaxy {
        file: path(o, "galaxy_file", Expect::File, base_dir, d),
        force: o.bool("galaxy_force_install", d).unwrap_or(false),
        ..Galaxy::default()
    };
    if let Some(s) = o.string("galaxy_command", d) {
        g.command = s;
    }
    g
}

/// One `provisioner "ansible-local"` block.
pub(super) fn ansible_local(
    o: &Options,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> ansible_local::Config {
    let playbooks = match (o.has("playbook_file"), o.has("playbook_files")) {
        (true, true) => {
            o.error(
                "playbook_files",
                "only one of `playbook_file` or `playbook_files` may be set",
                d,
            );
            Playbooks::Files(Vec::new())
        }
        (false, true) => Playbooks::Files(paths(o, "playbook_files", Expect::File, base_dir, d)),
        (true, false) => {
            Playbooks::File(path(o, "playbook_file", Expect::File, base_dir, d).unwrap_or_default())
        }
        (false, false) => {
            o.missing("playbook_file", " (or `playbook_files`)", d);
            Playbooks::Files(Vec::new())
        }
    };
    let mut c = ansible_local::Config::with_defaults(playbooks);
    c.playbook_dir = path(o, "playbook_dir", Expect::Dir, base_dir, d);
    c.playbook_paths = paths(o, "playbook_paths", Expect::Dir, base_dir, d);
    c.role_paths = paths(o, "role_paths", Expect::Dir, base_dir, d);
    c.collection_paths = paths(o, "collection_paths", Expect::Dir, base_dir, d);
    c.group_vars = path(o, "group_vars", Expect::Dir, base_dir, d);
    c.host_vars = path(o, "host_vars", Expect::Dir, base_dir, d);
    c.inventory_file = path(o, "inventory_file", Expect::File, base_dir, d);
    // A list, or Packer's comma-separated string.
    c.inventory_groups = match o.value("inventory_groups", d) {
        Some(hcl::Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => o.string_list("inventory_groups", d).unwrap_or_default(),
        None => Vec::new(),
    };
    c.extra_arguments = o.string_list("extra_arguments", d).unwrap_or_default();
    if let Some(s) = o.string("command", d) {
        c.command = s;
    }
    c.staging_directory = o.string("staging_directory", d);
    c.clean_staging_directory = o.bool("clean_staging_directory", d).unwrap_or(false);
    c.galaxy = galaxy(o, base_dir, d);
    c.galaxy.roles_path = o.string("galaxy_roles_path", d);
    c.galaxy.collections_path = o.string("galaxy_collections_path", d);
    c
}
