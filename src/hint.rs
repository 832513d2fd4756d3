//! Hints printed under an error (`hint: …`) when kiln knows the fix, and the rendering of
//! template diagnostics found anywhere in an error chain. Used only by `main`.

use std::error::Error;

use crate::builder::qemu;
use crate::builder::qemu::monitor::Fault;
use crate::communicator::ssh;

/// The hint for this one error (not its causes), if kiln has one.
pub fn for_error(err: &(dyn Error + 'static)) -> Option<String> {
    if let Some(e) = err.downcast_ref::<qemu::Error>() {
        return match e {
            qemu::Error::OutputDirExists { .. } => Some(
                "pass `-force` to replace it (also when a killed kiln left it half-written), \
                 or remove it yourself"
                    .into(),
            ),
            qemu::Error::WaitSsh(e) => ssh_hint(e),
            qemu::Error::GuestFault(f) => Some(fault_hint(f).into()),
            _ => None,
        };
    }
    let no_space = match err.downcast_ref::<crate::qemu_img::Error>() {
        Some(crate::qemu_img::Error::Convert { stderr, .. }) => {
            stderr.contains("No space left on device")
        }
        _ => err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(ENOSPC)),
    };
    if no_space {
        return Some(
            "that filesystem is full (kiln removed what it was writing): free space there, or \
             point `output_directory` (or the post-processor's `output`, or `KILN_CACHE_DIR` for \
             the ISO cache) at a larger filesystem"
                .into(),
        );
    }
    match err.downcast_ref::<crate::download::Error>() {
        Some(crate::download::Error::ChecksumMismatch { .. }) => {
            return Some(
                "the file changed or `iso_checksum` is wrong; check the checksum published next to the ISO".into(),
            );
        }
        Some(crate::download::Error::NoChecksumFor { .. }) => {
            return Some(
                "a checksum file lists files by name: check that the name at the end of `iso_url` appears in it".into(),
            );
        }
        _ => {}
    }
    None
}

/// `ENOSPC`: no space left on device.
const ENOSPC: i32 = 28;

/// Why SSH never came up, as far as kiln can tell: the credentials hint only when the guest's
/// SSH server answered and refused them.
fn ssh_hint(e: &ssh::Error) -> Option<String> {
    let refused = |e: &ssh::Error| matches!(e, ssh::Error::AuthenticationFailed { .. });
    match e {
        e if refused(e) => Some(CREDENTIALS.into()),
        ssh::Error::Timeout {
            last: Some(last), ..
        } if refused(last) => Some(CREDENTIALS.into()),
        ssh::Error::Timeout { .. } => Some(
            "the guest never accepted an SSH login on its forwarded port: see its last serial \
             lines and the screenshot above. The installer may wait for input (check \
             `boot_command` and `boot_wait`) or still be running (raise `ssh_timeout`); rerun \
             with `-on-error=abort` to keep the VM and the output directory"
                .into(),
        ),
        ssh::Error::Aborted { .. } => Some(
            "QEMU exited while kiln waited for SSH: its reason is above, its whole output in \
             `qemu-stderr.log` (rerun with `-on-error=abort` to keep the output directory)"
                .into(),
        ),
        _ => None,
    }
}

const CREDENTIALS: &str = "the guest's SSH server answered but refused the login: check that \
    `ssh_username` and `ssh_password` (or `ssh_private_key_file`) match the user the answer file \
    creates";

/// What to do about a guest fault.
fn fault_hint(f: &Fault) -> &'static str {
    match f {
        Fault::DiskFull { .. } => {
            "free space on that filesystem, or point `output_directory` at a larger one: the \
             disk may grow to `disk_size`, and compaction and the post-processors need room \
             for a copy each (kiln warns before starting QEMU when the build may not fit)"
        }
        Fault::IoError { .. } => {
            "the host could not write the disk image: check the host's disk and its kernel log \
             (`dmesg`)"
        }
        Fault::Panicked { .. } => {
            "the guest's kernel crashed; its last serial lines are above. Common causes: a \
             wrong kernel command line in `boot_command`, too little `memory`, or a `cpu_model` \
             the kernel does not support"
        }
        Fault::InternalError => {
            "QEMU could not run the guest's code: try another `cpu_model` or `accelerator`"
        }
        Fault::BootLoop { .. } => {
            "the guest restarts before it comes up: its bootloader or kernel fails at once. See \
             the screenshot and serial lines above (or watch over VNC); check `cpu_model`, \
             `memory`, `efi_boot` and what the installer wrote to the disk"
        }
        Fault::PoweredOff => {
            "the installer powered the guest off instead of rebooting into the installed \
             system: make the answer file reboot at the end (Debian's preseed: `d-i \
             debian-installer/exit/poweroff boolean false`), or set `communicator = \"none\"` \
             when powering off is how the build ends"
        }
    }
}

/// Every template diagnostic in the chain of `err`, rendered with source lines and carets.
pub fn diagnostics(err: &(dyn Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(crate::template::Error::Invalid(diags)) =
            e.downcast_ref::<crate::template::Error>()
        {
            let rendered: Vec<String> = diags
                .iter()
                .map(|d| d.render(std::fs::read_to_string(&d.location.file).ok().as_deref()))
                .collect();
            return Some(rendered.join("\n\n"));
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hint_of(e: qemu::Error) -> String {
        for_error(&e).unwrap_or_default()
    }

    fn timeout(last: Option<ssh::Error>) -> qemu::Error {
        qemu::Error::WaitSsh(ssh::Error::Timeout {
            addr: "127.0.0.1:2222".into(),
            waited: Duration::from_secs(600),
            last: last.map(Box::new),
        })
    }

    /// Issue 20: the credentials hint only when the guest's SSH server answered and refused.
    #[test]
    fn ssh_hints_follow_what_happened() {
        let refused = || ssh::Error::AuthenticationFailed {
            user: "root".into(),
        };
        assert!(hint_of(timeout(Some(refused()))).contains("refused the login"));
        assert!(hint_of(qemu::Error::WaitSsh(refused())).contains("ssh_password"));
        let never = timeout(Some(ssh::Error::ConnectTimeout {
            addr: "127.0.0.1:2222".into(),
            limit: Duration::from_secs(10),
        }));
        let h = hint_of(never);
        assert!(h.contains("never accepted an SSH login"), "{h}");
        assert!(!h.contains("ssh_password"), "{h}");
        assert!(!hint_of(timeout(None)).contains("ssh_password"));
        let gone = qemu::Error::WaitSsh(ssh::Error::Aborted {
            reason: "exit status 1".into(),
        });
        assert!(hint_of(gone).contains("QEMU exited"));
    }

    #[test]
    fn every_fault_has_its_own_hint() {
        let faults = [
            Fault::DiskFull {
                device: "virtio0".into(),
                file: None,
                free: None,
            },
            Fault::IoError {
                device: "virtio0".into(),
                file: None,
                reason: "Input/output error".into(),
            },
            Fault::Panicked {
                action: "poweroff".into(),
            },
            Fault::InternalError,
            Fault::BootLoop {
                resets: 10,
                within: Duration::from_secs(2),
            },
            Fault::PoweredOff,
        ];
        let hints: std::collections::BTreeSet<String> = faults
            .into_iter()
            .map(|f| hint_of(qemu::Error::GuestFault(f)))
            .collect();
        assert_eq!(hints.len(), 6, "{hints:#?}");
        assert!(
            hints
                .iter()
                .all(|h| !h.is_empty() && !h.contains("ssh_password"))
        );
    }

    #[test]
    fn a_full_disk_anywhere_gets_the_space_hint() {
        let io = std::io::Error::from_raw_os_error(ENOSPC);
        assert!(for_error(&io).is_some_and(|h| h.contains("filesystem is full")));
        let convert = crate::qemu_img::Error::Convert {
            src: "d".into(),
            temp: "d.convert".into(),
            dst: "d".into(),
            stderr: "qemu-img: error while writing at byte 0: No space left on device".into(),
        };
        assert!(for_error(&convert).is_some_and(|h| h.contains("filesystem is full")));
        assert!(for_error(&std::io::Error::other("x")).is_none());
    }
}
