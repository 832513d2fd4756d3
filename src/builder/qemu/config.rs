//! The typed configuration of a `source "qemu" "NAME"` block.
//!
//! Built from the template by `template` (which reports unknown options and type errors with
//! their file:line); everything here is already validated, with Packer's defaults filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::{Checksum, GoDuration, Secret};

/// Extra arguments for `qemu-img` (`qemu_img_args`), defined where disks are made.
pub use crate::qemu_img::ExtraArgs;

/// How QEMU accelerates the guest (`accelerator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// KVM when the CPU has vmx/svm and `/dev/kvm` opens, else TCG (with a warning).
    Auto,
    Kvm,
    Tcg,
    /// `-machine type=X` without `accel=`.
    None,
}

/// Disk image format (`format`), defined where disks are made.
pub use crate::qemu_img::DiskFormat;

/// How the boot command reaches the guest's keyboard (`boot_key_driver`, a kiln option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDriverKind {
    /// QMP `input-send-event` (the default), paced by the guest's reads.
    Qmp,
    /// RFB key events over QEMU's VNC server, as Packer types.
    Vnc,
}

/// One `boot_steps` entry: what to type and what to print while typing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootStep {
    pub command: String,
    pub description: String,
}

/// How kiln talks to the guest once it is up (`communicator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunicatorKind {
    Ssh,
    /// No connection: kiln waits for the guest to power itself off.
    None,
}

/// SSH settings (`ssh_*`), shared with the other builders that connect over SSH.
pub use crate::communicator::ssh::SshConfig;

/// A `source "qemu" "NAME"` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The source label (`NAME`); the build name in messages is `qemu.NAME`.
    pub name: String,
    /// The directory relative option paths were resolved against: the working directory kiln
    /// ran in, as in Packer.
    pub base_dir: PathBuf,

    /// `iso_url` or `iso_urls`, tried in order: paths (resolved) or `http(s)://` / `file://`
    /// URLs.
    pub iso_urls: Vec<String>,
    /// `iso_checksum`; a `file:` path is resolved against the working directory.
    pub iso_checksum: Checksum,
    /// `iso_target_path`: where the download is kept instead of the cache. A path without an
    /// extension is a directory (the file is named by digest inside it).
    pub iso_target_path: Option<PathBuf>,
    /// `iso_target_extension` (default `iso`, lower-cased).
    pub iso_target_extension: String,
    /// `iso_skip_cache`: no download; QEMU reads the first URL that serves byte ranges.
    pub iso_skip_cache: bool,

    /// `output_directory` (default `output-NAME`), resolved against the working directory as
    /// Packer does.
    pub output_directory: PathBuf,
    /// `vm_name` (default `packer-NAME`): the disk's file name inside the output directory.
    pub vm_name: String,
    /// `disk_size` in bytes (default 40960M).
    pub disk_size: u64,
    /// `format` (default qcow2).
    pub format: DiskFormat,
    /// `disk_interface` (default `virtio`).
    pub disk_interface: String,
    /// `disk_cache` (default `writeback`).
    pub disk_cache: String,
    /// `disk_discard` (default `ignore`).
    pub disk_discard: String,
    /// `skip_compaction` (default false; forced true for raw).
    pub skip_compaction: bool,
    /// `disk_compression` (default false).
    pub disk_compression: bool,
    /// `disk_image`: the fetched file is a bootable disk image (qcow2, raw, …) that becomes
    /// the build disk, rather than an installer ISO.
    pub disk_image: bool,
    /// `use_backing_file`: with `disk_image`, the build disk is a qcow2 overlay over the cached
    /// image instead of a copy (forces `skip_compaction`).
    pub use_backing_file: bool,
    /// `skip_resize_disk`: with `disk_image`, keep the image's size instead of `disk_size`.
    pub skip_resize_disk: bool,
    /// `disk_additional_size`: sizes in bytes of extra blank disks `<vm_name>-1`, `-2`, …
    pub disk_additional_size: Vec<u64>,

    /// `cd_files`: files, directories and glob patterns (resolved) copied to the root of a
    /// second CD.
    pub cd_files: Vec<PathBuf>,
    /// `cd_content`: path on the CD → file content.
    pub cd_content: BTreeMap<String, String>,
    /// `cd_label` (default `packer`): the CD's volume ID, e.g. `cidata` for cloud-init.
    pub cd_label: String,
    /// `floppy_files`: files, directories and glob patterns (resolved) whose files all land at
    /// the root of a 1.44 MB FAT12 floppy (see `crate::floppy`).
    pub floppy_files: Vec<PathBuf>,
    /// `floppy_dirs`: directories and patterns (resolved) copied with their tree.
    pub floppy_dirs: Vec<PathBuf>,
    /// `floppy_content`: path on the floppy → file content.
    pub floppy_content: BTreeMap<String, String>,
    /// `floppy_label` (default `packer`): the floppy's FAT volume label (at most 11 bytes).
    pub floppy_label: String,
    /// `vtpm`: a software TPM (`swtpm`) runs beside QEMU for the build.
    pub vtpm: bool,
    /// `use_tpm1`: that TPM is a TPM 1.2 (default: TPM 2.0).
    pub use_tpm1: bool,
    /// `tpm_device_type` (default `tpm-tis`): the QEMU device the TPM is attached as.
    pub tpm_device_type: String,
    /// `run_once`: read for Packer's templates; Packer's qemu builder never used it, and kiln
    /// says so when the build starts.
    pub run_once: bool,
    /// `cdrom_interface`: the bus the installer ISO and the `cd_files` CD are attached to
    /// (`ide`, `sata`, `scsi`, `virtio`, `virtio-scsi`); `None` is the machine's default.
    pub cdrom_interface: Option<String>,

    /// `http_directory`, resolved; `None` (and no `http_content`) means no HTTP server.
    pub http_directory: Option<PathBuf>,
    /// `http_content`: URL path → body, served instead of a directory (exclusive with
    /// `http_directory`).
    pub http_content: std::collections::BTreeMap<String, String>,
    /// `http_bind_address` (kiln's default 127.0.0.1; Packer's is 0.0.0.0). The guest reaches
    /// the server as 10.0.2.2 either way.
    pub http_bind_address: std::net::IpAddr,
    /// `http_interface`: listen on the first IPv4 address of this host interface instead of
    /// `http_bind_address` (exclusive with it).
    pub http_interface: Option<String>,
    /// `http_port_min` / `http_port_max` (default 8000 / 9000).
    pub http_port_min: u16,
    pub http_port_max: u16,

    /// `qemu_binary` (default `qemu-system-x86_64`).
    pub qemu_binary: String,
    /// `accelerator` (default auto).
    pub accelerator: Accelerator,
    /// `machine_type` (default `pc`).
    pub machine_type: String,
    /// `memory` in MiB (default 512).
    pub memory: u32,
    /// `cpus` (default 1).
    pub cpus: u32,
    /// `net_device` (default `virtio-net`).
    pub net_device: String,
    /// `cpu_model`: `-cpu` when set.
    pub cpu_model: Option<String>,
    /// `sockets` / `cores` / `threads` (0: not given); `cpus` already follows Packer's rule
    /// (see [`smp_cpus`]).
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
    /// `vga`: `-vga` when set.
    pub vga: Option<String>,
    /// `display`: the `-display` value when not headless (`""`/`"none"` mean `gtk`, as Packer).
    pub display: Option<String>,
    /// `use_default_display`: no `-display` at all when not headless.
    pub use_default_display: bool,
    /// `firmware`: `-bios` when set, or a read-only pflash drive with `use_pflash`.
    pub firmware: Option<PathBuf>,
    /// `use_pflash` (default false): attach `firmware` as pflash instead of `-bios`.
    pub use_pflash: bool,
    /// `efi_boot` (true also when either firmware path is set): boot OVMF from pflash.
    pub efi_boot: bool,
    /// `efi_firmware_code` / `efi_firmware_vars`; unset halves are found among the usual OVMF
    /// paths (see `firmware::resolve`).
    pub efi_firmware_code: Option<PathBuf>,
    pub efi_firmware_vars: Option<PathBuf>,
    /// `efi_drop_efivars`: the build's `efivars.fd` is not one of the artifact's files (by
    /// default it is, after the disk, as in Packer).
    pub efi_drop_efivars: bool,
    /// `qemu_img_args`: extra arguments for `qemu-img create`, `convert` and `resize`.
    pub qemu_img_args: ExtraArgs,
    /// `qemuargs`: rows of `[switch, parts…]` merged into the argv (see `args::merge_qemuargs`),
    /// with `{{ .HTTPIP }}`, `{{ .HTTPPort }}` and `{{ .Name }}` rendered.
    pub qemuargs: Vec<Vec<String>>,
    /// `disk_detect_zeroes` (default `off`, which is not passed to QEMU).
    pub disk_detect_zeroes: String,
    /// `headless` (default false: a GUI window is asked for, as in Packer).
    pub headless: bool,
    /// `vnc_bind_address` (default 127.0.0.1).
    pub vnc_bind_address: String,
    /// `vnc_port_min` / `vnc_port_max` (default 5900 / 6000).
    pub vnc_port_min: u16,
    pub vnc_port_max: u16,
    /// `vnc_use_password`: QEMU's VNC server asks for a password (`-vnc …,password=on`), set
    /// over QMP (`change-vnc-password`) once QEMU runs.
    pub vnc_use_password: bool,
    /// `vnc_password` (at most 8 characters, VNC's limit); `None` with `vnc_use_password`
    /// means a random one per build, as in Packer. Never logged.
    pub vnc_password: Option<Secret>,
    /// `qmp_enable` / `qmp_socket_path`: a QMP socket for the user at this path, beside kiln's
    /// own (default `<output_directory>/<vm_name>.monitor`; on with `vnc_use_password`, as in
    /// Packer). `None`: no user socket.
    pub qmp_socket_path: Option<PathBuf>,
    /// `disable_vnc`: the boot command step is skipped (no `boot_wait`, nothing typed); QEMU's
    /// VNC server still runs, as in Packer.
    pub disable_vnc: bool,

    /// `boot_wait` (default 10s; negative means no wait).
    pub boot_wait: GoDuration,
    /// `boot_command`, joined as Packer does (no separator) when typed.
    pub boot_command: Vec<String>,
    /// `boot_steps` (exclusive with `boot_command`), typed one after the other.
    pub boot_steps: Vec<BootStep>,
    /// `boot_key_interval`: a fixed pause after every key event. `None` (the default) types as
    /// fast as the guest reads the keys (see `bootcmd::Pacing`).
    pub boot_key_interval: Option<Duration>,
    /// `boot_keygroup_interval`: a further pause after each key group (a character typed, or
    /// a special key pressed, held or released). `None` (the default): none.
    pub boot_keygroup_interval: Option<Duration>,
    /// `boot_key_driver` (default `qmp`).
    pub boot_key_driver: KeyDriverKind,
    /// `boot_keymap` (a kiln option, default `en-us`): the guest's keyboard layout, which the
    /// boot command's characters are typed as keys of.
    pub boot_keymap: crate::bootcmd::Keymap,

    /// `communicator` (default ssh).
    pub communicator: CommunicatorKind,
    /// The SSH settings when `communicator` is ssh.
    pub ssh: Option<SshConfig>,
    /// `net_bridge`: the guest's NIC is on this host bridge (`-netdev bridge`, through
    /// `qemu-bridge-helper`) instead of QEMU's user network: no port forward, and without
    /// `ssh_host` kiln finds the guest's address in the host's neighbour table.
    pub net_bridge: Option<String>,
    /// `ssh_host`: the address kiln connects to (default `127.0.0.1`). With the port forward,
    /// QEMU's forward listens there (an IP address) instead of on `127.0.0.1`.
    pub ssh_host: Option<String>,
    /// `skip_nat_mapping`: no port forward; kiln connects to `ssh_host`:`ssh_port` (a network
    /// the template sets up in `qemuargs`).
    pub skip_nat_mapping: bool,

    /// `shutdown_command` (default none: QEMU is stopped after provisioning).
    pub shutdown_command: Option<String>,
    /// `shutdown_timeout` (default 5m).
    pub shutdown_timeout: Duration,

    /// `install_cache` (a kiln option, default false; also `kiln build -install-cache`): keep
    /// the installed system when SSH first answers, and start later builds with the same install
    /// inputs from it (see `crate::install_cache`).
    pub install_cache: bool,
}

impl Config {
    /// A configuration with Packer's defaults for source `name`, ISO and checksum; the template
    /// loader starts from this and overrides what the template sets.
    pub fn with_defaults(
        name: &str,
        base_dir: PathBuf,
        iso_url: String,
        iso_checksum: Checksum,
    ) -> Self {
        Self {
            name: name.to_owned(),
            base_dir,
            iso_urls: vec![iso_url],
            iso_checksum,
            iso_target_path: None,
            iso_target_extension: "iso".into(),
            iso_skip_cache: false,
            output_directory: PathBuf::from(format!("output-{name}")),
            vm_name: format!("packer-{name}"),
            disk_size: 40960 << 20,
            format: DiskFormat::Qcow2,
            disk_interface: "virtio".into(),
            disk_cache: "writeback".into(),
            disk_discard: "ignore".into(),
            skip_compaction: false,
            disk_compression: false,
            disk_image: false,
            use_backing_file: false,
            skip_resize_disk: false,
            disk_additional_size: Vec::new(),
            cd_files: Vec::new(),
            cd_content: BTreeMap::new(),
            cd_label: "packer".into(),
            cdrom_interface: None,
            floppy_files: Vec::new(),
            floppy_dirs: Vec::new(),
            floppy_content: BTreeMap::new(),
            floppy_label: crate::floppy::DEFAULT_LABEL.into(),
            vtpm: false,
            use_tpm1: false,
            tpm_device_type: "tpm-tis".into(),
            run_once: false,
            http_directory: None,
            http_content: std::collections::BTreeMap::new(),
            http_bind_address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            http_interface: None,
            http_port_min: 8000,
            http_port_max: 9000,
            qemu_binary: "qemu-system-x86_64".into(),
            accelerator: Accelerator::Auto,
            machine_type: "pc".into(),
            memory: 512,
            cpus: 1,
            net_device: "virtio-net".into(),
            cpu_model: None,
            sockets: 0,
            cores: 0,
            threads: 0,
            vga: None,
            display: None,
            use_default_display: false,
            disk_detect_zeroes: "off".into(),
            qemuargs: Vec::new(),
            firmware: None,
            use_pflash: false,
            efi_boot: false,
            efi_firmware_code: None,
            efi_firmware_vars: None,
            efi_drop_efivars: false,
            qemu_img_args: ExtraArgs::default(),
            headless: false,
            vnc_bind_address: "127.0.0.1".into(),
            vnc_port_min: 5900,
            vnc_port_max: 6000,
            vnc_use_password: false,
            vnc_password: None,
            qmp_socket_path: None,
            disable_vnc: false,
            boot_wait: GoDuration {
                negative: false,
                abs: Duration::from_secs(10),
            },
            boot_command: Vec::new(),
            boot_steps: Vec::new(),
            boot_key_interval: None,
            boot_keygroup_interval: None,
            boot_key_driver: KeyDriverKind::Qmp,
            boot_keymap: crate::bootcmd::Keymap::us(),
            communicator: CommunicatorKind::Ssh,
            ssh: None,
            net_bridge: None,
            ssh_host: None,
            skip_nat_mapping: false,
            shutdown_command: None,
            shutdown_timeout: Duration::from_secs(300),
            install_cache: false,
        }
    }
}

impl Config {
    /// The address kiln reaches the guest's SSH server at: `ssh_host`, or `127.0.0.1`.
    pub fn ssh_host(&self) -> &str {
        self.ssh_host.as_deref().unwrap_or("127.0.0.1")
    }
}

/// Packer's `-smp` CPU count: the product of the non-zero `sockets`, `cores` and `threads` is
/// the maximum; `cpus` 0 means that maximum, a larger `cpus` is cut to it, and with nothing
/// given it is 1.
pub fn smp_cpus(cpus: u32, sockets: u32, cores: u32, threads: u32) -> u32 {
    let given: Vec<u32> = [sockets, cores, threads]
        .into_iter()
        .filter(|&n| n != 0)
        .collect();
    let max = if given.is_empty() {
        0
    } else {
        given.iter().fold(1u32, |a, &n| a.saturating_mul(n))
    };
    match (cpus, max) {
        (0, 0) => 1,
        (0, m) => m,
        (c, m) if m != 0 && c > m => m,
        (c, _) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smp_rule_table() {
        let rows = [
            ((0, 0, 0, 0), 1, "nothing given: one CPU"),
            ((4, 0, 0, 0), 4, "cpus alone"),
            ((0, 2, 2, 0), 4, "cpus from the topology"),
            ((8, 1, 2, 2), 4, "cpus cut to the topology"),
            ((2, 1, 2, 2), 2, "fewer cpus than the topology"),
            ((0, 0, 0, 2), 2, "threads alone"),
        ];
        for ((cpus, s, c, t), want, why) in rows {
            assert_eq!(smp_cpus(cpus, s, c, t), want, "{why}");
        }
    }
}
