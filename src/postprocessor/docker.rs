//! The docker post-processors, with Packer's artifact rules:
//!
//! - `docker-import` takes the docker builder's exported container (`export_path`) and makes it
//!   an image `repository[:tag]`; its input is deleted unless `keep_input_artifact`;
//! - `docker-tag` names an image (`commit`, or docker-import's) `repository:tag` for each tag;
//!   it always keeps its input;
//! - `docker-push` pushes an image and the names docker-tag gave it, logged in when `login`;
//! - `docker-save` writes an image to a tar file.
//!
//! Each runs the engine that made its input unless it sets `docker_path` (Packer's default is
//! always `docker`). An image artifact that no post-processor keeps is removed (`rmi`), as
//! Packer removes it.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::Written;
use crate::artifact::docker_id::{ARTIFICE, EXPORT, IMAGE, TAG};
use crate::artifact::{Artifact, Image};
use crate::engine::{self, Engine, Flavor, Input, Login, argv};
use crate::ui::Ui;

/// `post-processor "docker-tag"`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagConfig {
    /// `docker_path`; `None`: the engine that made the image.
    pub docker_path: Option<String>,
    pub repository: String,
    /// `tags` and the older `tag`, merged; none tags the image as `repository` itself.
    pub tags: Vec<String>,
    /// The template used the deprecated `tag` (Packer warns when it runs).
    pub deprecated_tag: bool,
    /// `force`: replace a name another image has. Current docker and podman always do; kept
    /// for templates that set it.
    pub force: bool,
}

/// `post-processor "docker-import"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportConfig {
    pub docker_path: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    /// Dockerfile instructions applied to the image (as the builder's `changes`).
    pub changes: Vec<String>,
    pub platform: Option<String>,
}

/// `post-processor "docker-save"`.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveConfig {
    pub docker_path: Option<String>,
    /// `path`: the tar file to write.
    pub path: PathBuf,
}

/// `post-processor "docker-push"`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    pub docker_path: Option<String>,
    /// `login` with `login_server`, `login_username`, `login_password`: the push uses these
    /// credentials only, in a private store; without, the engine's own.
    pub login: Option<Login>,
    pub platform: Option<String>,
}

/// Why a docker post-processor failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not an artifact this post-processor takes.
    #[error("Unknown artifact type: {builder_id}; {expected}")]
    WrongArtifact {
        builder_id: &'static str,
        expected: &'static str,
    },
    /// docker-import got an artifact without a file (`discard`).
    #[error("There is no exported container to import (the build set `discard`)")]
    NothingToImport,
    #[error("Could not run the container engine")]
    Engine(#[source] engine::Error),
    #[error("Could not import `{}` as `{repository}`", file.display())]
    Import {
        file: PathBuf,
        repository: String,
        #[source]
        source: engine::Error,
    },
    #[error("Could not tag `{image}` as `{name}`")]
    Tag {
        image: String,
        name: String,
        #[source]
        source: engine::Error,
    },
    #[error("Could not log in to the registry")]
    Login(#[source] engine::Error),
    #[error("Could not push `{name}`")]
    Push {
        name: String,
        #[source]
        source: engine::Error,
    },
    #[error("Could not save `{image}` to `{}`", path.display())]
    Save {
        image: String,
        path: PathBuf,
        #[source]
        source: engine::Error,
    },
    /// An image no post-processor keeps could not be removed.
    #[error("Could not remove image `{image}`")]
    Remove {
        image: String,
        #[source]
        source: engine::Error,
    },
}

/// What a docker post-processor returns: its artifact, whether it keeps its input by default,
/// and whether that is forced.
type Outcome = (Artifact, bool, bool);

/// The engine a post-processor runs: its `docker_path`, else the one that made `input`.
async fn engine_for(docker_path: Option<&str>, input: &Artifact) -> Result<Engine, Error> {
    let program = docker_path
        .or(input.image.as_ref().map(|i| i.engine.as_str()))
        .unwrap_or("docker");
    Engine::detect(program).await.map_err(Error::Engine)
}

/// Checks that `input` is one of the artifacts `accepted` names.
fn expect(input: &Artifact, accepted: &[&str], expected: &'static str) -> Result<(), Error> {
    if accepted.contains(&input.builder_id) {
        Ok(())
    } else {
        Err(Error::WrongArtifact {
            builder_id: input.builder_id,
            expected,
        })
    }
}

/// An image artifact named `id`, made by `engine` with `tags`.
fn image_artifact(
    input: &Artifact,
    builder_id: &'static str,
    id: String,
    engine: &Engine,
    tags: Vec<String>,
) -> Artifact {
    Artifact {
        builder_type: input.builder_type,
        builder_id,
        id,
        files: Vec::new(),
        disk: None,
        image: Some(Image {
            engine: engine.program().to_owned(),
            tags,
        }),
    }
}

/// docker-import: the exported container becomes the image `repository[:tag]`.
pub async fn import(cfg: &ImportConfig, input: &Artifact, ui: &Ui) -> Result<Outcome, Error> {
    expect(
        input,
        &[EXPORT, ARTIFICE],
        "docker-import takes the docker builder's `export_path` (with `commit = true` the image is already imported)",
    )?;
    let file = input.files.first().ok_or(Error::NothingToImport)?;
    let engine = engine_for(cfg.docker_path.as_deref(), input).await?;
    let repository = match &cfg.tag {
        Some(tag) => format!("{}:{tag}", cfg.repository),
        None => cfg.repository.clone(),
    };
    ui.say("Running post-processor: docker-import");
    ui.message(format!("Importing image: {}", input.id));
    ui.message(format!("Repository: {repository}"));
    let args = argv::import(
        engine.flavor(),
        &repository,
        &cfg.changes,
        cfg.platform.as_deref(),
    );
    let id = engine
        .output(args, Input::File(file))
        .await
        .map_err(|source| Error::Import {
            file: file.clone(),
            repository: repository.clone(),
            source,
        })?;
    ui.message(format!(
        "Imported ID: {}",
        id.lines().last().unwrap_or_default()
    ));
    let artifact = image_artifact(input, IMAGE, repository, &engine, Vec::new());
    Ok((artifact, false, false))
}

/// docker-tag: names the image `repository:tag` for each tag (or `repository`).
pub async fn tag(cfg: &TagConfig, input: &Artifact, ui: &Ui) -> Result<Outcome, Error> {
    expect(
        input,
        &[TAG, IMAGE],
        "docker-tag takes an image: the docker builder's with `commit = true`, or docker-import's",
    )?;
    let engine = engine_for(cfg.docker_path.as_deref(), input).await?;
    ui.say("Running post-processor: docker-tag");
    if cfg.deprecated_tag {
        ui.warn("Deprecation warning: \"tag\" option has been replaced with \"tags\"");
    }
    tracing::debug!(
        force = cfg.force,
        "tagging (names always move to the new image)"
    );
    let names: Vec<String> = if cfg.tags.is_empty() {
        vec![cfg.repository.clone()]
    } else {
        cfg.tags
            .iter()
            .map(|t| format!("{}:{t}", cfg.repository))
            .collect()
    };
    for name in &names {
        ui.message(format!("Tagging image: {}", input.id));
        ui.message(format!("Repository: {name}"));
        engine
            .output(argv::tag(&input.id, name), Input::Nothing)
            .await
            .map_err(|source| Error::Tag {
                image: input.id.clone(),
                name: name.clone(),
                source,
            })?;
    }
    let last = names.last().cloned().unwrap_or_default();
    let tags = if cfg.tags.is_empty() {
        Vec::new()
    } else {
        names
    };
    // Tagging an image and then deleting it would undo the tag: the input is always kept.
    Ok((image_artifact(input, TAG, last, &engine, tags), true, true))
}

/// docker-push: pushes the image's id (a `repository:tag`) and its tags.
pub async fn push(cfg: &PushConfig, input: &Artifact, ui: &Ui) -> Result<Outcome, Error> {
    expect(
        input,
        &[IMAGE, TAG],
        "docker-push takes docker-import and docker-tag artifacts",
    )?;
    let engine = engine_for(cfg.docker_path.as_deref(), input).await?;
    if cfg.platform.is_some() && engine.flavor() == Flavor::Podman {
        return Err(Error::Engine(engine::Error::Unsupported {
            program: engine.program().to_owned(),
            what: "push one platform of an image (`platform`): push without it".into(),
        }));
    }
    ui.say("Running post-processor: docker-push");
    let creds = match &cfg.login {
        Some(login) => {
            ui.message("Logging in...");
            Some(engine.login(login).await.map_err(Error::Login)?)
        }
        None => None,
    };
    let tags = input
        .image
        .as_ref()
        .map(|i| i.tags.clone())
        .unwrap_or_default();
    let mut names = vec![input.id.clone()];
    names.extend(tags.iter().filter(|t| **t != input.id).cloned());
    let mut pushed = Ok(());
    for name in &names {
        ui.message(format!("Pushing: {name}"));
        let args = argv::push(
            engine.flavor(),
            name,
            cfg.platform.as_deref(),
            creds.as_ref().map(|c| c.path()),
        );
        if let Err(source) = engine.output(args, Input::Nothing).await {
            pushed = Err(Error::Push {
                name: name.clone(),
                source,
            });
            break;
        }
    }
    if let Some(creds) = creds {
        ui.message("Logging out...");
        if let Err(e) = engine.logout(creds).await {
            ui.error(format!("Error logging out: {e}"));
        }
    }
    pushed?;
    let artifact = image_artifact(input, IMAGE, input.id.clone(), &engine, tags);
    Ok((artifact, true, false))
}

/// docker-save: writes the image to `path` (complete, or not at all); passes its input on.
pub async fn save(
    cfg: &SaveConfig,
    input: &Artifact,
    ui: &Ui,
    cancel: &CancellationToken,
    written: &mut Vec<Written>,
) -> Result<Outcome, Error> {
    expect(
        input,
        &[IMAGE, TAG],
        "docker-save takes an image: the docker builder's with `commit = true`, docker-import's or docker-tag's",
    )?;
    let engine = engine_for(cfg.docker_path.as_deref(), input).await?;
    ui.say("Running post-processor: docker-save");
    ui.message(format!("Saving image: {}", input.id));
    engine
        .output_to_file(argv::save(&input.id), &cfg.path, cancel)
        .await
        .map_err(|source| Error::Save {
            image: input.id.clone(),
            path: cfg.path.clone(),
            source,
        })?;
    ui.message(format!("Saved to: {}", cfg.path.display()));
    written.push(("image archive", cfg.path.clone()));
    Ok((input.clone(), true, false))
}

/// Removes `artifact`'s image when it is one (an image no post-processor keeps).
pub async fn remove(artifact: &Artifact, ui: &Ui) -> Result<(), Error> {
    let (Some(image), true) = (&artifact.image, [IMAGE, TAG].contains(&artifact.builder_id)) else {
        return Ok(());
    };
    let engine = Engine::detect(&image.engine).await.map_err(Error::Engine)?;
    ui.say(format!(
        "Removing image `{}`: no post-processor keeps it (keep_input_artifact = false)",
        artifact.id
    ));
    engine
        .output(argv::remove_image(&artifact.id), Input::Nothing)
        .await
        .map(drop)
        .map_err(|source| Error::Remove {
            image: artifact.id.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(builder_id: &'static str) -> Artifact {
        Artifact {
            builder_type: "docker",
            builder_id,
            id: "sha256:1".into(),
            files: Vec::new(),
            disk: None,
            image: None,
        }
    }

    /// Which artifacts each post-processor takes, as in Packer (the engine is never reached:
    /// the check comes first).
    #[tokio::test]
    async fn each_post_processor_takes_packers_artifacts() {
        let (ui, _) = Ui::memory();
        let qemu = "transcend.qemu";
        let tag_cfg = TagConfig {
            docker_path: Some("kiln-no-such-engine".into()),
            repository: "r".into(),
            tags: Vec::new(),
            deprecated_tag: false,
            force: false,
        };
        let import_cfg = ImportConfig {
            docker_path: Some("kiln-no-such-engine".into()),
            repository: "r".into(),
            tag: None,
            changes: Vec::new(),
            platform: None,
        };
        let push_cfg = PushConfig {
            docker_path: Some("kiln-no-such-engine".into()),
            login: None,
            platform: None,
        };
        // (post-processor, builder id, taken)
        let cases = [
            ("tag", IMAGE, true),
            ("tag", TAG, true),
            ("tag", EXPORT, false),
            ("tag", qemu, false),
            ("import", EXPORT, true),
            ("import", IMAGE, false),
            ("push", IMAGE, true),
            ("push", TAG, true),
            ("push", EXPORT, false),
        ];
        for (pp, id, taken) in cases {
            let mut input = artifact(id);
            input.files = vec![PathBuf::from("/nonexistent.tar")];
            let err = match pp {
                "tag" => tag(&tag_cfg, &input, &ui).await.err(),
                "import" => import(&import_cfg, &input, &ui).await.err(),
                _ => push(&push_cfg, &input, &ui).await.err(),
            };
            let wrong = matches!(err, Some(Error::WrongArtifact { .. }));
            assert_eq!(!wrong, taken, "{pp} with {id}: {err:?}");
            if taken {
                assert!(matches!(err, Some(Error::Engine(_))), "{pp}: {err:?}");
            }
        }
    }

    #[tokio::test]
    async fn import_of_a_discarded_container_says_so() {
        let (ui, _) = Ui::memory();
        let cfg = ImportConfig {
            docker_path: None,
            repository: "r".into(),
            tag: None,
            changes: Vec::new(),
            platform: None,
        };
        let err = import(&cfg, &artifact(EXPORT), &ui).await.err();
        assert!(matches!(err, Some(Error::NothingToImport)), "{err:?}");
    }

    /// A stand-in engine in `dir`: a script that logs each command line to `log`.
    fn fake_engine(dir: &std::path::Path) -> (String, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let (script, log) = (dir.join("fake-docker"), dir.join("calls.log"));
        let text = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$1\" = --version ] && echo 'Docker version 99.0'\nexit 0\n",
            log.display()
        );
        std::fs::write(&script, text).expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        (script.display().to_string(), log)
    }

    /// tag → push(keep_input_artifact = false): the tags are pushed with the image's name, by
    /// the engine that made the image; the tagged name nobody keeps is removed, and the
    /// committed image, which docker-tag always keeps, stays.
    #[tokio::test]
    async fn push_sends_the_tags_and_an_image_nobody_keeps_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, log) = fake_engine(dir.path());
        let mut built = artifact(IMAGE);
        built.image = Some(Image {
            engine,
            tags: Vec::new(),
        });
        let block = |kind, keep| super::super::PostProcessorBlock {
            name: None,
            only: Vec::new(),
            except: Vec::new(),
            keep_input_artifact: keep,
            kind,
        };
        let chain = vec![
            block(
                super::super::PostProcessor::DockerTag(TagConfig {
                    docker_path: None,
                    repository: "reg/app".into(),
                    tags: vec!["1".into(), "latest".into()],
                    deprecated_tag: false,
                    force: false,
                }),
                Some(false),
            ),
            block(
                super::super::PostProcessor::DockerPush(PushConfig {
                    docker_path: None,
                    login: None,
                    platform: None,
                }),
                Some(false),
            ),
        ];
        let info = super::super::BuildInfo {
            build_name: "app".into(),
            source: "docker.app".into(),
            run_uuid: "run".into(),
            force: false,
        };
        let (ui, said) = Ui::memory();
        super::super::run_chains(
            &[chain],
            &built,
            &info,
            &ui,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect("runs");
        let calls = std::fs::read_to_string(&log).expect("log");
        let calls: Vec<&str> = calls.lines().filter(|l| *l != "--version").collect();
        assert_eq!(
            calls,
            [
                "tag sha256:1 reg/app:1",
                "tag sha256:1 reg/app:latest",
                "push reg/app:latest",
                "push reg/app:1",
                "rmi reg/app:latest",
            ]
        );
        let said = said.lock().expect("ui").join("\n");
        assert!(said.contains("always keeps its input"), "{said}");
    }
}
