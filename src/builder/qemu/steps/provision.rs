//! Step: run the build's provisioners through the provisioner layer every builder shares.
//!
//! Uses: `provisioners`, `error_cleanup`, `comm`, `ssh_target`, `ssh_temp_key`, `qemu`,
//! `config.name`, `http_port`, `run_uuid`. Produces: changes in the guest; `comm` is the connection left at the end (a
//! provisioner that rebooted the guest leaves a new one). Cleanup: none.

use async_trait::async_trait;

use crate::builder::qemu::steps::boot_command::HTTP_IP;
use crate::builder::qemu::{BuildContext, Error};
use crate::provisioner::{self, BuildEnv};
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
        let source = format!("qemu.{}", ctx.config.name);
        let data = provisioner::build_data(&provisioner::DataSources {
            source: &source,
            target: ctx.ssh_target.as_ref(),
            http: (ctx.http_port != 0).then_some((HTTP_IP, ctx.http_port)),
            temporary_key: ctx
                .ssh_temp_key
                .as_ref()
                .map(|(private, public)| (&**private, public.as_str())),
            run_uuid: &ctx.run_uuid,
        });
        let build = BuildEnv {
            env: packer_env(&ctx.config.name, ctx.http_port),
            source,
            data,
        };
        let qemu = ctx.qemu.as_ref().ok_or(Error::Missing { what: "qemu" })?;
        let (result, comm) = provisioner::provision(
            &ctx.provisioners,
            ctx.error_cleanup.as_ref(),
            ctx.comm.take(),
            ctx.ssh_target.clone(),
            Box::new(move || Box::pin(qemu.died())),
            &build,
            &ctx.ui,
            ctx.cancel.clone(),
        )
        .await;
        ctx.comm = comm;
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
