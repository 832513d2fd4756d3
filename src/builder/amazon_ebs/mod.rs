//! The `amazon-ebs` builder: launch a temporary EC2 instance from a source AMI with a temporary
//! key pair and security group, provision it over SSH through the shared provisioner layer,
//! stop it, make an AMI of it (copied to `ami_regions`, shared, tagged), and remove every
//! temporary resource on every exit path. The artifact id is Packer's `region:ami-…` list.

mod steps;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;

use super::{Core, HasCore, Provision};
use crate::artifact::Artifact;
use crate::aws::{self, AccessConfig, Client, ec2};
use crate::communicator::ssh::SshConfig;
use crate::provisioner::BuildEnv;
use crate::step::{self, Step, Timings};

/// Packer's id of the amazon-ebs builder.
pub const BUILDER_ID: &str = "mitchellh.amazonebs";

/// Which of the instance's addresses SSH goes to (`ssh_interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SshInterface {
    /// Unset: the public IP, else the private IP, else the public then the private DNS name.
    #[default]
    Auto,
    PublicIp,
    PrivateIp,
    PublicDns,
    PrivateDns,
}

/// `aws_polling`: how often and how many times a wait asks EC2 for a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    pub delay: Duration,
    pub max_attempts: u32,
}

impl Default for Polling {
    /// The AWS SDKs' EC2 waiters: every 15 s, 40 times.
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(15),
            max_attempts: 40,
        }
    }
}

/// A `source "amazon-ebs" "NAME"` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    pub access: AccessConfig,
    /// `source_ami`, or the AMI `source_ami_filter` finds (one of the two is set).
    pub source_ami: Option<String>,
    pub source_ami_filter: Option<ec2::AmiFilter>,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    /// `security_group_id(s)`: with none, a temporary group is made.
    pub security_group_ids: Vec<String>,
    /// `temporary_security_group_source_cidrs` (default `0.0.0.0/0`).
    pub temporary_security_group_source_cidrs: Vec<String>,
    pub associate_public_ip_address: Option<bool>,
    pub iam_instance_profile: Option<String>,
    /// `user_data`, or the contents of `user_data_file` (read when the template is loaded).
    pub user_data: Option<String>,
    pub launch_block_device_mappings: Vec<ec2::BlockDevice>,
    pub ami_block_device_mappings: Vec<ec2::BlockDevice>,
    pub ami_name: String,
    pub ami_description: Option<String>,
    pub ami_users: Vec<String>,
    pub ami_groups: Vec<String>,
    /// Regions the AMI is copied to (the build's own region is left out).
    pub ami_regions: Vec<String>,
    /// Tags of the AMIs, of the instance and its volumes, of the AMIs' snapshots. Values may
    /// hold Packer's `{{ .SourceAMI }}`, `{{ .SourceAMIName }}`, `{{ .BuildRegion }}` …
    pub tags: BTreeMap<String, String>,
    pub run_tags: BTreeMap<String, String>,
    pub snapshot_tags: BTreeMap<String, String>,
    /// `encrypt_boot`: the AMI's snapshots are encrypted (an encrypted copy replaces the AMI
    /// made from the instance), with `kms_key_id` or the region's default EBS key.
    pub encrypt_boot: bool,
    pub kms_key_id: Option<String>,
    pub force_deregister: bool,
    pub force_delete_snapshot: bool,
    /// `shutdown_behavior`: `stop` (default) or `terminate`.
    pub shutdown_behavior: String,
    pub skip_create_ami: bool,
    pub polling: Polling,
    pub ssh_interface: SshInterface,
    /// `ssh_host`: connect here instead of the instance's address.
    pub ssh_host: Option<String>,
    pub ssh: SshConfig,
}

/// What the steps share: the [`Core`], the config, and what each step made.
pub struct Context {
    pub config: Config,
    pub core: Core,
    /// The EC2 client in the build's region (`pre_validate`).
    pub client: Option<Client>,
    /// The source AMI (`source_ami`).
    pub source: Option<ec2::Image>,
    /// The temporary key pair: its EC2 name, private key and public key (`key_pair`).
    pub key_pair: Option<(String, Arc<PrivateKey>, String)>,
    /// The groups the instance runs in (`security_group`).
    pub security_group_ids: Vec<String>,
    /// The instance (`run_instance`).
    pub instance: Option<ec2::Instance>,
    /// The AMIs made, by region (`create_image`, `copy_images`), and their snapshots.
    pub amis: BTreeMap<String, String>,
    pub snapshots: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new(config: Config, core: Core) -> Self {
        Self {
            config,
            core,
            client: None,
            source: None,
            key_pair: None,
            security_group_ids: Vec::new(),
            instance: None,
            amis: BTreeMap::new(),
            snapshots: BTreeMap::new(),
        }
    }

    /// The client (`pre_validate`, the first step, sets it).
    fn client(&self) -> Result<Client, Error> {
        self.client.clone().ok_or(Error::NotConnected)
    }

    /// A temporary resource's name: `packer_<run id>`, as Packer names them.
    fn temporary_name(&self) -> String {
        format!("packer_{}", self.core.run_uuid)
    }

    /// The values Packer's templated tags and names may use.
    fn template_vars(&self) -> Vec<(&'static str, String)> {
        let region = self.client.as_ref().map(|c| c.region().to_owned());
        let source = self.source.clone().unwrap_or_default();
        vec![
            ("BuildRegion", region.unwrap_or_default()),
            ("SourceAMI", source.id),
            ("SourceAMIName", source.name),
            ("SourceAMIOwner", source.owner_id),
            ("SourceAMICreationDate", source.creation_date),
        ]
    }

    /// `tags` with their placeholders filled.
    fn render_tags(
        &self,
        tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let vars = self.template_vars();
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| std::borrow::Cow::Owned(v.clone()))
        };
        tags.iter()
            .map(|(k, v)| {
                let value = crate::render::render(v, lookup).map_err(|source| Error::Tag {
                    key: k.clone(),
                    source,
                })?;
                Ok((k.clone(), value))
            })
            .collect()
    }
}

impl HasCore for Context {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn build_env(&self) -> BuildEnv {
        super::provision::build_env(
            &self.core,
            None,
            self.key_pair
                .as_ref()
                .map(|(_, private, public)| (&**private, public.as_str())),
        )
    }
}

/// Why an amazon-ebs build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Cannot find AWS credentials")]
    Credentials(#[from] aws::credentials::Error),
    #[error("Cannot use the EC2 endpoint")]
    Client(#[source] aws::Error),
    /// A step ran before the client was made (a bug in the step list).
    #[error("No EC2 client: the pre_validate step did not run")]
    NotConnected,
    #[error("An AMI named `{name}` already exists ({id}) in {region}")]
    AmiNameTaken {
        name: String,
        id: String,
        region: String,
    },
    #[error("Cannot find the source AMI")]
    FindSourceAmi(#[source] aws::Error),
    #[error("No AMI matches source_ami_filter{}", if *.owners { "" } else { " (no `owners` given)" })]
    NoSourceAmi { owners: bool },
    #[error("source_ami_filter is ambiguous: {0}")]
    AmbiguousSourceAmi(String),
    #[error("Source AMI `{0}` not found")]
    SourceAmiNotFound(String),
    #[error("Cannot create the temporary key pair")]
    CreateKeyPair(#[source] aws::Error),
    #[error("Cannot create the temporary security group")]
    CreateSecurityGroup(#[source] aws::Error),
    #[error("Cannot launch the instance")]
    RunInstance(#[source] aws::Error),
    #[error("Instance {id} did not become {state}")]
    Wait {
        id: String,
        state: &'static str,
        #[source]
        source: crate::wait::Error<StateError>,
    },
    #[error("Instance {id} has no {what} to connect to")]
    NoAddress { id: String, what: &'static str },
    #[error("Could not connect to SSH")]
    Connect(#[source] crate::communicator::ssh::Error),
    #[error("Provisioning failed")]
    Provision(#[from] crate::provisioner::Failed),
    #[error("Cannot stop instance {id}")]
    StopInstance {
        id: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot deregister the existing AMI `{name}`")]
    Deregister {
        name: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot create the AMI `{name}`")]
    CreateImage {
        name: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot make the encrypted copy of AMI {id}")]
    Encrypt {
        id: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot copy the AMI to {region}")]
    CopyImage {
        region: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot share AMI {id}")]
    Share {
        id: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot tag {id}")]
    CreateTags {
        id: String,
        #[source]
        source: aws::Error,
    },
    #[error("Cannot fill in tag `{key}`")]
    Tag {
        key: String,
        #[source]
        source: crate::render::Error,
    },
}

/// Why a wait for an EC2 state has not ended (yet).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("it is {state}")]
    NotYet { state: String },
    #[error("it became {state}")]
    Gone { state: String },
    #[error(transparent)]
    Aws(#[from] aws::Error),
}

/// The steps of an amazon-ebs build, in order.
pub fn steps() -> Vec<Box<dyn Step<Context, Error>>> {
    vec![
        Box::new(steps::PreValidate),
        Box::new(steps::SourceAmi),
        Box::new(steps::KeyPair::default()),
        Box::new(steps::SecurityGroup::default()),
        Box::new(steps::RunInstance::default()),
        Box::new(steps::Connect),
        Box::new(Provision),
        Box::new(steps::StopInstance),
        Box::new(steps::DeregisterExisting),
        Box::new(steps::CreateImage),
        Box::new(steps::CopyImages::default()),
        Box::new(steps::ShareAndTag),
    ]
}

/// Runs the build; the artifact's id is `region:ami-…` for each region, as Packer's.
pub async fn build(
    ctx: &mut Context,
    mode: step::Mode,
    timings: &mut Timings,
) -> Result<Artifact, step::Error<Error>> {
    let cancel = ctx.core.cancel.clone();
    step::run(&mut steps(), ctx, &cancel, mode, timings).await?;
    Ok(Artifact {
        builder_type: "amazon-ebs",
        builder_id: BUILDER_ID,
        id: artifact_id(&ctx.amis),
        files: Vec::new(),
        disk: None,
        image: None,
    })
}

/// Packer's amazon artifact id: `region:ami-…` pairs, sorted by region, joined by commas.
pub fn artifact_id(amis: &BTreeMap<String, String>) -> String {
    amis.iter()
        .map(|(region, id)| format!("{region}:{id}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The hint for an amazon-ebs error, if it has one.
pub fn hint(err: &Error) -> Option<String> {
    match err {
        Error::AmiNameTaken { .. } => Some(
            "choose another `ami_name` (e.g. with a timestamp), or set `force_deregister = true` \
             to replace it"
                .into(),
        ),
        Error::AmbiguousSourceAmi(_) => {
            Some("set `most_recent = true` in `source_ami_filter`".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_id_lists_every_region() {
        let amis = BTreeMap::from([
            ("us-west-2".to_owned(), "ami-2".to_owned()),
            ("eu-west-1".to_owned(), "ami-1".to_owned()),
        ]);
        assert_eq!(artifact_id(&amis), "eu-west-1:ami-1,us-west-2:ami-2");
    }
}
