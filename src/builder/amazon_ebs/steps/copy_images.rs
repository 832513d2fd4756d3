//! `copy_images` — uses `client`, `amis` (the build region's AMI), `config.ami_regions`;
//! copies the AMI to each other region and produces `amis[region]` and `snapshots[region]`
//! once each copy is available. Cleanup: when the build did not succeed, deregisters the
//! copies and deletes their snapshots.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::ec2;
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct CopyImages {
    regions: Vec<String>,
}

#[async_trait]
impl Step<Context, Error> for CopyImages {
    fn name(&self) -> &'static str {
        "copy_images"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let client = ctx.client()?;
        let home = client.region().to_owned();
        let Some(source) = ctx.amis.get(&home).cloned() else {
            return Ok(());
        };
        for region in ctx.config.ami_regions.clone() {
            if region == home || ctx.amis.contains_key(&region) {
                continue;
            }
            ctx.core
                .ui
                .say(format!("Copying AMI ({source}) to other region: {region}"));
            let there = client.in_region(&region);
            let failed = |source| Error::CopyImage {
                region: region.clone(),
                source,
            };
            let cfg = &ctx.config;
            let id = ec2::copy_image(
                &there,
                &home,
                &source,
                &cfg.ami_name,
                cfg.ami_description.as_deref(),
                // Copies of an encrypted AMI stay encrypted, with each region's default key.
                cfg.encrypt_boot.then_some(None),
            )
            .await
            .map_err(failed)?;
            self.regions.push(region.clone());
            ctx.amis.insert(region.clone(), id.clone());
            let image = super::image_available(&there, ctx.config.polling, &id).await?;
            ctx.snapshots.insert(region, image.snapshot_ids);
        }
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut Context, outcome: Outcome) {
        let Some(client) = ctx.client.clone() else {
            return;
        };
        for region in std::mem::take(&mut self.regions) {
            if outcome != Outcome::Succeeded {
                super::create_image::remove(ctx, &client.in_region(&region)).await;
            }
        }
    }
}
