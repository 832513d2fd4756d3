//! The `manifest` post-processor: records each build's artifact in a JSON file, in Packer's
//! exact format (`packer-manifest.json`), appending builds across runs so CI scripts that read
//! Packer manifests read kiln's unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A validated `post-processor "manifest"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `output` (default `packer-manifest.json`).
    pub output: String,
    /// `strip_path`: record file names without their directories.
    pub strip_path: bool,
    /// `strip_time`: leave `build_time` out.
    pub strip_time: bool,
    /// `custom_data`: copied into the entry (`null` when empty, as Packer writes it).
    pub custom_data: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output: "packer-manifest.json".into(),
            strip_path: false,
            strip_time: false,
            custom_data: BTreeMap::new(),
        }
    }
}

/// One build, as Packer writes it (field order matters for byte-compatible output).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub builder_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_time: Option<u64>,
    pub files: Vec<FileEntry>,
    pub artifact_id: String,
    pub packer_run_uuid: String,
    pub custom_data: Option<BTreeMap<String, String>>,
}

/// A file of the artifact.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    builds: &'a [serde_json::Value],
    last_run_uuid: &'a str,
}

/// Why the manifest could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An artifact file could not be measured.
    #[error("Cannot read `{}`", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The existing manifest is not JSON kiln can append to.
    #[error("Cannot parse the existing manifest `{}`", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The existing manifest could not be read, or its directory made.
    #[error("Cannot prepare the manifest `{}`", path.display())]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the manifest failed (it is unchanged, its temporary file removed).
    #[error("Cannot write the manifest")]
    Write(#[source] crate::archive::Error),
}

/// What the build hands to the manifest.
pub struct Input<'a> {
    pub build_name: &'a str,
    pub builder_type: &'a str,
    pub artifact_id: &'a str,
    pub files: &'a [PathBuf],
    pub run_uuid: &'a str,
    /// Unix time of the build.
    pub build_time: u64,
    /// `-force`: a manifest from another run is replaced instead of appended to.
    pub force: bool,
}

/// Builds the entry for `input` under `config`.
pub fn entry(config: &Config, input: &Input) -> Result<Entry, Error> {
    let mut files = Vec::new();
    for f in input.files {
        let size = std::fs::metadata(f)
            .map_err(|source| Error::Stat {
                path: f.clone(),
                source,
            })?
            .len();
        let name = if config.strip_path {
            f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        } else {
            f.display().to_string()
        };
        files.push(FileEntry { name, size });
    }
    Ok(Entry {
        name: input.build_name.to_owned(),
        builder_type: input.builder_type.to_owned(),
        build_time: (!config.strip_time).then_some(input.build_time),
        files,
        artifact_id: input.artifact_id.to_owned(),
        packer_run_uuid: input.run_uuid.to_owned(),
        custom_data: (!config.custom_data.is_empty()).then(|| config.custom_data.clone()),
    })
}

/// Appends the build to the manifest at `config.output` (written to a temporary file beside it,
/// then renamed, see `archive::write_atomically`); returns the manifest's path. Blocking.
pub fn write(config: &Config, input: &Input) -> Result<PathBuf, Error> {
    let path = PathBuf::from(&config.output);
    let new = serde_json::to_value(entry(config, input)?).map_err(|source| Error::Parse {
        path: path.clone(),
        source,
    })?;
    let mut builds = existing_builds(&path, input)?;
    builds.push(new);
    let text = serde_json::to_string_pretty(&Manifest {
        builds: &builds,
        last_run_uuid: input.run_uuid,
    })
    .map_err(|source| Error::Parse {
        path: path.clone(),
        source,
    })?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Prepare {
            path: path.clone(),
            source,
        })?;
    }
    // Small: nothing to cancel.
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::archive::write_atomically(&path, &cancel, |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })
    .map_err(Error::Write)?;
    Ok(path)
}

/// The builds already in the manifest, kept as they are; none when the file is missing, or when
/// `-force` is given and the file comes from another run (Packer's rule).
fn existing_builds(path: &Path, input: &Input) -> Result<Vec<serde_json::Value>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Prepare {
                path: path.to_owned(),
                source,
            });
        }
    };
    let old: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })?;
    if input.force && old["last_run_uuid"].as_str() != Some(input.run_uuid) {
        return Ok(Vec::new());
    }
    Ok(old["builds"].as_array().cloned().unwrap_or_default())
}

/// A random (version 4) UUID for this run of kiln (`packer_run_uuid`).
pub fn new_run_uuid() -> String {
    crate::types::uuid_text(rand::random(), 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(files: &'a [PathBuf], run: &'a str, force: bool) -> Input<'a> {
        Input {
            build_name: "testos",
            builder_type: "qemu",
            artifact_id: "VM",
            files,
            run_uuid: run,
            build_time: 1_700_000_000,
            force,
        }
    }

    #[test]
    fn packer_format_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("packer-x");
        std::fs::write(&disk, vec![0u8; 123]).unwrap();
        let cfg = Config {
            output: dir
                .path()
                .join("packer-manifest.json")
                .display()
                .to_string(),
            ..Config::default()
        };
        let files = [disk.clone()];
        let path = write(&cfg, &input(&files, "run-1", false)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let want = format!(
            "{{\n  \"builds\": [\n    {{\n      \"name\": \"testos\",\n      \"builder_type\": \"qemu\",\n      \"build_time\": 1700000000,\n      \"files\": [\n        {{\n          \"name\": \"{}\",\n          \"size\": 123\n        }}\n      ],\n      \"artifact_id\": \"VM\",\n      \"packer_run_uuid\": \"run-1\",\n      \"custom_data\": null\n    }}\n  ],\n  \"last_run_uuid\": \"run-1\"\n}}",
            disk.display()
        );
        assert_eq!(text, want);
    }

    #[test]
    fn appends_across_runs_and_force_resets_another_runs_file() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("d");
        std::fs::write(&disk, b"x").unwrap();
        let cfg = Config {
            output: dir.path().join("m.json").display().to_string(),
            strip_path: true,
            strip_time: true,
            custom_data: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        };
        let files = [disk];
        let count = |p: &Path| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            v["builds"].as_array().unwrap().len()
        };
        let p = write(&cfg, &input(&files, "run-1", false)).unwrap();
        write(&cfg, &input(&files, "run-2", false)).unwrap();
        assert_eq!(count(&p), 2);
        // -force in the same run appends; in another run starts over.
        write(&cfg, &input(&files, "run-2", true)).unwrap();
        assert_eq!(count(&p), 3);
        write(&cfg, &input(&files, "run-3", true)).unwrap();
        assert_eq!(count(&p), 1);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let b = &v["builds"][0];
        assert_eq!(b["files"][0]["name"], "d");
        assert!(b.get("build_time").is_none());
        assert_eq!(b["custom_data"]["k"], "v");
        assert_eq!(v["last_run_uuid"], "run-3");
    }

    #[test]
    fn broken_existing_manifest_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.json");
        std::fs::write(&m, "not json").unwrap();
        let cfg = Config {
            output: m.display().to_string(),
            ..Config::default()
        };
        let err = write(&cfg, &input(&[], "r", false)).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
        assert_eq!(std::fs::read_to_string(&m).unwrap(), "not json");
    }

    #[test]
    fn run_uuid_is_v4() {
        let u = new_run_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, new_run_uuid());
    }
}
