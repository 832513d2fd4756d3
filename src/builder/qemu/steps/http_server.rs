//! Step: serve `http_directory` to the guest (preseed, kickstart, autoinstall files).
//!
//! Uses: `config.http_directory` or `config.http_content`, `config.http_bind_address`,
//! `config.http_port_min/max`.
//! Produces: `http_port` (0 when there is nothing to serve). Cleanup: stops the server.
//! The server binds 127.0.0.1 unless `http_bind_address` says otherwise; QEMU's user network
//! lets the guest reach it as 10.0.2.2. Every request is one line on the UI.

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
        let (bind, min, max) = (cfg.http_bind_address, cfg.http_port_min, cfg.http_port_max);
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
