//! The container engine behind the docker builder, its communicator and the docker
//! post-processors: a docker-compatible command line, `docker` or `podman` (which takes the same
//! commands), found on PATH or given as a path (`docker_path`).
//!
//! Every command line comes from a pure function in [`argv`] (table-tested); [`Engine`] runs
//! them as child processes, killed when their future is dropped (Ctrl-C). Secrets never go on
//! a command line: a registry password is written to `login --password-stdin`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio_util::io::SyncIoBridge;
use tokio_util::sync::CancellationToken;

use crate::types::Secret;

/// Which engine answers: podman needs a few options docker does not (see [`argv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Docker,
    Podman,
}

impl Flavor {
    /// The flavor an engine's `--version` output names (`podman version 4.3.1`; anything else,
    /// such as `Docker version 20.10.24`, is docker).
    pub fn from_version(output: &str) -> Self {
        if output
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("podman")
        {
            Self::Podman
        } else {
            Self::Docker
        }
    }
}

/// A docker-compatible engine command, checked to run.
#[derive(Debug, Clone)]
pub struct Engine {
    /// As configured (`docker_path`): a name found on PATH, or a path.
    program: String,
    flavor: Flavor,
}

/// Why an engine command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine command does not exist.
    #[error("Cannot find the container engine `{program}`")]
    NotFound { program: String },
    /// The engine command could not be started.
    #[error("Cannot run the container engine `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The engine ran and failed; `stderr` is what it said.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    /// Feeding the engine or reading its output failed.
    #[error("Lost the output of `{command}`")]
    Pipe {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The engine's output could not be written to its file.
    #[error(transparent)]
    Write(crate::archive::Error),
    /// A local file could not be read or written.
    #[error("Cannot access `{}`", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine cannot do what the template asks (e.g. podman and `platform` on a push).
    #[error("`{program}` cannot {what}")]
    Unsupported { program: String, what: String },
}

/// The hint for an engine error, if kiln knows the fix.
pub fn hint(err: &Error) -> Option<String> {
    match err {
        Error::NotFound { .. } => Some(
            "install docker or podman (Debian: `apt-get install podman`), or set `docker_path` to the engine's command".into(),
        ),
        Error::Failed { stderr, .. } if stderr.contains("Cannot connect to the Docker daemon") => {
            Some("start the Docker daemon, or use podman, which needs none: `docker_path = \"podman\"`".into())
        }
        _ => None,
    }
}

/// Registry credentials (`login_server`, `login_username`, `login_password`).
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The registry; `None` is the engine's default (Docker Hub).
    pub server: Option<String>,
    pub username: String,
    pub password: Secret,
}

/// A private credential store for one login: a temporary directory, removed on drop. The
/// user's own credentials are neither used nor changed while it is in use.
pub struct Credentials {
    dir: tempfile::TempDir,
    server: Option<String>,
}

impl Credentials {
    /// Where the engine keeps these credentials (passed to [`argv`]'s `auth`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What an engine command reads on its standard input.
pub enum Input<'a> {
    Nothing,
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Engine {
    /// Finds `program` and asks it for its version, which also says whether it is podman.
    pub async fn detect(program: &str) -> Result<Self, Error> {
        let probe = Self {
            program: program.to_owned(),
            flavor: Flavor::Docker,
        };
        let version = probe.output(argv::version(), Input::Nothing).await?;
        tracing::debug!(program, version, "container engine");
        Ok(Self {
            flavor: Flavor::from_version(&version),
            ..probe
        })
    }

    /// The engine command as configured.
    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Starts the engine with `args` and the pipes `stdin`, `stdout` (standard error is
    /// piped, for [`finished`](Self::finished)); it is killed when dropped.
    pub fn spawn(
        &self,
        args: &[String],
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<tokio::process::Child, Error> {
        tracing::debug!(
            program = self.program,
            ?args,
            "running the container engine"
        );
        tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::NotFound {
                        program: self.program.clone(),
                    }
                } else {
                    Error::Spawn {
                        program: self.program.clone(),
                        source,
                    }
                }
            })
    }

    /// How the engine run with `args` ended (`wait_with_output`'s result): its standard output,
    /// or what it said on standard error when it failed.
    pub fn finished(
        &self,
        args: &[String],
        out: std::io::Result<std::process::Output>,
    ) -> Result<Vec<u8>, Error> {
        let out = out.map_err(|source| Error::Pipe {
            command: self.describe(args),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::Failed {
                command: self.describe(args),
                status: status_text(&out.status),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// `program` and its subcommand, for messages (never the whole line: it may name files
    /// or images the user does not need twice).
    fn describe(&self, args: &[String]) -> String {
        let mut rest = args.iter();
        let mut sub = None;
        while let Some(a) = rest.next() {
            if a == "--config" {
                rest.next();
            } else if !a.starts_with('-') {
                sub = Some(a.as_str());
                break;
            }
        }
        match sub {
            Some(sub) => format!("{} {sub}", self.program),
            None => self.program.clone(),
        }
    }

    /// Runs the engine with `args` and `input`; returns its standard output, trimmed.
    pub async fn output(&self, args: Vec<String>, input: Input<'_>) -> Result<String, Error> {
        let out = self.run(&args, input, Stdio::piped()).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Runs the engine with `args`, writing its standard output to `dest` the way every kiln
    /// artifact is written ([`crate::archive::write_atomically`]): under a temporary name,
    /// renamed only once the engine succeeded, removed when it fails or `cancel` fires.
    pub async fn output_to_file(
        &self,
        args: Vec<String>,
        dest: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| Error::Local {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        let mut child = self.spawn(&args, Stdio::null(), Stdio::piped())?;
        let stdout = child.stdout.take().map(SyncIoBridge::new);
        let (engine, dest, cancel) = (self.clone(), dest.to_owned(), cancel.clone());
        let runtime = tokio::runtime::Handle::current();
        let work = tokio::task::spawn_blocking(move || {
            let mut finished = None;
            let written = crate::archive::write_atomically(&dest, &cancel, |sink| {
                let mut out = stdout.ok_or(std::io::ErrorKind::BrokenPipe)?;
                let copied = std::io::copy(&mut out, sink);
                // Closed before waiting: an engine still writing (the copy stopped on Ctrl-C or
                // a full disk) gets a broken pipe instead of blocking.
                drop(out);
                // The file is kept only when the engine says it wrote all of it.
                let result = engine.finished(&args, runtime.block_on(child.wait_with_output()));
                // A failed write (Ctrl-C, a full disk) is the cause; the engine then only died
                // of the broken pipe.
                copied?;
                let failed = result.is_err();
                finished = Some(result);
                if failed {
                    return Err(std::io::Error::other("the engine failed"));
                }
                Ok(())
            });
            (finished, written)
        });
        let (finished, written) = work.await.map_err(|e| Error::Pipe {
            command: self.describe(&[]),
            source: std::io::Error::other(e),
        })?;
        if let Some(Err(e)) = finished {
            return Err(e);
        }
        written.map(drop).map_err(Error::Write)
    }

    /// Runs the engine; `stdout` is where its output goes (returned when piped).
    async fn run(
        &self,
        args: &[String],
        input: Input<'_>,
        stdout: Stdio,
    ) -> Result<Vec<u8>, Error> {
        let stdin = match input {
            Input::Nothing => Stdio::null(),
            Input::Bytes(_) => Stdio::piped(),
            Input::File(path) => {
                Stdio::from(std::fs::File::open(path).map_err(|source| Error::Local {
                    path: path.to_owned(),
                    source,
                })?)
            }
        };
        let mut child = self.spawn(args, stdin, stdout)?;
        if let (Input::Bytes(data), Some(mut pipe)) = (input, child.stdin.take()) {
            // An engine that exits early closes its end: its own error says why.
            let _ = pipe.write_all(data).await;
        }
        self.finished(args, child.wait_with_output().await)
    }

    /// Logs in to `login.server` with a private credential store; pass its
    /// [`path`](Credentials::path) to the commands that need it, then [`logout`](Self::logout).
    pub async fn login(&self, login: &Login) -> Result<Credentials, Error> {
        let dir = tempfile::Builder::new()
            .prefix("kiln-registry-auth-")
            .tempdir()
            .map_err(|source| Error::Local {
                path: std::env::temp_dir(),
                source,
            })?;
        let args = argv::login(
            self.flavor,
            login.server.as_deref(),
            &login.username,
            dir.path(),
        );
        let password = format!("{}\n", login.password.expose());
        self.output(args, Input::Bytes(password.as_bytes())).await?;
        Ok(Credentials {
            dir,
            server: login.server.clone(),
        })
    }

    /// Logs out of what [`login`](Self::login) logged in to and removes the store.
    pub async fn logout(&self, creds: Credentials) -> Result<(), Error> {
        let args = argv::logout(self.flavor, creds.server.as_deref(), creds.path());
        self.output(args, Input::Nothing).await.map(drop)
    }
}

/// How a process ended, for messages.
pub fn status_text(status: &std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    }
}

/// The `KEY VALUE` or `KEY=VALUE …` arguments of a Dockerfile `ENV` or `LABEL`, as Docker reads
/// them: quotes (`"…"`, `'…'`) group and are removed, a backslash outside single quotes keeps
/// the next character.
fn dockerfile_pairs(args: &str) -> Vec<(String, String)> {
    let words = dockerfile_words(args, true);
    match words.first() {
        // The old form: the first word is the key, the rest (spaces kept) the value.
        Some(first) if !first.contains('=') => {
            let rest = args[args.find(char::is_whitespace).unwrap_or(args.len())..].trim();
            let value = dockerfile_words(rest, false).concat();
            vec![(first.clone(), value)]
        }
        _ => words
            .iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (w.clone(), String::new()),
            })
            .collect(),
    }
}

/// `text` unquoted, split at unquoted whitespace when `split`.
fn dockerfile_words(text: &str, split: bool) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (Some('"') | None, '\\') => word.extend(chars.next()),
            (None, c) if split && c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// What `run` starts a build container with (the docker builder's options).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    /// `device`.
    pub devices: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `runtime`.
    pub runtime: Option<String>,
    pub platform: Option<String>,
    pub tmpfs: Vec<String>,
    /// `volumes` as (host path, container path), in order.
    pub volumes: Vec<(String, String)>,
}

/// The engine's command lines. Options every engine takes are written as docker does; podman
/// gets its own where it differs (`--format docker` for commit, `--authfile`, import's platform).
pub mod argv {
    use std::path::Path;

    use super::{Flavor, RunOptions};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Docker names a credential directory before the subcommand (`--config DIR`), podman a
    /// file after it (`--authfile DIR/auth.json`).
    fn with_auth(flavor: Flavor, auth: Option<&Path>, sub: &str, rest: Vec<String>) -> Vec<String> {
        let mut args = Vec::new();
        match (flavor, auth) {
            (Flavor::Docker, Some(dir)) => {
                args.extend(["--config".to_owned(), dir.display().to_string(), sub.into()]);
            }
            (Flavor::Podman, Some(dir)) => {
                let file = dir.join("auth.json").display().to_string();
                args.extend([sub.to_owned(), "--authfile".into(), file]);
            }
            (_, None) => args.push(sub.to_owned()),
        }
        args.extend(rest);
        args
    }

    pub fn version() -> Vec<String> {
        strings(&["--version"])
    }

    pub fn login(flavor: Flavor, server: Option<&str>, user: &str, auth: &Path) -> Vec<String> {
        let mut rest = strings(&["--username", user, "--password-stdin"]);
        rest.extend(server.map(str::to_owned));
        with_auth(flavor, Some(auth), "login", rest)
    }

    pub fn logout(flavor: Flavor, server: Option<&str>, auth: &Path) -> Vec<String> {
        with_auth(
            flavor,
            Some(auth),
            "logout",
            server.map(str::to_owned).into_iter().collect(),
        )
    }

    /// `pull` or `push` of `name`, for one platform, with credentials.
    fn transfer(
        flavor: Flavor,
        sub: &str,
        name: &str,
        platform: Option<&str>,
        auth: Option<&Path>,
    ) -> Vec<String> {
        let mut rest = Vec::new();
        if let Some(p) = platform {
            rest.extend(["--platform".to_owned(), p.to_owned()]);
        }
        rest.push(name.to_owned());
        with_auth(flavor, auth, sub, rest)
    }

    pub fn pull(
        flavor: Flavor,
        image: &str,
        platform: Option<&str>,
        auth: Option<&Path>,
    ) -> Vec<String> {
        transfer(flavor, "pull", image, platform, auth)
    }

    /// `run` with the options, then `run_command` (already rendered: it names the image).
    pub fn run(o: &RunOptions, run_command: &[String]) -> Vec<String> {
        let mut args = strings(&["run"]);
        let mut each = |flag: &str, values: &[String]| {
            for v in values {
                args.extend([flag.to_owned(), v.clone()]);
            }
        };
        each("--device", &o.devices);
        each("--cap-add", &o.cap_add);
        each("--cap-drop", &o.cap_drop);
        if o.privileged {
            args.push("--privileged".into());
        }
        if let Some(r) = &o.runtime {
            args.extend(["--runtime".into(), r.clone()]);
        }
        if let Some(p) = &o.platform {
            args.extend(["--platform".into(), p.clone()]);
        }
        for t in &o.tmpfs {
            args.extend(["--tmpfs".into(), t.clone()]);
        }
        for (host, guest) in &o.volumes {
            args.extend(["-v".into(), format!("{host}:{guest}")]);
        }
        args.extend(run_command.iter().cloned());
        args
    }

    /// The user the container runs as (empty: the image's default, root).
    pub fn container_user(container: &str) -> Vec<String> {
        strings(&["inspect", "--format", "{{.Config.User}}", container])
    }

    /// The image's configuration as JSON (`Cmd`, `Entrypoint`, …).
    pub fn image_config(image: &str) -> Vec<String> {
        strings(&["image", "inspect", "--format", "{{json .Config}}", image])
    }

    /// Runs `command` through `/bin/sh -c` in the container, as Packer's docker communicator
    /// does (`(command)`, standard input kept open with `-i`).
    pub fn exec(container: &str, user: Option<&str>, pty: bool, command: &str) -> Vec<String> {
        let mut args = strings(&["exec", "-i"]);
        if pty {
            args.push("-t".into());
        }
        if let Some(u) = user {
            args.extend(["-u".into(), u.to_owned()]);
        }
        args.extend([
            container.to_owned(),
            "/bin/sh".into(),
            "-c".into(),
            format!("({command})"),
        ]);
        args
    }

    /// Runs a shell command as root in the container (owner fixes, directories).
    pub fn exec_as_root(container: &str, command: &str) -> Vec<String> {
        strings(&[
            "exec", "--user", "root", container, "/bin/sh", "-c", command,
        ])
    }

    /// Unpacks a tar stream read from standard input into the container's directory `dir`.
    pub fn copy_in(container: &str, dir: &str) -> Vec<String> {
        vec!["cp".into(), "-".into(), format!("{container}:{dir}")]
    }

    /// Writes `path` of the container to standard output as a tar stream.
    pub fn copy_out(container: &str, path: &str) -> Vec<String> {
        vec!["cp".into(), format!("{container}:{path}"), "-".into()]
    }

    /// `changes` as the engine reads them. Docker parses `ENV` and `LABEL` as a Dockerfile
    /// does (`KEY VALUE`, or `KEY=VALUE …` with quotes); podman 4 takes one `KEY=VALUE`, the
    /// value as written. For podman each pair is written as its own change, unquoted.
    fn changes_for(flavor: Flavor, changes: &[String]) -> Vec<String> {
        if flavor == Flavor::Docker {
            return changes.to_vec();
        }
        let mut out = Vec::new();
        for change in changes {
            let trimmed = change.trim_start();
            let (word, rest) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            let instruction = word.to_ascii_uppercase();
            if !matches!(instruction.as_str(), "ENV" | "LABEL") {
                out.push(change.clone());
                continue;
            }
            let pairs = super::dockerfile_pairs(rest.trim());
            out.extend(
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{instruction} {k}={v}")),
            );
        }
        out
    }

    /// Commits the container as an image with `changes`. Podman writes the Docker image format,
    /// as docker does: OCI images drop `ONBUILD` and the message.
    pub fn commit(
        flavor: Flavor,
        container: &str,
        author: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Vec<String> {
        let mut args = strings(&["commit"]);
        if flavor == Flavor::Podman {
            args.extend(["--format".into(), "docker".into()]);
        }
        if let Some(a) = author {
            args.extend(["--author".into(), a.to_owned()]);
        }
        for c in changes_for(flavor, changes) {
            args.extend(["--change".into(), c]);
        }
        if let Some(m) = message {
            args.extend(["--message".into(), m.to_owned()]);
        }
        args.push(container.to_owned());
        args
    }

    /// The container's filesystem as a tar stream on standard output.
    pub fn export(container: &str) -> Vec<String> {
        strings(&["export", container])
    }

    pub fn kill(container: &str) -> Vec<String> {
        strings(&["kill", container])
    }

    pub fn remove_container(container: &str) -> Vec<String> {
        strings(&["rm", container])
    }

    /// Imports a filesystem tar read from standard input as `repository`. Docker takes
    /// `--platform OS/ARCH[/VARIANT]`; podman takes the parts as `--os`, `--arch`, `--variant`.
    pub fn import(
        flavor: Flavor,
        repository: &str,
        changes: &[String],
        platform: Option<&str>,
    ) -> Vec<String> {
        let mut args = strings(&["import"]);
        for c in changes_for(flavor, changes) {
            args.extend(["--change".into(), c]);
        }
        match (flavor, platform) {
            (_, None) => {}
            (Flavor::Docker, Some(p)) => args.extend(["--platform".into(), p.to_owned()]),
            (Flavor::Podman, Some(p)) => {
                for (flag, part) in ["--os", "--arch", "--variant"].iter().zip(p.split('/')) {
                    args.extend([(*flag).to_owned(), part.to_owned()]);
                }
            }
        }
        args.extend(["-".into(), repository.to_owned()]);
        args
    }

    pub fn tag(image: &str, name: &str) -> Vec<String> {
        strings(&["tag", image, name])
    }

    pub fn push(
        flavor: Flavor,
        name: &str,
        platform: Option<&str>,
        auth: Option<&Path>,
    ) -> Vec<String> {
        transfer(flavor, "push", name, platform, auth)
    }

    /// The image as a tar archive on standard output.
    pub fn save(image: &str) -> Vec<String> {
        strings(&["save", image])
    }

    pub fn remove_image(image: &str) -> Vec<String> {
        strings(&["rmi", image])
    }

    #[cfg(test)]
    mod tests {
        use std::path::Path;

        use super::*;

        fn line(args: Vec<String>) -> String {
            args.join(" ")
        }

        #[test]
        fn argv_cases() {
            let dir = Path::new("/tmp/auth");
            let all = RunOptions {
                devices: vec!["/dev/fuse".into()],
                cap_add: vec!["SYS_ADMIN".into()],
                cap_drop: vec!["NET_RAW".into()],
                privileged: true,
                runtime: Some("runc".into()),
                platform: Some("linux/amd64".into()),
                tmpfs: vec!["/run".into()],
                volumes: vec![("/h".into(), "/c".into())],
            };
            let default_run: Vec<String> = ["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "img"]
                .map(String::from)
                .to_vec();
            let changes = vec!["CMD [\"x\"]".to_owned(), "ENV A=b".to_owned()];
            let cases = [
                ("version", version(), "--version"),
                (
                    "run with defaults",
                    run(&RunOptions::default(), &default_run),
                    "run -d -i -t --entrypoint=/bin/sh -- img",
                ),
                (
                    "run with every option, in docker's order",
                    run(&all, &default_run),
                    "run --device /dev/fuse --cap-add SYS_ADMIN --cap-drop NET_RAW --privileged \
                     --runtime runc --platform linux/amd64 --tmpfs /run -v /h:/c \
                     -d -i -t --entrypoint=/bin/sh -- img",
                ),
                (
                    "exec as Packer does",
                    exec("c1", None, false, "echo hi"),
                    "exec -i c1 /bin/sh -c (echo hi)",
                ),
                (
                    "exec as a user with a pty",
                    exec("c1", Some("app:app"), true, "id"),
                    "exec -i -t -u app:app c1 /bin/sh -c (id)",
                ),
                (
                    "root exec",
                    exec_as_root("c1", "chown -R app '/x'"),
                    "exec --user root c1 /bin/sh -c chown -R app '/x'",
                ),
                ("copy in", copy_in("c1", "/tmp"), "cp - c1:/tmp"),
                (
                    "copy out",
                    copy_out("c1", "/etc/os-release"),
                    "cp c1:/etc/os-release -",
                ),
                (
                    "docker commit",
                    commit(Flavor::Docker, "c1", Some("me"), &changes, Some("msg")),
                    "commit --author me --change CMD [\"x\"] --change ENV A=b --message msg c1",
                ),
                (
                    "podman commit writes docker's format",
                    commit(Flavor::Podman, "c1", None, &[], None),
                    "commit --format docker c1",
                ),
                (
                    "podman gets ENV and LABEL as one unquoted KEY=VALUE each",
                    commit(
                        Flavor::Podman,
                        "c1",
                        None,
                        &[
                            "ENV HOSTNAME www.example.com".to_owned(),
                            r#"env A="x y" B=2 C=a\ b"#.to_owned(),
                            "LABEL version=1.0".to_owned(),
                            r#"LABEL k 'v w'"#.to_owned(),
                            "USER app".to_owned(),
                        ],
                        None,
                    ),
                    "commit --format docker --change ENV HOSTNAME=www.example.com \
                     --change ENV A=x y --change ENV B=2 --change ENV C=a b \
                     --change LABEL version=1.0 --change LABEL k=v w --change USER app c1",
                ),
                ("export", export("c1"), "export c1"),
                (
                    "docker import",
                    import(Flavor::Docker, "r:1", &changes[..1], Some("linux/arm64/v8")),
                    "import --change CMD [\"x\"] --platform linux/arm64/v8 - r:1",
                ),
                (
                    "podman import splits the platform",
                    import(Flavor::Podman, "r", &[], Some("linux/arm64/v8")),
                    "import --os linux --arch arm64 --variant v8 - r",
                ),
                (
                    "pull with a platform",
                    pull(Flavor::Docker, "debian:12", Some("linux/amd64"), None),
                    "pull --platform linux/amd64 debian:12",
                ),
                (
                    "docker keeps credentials in a config directory",
                    push(Flavor::Docker, "r:1", None, Some(dir)),
                    "--config /tmp/auth push r:1",
                ),
                (
                    "podman in an auth file",
                    push(Flavor::Podman, "r:1", None, Some(dir)),
                    "push --authfile /tmp/auth/auth.json r:1",
                ),
                (
                    "login reads the password from stdin",
                    login(Flavor::Docker, Some("reg:5000"), "u", dir),
                    "--config /tmp/auth login --username u --password-stdin reg:5000",
                ),
                (
                    "logout of the default registry",
                    logout(Flavor::Podman, None, dir),
                    "logout --authfile /tmp/auth/auth.json",
                ),
                ("tag", tag("sha256:1", "r:2"), "tag sha256:1 r:2"),
                ("save", save("r:2"), "save r:2"),
                ("rmi", remove_image("r:2"), "rmi r:2"),
                ("kill", kill("c1"), "kill c1"),
                ("rm", remove_container("c1"), "rm c1"),
                (
                    "user",
                    container_user("c1"),
                    "inspect --format {{.Config.User}} c1",
                ),
                (
                    "image config",
                    image_config("img"),
                    "image inspect --format {{json .Config}} img",
                ),
            ];
            for (reason, got, want) in cases {
                assert_eq!(line(got), want, "{reason}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_from_version_output() {
        let cases = [
            ("podman version 4.3.1\n", Flavor::Podman),
            (
                "Docker version 20.10.24+dfsg1, build 297e128",
                Flavor::Docker,
            ),
            ("nerdctl version 1.7.0", Flavor::Docker),
        ];
        for (output, want) in cases {
            assert_eq!(Flavor::from_version(output), want, "{output}");
        }
    }

    #[tokio::test]
    async fn a_missing_engine_is_not_found_with_a_hint() {
        let err = Engine::detect("kiln-no-such-engine")
            .await
            .expect_err("not installed");
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert!(hint(&err).is_some_and(|h| h.contains("docker_path")));
    }

    #[tokio::test]
    async fn failures_carry_the_engine_stderr_and_files_appear_only_on_success() {
        // `sh` stands in for an engine: `-c SCRIPT` are its "arguments".
        let sh = Engine {
            program: "sh".into(),
            flavor: Flavor::Docker,
        };
        let args = |s: &str| vec!["-c".to_owned(), s.to_owned()];
        let out = sh
            .output(args("cat; echo out"), Input::Bytes(b"in "))
            .await
            .expect("runs");
        assert_eq!(out, "in out");
        let err = sh
            .output(args("echo nope >&2; exit 3"), Input::Nothing)
            .await
            .expect_err("fails");
        assert!(
            err.to_string().ends_with("failed (exit status 3): nope"),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("sub/out.tar");
        let cancel = CancellationToken::new();
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(&dest, "old\n").expect("write");
        let err = sh
            .output_to_file(args("echo partial; exit 1"), &dest, &cancel)
            .await
            .expect_err("fails");
        assert!(matches!(err, Error::Failed { .. }), "{err:?}");
        assert_eq!(
            std::fs::read_to_string(&dest).expect("read"),
            "old\n",
            "a failed export leaves the old file"
        );
        sh.output_to_file(args("echo whole"), &dest, &cancel)
            .await
            .expect("writes");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "whole\n");
        let left: Vec<_> = std::fs::read_dir(dest.parent().expect("dir"))
            .expect("list")
            .collect();
        assert_eq!(left.len(), 1, "no temporary file is left beside it");

        // Ctrl-C during an endless export: stopped, nothing written, nothing left.
        let endless = dir.path().join("endless.tar");
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            stop.cancel();
        });
        let err = sh
            .output_to_file(args("yes"), &endless, &cancel)
            .await
            .expect_err("cancelled");
        assert!(
            matches!(err, Error::Write(crate::archive::Error::Cancelled { .. })),
            "{err:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["sub"], "no file, no temporary file");
    }
}
