//! `pre_validate` — uses `config.access`, `config.ami_name`, `config.ami_regions`; produces
//! `client` (credentials from the AWS SDKs' chain). Fails before anything is launched when an
//! AMI with the name exists in any target region, unless `force_deregister` (or
//! `skip_create_ami`). Cleanup: none.

use async_trait::async_trait;

use super::super::{Context, Error};
use crate::aws::{self, ec2};
use crate::step::Step;

pub struct PreValidate;

#[async_trait]
impl Step<Context, Error> for PreValidate {
    fn name(&self) -> &'static str {
        "pre_validate"
    }

    async fn run(&mut self, ctx: &mut Context) -> Result<(), Error> {
        let access = &ctx.config.access;
        let resolved = aws::credentials::resolve(access, &|name| std::env::var(name).ok())?;
        tracing::info!(
            region = resolved.region,
            source = resolved.source,
            "AWS credentials"
        );
        let client = ec2::client(access, &resolved).map_err(Error::Client)?;
        ctx.client = Some(client.clone());
        let cfg = &ctx.config;
        if cfg.skip_create_ami || cfg.force_deregister {
            return Ok(());
        }
        ctx.core
            .ui
            .say(format!("Prevalidating AMI Name: {}", cfg.ami_name));
        let by_name = ec2::AmiFilter {
            filters: [("name".to_owned(), cfg.ami_name.clone())].into(),
            owners: vec!["self".to_owned()],
            most_recent: false,
        };
        let regions =
            std::iter::once(client.region().to_owned()).chain(cfg.ami_regions.iter().cloned());
        for region in regions {
            let c = client.in_region(&region);
            let found = ec2::describe_images(&c, &by_name, &[])
                .await
                .map_err(Error::FindSourceAmi)?;
            if let Some(image) = found.into_iter().next() {
                return Err(Error::AmiNameTaken {
                    name: cfg.ami_name.clone(),
                    id: image.id,
                    region,
                });
            }
        }
        Ok(())
    }
}
