//! Issue 16: the docker builder and post-processors against a real engine — podman with runc
//! (this kernel's hybrid cgroups stop crun), cgroupfs and file locks, its storage and
//! configuration under `target/tmp/kiln-podman` (nothing global changes). The base image is
//! made once per content from Debian's busybox-static with `podman import`; pushes go to a
//! `docker-registry` each test starts on 127.0.0.1 and stops.
//!
//! These tests need podman, runc and docker-registry (scripts/test.sh installs them) and fail
//! when they are missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

/// The user the base image has besides root (for `fix_upload_owner`).
const APP_UID: u32 = 1000;

/// Where the tests' podman keeps everything.
fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-podman")
}

/// The engine's configuration: runc, cgroupfs, file locks and events, no network namespace
/// setup, limits below this machine's (runc may not raise them without CAP_SYS_RESOURCE).
fn containers_conf(root: &Path) -> String {
    let r = root.display();
    format!(
        r#"[containers]
netns = "none"
cgroupns = "host"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
lock_type = "file"
events_logger = "file"
events_logfile_path = "{r}/events.log"
tmp_dir = "{r}/tmp"
static_dir = "{r}/libpod"
volume_path = "{r}/volumes"
"#
    )
}

/// A test's view of the engine: the shared storage, and its own registry settings and
/// credential file.
struct Engine {
    env: Vec<(&'static str, OsString)>,
    /// The test's credential file (it must stay `{}`: kiln logs in with a private one).
    auth: PathBuf,
}

impl Engine {
    /// The engine for a test working in `dir`; `insecure` is a registry on 127.0.0.1 it may
    /// reach over plain HTTP.
    fn new(dir: &Path, insecure: Option<u16>) -> Self {
        Self::with_root(shared(), dir, insecure)
    }

    fn with_root(shared: &Path, dir: &Path, insecure: Option<u16>) -> Self {
        let registries = dir.join("registries.conf");
        let mut text = "unqualified-search-registries = []\n".to_owned();
        if let Some(port) = insecure {
            text.push_str(&format!(
                "[[registry]]\nlocation = \"127.0.0.1:{port}\"\ninsecure = true\n"
            ));
        }
        std::fs::write(&registries, text).unwrap();
        let auth = dir.join("auth.json");
        std::fs::write(&auth, "{}").unwrap();
        let env = vec![
            ("CONTAINERS_CONF", shared.join("containers.conf").into()),
            (
                "CONTAINERS_STORAGE_CONF",
                shared.join("storage.conf").into(),
            ),
            ("CONTAINERS_REGISTRIES_CONF", registries.into()),
            ("REGISTRY_AUTH_FILE", auth.clone().into()),
        ];
        Self { env, auth }
    }

    fn podman(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("podman");
        cmd.args(args).envs(self.env.iter().cloned());
        cmd.output().unwrap()
    }

    /// `podman ARGS`, which must succeed; its stdout, trimmed.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert_ok(&out, &format!("podman {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn exists(&self, what: &str, name: &str) -> bool {
        self.podman(&[what, "exists", name]).status.success()
    }

    /// Runs `image` with its own CMD; returns what it printed and its exit code. (Not an
    /// attached `run`, `wait` or `logs -f`: they wait for the engine's monitor process, which
    /// only this machine's init reaps, 20 s to minutes later. The state is polled instead.)
    fn run_image(&self, image: &str) -> (String, String) {
        let id = self.ok(&["run", "-d", image]);
        let state = |field: &str| self.ok(&["inspect", "--format", field, &id]);
        // `stopped` until the engine's cleanup has run: the process has exited either way.
        let exited = eventually(Duration::from_secs(60), || {
            matches!(state("{{.State.Status}}").as_str(), "stopped" | "exited")
        });
        assert!(exited, "the container of {image} did not exit");
        let logs = self.ok(&["logs", &id]);
        let code = state("{{.State.ExitCode}}");
        self.ok(&["rm", &id]);
        (logs, code)
    }

    /// `kiln build TEMPLATE` in `dir` with this engine.
    fn kiln_build(&self, dir: &Path, template: &str) -> Output {
        kiln()
            .arg("build")
            .arg(template)
            .current_dir(dir)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }
}

/// The shared storage and configuration, with the base image in it (made once per content,
/// under a lock: the tests run in parallel processes).
fn shared() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        require("podman", "podman");
        require("runc", "runc");
        let root = root();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("containers.conf"), containers_conf(&root)).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{r}/storage\"\nrunroot = \"{r}/run\"\n",
            r = root.display()
        );
        std::fs::write(root.join("storage.conf"), storage).unwrap();
        let lock = std::fs::File::create(root.join("base.lock")).unwrap();
        lock.lock().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::with_root(&root, dir.path(), None);
        let base = base_image_name();
        if !engine.exists("image", &base) {
            let tar = dir.path().join("rootfs.tar");
            write_rootfs(&tar);
            let out = engine.podman(&[
                "import",
                "--change",
                r#"CMD ["/bin/sh"]"#,
                tar.to_str().unwrap(),
                &base,
            ]);
            assert_ok(&out, "podman import of the base image");
        }
        root
    })
}

/// `localhost/kiln-test-base:HASH`, named after what goes into it.
fn base_image_name() -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read("/bin/busybox").expect("/bin/busybox (Debian: busybox-static)"));
    h.update(b"rootfs v1: busybox applets, root and app users, /tmp 1777, /home/app");
    let hex: String = h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("localhost/kiln-test-base:{hex}")
}

/// A root filesystem from Debian's busybox-static: the binary, a link per applet, two users.
fn write_rootfs(tar_path: &Path) {
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let mut tar = tar::Builder::new(std::fs::File::create(tar_path).unwrap());
    let mut dir = |path: &str, mode: u32, uid: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(uid.into());
        h.set_size(0);
        tar.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    for d in ["bin", "etc", "root", "srv", "home"] {
        dir(d, 0o755, 0);
    }
    dir("tmp", 0o1777, 0);
    dir("home/app", 0o755, APP_UID);
    let mut file = |path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data).unwrap();
    };
    file("bin/busybox", 0o755, &busybox);
    let passwd =
        format!("root:x:0:0:root:/root:/bin/sh\napp:x:{APP_UID}:{APP_UID}::/home/app:/bin/sh\n");
    file("etc/passwd", 0o644, passwd.as_bytes());
    file(
        "etc/group",
        0o644,
        format!("root:x:0:\napp:x:{APP_UID}:\n").as_bytes(),
    );
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet == "busybox" {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    tar.finish().unwrap();
}

/// `source "docker" "app"` from the base image (not pulled: it is local) with `options`.
fn app_source(options: &str) -> String {
    format!(
        "source \"docker\" \"app\" {{\n  image = \"{}\"\n  pull  = false\n{options}\n}}\n",
        base_image_name()
    )
}

/// The container id kiln reported (`Container ID: …`).
fn container_id(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split("Container ID: ").nth(1))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no container id in the output\n{}", describe(out)))
}

/// Build with shell, file (both ways) and shell-local provisioners and `changes`, then run the
/// committed image: its CMD prints the provisioned file, and the changes are in its config.
#[test]
fn commit_applies_changes_and_the_image_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(dir.path(), None);
    let repository = format!("localhost/kiln-test-commit-{}", std::process::id());
    std::fs::write(dir.path().join("hello.txt"), "hello from the host\n").unwrap();
    let source = app_source(
        r#"
  docker_path = "podman"
  commit      = true
  author      = "kiln tests"
  message     = "provisioned by kiln"
  changes = [
    "CMD [\"/bin/sh\", \"-c\", \"cat /srv/hello.txt /srv/by.txt; echo $GREETING\"]",
    "ENV GREETING hello from ENV",
    "LABEL built.by=kiln",
    "WORKDIR /srv",
  ]"#,
    );
    let template = format!(
        r#"{source}
build {{
  sources = ["source.docker.app"]
  provisioner "shell" {{
    inline = ["echo built by $PACKER_BUILDER_TYPE in ${{build.ID}} > /srv/by.txt"]
  }}
  provisioner "file" {{
    source      = "hello.txt"
    destination = "/srv/hello.txt"
  }}
  provisioner "file" {{
    direction   = "download"
    source      = "/srv/by.txt"
    destination = "back/by.txt"
  }}
  provisioner "shell-local" {{
    inline = ["echo local $PACKER_BUILDER_TYPE > local.txt"]
  }}
  post-processor "docker-tag" {{
    repository = "{repository}"
    tags       = ["1"]
  }}
}}
"#
    );
    std::fs::write(dir.path().join("app.pkr.hcl"), template).unwrap();
    let out = engine.kiln_build(dir.path(), "app.pkr.hcl");
    assert_ok(&out, "kiln build of the docker template");
    let container = container_id(&out);
    assert!(
        !engine.exists("container", &container),
        "the build container is removed"
    );

    let by = std::fs::read_to_string(dir.path().join("back/by.txt")).unwrap();
    assert_eq!(
        by,
        format!("built by docker in {container}\n"),
        "build.ID is the container"
    );
    let local = std::fs::read_to_string(dir.path().join("local.txt")).unwrap();
    assert_eq!(local, "local docker\n");

    let image = format!("{repository}:1");
    let (printed, code) = engine.run_image(&image);
    assert_eq!(code, "0");
    assert_eq!(
        printed,
        format!("hello from the host\nbuilt by docker in {container}\nhello from ENV")
    );
    let config = engine.ok(&["image", "inspect", "--format", "{{json .Config}}", &image]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(config["Labels"]["built.by"], "kiln");
    assert_eq!(config["Entrypoint"], serde_json::json!([""]), "{config}");
    let meta = engine.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Author}}|{{.Comment}}",
        &image,
    ]);
    assert_eq!(meta, "kiln tests|provisioned by kiln");
    engine.ok(&["rmi", &image]);
}

/// `export_path` writes the container's files (uploads owned by the container's user); the
/// chain imports the tar (kept: `keep_input_artifact`) and saves the image.
#[test]
fn export_then_import_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(dir.path(), None);
    let repository = format!("localhost/kiln-test-import-{}", std::process::id());
    std::fs::write(dir.path().join("note.txt"), "a note\n").unwrap();
    let source = app_source(
        r#"
  docker_path = "podman"
  export_path = "out/app.tar"
  run_command = ["-d", "-i", "-t", "--user", "app", "--entrypoint=/bin/sh", "--", "{{.Image}}"]"#,
    );
    let template = format!(
        r#"{source}
build {{
  sources = ["source.docker.app"]
  provisioner "file" {{
    source      = "note.txt"
    destination = "/home/app/note.txt"
  }}
  provisioner "shell" {{
    inline = ["stat -c 'owner=%U' /home/app/note.txt", "id -un"]
  }}
  post-processors {{
    post-processor "docker-import" {{
      repository          = "{repository}"
      tag                 = "2"
      changes             = ["CMD [\"cat\", \"/home/app/note.txt\"]"]
      keep_input_artifact = true
    }}
    post-processor "docker-save" {{
      path = "out/saved.tar"
    }}
  }}
}}
"#
    );
    std::fs::write(dir.path().join("app.pkr.hcl"), template).unwrap();
    let out = engine.kiln_build(dir.path(), "app.pkr.hcl");
    assert_ok(&out, "kiln build with export_path");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("owner=app"), "fix_upload_owner\n{stdout}");
    assert!(
        stdout.contains("docker.app: app\n"),
        "runs as the container's user\n{stdout}"
    );

    let mut found = None;
    let mut archive =
        tar::Archive::new(std::fs::File::open(dir.path().join("out/app.tar")).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("home/app/note.txt") {
            let uid = entry.header().uid().unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            found = Some((uid, text));
        }
    }
    assert_eq!(found, Some((u64::from(APP_UID), "a note\n".to_owned())));

    let image = format!("{repository}:2");
    assert_eq!(
        engine.run_image(&image),
        ("a note".to_owned(), "0".to_owned())
    );
    let mut saved =
        tar::Archive::new(std::fs::File::open(dir.path().join("out/saved.tar")).unwrap());
    let names: Vec<String> = saved
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "manifest.json"),
        "an image archive: {names:?}"
    );
    engine.ok(&["rmi", &image]);
}

/// A failing provisioner fails the build and the container is gone; so does Ctrl-C. Without
/// `docker_path` and without docker, podman stands in.
#[test]
fn failure_and_ctrl_c_leave_no_container() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(dir.path(), None);
    // A PATH with podman and no docker.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/podman", bin.join("podman")).unwrap();
    let source = app_source("  discard = true");
    let template = |inline: &str| {
        format!(
            r#"{source}
build {{
  sources = ["source.docker.app"]
  provisioner "shell" {{
    inline = ["{inline}"]
  }}
}}
"#
        )
    };
    std::fs::write(dir.path().join("fail.pkr.hcl"), template("exit 3")).unwrap();
    let out = kiln()
        .args(["build", "fail.pkr.hcl"])
        .current_dir(dir.path())
        .envs(engine.env.iter().cloned())
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("`docker` is not installed: using podman"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Provisioner 1 (`shell`) failed"),
        "{stderr}"
    );
    assert!(stderr.contains("non-zero exit status: 3"), "{stderr}");
    assert!(!engine.exists("container", &container_id(&out)));

    std::fs::write(
        dir.path().join("hang.pkr.hcl"),
        template("echo started; sleep 300"),
    )
    .unwrap();
    let mut child = kiln()
        .args(["build", "hang.pkr.hcl"])
        .current_dir(dir.path())
        .envs(engine.env.iter().cloned())
        .env("PATH", &bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut container = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.split("Container ID: ").nth(1) {
            container = Some(id.trim().to_owned());
        }
        if line.ends_with("started") {
            break;
        }
    }
    let container = container.expect("kiln said the container id");
    assert!(engine.exists("container", &container));
    signal(child.0.id(), "INT");
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        !engine.exists("container", &container),
        "Ctrl-C removes the container\n{}",
        rest.join("\n")
    );
}

/// A `docker-registry` on 127.0.0.1 that wants a login (htpasswd), stopped on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
}

impl Registry {
    /// Starts one for `user` / `password`, its files in `dir`.
    fn start(dir: &Path, user: &str, password: &str) -> Self {
        require("docker-registry", "docker-registry");
        let htpasswd = dir.join("htpasswd");
        write_htpasswd(dir, &htpasswd, user, password);
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                dir.join("blobs").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        // REGISTRY_* variables would override its configuration: it gets none.
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("REGISTRY_"))
            .collect();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let registry = Self { child, port };
        let up = eventually(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "registry did not listen: {}",
            read_or_note(&dir.join("registry.log"))
        );
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An htpasswd line with a bcrypt hash, made by kiln's own `bcrypt()` in a `null` build.
fn write_htpasswd(dir: &Path, path: &Path, user: &str, password: &str) {
    let template = format!(
        r#"
source "null" "htpasswd" {{
  communicator = "none"
}}

build {{
  sources = ["source.null.htpasswd"]
  provisioner "shell-local" {{
    inline = ["printf '%s\\n' '{user}:${{bcrypt("{password}", 4)}}' > '{path}'"]
  }}
}}
"#,
        path = path.display()
    );
    let file = dir.join("htpasswd.pkr.hcl");
    std::fs::write(&file, template).unwrap();
    let out = kiln().arg("build").arg(&file).output().unwrap();
    assert_ok(&out, "making the htpasswd file");
}

/// Commit, tag and push (logged in) to a local registry; then build again from the pushed
/// image, pulled back with a login. The user's credential file is never touched.
#[test]
fn push_then_pull_back_from_a_local_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), "kiln", "s3cret-pw");
    let engine = Engine::new(dir.path(), Some(registry.port));
    let server = format!("127.0.0.1:{}", registry.port);
    let repository = format!("{server}/kiln/pushed");
    let login = format!(
        r#"login          = true
  login_server   = "{server}"
  login_username = "kiln"
  login_password = "s3cret-pw""#
    );
    let source = app_source("  docker_path = \"podman\"\n  commit = true");
    let push = format!(
        r#"{source}
build {{
  sources = ["source.docker.app"]
  provisioner "shell" {{
    inline = ["echo pushed marker > /srv/marker"]
  }}
  post-processors {{
    post-processor "docker-tag" {{
      repository = "{repository}"
      tags       = ["1", "latest"]
    }}
    post-processor "docker-push" {{
      {login}
    }}
  }}
}}
"#
    );
    std::fs::write(dir.path().join("push.pkr.hcl"), push).unwrap();
    let out = engine.kiln_build(dir.path(), "push.pkr.hcl");
    assert_ok(&out, "build and push");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [format!("{repository}:1"), format!("{repository}:latest")] {
        assert!(stdout.contains(&format!("Pushing: {name}")), "{stdout}");
        engine.ok(&["rmi", &name]);
    }
    assert!(!stdout.contains("s3cret-pw"), "the password is never shown");

    let pull = format!(
        r#"
source "docker" "again" {{
  docker_path = "podman"
  image       = "{repository}:1"
  discard     = true
  {login}
}}

build {{
  sources = ["source.docker.again"]
  provisioner "shell" {{
    inline = ["cat /srv/marker"]
  }}
}}
"#
    );
    std::fs::write(dir.path().join("pull.pkr.hcl"), pull).unwrap();
    let out = engine.kiln_build(dir.path(), "pull.pkr.hcl");
    assert_ok(&out, "build from the pushed image");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Pulling Docker image"), "{stdout}");
    assert!(stdout.contains("docker.again: pushed marker"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&engine.auth).unwrap(),
        "{}",
        "kiln logged in with its own credential store"
    );
    engine.ok(&["rmi", &format!("{repository}:1")]);
    drop(registry);
}
