//! `source_ami` — uses `client`, `config.source_ami` or `config.source_ami_filter`; produces
//! `source` (the AMI the instance starts from). Cleanup: none.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::ec2;
use crate::step::Step;

pub struct SourceAmi;

#[async_trait]
impl Step<Context, Error> for SourceAmi {
    fn name(&self) -> &'static str {
        "source_ami"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let client = ctx.client()?;
        let image = match (&ctx.config.source_ami, &ctx.config.source_ami_filter) {
            (Some(id), _) => {
                let found = ec2::describe_images(
                    &client,
                    &ec2::AmiFilter::default(),
                    std::slice::from_ref(id),
                )
                .await
                .map_err(Error::FindSourceAmi)?;
                found
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::SourceAmiNotFound(id.clone()))?
            }
            (None, filter) => {
                let filter = filter.clone().unwrap_or_default();
                let found = ec2::describe_images(&client, &filter, &[])
                    .await
                    .map_err(Error::FindSourceAmi)?;
                ec2::choose(found, filter.most_recent)
                    .map_err(Error::AmbiguousSourceAmi)?
                    .ok_or(Error::NoSourceAmi {
                        owners: !filter.owners.is_empty(),
                    })?
            }
        };
        ctx.core
            .ui
            .say(format!("Found Image ID: {} ({})", image.id, image.name));
        ctx.source = Some(image);
        Ok(())
    }
}
