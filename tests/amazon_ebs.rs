//! The amazon-ebs builder against a real EC2 emulator: moto (`moto_server`, installed into a
//! virtualenv by scripts/moto.sh, which scripts/test.sh runs), started by each test on a free
//! 127.0.0.1 port and killed by pid when the test ends.
//!
//! Signature checking is on: moto lets the first three requests through unsigned (the test
//! makes an IAM user and its access key with them) and checks every later one against that
//! key, so a request kiln signed wrongly fails with `AuthFailure`.
//!
//! moto's instances have no network, so the templates point `ssh_host`/`ssh_port` at a real
//! OpenSSH sshd on 127.0.0.1 (as tests/ssh.rs, user `kilntest`). Its `AuthorizedKeysFile` gets
//! the public key of the build's temporary key pair as soon as kiln imports it into moto:
//! provisioning succeeds only with the key pair the build made.
//!
//! Nothing here reaches an address other than 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::sshd::{Sshd, USER, free_port, run};
use common::{describe, kiln};
use kiln::aws::{Client, Credentials, Node, ec2};
use kiln::types::Secret;
use kiln::wait::{Attempt, until_ok};

const REGION: &str = "us-east-1";
const CANONICAL: &str = "099720109477";

async fn wait_listening(port: u16, what: &str) {
    let ready = until_ok(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(_) => Attempt::Done(()),
                Err(e) => Attempt::Retry(e),
            }
        },
    )
    .await;
    assert!(ready.is_ok(), "{what} did not listen on 127.0.0.1:{port}");
}

/// The fixture AMIs (`MOTO_AMIS_PATH`): three Ubuntu 22.04 images of different dates, one of
/// another release.
fn amis_fixture(dir: &Path) -> PathBuf {
    let ami = |id: &str, name: &str, date: &str| {
        serde_json::json!({
            "ami_id": id, "state": "available", "public": true, "owner_id": CANONICAL,
            "image_location": format!("{CANONICAL}/{name}"), "root_device_type": "ebs",
            "root_device_name": "/dev/sda1", "image_type": "machine", "architecture": "x86_64",
            "name": name, "virtualization_type": "hvm", "hypervisor": "xen",
            "description": "Canonical, Ubuntu", "creation_date": date,
        })
    };
    let jammy = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server";
    let list = serde_json::json!([
        ami(
            "ami-0a000000000000001",
            &format!("{jammy}-20240101"),
            "2024-01-01T10:00:00.000Z"
        ),
        ami(
            "ami-0a000000000000003",
            &format!("{jammy}-20240612"),
            "2024-06-12T10:00:00.000Z"
        ),
        ami(
            "ami-0a000000000000002",
            &format!("{jammy}-20240301"),
            "2024-03-01T10:00:00.000Z"
        ),
        ami(
            "ami-0b000000000000004",
            "ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20250101",
            "2025-01-01T10:00:00.000Z"
        ),
    ]);
    let path = dir.join("amis.json");
    std::fs::write(&path, list.to_string()).unwrap();
    path
}

/// The newest jammy fixture: what `most_recent` must pick.
const NEWEST: (&str, &str) = (
    "ami-0a000000000000003",
    "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240612",
);

fn moto_server_path() -> PathBuf {
    let path = std::env::var_os("KILN_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("kiln-test/moto-5.2.5/bin/moto_server")
        });
    assert!(
        path.is_file(),
        "moto is not installed at `{}`: these tests need the EC2 emulator. Install it with \
         scripts/moto.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A moto server (killed by pid on drop) and credentials it checks signatures against.
struct Moto {
    child: Child,
    url: String,
    creds: Credentials,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    async fn start() -> Moto {
        let server = moto_server_path();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_AMIS_PATH", amis_fixture(dir.path()))
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut moto = Moto {
            child,
            url,
            creds: Credentials {
                access_key_id: "AKIDUNCHECKED".into(),
                secret_access_key: Secret::new("unchecked"),
                session_token: None,
            },
            _dir: dir,
        };
        wait_listening(port, "moto_server").await;
        // The three unchecked requests: a user, its key, a policy allowing everything.
        let iam = moto.client("iam", "2010-05-08");
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        iam.call("CreateUser", &[p("UserName", "kiln")])
            .await
            .unwrap();
        let key = iam
            .call("CreateAccessKey", &[p("UserName", "kiln")])
            .await
            .unwrap();
        let key = key.find("AccessKey").unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        iam.call(
            "PutUserPolicy",
            &[
                p("UserName", "kiln"),
                p("PolicyName", "all"),
                p("PolicyDocument", policy),
            ],
        )
        .await
        .unwrap();
        moto.creds = Credentials {
            access_key_id: key.text_of("AccessKeyId").unwrap().to_owned(),
            secret_access_key: Secret::new(key.text_of("SecretAccessKey").unwrap()),
            session_token: None,
        };
        moto
    }

    fn client(&self, service: &'static str, version: &'static str) -> Client {
        Client::new(
            service,
            version,
            Some(&self.url),
            REGION,
            self.creds.clone(),
            false,
            0,
        )
        .unwrap()
    }

    fn ec2(&self) -> Client {
        self.client("ec2", ec2::VERSION)
    }

    /// What a build may leave behind: instances not terminated, `packer_` key pairs and
    /// security groups.
    async fn leftovers(&self) -> Vec<String> {
        let c = self.ec2();
        let mut left: Vec<String> = ec2::describe_instances(&c, &[])
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.state != "terminated")
            .map(|i| format!("instance {} ({})", i.id, i.state))
            .collect();
        left.extend(
            ec2::key_pair_names(&c)
                .await
                .unwrap()
                .into_iter()
                .filter(|n| n.starts_with("packer_"))
                .map(|n| format!("key pair {n}")),
        );
        left.extend(
            ec2::security_groups(&c)
                .await
                .unwrap()
                .into_iter()
                .filter(|(_, n)| n.starts_with("packer_"))
                .map(|(id, n)| format!("security group {n} ({id})")),
        );
        left
    }

    /// The AMIs this account made with `name`, in `region`.
    async fn amis_named(&self, region: &str, name: &str) -> Vec<ec2::Image> {
        let filter = ec2::AmiFilter {
            filters: BTreeMap::from([("name".to_owned(), name.to_owned())]),
            owners: vec!["self".to_owned()],
            most_recent: false,
        };
        ec2::describe_images(&self.ec2().in_region(region), &filter, &[])
            .await
            .unwrap()
    }
}

/// Authorises, in `file` (the sshd's `AuthorizedKeysFile`), the public key of every `packer_`
/// key pair moto has, as cloud-init would on a real instance, until the task is aborted.
fn authorize_build_keys(moto: &Moto, file: PathBuf) -> tokio::task::JoinHandle<()> {
    let ec2 = moto.ec2();
    tokio::spawn(async move {
        let _ = until_ok(
            Duration::from_secs(600),
            Duration::from_millis(100),
            || async {
                let root = ec2
                    .call(
                        "DescribeKeyPairs",
                        &[("IncludePublicKey".into(), "true".into())],
                    )
                    .await;
                let keys: Vec<String> = root
                    .iter()
                    .flat_map(|r: &Node| r.items("keySet"))
                    .filter(|k| {
                        k.text_of("keyName")
                            .is_some_and(|n| n.starts_with("packer_"))
                    })
                    .filter_map(|k| k.text_of("publicKey").map(str::to_owned))
                    .collect();
                let _ = std::fs::write(&file, keys.join("\n") + "\n");
                Attempt::<(), std::io::Error>::Retry(std::io::Error::other("keep watching"))
            },
        )
        .await;
    })
}

/// An sshd for `kilntest` that takes keys only from `keys` (a file in `dir`).
async fn sshd(dir: &Path) -> (Sshd, PathBuf) {
    let keys = dir.join("authorized_keys");
    let config = format!(
        "AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no",
        keys.display()
    );
    (Sshd::start_on(free_port(), &config).await, keys)
}

/// A scratch directory the build's shell provisioner (running as `kilntest`) writes into.
fn remote_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-ebs-")
        .tempdir_in("/tmp")
        .unwrap();
    run(Command::new("chown").arg(USER).arg(dir.path()));
    dir
}

/// A template in the seeds' shape: Ubuntu through source_ami_filter, a shell provisioner,
/// tags, a manifest.
fn template(moto: &Moto, sshd: &Sshd, extra: &str, provisioner: &str) -> String {
    format!(
        r#"
source "amazon-ebs" "ubuntu" {{
  region              = "{REGION}"
  custom_endpoint_ec2 = "{url}"
  instance_type       = "t3.micro"
  source_ami_filter {{
    filters = {{
      name                = "ubuntu/images/*ubuntu-jammy-22.04-amd64-server-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }}
    owners      = ["{CANONICAL}"]
    most_recent = true
  }}
  aws_polling {{
    delay_seconds = 1
    max_attempts  = 30
  }}
  ssh_username = "{USER}"
  ssh_host     = "127.0.0.1"
  ssh_port     = {port}
  ssh_timeout  = "60s"
  ami_name     = "kiln-nginx"
  tags = {{
    Name   = "kiln-nginx"
    Base   = "{{{{ .SourceAMIName }}}}"
    Region = "{{{{ .BuildRegion }}}}"
  }}
  run_tags      = {{ Purpose = "kiln-build" }}
  snapshot_tags = {{ From = "{{{{ .SourceAMI }}}}" }}
{extra}
}}

build {{
  sources = ["source.amazon-ebs.ubuntu"]
  provisioner "shell" {{
    inline = [{provisioner}]
  }}
  post-processor "manifest" {{
    output = "manifest.json"
  }}
}}
"#,
        url = moto.url,
        port = sshd.port,
    )
}

/// `kiln build` of `template` in `dir`, with moto's key in the environment and nothing else
/// of the user's AWS set-up.
fn build_command(moto: &Moto, dir: &Path, template: &str) -> Command {
    let tpl = dir.join("ebs.pkr.hcl");
    std::fs::write(&tpl, template).unwrap();
    let mut cmd = kiln();
    cmd.current_dir(dir)
        .arg("build")
        .arg(&tpl)
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", &moto.creds.access_key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            moto.creds.secret_access_key.expose(),
        )
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    cmd
}

async fn build(moto: &Moto, dir: &Path, template: &str) -> std::process::Output {
    let mut cmd = build_command(moto, dir, template);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_with_a_shell_provisioner_issue_18() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (moto, (sshd, keys_file)) = tokio::join!(Moto::start(), sshd(keys_dir.path()));
    // Signatures are checked: the same request with another secret is refused.
    let mut wrong = moto.creds.clone();
    wrong.secret_access_key = Secret::new("not-the-secret");
    let forged = Client::new(
        "ec2",
        ec2::VERSION,
        Some(&moto.url),
        REGION,
        wrong,
        false,
        0,
    )
    .unwrap();
    let err = ec2::describe_instances(&forged, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("AuthFailure"), "{err}");

    let keys = authorize_build_keys(&moto, keys_file);
    let dir = tempfile::tempdir().unwrap();
    let remote = remote_dir();
    let marker = remote.path().join("installed");
    let tpl = template(
        &moto,
        &sshd,
        "  ami_regions = [\"us-west-2\"]\n  encrypt_boot = true\n  kms_key_id = \"alias/kiln\"",
        &format!(
            r#""echo nginx-like from $PACKER_BUILDER_TYPE > {}""#,
            marker.display()
        ),
    );
    // Issue 18's "done when": the AMI id also reaches the example tfvars plugin (issue 17).
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/plugins/kiln-plugin-tfvars");
    let tpl = tpl.replacen(
        "  post-processor \"manifest\" {",
        &format!(
            "  post-processor \"tfvars\" {{\n    kiln_plugin = \"{}\"\n    output = \"image.auto.tfvars\"\n  }}\n  post-processor \"manifest\" {{",
            plugin.display()
        ),
        1,
    );
    let out = build(&moto, dir.path(), &tpl).await;
    keys.abort();
    assert!(
        out.status.success(),
        "build failed\n{}\nsshd log:\n{}",
        describe(&out),
        sshd.log()
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "nginx-like from amazon-ebs\n"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("Deregistering the unencrypted AMI"),
        "encrypt_boot made no encrypted copy\n{}",
        describe(&out)
    );
    assert!(
        stdout.contains(NEWEST.0) || stderr.contains(NEWEST.0),
        "most_recent did not pick {}\n{}",
        NEWEST.0,
        describe(&out)
    );

    // The AMI, in both regions, in the manifest as Packer writes it.
    let east = moto.amis_named(REGION, "kiln-nginx").await;
    let west = moto.amis_named("us-west-2", "kiln-nginx").await;
    assert_eq!((east.len(), west.len()), (1, 1), "{east:?} {west:?}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let b = &manifest["builds"][0];
    assert_eq!(b["builder_type"], "amazon-ebs");
    assert_eq!(b["name"], "ubuntu");
    assert_eq!(
        b["artifact_id"],
        format!("{REGION}:{},us-west-2:{}", east[0].id, west[0].id)
    );

    let tfvars = std::fs::read_to_string(dir.path().join("image.auto.tfvars")).unwrap();
    assert!(
        tfvars.contains(&format!(
            "image_id = \"{REGION}:{},us-west-2:{}\"",
            east[0].id, west[0].id
        )),
        "{tfvars}"
    );

    // Tags, with their placeholders filled.
    let c = moto.ec2();
    let tags = ec2::tags_of(&c, &east[0].id).await.unwrap();
    assert_eq!(
        tags.get("Base").map(String::as_str),
        Some(NEWEST.1),
        "{tags:?}"
    );
    assert_eq!(tags.get("Region").map(String::as_str), Some(REGION));
    assert_eq!(tags.get("Name").map(String::as_str), Some("kiln-nginx"));
    let instances = ec2::describe_instances(&c, &[]).await.unwrap();
    assert_eq!(instances.len(), 1, "{instances:?}");
    let run_tags = ec2::tags_of(&c, &instances[0].id).await.unwrap();
    assert_eq!(
        run_tags.get("Purpose").map(String::as_str),
        Some("kiln-build")
    );
    for snapshot in &east[0].snapshot_ids {
        let t = ec2::tags_of(&c, snapshot).await.unwrap();
        assert_eq!(
            t.get("From").map(String::as_str),
            Some(NEWEST.0),
            "{snapshot}: {t:?}"
        );
    }

    // Every temporary resource is gone.
    assert_eq!(moto.leftovers().await, Vec::<String>::new());
}

/// `template` with the source AMI chosen by a `data "amazon-ami"` block instead of
/// `source_ami_filter`.
fn with_data_source(moto: &Moto, template: &str) -> String {
    let start = template.find("  source_ami_filter {").unwrap();
    let end = start + template[start..].find("\n  }\n").unwrap() + 5;
    let data = format!(
        r#"
data "amazon-ami" "ubuntu" {{
  region              = "{REGION}"
  custom_endpoint_ec2 = "{url}"
  filters = {{
    name = "ubuntu/images/*ubuntu-jammy-22.04-amd64-server-*"
  }}
  owners      = ["{CANONICAL}"]
  most_recent = true
}}
"#,
        url = moto.url
    );
    format!(
        "{data}{}  source_ami = data.amazon-ami.ubuntu.id\n{}",
        &template[..start],
        &template[end..]
    )
}

/// Also: `data "amazon-ami"` picks the source AMI (the newest match).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_ami_name_fails_unless_force_deregister_issue_18() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (moto, (sshd, keys_file)) = tokio::join!(Moto::start(), sshd(keys_dir.path()));
    let keys = authorize_build_keys(&moto, keys_file);
    let dir = tempfile::tempdir().unwrap();
    // The first build makes `kiln-nginx`, from the AMI the data source found.
    let tpl = with_data_source(&moto, &template(&moto, &sshd, "", r#""true""#));
    assert!(!tpl.contains("source_ami_filter"), "{tpl}");
    let out = build(&moto, dir.path(), &tpl).await;
    assert!(out.status.success(), "{}", describe(&out));
    let first = moto.amis_named(REGION, "kiln-nginx").await;
    assert_eq!(first.len(), 1);
    let tags = ec2::tags_of(&moto.ec2(), &first[0].id).await.unwrap();
    assert_eq!(
        tags.get("Base").map(String::as_str),
        Some(NEWEST.1),
        "{tags:?}"
    );
    let launched = ec2::describe_instances(&moto.ec2(), &[])
        .await
        .unwrap()
        .len();

    // The same name again: refused before anything is launched.
    let out = build(&moto, dir.path(), &tpl).await;
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("force_deregister"), "no hint\n{stderr}");
    assert_eq!(
        ec2::describe_instances(&moto.ec2(), &[])
            .await
            .unwrap()
            .len(),
        launched
    );

    // With force_deregister (and force_delete_snapshot) the old AMI and its snapshots go.
    let tpl = template(
        &moto,
        &sshd,
        "  force_deregister = true\n  force_delete_snapshot = true",
        r#""true""#,
    );
    let out = build(&moto, dir.path(), &tpl).await;
    keys.abort();
    assert!(out.status.success(), "{}", describe(&out));
    let now = moto.amis_named(REGION, "kiln-nginx").await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, first[0].id);
    let c = moto.ec2();
    let old = ec2::describe_images(&c, &ec2::AmiFilter::default(), &[first[0].id.clone()]).await;
    assert!(
        old.map_or(true, |v| v.is_empty()),
        "the old AMI is still there"
    );
    let snapshots = c
        .call("DescribeSnapshots", &[("Owner.1".into(), "self".into())])
        .await
        .unwrap();
    let ids: Vec<_> = snapshots
        .items("snapshotSet")
        .filter_map(|s| s.text_of("snapshotId"))
        .collect();
    for s in &first[0].snapshot_ids {
        assert!(
            !ids.contains(&s.as_str()),
            "snapshot {s} of the old AMI is still there"
        );
    }
    assert_eq!(moto.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_provisioner_and_ctrl_c_leave_nothing_behind_issue_18() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (moto, (sshd, keys_file)) = tokio::join!(Moto::start(), sshd(keys_dir.path()));
    let keys = authorize_build_keys(&moto, keys_file);
    let dir = tempfile::tempdir().unwrap();

    // A provisioner that fails.
    let tpl = template(&moto, &sshd, "", r#""echo failing", "exit 7""#);
    let out = build(&moto, dir.path(), &tpl).await;
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exit") && stderr.contains('7'), "{stderr}");
    assert_eq!(moto.leftovers().await, Vec::<String>::new());
    assert!(moto.amis_named(REGION, "kiln-nginx").await.is_empty());
    let launched = ec2::describe_instances(&moto.ec2(), &[]).await.unwrap();
    assert_eq!(launched.len(), 1, "the build launched one instance");

    // Ctrl-C while the provisioner runs.
    let remote = remote_dir();
    let started = remote.path().join("started");
    let tpl = template(
        &moto,
        &sshd,
        "",
        &format!(r#""touch {}", "sleep 300""#, started.display()),
    );
    let mut child = build_command(&moto, dir.path(), &tpl)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = until_ok(
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async {
            if started.exists() {
                Attempt::Done(())
            } else {
                Attempt::Retry(std::io::Error::other("provisioner not started"))
            }
        },
    )
    .await;
    if seen.is_err() {
        let _ = child.kill();
        panic!(
            "the provisioner never started\n{}",
            describe(&child.wait_with_output().unwrap())
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    keys.abort();
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(
        moto.leftovers().await,
        Vec::<String>::new(),
        "{}",
        describe(&out)
    );
    assert_eq!(
        ec2::describe_instances(&moto.ec2(), &[])
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(moto.amis_named(REGION, "kiln-nginx").await.is_empty());
}

#[test]
fn validate_needs_no_credentials_and_no_network_issue_18() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("ebs.pkr.hcl");
    // The endpoint is a closed port and there are no credentials anywhere.
    std::fs::write(
        &tpl,
        r#"
source "amazon-ebs" "u" {
  region              = "eu-west-1"
  custom_endpoint_ec2 = "http://127.0.0.1:9"
  instance_type       = "t3.micro"
  source_ami_filter {
    filters     = { name = "ubuntu/images/*" }
    owners      = ["099720109477"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 20
    volume_type           = "gp3"
    delete_on_termination = true
  }
  ssh_username = "ubuntu"
  ami_name     = "kiln-test"
}
build { sources = ["source.amazon-ebs.u"] }
"#,
    )
    .unwrap();
    let clean = |cmd: &mut Command| {
        cmd.env("HOME", dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE");
    };
    let mut cmd = kiln();
    cmd.arg("validate").arg(&tpl);
    clean(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));

    // Errors are reported together, at their place.
    std::fs::write(
        &tpl,
        r#"
source "amazon-ebs" "u" {
  region        = "eu-west-1"
  instance_type = "t3.micro"
  source_ami_filter {
    filters = { name = "ubuntu/images/*" }
  }
  ssh_username  = "ubuntu"
  ami_name      = "bad:name"
  region_kms_key_ids = { us-west-2 = "alias/x" }
  shutdown_behavior = "halt"
}
build { sources = ["source.amazon-ebs.u"] }
"#,
    )
    .unwrap();
    let mut cmd = kiln();
    cmd.arg("validate").arg(&tpl);
    clean(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "missing required option `owners`",
        "`ami_name` may not contain",
        "`region_kms_key_ids` is not supported by kiln yet",
        "`shutdown_behavior` must be one of",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in\n{stderr}");
    }
}

/// `data "amazon-ami"` is not read by `validate` (nor `inspect`), as Packer: its outputs are
/// placeholders that options accept; `-evaluate-datasources` reads it, and with no credentials
/// that fails.
#[test]
fn validate_does_not_read_amazon_ami_unless_asked_issue_18() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("ebs.pkr.hcl");
    std::fs::write(
        &tpl,
        r#"
data "amazon-ami" "ubuntu" {
  region              = "eu-west-1"
  custom_endpoint_ec2 = "http://127.0.0.1:9"
  filters     = { name = "ubuntu/images/*" }
  owners      = ["099720109477"]
  most_recent = true
}
source "amazon-ebs" "u" {
  region              = "eu-west-1"
  custom_endpoint_ec2 = "http://127.0.0.1:9"
  instance_type       = "t3.micro"
  source_ami          = data.amazon-ami.ubuntu.id
  ssh_username        = "ubuntu"
  ami_name            = "kiln-${data.amazon-ami.ubuntu.owner}"
  tags                = merge(data.amazon-ami.ubuntu.tags, { Base = data.amazon-ami.ubuntu.name })
}
build { sources = ["source.amazon-ebs.u"] }
"#,
    )
    .unwrap();
    // No credentials anywhere: no AWS_* variable, an empty home, no instance metadata.
    let run = |args: &[&str]| {
        let mut cmd = kiln();
        cmd.args(args).arg(&tpl).env("HOME", dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.output().unwrap()
    };
    let out = run(&["validate"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(&["inspect"]);
    assert!(out.status.success(), "{}", describe(&out));

    let out = run(&["validate", "-evaluate-datasources"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("data source `data.amazon-ami.ubuntu` failed: Cannot find AWS credentials"),
        "{stderr}"
    );

    // The data source's options are still checked without reading it.
    let text = std::fs::read_to_string(&tpl).unwrap();
    std::fs::write(&tpl, text.replace("owners      = [\"099720109477\"]\n", "")).unwrap();
    let out = run(&["validate"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing required option `owners`"),
        "{stderr}"
    );
}
