//! Step: serve `http_directory` to the guest (preseed, kickstart, autoinstall files).
//!
//! Uses: `config.http_directory`, `config.http_port_min/max`.
//! Produces: `http_port` (0 when there is no directory). Cleanup: stops the server.
//! The server binds 127.0.0.1 only; QEMU's user network lets the guest reach it as 10.0.2.2.

use std::net::{IpAddr, Ipv4Addr};

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
        let Some(dir) = ctx.config.http_directory.clone() else {
            return Ok(());
        };
        let server = HttpServer::start_logged(
            &dir,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            ctx.config.http_port_min,
            ctx.config.http_port_max,
            Some(ctx.ui.clone()),
        )
        .await
        .map_err(Error::StartHttpServer)?;
        ctx.http_port = server.port();
        ctx.ui.say(format!(
            "Starting HTTP server on port {} (serving `{}`)",
            server.port(),
            dir.display()
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
