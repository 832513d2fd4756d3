//! `key_pair` — uses `client`, `config.ssh`; produces `key_pair`: a fresh ed25519 key pair,
//! imported into EC2 as `packer_<run id>` (the private key never leaves this machine), unless
//! the template gives `ssh_private_key_file` or `ssh_password`. Cleanup: deletes it.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::{Client, ec2};
use crate::communicator::ssh;
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct KeyPair {
    created: Option<(Client, String)>,
}

#[async_trait]
impl Step<Context, Error> for KeyPair {
    fn name(&self) -> &'static str {
        "key_pair"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let ssh = &ctx.config.ssh;
        if ssh.private_key_file.is_some() || ssh.password.is_some() {
            return Ok(());
        }
        let client = ctx.client()?;
        let name = ctx.temporary_name();
        ctx.core
            .ui
            .say(format!("Creating temporary keypair: {name}"));
        let (private, public) = ssh::temporary_key_pair();
        // Recorded first: a cancelled call may still have created it.
        self.created = Some((client.clone(), name.clone()));
        ec2::import_key_pair(&client, &name, &public)
            .await
            .map_err(Error::CreateKeyPair)?;
        ctx.key_pair = Some((name, private, public));
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, _outcome: Outcome) {
        let Some((client, name)) = self.created.take() else {
            return;
        };
        ctx.core.ui.say("Deleting temporary keypair...");
        if let Err(e) = ec2::delete_key_pair(&client, &name).await {
            ctx.core.ui.error(format!(
                "Error cleaning up keypair {name}: {}. Please delete the key manually!",
                crate::ui::error_chain(&e)
            ));
        }
    }
}
