//! Step: run the build's provisioners through the provisioner layer every builder shares.
//!
//! Uses: `provisioners`, `error_cleanup`, `comm`, `ssh_target`, `qemu`, `config.name`,
//! `http_port`. Produces: changes in the guest; `comm` is the connection left at the end (a
//! provisioner that rebooted the guest leaves a new one). Cleanup: none.

use async_trait::async_trait;

use crate::builder::qemu::steps::boot_command::HTTP_IP;
use crate::builder::qemu::{BuildContext, Error};
use crate::communicator::ssh;
use crate::provisioner::{self, BuildEnv, Session};
use crate::step::Step;

pub struct Provision;

#[async_trait]
impl Step<BuildContext, Error> for Provision {
    fn name(&self) -> &'static str {
        "provision"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        if ctx.provisioners.is_empty() {
            return Ok(());
        }
        let build = BuildEnv {
            source: format!("qemu.{}", ctx.config.name),
            env: packer_env(&ctx.config.name, ctx.http_port),
        };
        // Without SSH (`communicator = "none"`), only local provisioners can run; a remote one
        // fails when it asks for the connection.
        let target = ctx.ssh_target.clone().unwrap_or(ssh::SshTarget {
            host: "127.0.0.1".into(),
            port: 0,
            username: String::new(),
            private_key: None,
            password: None,
            pty: false,
        });
        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let mut session = Session::new(
            ctx.comm.take(),
            target,
            Box::new(move || Box::pin(qemu.died())),
            ctx.cancel.clone(),
        );
        let result = provisioner::run_all(
            &ctx.provisioners,
            ctx.error_cleanup.as_ref(),
            &mut session,
            &build,
            &ctx.ui,
        )
        .await;
        // A last provisioner that rebooted the guest: reconnect so that the shutdown_command
        // can run.
        if result.is_ok() && ctx.ssh_target.is_some() {
            session
                .connect(crate::provisioner::shell::DEFAULT_START_RETRY)
                .await
                .map_err(Error::WaitSsh)?;
        }
        ctx.comm = session.into_comm();
        result.map_err(Error::Provision)
    }
}

/// The environment Packer gives every shell provisioner of a qemu build.
fn packer_env(build_name: &str, http_port: u16) -> Vec<(String, String)> {
    let mut env = vec![
        ("PACKER_BUILD_NAME".to_owned(), build_name.to_owned()),
        ("PACKER_BUILDER_TYPE".to_owned(), "qemu".to_owned()),
    ];
    if http_port != 0 {
        env.push((
            "PACKER_HTTP_ADDR".to_owned(),
            format!("{HTTP_IP}:{http_port}"),
        ));
        env.push(("PACKER_HTTP_IP".to_owned(), HTTP_IP.to_owned()));
        env.push(("PACKER_HTTP_PORT".to_owned(), http_port.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_http_vars_only_with_a_server() {
        assert_eq!(packer_env("x", 0).len(), 2);
        let env = packer_env("x", 8123);
        assert!(env.contains(&("PACKER_HTTP_ADDR".into(), "10.0.2.2:8123".into())));
    }
}
