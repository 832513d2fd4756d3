//! The QEMU command line, built by one pure function so every switch is table-tested.
//!
//! Packer builds the same switches from a Go map, so their order changes between runs; kiln
//! emits them in one fixed order. Two deliberate differences from Packer: the SSH port forward
//! listens on `127.0.0.1` only (Packer's `hostfwd=tcp::P-:22` listens on every interface), and
//! the guest's serial console is always recorded to a file.

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};

use super::accel::ResolvedAccel;
use super::config::{CommunicatorKind, Config, KeyDriverKind};

/// Why a free port could not be found.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The range is empty.
    #[error("Invalid port range {min}-{max}: the minimum is above the maximum")]
    PortRange { min: u16, max: u16 },
    /// Every port in the range is taken.
    #[error("No free TCP port on {bind} between {min} and {max}")]
    NoFreePort { bind: IpAddr, min: u16, max: u16 },
}

/// What a run needs besides the configuration: paths and ports chosen by earlier steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunParams {
    /// The main disk (`<output_directory>/<vm_name>`).
    pub disk_path: PathBuf,
    /// The `disk_additional_size` disks, attached after the main disk like it.
    pub additional_disks: Vec<PathBuf>,
    /// The installer ISO; `None` boots the disk (`disk_image`).
    pub iso_path: Option<PathBuf>,
    /// The `cd_files` / `cd_content` CD, attached as a further CD-ROM.
    pub cd_path: Option<PathBuf>,
    /// The `floppy_files` / `floppy_dirs` / `floppy_content` floppy (`-fda`).
    pub floppy_path: Option<PathBuf>,
    /// The control socket of the build's software TPM (`vtpm`), attached as
    /// `tpm_device_type`.
    pub tpm_socket: Option<PathBuf>,
    pub accel: ResolvedAccel,
    /// The VNC TCP port (5900 and up); QEMU is given the display number `port - 5900`.
    pub vnc_port: u16,
    pub qmp_socket: PathBuf,
    /// The host side of the SSH forward; `None` means no forward (communicator `none`,
    /// `skip_nat_mapping`).
    pub ssh_host_port: Option<u16>,
    /// The address the SSH forward listens on: 127.0.0.1, or `ssh_host`'s address.
    pub ssh_forward_ip: IpAddr,
    /// Where the guest's serial console is written.
    pub serial_log: PathBuf,
    /// Where QEMU traces the guest's keyboard reads (guest-paced typing); `None`: no trace.
    pub key_trace: Option<PathBuf>,
    /// With `efi_boot`: the OVMF code image and the build's own copy of the variable store.
    pub efi: Option<(PathBuf, PathBuf)>,
}

/// Stand-in values for the tests of the argv and of the steps that add to it.
#[cfg(test)]
impl RunParams {
    pub(crate) fn for_tests() -> Self {
        RunParams {
            disk_path: "/out/packer-t".into(),
            additional_disks: Vec::new(),
            iso_path: Some("/iso/in.iso".into()),
            cd_path: None,
            floppy_path: None,
            tpm_socket: None,
            accel: ResolvedAccel::Tcg,
            vnc_port: 5901,
            qmp_socket: "/out/packer-t.monitor".into(),
            ssh_host_port: Some(3333),
            ssh_forward_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            serial_log: "/out/serial.log".into(),
            key_trace: None,
            efi: None,
        }
    }
}

/// QEMU's ISA panic device: a guest kernel with the pvpanic driver reports a panic through it.
pub const PVPANIC: &str = "pvpanic";

/// Whether `machine_type` of `qemu_binary` has the ISA bus the pvpanic device sits on: the x86
/// PC machines (`pc`, `q35` and their versions), not `microvm` or other architectures.
pub fn has_isa_pvpanic(qemu_binary: &str, machine_type: &str) -> bool {
    let binary = Path::new(qemu_binary)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let x86 = binary.ends_with("x86_64") || binary.ends_with("i386");
    x86 && (machine_type.starts_with("pc") || machine_type.starts_with("q35"))
}

/// The ids of the `vtpm` chardev and TPM backend (Packer's).
const TPM_CHARDEV: &str = "vtpm";
const TPM_ID: &str = "tpm0";

/// `swtpm`'s arguments for a TPM whose state lives in `state_dir` and whose control channel is
/// the Unix socket `socket` (Packer's command line); TPM 2.0 unless `tpm1`.
pub fn swtpm_args(state_dir: &Path, socket: &Path, tpm1: bool) -> Vec<String> {
    let mut a = vec![
        "socket".to_owned(),
        "--tpmstate".to_owned(),
        format!("dir={}", state_dir.to_string_lossy().replace(',', ",,")),
        "--ctrl".to_owned(),
        format!(
            "type=unixio,path={}",
            socket.to_string_lossy().replace(',', ",,")
        ),
    ];
    if !tpm1 {
        a.push("--tpm2".to_owned());
    }
    a
}

/// Escapes a value inside a QEMU `key=value,...` option: a comma is written as `,,`.
fn opt(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// The QEMU arguments (without the binary) for `config` and `p`, in a fixed order.
pub fn qemu_args(config: &Config, p: &RunParams) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |switch: &str, value: String| {
        a.push(switch.to_owned());
        a.push(value);
    };

    push("-name", config.vm_name.clone());
    let machine = match p.accel.as_machine_accel() {
        Some(accel) => format!("type={},accel={accel}", config.machine_type),
        None => format!("type={}", config.machine_type),
    };
    push("-machine", machine);
    push("-m", format!("{}M", config.memory));
    let mut smp = config.cpus.max(1).to_string();
    for (name, n) in [
        ("sockets", config.sockets),
        ("cores", config.cores),
        ("threads", config.threads),
    ] {
        if n != 0 {
            smp.push_str(&format!(",{name}={n}"));
        }
    }
    push("-smp", smp);
    if let Some(model) = &config.cpu_model {
        push("-cpu", model.clone());
    }

    let mut disk_opts = format!(
        "cache={},discard={},format={}",
        config.disk_cache,
        config.disk_discard,
        config.format.as_str()
    );
    if config.disk_detect_zeroes != "off" {
        disk_opts.push_str(&format!(",detect-zeroes={}", config.disk_detect_zeroes));
    }
    let disks = std::iter::once(&p.disk_path).chain(&p.additional_disks);
    if config.disk_interface == "virtio-scsi" {
        push("-device", "virtio-scsi-pci,id=scsi0".into());
        for (i, d) in disks.enumerate() {
            push("-device", format!("scsi-hd,bus=scsi0.0,drive=drive{i}"));
            push(
                "-drive",
                format!("if=none,file={},id=drive{i},{disk_opts}", opt(d)),
            );
        }
    } else {
        let interface = &config.disk_interface;
        for d in disks {
            push(
                "-drive",
                format!("file={},if={interface},{disk_opts}", opt(d)),
            );
        }
    }
    let cds = [&p.iso_path, &p.cd_path].into_iter().flatten();
    match config.cdrom_interface.as_deref() {
        None => {
            for cd in cds {
                push("-drive", format!("file={},media=cdrom", opt(cd)));
            }
        }
        // CD-ROMs as devices on a controller: QEMU has no `if=sata`, and no longer makes a SCSI
        // controller for `if=scsi` on PC machines. SATA: a CD on each port of an AHCI
        // controller; SCSI: on the bus of a virtio-scsi controller (the disks' own, if they use
        // one).
        Some(bus @ ("sata" | "scsi" | "virtio-scsi")) => {
            let sata = bus == "sata";
            if sata {
                push("-device", "ahci,id=ahci0".into());
            } else if config.disk_interface != "virtio-scsi" {
                push("-device", "virtio-scsi-pci,id=scsi0".into());
            }
            for (i, cd) in cds.enumerate() {
                let device = if sata {
                    format!("ide-cd,bus=ahci0.{i},drive=cdrom{i}")
                } else {
                    format!("scsi-cd,bus=scsi0.0,drive=cdrom{i}")
                };
                push("-device", device);
                push(
                    "-drive",
                    format!("file={},if=none,id=cdrom{i},media=cdrom", opt(cd)),
                );
            }
        }
        // As Packer: `index` and `id` per CD; on the disks' bus the CDs come after them.
        Some(interface) => {
            let first = if interface == config.disk_interface {
                1 + p.additional_disks.len()
            } else {
                0
            };
            for (i, cd) in cds.enumerate() {
                push(
                    "-drive",
                    format!(
                        "file={},if={interface},index={},id=cdrom{i},media=cdrom",
                        opt(cd),
                        first + i
                    ),
                );
            }
        }
    }
    // As Packer: its own switch, so a user's `-drive` rows in `qemuargs` keep it.
    if let Some(floppy) = &p.floppy_path {
        push("-fda", floppy.to_string_lossy().into_owned());
    }
    match &p.efi {
        // As Packer: UEFI boots by its own boot order, so no -boot.
        Some((code, vars)) => {
            push(
                "-drive",
                format!("file={},if=pflash,unit=0,format=raw,readonly=on", opt(code)),
            );
            push(
                "-drive",
                format!("file={},if=pflash,unit=1,format=raw", opt(vars)),
            );
        }
        None if p.iso_path.is_some() => push("-boot", "once=d".into()),
        None => push("-boot", "c".into()),
    }
    match &config.firmware {
        Some(fw) if config.use_pflash => push(
            "-drive",
            format!("file={},if=pflash,format=raw,readonly=on", fw.display()),
        ),
        Some(bios) => push("-bios", bios.to_string_lossy().into_owned()),
        None => {}
    }

    let netdev = match (&config.communicator, p.ssh_host_port) {
        // As Packer: the host's bridge, through qemu-bridge-helper; no forward.
        _ if config.net_bridge.is_some() => format!(
            "bridge,id=user.0,br={}",
            config.net_bridge.as_deref().unwrap_or_default()
        ),
        (CommunicatorKind::Ssh, Some(host_port)) => {
            let guest_port = config.ssh.as_ref().map_or(22, |s| s.port);
            let ip = match p.ssh_forward_ip {
                IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            format!("user,id=user.0,hostfwd=tcp:{ip}:{host_port}-:{guest_port}")
        }
        _ => "user,id=user.0".to_owned(),
    };
    push("-netdev", netdev);
    push("-device", format!("{},netdev=user.0", config.net_device));
    if let Some(socket) = &p.tpm_socket {
        // As Packer: QEMU's TPM emulator backend on swtpm's control socket.
        push(
            "-chardev",
            format!("socket,id={TPM_CHARDEV},path={}", opt(socket)),
        );
        push(
            "-tpmdev",
            format!("emulator,id={TPM_ID},chardev={TPM_CHARDEV}"),
        );
        push(
            "-device",
            format!("{},tpmdev={TPM_ID}", config.tpm_device_type),
        );
    }
    if has_isa_pvpanic(&config.qemu_binary, &config.machine_type) {
        // The guest's kernel tells QEMU it panicked (a `GUEST_PANICKED` event, see `monitor`).
        push("-device", PVPANIC.into());
    }

    let display_number = p.vnc_port.saturating_sub(5900);
    // QEMU delays each VNC key event by key-delay-ms (10 ms by default) in its own queue; when
    // kiln types over VNC paced by the guest's reads (a key trace), that delay only slows it.
    let key_delay = if config.boot_key_driver == KeyDriverKind::Vnc && p.key_trace.is_some() {
        ",key-delay-ms=0"
    } else {
        ""
    };
    let password = if config.vnc_use_password {
        ",password=on"
    } else {
        ""
    };
    push(
        "-vnc",
        format!(
            "{}:{display_number}{key_delay}{password}",
            config.vnc_bind_address
        ),
    );
    // kiln's own QMP socket, then the user's (`qmp_enable`).
    for socket in std::iter::once(&p.qmp_socket).chain(&config.qmp_socket_path) {
        push("-qmp", format!("unix:{},server=on,wait=off", opt(socket)));
    }
    push(
        "-serial",
        format!("file:{}", p.serial_log.to_string_lossy()),
    );
    if let Some(vga) = &config.vga {
        push("-vga", vga.clone());
    }
    // As Packer: headless means no window; otherwise `display` ("" and "none" mean gtk), or
    // no -display at all with use_default_display.
    let display = match (config.headless, config.use_default_display, &config.display) {
        (true, _, _) => Some("none".to_owned()),
        (false, true, _) => None,
        (false, false, Some(d)) if !d.is_empty() && d != "none" => Some(d.clone()),
        (false, false, _) => Some("gtk".to_owned()),
    };
    if let Some(display) = display {
        push("-display", display);
    }
    if let Some(trace) = &p.key_trace {
        a.extend(crate::bootcmd::feedback::qemu_trace_args(trace));
    }
    merge_qemuargs(a, &config.qemuargs, &config.net_device)
}

/// Applies `qemuargs` with Packer's rules, in a fixed order: a switch the user gives replaces
/// every default value of that switch, in place of the switch's first default; switches kiln
/// does not emit follow at the end in the user's order. A row is `[switch, parts…]` (parts
/// joined with no separator; none gives a bare switch). As Packer, when the user's `-device`s
/// do not mention `net_device`, the default network device is kept (core#6804); so is the
/// pvpanic device unless they name one, and the `vtpm` TPM's device and chardev unless they
/// attach a TPM (`tpmdev=`) or a chardev of its id.
pub fn merge_qemuargs(
    defaults: Vec<String>,
    rows: &[Vec<String>],
    net_device: &str,
) -> Vec<String> {
    if rows.is_empty() {
        return defaults;
    }
    let user: Vec<(&str, Option<String>)> = rows
        .iter()
        .filter_map(|row| {
            let (switch, parts) = row.split_first()?;
            Some((switch.as_str(), (!parts.is_empty()).then(|| parts.concat())))
        })
        .collect();
    let given = |switch: &str| user.iter().any(|(s, _)| *s == switch);
    let user_device_has = |text: &str| {
        user.iter()
            .any(|(s, v)| *s == "-device" && v.as_deref().is_some_and(|v| v.contains(text)))
    };
    let keep_net = given("-device") && !user_device_has(net_device);
    let keep_pvpanic = given("-device") && !user_device_has(PVPANIC);
    // The `vtpm` TPM stays unless the user attaches a TPM device or a chardev of its id
    // (Packer drops it with any user `-device` or `-chardev`).
    let tpm_device = format!(",tpmdev={TPM_ID}");
    let tpm_chardev = format!("socket,id={TPM_CHARDEV},");
    let keep_tpm = !user_device_has("tpmdev=");
    let keep_tpm_chardev = !user.iter().any(|(s, v)| {
        *s == "-chardev"
            && v.as_deref()
                .is_some_and(|v| v.contains(&format!("id={TPM_CHARDEV}")))
    });
    let mut out = Vec::with_capacity(defaults.len());
    let mut placed: Vec<&str> = Vec::new();
    for pair in defaults.chunks(2) {
        let [switch, value] = pair else {
            out.extend_from_slice(pair);
            continue;
        };
        if !given(switch) {
            out.extend_from_slice(pair);
            continue;
        }
        let kept = match switch.as_str() {
            "-device" => {
                (keep_net && value.starts_with(&format!("{net_device},netdev=")))
                    || (keep_pvpanic && value == PVPANIC)
                    || (keep_tpm && value.ends_with(&tpm_device))
            }
            "-chardev" => keep_tpm_chardev && value.starts_with(&tpm_chardev),
            _ => false,
        };
        if kept {
            out.extend_from_slice(pair);
        }
        if placed.contains(&switch.as_str()) {
            continue;
        }
        placed.push(
            user.iter()
                .find(|(s, _)| s == switch)
                .map_or("", |(s, _)| *s),
        );
        for (s, v) in user.iter().filter(|(s, _)| s == switch) {
            out.push((*s).to_owned());
            out.extend(v.clone());
        }
    }
    for (s, v) in &user {
        if !placed.contains(s) && !defaults.chunks(2).any(|p| p[0] == *s) {
            out.push((*s).to_owned());
            out.extend(v.clone());
        }
    }
    out
}

/// The values `{{ .Name }}`-style text in `qemuargs` may use, as Packer offers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuArgsVars {
    /// `{{ .HTTPIP }}` / `{{ .HTTPPort }}`: the build's HTTP server as the guest reaches it.
    pub http_ip: String,
    pub http_port: u16,
    /// `{{ .HTTPDir }}`: `http_directory`, when set.
    pub http_dir: Option<PathBuf>,
    /// `{{ .OutputDir }}`: `output_directory`.
    pub output_dir: PathBuf,
    /// `{{ .Name }}`: `vm_name`.
    pub name: String,
    /// `{{ .SSHHostPort }}`: the host side of the SSH forward, when there is one.
    pub ssh_host_port: Option<u16>,
    /// `{{ .SSHPublicKey }}`: the build's temporary public key, empty when there is none.
    pub ssh_public_key: String,
}

/// `qemuargs` with every `{{ .X }}` filled in from `vars`; any other placeholder is an error.
pub fn render_qemuargs(
    rows: &[Vec<String>],
    vars: &QemuArgsVars,
) -> Result<Vec<Vec<String>>, crate::render::Error> {
    let http_port = vars.http_port.to_string();
    let http_dir = vars
        .http_dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let output_dir = vars.output_dir.display().to_string();
    let ssh_port = vars
        .ssh_host_port
        .map(|p| p.to_string())
        .unwrap_or_default();
    let table = [
        ("HTTPIP", vars.http_ip.as_str()),
        ("HTTPPort", http_port.as_str()),
        ("HTTPDir", http_dir.as_str()),
        ("OutputDir", output_dir.as_str()),
        ("Name", vars.name.as_str()),
        ("SSHHostPort", ssh_port.as_str()),
        ("SSHPublicKey", vars.ssh_public_key.as_str()),
    ];
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|part| crate::render::render(part, crate::render::pairs(&table)))
                .collect()
        })
        .collect()
}

/// A free TCP port on `bind` in `min..=max`, probed by binding it; the search starts at a random
/// offset so parallel builds rarely collide. The port is released before returning, so another
/// process may still take it before QEMU does (as in Packer); builds of one kiln use
/// [`lease_free_port`] instead.
pub fn find_free_port(bind: IpAddr, min: u16, max: u16) -> Result<u16, Error> {
    lease_free_port(bind, min, max).map(|lease| lease.port)
}

/// Ports leased by builds of this process and not yet released: QEMU binds a port only when
/// it starts, so without this two builds running side by side could pick the same one.
static LEASED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A port kept for one build until dropped (its step's cleanup).
#[derive(Debug)]
pub struct PortLease {
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut leased) = LEASED.lock() {
            leased.remove(&self.port);
        }
    }
}

/// As [`find_free_port`], but no other build of this process gets the port until the lease
/// is dropped.
pub fn lease_free_port(bind: IpAddr, min: u16, max: u16) -> Result<PortLease, Error> {
    if min > max {
        return Err(Error::PortRange { min, max });
    }
    let span = u32::from(max - min) + 1;
    let start = rand::random_range(0..span);
    let mut leased = LEASED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for i in 0..span {
        let port = u16::try_from(u32::from(min) + (start + i) % span)
            .expect("min + offset stays within min..=max");
        if leased.contains(&port) {
            continue;
        }
        match TcpListener::bind((bind, port)) {
            Ok(_listener) => {
                leased.insert(port);
                return Ok(PortLease { port });
            }
            Err(e) => tracing::trace!(port, error = %e, "port taken"),
        }
    }
    Err(Error::NoFreePort { bind, min, max })
}

/// Which of kiln's ports QEMU could not bind, read from its stderr: a port probed free by
/// [`find_free_port`] can be taken by another process (another build) before QEMU binds it.
pub fn port_clash(stderr: &str) -> Option<&'static str> {
    stderr.lines().find_map(|line| {
        if line.contains("Could not set up host forwarding rule") {
            Some("SSH forwarding")
        } else if line.contains("-vnc ") && line.contains("Address already in use") {
            Some("VNC")
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::builder::qemu::config::{DiskFormat, SshConfig};
    use crate::types::Checksum;

    fn config() -> Config {
        let mut c = Config::with_defaults("t", "/tpl".into(), "/iso/in.iso".into(), Checksum::None);
        c.ssh = Some(SshConfig {
            username: "u".into(),
            password: None,
            port: 22,
            timeout: std::time::Duration::from_secs(60),
            private_key_file: None,
            pause_before_connecting: std::time::Duration::ZERO,
            clear_authorized_keys: false,
            pty: false,
            host_port_min: 2222,
            host_port_max: 4444,
            read_write_timeout: None,
            options: Default::default(),
        });
        c
    }

    fn params() -> RunParams {
        RunParams::for_tests()
    }

    /// All values given to `switch`, in order.
    fn values<'a>(args: &'a [String], switch: &str) -> Vec<&'a str> {
        args.chunks(2)
            .filter(|pair| pair[0] == switch)
            .map(|pair| pair[1].as_str())
            .collect()
    }

    #[test]
    fn qemuargs_merge_table() {
        let row = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let defaults = row(&[
            "-name",
            "n",
            "-m",
            "512M",
            "-drive",
            "disk",
            "-drive",
            "cd",
            "-device",
            "virtio-net,netdev=user.0",
            "-display",
            "none",
        ]);
        #[rustfmt::skip]
        let cases: &[(&str, Vec<Vec<String>>, &[&str])] = &[
            ("no rows: defaults", vec![], &["-name", "n", "-m", "512M", "-drive", "disk", "-drive", "cd",
                "-device", "virtio-net,netdev=user.0", "-display", "none"]),
            ("a switch replaces all its defaults, in place", vec![row(&["-drive", "file=", "x.img"])],
                &["-name", "n", "-m", "512M", "-drive", "file=x.img",
                  "-device", "virtio-net,netdev=user.0", "-display", "none"]),
            ("new switches go last in user order; bare switch", vec![row(&["-no-reboot"]), row(&["-rtc", "base=utc"])],
                &["-name", "n", "-m", "512M", "-drive", "disk", "-drive", "cd",
                  "-device", "virtio-net,netdev=user.0", "-display", "none", "-no-reboot", "-rtc", "base=utc"]),
            ("user -device without the NIC keeps the NIC", vec![row(&["-device", "virtio-rng-pci"])],
                &["-name", "n", "-m", "512M", "-drive", "disk", "-drive", "cd",
                  "-device", "virtio-net,netdev=user.0", "-device", "virtio-rng-pci", "-display", "none"]),
            ("user -device naming the NIC replaces it", vec![row(&["-device", "virtio-net,netdev=user.0,mac=52:54:00:00:00:01"])],
                &["-name", "n", "-m", "512M", "-drive", "disk", "-drive", "cd",
                  "-device", "virtio-net,netdev=user.0,mac=52:54:00:00:00:01", "-display", "none"]),
            ("memory override, two values of one switch", vec![row(&["-m", "2G"]), row(&["-drive", "a"]), row(&["-drive", "b"])],
                &["-name", "n", "-m", "2G", "-drive", "a", "-drive", "b",
                  "-device", "virtio-net,netdev=user.0", "-display", "none"]),
        ];
        let with_pvpanic = row(&[
            "-m",
            "512M",
            "-device",
            "virtio-net,netdev=user.0",
            "-device",
            "pvpanic",
        ]);
        #[rustfmt::skip]
        let pvpanic_cases: &[(&str, Vec<Vec<String>>, &[&str])] = &[
            ("user -device keeps pvpanic", vec![row(&["-device", "virtio-rng-pci"])],
                &["-m", "512M", "-device", "virtio-net,netdev=user.0", "-device", "virtio-rng-pci", "-device", "pvpanic"]),
            ("user pvpanic replaces kiln's", vec![row(&["-device", "pvpanic,ioport=0x506"])],
                &["-m", "512M", "-device", "virtio-net,netdev=user.0", "-device", "pvpanic,ioport=0x506"]),
        ];
        for (why, rows, want) in pvpanic_cases {
            assert_eq!(
                merge_qemuargs(with_pvpanic.clone(), rows, "virtio-net"),
                *want,
                "{why}"
            );
        }
        for (why, rows, want) in cases {
            let got = merge_qemuargs(defaults.clone(), rows, "virtio-net");
            assert_eq!(got, *want, "{why}");
            // Deterministic: the same input gives the same argv.
            assert_eq!(
                got,
                merge_qemuargs(defaults.clone(), rows, "virtio-net"),
                "{why}"
            );
        }
    }

    #[test]
    fn defaults_in_fixed_order() {
        #[rustfmt::skip]
        let expected = [
            "-name", "packer-t",
            "-machine", "type=pc,accel=tcg",
            "-m", "512M",
            "-smp", "1",
            "-drive", "file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
            "-drive", "file=/iso/in.iso,media=cdrom",
            "-boot", "once=d",
            "-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:3333-:22",
            "-device", "virtio-net,netdev=user.0",
            "-device", "pvpanic",
            "-vnc", "127.0.0.1:1",
            "-qmp", "unix:/out/packer-t.monitor,server=on,wait=off",
            "-serial", "file:/out/serial.log",
            "-display", "gtk",
        ];
        assert_eq!(qemu_args(&config(), &params()), expected);
    }

    type Edit = fn(&mut Config, &mut RunParams);

    #[test]
    fn switches_table() {
        #[rustfmt::skip]
        let rows: &[(&str, Edit, &str, &[&str])] = &[
            ("kvm goes into -machine", |_, p| p.accel = ResolvedAccel::Kvm,
                "-machine", &["type=pc,accel=kvm"]),
            ("accelerator none: no accel=", |c, p| { p.accel = ResolvedAccel::None; c.machine_type = "q35".into() },
                "-machine", &["type=q35"]),
            ("memory and cpus", |c, _| { c.memory = 2048; c.cpus = 2 },
                "-m", &["2048M"]),
            ("cpus 0 still gives one CPU", |c, _| c.cpus = 0,
                "-smp", &["1"]),
            ("headless: no window, VNC only", |c, _| c.headless = true,
                "-display", &["none"]),
            ("not headless: a gtk window as in Packer", |c, _| c.headless = false,
                "-display", &["gtk"]),
            ("raw format and other disk options", |c, _| {
                c.format = DiskFormat::Raw; c.disk_interface = "ide".into();
                c.disk_cache = "unsafe".into(); c.disk_discard = "unmap".into() },
                "-drive", &["file=/out/packer-t,if=ide,cache=unsafe,discard=unmap,format=raw",
                            "file=/iso/in.iso,media=cdrom"]),
            ("no ISO: boot the disk", |_, p| p.iso_path = None,
                "-boot", &["c"]),
            ("no ISO: only the disk drive", |_, p| p.iso_path = None,
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2"]),
            ("communicator none: no forward", |c, p| { c.communicator = CommunicatorKind::None; c.ssh = None; p.ssh_host_port = None },
                "-netdev", &["user,id=user.0"]),
            ("forward listens on IPv4 loopback only, to ssh_port", |c, _| c.ssh.as_mut().expect("set").port = 2200,
                "-netdev", &["user,id=user.0,hostfwd=tcp:127.0.0.1:3333-:2200"]),
            ("virtio-scsi: controller, disk device, drive by id", |c, _| c.disk_interface = "virtio-scsi".into(),
                "-device", &["virtio-scsi-pci,id=scsi0", "scsi-hd,bus=scsi0.0,drive=drive0", "virtio-net,netdev=user.0", "pvpanic"]),
            ("commas in paths are doubled", |_, p| p.disk_path = "/o,ut/d".into(),
                "-drive", &["file=/o,,ut/d,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom"]),
            ("VNC display is the port minus 5900, on vnc_bind_address", |c, p| { p.vnc_port = 5999; c.vnc_bind_address = "0.0.0.0".into() },
                "-vnc", &["0.0.0.0:99"]),
            ("net_device", |c, _| c.net_device = "e1000".into(),
                "-device", &["e1000,netdev=user.0", "pvpanic"]),
            ("pvpanic on q35 and versioned PC machines", |c, _| c.machine_type = "pc-q35-7.2".into(),
                "-device", &["virtio-net,netdev=user.0", "pvpanic"]),
            ("no pvpanic on microvm (no ISA bus)", |c, _| c.machine_type = "microvm".into(),
                "-device", &["virtio-net,netdev=user.0"]),
            ("no pvpanic for other architectures", |c, _| { c.qemu_binary = "/usr/bin/qemu-system-aarch64".into(); c.machine_type = "virt".into() },
                "-device", &["virtio-net,netdev=user.0"]),
            ("pvpanic for qemu-system-i386 by path", |c, _| c.qemu_binary = "/opt/q/qemu-system-i386".into(),
                "-device", &["virtio-net,netdev=user.0", "pvpanic"]),
            ("additional disks follow the main one with its options", |_, p| p.additional_disks = vec!["/out/packer-t-1".into()],
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/out/packer-t-1,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom"]),
            ("virtio-scsi: one controller, a device and drive id per disk", |c, p| { c.disk_interface = "virtio-scsi".into(); p.additional_disks = vec!["/out/packer-t-1".into()] },
                "-device", &["virtio-scsi-pci,id=scsi0", "scsi-hd,bus=scsi0.0,drive=drive0", "scsi-hd,bus=scsi0.0,drive=drive1", "virtio-net,netdev=user.0", "pvpanic"]),
            ("cd_files CD after the ISO; still boots the ISO", |_, p| p.cd_path = Some("/tmp/cd.iso".into()),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom", "file=/tmp/cd.iso,media=cdrom"]),
            ("disk_image with a seed CD: boots the disk", |_, p| { p.iso_path = None; p.cd_path = Some("/tmp/cd.iso".into()) },
                "-boot", &["c"]),
            ("topology follows Packer's SMP rule", |c, _| { c.cpus = 4; c.sockets = 1; c.cores = 2; c.threads = 2 },
                "-smp", &["4,sockets=1,cores=2,threads=2"]),
            ("cpu_model", |c, _| c.cpu_model = Some("qemu64".into()),
                "-cpu", &["qemu64"]),
            ("vga", |c, _| c.vga = Some("std".into()),
                "-vga", &["std"]),
            ("display when not headless", |c, _| { c.headless = false; c.display = Some("sdl".into()) },
                "-display", &["sdl"]),
            ("display none still means gtk when not headless", |c, _| { c.headless = false; c.display = Some("none".into()) },
                "-display", &["gtk"]),
            ("use_default_display: no -display", |c, _| { c.headless = false; c.use_default_display = true },
                "-display", &[]),
            ("disk_detect_zeroes", |c, _| c.disk_detect_zeroes = "unmap".into(),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2,detect-zeroes=unmap",
                            "file=/iso/in.iso,media=cdrom"]),
            ("efi: pflash code read-only, vars copy writable, after the CD", |_, p| p.efi = Some(("/fw/code.fd".into(), "/out/efivars.fd".into())),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom",
                            "file=/fw/code.fd,if=pflash,unit=0,format=raw,readonly=on",
                            "file=/out/efivars.fd,if=pflash,unit=1,format=raw"]),
            ("efi: no -boot", |_, p| p.efi = Some(("/fw/code.fd".into(), "/out/efivars.fd".into())),
                "-boot", &[]),
            ("firmware is -bios", |c, _| c.firmware = Some("/fw/bios.bin".into()),
                "-bios", &["/fw/bios.bin"]),
            ("firmware with use_pflash is a read-only pflash drive", |c, _| { c.firmware = Some("/fw/bios.bin".into()); c.use_pflash = true },
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom",
                            "file=/fw/bios.bin,if=pflash,format=raw,readonly=on"]),
            ("use_pflash without firmware changes nothing", |c, _| c.use_pflash = true,
                "-bios", &[]),
            ("guest-paced VNC typing: no QEMU key delay", |c, p| { c.boot_key_driver = KeyDriverKind::Vnc; p.key_trace = Some("/k/trace".into()) },
                "-vnc", &["127.0.0.1:1,key-delay-ms=0"]),
            ("VNC typing at a fixed interval keeps QEMU's delay", |c, _| c.boot_key_driver = KeyDriverKind::Vnc,
                "-vnc", &["127.0.0.1:1"]),
            ("guest-paced typing traces keyboard reads", |_, p| p.key_trace = Some("/k/trace".into()),
                "-trace", &["enable=ps2_read_data,file=/k/trace"]),
            // Issue 14.
            ("cdrom_interface ide: index after the disk on the same bus, an id per CD", |c, p| { c.cdrom_interface = Some("ide".into()); c.disk_interface = "ide".into(); p.cd_path = Some("/tmp/cd.iso".into()) },
                "-drive", &["file=/out/packer-t,if=ide,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,if=ide,index=1,id=cdrom0,media=cdrom",
                            "file=/tmp/cd.iso,if=ide,index=2,id=cdrom1,media=cdrom"]),
            ("cdrom_interface virtio on a virtio disk: index after the disk", |c, _| c.cdrom_interface = Some("virtio".into()),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,if=virtio,index=1,id=cdrom0,media=cdrom"]),
            ("cdrom_interface ide on a virtio disk: index from 0", |c, _| c.cdrom_interface = Some("ide".into()),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,if=ide,index=0,id=cdrom0,media=cdrom"]),
            ("cdrom_interface sata: an AHCI controller, a port per CD", |c, p| { c.cdrom_interface = Some("sata".into()); p.cd_path = Some("/tmp/cd.iso".into()) },
                "-device", &["ahci,id=ahci0", "ide-cd,bus=ahci0.0,drive=cdrom0", "ide-cd,bus=ahci0.1,drive=cdrom1", "virtio-net,netdev=user.0", "pvpanic"]),
            ("cdrom_interface scsi: on a virtio-scsi controller", |c, _| c.cdrom_interface = Some("scsi".into()),
                "-device", &["virtio-scsi-pci,id=scsi0", "scsi-cd,bus=scsi0.0,drive=cdrom0", "virtio-net,netdev=user.0", "pvpanic"]),
            ("cdrom_interface virtio-scsi: a controller and a scsi-cd per CD", |c, _| c.cdrom_interface = Some("virtio-scsi".into()),
                "-device", &["virtio-scsi-pci,id=scsi0", "scsi-cd,bus=scsi0.0,drive=cdrom0", "virtio-net,netdev=user.0", "pvpanic"]),
            ("cdrom_interface virtio-scsi: the drive by id", |c, _| c.cdrom_interface = Some("virtio-scsi".into()),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,if=none,id=cdrom0,media=cdrom"]),
            ("cdrom_interface virtio-scsi shares the disks' controller", |c, _| { c.cdrom_interface = Some("virtio-scsi".into()); c.disk_interface = "virtio-scsi".into() },
                "-device", &["virtio-scsi-pci,id=scsi0", "scsi-hd,bus=scsi0.0,drive=drive0", "scsi-cd,bus=scsi0.0,drive=cdrom0", "virtio-net,netdev=user.0", "pvpanic"]),
            ("vnc_use_password: QEMU asks for a password", |c, _| c.vnc_use_password = true,
                "-vnc", &["127.0.0.1:1,password=on"]),
            ("qmp_enable: the user's socket after kiln's", |c, p| { c.qmp_socket_path = Some("/out/user,1.monitor".into()); p.qmp_socket = "/run/k/qmp.sock".into() },
                "-qmp", &["unix:/run/k/qmp.sock,server=on,wait=off", "unix:/out/user,,1.monitor,server=on,wait=off"]),
            ("no qmp_enable: kiln's socket only", |_, p| p.qmp_socket = "/run/k/qmp.sock".into(),
                "-qmp", &["unix:/run/k/qmp.sock,server=on,wait=off"]),
            ("ssh_host as an address: the forward listens there", |_, p| p.ssh_forward_ip = "192.0.2.7".parse().expect("ip"),
                "-netdev", &["user,id=user.0,hostfwd=tcp:192.0.2.7:3333-:22"]),
            ("a floppy is -fda, Packer's switch", |_, p| p.floppy_path = Some("/tmp/k/floppy.img".into()),
                "-fda", &["/tmp/k/floppy.img"]),
            ("a floppy is no -drive: a user's -drive rows keep it", |_, p| p.floppy_path = Some("/tmp/k/floppy.img".into()),
                "-drive", &["file=/out/packer-t,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                            "file=/iso/in.iso,media=cdrom"]),
            ("no floppy, no -fda", |_, _| {},
                "-fda", &[]),
            ("vtpm: a chardev on swtpm's socket", |_, p| p.tpm_socket = Some("/tmp/kiln-tpm-x/vtpm.sock".into()),
                "-chardev", &["socket,id=vtpm,path=/tmp/kiln-tpm-x/vtpm.sock"]),
            ("vtpm: the emulator backend", |_, p| p.tpm_socket = Some("/tmp/t/vtpm.sock".into()),
                "-tpmdev", &["emulator,id=tpm0,chardev=vtpm"]),
            ("vtpm: tpm-tis by default, after the NIC", |_, p| p.tpm_socket = Some("/tmp/t/vtpm.sock".into()),
                "-device", &["virtio-net,netdev=user.0", "tpm-tis,tpmdev=tpm0", "pvpanic"]),
            ("vtpm: tpm_device_type", |c, p| { c.tpm_device_type = "tpm-crb".into(); p.tpm_socket = Some("/tmp/t/vtpm.sock".into()) },
                "-device", &["virtio-net,netdev=user.0", "tpm-crb,tpmdev=tpm0", "pvpanic"]),
            ("vtpm: a user -device keeps the TPM (Packer drops it)", |c, p| { c.qemuargs = vec![vec!["-device".into(), "usb-tablet".into()]]; p.tpm_socket = Some("/tmp/t/vtpm.sock".into()) },
                "-device", &["virtio-net,netdev=user.0", "usb-tablet", "tpm-tis,tpmdev=tpm0", "pvpanic"]),
            ("vtpm: a user TPM device replaces kiln's", |c, p| { c.qemuargs = vec![vec!["-device".into(), "tpm-crb,tpmdev=tpm0".into()]]; p.tpm_socket = Some("/tmp/t/vtpm.sock".into()) },
                "-device", &["virtio-net,netdev=user.0", "tpm-crb,tpmdev=tpm0", "pvpanic"]),
            ("vtpm: a user -chardev keeps the TPM's", |c, p| { c.qemuargs = vec![vec!["-chardev".into(), "pty,id=ser0".into()]]; p.tpm_socket = Some("/tmp/t/vtpm.sock".into()) },
                "-chardev", &["socket,id=vtpm,path=/tmp/t/vtpm.sock", "pty,id=ser0"]),
            ("no vtpm, no TPM", |_, _| {},
                "-tpmdev", &[]),
            ("net_bridge: Packer's bridge netdev, no forward", |c, p| { c.net_bridge = Some("br0".into()); p.ssh_host_port = None },
                "-netdev", &["bridge,id=user.0,br=br0"]),
            ("net_bridge: the NIC on it", |c, p| { c.net_bridge = Some("br0".into()); p.ssh_host_port = None },
                "-device", &["virtio-net,netdev=user.0", "pvpanic"]),
            ("skip_nat_mapping: no forward", |c, p| { c.skip_nat_mapping = true; p.ssh_host_port = None },
                "-netdev", &["user,id=user.0"]),
        ];
        for (reason, edit, switch, expected) in rows {
            let (mut c, mut p) = (config(), params());
            edit(&mut c, &mut p);
            let args = qemu_args(&c, &p);
            assert_eq!(values(&args, switch), *expected, "{reason}");
        }
    }

    /// Issue 14: the CD-ROM switches of each `cdrom_interface`, as `qemu_args` writes them, are
    /// accepted by a real QEMU, which shows the CDs as `cdrom0`, `cdrom1` (virtio-scsi: on
    /// the disks' controller when they use one).
    #[tokio::test]
    async fn issue_14_cdrom_interfaces_on_real_qemu() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (n, (cdrom, disks)) in [
            ("ide", "ide"),
            ("sata", "virtio"),
            ("scsi", "virtio"),
            ("virtio-scsi", "virtio"),
            ("virtio-scsi", "virtio-scsi"),
        ]
        .into_iter()
        .enumerate()
        {
            // Fresh images per QEMU: the previous one may still hold its lock on them while
            // it dies.
            let sub = dir.path().join(n.to_string());
            std::fs::create_dir(&sub).expect("mkdir");
            let (iso, cd, disk) = (sub.join("a.iso"), sub.join("b.iso"), sub.join("d.raw"));
            for f in [&iso, &cd, &disk] {
                std::fs::write(f, vec![0u8; 1 << 20]).expect("write");
            }
            let mut c = config();
            c.cdrom_interface = Some(cdrom.into());
            c.disk_interface = disks.into();
            c.format = DiskFormat::Raw;
            c.machine_type = if cdrom == "sata" {
                "q35".into()
            } else {
                "pc".into()
            };
            let mut p = params();
            p.disk_path = disk.clone();
            p.accel = ResolvedAccel::None;
            p.iso_path = Some(iso.clone());
            p.cd_path = Some(cd.clone());
            let argv = qemu_args(&c, &p);
            let media: Vec<&str> = argv
                .chunks(2)
                .filter(|pair| {
                    matches!(pair[0].as_str(), "-drive" | "-device" | "-machine")
                        && !pair[1].contains("netdev")
                        && pair[1] != PVPANIC
                })
                .flatten()
                .map(String::as_str)
                .collect();
            let qemu = crate::builder::qemu::qmp::test_qemu::spawn(&[&["-S"][..], &media].concat());
            let qmp = crate::builder::qemu::qmp::Qmp::connect(
                &qemu.socket,
                std::time::Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("{cdrom} on {disks}: QEMU refused {media:?}: {e}"));
            let blocks = qmp.execute("query-block", None).await.expect("query-block");
            let names: Vec<String> = blocks
                .as_array()
                .expect("a list")
                .iter()
                .map(|b| {
                    let qdev = b["qdev"].as_str().unwrap_or_default();
                    let file = b["inserted"]["file"].as_str().unwrap_or_default();
                    format!(
                        "{}:{}",
                        b["device"]
                            .as_str()
                            .filter(|d| !d.is_empty())
                            .unwrap_or(qdev),
                        file.rsplit('/').next().unwrap_or_default()
                    )
                })
                .collect();
            for want in ["a.iso", "b.iso", "d.raw"] {
                assert!(
                    names.iter().any(|n| n.ends_with(want)),
                    "{cdrom} on {disks}: {want} attached: {names:?}"
                );
            }
            if !["virtio-scsi", "scsi", "sata"].contains(&cdrom) {
                assert!(
                    names.contains(&"cdrom0:a.iso".to_owned())
                        && names.contains(&"cdrom1:b.iso".to_owned()),
                    "{cdrom}: {names:?}"
                );
            }
        }
    }

    /// Issue 14: Packer's swtpm command line.
    #[test]
    fn issue_14_swtpm_args() {
        let (dir, sock) = (
            Path::new("/tmp/kiln-tpm-a"),
            Path::new("/tmp/kiln-tpm-a/vtpm.sock"),
        );
        assert_eq!(
            swtpm_args(dir, sock, false),
            [
                "socket",
                "--tpmstate",
                "dir=/tmp/kiln-tpm-a",
                "--ctrl",
                "type=unixio,path=/tmp/kiln-tpm-a/vtpm.sock",
                "--tpm2"
            ]
        );
        assert_eq!(
            swtpm_args(dir, sock, true).last().map(String::as_str),
            Some("type=unixio,path=/tmp/kiln-tpm-a/vtpm.sock"),
            "use_tpm1: no --tpm2"
        );
    }

    /// QEMU 7.2's own words when a port is taken.
    #[test]
    fn port_clash_table() {
        #[rustfmt::skip]
        let rows = [
            ("qemu-system-x86_64: -netdev user,id=user.0,hostfwd=tcp:127.0.0.1:2222-:22: \
              Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'", Some("SSH forwarding")),
            ("qemu-system-x86_64: -vnc 127.0.0.1:0: Failed to find an available port: \
              Address already in use", Some("VNC")),
            ("some warning\nqemu-system-x86_64: -vnc 127.0.0.1:3: Failed to find an available port: \
              Address already in use", Some("VNC")),
            ("qemu-system-x86_64: -drive file=x: Could not open 'x': No such file or directory", None),
            ("", None),
        ];
        for (stderr, want) in rows {
            assert_eq!(port_clash(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn free_port_is_in_range_and_bindable() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = find_free_port(lo, 40000, 40100).expect("some port free");
        assert!((40000..=40100).contains(&port));
        TcpListener::bind((lo, port)).expect("the port is free");
    }

    /// `{{ .OutputDir }}` and `{{ .SSHHostPort }}` in `qemuargs`, as Packer fills them (issue 13).
    #[test]
    fn issue_13_qemuargs_placeholders() {
        let vars = QemuArgsVars {
            http_ip: "10.0.2.2".into(),
            http_port: 8123,
            http_dir: Some("/srv/http".into()),
            output_dir: "out/vm".into(),
            name: "deb.qcow2".into(),
            ssh_host_port: Some(3022),
            ssh_public_key: "ssh-ed25519 AAAA kiln".into(),
        };
        let rows = vec![
            vec!["-drive".into(), "file={{ .OutputDir }}/extra.img,if=virtio".into()],
            vec![
                "-device".into(),
                "x,port={{.SSHHostPort}},u=http://{{ .HTTPIP }}:{{ .HTTPPort }}{{ .HTTPDir }}/{{ .Name }}".into(),
            ],
        ];
        assert_eq!(
            render_qemuargs(&rows, &vars).expect("renders"),
            vec![
                vec![
                    "-drive".to_owned(),
                    "file=out/vm/extra.img,if=virtio".to_owned()
                ],
                vec![
                    "-device".to_owned(),
                    "x,port=3022,u=http://10.0.2.2:8123/srv/http/deb.qcow2".to_owned()
                ],
            ]
        );
        let bad = vec![vec!["{{ .Nope }}".to_owned()]];
        assert!(render_qemuargs(&bad, &vars).is_err());
    }

    /// Builds running side by side never get the same port while one holds it (issue 13).
    #[test]
    fn issue_13_leased_ports_are_not_handed_out_twice() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = lease_free_port(lo, 41000, 41001).expect("a port");
        let b = lease_free_port(lo, 41000, 41001).expect("the other port");
        assert_ne!(a.port, b.port);
        assert!(matches!(
            lease_free_port(lo, 41000, 41001),
            Err(Error::NoFreePort { .. })
        ));
        let freed = a.port;
        drop(a);
        assert_eq!(
            lease_free_port(lo, 41000, 41001).expect("freed").port,
            freed
        );
    }

    #[test]
    fn taken_port_is_skipped() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let held = TcpListener::bind((lo, 0)).expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let err = find_free_port(lo, taken, taken).expect_err("only port is taken");
        assert!(matches!(err, Error::NoFreePort { .. }), "{err}");
        assert!(matches!(
            find_free_port(lo, 10, 9),
            Err(Error::PortRange { .. })
        ));
    }
}
