//! `source "qemu" "NAME"` → [`crate::builder::qemu::config::Config`], with Packer's option
//! names, types, defaults and cross-field rules (`packer-qemu.md` §1, §1.10).

use std::path::{Component, Path, PathBuf};

use crate::bootcmd::{self, BootVars};
use crate::builder::SourceConfig;
use crate::builder::qemu::args::{QemuArgsVars, render_qemuargs};
use crate::builder::qemu::config::{
    Accelerator, BootStep, CommunicatorKind, Config, DiskFormat, ExtraArgs, KeyDriverKind, smp_cpus,
};
use crate::types::{Checksum, Secret, parse_checksum, parse_disk_size};

use super::{Kind, check_winrm, duration, non_negative, port_range, refuse_winrm, resolve, ssh};
use crate::template::Diagnostic;
use crate::template::options::Options;

pub(crate) const KIND: Kind = Kind {
    type_name: "qemu",
    supported: SUPPORTED,
    known: KNOWN,
    known_blocks: true,
    read: |name, o, dir, d| SourceConfig::Qemu(Box::new(source(name, o, dir, d))),
};

/// The options kiln reads from a qemu source.
#[rustfmt::skip]
const SUPPORTED: &[&str] = &[
    "iso_url", "iso_urls", "iso_checksum", "iso_target_path", "iso_target_extension",
    "iso_skip_cache", "output_directory", "vm_name", "disk_size", "format",
    "disk_interface", "disk_cache", "disk_discard", "skip_compaction", "disk_compression",
    "disk_image", "use_backing_file", "skip_resize_disk", "disk_additional_size", "cd_files",
    "cd_content", "cd_label", "http_directory", "http_port_min", "http_port_max", "qemu_binary",
    "accelerator", "machine_type", "memory", "cpus", "net_device", "headless", "vnc_bind_address",
    "vnc_port_min", "vnc_port_max", "boot_wait", "boot_command", "communicator", "ssh_username",
    "ssh_password", "ssh_port", "ssh_timeout", "ssh_private_key_file", "pause_before_connecting",
    "host_port_min", "host_port_max", "shutdown_command", "shutdown_timeout",
    "ssh_clear_authorized_keys", "ssh_pty", "http_content", "http_bind_address", "boot_steps",
    "boot_key_interval", "boot_key_driver", "cpu_model", "sockets", "cores", "threads", "vga",
    "display", "use_default_display", "disk_detect_zeroes", "qemuargs", "firmware", "efi_boot",
    "efi_firmware_code", "efi_firmware_vars", "install_cache", "use_pflash", "ssh_wait_timeout",
    "ssh_read_write_timeout", "winrm_username", "winrm_password", "winrm_host", "winrm_port",
    "winrm_timeout", "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm", "winrm_no_proxy",
    "cdrom_interface", "disable_vnc", "vnc_use_password", "vnc_password", "qmp_enable",
    "qmp_socket_path", "efi_drop_efivars", "ssh_host_port_min", "ssh_host_port_max",
    "skip_nat_mapping", "ssh_host", "boot_keygroup_interval", "http_interface",
    "http_network_protocol", "ssh_handshake_attempts", "ssh_keep_alive_interval", "ssh_ciphers",
    "ssh_key_exchange_algorithms", "temporary_key_pair_type", "temporary_key_pair_bits",
    "temporary_key_pair_name", "qemu_img_args",
    "floppy_files", "floppy_dirs", "floppy_content", "floppy_label",
    "run_once",
    "vtpm", "use_tpm1", "tpm_device_type",
    "net_bridge",
    "ssh_file_transfer_method", "ssh_agent_auth", "ssh_disable_agent_forwarding",
    "ssh_certificate_file", "ssh_keypair_name", "ssh_bastion_host", "ssh_bastion_port",
    "ssh_bastion_username", "ssh_bastion_password", "ssh_bastion_private_key_file",
    "ssh_bastion_certificate_file", "ssh_bastion_agent_auth", "ssh_bastion_interactive",
    "ssh_proxy_host", "ssh_proxy_port", "ssh_proxy_username", "ssh_proxy_password",
    "ssh_local_tunnels", "ssh_remote_tunnels",
    "boot_keymap",
];

/// Options of Packer's qemu builder kiln knows but does not read: none left (issue 14).
pub(crate) const KNOWN: &[&str] = &[];

/// Reads one qemu source. Problems go to `diags`; the returned config is only meaningful when
/// none were added.
pub(crate) fn source(
    name: &str,
    o: &Options<'_>,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> Config {
    let mut urls = Vec::new();
    let reported = d.len();
    let one = o.string("iso_url", d);
    let many = o.string_list("iso_urls", d);
    let many_empty = many.as_ref().is_some_and(Vec::is_empty);
    for (option, list) in [("iso_url", one.map(|u| vec![u])), ("iso_urls", many)] {
        for url in list.unwrap_or_default() {
            match iso_url(&url, base_dir) {
                Ok(u) => urls.push(u),
                Err(m) => o.error(option, m, d),
            }
        }
    }
    if o.has("iso_url") && o.has("iso_urls") {
        o.error(
            "iso_urls",
            "only one of `iso_url` or `iso_urls` must be specified",
            d,
        );
    } else if !o.has("iso_url") && !o.has("iso_urls") {
        o.missing("iso_url", " (or `iso_urls`)", d);
    } else if many_empty && d.len() == reported {
        // (An `iso_url` whose value failed was reported where it failed.)
        o.error("iso_urls", "`iso_urls` is empty", d);
    }
    let iso_checksum = match o.string("iso_checksum", d) {
        Some(s) => match parse_checksum(&s) {
            // A checksum file given as a path is relative to the working directory, like `iso_url`.
            Ok(Checksum::File { url }) => match iso_url(&url, base_dir) {
                Ok(url) => Checksum::File { url },
                Err(m) => {
                    o.error("iso_checksum", m, d);
                    Checksum::None
                }
            },
            Ok(sum) => sum,
            Err(m) => {
                o.error("iso_checksum", m, d);
                Checksum::None
            }
        },
        None => {
            if !o.has("iso_checksum") && !o.was_suggested("iso_checksum") {
                d.push(
                    Diagnostic::new(o.block_at.clone(), "missing required option `iso_checksum`")
                        .with_hint("write `iso_checksum = \"none\"` to skip verification"),
                );
            }
            Checksum::None
        }
    };
    let first = urls.first().cloned().unwrap_or_default();
    let mut c = Config::with_defaults(name, base_dir.to_owned(), first, iso_checksum);
    c.iso_urls = urls;
    if let Some(s) = o.string("iso_target_path", d).filter(|s| !s.is_empty()) {
        c.iso_target_path = Some(resolve(base_dir, Path::new(&s)));
    }
    if let Some(s) = o.string("iso_target_extension", d) {
        let ext = s.trim_start_matches('.').to_ascii_lowercase();
        if ext.is_empty() || ext.contains('/') {
            o.error(
                "iso_target_extension",
                format!("`{s}` is not a file extension"),
                d,
            );
        } else {
            c.iso_target_extension = ext;
        }
    }
    if let Some(b) = o.bool("iso_skip_cache", d) {
        c.iso_skip_cache = b;
        if b {
            // As Packer: QEMU reads the URL itself, so nothing can be verified.
            c.iso_checksum = Checksum::None;
        }
    }

    if let Some(s) = o.string("output_directory", d) {
        c.output_directory = PathBuf::from(s);
    }
    if let Some(s) = o.string("vm_name", d) {
        c.vm_name = s;
    }
    if let Some(s) = o
        .string("disk_size", d)
        .filter(|s| !s.is_empty() && s != "0")
    {
        match parse_disk_size(&s) {
            Ok(bytes) => c.disk_size = bytes,
            Err(m) => o.error("disk_size", m, d),
        }
    }
    if let Some(s) = o.one_of("format", &["qcow2", "raw"], &[], d) {
        c.format = if s == "raw" {
            DiskFormat::Raw
        } else {
            DiskFormat::Qcow2
        };
    }
    let interfaces = ["ide", "sata", "scsi", "sd", "virtio", "virtio-scsi"];
    if let Some(s) = o.one_of("disk_interface", &interfaces, &[], d) {
        c.disk_interface = s;
    }
    let caches = ["writethrough", "writeback", "none", "unsafe", "directsync"];
    if let Some(s) = o.one_of("disk_cache", &caches, &[], d) {
        c.disk_cache = s;
    }
    if let Some(s) = o.one_of("disk_discard", &["unmap", "ignore"], &[], d) {
        c.disk_discard = s;
    }
    if let Some(b) = o.bool("skip_compaction", d) {
        c.skip_compaction = b;
    }
    if let Some(b) = o.bool("disk_compression", d) {
        c.disk_compression = b;
    }
    if c.format != DiskFormat::Qcow2 {
        // As Packer: only qcow2 is compacted or compressed.
        c.skip_compaction = true;
        c.disk_compression = false;
    }
    disk_image(o, &mut c, d);
    cd(o, base_dir, &mut c, d);
    floppy(o, base_dir, &mut c, d);
    let cdroms = ["ide", "sata", "scsi", "virtio", "virtio-scsi"];
    if let Some(s) = o.string("cdrom_interface", d).filter(|s| !s.is_empty()) {
        if cdroms.contains(&s.as_str()) {
            c.cdrom_interface = Some(s);
        } else {
            o.error(
                "cdrom_interface",
                format!(
                    "unrecognized `cdrom_interface` `{s}` (expected one of {})",
                    crate::template::options::list(&cdroms)
                ),
                d,
            );
        }
    }

    if let Some(s) = o.string("http_directory", d).filter(|s| !s.is_empty()) {
        c.http_directory = Some(resolve(base_dir, Path::new(&s)));
    }
    if let Some(v) = o.value("http_content", d) {
        match v {
            hcl::Value::Object(map) => {
                for (path, body) in map {
                    match body {
                        hcl::Value::String(body) => {
                            c.http_content.insert(path, body);
                        }
                        _ => o.error(
                            "http_content",
                            format!("`http_content` values must be strings (`{path}` is not)"),
                            d,
                        ),
                    }
                }
            }
            _ => o.error(
                "http_content",
                "`http_content` expects a map of URL path to content",
                d,
            ),
        }
        if c.http_directory.is_some() && !c.http_content.is_empty() {
            o.error(
                "http_content",
                "`http_directory` and `http_content` cannot be used together",
                d,
            );
        }
    }
    // An empty address is Packer's default (as when the option is not set).
    if let Some(s) = o.string("http_bind_address", d).filter(|s| !s.is_empty()) {
        match s.parse() {
            Ok(ip) => c.http_bind_address = ip,
            Err(_) => o.error(
                "http_bind_address",
                format!("`http_bind_address` must be an IP address, got `{s}`"),
                d,
            ),
        }
    }
    if let Some(s) = o.string("http_interface", d).filter(|s| !s.is_empty()) {
        if o.string("http_bind_address", d)
            .is_some_and(|a| !a.is_empty())
        {
            o.error(
                "http_interface",
                "either `http_interface` or `http_bind_address` can be specified",
                d,
            );
        }
        c.http_interface = Some(s);
    }
    // The guest reaches kiln's server over QEMU's IPv4 user network: `tcp6` and Unix sockets
    // could not be reached, `tcp4` only needs an IPv4 address to listen on.
    match o.string("http_network_protocol", d).as_deref() {
        None | Some("" | "tcp") => {}
        Some("tcp4") if c.http_bind_address.is_ipv6() => o.error(
            "http_network_protocol",
            "`http_network_protocol = \"tcp4\"` needs an IPv4 `http_bind_address`",
            d,
        ),
        Some("tcp4") => {}
        Some(p @ ("tcp6" | "unix" | "unixpacket")) => o.error(
            "http_network_protocol",
            format!(
                "`http_network_protocol = \"{p}\"`: the guest reaches kiln's HTTP server over \
                 QEMU's IPv4 user network, so it listens on `tcp` or `tcp4`"
            ),
            d,
        ),
        Some(p) => o.error(
            "http_network_protocol",
            format!("`http_network_protocol` must be one of `tcp`, `tcp4`, `tcp6`, `unix` or `unixpacket`, got `{p}`"),
            d,
        ),
    }
    (c.http_port_min, c.http_port_max) =
        port_range(o, "http_port", 0, (c.http_port_min, c.http_port_max), d);

    if let Some(s) = o.string("qemu_binary", d) {
        c.qemu_binary = s;
    }
    let accels = ["auto", "kvm", "tcg", "none"];
    if let Some(s) = o.one_of("accelerator", &accels, &["xen", "hax", "hvf", "whpx"], d) {
        c.accelerator = match s.as_str() {
            "kvm" => Accelerator::Kvm,
            "tcg" => Accelerator::Tcg,
            "none" => Accelerator::None,
            _ => Accelerator::Auto,
        };
    }
    if let Some(s) = o.string("machine_type", d) {
        c.machine_type = s;
    }
    if let Some(n) = o.uint("memory", 0, u64::from(u32::MAX), d) {
        // As Packer: values below 10 MiB mean the default.
        c.memory = if n < 10 { 512 } else { n as u32 };
    }
    let count = |name: &str, d: &mut Vec<Diagnostic>| {
        o.uint(name, 0, u64::from(u32::MAX), d)
            .map_or(0, |n| n as u32)
    };
    c.sockets = count("sockets", d);
    c.cores = count("cores", d);
    c.threads = count("threads", d);
    c.cpus = smp_cpus(count("cpus", d), c.sockets, c.cores, c.threads);
    c.cpu_model = o.string("cpu_model", d).filter(|s| !s.is_empty());
    c.vga = o.string("vga", d).filter(|s| !s.is_empty());
    c.display = o.string("display", d);
    if let Some(b) = o.bool("use_default_display", d) {
        c.use_default_display = b;
    }
    if let Some(s) = o.one_of("disk_detect_zeroes", &["unmap", "on", "off"], &[], d) {
        c.disk_detect_zeroes = s;
    }
    if let Some(v) = o.value("qemuargs", d) {
        let rows: Option<Vec<Vec<String>>> = match &v {
            hcl::Value::Array(rows) => rows
                .iter()
                .map(|row| match row {
                    hcl::Value::Array(parts) if !parts.is_empty() => parts
                        .iter()
                        .map(|p| match p {
                            hcl::Value::String(s) => Some(s.clone()),
                            hcl::Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match rows {
            Some(rows) => {
                // Stand-in values: what matters here is that every placeholder is known.
                let vars = QemuArgsVars {
                    http_ip: "10.0.2.2".to_owned(),
                    http_port: 8000,
                    http_dir: c.http_directory.clone(),
                    output_dir: c.output_directory.clone(),
                    name: c.vm_name.clone(),
                    ssh_host_port: Some(2222),
                    ssh_public_key: String::new(),
                };
                for part in rows.iter().flatten() {
                    if let Err(e) = render_qemuargs(&[vec![part.clone()]], &vars) {
                        o.error("qemuargs", format!("{e} (in `{part}`)"), d);
                    }
                }
                c.qemuargs = rows;
            }
            None => o.error(
                "qemuargs",
                "`qemuargs` expects a list of non-empty lists of strings, e.g. [[\"-m\", \"2G\"]]",
                d,
            ),
        }
    }
    let path = |name: &str, d: &mut Vec<Diagnostic>| {
        o.string(name, d)
            .filter(|s| !s.is_empty())
            .map(|s| resolve(base_dir, Path::new(&s)))
    };
    c.firmware = path("firmware", d);
    c.use_pflash = o.bool("use_pflash", d).unwrap_or(false);
    c.efi_firmware_code = path("efi_firmware_code", d);
    c.efi_firmware_vars = path("efi_firmware_vars", d);
    // As Packer: giving either firmware path turns efi_boot on.
    c.efi_boot = o.bool("efi_boot", d).unwrap_or(false)
        || c.efi_firmware_code.is_some()
        || c.efi_firmware_vars.is_some();
    c.efi_drop_efivars = o.bool("efi_drop_efivars", d).unwrap_or(false);
    tpm(o, &mut c, d);
    c.qemu_img_args = qemu_img_args(o, d);
    if let Some(s) = o.string("net_device", d) {
        c.net_device = s;
    }
    if let Some(b) = o.bool("headless", d) {
        c.headless = b;
    }
    if let Some(s) = o.string("vnc_bind_address", d) {
        c.vnc_bind_address = s;
    }
    (c.vnc_port_min, c.vnc_port_max) =
        port_range(o, "vnc_port", 5900, (c.vnc_port_min, c.vnc_port_max), d);
    vnc_and_qmp(o, base_dir, &mut c, d);

    if let Some(w) = duration(o, "boot_wait", d) {
        // As Packer: zero means the default 10s; a negative value means no wait.
        if w.negative || !w.abs.is_zero() {
            c.boot_wait = w;
        }
    }
    // QEMU's layout names, in any case; an unknown one is reported by `one_of` with the list.
    if let Some(name) = o.string("boot_keymap", d) {
        match bootcmd::Keymap::named(&name.to_ascii_lowercase()) {
            Some(keymap) => c.boot_keymap = keymap,
            None => {
                let keymaps: Vec<&str> = bootcmd::Keymap::names().collect();
                o.one_of("boot_keymap", &keymaps, &[], d);
            }
        }
    }
    if let Some(cmd) = o.string_list("boot_command", d) {
        check_boot_command(o, "boot_command", 0, &cmd, &c.vm_name, c.boot_keymap, d);
        c.boot_command = cmd;
    }
    if let Some(steps) = boot_steps(o, &c.vm_name, c.boot_keymap, d) {
        if !c.boot_command.is_empty() && !steps.is_empty() {
            o.error(
                "boot_steps",
                "`boot_command` and `boot_steps` cannot be used together",
                d,
            );
        }
        c.boot_steps = steps;
    }
    if let Some(t) = duration(o, "boot_key_interval", d) {
        // As Packer: zero (or negative) means the default, which for kiln is guest pacing.
        if !t.negative && !t.abs.is_zero() {
            c.boot_key_interval = Some(t.abs);
        }
    }
    if let Some(b) = o.bool("disable_vnc", d) {
        c.disable_vnc = b;
        if b && (!c.boot_command.is_empty() || !c.boot_steps.is_empty()) {
            o.error(
                "disable_vnc",
                "a boot command cannot be used when VNC is disabled (`disable_vnc = true`)",
                d,
            );
        }
    }
    if let Some(t) = duration(o, "boot_keygroup_interval", d)
        && !t.negative
        && !t.abs.is_zero()
    {
        c.boot_keygroup_interval = Some(t.abs);
    }
    if let Some(b) = o.bool("install_cache", d) {
        c.install_cache = b;
    }
    if let Some(s) = o.one_of("boot_key_driver", &["qmp", "vnc"], &[], d) {
        c.boot_key_driver = if s == "vnc" {
            KeyDriverKind::Vnc
        } else {
            KeyDriverKind::Qmp
        };
    }
    if c.vnc_use_password && c.boot_key_driver == KeyDriverKind::Vnc {
        o.error(
            "vnc_use_password",
            "kiln types over VNC without a password only: with `vnc_use_password`, leave \
             `boot_key_driver` at its default `qmp`",
            d,
        );
    }

    if refuse_winrm(o, d) {
        // The `winrm_*` options are still type-checked below; no SSH options are asked for.
        c.communicator = CommunicatorKind::None;
    } else if let Some(s) = o.one_of("communicator", &["ssh", "none"], &["docker"], d) {
        c.communicator = if s == "none" {
            CommunicatorKind::None
        } else {
            CommunicatorKind::Ssh
        };
    }
    c.run_once = o.bool("run_once", d).unwrap_or(false);
    if c.communicator == CommunicatorKind::Ssh {
        let mut ssh = ssh(o, base_dir, d);
        // Packer's older names of `host_port_min` / `host_port_max`, used when those are not set.
        if !o.has("host_port_min") && !o.has("host_port_max") {
            (ssh.host_port_min, ssh.host_port_max) = port_range(
                o,
                "ssh_host_port",
                0,
                (ssh.host_port_min, ssh.host_port_max),
                d,
            );
        }
        c.ssh = Some(ssh);
    }
    c.ssh_host = o.string("ssh_host", d).filter(|s| !s.is_empty());
    net_bridge(o, &mut c, d);
    c.skip_nat_mapping = o.bool("skip_nat_mapping", d).unwrap_or(false);
    check_winrm(o, d);

    if let Some(s) = o.string("shutdown_command", d).filter(|s| !s.is_empty()) {
        c.shutdown_command = Some(s);
    }
    if let Some(t) = non_negative(o, "shutdown_timeout", d) {
        c.shutdown_timeout = t;
    }
    c
}

/// `vnc_use_password`, `vnc_password`, `qmp_enable`, `qmp_socket_path`.
fn vnc_and_qmp(o: &Options<'_>, base_dir: &Path, c: &mut Config, d: &mut Vec<Diagnostic>) {
    c.vnc_use_password = o.bool("vnc_use_password", d).unwrap_or(false);
    if let Some(p) = o.string("vnc_password", d).filter(|p| !p.is_empty()) {
        if p.len() > 8 {
            o.error(
                "vnc_password",
                format!(
                    "`vnc_password` is {} bytes long; VNC passwords have at most 8",
                    p.len()
                ),
                d,
            );
        }
        c.vnc_password = Some(Secret::new(p));
    }
    // As Packer: a VNC password turns the user's QMP socket on.
    let qmp = o.bool("qmp_enable", d).unwrap_or(false) || c.vnc_use_password;
    let path = o.string("qmp_socket_path", d).filter(|s| !s.is_empty());
    match (qmp, path) {
        (true, Some(p)) => c.qmp_socket_path = Some(resolve(base_dir, Path::new(&p))),
        (true, None) => {
            c.qmp_socket_path = Some(c.output_directory.join(format!("{}.monitor", c.vm_name)));
        }
        (false, Some(_)) => o.error(
            "qmp_socket_path",
            "`qmp_socket_path` needs `qmp_enable = true` (kiln's own QMP socket is private)",
            d,
        ),
        (false, None) => {}
    }
}

/// The `qemu_img_args { create = […], convert = […], resize = […] }` block.
fn qemu_img_args(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> ExtraArgs {
    let Some(b) = o.block("qemu_img_args", &["create", "convert", "resize"], d) else {
        return ExtraArgs::default();
    };
    ExtraArgs {
        create: b.string_list("create", d).unwrap_or_default(),
        convert: b.string_list("convert", d).unwrap_or_default(),
        resize: b.string_list("resize", d).unwrap_or_default(),
    }
}

/// `disk_image`, `use_backing_file`, `skip_resize_disk`, `disk_additional_size`.
fn disk_image(o: &Options<'_>, c: &mut Config, d: &mut Vec<Diagnostic>) {
    if let Some(b) = o.bool("disk_image", d) {
        c.disk_image = b;
    }
    if let Some(b) = o.bool("use_backing_file", d) {
        c.use_backing_file = b;
    }
    if let Some(b) = o.bool("skip_resize_disk", d) {
        c.skip_resize_disk = b;
    }
    if c.use_backing_file {
        if !c.disk_image || c.format != DiskFormat::Qcow2 {
            o.error(
                "use_backing_file",
                "`use_backing_file` can only be used with `disk_image = true` and `format = \"qcow2\"`",
                d,
            );
        }
        // As Packer: compaction would copy the backing image into the disk.
        c.skip_compaction = true;
    }
    if c.skip_resize_disk && !c.disk_image {
        o.error(
            "skip_resize_disk",
            "`skip_resize_disk` can only be used when `disk_image` is true",
            d,
        );
    }
    if let Some(sizes) = o.string_list("disk_additional_size", d) {
        for s in sizes {
            match parse_disk_size(&s) {
                Ok(bytes) => c.disk_additional_size.push(bytes),
                Err(m) => o.error("disk_additional_size", m, d),
            }
        }
    }
}

/// `cd_files`, `cd_content`, `cd_label`.
fn cd(o: &Options<'_>, base_dir: &Path, c: &mut Config, d: &mut Vec<Diagnostic>) {
    if let Some(files) = o.string_list("cd_files", d) {
        // Paths and glob patterns alike are relative to the working directory; patterns are expanded
        // when the CD is made.
        c.cd_files = files
            .iter()
            .map(|f| resolve(base_dir, Path::new(f)))
            .collect();
    }
    if let Some(map) = o.string_map("cd_content", d) {
        for (path, content) in map {
            if path.is_empty()
                || Path::new(&path)
                    .components()
                    .any(|p| !matches!(p, Component::Normal(_)))
            {
                o.error(
                    "cd_content",
                    format!("`{path}` must be a relative path inside the CD (no `..`)"),
                    d,
                );
                continue;
            }
            c.cd_content.insert(path, content);
        }
    }
    if let Some(label) = o.string("cd_label", d) {
        c.cd_label = label;
    }
}

/// `net_bridge`: as Packer, `{{ .HTTPIP }}` is then the bridge's first IPv4 address, so kiln's
/// HTTP server listens there (unless `http_bind_address` or `http_interface` says otherwise).
fn net_bridge(o: &Options<'_>, c: &mut Config, d: &mut Vec<Diagnostic>) {
    let Some(bridge) = o.string("net_bridge", d).filter(|s| !s.is_empty()) else {
        return;
    };
    if !cfg!(target_os = "linux") {
        o.error("net_bridge", "`net_bridge` is only supported on Linux", d);
    }
    if bridge.contains(',') || bridge.len() > 15 {
        o.error(
            "net_bridge",
            format!("`{bridge}` is not a Linux interface name"),
            d,
        );
    }
    let bind_given = o
        .string("http_bind_address", d)
        .is_some_and(|a| !a.is_empty());
    if c.http_interface.is_none() && !bind_given {
        c.http_interface = Some(bridge.clone());
    }
    c.net_bridge = Some(bridge);
}

/// `floppy_files`, `floppy_dirs`, `floppy_content`, `floppy_label`, checked as Packer does:
/// a path must exist and a pattern must be well-formed.
fn floppy(o: &Options<'_>, base_dir: &Path, c: &mut Config, d: &mut Vec<Diagnostic>) {
    for (name, field) in [
        ("floppy_files", &mut c.floppy_files),
        ("floppy_dirs", &mut c.floppy_dirs),
    ] {
        for entry in o.string_list(name, d).unwrap_or_default() {
            let path = resolve(base_dir, Path::new(&entry));
            let text = path.to_string_lossy().into_owned();
            if text.contains(['*', '?', '[']) {
                if let Err(e) = glob::Pattern::new(&text) {
                    o.error(
                        name,
                        format!("`{entry}` is not a valid pattern: {}", e.msg),
                        d,
                    );
                }
            } else if !path.exists() {
                o.error(name, format!("`{}` does not exist", path.display()), d);
            }
            field.push(path);
        }
    }
    if let Some(map) = o.string_map("floppy_content", d) {
        for (path, content) in map {
            let rel = path.trim_start_matches('/');
            if rel.is_empty()
                || Path::new(rel)
                    .components()
                    .any(|p| !matches!(p, Component::Normal(_)))
            {
                o.error(
                    "floppy_content",
                    format!("`{path}` must be a path inside the floppy (no `..`)"),
                    d,
                );
                continue;
            }
            if rel.contains(['*', '?', '[']) {
                o.error(
                    "floppy_content",
                    format!("`{path}`: glob patterns are not allowed in `floppy_content` paths"),
                    d,
                );
                continue;
            }
            c.floppy_content.insert(rel.to_owned(), content);
        }
    }
    if let Some(label) = o.string("floppy_label", d).filter(|l| !l.is_empty()) {
        let max = crate::floppy::LABEL_MAX;
        if label.len() > max || !label.is_ascii() {
            o.error(
                "floppy_label",
                format!("`{label}`: a FAT volume label is at most {max} ASCII characters"),
                d,
            );
        }
        c.floppy_label = label;
    }
}

/// `vtpm`, `use_tpm1`, `tpm_device_type`.
fn tpm(o: &Options<'_>, c: &mut Config, d: &mut Vec<Diagnostic>) {
    c.vtpm = o.bool("vtpm", d).unwrap_or(false);
    c.use_tpm1 = o.bool("use_tpm1", d).unwrap_or(false);
    // QEMU's TPM front ends: x86 (`tpm-tis`, `tpm-crb`), ARM (`tpm-tis-device`), PPC (`tpm-spapr`).
    let devices = ["tpm-tis", "tpm-crb", "tpm-tis-device", "tpm-spapr"];
    if let Some(s) = o.string("tpm_device_type", d).filter(|s| !s.is_empty()) {
        if devices.contains(&s.as_str()) {
            c.tpm_device_type = s;
        } else {
            o.error(
                "tpm_device_type",
                format!(
                    "`tpm_device_type` must be one of {}, got `{s}`",
                    crate::template::options::list(&devices)
                ),
                d,
            );
        }
    }
}

/// Renders and parses a boot command at validate time with stand-in values for the variables,
/// so a malformed `<wait…>`, an unknown `{{ … }}` or an untypable character is reported before
/// any VM starts, with the entry and byte it is at.
fn check_boot_command(
    o: &Options<'_>,
    name: &str,
    row: usize,
    entries: &[String],
    vm_name: &str,
    keymap: bootcmd::Keymap,
    d: &mut Vec<Diagnostic>,
) {
    let vars = BootVars {
        http_ip: "10.0.2.2".to_owned(),
        http_port: 8000,
        name: vm_name.to_owned(),
        ssh_public_key: "ssh-ed25519 AAAA kiln".to_owned(),
    };
    let joined = entries.concat();
    if let Err(e) = bootcmd::compile(&joined, &vars, keymap) {
        let message = e.to_string();
        let Some(offset) = e.offset() else {
            o.error(name, message, d);
            return;
        };
        let mut start = 0;
        for (i, entry) in entries.iter().enumerate() {
            if offset < start + entry.len() || i + 1 == entries.len() {
                let path = if name == "boot_steps" {
                    vec![row, 0]
                } else {
                    vec![i]
                };
                let at = o.element_at(name, &path, offset - start);
                d.push(Diagnostic::new(at, format!("{message} in `{name}`")));
                return;
            }
            start += entry.len();
        }
    }
}

/// `boot_steps = [["command", "description"], ...]`; the description is optional.
fn boot_steps(
    o: &Options<'_>,
    vm_name: &str,
    keymap: bootcmd::Keymap,
    d: &mut Vec<Diagnostic>,
) -> Option<Vec<BootStep>> {
    let v = o.value("boot_steps", d)?;
    let bad = |d: &mut Vec<Diagnostic>| {
        o.error(
            "boot_steps",
            "`boot_steps` expects a list of [command, description] lists of strings",
            d,
        );
        None
    };
    let hcl::Value::Array(rows) = v else {
        return bad(d);
    };
    let mut steps = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let hcl::Value::Array(parts) = row else {
            return bad(d);
        };
        let strings: Option<Vec<String>> = parts
            .iter()
            .map(|p| match p {
                hcl::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let Some(strings) = strings.filter(|s| (1..=2).contains(&s.len())) else {
            return bad(d);
        };
        check_boot_command(o, "boot_steps", i, &strings[..1], vm_name, keymap, d);
        steps.push(BootStep {
            command: strings[0].clone(),
            description: strings.get(1).cloned().unwrap_or_default(),
        });
    }
    Some(steps)
}

/// An `iso_url` as kiln will use it: `http(s)://` and `file://` URLs kept, paths resolved
/// against the working directory (as in Packer).
fn iso_url(url: &str, base_dir: &Path) -> Result<String, String> {
    match url.split_once("://") {
        Some(("http" | "https" | "file", _)) => Ok(url.to_owned()),
        Some((scheme, _)) => Err(format!(
            "URL scheme `{scheme}` is not supported by kiln (use `http://`, `https://`, `file://` or a path)"
        )),
        None if url.is_empty() => Err("`iso_url` is empty".to_owned()),
        None => Ok(resolve(base_dir, Path::new(url))
            .to_string_lossy()
            .into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_urls() {
        let dir = Path::new("/t/examples/testos");
        let table = [
            ("http://x/a.iso", "http://x/a.iso", "http kept"),
            ("https://x/a.iso", "https://x/a.iso", "https kept"),
            ("file:///srv/a.iso", "file:///srv/a.iso", "file URL kept"),
            ("../../iso/a.iso", "/t/iso/a.iso", "relative path resolved"),
            ("./a.iso", "/t/examples/testos/a.iso", "dot removed"),
            ("/srv/a.iso", "/srv/a.iso", "absolute path kept"),
        ];
        for (input, want, reason) in table {
            assert_eq!(iso_url(input, dir).as_deref(), Ok(want), "{reason}");
        }
        assert!(
            iso_url("ftp://x/a.iso", dir).is_err(),
            "other schemes rejected"
        );
    }
}
