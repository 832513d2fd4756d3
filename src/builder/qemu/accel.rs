//! Choosing the QEMU accelerator for `accelerator = "auto"`.
//!
//! Packer picks KVM whenever `/dev/kvm` opens. That is not enough: a nested PVM device
//! (`kvm_pvm`) opens fine on a CPU without `vmx`/`svm`, yet guest kernels hang under it. kiln
//! uses KVM only when the CPU advertises hardware virtualisation *and* `/dev/kvm` opens
//! read-write; otherwise it falls back to TCG and says why.

use std::io::ErrorKind;
use std::path::Path;

use super::config::Accelerator;

/// The accelerator QEMU is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedAccel {
    Kvm,
    Tcg,
    /// No `accel=` at all (`accelerator = "none"`): QEMU's own default.
    None,
}

impl ResolvedAccel {
    /// The value for `-machine accel=`, or `None` when no `accel=` is given.
    pub fn as_machine_accel(self) -> Option<&'static str> {
        match self {
            ResolvedAccel::Kvm => Some("kvm"),
            ResolvedAccel::Tcg => Some("tcg"),
            ResolvedAccel::None => None,
        }
    }
}

/// What opening `/dev/kvm` read-write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmDevice {
    Missing,
    NoPermission,
    /// Another error (the text of the I/O error).
    Failed(String),
    Opens,
}

/// The chosen accelerator and, when `auto` fell back to TCG, why (for a user warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub accel: ResolvedAccel,
    pub fallback_reason: Option<String>,
}

/// Resolves `accelerator`: `auto` probes the host (see [`decide`]); `kvm`, `tcg` and `none` are
/// kept as asked (an unusable `kvm` is logged as a warning and fails or hangs later, as asked).
pub fn resolve(requested: Accelerator) -> Resolution {
    let keep = |accel| Resolution {
        accel,
        fallback_reason: None,
    };
    match requested {
        Accelerator::Tcg => keep(ResolvedAccel::Tcg),
        Accelerator::None => keep(ResolvedAccel::None),
        Accelerator::Kvm => {
            if let Some(reason) = probe().fallback_reason {
                tracing::warn!(
                    "accelerator = \"kvm\" was asked for, but KVM looks unusable: {reason}"
                );
            }
            keep(ResolvedAccel::Kvm)
        }
        Accelerator::Auto => {
            let r = probe();
            tracing::debug!(accel = ?r.accel, reason = ?r.fallback_reason, "accelerator auto resolved");
            r
        }
    }
}

/// Reads the host facts and runs [`decide`].
fn probe() -> Resolution {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let kvm = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => KvmDevice::Opens,
        Err(e) if e.kind() == ErrorKind::NotFound => KvmDevice::Missing,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => KvmDevice::NoPermission,
        Err(e) => KvmDevice::Failed(e.to_string()),
    };
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    decide(&cpuinfo, kvm, pvm)
}

/// Whether any `flags` line of `/proc/cpuinfo` text has `vmx` (Intel) or `svm` (AMD).
fn has_virt_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// The `auto` decision from the host facts: `cpuinfo` is the text of `/proc/cpuinfo`, `kvm_dev`
/// what opening `/dev/kvm` read-write did, `pvm_module` whether `/sys/module/kvm_pvm` exists.
pub fn decide(cpuinfo: &str, kvm_dev: KvmDevice, pvm_module: bool) -> Resolution {
    let reason = if !has_virt_flag(cpuinfo) {
        if pvm_module && kvm_dev != KvmDevice::Missing {
            "CPU has no vmx/svm flag and /dev/kvm is a nested PVM device (kvm_pvm), under which \
             guests hang"
                .to_owned()
        } else {
            "CPU has no vmx/svm flag".to_owned()
        }
    } else {
        match kvm_dev {
            KvmDevice::Opens => {
                return Resolution {
                    accel: ResolvedAccel::Kvm,
                    fallback_reason: None,
                };
            }
            KvmDevice::Missing => {
                "/dev/kvm missing (hint: load the kvm_intel or kvm_amd module)".to_owned()
            }
            KvmDevice::NoPermission => "no permission to open /dev/kvm (hint: add yourself to \
                                        the kvm group, then log in again)"
                .to_owned(),
            KvmDevice::Failed(e) => format!("cannot open /dev/kvm: {e}"),
        }
    };
    Resolution {
        accel: ResolvedAccel::Tcg,
        fallback_reason: Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTEL: &str = "processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\nbugs\t\t: spectre\n";
    const AMD: &str = "processor\t: 0\nflags\t\t: fpu svm sse4a\n";
    const NONE: &str = "processor\t: 0\nflags\t\t: fpu vme hypervisor\nvmx flags\t: ept\n";

    #[test]
    fn decide_table() {
        use KvmDevice::*;
        #[rustfmt::skip]
        let rows: &[(&str, &str, KvmDevice, bool, ResolvedAccel, Option<&str>)] = &[
            ("vmx and kvm opens", INTEL, Opens, false, ResolvedAccel::Kvm, None),
            ("svm and kvm opens", AMD, Opens, false, ResolvedAccel::Kvm, None),
            ("vmx with a PVM module loaded too: real KVM", INTEL, Opens, true, ResolvedAccel::Kvm, None),
            ("PVM device without vmx/svm hangs guests", NONE, Opens, true, ResolvedAccel::Tcg, Some("nested PVM")),
            ("no vmx/svm, a 'vmx flags' line does not count", NONE, Opens, false, ResolvedAccel::Tcg, Some("no vmx/svm")),
            ("no vmx/svm and no device", NONE, Missing, false, ResolvedAccel::Tcg, Some("no vmx/svm")),
            ("vmx but no device", INTEL, Missing, false, ResolvedAccel::Tcg, Some("/dev/kvm missing")),
            ("vmx but no permission: hint the kvm group", INTEL, NoPermission, false, ResolvedAccel::Tcg, Some("kvm group")),
            ("vmx but another open error", AMD, Failed("busy".into()), false, ResolvedAccel::Tcg, Some("busy")),
            ("empty cpuinfo", "", Opens, false, ResolvedAccel::Tcg, Some("no vmx/svm")),
        ];
        for (reason, cpuinfo, dev, pvm, accel, why) in rows {
            let r = decide(cpuinfo, dev.clone(), *pvm);
            assert_eq!(r.accel, *accel, "{reason}");
            match why {
                None => assert_eq!(r.fallback_reason, None, "{reason}"),
                Some(w) => {
                    let got = r.fallback_reason.unwrap_or_default();
                    assert!(got.contains(w), "{reason}: {got:?} lacks {w:?}");
                }
            }
        }
    }

    #[test]
    fn explicit_choices_are_kept() {
        assert_eq!(resolve(Accelerator::Tcg).accel, ResolvedAccel::Tcg);
        assert_eq!(resolve(Accelerator::Kvm).accel, ResolvedAccel::Kvm);
        assert_eq!(resolve(Accelerator::None).accel, ResolvedAccel::None);
        assert_eq!(resolve(Accelerator::Kvm).fallback_reason, None);
    }
}
