//! `source "amazon-ebs" "NAME"` → [`crate::builder::amazon_ebs::Config`]. Reading needs no
//! credentials and no network: they are looked up when the build starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Kind, refuse_winrm, resolve, ssh};
use crate::aws::AccessConfig;
use crate::aws::ec2::{AmiFilter, BlockDevice};
use crate::builder::SourceConfig;
use crate::builder::amazon_ebs::{Config, Polling, SshInterface};
use crate::datasource::amazon_ami::AmazonAmi;
use crate::template::Diagnostic;
use crate::template::options::Options;
use crate::types::Secret;

pub(crate) const KIND: Kind = Kind {
    type_name: "amazon-ebs",
    supported: SUPPORTED,
    known: KNOWN,
    known_blocks: true,
    read: |name, o, dir, d| SourceConfig::AmazonEbs(Box::new(source(name, o, dir, d))),
};

/// The options (and, last, the blocks) of `source "amazon-ebs"` kiln reads.
#[rustfmt::skip]
const SUPPORTED: &[&str] = &[
    "communicator", "region", "access_key", "secret_key", "token", "profile",
    "shared_credentials_file", "custom_endpoint_ec2", "insecure_skip_tls_verify", "max_retries",
    "source_ami", "instance_type", "subnet_id", "vpc_id", "security_group_id",
    "security_group_ids", "temporary_security_group_source_cidrs",
    "associate_public_ip_address", "iam_instance_profile", "user_data", "user_data_file",
    "ami_name", "ami_description", "ami_users", "ami_groups", "ami_regions", "tags", "run_tags",
    "snapshot_tags", "encrypt_boot", "kms_key_id", "force_deregister", "force_delete_snapshot", "shutdown_behavior",
    "skip_create_ami", "ssh_interface", "ssh_host", "ssh_port", "ssh_username", "ssh_password",
    "ssh_private_key_file", "ssh_timeout", "ssh_wait_timeout", "pause_before_connecting",
    "ssh_pty", "ssh_read_write_timeout",
    "ssh_file_transfer_method", "ssh_agent_auth", "ssh_disable_agent_forwarding",
    "ssh_certificate_file", "ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_username",
    "ssh_bastion_password", "ssh_bastion_private_key_file", "ssh_bastion_certificate_file",
    "ssh_bastion_agent_auth", "ssh_bastion_interactive", "ssh_proxy_host", "ssh_proxy_port",
    "ssh_proxy_username", "ssh_proxy_password", "ssh_local_tunnels", "ssh_remote_tunnels",
    "ssh_handshake_attempts", "ssh_keep_alive_interval", "ssh_ciphers",
    "ssh_key_exchange_algorithms",
    // Blocks.
    "source_ami_filter", "launch_block_device_mappings", "ami_block_device_mappings",
    "aws_polling",
];

/// Packer's amazon-ebs options (and blocks) kiln does not read yet.
#[rustfmt::skip]
const KNOWN: &[&str] = &[
    "region_kms_key_ids", "ami_virtualization_type",
    "ena_support", "sriov_support", "spot_price", "spot_instance_types", "spot_tags",
    "availability_zone", "ebs_optimized", "disable_stop_instance", "enable_t2_unlimited",
    "enable_unlimited_credits", "ssh_keypair_name", "temporary_key_pair_type",
    "temporary_key_pair_name", "temporary_key_pair_bits", "temporary_security_group_source_public_ip",
    "temporary_iam_instance_profile_policy_document", "run_volume_tags", "snapshot_users",
    "snapshot_groups", "ami_org_arns", "ami_ou_arns", "deprecate_at", "imds_support",
    "skip_region_validation", "skip_metadata_api_check", "skip_credential_validation",
    "mfa_code", "decode_authorization_messages",
    "ssh_clear_authorized_keys",
    "winrm_username", "winrm_password", "winrm_use_ssl", "winrm_insecure", "session_manager_port",
    "tenancy", "host_resource_group_arn", "boot_mode", "uefi_data", "tpm_support",
    "no_ephemeral", "ami_product_codes", "kernel_id", "ramdisk_id", "shutdown_timeout",
    "instance_initiated_shutdown_behavior", "fleet_tags", "launch_template_id",
    // Blocks.
    "tag", "run_tag", "snapshot_tag", "run_volume_tag", "spot_tag", "fleet_tag", "vpc_filter",
    "subnet_filter", "security_group_filter", "assume_role", "vault_aws_engine",
    "metadata_options", "placement", "capacity_reservation_target", "license_specifications",
    "polling",
];

const FILTER: &[&str] = &["filters", "owners", "most_recent"];
#[rustfmt::skip]
const DEVICE: &[&str] = &[
    "device_name", "virtual_name", "no_device", "snapshot_id", "volume_size", "volume_type",
    "iops", "throughput", "delete_on_termination", "encrypted", "kms_key_id",
];
const POLLING: &[&str] = &["delay_seconds", "max_attempts"];

/// Options that must be written as blocks (`name { … }`), as in Packer.
const BLOCKS: &[&str] = &[
    "source_ami_filter",
    "launch_block_device_mappings",
    "ami_block_device_mappings",
    "aws_polling",
];

fn source(name: &str, o: &Options<'_>, template_dir: &Path, d: &mut Vec<Diagnostic>) -> Config {
    for b in BLOCKS {
        if o.has(b) {
            o.error(b, format!("write `{b} {{ … }}` as a block, without `=`"), d);
        }
    }
    if !refuse_winrm(o, d) {
        o.one_of("communicator", &["ssh"], &["none"], d);
    }
    let source_ami = o.string("source_ami", d);
    let filters = o.blocks("source_ami_filter");
    for extra in filters.iter().skip(1) {
        let at = o.nested(extra, FILTER, &[], &mut Vec::new()).block_at;
        d.push(Diagnostic::new(at, "`source_ami_filter` is set twice"));
    }
    let source_ami_filter = filters
        .first()
        .map(|b| ami_filter(&o.nested(b, FILTER, &[], d), d));
    if source_ami.is_none() && source_ami_filter.is_none() && !o.has("source_ami") {
        o.missing("source_ami", " (or a `source_ami_filter` block)", d);
    }
    let instance_type = o.string("instance_type", d).unwrap_or_default();
    if instance_type.is_empty() && !o.has("instance_type") {
        o.missing("instance_type", "", d);
    }
    let ami_name = o.string("ami_name", d).unwrap_or_default();
    if ami_name.is_empty() && !o.has("ami_name") {
        o.missing("ami_name", "", d);
    } else if let Some(problem) = ami_name_problem(&ami_name) {
        o.error("ami_name", problem, d);
    }
    let mut security_group_ids = o.string_list("security_group_ids", d).unwrap_or_default();
    security_group_ids.extend(o.string("security_group_id", d));
    if o.has("user_data") && o.has("user_data_file") {
        o.error(
            "user_data_file",
            "only one of `user_data` and `user_data_file` may be set",
            d,
        );
    }
    let user_data = o.string("user_data", d).or_else(|| {
        let file = resolve(template_dir, Path::new(&o.string("user_data_file", d)?));
        std::fs::read_to_string(&file)
            .map_err(|e| {
                o.error(
                    "user_data_file",
                    format!("cannot read `{}`: {e}", file.display()),
                    d,
                );
            })
            .ok()
    });
    let access = access(o, template_dir, d);
    let polling = o
        .blocks("aws_polling")
        .first()
        .map_or_else(Polling::default, |b| {
            let p = o.nested(b, POLLING, &[], d);
            let default = Polling::default();
            Polling {
                delay: p
                    .uint("delay_seconds", 1, 3600, d)
                    .map_or(default.delay, Duration::from_secs),
                max_attempts: p
                    .uint("max_attempts", 1, 10_000, d)
                    .map_or(default.max_attempts, |n| n as u32),
            }
        });
    let ssh_interface = match o
        .one_of(
            "ssh_interface",
            &["public_ip", "private_ip", "public_dns", "private_dns"],
            &["session_manager"],
            d,
        )
        .as_deref()
    {
        Some("public_ip") => SshInterface::PublicIp,
        Some("private_ip") => SshInterface::PrivateIp,
        Some("public_dns") => SshInterface::PublicDns,
        Some("private_dns") => SshInterface::PrivateDns,
        _ => SshInterface::Auto,
    };
    let tags = |name: &str, d: &mut Vec<Diagnostic>| o.string_map(name, d).unwrap_or_default();
    let encrypt_boot = o.bool("encrypt_boot", d).unwrap_or(false);
    let kms_key_id = o.string("kms_key_id", d);
    if kms_key_id.is_some() && !encrypt_boot {
        o.error(
            "kms_key_id",
            "`kms_key_id` encrypts the AMI only with `encrypt_boot = true`",
            d,
        );
    }
    Config {
        name: name.to_owned(),
        access,
        source_ami,
        source_ami_filter,
        instance_type,
        subnet_id: o.string("subnet_id", d),
        vpc_id: o.string("vpc_id", d),
        security_group_ids,
        temporary_security_group_source_cidrs: o
            .string_list("temporary_security_group_source_cidrs", d)
            .unwrap_or_else(|| vec!["0.0.0.0/0".to_owned()]),
        associate_public_ip_address: o.bool("associate_public_ip_address", d),
        iam_instance_profile: o.string("iam_instance_profile", d),
        user_data,
        launch_block_device_mappings: devices(o, "launch_block_device_mappings", d),
        ami_block_device_mappings: devices(o, "ami_block_device_mappings", d),
        ami_name,
        ami_description: o.string("ami_description", d),
        ami_users: o.string_list("ami_users", d).unwrap_or_default(),
        ami_groups: o.string_list("ami_groups", d).unwrap_or_default(),
        ami_regions: o.string_list("ami_regions", d).unwrap_or_default(),
        tags: tags("tags", d),
        run_tags: tags("run_tags", d),
        snapshot_tags: tags("snapshot_tags", d),
        encrypt_boot,
        kms_key_id,
        force_deregister: o.bool("force_deregister", d).unwrap_or(false),
        force_delete_snapshot: o.bool("force_delete_snapshot", d).unwrap_or(false),
        shutdown_behavior: o
            .one_of("shutdown_behavior", &["stop", "terminate"], &[], d)
            .unwrap_or_else(|| "stop".to_owned()),
        skip_create_ami: o.bool("skip_create_ami", d).unwrap_or(false),
        polling,
        ssh_interface,
        ssh_host: o.string("ssh_host", d),
        ssh: ssh(o, template_dir, d),
    }
}

/// Packer's access options (`region`, keys, `profile`, endpoint, …): shared by the builder and
/// the data source.
fn access(o: &Options<'_>, template_dir: &Path, d: &mut Vec<Diagnostic>) -> AccessConfig {
    let access_key = o.string("access_key", d);
    let secret_key = o.string("secret_key", d).map(Secret::new);
    if access_key.is_some() != secret_key.is_some() {
        let (set, unset) = if access_key.is_some() {
            ("access_key", "secret_key")
        } else {
            ("secret_key", "access_key")
        };
        o.error(set, format!("`{set}` needs `{unset}` too"), d);
    }
    AccessConfig {
        region: o.string("region", d),
        access_key,
        secret_key,
        token: o.string("token", d).map(Secret::new),
        profile: o.string("profile", d),
        shared_credentials_file: o
            .string("shared_credentials_file", d)
            .map(|f| resolve(template_dir, Path::new(&f))),
        custom_endpoint_ec2: o.string("custom_endpoint_ec2", d),
        insecure_skip_tls_verify: o.bool("insecure_skip_tls_verify", d).unwrap_or(false),
        max_retries: o.uint("max_retries", 0, 100, d).map_or(10, |n| n as u32),
    }
}

/// The options of `data "amazon-ami"`: the filter's and the access options.
#[rustfmt::skip]
pub(crate) const AMI_DATA_OPTIONS: &[&str] = &[
    "filters", "owners", "most_recent", "region", "access_key", "secret_key", "token", "profile",
    "shared_credentials_file", "custom_endpoint_ec2", "insecure_skip_tls_verify", "max_retries",
];

/// `data "amazon-ami"` → [`AmazonAmi`]: the AMI is looked up when the template is read.
/// `shared_credentials_file` is taken from the working directory (the reader is not told the
/// template's).
pub(crate) fn amazon_ami(
    o: &Options<'_>,
    d: &mut Vec<Diagnostic>,
) -> Option<Box<dyn crate::datasource::DataSource>> {
    let reported = d.len();
    let filter = ami_filter(o, d);
    let access = access(o, Path::new(""), d);
    (d.len() == reported).then(|| Box::new(AmazonAmi { access, filter }) as Box<_>)
}

/// A `source_ami_filter` (or `data "amazon-ami"`) block's options. `owners` is required, as in
/// Packer: without it any account's image with a matching name could be picked.
pub(crate) fn ami_filter(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> AmiFilter {
    let owners = o.string_list("owners", d).unwrap_or_default();
    if owners.is_empty() && !o.has("owners") {
        o.missing(
            "owners",
            " (the accounts whose images may be used: e.g. `[\"099720109477\"]` for Canonical)",
            d,
        );
    }
    AmiFilter {
        filters: o.string_map("filters", d).unwrap_or_default(),
        owners,
        most_recent: o.bool("most_recent", d).unwrap_or(false),
    }
}

fn devices(o: &Options<'_>, name: &str, d: &mut Vec<Diagnostic>) -> Vec<BlockDevice> {
    o.blocks(name)
        .into_iter()
        .map(|b| {
            let m = o.nested(b, DEVICE, &[], d);
            let device_name = m.string("device_name", d).unwrap_or_default();
            if device_name.is_empty() && !m.has("device_name") {
                m.missing("device_name", "", d);
            }
            let volume_type = m.one_of(
                "volume_type",
                &["standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"],
                &[],
                d,
            );
            BlockDevice {
                device_name,
                virtual_name: m.string("virtual_name", d),
                no_device: m.bool("no_device", d).unwrap_or(false),
                snapshot_id: m.string("snapshot_id", d),
                volume_size: m.uint("volume_size", 1, 65_536, d),
                volume_type,
                iops: m.uint("iops", 100, 256_000, d),
                throughput: m.uint("throughput", 125, 1000, d),
                delete_on_termination: m.bool("delete_on_termination", d),
                encrypted: m.bool("encrypted", d),
                kms_key_id: m.string("kms_key_id", d),
            }
        })
        .collect()
}

/// What is wrong with an AMI name, as EC2 would refuse it: 3–128 characters of letters,
/// digits, `( ) [ ] . / - ' @ _` and spaces. Names still holding `{{ … }}` are not checked.
fn ami_name_problem(name: &str) -> Option<String> {
    if name.contains("{{") {
        return None;
    }
    if !(3..=128).contains(&name.chars().count()) {
        return Some(format!(
            "`ami_name` must be 3 to 128 characters long, not {}",
            name.chars().count()
        ));
    }
    let bad: BTreeMap<char, ()> = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || "()[]./-'@_ ".contains(*c)))
        .map(|c| (c, ()))
        .collect();
    (!bad.is_empty()).then(|| {
        let chars: String = bad.keys().collect();
        format!(
            "`ami_name` may not contain {chars:?}: AMI names are letters, digits, spaces and \
             ( ) [ ] . / - ' @ _"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::ami_name_problem;

    #[test]
    fn ami_names() {
        assert_eq!(ami_name_problem("kiln-ubuntu (2024) [x] a/b@c_d.e'f"), None);
        assert!(ami_name_problem("ab").unwrap().contains("3 to 128"));
        assert!(ami_name_problem("a:b*c").unwrap().contains("\"*:\""));
        assert_eq!(ami_name_problem("name-{{timestamp}}"), None);
    }
}
