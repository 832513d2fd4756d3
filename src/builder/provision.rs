//! Step (every builder): run the build's provisioners through the provisioner layer.
//!
//! Uses: `core.provisioners`, `core.error_cleanup` (not with `-on-error=abort`, which leaves
//! everything as it failed), `core.session`, and what the builder tells
//! provisioners ([`HasCore::build_env`]). Produces: changes in the machine; `core.session` holds
//! the connection left at the end (a provisioner that rebooted the machine leaves a new one).
//! Cleanup: none.

use async_trait::async_trait;
use russh::keys::PrivateKey;

use super::{Core, HasCore};
use crate::provisioner::{self, BuildEnv};
use crate::step::{OnError, Step};

pub struct Provision;

#[async_trait]
impl<C, E> Step<C, E> for Provision
where
    C: HasCore + Send,
    E: From<provisioner::Failed>,
{
    fn name(&self) -> &'static str {
        "provision"
    }

    async fn run(&mut self, ctx: &mut C) -> Result<(), E> {
        if ctx.core().provisioners.is_empty() {
            return Ok(());
        }
        let build = ctx.build_env();
        let core = ctx.core_mut();
        let error_cleanup = match core.on_error {
            OnError::Abort => None,
            _ => core.error_cleanup.as_ref(),
        };
        provisioner::provision(
            &core.provisioners,
            error_cleanup,
            &mut core.session,
            &build,
            &core.ui,
        )
        .await
        .map_err(E::from)
    }
}

/// What provisioners learn about a build of `core`: `PACKER_*` variables and `build.*` values,
/// with the build's HTTP server as the machine reaches it and its temporary key pair (private,
/// public), when it has them.
pub(super) fn build_env(
    core: &Core,
    http: Option<(&str, u16)>,
    temporary_key: Option<(&PrivateKey, &str)>,
) -> BuildEnv {
    let source = format!("{}.{}", core.builder_type, core.name);
    let endpoint = core.session.endpoint();
    let data = provisioner::build_data(&provisioner::DataSources {
        source: &source,
        endpoint: endpoint.as_ref(),
        http,
        temporary_key,
        run_uuid: &core.run_uuid,
    });
    BuildEnv {
        env: packer_env(&core.name, &core.builder_type, http),
        source,
        data,
    }
}

/// The environment Packer gives every shell provisioner.
fn packer_env(
    build_name: &str,
    builder_type: &str,
    http: Option<(&str, u16)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PACKER_BUILD_NAME".to_owned(), build_name.to_owned()),
        ("PACKER_BUILDER_TYPE".to_owned(), builder_type.to_owned()),
    ];
    if let Some((ip, port)) = http {
        env.push(("PACKER_HTTP_ADDR".to_owned(), format!("{ip}:{port}")));
        env.push(("PACKER_HTTP_IP".to_owned(), ip.to_owned()));
        env.push(("PACKER_HTTP_PORT".to_owned(), port.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_http_vars_only_with_a_server() {
        assert_eq!(packer_env("x", "qemu", None).len(), 2);
        let env = packer_env("x", "qemu", Some(("10.0.2.2", 8123)));
        assert!(env.contains(&("PACKER_HTTP_ADDR".into(), "10.0.2.2:8123".into())));
    }
}
