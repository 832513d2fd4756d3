//! The EC2 calls kiln makes (API version 2016-11-15), typed: images, key pairs, security
//! groups, instances, tags.

use std::collections::BTreeMap;

use super::{Client, Error, Node, list_params};

/// The EC2 API version every call names.
pub const VERSION: &str = "2016-11-15";

/// A client of EC2 (see [`Client::new`]).
pub fn client(access: &super::AccessConfig, resolved: &super::Resolved) -> Result<Client, Error> {
    Client::new(
        "ec2",
        VERSION,
        access.custom_endpoint_ec2.as_deref(),
        &resolved.region,
        resolved.credentials.clone(),
        access.insecure_skip_tls_verify,
        access.max_retries,
    )
}

/// How to pick an AMI (`source_ami_filter`, `data "amazon-ami"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmiFilter {
    /// DescribeImages filters: name → value (`name = "ubuntu/images/*"`).
    pub filters: BTreeMap<String, String>,
    /// `owners`: account ids, `self`, `amazon`, `aws-marketplace`.
    pub owners: Vec<String>,
    /// `most_recent`: take the newest of several matches instead of failing.
    pub most_recent: bool,
}

/// One block device mapping (`launch_block_device_mappings`, `ami_block_device_mappings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDevice {
    pub device_name: String,
    pub virtual_name: Option<String>,
    pub no_device: bool,
    pub snapshot_id: Option<String>,
    pub volume_size: Option<u64>,
    pub volume_type: Option<String>,
    pub iops: Option<u64>,
    pub throughput: Option<u64>,
    pub delete_on_termination: Option<bool>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
}

/// An AMI as DescribeImages reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    /// `amazon`, `aws-marketplace`, … (empty for an account's own images).
    pub owner_alias: String,
    pub state: String,
    /// ISO 8601 (`2024-05-01T10:00:00.000Z`): compares as text.
    pub creation_date: String,
    pub snapshot_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// An instance as DescribeInstances reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    pub public_ip: Option<String>,
    pub private_ip: Option<String>,
    pub public_dns: Option<String>,
    pub private_dns: Option<String>,
}

/// What RunInstances is asked for.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub image_id: String,
    pub instance_type: String,
    pub key_name: Option<String>,
    pub security_group_ids: Vec<String>,
    pub subnet_id: Option<String>,
    pub associate_public_ip_address: Option<bool>,
    pub iam_instance_profile: Option<String>,
    /// Base64 already.
    pub user_data: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    pub shutdown_behavior: String,
    pub tags: BTreeMap<String, String>,
}

fn p(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

fn text(node: &Node, name: &str) -> String {
    node.text_of(name).unwrap_or_default().to_owned()
}

fn some_text(node: &Node, name: &str) -> Option<String> {
    node.text_of(name)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// `Filter.N.Name` / `Filter.N.Value.1` parameters.
fn filter_params(filters: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, (name, value)) in filters.iter().enumerate() {
        out.push(p(format!("Filter.{}.Name", i + 1), name));
        out.push(p(format!("Filter.{}.Value.1", i + 1), value));
    }
    out
}

/// `PREFIX.N.DeviceName`, `PREFIX.N.Ebs.VolumeSize`, … parameters.
fn block_device_params(prefix: &str, devices: &[BlockDevice]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let at = format!("{prefix}.{}", i + 1);
        out.push(p(format!("{at}.DeviceName"), &d.device_name));
        if d.no_device {
            out.push(p(format!("{at}.NoDevice"), ""));
            continue;
        }
        if let Some(v) = &d.virtual_name {
            out.push(p(format!("{at}.VirtualName"), v));
            continue;
        }
        let ebs = format!("{at}.Ebs");
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push(p(format!("{ebs}.{k}"), v));
            }
        };
        push("SnapshotId", d.snapshot_id.clone());
        push("VolumeSize", d.volume_size.map(|v| v.to_string()));
        push("VolumeType", d.volume_type.clone());
        push("Iops", d.iops.map(|v| v.to_string()));
        push("Throughput", d.throughput.map(|v| v.to_string()));
        push(
            "DeleteOnTermination",
            d.delete_on_termination.map(|v| v.to_string()),
        );
        push("Encrypted", d.encrypted.map(|v| v.to_string()));
        push("KmsKeyId", d.kms_key_id.clone());
    }
    out
}

fn image(item: &Node) -> Image {
    Image {
        id: text(item, "imageId"),
        name: text(item, "name"),
        owner_id: text(item, "imageOwnerId"),
        owner_alias: text(item, "imageOwnerAlias"),
        state: text(item, "imageState"),
        creation_date: text(item, "creationDate"),
        snapshot_ids: item
            .items("blockDeviceMapping")
            .filter_map(|m| m.child("ebs").and_then(|e| some_text(e, "snapshotId")))
            .collect(),
        tags: item
            .items("tagSet")
            .map(|t| (text(t, "key"), text(t, "value")))
            .collect(),
    }
}

/// DescribeImages with `filter`'s filters and owners (and `ids`, when given).
pub async fn describe_images(
    c: &Client,
    filter: &AmiFilter,
    ids: &[String],
) -> Result<Vec<Image>, Error> {
    let mut params = filter_params(&filter.filters);
    params.extend(list_params("Owner", &filter.owners));
    params.extend(list_params("ImageId", ids));
    let root = c.call("DescribeImages", &params).await?;
    Ok(root.items("imagesSet").map(image).collect())
}

/// The image of `filter`: the only match, or the newest with `most_recent`. `None` when
/// nothing matches; an error message when several do without `most_recent`.
pub fn choose(mut images: Vec<Image>, most_recent: bool) -> Result<Option<Image>, String> {
    if images.len() > 1 && !most_recent {
        return Err(format!(
            "{} AMIs match (e.g. {}); set `most_recent = true` to take the newest, or narrow \
             the filters",
            images.len(),
            images
                .iter()
                .take(3)
                .map(|i| format!("{} `{}`", i.id, i.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Newest creation date; ties broken by id so the choice is the same every time.
    images.sort_by(|a, b| (&a.creation_date, &a.id).cmp(&(&b.creation_date, &b.id)));
    Ok(images.pop())
}

pub async fn import_key_pair(c: &Client, name: &str, public_key: &str) -> Result<(), Error> {
    use base64::Engine as _;
    let material = base64::engine::general_purpose::STANDARD.encode(public_key);
    c.call(
        "ImportKeyPair",
        &[p("KeyName", name), p("PublicKeyMaterial", material)],
    )
    .await
    .map(drop)
}

pub async fn delete_key_pair(c: &Client, name: &str) -> Result<(), Error> {
    c.call("DeleteKeyPair", &[p("KeyName", name)])
        .await
        .map(drop)
}

/// Names of the key pairs whose name starts with `prefix` (for tests and checks).
pub async fn key_pair_names(c: &Client) -> Result<Vec<String>, Error> {
    let root = c.call("DescribeKeyPairs", &[]).await?;
    Ok(root.items("keySet").map(|k| text(k, "keyName")).collect())
}

/// The VPC of `subnet_id`, or the account's default VPC.
pub async fn vpc_for(c: &Client, subnet_id: Option<&str>) -> Result<Option<String>, Error> {
    if let Some(subnet) = subnet_id {
        let root = c
            .call("DescribeSubnets", &[p("SubnetId.1", subnet)])
            .await?;
        return Ok(root
            .items("subnetSet")
            .next()
            .and_then(|s| some_text(s, "vpcId")));
    }
    let root = c
        .call(
            "DescribeVpcs",
            &[
                p("Filter.1.Name", "isDefault"),
                p("Filter.1.Value.1", "true"),
            ],
        )
        .await?;
    Ok(root
        .items("vpcSet")
        .next()
        .and_then(|v| some_text(v, "vpcId")))
}

/// CreateSecurityGroup; its id.
pub async fn create_security_group(
    c: &Client,
    name: &str,
    description: &str,
    vpc_id: Option<&str>,
) -> Result<String, Error> {
    let mut params = vec![p("GroupName", name), p("GroupDescription", description)];
    if let Some(vpc) = vpc_id {
        params.push(p("VpcId", vpc));
    }
    let root = c.call("CreateSecurityGroup", &params).await?;
    Ok(text(&root, "groupId"))
}

/// Allows TCP `port` in from each of `cidrs`.
pub async fn authorize_ingress(
    c: &Client,
    group_id: &str,
    port: u16,
    cidrs: &[String],
) -> Result<(), Error> {
    let mut params = vec![
        p("GroupId", group_id),
        p("IpPermissions.1.IpProtocol", "tcp"),
        p("IpPermissions.1.FromPort", port.to_string()),
        p("IpPermissions.1.ToPort", port.to_string()),
    ];
    for (i, cidr) in cidrs.iter().enumerate() {
        params.push(p(
            format!("IpPermissions.1.IpRanges.{}.CidrIp", i + 1),
            cidr,
        ));
    }
    c.call("AuthorizeSecurityGroupIngress", &params)
        .await
        .map(drop)
}

pub async fn delete_security_group(c: &Client, group_id: &str) -> Result<(), Error> {
    c.call("DeleteSecurityGroup", &[p("GroupId", group_id)])
        .await
        .map(drop)
}

/// (id, name) of every security group.
pub async fn security_groups(c: &Client) -> Result<Vec<(String, String)>, Error> {
    let root = c.call("DescribeSecurityGroups", &[]).await?;
    Ok(root
        .items("securityGroupInfo")
        .map(|g| (text(g, "groupId"), text(g, "groupName")))
        .collect())
}

/// `TagSpecification.N` parameters for `resource` types.
fn tag_spec_params(
    n: usize,
    resource: &str,
    tags: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out = vec![p(format!("TagSpecification.{n}.ResourceType"), resource)];
    for (i, (k, v)) in tags.iter().enumerate() {
        out.push(p(format!("TagSpecification.{n}.Tag.{}.Key", i + 1), k));
        out.push(p(format!("TagSpecification.{n}.Tag.{}.Value", i + 1), v));
    }
    out
}

/// The RunInstances parameters of `l` (a pure function, tested).
pub fn launch_params(l: &Launch) -> Vec<(String, String)> {
    let mut params = vec![
        p("ImageId", &l.image_id),
        p("InstanceType", &l.instance_type),
        p("MinCount", "1"),
        p("MaxCount", "1"),
        p("InstanceInitiatedShutdownBehavior", &l.shutdown_behavior),
    ];
    if let Some(k) = &l.key_name {
        params.push(p("KeyName", k));
    }
    if let Some(a) = l.associate_public_ip_address {
        // A public address is asked for on the network interface, which then carries the
        // subnet and the groups.
        let ni = "NetworkInterface.1";
        params.push(p(format!("{ni}.DeviceIndex"), "0"));
        params.push(p(format!("{ni}.AssociatePublicIpAddress"), a.to_string()));
        params.push(p(format!("{ni}.DeleteOnTermination"), "true"));
        if let Some(s) = &l.subnet_id {
            params.push(p(format!("{ni}.SubnetId"), s));
        }
        params.extend(list_params(
            &format!("{ni}.SecurityGroupId"),
            &l.security_group_ids,
        ));
    } else {
        params.extend(list_params("SecurityGroupId", &l.security_group_ids));
        if let Some(s) = &l.subnet_id {
            params.push(p("SubnetId", s));
        }
    }
    if let Some(profile) = &l.iam_instance_profile {
        params.push(p("IamInstanceProfile.Name", profile));
    }
    if let Some(u) = &l.user_data {
        params.push(p("UserData", u));
    }
    params.extend(block_device_params("BlockDeviceMapping", &l.block_devices));
    if !l.tags.is_empty() {
        params.extend(tag_spec_params(1, "instance", &l.tags));
        params.extend(tag_spec_params(2, "volume", &l.tags));
    }
    params
}

/// RunInstances of one instance; its id.
pub async fn run_instance(c: &Client, l: &Launch) -> Result<String, Error> {
    let root = c.call("RunInstances", &launch_params(l)).await?;
    Ok(root
        .items("instancesSet")
        .next()
        .map(|i| text(i, "instanceId"))
        .unwrap_or_default())
}

fn instance(item: &Node) -> Instance {
    Instance {
        id: text(item, "instanceId"),
        state: item
            .child("instanceState")
            .map(|s| text(s, "name"))
            .unwrap_or_default(),
        public_ip: some_text(item, "ipAddress"),
        private_ip: some_text(item, "privateIpAddress"),
        public_dns: some_text(item, "dnsName"),
        private_dns: some_text(item, "privateDnsName"),
    }
}

/// Instances (all, or those of `ids`), in every reservation.
pub async fn describe_instances(c: &Client, ids: &[String]) -> Result<Vec<Instance>, Error> {
    let root = c
        .call("DescribeInstances", &list_params("InstanceId", ids))
        .await?;
    Ok(root
        .items("reservationSet")
        .flat_map(|r| r.items("instancesSet"))
        .map(instance)
        .collect())
}

pub async fn stop_instance(c: &Client, id: &str) -> Result<(), Error> {
    c.call("StopInstances", &[p("InstanceId.1", id)])
        .await
        .map(drop)
}

pub async fn terminate_instance(c: &Client, id: &str) -> Result<(), Error> {
    c.call("TerminateInstances", &[p("InstanceId.1", id)])
        .await
        .map(drop)
}

/// CreateImage from a stopped instance; the AMI's id.
pub async fn create_image(
    c: &Client,
    instance_id: &str,
    name: &str,
    description: Option<&str>,
    block_devices: &[BlockDevice],
) -> Result<String, Error> {
    let mut params = vec![p("InstanceId", instance_id), p("Name", name)];
    if let Some(d) = description {
        params.push(p("Description", d));
    }
    params.extend(block_device_params("BlockDeviceMapping", block_devices));
    let root = c.call("CreateImage", &params).await?;
    Ok(text(&root, "imageId"))
}

/// How a copy's snapshots are encrypted: `Some(None)` with the region's default EBS key,
/// `Some(Some(key))` with that KMS key; `None` as the source's are.
pub type Encryption<'a> = Option<Option<&'a str>>;

/// CopyImage into the client's region; the copy's id.
pub async fn copy_image(
    c: &Client,
    source_region: &str,
    source_id: &str,
    name: &str,
    description: Option<&str>,
    encryption: Encryption<'_>,
) -> Result<String, Error> {
    let mut params = vec![
        p("SourceRegion", source_region),
        p("SourceImageId", source_id),
        p("Name", name),
    ];
    if let Some(d) = description {
        params.push(p("Description", d));
    }
    if let Some(key) = encryption {
        params.push(p("Encrypted", "true"));
        if let Some(key) = key {
            params.push(p("KmsKeyId", key));
        }
    }
    let root = c.call("CopyImage", &params).await?;
    Ok(text(&root, "imageId"))
}

pub async fn deregister_image(c: &Client, id: &str) -> Result<(), Error> {
    c.call("DeregisterImage", &[p("ImageId", id)])
        .await
        .map(drop)
}

pub async fn delete_snapshot(c: &Client, id: &str) -> Result<(), Error> {
    c.call("DeleteSnapshot", &[p("SnapshotId", id)])
        .await
        .map(drop)
}

/// Tags `ids` with `tags`.
pub async fn create_tags(
    c: &Client,
    ids: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    if ids.is_empty() || tags.is_empty() {
        return Ok(());
    }
    let mut params = list_params("ResourceId", ids);
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push(p(format!("Tag.{}.Key", i + 1), k));
        params.push(p(format!("Tag.{}.Value", i + 1), v));
    }
    c.call("CreateTags", &params).await.map(drop)
}

/// The tags of `resource_id`.
pub async fn tags_of(c: &Client, resource_id: &str) -> Result<BTreeMap<String, String>, Error> {
    let root = c
        .call(
            "DescribeTags",
            &[
                p("Filter.1.Name", "resource-id"),
                p("Filter.1.Value.1", resource_id),
            ],
        )
        .await?;
    Ok(root
        .items("tagSet")
        .map(|t| (text(t, "key"), text(t, "value")))
        .collect())
}

/// Lets `users` (account ids) and `groups` (`all`) launch the AMI.
pub async fn add_launch_permissions(
    c: &Client,
    image_id: &str,
    users: &[String],
    groups: &[String],
) -> Result<(), Error> {
    if users.is_empty() && groups.is_empty() {
        return Ok(());
    }
    let mut params = vec![p("ImageId", image_id)];
    let mut n = 0;
    for u in users {
        n += 1;
        params.push(p(format!("LaunchPermission.Add.{n}.UserId"), u));
    }
    for g in groups {
        n += 1;
        params.push(p(format!("LaunchPermission.Add.{n}.Group"), g));
    }
    c.call("ModifyImageAttribute", &params).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, date: &str) -> Image {
        Image {
            id: id.into(),
            name: format!("name-{id}"),
            creation_date: date.into(),
            ..Image::default()
        }
    }

    #[test]
    fn choose_takes_the_newest_only_when_asked() {
        let images = vec![
            img("ami-b", "2024-01-01T00:00:00.000Z"),
            img("ami-a", "2025-06-01T00:00:00.000Z"),
            img("ami-c", "2023-01-01T00:00:00.000Z"),
        ];
        assert_eq!(choose(images.clone(), true).unwrap().unwrap().id, "ami-a");
        let e = choose(images, false).unwrap_err();
        assert!(e.starts_with("3 AMIs match"), "{e}");
        assert_eq!(choose(vec![], true), Ok(None));
        assert_eq!(
            choose(vec![img("ami-x", "")], false).unwrap().unwrap().id,
            "ami-x"
        );
    }

    #[test]
    fn launch_parameters() {
        let mut l = Launch {
            image_id: "ami-1".into(),
            instance_type: "t3.micro".into(),
            key_name: Some("packer_x".into()),
            security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            subnet_id: Some("subnet-1".into()),
            shutdown_behavior: "stop".into(),
            block_devices: vec![BlockDevice {
                device_name: "/dev/sda1".into(),
                volume_size: Some(20),
                volume_type: Some("gp3".into()),
                delete_on_termination: Some(true),
                ..BlockDevice::default()
            }],
            tags: BTreeMap::from([("Name".into(), "packer".into())]),
            ..Launch::default()
        };
        let get = |params: &[(String, String)], k: &str| {
            params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        let params = launch_params(&l);
        assert_eq!(get(&params, "SecurityGroupId.2").as_deref(), Some("sg-2"));
        assert_eq!(get(&params, "SubnetId").as_deref(), Some("subnet-1"));
        assert_eq!(
            get(&params, "BlockDeviceMapping.1.Ebs.VolumeSize").as_deref(),
            Some("20")
        );
        assert_eq!(
            get(&params, "TagSpecification.2.ResourceType").as_deref(),
            Some("volume")
        );
        assert_eq!(
            get(&params, "TagSpecification.1.Tag.1.Value").as_deref(),
            Some("packer")
        );
        l.associate_public_ip_address = Some(true);
        let params = launch_params(&l);
        assert_eq!(get(&params, "SubnetId"), None);
        assert_eq!(
            get(&params, "NetworkInterface.1.SubnetId").as_deref(),
            Some("subnet-1")
        );
        assert_eq!(
            get(&params, "NetworkInterface.1.SecurityGroupId.1").as_deref(),
            Some("sg-1")
        );
    }

    #[test]
    fn block_devices_without_ebs() {
        let params = block_device_params(
            "BlockDeviceMapping",
            &[
                BlockDevice {
                    device_name: "/dev/sdb".into(),
                    no_device: true,
                    ..BlockDevice::default()
                },
                BlockDevice {
                    device_name: "/dev/sdc".into(),
                    virtual_name: Some("ephemeral0".into()),
                    ..BlockDevice::default()
                },
            ],
        );
        assert_eq!(
            params,
            [
                p("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
                p("BlockDeviceMapping.1.NoDevice", ""),
                p("BlockDeviceMapping.2.DeviceName", "/dev/sdc"),
                p("BlockDeviceMapping.2.VirtualName", "ephemeral0"),
            ]
        );
    }
}
