//! `create_image` — uses `client`, the stopped `instance`, `config.ami_name`,
//! `ami_description`, `ami_block_device_mappings`; produces `amis[region]` and its
//! `snapshots`, once the AMI is available. With `encrypt_boot`, an encrypted copy (with
//! `kms_key_id`) replaces that AMI, which is deregistered with its snapshots, as Packer does.
//! Skipped with `skip_create_ami`. Cleanup: when the build did not succeed, deregisters the
//! AMI and deletes its snapshots.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::{Client, ec2};
use crate::step::{Outcome, Step};

pub struct CreateImage;

#[async_trait]
impl Step<Context, Error> for CreateImage {
    fn name(&self) -> &'static str {
        "create_image"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let cfg = &ctx.config;
        if cfg.skip_create_ami {
            return Ok(());
        }
        let client = ctx.client()?;
        let instance = ctx
            .instance
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default();
        ctx.core.ui.say(format!(
            "Creating AMI {} from instance {instance}",
            cfg.ami_name
        ));
        let failed = |source| Error::CreateImage {
            name: cfg.ami_name.clone(),
            source,
        };
        let id = ec2::create_image(
            &client,
            &instance,
            &cfg.ami_name,
            cfg.ami_description.as_deref(),
            &cfg.ami_block_device_mappings,
        )
        .await
        .map_err(failed)?;
        ctx.core.ui.say(format!("AMI: {id}"));
        ctx.amis.insert(client.region().to_owned(), id.clone());
        ctx.core.ui.say("Waiting for AMI to become ready...");
        let image = super::image_available(&client, ctx.config.polling, &id).await?;
        ctx.snapshots
            .insert(client.region().to_owned(), image.snapshot_ids.clone());
        if ctx.config.encrypt_boot {
            encrypt(ctx, &client, &id).await?;
        }
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, outcome: Outcome) {
        if outcome == Outcome::Succeeded {
            return;
        }
        let Some(client) = ctx.client.clone() else {
            return;
        };
        remove(ctx, &client).await;
    }
}

/// Replaces the AMI `id` by an encrypted copy of it.
async fn encrypt(ctx: &mut Context, client: &Client, id: &str) -> Result<(), Error> {
    let cfg = &ctx.config;
    ctx.core
        .ui
        .say(format!("Copying AMI {id} to make it encrypted..."));
    let region = client.region().to_owned();
    let copy = ec2::copy_image(
        client,
        &region,
        id,
        &cfg.ami_name,
        cfg.ami_description.as_deref(),
        Some(cfg.kms_key_id.as_deref()),
    )
    .await
    .map_err(|source| Error::Encrypt {
        id: id.to_owned(),
        source,
    })?;
    // From here the copy is the build's AMI (the cleanup removes it on failure); the
    // unencrypted one goes now.
    let unencrypted = ctx.snapshots.remove(&region).unwrap_or_default();
    ctx.amis.insert(region.clone(), copy.clone());
    ctx.core.ui.say(format!(
        "Deregistering the unencrypted AMI {id} and deleting its snapshots"
    ));
    for e in super::remove_image(client, id, &unencrypted).await {
        ctx.core.ui.error(format!(
            "Error deregistering AMI {id}: {}. Please delete it manually!",
            crate::ui::error_chain(&e)
        ));
    }
    let image = super::image_available(client, ctx.config.polling, &copy).await?;
    ctx.core.ui.say(format!("Encrypted AMI: {copy}"));
    ctx.snapshots.insert(region, image.snapshot_ids);
    Ok(())
}

/// Deregisters the build's AMI in `client`'s region, and its snapshots.
pub(super) async fn remove(ctx: &mut Context, client: &Client) {
    let region = client.region().to_owned();
    let Some(id) = ctx.amis.remove(&region) else {
        return;
    };
    let snapshots = ctx.snapshots.remove(&region).unwrap_or_default();
    ctx.core.ui.say(format!(
        "Deregistering the AMI {id} ({region}) because the build did not succeed"
    ));
    for e in super::remove_image(client, &id, &snapshots).await {
        ctx.core.ui.error(format!(
            "Error deregistering AMI {id}: {}. Please delete it manually!",
            crate::ui::error_chain(&e)
        ));
    }
}
