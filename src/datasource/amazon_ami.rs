//! `data "amazon-ami" "NAME" { filters = {…}, owners = […], most_recent = true }`: the AMI
//! DescribeImages finds, as Packer's amazon-ami data source. Outputs, as Packer names them:
//! `id`, `name`, `creation_date`, `owner`, `owner_name`, `tags`.
//!
//! Reading it calls EC2, so it needs credentials (the AWS SDKs' chain, as the amazon-ebs
//! builder) and the network.

use async_trait::async_trait;
use hcl::Value;

use super::{DataSource, Error, Outputs};
use crate::aws::{self, AccessConfig, ec2};

/// An `amazon-ami` data source.
#[derive(Debug, Clone)]
pub struct AmazonAmi {
    pub access: AccessConfig,
    pub filter: ec2::AmiFilter,
}

#[async_trait]
impl DataSource for AmazonAmi {
    async fn read(&self) -> Result<Outputs, Error> {
        let resolved = aws::credentials::resolve(&self.access, &|name| std::env::var(name).ok())
            .map_err(Error::AwsCredentials)?;
        let client = ec2::client(&self.access, &resolved).map_err(Error::Aws)?;
        let found = ec2::describe_images(&client, &self.filter, &[])
            .await
            .map_err(Error::Aws)?;
        let image = ec2::choose(found, self.filter.most_recent)
            .map_err(Error::AmbiguousAmi)?
            .ok_or(Error::NoAmi)?;
        Ok(Outputs {
            value: outputs(&image),
            warnings: Vec::new(),
        })
    }
}

/// The outputs of `image`.
pub(crate) fn outputs(image: &ec2::Image) -> Value {
    let tags: hcl::Map<String, Value> = image
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Value::Object(hcl::Map::from_iter([
        ("id".to_owned(), Value::from(image.id.as_str())),
        ("name".to_owned(), Value::from(image.name.as_str())),
        (
            "creation_date".to_owned(),
            Value::from(image.creation_date.as_str()),
        ),
        ("owner".to_owned(), Value::from(image.owner_id.as_str())),
        (
            "owner_name".to_owned(),
            Value::from(image.owner_alias.as_str()),
        ),
        ("tags".to_owned(), Value::Object(tags)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_packers_names() {
        let image = ec2::Image {
            id: "ami-1".into(),
            name: "ubuntu".into(),
            owner_id: "099720109477".into(),
            owner_alias: "amazon".into(),
            creation_date: "2024-06-12T10:00:00.000Z".into(),
            tags: [("Team".to_owned(), "x".to_owned())].into(),
            ..ec2::Image::default()
        };
        let Value::Object(out) = outputs(&image) else {
            panic!("not an object")
        };
        assert_eq!(out.get("id"), Some(&Value::from("ami-1")));
        assert_eq!(out.get("owner"), Some(&Value::from("099720109477")));
        assert_eq!(out.get("owner_name"), Some(&Value::from("amazon")));
        let Some(Value::Object(tags)) = out.get("tags") else {
            panic!("no tags")
        };
        assert_eq!(tags.get("Team"), Some(&Value::from("x")));
    }
}
