//! Step: serve `http_directory` to the guest (preseed, kickstart, autoinstall files).
//!
//! Uses: `config.http_directory` or `config.http_content`, `config.http_bind_address` or
//! `config.http_interface`, `config.http_port_min/max`.
//! Produces: `http_port` (0 when there is nothing to serve), `http_ip`. Cleanup: stops the
//! server.
//! The server binds 127.0.0.1 unless `http_bind_address` (or `http_interface`, the first IPv4
//! address of that interface) says otherwise; QEMU's user network lets the guest reach it as
//! 10.0.2.2, or at the one host address it listens on (see [`guest_ip`]). Every request is one line on the UI.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::http_server::HttpServer;
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct StartHttpServer {
    server: Option<HttpServer>,
}

#[async_trait]
impl Step<BuildContext, Error> for StartHttpServer {
    fn name(&self) -> &'static str {
        "http_server"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if cfg.http_directory.is_none() && cfg.http_content.is_empty() {
            return Ok(());
        }
        let bind = match &cfg.http_interface {
            Some(name) => interface_ipv4(name).map_err(|source| Error::HttpInterface {
                interface: name.clone(),
                source,
            })?,
            None => cfg.http_bind_address,
        };
        let (min, max) = (cfg.http_port_min, cfg.http_port_max);
        let ui = Some(ctx.core.ui.clone());
        let (server, what) = if let Some(dir) = cfg.http_directory.clone() {
            let server = HttpServer::start_logged(&dir, bind, min, max, ui).await;
            (server, format!("serving `{}`", dir.display()))
        } else if !cfg.http_content.is_empty() {
            let paths = cfg.http_content.len();
            let server =
                HttpServer::start_content(cfg.http_content.clone(), bind, min, max, ui).await;
            (server, format!("serving {paths} http_content paths"))
        } else {
            return Ok(());
        };
        let server = server.map_err(Error::StartHttpServer)?;
        ctx.http_port = server.port();
        ctx.http_ip = guest_ip(bind);
        ctx.core.ui.say(format!(
            "Starting HTTP server on {bind} port {} ({what})",
            server.port()
        ));
        self.server = Some(server);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        if let Some(server) = self.server.take() {
            let requests = server.requests();
            tracing::debug!(count = requests.len(), "stopping HTTP server");
            server.shutdown().await;
            ctx.http_port = 0;
        }
    }
}

/// The address the guest reaches a server listening on `bind` at: QEMU's user network maps
/// 10.0.2.2 to the host's loopback, which a server on every address or on loopback answers;
/// a server on one other address of the host is reached at that address (QEMU's NAT).
pub fn guest_ip(bind: IpAddr) -> String {
    if bind.is_unspecified() || bind.is_loopback() {
        super::boot_command::HTTP_IP.to_owned()
    } else {
        bind.to_string()
    }
}

/// The first IPv4 address of the host's network interface `name` (`http_interface`).
fn interface_ipv4(name: &str) -> std::io::Result<IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)?;
    let mut found = false;
    for a in addrs.filter(|a| a.interface_name == name) {
        found = true;
        if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Ok(IpAddr::V4(v4.ip()));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        if found {
            "the interface has no IPv4 address"
        } else {
            "no such network interface"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14: `http_interface` finds the interface's IPv4 address (the loopback's here).
    #[test]
    fn issue_14_interface_address() {
        assert_eq!(
            interface_ipv4("lo").expect("lo has 127.0.0.1"),
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        );
        let err = interface_ipv4("kiln-none0").expect_err("no such interface");
        assert!(
            err.to_string().contains("no such network interface"),
            "{err}"
        );
    }

    #[test]
    fn issue_14_guest_reaches_the_server() {
        let rows = [
            ("127.0.0.1", "10.0.2.2"),
            ("0.0.0.0", "10.0.2.2"),
            ("::", "10.0.2.2"),
            ("192.0.2.5", "192.0.2.5"),
        ];
        for (bind, want) in rows {
            assert_eq!(guest_ip(bind.parse().expect("ip")), want, "{bind}");
        }
    }
}
