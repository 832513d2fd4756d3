//! The `ansible` provisioner: runs `ansible-playbook` on the build machine against the machine
//! being built, with Packer's options, inventory and `packer_*` extra variables.
//!
//! Ansible connects straight to the address and port kiln's communicator connects to (the
//! session's [`Endpoint`]), as the same user, with the same credentials: the private key
//! (the build's temporary key or `ssh_private_key_file`) is written 0600 into a private
//! directory for the run and removed after it; a password goes to Ansible in a 0600 extra-vars
//! file (Ansible hands it to `sshpass`). kiln has no SSH proxy: Packer's proxy mode is where
//! its known pains come from (an ssh-rsa host key newer OpenSSH refuses, scp against
//! sftp-only servers, 5–10× slower runs). So `use_proxy = true` and the proxy's own options
//! are accepted and said to change nothing.
//!
//! Beside Packer's environment (`ANSIBLE_HOST_KEY_CHECKING=False`), kiln sets, before the
//! template's `ansible_env_vars` (which win): pipelining on, SSH control sockets in the run's
//! private directory (their masters are stopped when the run ends, so no `ssh` process outlives
//! it), host keys neither read from nor written to `~/.ssh/known_hosts` (build machines reuse
//! addresses and ports with new keys), and, with `use_sftp = true`, SFTP transfers. Without
//! it Ansible's `smart` transfer (sftp, then scp, then a pipe) works with any server.

use std::path::{Path, PathBuf};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{BuildEnv, local_process};
use crate::communicator::{Endpoint, sh_quote};
use crate::ui::Ui;

/// Packer's inventory line (Ansible 2 and later), filled by [`inventory_text`].
pub const DEFAULT_INVENTORY_TEMPLATE: &str =
    "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} ansible_port={{ .Port }}\n";

/// A validated `provisioner "ansible"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `playbook_file` (required).
    pub playbook_file: PathBuf,
    /// `command` (default `ansible-playbook`): an executable, run without a shell.
    pub command: String,
    /// `extra_arguments`: passed to `command` as they are, after kiln's.
    pub extra_arguments: Vec<String>,
    /// `ansible_env_vars` as `KEY=VALUE` pairs; they win over kiln's defaults.
    pub ansible_env_vars: Vec<(String, String)>,
    /// `ansible_ssh_extra_args` (default `["-o IdentitiesOnly=yes"]`), given to Ansible's
    /// `--ssh-extra-args` each in single quotes, as Packer does.
    pub ssh_extra_args: Vec<String>,
    /// `user`: Ansible's `ansible_user` (default: the build's SSH user).
    pub user: Option<String>,
    /// `host_alias` (default `default`): the host's name in the inventory.
    pub host_alias: String,
    /// `groups`: inventory groups that contain the host.
    pub groups: Vec<String>,
    /// `empty_groups`: inventory groups written without hosts.
    pub empty_groups: Vec<String>,
    /// `inventory_directory`: where the made inventory file goes (default: the temp dir).
    pub inventory_directory: Option<PathBuf>,
    /// `inventory_file`: the template's own inventory, used instead of a made one.
    pub inventory_file: Option<PathBuf>,
    /// `inventory_file_template`: the made inventory's host line (default
    /// [`DEFAULT_INVENTORY_TEMPLATE`]); knows `HostAlias`, `Host`, `Port`, `User` and the
    /// `build.*` values.
    pub inventory_file_template: Option<String>,
    /// `keep_inventory_file`: leave the made inventory file in place.
    pub keep_inventory_file: bool,
    /// `galaxy_*`, `roles_path`, `collections_path`.
    pub galaxy: Galaxy,
    /// `skip_version_check`: do not check that `command` is installed first.
    pub skip_version_check: bool,
    /// `use_sftp`: transfer files with SFTP only.
    pub use_sftp: bool,
    /// The options given that only configure Packer's SSH proxy (`use_proxy = true`,
    /// `local_port`, …), which kiln does not have: named when the provisioner runs.
    pub proxy_options: Vec<String>,
}

impl Config {
    /// A config with Packer's defaults for everything but the playbook.
    pub fn with_defaults(playbook_file: PathBuf) -> Self {
        Self {
            playbook_file,
            command: "ansible-playbook".into(),
            extra_arguments: Vec::new(),
            ansible_env_vars: Vec::new(),
            ssh_extra_args: vec!["-o IdentitiesOnly=yes".into()],
            user: None,
            host_alias: "default".into(),
            groups: Vec::new(),
            empty_groups: Vec::new(),
            inventory_directory: None,
            inventory_file: None,
            inventory_file_template: None,
            keep_inventory_file: false,
            galaxy: Galaxy::default(),
            skip_version_check: false,
            use_sftp: false,
            proxy_options: Vec::new(),
        }
    }
}

/// Roles and collections installed with `ansible-galaxy` before the playbook runs (both
/// `ansible` and `ansible-local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Galaxy {
    /// `galaxy_file`: the requirements file.
    pub file: Option<PathBuf>,
    /// `galaxy_command` (default `ansible-galaxy`).
    pub command: String,
    /// `galaxy_force_install`: `--force`.
    pub force: bool,
    /// `galaxy_force_with_deps`: `--force-with-deps`.
    pub force_with_deps: bool,
    /// `roles_path` (`ansible-local`: `galaxy_roles_path`): `-p` for roles.
    pub roles_path: Option<String>,
    /// `collections_path` (`ansible-local`: `galaxy_collections_path`): `-p` for collections.
    pub collections_path: Option<String>,
}

impl Default for Galaxy {
    fn default() -> Self {
        Self {
            file: None,
            command: "ansible-galaxy".into(),
            force: false,
            force_with_deps: false,
            roles_path: None,
            collections_path: None,
        }
    }
}

impl Galaxy {
    /// The argument lists of the `ansible-galaxy` runs for a requirements file with `text`,
    /// named `file` on the command line: roles when it has a `roles:` section or no
    /// `collections:` one (the old list-of-roles form), collections when it has one.
    pub fn runs(&self, text: &str, file: &str) -> Vec<Vec<String>> {
        let has = |key: &str| text.lines().any(|l| l.starts_with(key));
        let (roles, collections) = (has("roles:"), has("collections:"));
        let with_options = |mut args: Vec<String>, path: &Option<String>| {
            if self.force {
                args.push("--force".into());
            }
            if self.force_with_deps {
                args.push("--force-with-deps".into());
            }
            if let Some(p) = path {
                args.extend(["-p".into(), p.clone()]);
            }
            args
        };
        let mut runs = Vec::new();
        if roles || !collections {
            let args = ["install", "-r", file].map(String::from).to_vec();
            runs.push(with_options(args, &self.roles_path));
        }
        if collections {
            let args = ["collection", "install", "-r", file]
                .map(String::from)
                .to_vec();
            runs.push(with_options(args, &self.collections_path));
        }
        runs
    }
}

/// Why the `ansible` provisioner failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The build has no communicator to connect to.
    #[error(
        "The `ansible` provisioner connects where the build's SSH communicator does, and this build has none (`communicator = \"none\"`)"
    )]
    NoCommunicator,
    /// The build's communicator is not SSH.
    #[error(
        "The `ansible` provisioner connects over SSH, and this build's communicator is `{kind}`"
    )]
    NotSsh { kind: String },
    /// `command` is not there (checked unless `skip_version_check`).
    #[error(
        "`{command}` is not installed here: it is not on PATH (set `skip_version_check = true` if the build installs it before this provisioner runs)"
    )]
    NotInstalled { command: String },
    /// The run's private directory or a file in it could not be made.
    #[error("Cannot write `{}` for the Ansible run", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `inventory_file_template` names a value kiln does not have.
    #[error("Cannot fill in `inventory_file_template`")]
    InventoryTemplate(#[source] crate::render::Error),
    /// The requirements file could not be read.
    #[error("Cannot read the galaxy file `{}`", path.display())]
    ReadGalaxyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The build logs in with a password, which Ansible's SSH connection needs `sshpass` for.
    #[error(
        "The build logs in with a password, and Ansible needs `sshpass` for that: it is not on PATH"
    )]
    NoSshpass,
    /// `ansible-galaxy` or `ansible-playbook` could not be run to its end.
    #[error("Running Ansible failed")]
    Run(#[source] local_process::Error),
    /// A command exited with a failure status (`None`: killed by a signal).
    #[error("`{command}` {}", describe_status(*status))]
    Status {
        command: String,
        status: Option<i32>,
    },
}

fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".into(),
    }
}

/// The hint for an `ansible` error, when kiln knows the fix.
pub fn hint(err: &Error) -> Option<String> {
    match err {
        Error::NotInstalled { .. } | Error::Run(local_process::Error::Spawn { .. }) => Some(
            "install Ansible on the build machine (Debian: apt-get install ansible-core), or set `command` to where it is".into(),
        ),
        Error::NoSshpass => Some(
            "install sshpass (Debian: apt-get install sshpass), or give the build an SSH key (`ssh_private_key_file`)".into(),
        ),
        _ => None,
    }
}

/// Runs the playbook of `config` against `endpoint` (the build's communicator), showing
/// Ansible's output through `ui`.
pub async fn run(
    config: &Config,
    endpoint: Option<Endpoint>,
    build: &BuildEnv,
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    ui.say("Provisioning with Ansible...");
    let endpoint = endpoint.ok_or(Error::NoCommunicator)?;
    if endpoint.kind != "ssh" {
        return Err(Error::NotSsh {
            kind: endpoint.kind.to_owned(),
        });
    }
    if !config.proxy_options.is_empty() {
        ui.message(format!(
            "kiln has no SSH proxy: Ansible connects directly to {}:{}, so {} changes nothing",
            endpoint.host,
            endpoint.port,
            config.proxy_options.join(", ")
        ));
    }
    let run_dir = RunDir::new()?;
    let env = env_vars(config, &run_dir.control_dir());
    // Packer runs `command --version` here; finding the command is what matters, and it
    // saves starting Python once (0.5–2.5 s measured here).
    if !config.skip_version_check && find_command(&config.command).is_none() {
        return Err(Error::NotInstalled {
            command: config.command.clone(),
        });
    }
    let user = config.user.clone().unwrap_or_else(|| endpoint.user.clone());
    let key_file = match &endpoint.private_key {
        Some(key) => Some(run_dir.write_secret("key", key.expose())?),
        None => None,
    };
    let password_file = match (&key_file, &endpoint.password) {
        (None, Some(password)) if !mentions(&config.extra_arguments, "ansible_password") => {
            if find_command("sshpass").is_none() {
                return Err(Error::NoSshpass);
            }
            let vars = json!({ "ansible_password": password.expose() });
            Some(run_dir.write_secret("password.json", &vars.to_string())?)
        }
        _ => None,
    };
    let inventory = match &config.inventory_file {
        Some(given) => Inventory::Given(given.clone()),
        None => Inventory::Made(write_inventory(
            config,
            &inventory_text(config, &endpoint, &user, &build.data)?,
        )?),
    };

    if let Some(file) = &config.galaxy.file {
        let text = std::fs::read_to_string(file).map_err(|source| Error::ReadGalaxyFile {
            path: file.clone(),
            source,
        })?;
        for args in config.galaxy.runs(&text, &file.to_string_lossy()) {
            ui.say("Executing Ansible Galaxy");
            run_command(&config.galaxy.command, &args, &env, ui, cancel).await?;
        }
    }

    let playbook =
        std::path::absolute(&config.playbook_file).unwrap_or_else(|_| config.playbook_file.clone());
    let args = playbook_args(
        config,
        &Plan {
            build_vars: build_vars(build),
            key_file: key_file.as_deref(),
            password_file: password_file.as_deref(),
            inventory: inventory.path(),
            playbook: &playbook,
        },
    );
    ui.say(format!(
        "Executing Ansible: {}",
        display_command(&config.command, &args, &config.extra_arguments)
    ));
    let result = run_command(&config.command, &args, &env, ui, cancel).await;
    if let Inventory::Made(made) = inventory
        && config.keep_inventory_file
    {
        match made.keep() {
            Ok(path) => ui.message(format!("Kept the inventory file {}", path.display())),
            Err(e) => ui.warn(format!("Could not keep the inventory file: {e}")),
        }
    }
    result
}

/// The inventory of a run: the template's `inventory_file`, or one made for the run (removed
/// when dropped).
enum Inventory {
    Given(PathBuf),
    Made(tempfile::TempPath),
}

impl Inventory {
    fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Made(p) => p,
        }
    }
}

/// The run's private directory (mode 0700): the key, the password file and the SSH control
/// sockets. Dropping it stops the SSH control masters Ansible left running, then removes it.
struct RunDir(tempfile::TempDir);

impl RunDir {
    fn new() -> Result<Self, Error> {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix("kiln-ansible-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map(Self)
            .map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })
    }

    fn control_dir(&self) -> PathBuf {
        self.0.path().join("cp")
    }

    /// Writes `text` to `name` in the directory, readable by its owner only.
    fn write_secret(&self, name: &str, text: &str) -> Result<PathBuf, Error> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.0.path().join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let Ok(sockets) = std::fs::read_dir(self.control_dir()) else {
            return;
        };
        for socket in sockets.flatten() {
            // `-O exit` asks the master listening there to end; it answers at once.
            let stopped = std::process::Command::new("ssh")
                .arg("-o")
                .arg(format!("ControlPath={}", socket.path().display()))
                .args(["-O", "exit", "kiln-ansible"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            tracing::debug!(socket = %socket.path().display(), ?stopped, "stopped an SSH control master");
        }
    }
}

/// The environment of the Ansible commands: kiln's defaults, then `ansible_env_vars`.
fn env_vars(config: &Config, control_dir: &Path) -> Vec<(String, String)> {
    let user_value = |key: &str| {
        config
            .ansible_env_vars
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut env: Vec<(String, String)> = vec![
        ("ANSIBLE_HOST_KEY_CHECKING".into(), "False".into()),
        ("ANSIBLE_PIPELINING".into(), "True".into()),
        (
            "ANSIBLE_SSH_CONTROL_PATH_DIR".into(),
            control_dir.display().to_string(),
        ),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    let checks_host_keys = user_value("ANSIBLE_HOST_KEY_CHECKING").is_some_and(|v| {
        matches!(
            v.trim_matches(['\'', '"']).to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1"
        )
    });
    if !checks_host_keys {
        env.push((
            "ANSIBLE_SSH_COMMON_ARGS".into(),
            "-o UserKnownHostsFile=/dev/null".into(),
        ));
    }
    if config.use_sftp {
        env.push(("ANSIBLE_SSH_TRANSFER_METHOD".into(), "sftp".into()));
    }
    env.extend(config.ansible_env_vars.iter().cloned());
    env
}

/// The made inventory: the host line from `inventory_file_template`, then each group with the
/// host, then the empty groups.
fn inventory_text(
    config: &Config,
    endpoint: &Endpoint,
    user: &str,
    data: &[(String, String)],
) -> Result<String, Error> {
    let template = config
        .inventory_file_template
        .as_deref()
        .unwrap_or(DEFAULT_INVENTORY_TEMPLATE);
    let port = endpoint.port.to_string();
    let own = [
        ("HostAlias", config.host_alias.as_str()),
        ("Host", endpoint.host.as_str()),
        ("Port", port.as_str()),
        ("User", user),
    ];
    let host = crate::render::render(template, |name: &str| {
        own.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .or_else(|| {
                data.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
            .map(std::borrow::Cow::Borrowed)
    })
    .map_err(Error::InventoryTemplate)?;
    let mut text = host.clone();
    for group in &config.groups {
        text.push_str(&format!("[{group}]\n{host}"));
    }
    for group in &config.empty_groups {
        text.push_str(&format!("[{group}]\n"));
    }
    Ok(text)
}

/// Writes the made inventory into `inventory_directory` (or the temp dir); removed when the
/// returned path is dropped.
fn write_inventory(config: &Config, text: &str) -> Result<tempfile::TempPath, Error> {
    use std::io::Write;
    let dir = config
        .inventory_directory
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let mut file = tempfile::Builder::new()
        .prefix("packer-provisioner-ansible")
        .tempfile_in(&dir)
        .map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|source| Error::Write {
            path: file.path().to_owned(),
            source,
        })?;
    Ok(file.into_temp_path())
}

/// The `packer_*` extra variables Packer sets, as one JSON object.
pub(super) fn build_vars(build: &BuildEnv) -> String {
    let var = |name: &str| {
        build
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut vars = serde_json::Map::new();
    vars.insert(
        "packer_build_name".into(),
        var("PACKER_BUILD_NAME").unwrap_or_default().into(),
    );
    vars.insert(
        "packer_builder_type".into(),
        var("PACKER_BUILDER_TYPE").unwrap_or_default().into(),
    );
    if let Some(addr) = var("PACKER_HTTP_ADDR") {
        vars.insert("packer_http_addr".into(), addr.into());
    }
    serde_json::Value::Object(vars).to_string()
}

/// What one playbook run uses besides the config.
struct Plan<'a> {
    /// [`build_vars`].
    build_vars: String,
    key_file: Option<&'a Path>,
    password_file: Option<&'a Path>,
    inventory: &'a Path,
    playbook: &'a Path,
}

/// `ansible-playbook`'s arguments, in Packer's order: the build's variables, the SSH extra
/// arguments, `extra_arguments`, the credentials (unless `extra_arguments` sets
/// `ansible_password`), then `-i INVENTORY PLAYBOOK`.
fn playbook_args(config: &Config, plan: &Plan) -> Vec<String> {
    let mut args = vec!["-e".to_owned(), plan.build_vars.clone()];
    if !config.ssh_extra_args.is_empty() {
        args.push("--ssh-extra-args".into());
        args.push(format!("'{}'", config.ssh_extra_args.join("' '")));
    }
    args.extend(config.extra_arguments.iter().cloned());
    if !mentions(&config.extra_arguments, "ansible_password") {
        if let Some(file) = plan.password_file {
            args.push("-e".into());
            args.push(format!("@{}", file.display()));
        }
        if let Some(key) = plan.key_file {
            args.push("-e".into());
            args.push(json!({ "ansible_ssh_private_key_file": key }).to_string());
        }
    }
    args.push("-i".into());
    args.push(plan.inventory.display().to_string());
    args.push(plan.playbook.display().to_string());
    args
}

/// Whether an argument names `var` (`ansible_password=…`, as Packer checks).
fn mentions(args: &[String], var: &str) -> bool {
    args.iter().any(|a| a.split('=').any(|part| part == var))
}

/// The command line as shown: shell-quoted where needed, and, as Packer does, the value of a
/// `KEY=VALUE` argument of `extra_arguments` whose key names a password or secret hidden.
fn display_command(command: &str, args: &[String], extra: &[String]) -> String {
    let hidden: Vec<&str> = extra
        .iter()
        .filter_map(|a| a.split_once('='))
        .filter(|(k, v)| {
            let k = k.to_ascii_lowercase();
            (k.contains("password") || k.contains("secret")) && !v.is_empty()
        })
        .map(|(_, v)| v)
        .collect();
    std::iter::once(command)
        .chain(args.iter().map(String::as_str))
        .map(|word| {
            let mut word = word.to_owned();
            for value in &hidden {
                word = word.replace(value, "*****");
            }
            shell_word(&word)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as a shell reads it back: as it is when that is safe, else single-quoted.
pub(super) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        sh_quote(word)
    }
}

/// Runs `program args` with `env` on top of kiln's environment; a failure status is an error.
async fn run_command(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    match run_local(program, args, env, ui, cancel)
        .await
        .map_err(Error::Run)?
    {
        Some(0) => Ok(()),
        status => Err(Error::Status {
            command: program.to_owned(),
            status,
        }),
    }
}

async fn run_local(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    ui: &Ui,
    cancel: &CancellationToken,
) -> Result<Option<i32>, local_process::Error> {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    local_process::run(&mut command, ui, cancel).await
}

/// Where `program` is: itself when it names a path, else its place on PATH.
fn find_command(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Secret;

    fn endpoint() -> Endpoint {
        Endpoint {
            kind: "ssh",
            host: "127.0.0.1".into(),
            port: 2222,
            user: "vagrant".into(),
            password: Some(Secret::new("vagrant")),
            private_key: None,
        }
    }

    fn config() -> Config {
        Config::with_defaults(PathBuf::from("/t/play.yml"))
    }

    #[test]
    fn inventory_has_the_host_its_groups_and_the_empty_groups() {
        let mut c = config();
        c.groups = vec!["web".into(), "db".into()];
        c.empty_groups = vec!["spare".into()];
        let text = inventory_text(&c, &endpoint(), "vagrant", &[]).unwrap();
        let host = "default ansible_host=127.0.0.1 ansible_user=vagrant ansible_port=2222\n";
        assert_eq!(text, format!("{host}[web]\n{host}[db]\n{host}[spare]\n"));
    }

    #[test]
    fn inventory_template_knows_the_host_and_build_values() {
        let mut c = config();
        c.host_alias = "box".into();
        c.inventory_file_template =
            Some("{{ .HostAlias }} ansible_host={{ .Host }} run={{ .PackerRunUUID }}\n".into());
        let data = [("PackerRunUUID".to_owned(), "r-1".to_owned())];
        assert_eq!(
            inventory_text(&c, &endpoint(), "u", &data).unwrap(),
            "box ansible_host=127.0.0.1 run=r-1\n"
        );
        c.inventory_file_template = Some("{{ .Nope }}".into());
        assert!(matches!(
            inventory_text(&c, &endpoint(), "u", &data),
            Err(Error::InventoryTemplate(_))
        ));
    }

    fn plan<'a>(key: Option<&'a Path>, password: Option<&'a Path>) -> Plan<'a> {
        Plan {
            build_vars: r#"{"packer_build_name":"b"}"#.into(),
            key_file: key,
            password_file: password,
            inventory: Path::new("/tmp/inv"),
            playbook: Path::new("/t/play.yml"),
        }
    }

    #[test]
    fn playbook_args_follow_packers_order() {
        let mut c = config();
        c.extra_arguments = vec!["-v".into(), "--tags=base".into()];
        let args = playbook_args(&c, &plan(Some(Path::new("/k/key")), None));
        assert_eq!(
            args,
            [
                "-e",
                r#"{"packer_build_name":"b"}"#,
                "--ssh-extra-args",
                "'-o IdentitiesOnly=yes'",
                "-v",
                "--tags=base",
                "-e",
                r#"{"ansible_ssh_private_key_file":"/k/key"}"#,
                "-i",
                "/tmp/inv",
                "/t/play.yml",
            ]
        );
        c.ssh_extra_args = vec!["-o A=1".into(), "-o B=2".into()];
        let args = playbook_args(&c, &plan(None, Some(Path::new("/k/pw.json"))));
        assert!(args.contains(&"'-o A=1' '-o B=2'".to_owned()), "{args:?}");
        assert!(args.contains(&"@/k/pw.json".to_owned()), "{args:?}");
        // The template's own `ansible_password` wins: kiln adds no credentials.
        c.extra_arguments = vec!["-e".into(), "ansible_password=x".into()];
        let args = playbook_args(&c, &plan(Some(Path::new("/k/key")), None));
        assert!(!args.iter().any(|a| a.contains("/k/key")), "{args:?}");
    }

    #[test]
    fn env_defaults_then_the_templates_values() {
        let get = |env: &[(String, String)], k: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let mut c = config();
        let env = env_vars(&c, Path::new("/r/cp"));
        assert_eq!(
            get(&env, "ANSIBLE_HOST_KEY_CHECKING").as_deref(),
            Some("False")
        );
        assert_eq!(get(&env, "ANSIBLE_PIPELINING").as_deref(), Some("True"));
        assert_eq!(
            get(&env, "ANSIBLE_SSH_CONTROL_PATH_DIR").as_deref(),
            Some("/r/cp")
        );
        assert!(get(&env, "ANSIBLE_SSH_COMMON_ARGS").is_some());
        assert!(get(&env, "ANSIBLE_SSH_TRANSFER_METHOD").is_none());
        c.use_sftp = true;
        c.ansible_env_vars = vec![
            ("ANSIBLE_HOST_KEY_CHECKING".into(), "True".into()),
            ("ANSIBLE_PIPELINING".into(), "False".into()),
        ];
        let env = env_vars(&c, Path::new("/r/cp"));
        assert_eq!(get(&env, "ANSIBLE_PIPELINING").as_deref(), Some("False"));
        assert_eq!(
            get(&env, "ANSIBLE_HOST_KEY_CHECKING").as_deref(),
            Some("True")
        );
        // Checking host keys against /dev/null would always fail.
        assert!(get(&env, "ANSIBLE_SSH_COMMON_ARGS").is_none());
        assert_eq!(
            get(&env, "ANSIBLE_SSH_TRANSFER_METHOD").as_deref(),
            Some("sftp")
        );
    }

    #[test]
    fn galaxy_runs_by_section() {
        let g = Galaxy {
            force: true,
            roles_path: Some("/r".into()),
            collections_path: Some("/c".into()),
            ..Galaxy::default()
        };
        let words = |runs: Vec<Vec<String>>| -> Vec<String> {
            runs.into_iter().map(|r| r.join(" ")).collect()
        };
        // The old form: a plain list of roles.
        assert_eq!(
            words(g.runs("- src: x\n", "req.yml")),
            ["install -r req.yml --force -p /r"]
        );
        assert_eq!(
            words(g.runs("roles:\n  - x\ncollections:\n  - y\n", "req.yml")),
            [
                "install -r req.yml --force -p /r",
                "collection install -r req.yml --force -p /c"
            ]
        );
        let g = Galaxy {
            force_with_deps: true,
            ..Galaxy::default()
        };
        assert_eq!(
            words(g.runs("collections:\n  - y\n", "q.yml")),
            ["collection install -r q.yml --force-with-deps"]
        );
    }

    #[test]
    fn commands_are_found_on_path_or_at_their_path() {
        assert!(find_command("sh").is_some());
        assert_eq!(find_command("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_command("kiln-no-such-command"), None);
        assert_eq!(find_command("/nonexistent/ansible-playbook"), None);
    }

    #[test]
    fn shown_command_is_quoted_and_hides_secrets() {
        let extra = vec!["--extra-vars".to_owned(), "db_password=hunter22".to_owned()];
        let mut args = extra.clone();
        args.push("/t/my play.yml".into());
        assert_eq!(
            display_command("ansible-playbook", &args, &extra),
            "ansible-playbook --extra-vars 'db_password=*****' '/t/my play.yml'"
        );
    }

    #[test]
    fn build_vars_are_json() {
        let build = BuildEnv {
            source: "qemu.x".into(),
            env: vec![
                ("PACKER_BUILD_NAME".into(), "my \"box\"".into()),
                ("PACKER_BUILDER_TYPE".into(), "qemu".into()),
                ("PACKER_HTTP_ADDR".into(), "10.0.2.2:8000".into()),
            ],
            data: Vec::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&build_vars(&build)).unwrap();
        assert_eq!(v["packer_build_name"], "my \"box\"");
        assert_eq!(v["packer_builder_type"], "qemu");
        assert_eq!(v["packer_http_addr"], "10.0.2.2:8000");
    }

    #[test]
    fn secrets_are_written_owner_only_and_removed_with_the_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = RunDir::new().unwrap();
        let key = dir.write_secret("key", "KEY TEXT").unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY TEXT");
        let parent = key.parent().unwrap().to_owned();
        assert_eq!(
            std::fs::metadata(&parent).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(dir);
        assert!(!parent.exists());
    }
}
