//! The `ansible-local` provisioner: uploads the playbook (a file, files, or a whole directory),
//! roles, collections, group and host variables, the inventory and the galaxy file into a
//! staging directory on the machine, then runs `ansible-playbook -c local` there, as Packer
//! does. Ansible must already be installed on the machine.

use std::path::{Path, PathBuf};

use super::ansible::{self, Galaxy};
use super::{BuildEnv, shell};
use crate::communicator::{self, Communicator, sh_quote};
use crate::ui::Ui;

/// Where the staging directory goes by default (a fresh UUID below it), as in Packer.
pub const DEFAULT_STAGING_PARENT: &str = "/tmp/packer-provisioner-ansible-local";

/// Packer's default `command`: a shell fragment run in the staging directory.
pub const DEFAULT_COMMAND: &str = "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook";

/// Which playbooks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playbooks {
    /// `playbook_file`: uploaded into the staging directory.
    File(PathBuf),
    /// `playbook_files`, run in order: those inside `playbook_dir` are run from there, the
    /// others uploaded below the staging directory at their local (absolute) path.
    Files(Vec<PathBuf>),
}

/// A validated `provisioner "ansible-local"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub playbooks: Playbooks,
    /// `playbook_dir`: a local directory uploaded as the staging directory first.
    pub playbook_dir: Option<PathBuf>,
    /// `playbook_paths`: directories uploaded to `STAGING/playbooks/NAME`.
    pub playbook_paths: Vec<PathBuf>,
    /// `role_paths`: directories uploaded to `STAGING/roles/NAME`.
    pub role_paths: Vec<PathBuf>,
    /// `collection_paths`: directories uploaded to `STAGING/collections/NAME`.
    pub collection_paths: Vec<PathBuf>,
    /// `group_vars`: a directory uploaded to `STAGING/group_vars`.
    pub group_vars: Option<PathBuf>,
    /// `host_vars`: a directory uploaded to `STAGING/host_vars`.
    pub host_vars: Option<PathBuf>,
    /// `inventory_file`: uploaded and used instead of the made one (`127.0.0.1`).
    pub inventory_file: Option<PathBuf>,
    /// `inventory_groups`: groups the made inventory puts `127.0.0.1` in.
    pub inventory_groups: Vec<String>,
    /// `extra_arguments`: joined with spaces into the command line, unquoted, as Packer does.
    pub extra_arguments: Vec<String>,
    /// `command` (default [`DEFAULT_COMMAND`]): run through the remote shell.
    pub command: String,
    /// `staging_directory` (default `DEFAULT_STAGING_PARENT/UUID`).
    pub staging_directory: Option<String>,
    /// `clean_staging_directory`: remove it after a successful run.
    pub clean_staging_directory: bool,
    /// `galaxy_file`, `galaxy_command`, `galaxy_force_install`, `galaxy_roles_path` and
    /// `galaxy_collections_path` (remote paths; default `STAGING/galaxy_roles` and
    /// `STAGING/galaxy_collections`).
    pub galaxy: Galaxy,
}

impl Config {
    /// A config with Packer's defaults for everything but the playbooks.
    pub fn with_defaults(playbooks: Playbooks) -> Self {
        Self {
            playbooks,
            playbook_dir: None,
            playbook_paths: Vec::new(),
            role_paths: Vec::new(),
            collection_paths: Vec::new(),
            group_vars: None,
            host_vars: None,
            inventory_file: None,
            inventory_groups: Vec::new(),
            extra_arguments: Vec::new(),
            command: DEFAULT_COMMAND.into(),
            staging_directory: None,
            clean_staging_directory: false,
            galaxy: Galaxy::default(),
        }
    }
}

/// Why `ansible-local` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be run on the machine.
    #[error("Cannot run `{command}` on the machine")]
    Exec {
        command: String,
        #[source]
        source: communicator::Error,
    },
    /// A command failed on the machine.
    #[error("`{command}` exited with status {status} on the machine")]
    Status { command: String, status: u32 },
    /// The shell did not find Ansible on the machine.
    #[error(
        "`{command}` was not found on the machine: ansible-local runs Ansible there, so install it first (e.g. with a `shell` provisioner)"
    )]
    NotFound { command: String },
    /// A file or directory could not be uploaded.
    #[error("Cannot upload `{}` to `{remote}`", local.display())]
    Upload {
        local: PathBuf,
        remote: String,
        #[source]
        source: communicator::Error,
    },
    /// The galaxy file could not be read here.
    #[error("Cannot read the galaxy file `{}`", path.display())]
    ReadGalaxyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Uploads what `config` names into the staging directory on `comm` and runs each playbook.
pub async fn run(
    config: &Config,
    comm: &dyn Communicator,
    build: &BuildEnv,
    ui: &Ui,
) -> Result<(), Error> {
    ui.say("Provisioning with Ansible...");
    let staging = config.staging_directory.clone().unwrap_or_else(|| {
        format!(
            "{DEFAULT_STAGING_PARENT}/{}",
            crate::types::uuid_text(rand::random(), 4)
        )
    });
    let remote = Remote { comm, ui };
    let at = |rel: &str| format!("{}/{rel}", staging.trim_end_matches('/'));
    match &config.playbook_dir {
        Some(dir) => {
            ui.message("Uploading the playbook directory to the staging directory...");
            remote.upload_dir(dir, &staging).await?;
        }
        None => remote.mkdir(&staging).await?,
    }
    let playbooks: Vec<String> = match &config.playbooks {
        Playbooks::File(file) => {
            let dst = at(&base_name(file));
            remote.upload_file(file, &dst).await?;
            vec![dst]
        }
        Playbooks::Files(files) => {
            let mut out = Vec::new();
            for file in files {
                let file_abs = absolute(file);
                let inside = config.playbook_dir.as_ref().and_then(|dir| {
                    file_abs
                        .strip_prefix(absolute(dir))
                        .ok()
                        .map(|rel| rel.to_string_lossy().into_owned())
                });
                match inside {
                    Some(rel) => out.push(at(&rel)),
                    None => {
                        let dst = at(file_abs.to_string_lossy().trim_start_matches('/'));
                        if let Some((dir, _)) = dst.rsplit_once('/') {
                            remote.mkdir(dir).await?;
                        }
                        remote.upload_file(file, &dst).await?;
                        out.push(dst);
                    }
                }
            }
            out
        }
    };

    let inventory = match &config.inventory_file {
        Some(file) => {
            let dst = at(&base_name(file));
            remote.upload_file(file, &dst).await?;
            dst
        }
        None => {
            let dst = at(&format!(
                "packer-provisioner-ansible-local{}",
                rand::random_range(0..1_000_000_000u32)
            ));
            let text = inventory_text(&config.inventory_groups);
            comm.upload(&dst, text.as_bytes(), 0o644)
                .await
                .map_err(|source| Error::Upload {
                    local: PathBuf::from("(inventory)"),
                    remote: dst.clone(),
                    source,
                })?;
            dst
        }
    };
    let galaxy_text = match &config.galaxy.file {
        Some(file) => {
            remote.upload_file(file, &at(&base_name(file))).await?;
            Some(
                std::fs::read_to_string(file).map_err(|source| Error::ReadGalaxyFile {
                    path: file.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    for (dir, name) in [
        (&config.group_vars, "group_vars"),
        (&config.host_vars, "host_vars"),
    ] {
        if let Some(dir) = dir {
            remote.upload_dir(dir, &at(name)).await?;
        }
    }
    for (dirs, parent) in [
        (&config.role_paths, "roles"),
        (&config.collection_paths, "collections"),
        (&config.playbook_paths, "playbooks"),
    ] {
        for dir in dirs {
            remote
                .upload_dir(dir, &at(&format!("{parent}/{}", base_name(dir))))
                .await?;
        }
    }

    // Galaxy installs into the staging directory unless told otherwise.
    let galaxy = Galaxy {
        roles_path: Some(
            config
                .galaxy
                .roles_path
                .clone()
                .unwrap_or_else(|| at("galaxy_roles")),
        ),
        collections_path: Some(
            config
                .galaxy
                .collections_path
                .clone()
                .unwrap_or_else(|| at("galaxy_collections")),
        ),
        ..config.galaxy.clone()
    };
    let mut env = String::new();
    if let (Some(text), Some(file)) = (&galaxy_text, &galaxy.file) {
        let runs = galaxy.runs(text, &at(&base_name(file)));
        for args in &runs {
            let words: Vec<String> = args.iter().map(|a| ansible::shell_word(a)).collect();
            let command = format!(
                "cd {} && {} {}",
                sh_quote(&staging),
                galaxy.command,
                words.join(" ")
            );
            ui.say(format!("Executing Ansible Galaxy: {command}"));
            remote.run(&command, &galaxy.command).await?;
        }
        env = search_paths(&runs, &galaxy, !config.collection_paths.is_empty(), &at);
    } else if !config.collection_paths.is_empty() {
        env = search_paths(&[], &galaxy, true, &at);
    }

    let extra_vars = sh_quote(&ansible::build_vars(build));
    for playbook in &playbooks {
        let mut command = format!(
            "cd {} && {env}{} {} --extra-vars {extra_vars}",
            sh_quote(&staging),
            config.command,
            sh_quote(playbook),
        );
        if !config.extra_arguments.is_empty() {
            command.push(' ');
            command.push_str(&config.extra_arguments.join(" "));
        }
        command.push_str(&format!(" -c local -i {}", sh_quote(&inventory)));
        ui.say(format!("Executing Ansible: {command}"));
        remote.run(&command, &config.command).await?;
    }

    if config.clean_staging_directory {
        ui.message(format!("Removing the staging directory {staging}"));
        let command = format!("rm -rf {}", sh_quote(&staging));
        remote.run(&command, &command).await?;
    }
    Ok(())
}

/// The made inventory: `127.0.0.1`, in each of `groups` when there are any.
fn inventory_text(groups: &[String]) -> String {
    if groups.is_empty() {
        return "127.0.0.1\n".into();
    }
    groups
        .iter()
        .map(|g| format!("[{g}]\n127.0.0.1\n"))
        .collect()
}

/// `ANSIBLE_ROLES_PATH=… ANSIBLE_COLLECTIONS_PATH=… ` (each kept when Ansible's own value is
/// set) for what `galaxy_runs` installed and the uploaded `collection_paths`.
fn search_paths(
    galaxy_runs: &[Vec<String>],
    galaxy: &Galaxy,
    uploaded_collections: bool,
    at: &dyn Fn(&str) -> String,
) -> String {
    let installed = |first: &str| galaxy_runs.iter().any(|r| r[0] == first);
    let mut env = String::new();
    if installed("install")
        && let Some(roles) = &galaxy.roles_path
    {
        env.push_str(&format!(
            "ANSIBLE_ROLES_PATH=\"${{ANSIBLE_ROLES_PATH:+$ANSIBLE_ROLES_PATH:}}\"{} ",
            sh_quote(roles)
        ));
    }
    let mut collections = Vec::new();
    if installed("collection")
        && let Some(path) = &galaxy.collections_path
    {
        collections.push(path.clone());
    }
    if uploaded_collections {
        collections.push(at("collections"));
    }
    if !collections.is_empty() {
        env.push_str(&format!(
            "ANSIBLE_COLLECTIONS_PATH=\"${{ANSIBLE_COLLECTIONS_PATH:+$ANSIBLE_COLLECTIONS_PATH:}}\"{} ",
            sh_quote(&collections.join(":"))
        ));
    }
    env
}

/// The machine, as the uploads and commands of one run see it.
struct Remote<'a> {
    comm: &'a dyn Communicator,
    ui: &'a Ui,
}

impl Remote<'_> {
    /// Runs `command`, its output shown; `program` names what failed when the shell cannot
    /// find it (status 127).
    async fn run(&self, command: &str, program: &str) -> Result<(), Error> {
        let status = shell::exec_shown(self.comm, command, self.ui)
            .await
            .map_err(|source| Error::Exec {
                command: command.to_owned(),
                source,
            })?;
        match status {
            0 => Ok(()),
            127 => Err(Error::NotFound {
                command: program.to_owned(),
            }),
            status => Err(Error::Status {
                command: command.to_owned(),
                status,
            }),
        }
    }

    async fn mkdir(&self, dir: &str) -> Result<(), Error> {
        self.run(&format!("mkdir -p {}", sh_quote(dir)), "mkdir")
            .await
    }

    async fn upload_file(&self, local: &Path, remote: &str) -> Result<(), Error> {
        self.ui
            .message(format!("Uploading {} to {remote}", local.display()));
        self.comm
            .upload_file(remote, local, 0o644)
            .await
            .map_err(|source| Error::Upload {
                local: local.to_owned(),
                remote: remote.to_owned(),
                source,
            })
    }

    async fn upload_dir(&self, local: &Path, remote: &str) -> Result<(), Error> {
        self.ui.message(format!(
            "Uploading directory {} to {remote}",
            local.display()
        ));
        self.comm
            .upload_dir(remote, local)
            .await
            .map_err(|source| Error::Upload {
                local: local.to_owned(),
                remote: remote.to_owned(),
                source,
            })
    }
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_inventory() {
        assert_eq!(inventory_text(&[]), "127.0.0.1\n");
        assert_eq!(
            inventory_text(&["a".into(), "b".into()]),
            "[a]\n127.0.0.1\n[b]\n127.0.0.1\n"
        );
    }

    #[test]
    fn search_paths_name_what_was_installed_or_uploaded() {
        let at = |rel: &str| format!("/s/{rel}");
        let galaxy = Galaxy {
            roles_path: Some("/s/galaxy_roles".into()),
            collections_path: Some("/s/galaxy_collections".into()),
            ..Galaxy::default()
        };
        let runs = galaxy.runs("roles:\ncollections:\n", "/s/req.yml");
        assert_eq!(
            search_paths(&runs, &galaxy, true, &at),
            "ANSIBLE_ROLES_PATH=\"${ANSIBLE_ROLES_PATH:+$ANSIBLE_ROLES_PATH:}\"'/s/galaxy_roles' \
             ANSIBLE_COLLECTIONS_PATH=\"${ANSIBLE_COLLECTIONS_PATH:+$ANSIBLE_COLLECTIONS_PATH:}\"'/s/galaxy_collections:/s/collections' "
        );
        assert_eq!(search_paths(&[], &galaxy, false, &at), "");
    }
}
