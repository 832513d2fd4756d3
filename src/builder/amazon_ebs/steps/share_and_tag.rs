//! `share_and_tag` — uses `client`, `amis`, `snapshots`, `config.ami_users`/`ami_groups`,
//! `tags`/`snapshot_tags` (placeholders filled); lets the users and groups launch each AMI and
//! tags each AMI and its snapshots. Cleanup: none (`create_image`/`copy_images` remove the
//! AMIs of a build that did not succeed).

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::ec2;
use crate::step::Step;

pub struct ShareAndTag;

#[async_trait]
impl Step<Context, Error> for ShareAndTag {
    fn name(&self) -> &'static str {
        "share_and_tag"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let client = ctx.client()?;
        let tags = ctx.render_tags(&ctx.config.tags)?;
        let snapshot_tags = ctx.render_tags(&ctx.config.snapshot_tags)?;
        for (region, id) in ctx.amis.clone() {
            let c = client.in_region(&region);
            let cfg = &ctx.config;
            if !cfg.ami_users.is_empty() || !cfg.ami_groups.is_empty() {
                ctx.core
                    .ui
                    .say(format!("Modifying attributes on AMI ({id})..."));
            }
            ec2::add_launch_permissions(&c, &id, &cfg.ami_users, &cfg.ami_groups)
                .await
                .map_err(|source| Error::Share {
                    id: id.clone(),
                    source,
                })?;
            if !tags.is_empty() {
                ctx.core
                    .ui
                    .say(format!("Adding tags to AMI ({id}) in {region}..."));
            }
            ec2::create_tags(&c, std::slice::from_ref(&id), &tags)
                .await
                .map_err(|source| Error::CreateTags {
                    id: id.clone(),
                    source,
                })?;
            let snapshots = ctx.snapshots.get(&region).cloned().unwrap_or_default();
            ec2::create_tags(&c, &snapshots, &snapshot_tags)
                .await
                .map_err(|source| Error::CreateTags {
                    id: snapshots.join(","),
                    source,
                })?;
        }
        Ok(())
    }
}
