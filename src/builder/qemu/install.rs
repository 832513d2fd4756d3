//! The install cache key of a qemu build: everything that can change the installed system, and
//! nothing that changes from run to run.
//!
//! In the key: the ISO's (or base image's) digest, QEMU's version, the QEMU command line with
//! every per-run value (ports, paths of the output directory, QMP socket and serial log)
//! replaced by a fixed placeholder — so machine, accelerator, memory, CPUs, firmware, disk
//! interface and format, network device and `qemuargs` are in it —, the disk sizes, the boot
//! command or boot steps rendered with placeholder `{{ .HTTPPort }}` and `{{ .SSHPublicKey }}`,
//! the name and content of every file served over HTTP (`http_directory`, `http_content`) and
//! put on the CD (`cd_files`, `cd_content`, `cd_label`), and the SSH user and port.
//!
//! Not in it: the HTTP, SSH and VNC ports, the output directory, `boot_wait` and the typing
//! options (they change when keys arrive, not which), the provisioners, the shutdown and
//! everything after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::accel::ResolvedAccel;
use super::args::{self, RunParams};
use super::config::{CommunicatorKind, Config};
use super::qmp::{self, Qmp};
use crate::bootcmd::BootVars;
use crate::wait::{self, Attempt};

/// What the key is made of besides the configuration: digests of the files the install reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInputs {
    /// `algo:hex` of the ISO (or `disk_image` base image).
    pub iso_digest: String,
    /// `qemu-system-* --version`'s first line: a RAM snapshot only loads into the same QEMU.
    pub qemu_version: String,
    /// The accelerator the build runs with.
    pub accel: ResolvedAccel,
    /// `(path, sha256)` of every file served over HTTP.
    pub http_files: Vec<(String, String)>,
    /// `(path, sha256)` of every file put on the `cd_files` / `cd_content` CD.
    pub cd_files: Vec<(String, String)>,
    /// `(path, sha256)` of every file and directory (digest empty) put on the floppy
    /// (`floppy_files`, `floppy_dirs`, `floppy_content`).
    pub floppy_files: Vec<(String, String)>,
}

/// The placeholder every per-run value is replaced with.
const PER_RUN: &str = "per-run";

/// The hex key of the install `cfg` describes.
pub fn key(cfg: &Config, inputs: &KeyInputs) -> String {
    let vars = BootVars {
        http_ip: super::steps::boot_command::HTTP_IP.to_owned(),
        http_port: 0,
        name: cfg.vm_name.clone(),
        ssh_public_key: PER_RUN.to_owned(),
    };
    // A command that does not render is kept as written: the build fails on it anyway.
    let render = |s: &str| crate::bootcmd::render(s, &vars).unwrap_or_else(|_| s.to_owned());
    let boot: Vec<String> = if cfg.boot_steps.is_empty() {
        vec![render(&cfg.boot_command.concat())]
    } else {
        cfg.boot_steps.iter().map(|s| render(&s.command)).collect()
    };

    let mut normalized = cfg.clone();
    normalized.headless = true;
    normalized.vnc_bind_address = PER_RUN.to_owned();
    if normalized.qmp_socket_path.is_some() {
        normalized.qmp_socket_path = Some(PathBuf::from(PER_RUN));
    }
    for part in normalized.qemuargs.iter_mut().flatten() {
        *part = render(part);
    }
    let per_run = PathBuf::from(PER_RUN);
    let params = RunParams {
        disk_path: per_run.join("disk"),
        additional_disks: (1..=cfg.disk_additional_size.len())
            .map(|i| per_run.join(format!("disk-{i}")))
            .collect(),
        iso_path: (!cfg.disk_image).then(|| per_run.join("iso")),
        cd_path: (!cfg.cd_files.is_empty() || !cfg.cd_content.is_empty())
            .then(|| per_run.join("cd")),
        floppy_path: (!inputs.floppy_files.is_empty()).then(|| per_run.join("floppy")),
        tpm_socket: cfg.vtpm.then(|| per_run.join("tpm")),
        accel: inputs.accel,
        vnc_port: 5900,
        qmp_socket: per_run.join("qmp"),
        ssh_host_port: (cfg.communicator == CommunicatorKind::Ssh).then_some(0),
        ssh_forward_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        serial_log: per_run.join("serial"),
        key_trace: None,
        efi: cfg.efi_boot.then(|| {
            let code = cfg
                .efi_firmware_code
                .clone()
                .unwrap_or_else(|| PathBuf::from("auto"));
            (code, per_run.join("efivars"))
        }),
    };
    let argv = args::qemu_args(&normalized, &params);

    let http_content: BTreeMap<&String, String> = cfg
        .http_content
        .iter()
        .map(|(k, v)| (k, crate::install_cache::digest(v.as_bytes())))
        .collect();
    let cd_content: BTreeMap<&String, String> = cfg
        .cd_content
        .iter()
        .map(|(k, v)| (k, crate::install_cache::digest(v.as_bytes())))
        .collect();
    let ssh = cfg
        .ssh
        .as_ref()
        .map(|s| (s.username.as_str(), s.port, s.private_key_file.is_none()));
    let efi_vars = cfg
        .efi_firmware_vars
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let doc = serde_json::json!({
        "kiln-install-key": 1,
        "iso": inputs.iso_digest,
        "qemu": inputs.qemu_version,
        "argv": argv,
        "disk_size": cfg.disk_size,
        "disk_additional_size": cfg.disk_additional_size,
        "disk_image": cfg.disk_image,
        "use_backing_file": cfg.use_backing_file,
        "skip_resize_disk": cfg.skip_resize_disk,
        "boot": boot,
        "http_files": inputs.http_files,
        "http_content": http_content,
        "cd_files": inputs.cd_files,
        "cd_content": cd_content,
        "cd_label": cfg.cd_label,
        "floppy_files": inputs.floppy_files,
        "floppy_label": cfg.floppy_label,
        "efi_vars": efi_vars,
        "ssh": ssh,
    });
    // The layout changes the keys the guest receives; the default stays out of the document
    // so installs cached before `boot_keymap` existed keep their keys.
    let mut doc = doc;
    if cfg.boot_keymap != crate::bootcmd::Keymap::us() {
        doc["boot_keymap"] = cfg.boot_keymap.name().into();
    }
    crate::install_cache::digest(doc.to_string().as_bytes())
}

/// Loads the RAM and device state of a layer into a QEMU started with `-incoming defer` and
/// lets the guest run on from where it was kept.
pub async fn resume(qmp: &Qmp, vmstate: &Path) -> Result<(), qmp::Error> {
    let uri = format!(
        "exec:cat {}",
        super::steps::save_install::shell_quote(vmstate)
    );
    qmp.execute("migrate-incoming", Some(serde_json::json!({ "uri": uri })))
        .await?;
    // QEMU reports `inmigrate` until the state is loaded (and exits if it cannot be).
    let loaded = wait::until_ok(RESUME_TIMEOUT, RESUME_POLL, || async {
        match qmp.execute("query-status", None).await {
            Ok(v) if v["status"] == "inmigrate" => Attempt::Retry(qmp::Error::Reply {
                command: "query-status".into(),
                reply: v.to_string(),
            }),
            Ok(v) => Attempt::Done(v),
            Err(e) => Attempt::Fatal(e),
        }
    })
    .await;
    let status = match loaded {
        Ok(v) => v,
        Err(wait::Error::Fatal(e)) => return Err(e),
        Err(wait::Error::Timeout { last, .. }) => {
            return Err(last.unwrap_or(qmp::Error::Timeout {
                command: "query-status".into(),
                after: RESUME_TIMEOUT,
            }));
        }
    };
    if status["running"] != true {
        qmp.execute("cont", None).await?;
    }
    Ok(())
}

/// The longest loading a layer's RAM state may take.
const RESUME_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often QEMU is asked whether it has loaded it.
const RESUME_POLL: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::qemu::config::{BootStep, DiskFormat, SshConfig};
    use crate::types::Checksum;

    fn cfg() -> Config {
        let mut c = Config::with_defaults("t", "/tpl".into(), "/isos/a.iso".into(), Checksum::None);
        c.boot_command =
            vec!["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/a.cfg<enter>".into()];
        c.http_directory = Some("/tpl/http".into());
        c.ssh = Some(SshConfig {
            username: "root".into(),
            password: None,
            port: 22,
            timeout: std::time::Duration::from_secs(60),
            private_key_file: None,
            pause_before_connecting: std::time::Duration::ZERO,
            clear_authorized_keys: false,
            pty: false,
            read_write_timeout: None,
            options: Default::default(),
            host_port_min: 2222,
            host_port_max: 4444,
        });
        c
    }

    fn inputs() -> KeyInputs {
        KeyInputs {
            iso_digest: "sha256:aa".into(),
            qemu_version: "QEMU emulator version 7.2.22".into(),
            accel: ResolvedAccel::Tcg,
            http_files: vec![("a.cfg".into(), "11".into())],
            cd_files: vec![],
            floppy_files: vec![],
        }
    }

    /// Issue 19: every input of the install changes the key; per-run values do not.
    #[test]
    fn key_follows_install_inputs_only() {
        let base = key(&cfg(), &inputs());
        assert_eq!(base.len(), 64);
        assert_eq!(key(&cfg(), &inputs()), base, "deterministic");

        type Edit = fn(&mut Config, &mut KeyInputs);
        #[rustfmt::skip]
        let changes: &[(&str, Edit)] = &[
            ("ISO digest", |_, i| i.iso_digest = "sha256:bb".into()),
            ("QEMU version", |_, i| i.qemu_version = "QEMU emulator version 8.2.0".into()),
            ("accelerator", |_, i| i.accel = ResolvedAccel::Kvm),
            ("answer file content", |_, i| i.http_files[0].1 = "22".into()),
            ("answer file name", |_, i| i.http_files[0].0 = "b.cfg".into()),
            ("CD content", |_, i| i.cd_files.push(("meta-data".into(), "33".into()))),
            ("http_content", |c, _| { c.http_content.insert("/x".into(), "y".into()); }),
            ("cd_content", |c, _| { c.cd_content.insert("user-data".into(), "z".into()); }),
            ("cd_label", |c, _| c.cd_label = "cidata".into()),
            ("floppy file (issue 14)", |_, i| i.floppy_files.push(("Autounattend.xml".into(), "44".into()))),
            ("floppy_label (issue 14)", |c, _| c.floppy_label = "WINSETUP".into()),
            ("boot command", |c, _| c.boot_command[0].push_str("<wait>")),
            ("boot steps", |c, _| c.boot_steps = vec![BootStep { command: "a".into(), description: "d".into() }]),
            ("disk size", |c, _| c.disk_size += 1 << 20),
            ("disk format", |c, _| c.format = DiskFormat::Raw),
            ("disk interface", |c, _| c.disk_interface = "virtio-scsi".into()),
            ("additional disk", |c, _| c.disk_additional_size.push(1 << 30)),
            ("machine", |c, _| c.machine_type = "q35".into()),
            ("memory", |c, _| c.memory = 2048),
            ("cpus", |c, _| c.cpus = 2),
            ("firmware", |c, _| c.efi_boot = true),
            ("qemuargs", |c, _| c.qemuargs = vec![vec!["-rtc".into(), "base=utc".into()]]),
            ("net device", |c, _| c.net_device = "e1000".into()),
            ("SSH user", |c, _| if let Some(s) = c.ssh.as_mut() { s.username = "vagrant".into() }),
            ("{{ .Name }} in the command", |c, _| { c.boot_command = vec!["{{ .Name }}".into()]; c.vm_name = "other".into(); }),
            ("boot_keymap (issue 14)", |c, _| c.boot_keymap = crate::bootcmd::Keymap::named("de").expect("de")),
        ];
        for (what, edit) in changes {
            let (mut c, mut i) = (cfg(), inputs());
            edit(&mut c, &mut i);
            assert_ne!(key(&c, &i), base, "{what} must change the key");
        }

        #[rustfmt::skip]
        let per_run: &[(&str, Edit)] = &[
            ("HTTP port range", |c, _| { c.http_port_min = 8100; c.http_port_max = 8100; }),
            ("HTTP bind address", |c, _| c.http_bind_address = "0.0.0.0".parse().unwrap()),
            ("output directory", |c, _| c.output_directory = "/elsewhere".into()),
            ("SSH host port range", |c, _| if let Some(s) = c.ssh.as_mut() { s.host_port_min = 3000 }),
            ("VNC ports", |c, _| { c.vnc_port_min = 5990; c.vnc_port_max = 5999; }),
            ("headless", |c, _| c.headless = false),
            ("boot_wait", |c, _| c.boot_wait.abs = std::time::Duration::from_secs(1)),
            ("typing interval", |c, _| c.boot_key_interval = Some(std::time::Duration::from_millis(5))),
            ("shutdown", |c, _| c.shutdown_command = Some("halt".into())),
            ("ISO location", |c, _| c.iso_urls = vec!["/other/place.iso".into()]),
            ("HTTP directory location (same files)", |c, _| c.http_directory = Some("/moved/http".into())),
        ];
        for (what, edit) in per_run {
            let (mut c, mut i) = (cfg(), inputs());
            edit(&mut c, &mut i);
            assert_eq!(key(&c, &i), base, "{what} must not change the key");
        }
    }
}
