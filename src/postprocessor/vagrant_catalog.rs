//! The `vagrant-catalog` post-processor: a self-hosted, versioned box catalog.
//!
//! It creates or updates the box metadata JSON that `vagrant box add URL-OR-PATH-OF-JSON`,
//! `config.vm.box_url` and `vagrant box outdated` read: the box's `name` and `description`, and
//! `versions`, each with `providers` entries (`name`, `url`, `checksum_type`, `checksum`,
//! `architecture`). It follows the `vagrant` post-processor in a `post-processors` chain: the
//! box it gets is hashed, its provider and architecture are read from the box's own
//! `metadata.json`, and its entry is added under `version`. Earlier versions (and other
//! providers or architectures of the same version) are kept; an entry for the same version,
//! provider and architecture is refused unless `-force`. Packer only publishes to HCP's
//! registry (`vagrant-registry`); this is for serving boxes from any web server or file share.
//!
//! The catalog is rewritten under a temporary name and renamed, under a lock on its directory
//! (no lock file is left beside the boxes), so concurrent builds add their entries one after
//! the other and a failed run leaves the previous catalog as it was. Served over HTTP, it must come with
//! `Content-Type: application/json`, or Vagrant takes it for a box.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::postprocessor::checksum::{self, ChecksumType};

/// A validated `post-processor "vagrant-catalog"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `catalog`: the JSON file to create or update, relative to the working directory; a
    /// template (`{{ .BuildName }}`).
    pub catalog: String,
    /// `url`: where the box will be downloaded from (`https://`, `http://` or `file://`); a
    /// template: `{{ .BoxName }}` (the box's file name), `{{ .Version }}`, `{{ .Provider }}`,
    /// `{{ .Architecture }}`, `{{ .BuildName }}`.
    pub url: String,
    /// `version`, as Vagrant compares versions (`1.2.0`, `2026.06.01`, `1.0.0-beta.1`).
    pub version: String,
    /// `box_name`: the name Vagrant installs the box under (`acme/debian-12`); by default the
    /// catalog's, or for a new catalog the build's name.
    pub box_name: Option<String>,
    /// `description`: the box's description in the catalog (kept when unset).
    pub description: Option<String>,
    /// `architecture`: overrides the box's own `metadata.json` `architecture`.
    pub architecture: Option<String>,
}

/// The digest written to the catalog.
const CHECKSUM: ChecksumType = ChecksumType::Sha256;
/// Largest `metadata.json` read from a box.
const MAX_METADATA: u64 = 1 << 20;

/// Why the catalog could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The post-processor's input is not one box file.
    #[error("vagrant-catalog needs one Vagrant box as input, but got {files:?}")]
    NoBox { files: Vec<PathBuf> },
    /// The box could not be read.
    #[error("Cannot read box `{}`", path.display())]
    ReadBox {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file has no `metadata.json` naming a provider.
    #[error("`{}` is not a Vagrant box (no metadata.json naming a provider)", path.display())]
    NotABox { path: PathBuf },
    /// Hashing the box failed.
    #[error("Cannot hash the box")]
    HashBox(#[source] checksum::Error),
    /// The rendered `url` is not an absolute URL.
    #[error("The box URL `{url}` is not an http://, https:// or file:// URL")]
    RelativeUrl { url: String },
    /// The catalog's directory could not be created or locked.
    #[error("Cannot lock the catalog's directory `{}`", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The existing catalog could not be read.
    #[error("Cannot read catalog `{}`", path.display())]
    ReadCatalog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The existing file is not JSON.
    #[error("`{}` is not a Vagrant box catalog (not JSON); it was left unchanged", path.display())]
    ParseCatalog {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The existing JSON does not have the catalog's shape.
    #[error("`{}` is not a Vagrant box catalog ({why}); it was left unchanged", path.display())]
    NotACatalog { path: PathBuf, why: &'static str },
    /// The catalog is for another box.
    #[error("Catalog `{}` is for the box `{catalog}`, not `{wanted}`", path.display())]
    OtherBox {
        path: PathBuf,
        catalog: String,
        wanted: String,
    },
    /// This version already has an entry for the provider and architecture.
    #[error(
        "Catalog `{}` already lists version {version} for provider `{provider}`{}",
        path.display(),
        architecture.as_ref().map(|a| format!(" ({a})")).unwrap_or_default()
    )]
    AlreadyListed {
        path: PathBuf,
        version: String,
        provider: String,
        architecture: Option<String>,
    },
    /// The new catalog could not be written (the old one is unchanged, no temporary file left).
    #[error("Cannot write the catalog")]
    WriteCatalog(#[source] crate::archive::Error),
}

/// What [`update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub catalog: PathBuf,
    pub box_name: String,
    pub version: String,
    pub provider: String,
    pub architecture: Option<String>,
    pub url: String,
    /// An entry for the same version, provider and architecture was replaced (`-force`).
    pub replaced: bool,
}

/// Whether `version` is one Vagrant (RubyGems' `Gem::Version`) accepts: numbers and letters
/// separated by dots, optionally a `-` and a pre-release part.
pub fn valid_version(version: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[0-9]+(\.[0-9A-Za-z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
            .expect("a valid regex")
    });
    RE.is_match(version)
}

/// Whether `url` (before rendering) is absolute: `https://`, `http://` or `file://`.
pub fn absolute_url(url: &str) -> bool {
    ["https://", "http://", "file://"].iter().any(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    })
}

/// The catalog's path for the build `build_name`.
pub fn catalog_path(config: &Config, build_name: &str) -> PathBuf {
    PathBuf::from(super::render_vars(
        &config.catalog,
        &[("BuildName", build_name)],
    ))
}

/// The box among a post-processor's input files: the only file, or the only `.box` file.
pub fn box_of(files: &[PathBuf]) -> Result<PathBuf, Error> {
    let boxes: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "box"))
        .collect();
    match (files, boxes.as_slice()) {
        ([only], _) => Ok(only.clone()),
        (_, [only]) => Ok((*only).clone()),
        _ => Err(Error::NoBox {
            files: files.to_vec(),
        }),
    }
}

/// Adds the box at `box_path` to the catalog (creating it if needed) as `config.version`.
/// `force` replaces an entry for the same version, provider and architecture.
pub fn update(
    config: &Config,
    box_path: &Path,
    build_name: &str,
    force: bool,
) -> Result<Updated, Error> {
    let meta = box_metadata(box_path)?;
    let provider = meta
        .get("provider")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::NotABox {
            path: box_path.to_owned(),
        })?
        .to_owned();
    let architecture = config
        .architecture
        .clone()
        .or_else(|| {
            meta.get("architecture")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|a| !a.is_empty() && a != "unknown");
    let box_file = box_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let url = super::render_vars(
        &config.url,
        &[
            ("BoxName", &box_file),
            ("Version", &config.version),
            ("Provider", &provider),
            ("Architecture", architecture.as_deref().unwrap_or("unknown")),
            ("BuildName", build_name),
        ],
    );
    if !absolute_url(&url) {
        return Err(Error::RelativeUrl { url });
    }
    let checksum = checksum::hash_file(box_path, CHECKSUM).map_err(Error::HashBox)?;

    let path = catalog_path(config, build_name);
    let _lock = lock(&path)?;
    let mut catalog = read_catalog(&path)?;
    let box_name = match (
        &config.box_name,
        catalog.get("name").and_then(Value::as_str),
    ) {
        (Some(wanted), Some(have)) if wanted != have => {
            return Err(Error::OtherBox {
                path,
                catalog: have.to_owned(),
                wanted: wanted.clone(),
            });
        }
        (Some(wanted), _) => wanted.clone(),
        (None, Some(have)) => have.to_owned(),
        (None, None) => build_name.to_owned(),
    };
    catalog.insert("name".into(), json!(box_name));
    if let Some(description) = &config.description {
        catalog.insert("description".into(), json!(description));
    }
    let mut entry = json!({
        "name": provider,
        "url": url,
        "checksum_type": CHECKSUM.name(),
        "checksum": checksum,
    });
    if let Some(arch) = &architecture {
        entry["architecture"] = json!(arch);
    }
    let replaced =
        add_entry(&mut catalog, &config.version, entry, force).map_err(|why| match why {
            AddError::Shape(why) => Error::NotACatalog {
                path: path.clone(),
                why,
            },
            AddError::Listed => Error::AlreadyListed {
                path: path.clone(),
                version: config.version.clone(),
                provider: provider.clone(),
                architecture: architecture.clone(),
            },
        })?;
    write_catalog(&path, &Value::Object(catalog))?;
    Ok(Updated {
        catalog: path,
        box_name,
        version: config.version.clone(),
        provider,
        architecture,
        url,
        replaced,
    })
}

/// Why an entry could not be added.
enum AddError {
    /// The catalog's `versions` are not shaped as Vagrant reads them.
    Shape(&'static str),
    /// The version already has this provider and architecture.
    Listed,
}

/// Adds the provider `entry` under `version` (appending the version if new); returns whether an
/// entry for the same provider and architecture was replaced.
fn add_entry(
    catalog: &mut Map<String, Value>,
    version: &str,
    entry: Value,
    force: bool,
) -> Result<bool, AddError> {
    let versions = catalog
        .entry("versions")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or(AddError::Shape("`versions` is not a list"))?;
    let at = versions.iter().position(|v| v["version"] == json!(version));
    let slot = match at {
        Some(i) => &mut versions[i],
        None => {
            versions.push(json!({ "version": version, "providers": [] }));
            versions.last_mut().ok_or(AddError::Shape("no versions"))?
        }
    };
    let providers = slot
        .as_object_mut()
        .ok_or(AddError::Shape("a version is not an object"))?
        .entry("providers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or(AddError::Shape("a version's `providers` is not a list"))?;
    let same = |p: &Value| p["name"] == entry["name"] && p["architecture"] == entry["architecture"];
    match providers.iter().position(same) {
        Some(_) if !force => Err(AddError::Listed),
        Some(i) => {
            providers[i] = entry;
            Ok(true)
        }
        None => {
            providers.push(entry);
            Ok(false)
        }
    }
}

/// The box's `metadata.json` (a gzip'd, zstd'd or plain tar).
fn box_metadata(path: &Path) -> Result<Value, Error> {
    let read_err = |source| Error::ReadBox {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(read_err)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(file);
    let reader: Box<dyn Read> = match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(head)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::Decoder::new(head).map_err(read_err)?),
        _ => Box::new(head),
    };
    let not_a_box = || Error::NotABox {
        path: path.to_owned(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|_| not_a_box())? {
        let entry = entry.map_err(|_| not_a_box())?;
        let name = entry.path().map_err(|_| not_a_box())?.into_owned();
        if name != Path::new("metadata.json") && name != Path::new("./metadata.json") {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_METADATA)
            .read_to_string(&mut text)
            .map_err(|_| not_a_box())?;
        return serde_json::from_str(&text).map_err(|_| not_a_box());
    }
    Err(not_a_box())
}

/// Creates the catalog's directory and takes an exclusive lock on it (`flock`), held until
/// the returned handle is dropped.
fn lock(catalog: &Path) -> Result<std::fs::File, Error> {
    let dir = catalog
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let lock_err = |source| Error::Lock {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(lock_err)?;
    let handle = std::fs::File::open(dir).map_err(lock_err)?;
    handle.lock().map_err(lock_err)?;
    Ok(handle)
}

/// The catalog at `path` as a JSON object; an empty one when the file does not exist.
fn read_catalog(path: &Path) -> Result<Map<String, Value>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(Error::ReadCatalog {
                path: path.to_owned(),
                source,
            });
        }
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::NotACatalog {
            path: path.to_owned(),
            why: "not a JSON object",
        }),
        Err(source) => Err(Error::ParseCatalog {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `catalog` to `path` through kiln's atomic writer: a temporary file in the same
/// directory, synced, made 0644 (the web server serving it reads it, like the boxes beside it)
/// and renamed into place. Small: nothing to cancel.
fn write_catalog(path: &Path, catalog: &Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(catalog)
        .map(|t| t + "\n")
        .map_err(io::Error::other);
    crate::archive::write_atomically(path, &CancellationToken::new(), |w| {
        w.write_all(text?.as_bytes())
    })
    .map_err(Error::WriteCatalog)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box file in `dir`: a gzip'd tar whose first member is `metadata.json` = `meta`.
    fn make_box(dir: &Path, name: &str, meta: &str, payload: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (member, data) in [("metadata.json", meta.as_bytes()), ("box.img", payload)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, member, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    const LIBVIRT_AMD64: &str =
        r#"{"provider":"libvirt","format":"qcow2","virtual_size":1,"architecture":"amd64"}"#;

    fn config(dir: &Path, version: &str) -> Config {
        Config {
            catalog: dir
                .join("catalog/{{ .BuildName }}.json")
                .display()
                .to_string(),
            url: "https://boxes.example/{{ .Version }}/{{.BoxName}}".into(),
            version: version.into(),
            box_name: Some("acme/testos".into()),
            description: Some("A test box".into()),
            architecture: None,
        }
    }

    fn read(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Files in the catalog's directory other than the catalog.
    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".json"))
            .collect()
    }

    #[test]
    fn creates_a_catalog_vagrant_reads() {
        let dir = tempfile::tempdir().unwrap();
        let b = make_box(dir.path(), "t.box", LIBVIRT_AMD64, b"disk");
        let up = update(&config(dir.path(), "1.0.0"), &b, "testos", false).unwrap();
        assert_eq!(up.catalog, dir.path().join("catalog/testos.json"));
        assert!(!up.replaced);
        let sum = checksum::hash_file(&b, ChecksumType::Sha256).unwrap();
        assert_eq!(
            read(&up.catalog),
            json!({
                "name": "acme/testos",
                "description": "A test box",
                "versions": [{
                    "version": "1.0.0",
                    "providers": [{
                        "name": "libvirt",
                        "url": "https://boxes.example/1.0.0/t.box",
                        "checksum_type": "sha256",
                        "checksum": sum,
                        "architecture": "amd64",
                    }],
                }],
            })
        );
        assert_eq!(leftovers(&dir.path().join("catalog")), Vec::<String>::new());
    }

    /// A second version is appended and the first kept; another architecture of the same
    /// version is added beside the first; the same version, provider and architecture is
    /// refused (catalog unchanged) unless forced, which replaces only that entry.
    #[test]
    fn keeps_versions_and_refuses_duplicates_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = make_box(dir.path(), "a.box", LIBVIRT_AMD64, b"one");
        let b2 = make_box(dir.path(), "b.box", LIBVIRT_AMD64, b"two");
        let arm = LIBVIRT_AMD64.replace("amd64", "arm64");
        let b3 = make_box(dir.path(), "c.box", &arm, b"three");
        update(&config(dir.path(), "1.0.0"), &b1, "testos", false).unwrap();
        let up = update(&config(dir.path(), "1.1.0"), &b2, "testos", false).unwrap();
        update(&config(dir.path(), "1.1.0"), &b3, "testos", false).unwrap();
        let cat = read(&up.catalog);
        let versions: Vec<&Value> = cat["versions"].as_array().unwrap().iter().collect();
        assert_eq!(versions.len(), 2);
        assert_eq!(
            versions[0]["providers"][0]["url"],
            "https://boxes.example/1.0.0/a.box"
        );
        let archs: Vec<&Value> = versions[1]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["architecture"])
            .collect();
        assert_eq!(archs, [&json!("amd64"), &json!("arm64")]);

        let before = std::fs::read(&up.catalog).unwrap();
        let err = update(&config(dir.path(), "1.1.0"), &b1, "testos", false).unwrap_err();
        assert!(
            matches!(&err, Error::AlreadyListed { version, provider, architecture: Some(a), .. }
                if version == "1.1.0" && provider == "libvirt" && a == "amd64"),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&up.catalog).unwrap(), before, "unchanged");

        let forced = update(&config(dir.path(), "1.1.0"), &b1, "testos", true).unwrap();
        assert!(forced.replaced);
        let cat = read(&up.catalog);
        let providers = cat["versions"][1]["providers"].as_array().unwrap();
        assert_eq!(providers.len(), 2);
        assert_eq!(providers[0]["url"], "https://boxes.example/1.1.0/a.box");
        assert_eq!(
            providers[0]["checksum"],
            json!(checksum::hash_file(&b1, ChecksumType::Sha256).unwrap())
        );
        assert_eq!(providers[1]["architecture"], "arm64");
    }

    /// Builds publishing to one catalog at once each add their version (the directory lock).
    #[test]
    fn concurrent_updates_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let root = dir.path().to_owned();
                std::thread::spawn(move || {
                    let b = make_box(&root, &format!("{i}.box"), LIBVIRT_AMD64, b"x");
                    update(&config(&root, &format!("1.{i}")), &b, "testos", false).unwrap()
                })
            })
            .collect();
        let catalog = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .last()
            .unwrap()
            .catalog;
        let mut versions: Vec<String> = read(&catalog)["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_owned())
            .collect();
        versions.sort();
        assert_eq!(versions, ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]);
        assert_eq!(leftovers(catalog.parent().unwrap()), Vec::<String>::new());
    }

    #[test]
    fn name_defaults_and_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let b = make_box(dir.path(), "t.box", LIBVIRT_AMD64, b"x");
        let mut cfg = config(dir.path(), "1");
        cfg.catalog = dir.path().join("boxes.json").display().to_string();
        cfg.box_name = None;
        cfg.description = None;
        let up = update(&cfg, &b, "testos", false).unwrap();
        assert_eq!(up.box_name, "testos", "the build's name for a new catalog");
        assert_eq!(read(&up.catalog).get("description"), None);
        cfg.version = "2".into();
        assert_eq!(update(&cfg, &b, "other", false).unwrap().box_name, "testos");
        cfg.version = "3".into();
        cfg.box_name = Some("acme/else".into());
        let err = update(&cfg, &b, "testos", false).unwrap_err();
        assert!(matches!(err, Error::OtherBox { .. }), "{err:?}");
    }

    /// Files that are not catalogs are left alone, with an error naming them.
    #[test]
    fn refuses_what_is_not_a_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let b = make_box(dir.path(), "t.box", LIBVIRT_AMD64, b"x");
        let cfg = config(dir.path(), "1.0.0");
        let path = catalog_path(&cfg, "testos");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for (text, parse) in [
            ("not json", true),
            ("[1, 2]", false),
            (r#"{"versions": {"1": 2}}"#, false),
            (
                r#"{"versions": [{"version": "1.0.0", "providers": 3}]}"#,
                false,
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = update(&cfg, &b, "testos", false).unwrap_err();
            if parse {
                assert!(matches!(err, Error::ParseCatalog { .. }), "{text}: {err:?}");
            } else {
                assert!(matches!(err, Error::NotACatalog { .. }), "{text}: {err:?}");
            }
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        assert_eq!(leftovers(path.parent().unwrap()), Vec::<String>::new());
    }

    #[test]
    fn input_must_be_a_box() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.qcow2");
        std::fs::write(&disk, b"QFI\xfb not a tar").unwrap();
        let err = update(&config(dir.path(), "1.0.0"), &disk, "testos", false).unwrap_err();
        assert!(matches!(err, Error::NotABox { .. }), "{err:?}");
        // A tar without a provider is no box either.
        let b = make_box(dir.path(), "t.box", r#"{"format":"qcow2"}"#, b"x");
        let err = update(&config(dir.path(), "1.0.0"), &b, "testos", false).unwrap_err();
        assert!(matches!(err, Error::NotABox { .. }), "{err:?}");

        let (a, b) = (dir.path().join("x.box"), dir.path().join("x.sha256"));
        assert_eq!(box_of(&[a.clone(), b.clone()]).unwrap(), a);
        assert_eq!(box_of(std::slice::from_ref(&b)).unwrap(), b);
        assert!(matches!(box_of(&[]), Err(Error::NoBox { .. })));
        assert!(matches!(
            box_of(&[a.clone(), a.with_extension("1.box")]),
            Err(Error::NoBox { .. })
        ));
    }

    #[test]
    fn plain_and_zstd_boxes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let gz = make_box(dir.path(), "t.box", LIBVIRT_AMD64, b"x");
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let plain = dir.path().join("plain.box");
        std::fs::write(&plain, &tar_bytes).unwrap();
        let zst = dir.path().join("z.box");
        std::fs::write(&zst, zstd::encode_all(&tar_bytes[..], 3).unwrap()).unwrap();
        for b in [plain, zst] {
            assert_eq!(box_metadata(&b).unwrap()["architecture"], "amd64", "{b:?}");
        }
    }

    #[test]
    fn urls_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let b = make_box(dir.path(), "t.box", LIBVIRT_AMD64, b"x");
        let mut cfg = config(dir.path(), "1.0.0");
        cfg.url = "boxes/{{ .BoxName }}".into();
        let err = update(&cfg, &b, "testos", false).unwrap_err();
        assert!(matches!(err, Error::RelativeUrl { .. }), "{err:?}");
        for (url, ok) in [
            ("https://x/{{ .BoxName }}", true),
            ("FILE:///srv/boxes/t.box", true),
            ("http://x", true),
            ("/srv/boxes/t.box", false),
            ("ftp://x/t.box", false),
        ] {
            assert_eq!(absolute_url(url), ok, "{url}");
        }
        for (v, ok) in [
            ("1", true),
            ("1.2.3", true),
            ("2026.06.01", true),
            ("1.0.0-beta.1", true),
            ("1.0.a", true),
            ("v1.0", false),
            ("", false),
            ("1..2", false),
            ("1.0 ", false),
            ("1.0/2", false),
        ] {
            assert_eq!(valid_version(v), ok, "{v:?}");
        }
    }
}
