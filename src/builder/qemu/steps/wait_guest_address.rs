//! Step: with `net_bridge` and no `ssh_host`, find the guest's address as Packer does: the MAC
//! address of the NIC on netdev `user.0` (QMP `qom-list` / `qom-get`), then the host's
//! neighbour table (`/proc/net/arp`, complete entries only) until it lists that MAC. The table
//! is read every second (Packer: every 10 s) until `ssh_timeout`, or until QEMU exits.
//!
//! Uses: `config.net_bridge`, `config.ssh_host`, `config.ssh` (its timeout), `qmp`, `qemu`.
//! Produces: `guest_address`. Cleanup: none.

use std::time::Duration;

use async_trait::async_trait;

use crate::builder::qemu::config::CommunicatorKind;
use crate::builder::qemu::qmp::Qmp;
use crate::builder::qemu::{BuildContext, Error};
use crate::step::Step;
use crate::wait::{self, Attempt};

/// The host's IPv4 neighbour table.
const ARP_TABLE: &str = "/proc/net/arp";
const POLL: Duration = Duration::from_secs(1);
/// The kernel's flag of a complete neighbour entry (`ATF_COM`).
const ATF_COM: u32 = 0x2;

pub struct WaitGuestAddress;

/// Why the guest's address was not found.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// QEMU did not say which NIC is on `user.0`, or its MAC.
    #[error("QEMU did not tell the MAC address of the NIC on netdev `user.0`")]
    NoMac(#[source] Option<crate::builder::qemu::qmp::Error>),
    /// The neighbour table never listed the MAC.
    #[error(
        "no complete entry for {mac} in {ARP_TABLE} after {waited:?} (is DHCP served on the bridge?)"
    )]
    NotInTable { mac: String, waited: Duration },
    /// The table could not be read.
    #[error("Cannot read {ARP_TABLE}")]
    Read(#[source] std::io::Error),
    /// QEMU exited meanwhile.
    #[error("QEMU exited: {0}")]
    QemuExited(String),
}

/// The IPv4 address `/proc/net/arp` (its `text`) lists for `mac`, complete entries only.
pub fn address_of(text: &str, mac: &str) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw_type, flags, hw, ..] = f.as_slice() else {
            return None;
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        (flags & ATF_COM != 0 && hw.eq_ignore_ascii_case(mac)).then(|| (*ip).to_owned())
    })
}

/// The MAC address of the NIC whose netdev is `user.0`, as Packer finds it: every device under
/// `/machine/peripheral-anon` and `/machine/peripheral`.
pub async fn nic_mac(qmp: &Qmp) -> Result<String, AddressError> {
    let mut last = None;
    for parent in ["/machine/peripheral-anon", "/machine/peripheral"] {
        let children = match qmp
            .execute("qom-list", Some(serde_json::json!({ "path": parent })))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        for child in children.as_array().into_iter().flatten() {
            let (Some(name), Some(kind)) = (child["name"].as_str(), child["type"].as_str()) else {
                continue;
            };
            if !kind.starts_with("child<") {
                continue;
            }
            let path = format!("{parent}/{name}");
            let get = |property: &'static str| {
                let args = serde_json::json!({ "path": path, "property": property });
                qmp.execute("qom-get", Some(args))
            };
            if get("netdev")
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .as_deref()
                == Some("user.0")
                && let Ok(mac) = get("mac").await
                && let Some(mac) = mac.as_str()
            {
                return Ok(mac.to_owned());
            }
        }
    }
    Err(AddressError::NoMac(last))
}

#[async_trait]
impl Step<BuildContext, Error> for WaitGuestAddress {
    fn name(&self) -> &'static str {
        "wait_guest_address"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        let (Some(bridge), None, CommunicatorKind::Ssh, Some(ssh)) =
            (&cfg.net_bridge, &cfg.ssh_host, &cfg.communicator, &cfg.ssh)
        else {
            return Ok(());
        };
        let failed = |source| Error::GuestAddress {
            bridge: bridge.clone(),
            source,
        };
        let qmp = ctx.qmp.clone().ok_or(Error::Missing { what: "qmp" })?;
        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let mac = nic_mac(&qmp).await.map_err(failed)?;
        ctx.core.ui.say(format!(
            "Waiting for the guest's address on bridge `{bridge}` (MAC {mac}) in {ARP_TABLE}"
        ));
        let found = tokio::select! {
            r = wait::until_ok(ssh.timeout, POLL, || {
                let mac = mac.clone();
                async move {
                    match tokio::fs::read_to_string(ARP_TABLE).await {
                        Ok(text) => match address_of(&text, &mac) {
                            Some(ip) => Attempt::Done(ip),
                            None => Attempt::Retry(AddressError::NotInTable { mac, waited: Duration::ZERO }),
                        },
                        Err(e) => Attempt::Fatal(AddressError::Read(e)),
                    }
                }
            }) => r,
            reason = qemu.died() => return Err(failed(AddressError::QemuExited(reason))),
        };
        let ip = found.map_err(|e| {
            failed(match e {
                wait::Error::Fatal(e) => e,
                wait::Error::Timeout { waited, .. } => AddressError::NotInTable {
                    mac: mac.clone(),
                    waited,
                },
            })
        })?;
        ctx.core.ui.message(format!("The guest is at {ip}"));
        ctx.guest_address = Some(ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_14_address_from_the_neighbour_table() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.9.7         0x1         0x0         52:54:00:12:34:56     *        br0\n\
                     10.0.9.8         0x1         0x2         52:54:00:12:34:56     *        br0\n\
                     10.0.9.9         0x1         0x2         52:54:00:aa:bb:cc     *        br0\n";
        let rows = [
            ("52:54:00:12:34:56", Some("10.0.9.8"), "complete entry only"),
            ("52:54:00:AA:BB:CC", Some("10.0.9.9"), "MAC case ignored"),
            ("52:54:00:00:00:01", None, "not there"),
        ];
        for (mac, want, why) in rows {
            assert_eq!(address_of(table, mac).as_deref(), want, "{why}");
        }
        assert_eq!(address_of("", "52:54:00:12:34:56"), None);
    }

    /// Runs `ip ARGS…`, panicking with its stderr on failure.
    fn ip(args: &[&str]) -> String {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("`ip` (Debian package iproute2) is needed: {e}"));
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Deletes the test's network namespace.
    struct Netns(String);

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }

    /// Issue 14: inside a network namespace the test creates (a bridge `br0` there), a real
    /// QEMU started with kiln's `net_bridge` switches joins the bridge through
    /// qemu-bridge-helper (allowed by a `bridge.conf` in a private overlay of `/etc`, so the
    /// host's `/etc` is untouched); kiln reads the NIC's MAC over QMP as Packer does, and finds
    /// the address the namespace's neighbour table lists for it.
    #[tokio::test]
    async fn issue_14_net_bridge_in_a_namespace() {
        use crate::builder::qemu::args::{RunParams, qemu_args};
        use crate::builder::qemu::config::Config;
        let ns = Netns(format!("kiln-t14-{}", std::process::id()));
        ip(&["netns", "add", &ns.0]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns.0.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        in_ns(&["ip", "link", "add", "br0", "type", "bridge"]);
        in_ns(&["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        in_ns(&["ip", "link", "set", "br0", "up"]);

        let mut c =
            Config::with_defaults("t", "/".into(), "x".into(), crate::types::Checksum::None);
        c.net_bridge = Some("br0".into());
        let p = RunParams {
            ssh_host_port: None,
            ..RunParams::for_tests()
        };
        let net: Vec<String> = qemu_args(&c, &p)
            .chunks(2)
            .filter(|pair| pair[0] == "-netdev" || pair[1].contains("netdev=user.0"))
            .flatten()
            .cloned()
            .collect();
        assert_eq!(
            net,
            [
                "-netdev",
                "bridge,id=user.0,br=br0",
                "-device",
                "virtio-net,netdev=user.0"
            ]
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        std::fs::create_dir(&upper).expect("mkdir");
        std::fs::create_dir(&work).expect("mkdir");
        let socket = dir.path().join("qmp.sock");
        let script = format!(
            "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && \
             mkdir -p /etc/qemu && echo 'allow br0' > /etc/qemu/bridge.conf && \
             exec qemu-system-x86_64 -machine pc,accel=tcg -S -display none -nodefaults -m 64 \
             {} -qmp unix:{},server=on,wait=off",
            upper.display(),
            work.display(),
            net.join(" "),
            socket.display()
        );
        let _qemu = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ip netns exec … qemu-system-x86_64");
        let qmp = Qmp::connect(&socket, Duration::from_secs(30))
            .await
            .expect("QEMU on the bridge answers QMP");
        let mac = nic_mac(&qmp).await.expect("the NIC's MAC");
        assert_eq!(mac, "52:54:00:12:34:56", "QEMU's default MAC");
        let ports = in_ns(&["ip", "-o", "link", "show", "master", "br0"]);
        assert!(ports.contains("tap"), "QEMU's tap joined br0: {ports}");

        in_ns(&[
            "ip",
            "neigh",
            "add",
            "10.77.0.5",
            "lladdr",
            &mac,
            "dev",
            "br0",
            "nud",
            "permanent",
        ]);
        let table = in_ns(&["cat", ARP_TABLE]);
        assert_eq!(
            address_of(&table, &mac).as_deref(),
            Some("10.77.0.5"),
            "{table}"
        );
    }
}
