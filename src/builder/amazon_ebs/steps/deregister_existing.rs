//! `deregister_existing` — with `force_deregister`: uses `client`, `config.ami_name`,
//! `ami_regions`; deregisters the AMIs of that name the account owns in every target region
//! (and deletes their snapshots with `force_delete_snapshot`). Cleanup: none.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::ec2;
use crate::step::Step;

pub struct DeregisterExisting;

#[async_trait]
impl Step<Context, Error> for DeregisterExisting {
    fn name(&self) -> &'static str {
        "deregister_existing"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let cfg = &ctx.config;
        if !cfg.force_deregister || cfg.skip_create_ami {
            return Ok(());
        }
        let client = ctx.client()?;
        let by_name = ec2::AmiFilter {
            filters: [("name".to_owned(), cfg.ami_name.clone())].into(),
            owners: vec!["self".to_owned()],
            most_recent: false,
        };
        let failed = |source| Error::Deregister {
            name: cfg.ami_name.clone(),
            source,
        };
        let regions =
            std::iter::once(client.region().to_owned()).chain(cfg.ami_regions.iter().cloned());
        for region in regions {
            let c = client.in_region(&region);
            for image in ec2::describe_images(&c, &by_name, &[])
                .await
                .map_err(failed)?
            {
                ctx.core
                    .ui
                    .say(format!("Deregistered AMI id: {} ({region})", image.id));
                ec2::deregister_image(&c, &image.id).await.map_err(failed)?;
                if cfg.force_delete_snapshot {
                    for snapshot in &image.snapshot_ids {
                        ctx.core.ui.say(format!("Deleted snapshot: {snapshot}"));
                        ec2::delete_snapshot(&c, snapshot).await.map_err(failed)?;
                    }
                }
            }
        }
        Ok(())
    }
}
