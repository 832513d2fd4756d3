//! The `ansible` and `ansible-local` provisioners (issue 17) against real ansible-core and a
//! real OpenSSH server on 127.0.0.1, through `kiln build` of a `null` source.
//!
//! They need `ansible-playbook` and `ansible-galaxy` (Debian package `ansible-core`), `sshpass`
//! and `sshd` (see [`common::sshd`]); scripts/test.sh installs them, and the tests fail loudly
//! when one is missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::sshd::{PASSWORD, Sshd, USER, free_port, scratch_dir};
use common::{describe, eventually, processes_with, require};

fn require_ansible() {
    require("ansible-playbook", "ansible-core");
    require("ansible-galaxy", "ansible-core");
    require("sshpass", "sshpass");
}

/// Writes `files` (path relative to `dir`, text) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A role `myrole` packed as `myrole.tar.gz` in `dir`, and `requirements.yml` naming it, so
/// that `ansible-galaxy` installs it without a network. The role writes
/// `{{ out_dir }}/galaxy-role.txt`.
fn galaxy_requirements(dir: &Path) {
    write_files(
        dir,
        &[
            (
                "role-src/myrole/tasks/main.yml",
                "- copy:\n    content: \"from the galaxy role\\n\"\n    dest: \"{{ out_dir }}/galaxy-role.txt\"\n",
            ),
            (
                "role-src/myrole/meta/main.yml",
                "galaxy_info:\n  author: kiln\n  description: test role\n  license: MIT\n  min_ansible_version: \"2.9\"\n  platforms: []\ndependencies: []\n",
            ),
        ],
    );
    common::sshd::run(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(dir.join("myrole.tar.gz"))
            .arg("-C")
            .arg(dir.join("role-src"))
            .arg("myrole"),
    );
    let requirements = format!(
        "- src: file://{}/myrole.tar.gz\n  name: myrole\n",
        dir.display()
    );
    write_files(dir, &[("requirements.yml", &requirements)]);
}

/// One test: its SSH server, its work directory (the template's directory; `TMPDIR` of kiln is
/// inside it, so that the test sees every temporary file kiln and Ansible made), and an output
/// directory on the machine (this host) that the test user owns.
struct Case {
    sshd: Sshd,
    work: tempfile::TempDir,
    out_dir: PathBuf,
}

impl Case {
    fn new(sshd: Sshd) -> Self {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("tmp")).unwrap();
        Self {
            sshd,
            work,
            out_dir: scratch_dir(),
        }
    }

    fn dir(&self) -> &Path {
        self.work.path()
    }

    /// A `null` source for the server, logging in with `credentials` (HCL lines), and a
    /// `build` of it with `provisioners`.
    fn template(&self, credentials: &str, provisioners: &str) -> String {
        format!(
            r#"variable "password" {{
  type      = string
  sensitive = true
  default   = ""
}}
source "null" "target" {{
  ssh_host     = "127.0.0.1"
  ssh_port     = {port}
  ssh_username = "{USER}"
  ssh_timeout  = "20s"
  {credentials}
}}
build {{
  sources = ["source.null.target"]
{provisioners}
}}
"#,
            port = self.sshd.port
        )
    }

    /// `kiln build` of `template` (written to `name`), the password given as a sensitive
    /// variable; its output and kiln's output with the server's log.
    async fn build(&self, name: &str, template: &str) -> (Output, String) {
        let path = self.dir().join(name);
        std::fs::write(&path, template).unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("build")
            .arg(&path)
            .current_dir(self.dir())
            .env("TMPDIR", self.dir().join("tmp"))
            .env("PKR_VAR_password", PASSWORD)
            .output()
            .await
            .unwrap();
        let text = format!("{}\nsshd:\n{}", describe(&out), self.sshd.log());
        (out, text)
    }

    /// A file the run wrote into the output directory ("" when it did not).
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out_dir.join(name)).unwrap_or_default()
    }

    /// After a run: no temporary file of the run (the key, the password file, the control
    /// sockets) and no process that names them (an SSH control master) is left.
    fn assert_run_left_nothing(&self, text: &str) {
        let tmp = self.dir().join("tmp");
        let left: Vec<PathBuf> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("kiln-ansible-"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}\n{text}");
        let marker = tmp.display().to_string();
        assert!(
            eventually(Duration::from_secs(10), || processes_with(&marker)
                .is_empty()),
            "processes of the run still running: {:?}",
            processes_with(&marker)
        );
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out_dir);
    }
}

/// A playbook run by `ansible` connects to the build's SSH server with the build's key:
/// facts are gathered, a template, a copy and a handler run, the `packer_*` variables and
/// `ansible_env_vars` arrive, the host is in its `groups`, a role comes from `galaxy_file`,
/// the kept inventory is Packer's, and the key and SSH control masters are gone afterwards.
/// The test server has no SFTP subsystem: files still arrive (Packer's proxy needed scp).
#[tokio::test]
async fn ansible_provisions_over_the_builds_ssh_connection() {
    require_ansible();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    common::sshd::run(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let sshd = Sshd::start_on(
        free_port(),
        &format!(
            "AuthorizedKeysFile {}.pub\nPasswordAuthentication no\nKbdInteractiveAuthentication no",
            key.display()
        ),
    )
    .await;
    let case = Case::new(sshd);
    let w = case.dir();
    write_files(
        w,
        &[
            (
                "playbook.yml",
                r#"
- hosts: web
  roles:
    - myrole
  tasks:
    - name: facts and variables
      copy:
        content: "{{ ansible_facts['user_id'] }} {{ packer_build_name }} {{ packer_builder_type }} {{ inventory_hostname }} {{ lookup('env', 'KILN_TEST_ENV') }}\n"
        dest: "{{ out_dir }}/facts.txt"
    - name: a template
      template:
        src: motd.j2
        dest: "{{ out_dir }}/motd"
      notify: note it
    - name: a copy
      copy:
        src: payload.txt
        dest: "{{ out_dir }}/payload.txt"
  handlers:
    - name: note it
      command: touch {{ out_dir }}/handler-ran
"#,
            ),
            ("motd.j2", "welcome to {{ ansible_facts['hostname'] }}\n"),
            ("payload.txt", "payload\n"),
        ],
    );
    galaxy_requirements(w);
    std::fs::create_dir_all(w.join("inventories")).unwrap();
    let template = case.template(
        &format!("ssh_private_key_file = \"{}\"", key.display()),
        &format!(
            r#"  provisioner "ansible" {{
    playbook_file       = "playbook.yml"
    host_alias          = "target"
    groups              = ["web"]
    empty_groups        = ["spare"]
    extra_arguments     = ["--extra-vars", "out_dir={out}"]
    ansible_env_vars    = ["KILN_TEST_ENV=from-env", "ANSIBLE_ROLES_PATH={w}/roles"]
    galaxy_file         = "requirements.yml"
    roles_path          = "{w}/roles"
    inventory_directory = "inventories"
    keep_inventory_file = true
    use_proxy           = true
  }}"#,
            out = case.out_dir.display(),
            w = w.display(),
        ),
    );
    let (out, text) = case.build("ansible.pkr.hcl", &template).await;
    assert!(out.status.success(), "{text}");
    assert_eq!(
        case.read("facts.txt"),
        format!("{USER} target null target from-env\n"),
        "{text}"
    );
    assert!(case.read("motd").starts_with("welcome to "), "{text}");
    assert_eq!(case.read("payload.txt"), "payload\n");
    assert!(case.out_dir.join("handler-ran").exists(), "{text}");
    assert_eq!(
        case.read("galaxy-role.txt"),
        "from the galaxy role\n",
        "{text}"
    );
    assert!(
        text.contains("kiln has no SSH proxy: Ansible connects directly to 127.0.0.1:")
            && text.contains("`use_proxy = true` changes nothing"),
        "{text}"
    );
    // Packer's inventory, kept where it was asked for.
    let kept: Vec<PathBuf> = std::fs::read_dir(w.join("inventories"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let inventory = std::fs::read_to_string(&kept[0]).unwrap();
    let host = format!(
        "target ansible_host=127.0.0.1 ansible_user={USER} ansible_port={}\n",
        case.sshd.port
    );
    assert_eq!(inventory, format!("{host}[web]\n{host}[spare]\n"));
    case.assert_run_left_nothing(&text);
}

/// With a password login, Ansible gets the password through `sshpass` (never on a command
/// line or in kiln's output), also with the template's own `inventory_file`; a failing task
/// fails the build with Ansible's status. A missing `ansible-playbook` is a clear error with
/// the package to install.
#[tokio::test]
async fn password_login_failing_task_and_missing_ansible() {
    require_ansible();
    let case = Case::new(Sshd::start().await);
    write_files(
        case.dir(),
        &[
            (
                "playbook.yml",
                r#"
- hosts: default
  gather_facts: false
  tasks:
    - command: touch {{ out_dir }}/before-failure
    - fail:
        msg: deliberate failure
    - command: touch {{ out_dir }}/never
"#,
            ),
            (
                "hosts.ini",
                &format!(
                    "default ansible_host=127.0.0.1 ansible_port={} ansible_user={USER}\n",
                    case.sshd.port
                ),
            ),
        ],
    );
    let template = |command: &str| {
        case.template(
            "ssh_password = var.password",
            &format!(
                r#"  provisioner "ansible" {{
    playbook_file   = "playbook.yml"
    inventory_file  = "hosts.ini"
    extra_arguments = ["-e", "out_dir={out}"]
    {command}
  }}"#,
                out = case.out_dir.display(),
            ),
        )
    };
    let (out, text) = case.build("fail.pkr.hcl", &template("")).await;
    assert!(!out.status.success(), "{text}");
    assert!(case.out_dir.join("before-failure").exists(), "{text}");
    assert!(!case.out_dir.join("never").exists(), "{text}");
    let kiln_output = describe(&out);
    for want in [
        "deliberate failure",
        "Provisioner 1 (`ansible`) failed",
        "`ansible-playbook` exited with status 2",
        "password.json",
    ] {
        assert!(kiln_output.contains(want), "missing {want:?}\n{text}");
    }
    assert!(!kiln_output.contains(PASSWORD), "{kiln_output}");
    case.assert_run_left_nothing(&text);

    let missing = template("command = \"kiln-no-such-ansible\"");
    let (out, text) = case.build("missing.pkr.hcl", &missing).await;
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("`kiln-no-such-ansible` is not installed here")
            && text.contains("apt-get install ansible-core"),
        "{text}"
    );
}

/// `ansible-local` uploads a playbook directory, a role, group and host variables into the
/// staging directory on the machine (here this host, through sshd), runs `ansible-playbook
/// -c local` there with the made inventory's groups, and removes the staging directory; a
/// second block runs `playbook_files` (inside and outside `playbook_dir`, one importing a
/// playbook from `playbook_paths`) after installing a role with `ansible-galaxy` on the
/// machine.
#[tokio::test]
async fn ansible_local_runs_the_uploaded_playbook_on_the_machine() {
    require_ansible();
    let case = Case::new(Sshd::start().await);
    let staging = case.out_dir.join("staging");
    write_files(
        case.dir(),
        &[
            (
                "ansible/site.yml",
                r#"
- hosts: builders
  roles:
    - extra
  tasks:
    - copy:
        content: "{{ group_greeting }} {{ host_greeting }} {{ packer_build_name }} {{ packer_builder_type }}\n"
        dest: "{{ out_dir }}/local.txt"
    - copy:
        src: files/shipped.txt
        dest: "{{ out_dir }}/shipped.txt"
"#,
            ),
            ("ansible/files/shipped.txt", "shipped in playbook_dir\n"),
            (
                "roles/extra/tasks/main.yml",
                "- copy:\n    content: \"from role_paths\\n\"\n    dest: \"{{ out_dir }}/role.txt\"\n",
            ),
            ("vars/group/builders.yml", "group_greeting: hello-group\n"),
            ("vars/host/127.0.0.1.yml", "host_greeting: hello-host\n"),
            (
                "ansible/second.yml",
                "- hosts: all\n  roles: [myrole]\n  tasks:\n    - command: touch {{ out_dir }}/second\n\
                 - import_playbook: playbooks/more/included.yml\n",
            ),
            (
                "more/included.yml",
                "- hosts: all\n  tasks:\n    - command: touch {{ out_dir }}/included\n",
            ),
            (
                "elsewhere/third.yml",
                "- hosts: all\n  tasks:\n    - command: touch {{ out_dir }}/third\n",
            ),
        ],
    );
    galaxy_requirements(case.dir());
    let template = case.template(
        "ssh_password = var.password",
        &format!(
            r#"  provisioner "ansible-local" {{
    playbook_file           = "ansible/site.yml"
    playbook_dir            = "ansible"
    role_paths              = ["roles/extra"]
    group_vars              = "vars/group"
    host_vars               = "vars/host"
    inventory_groups        = ["builders"]
    extra_arguments         = ["--extra-vars", "out_dir={out}"]
    staging_directory       = "{staging}"
    clean_staging_directory = true
  }}
  provisioner "ansible-local" {{
    playbook_files          = ["ansible/second.yml", "elsewhere/third.yml"]
    playbook_dir            = "ansible"
    playbook_paths          = ["more"]
    galaxy_file             = "requirements.yml"
    inventory_groups        = "one,two"
    extra_arguments         = ["--extra-vars", "out_dir={out}"]
    clean_staging_directory = true
  }}"#,
            out = case.out_dir.display(),
            staging = staging.display(),
        ),
    );
    let (out, text) = case.build("local.pkr.hcl", &template).await;
    assert!(out.status.success(), "{text}");
    assert_eq!(
        case.read("local.txt"),
        "hello-group hello-host target null\n",
        "{text}"
    );
    assert_eq!(
        case.read("shipped.txt"),
        "shipped in playbook_dir\n",
        "{text}"
    );
    assert_eq!(case.read("role.txt"), "from role_paths\n", "{text}");
    assert!(!staging.exists(), "clean_staging_directory\n{text}");
    // The second block: one playbook from `playbook_dir`, one uploaded from elsewhere, and a
    // role installed by `ansible-galaxy` on the machine into the staging directory.
    assert_eq!(
        case.read("galaxy-role.txt"),
        "from the galaxy role\n",
        "{text}"
    );
    assert!(case.out_dir.join("second").exists(), "{text}");
    assert!(case.out_dir.join("third").exists(), "{text}");
    assert!(
        case.out_dir.join("included").exists(),
        "playbook_paths\n{text}"
    );
    // Packer's default staging directory's parent stays, as with Packer; empty.
    let _ = std::fs::remove_dir("/tmp/packer-provisioner-ansible-local");
}

/// `kiln validate` of `provisioners` in a build of a `null` source, run in `dir`.
fn validate(dir: &Path, name: &str, provisioners: &str) -> Output {
    let template = dir.join(name);
    std::fs::write(
        &template,
        format!(
            r#"source "null" "x" {{
  ssh_host     = "127.0.0.1"
  ssh_username = "u"
  ssh_password = "p"
}}
build {{
  sources = ["source.null.x"]
{provisioners}
}}
"#
        ),
    )
    .unwrap();
    common::kiln()
        .arg("validate")
        .arg(&template)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `kiln validate` reads both provisioners and reports their mistakes where they are written,
/// all in one run.
#[test]
fn validate_reports_ansible_mistakes_at_their_place() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    write_files(w, &[("play.yml", "- hosts: all\n"), ("dir/x", "")]);
    let out = validate(
        w,
        "bad.pkr.hcl",
        r#"  provisioner "ansible" {
    playbook_file    = "missing.yml"
    ansible_env_vars = ["NO_EQUALS_SIGN"]
    use_sftp         = "maybe"
  }
  provisioner "ansible-local" {
    playbook_file  = "play.yml"
    playbook_files = ["play.yml"]
    role_paths     = ["play.yml"]
  }
  provisioner "ansible" {
    playbok_file = "play.yml"
  }"#,
    );
    let text = describe(&out);
    assert!(!out.status.success(), "{text}");
    for want in [
        "bad.pkr.hcl:9:",
        "missing.yml` does not exist",
        "bad.pkr.hcl:10:",
        "element 1 of `ansible_env_vars` is not in the form `KEY=VALUE`",
        "bad.pkr.hcl:11:",
        "only one of `playbook_file` or `playbook_files` may be set",
        "`role_paths`:",
        "is not a directory",
        "unknown option `playbok_file`",
        "did you mean `playbook_file`",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }

    let out = validate(
        w,
        "good.pkr.hcl",
        r#"  provisioner "ansible" {
    playbook_file          = "play.yml"
    user                   = "admin"
    ansible_ssh_extra_args = ["-o ServerAliveInterval=30"]
    use_proxy              = false
    use_sftp               = true
    skip_version_check     = true
    max_retries            = 2
  }
  provisioner "ansible-local" {
    playbook_files   = ["play.yml"]
    playbook_paths   = ["dir"]
    inventory_groups = "a,b"
  }"#,
    );
    assert!(out.status.success(), "{}", describe(&out));
}
