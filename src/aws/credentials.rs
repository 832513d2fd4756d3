//! Where a build's AWS credentials and region come from, in the AWS SDKs' order:
//!
//! 1. the template's `access_key` / `secret_key` (with `token`, or `AWS_SESSION_TOKEN`);
//! 2. a profile named by the template's `profile` or by `AWS_PROFILE`: from the shared
//!    credentials file, then the shared config file (a named profile that is missing is an
//!    error, not a fall-through);
//! 3. the environment: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or the older
//!    `AWS_ACCESS_KEY` / `AWS_SECRET_KEY`) and `AWS_SESSION_TOKEN`;
//! 4. the `default` profile of the shared files.
//!
//! The shared credentials file is `shared_credentials_file`, `AWS_SHARED_CREDENTIALS_FILE` or
//! `~/.aws/credentials`; the config file `AWS_CONFIG_FILE` or `~/.aws/config`. The region is
//! `region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, or the profile's `region`.
//!
//! Nothing here runs while a template is validated: credentials are looked up when a build
//! starts. Profiles that assume roles, use SSO or run a `credential_process`, and instance or
//! container credentials, are not supported yet: such a profile is an error naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::types::Secret;

/// A key pair (and session token, for temporary credentials) that signs requests.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The template's say in credentials and region (Packer's access options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `region`; `None` to take it from the environment or the profile.
    pub region: Option<String>,
    /// `access_key` / `secret_key` (both or neither).
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    /// `token`: the session token of temporary credentials.
    pub token: Option<Secret>,
    /// `profile`.
    pub profile: Option<String>,
    /// `shared_credentials_file`.
    pub shared_credentials_file: Option<PathBuf>,
    /// `custom_endpoint_ec2`: the EC2 endpoint URL instead of AWS's.
    pub custom_endpoint_ec2: Option<String>,
    /// `insecure_skip_tls_verify`: accept any TLS certificate from the endpoint.
    pub insecure_skip_tls_verify: bool,
    /// `max_retries` (Packer's default 10): attempts for throttled or failed requests.
    pub max_retries: u32,
}

/// Credentials and region, with where the credentials came from (for the build's log; never
/// the secret).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub credentials: Credentials,
    pub region: String,
    /// `the template`, `the environment`, `profile "x" in ~/.aws/credentials`, …
    pub source: String,
}

/// Why no credentials or region could be found.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// None of the places in the chain had credentials.
    #[error(
        "No AWS credentials found: not in the template (`access_key`/`secret_key`), the \
         environment (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) or the default profile of \
         `{}`",
        credentials_file.display()
    )]
    NoCredentials { credentials_file: PathBuf },
    /// A named profile is in neither shared file.
    #[error("AWS profile `{profile}` is in neither `{}` nor `{}`", credentials_file.display(), config_file.display())]
    NoProfile {
        profile: String,
        credentials_file: PathBuf,
        config_file: PathBuf,
    },
    /// A profile gets its credentials in a way kiln does not support yet.
    #[error("AWS profile `{profile}` uses `{key}`, which kiln does not support yet")]
    UnsupportedProfile { profile: String, key: String },
    /// A profile has only half a key pair.
    #[error("AWS profile `{profile}` in `{}` has no `{missing}`", path.display())]
    IncompleteProfile {
        profile: String,
        path: PathBuf,
        missing: &'static str,
    },
    /// A shared file exists but cannot be read.
    #[error("Cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No region anywhere.
    #[error("No AWS region: set `region` in the source, or `AWS_REGION` / `AWS_DEFAULT_REGION`")]
    NoRegion,
}

/// Resolves credentials and region for `config`, reading variables through `env` (the
/// process environment in a build; a table in tests).
pub fn resolve(
    config: &AccessConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, Error> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let home = var("HOME").map(PathBuf::from).unwrap_or_default();
    let credentials_file = config
        .shared_credentials_file
        .clone()
        .or_else(|| var("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from))
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_file = var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let named = config.profile.clone().or_else(|| var("AWS_PROFILE"));
    let profile_name = named.clone().unwrap_or_else(|| "default".to_owned());
    let profile = Profile::read(&profile_name, &credentials_file, &config_file)?;

    let token_env = || var("AWS_SESSION_TOKEN").map(Secret::new);
    let (credentials, source) =
        if let (Some(id), Some(secret)) = (&config.access_key, &config.secret_key) {
            let creds = Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: config.token.clone().or_else(token_env),
            };
            (creds, "the template".to_owned())
        } else if let Some(name) = &named {
            match profile.credentials()? {
                Some(found) => found,
                None => {
                    return Err(Error::NoProfile {
                        profile: name.clone(),
                        credentials_file,
                        config_file,
                    });
                }
            }
        } else if let (Some(id), Some(secret)) = (
            var("AWS_ACCESS_KEY_ID").or_else(|| var("AWS_ACCESS_KEY")),
            var("AWS_SECRET_ACCESS_KEY").or_else(|| var("AWS_SECRET_KEY")),
        ) {
            let creds = Credentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: token_env(),
            };
            (creds, "the environment".to_owned())
        } else {
            match profile.credentials()? {
                Some(found) => found,
                None => return Err(Error::NoCredentials { credentials_file }),
            }
        };
    let region = config
        .region
        .clone()
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| profile.config.get("region").cloned())
        .ok_or(Error::NoRegion)?;
    Ok(Resolved {
        credentials,
        region,
        source,
    })
}

/// One profile as the two shared files have it.
struct Profile {
    name: String,
    /// Its section of the credentials file (`[name]`), and where that is.
    credentials: Option<(PathBuf, BTreeMap<String, String>)>,
    /// Its section of the config file (`[profile name]`, or `[default]`).
    config: BTreeMap<String, String>,
    config_path: PathBuf,
}

impl Profile {
    fn read(name: &str, credentials_file: &Path, config_file: &Path) -> Result<Profile, Error> {
        let credentials = read_ini(credentials_file)?
            .remove(name)
            .map(|s| (credentials_file.to_owned(), s));
        let mut config_sections = read_ini(config_file)?;
        let config = config_sections
            .remove(&format!("profile {name}"))
            .or_else(|| (name == "default").then(|| config_sections.remove("default"))?)
            .unwrap_or_default();
        Ok(Profile {
            name: name.to_owned(),
            credentials,
            config,
            config_path: config_file.to_owned(),
        })
    }

    /// The profile's static keys (credentials file first), `None` when it has none.
    fn credentials(&self) -> Result<Option<(Credentials, String)>, Error> {
        let sections = self
            .credentials
            .iter()
            .map(|(p, s)| (p.clone(), s))
            .chain(std::iter::once((self.config_path.clone(), &self.config)));
        for (path, section) in sections {
            for key in [
                "role_arn",
                "credential_process",
                "sso_start_url",
                "sso_session",
                "web_identity_token_file",
            ] {
                if section.contains_key(key) && !section.contains_key("aws_access_key_id") {
                    return Err(Error::UnsupportedProfile {
                        profile: self.name.clone(),
                        key: key.to_owned(),
                    });
                }
            }
            let id = section.get("aws_access_key_id");
            let secret = section.get("aws_secret_access_key");
            match (id, secret) {
                (None, None) => continue,
                (Some(id), Some(secret)) => {
                    let creds = Credentials {
                        access_key_id: id.clone(),
                        secret_access_key: Secret::new(secret),
                        session_token: section.get("aws_session_token").map(Secret::new),
                    };
                    let source = format!("profile `{}` in `{}`", self.name, path.display());
                    return Ok(Some((creds, source)));
                }
                (id, _) => {
                    return Err(Error::IncompleteProfile {
                        profile: self.name.clone(),
                        path,
                        missing: if id.is_none() {
                            "aws_access_key_id"
                        } else {
                            "aws_secret_access_key"
                        },
                    });
                }
            }
        }
        Ok(None)
    }
}

/// The sections of an AWS shared file (`[name]` then `key = value` lines; `#` and `;` start
/// comments). A missing file has none.
fn read_ini(path: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        vars: Vec<(String, String)>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join(".aws")).unwrap();
            let home = dir.path().display().to_string();
            Fixture {
                dir,
                vars: vec![("HOME".into(), home)],
            }
        }
        fn file(self, name: &str, text: &str) -> Fixture {
            std::fs::write(self.dir.path().join(".aws").join(name), text).unwrap();
            self
        }
        fn var(mut self, k: &str, v: &str) -> Fixture {
            self.vars.push((k.into(), v.into()));
            self
        }
        fn resolve(&self, config: &AccessConfig) -> Result<Resolved, Error> {
            resolve(config, &|name| {
                self.vars
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        }
    }

    const FILES: &str = "[default]\naws_access_key_id = DEFAULTID\naws_secret_access_key = d\n\
                         \n# a comment\n[ci]\naws_access_key_id=CIID\naws_secret_access_key=c\n\
                         aws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n[profile ci]\nregion = us-west-2\n\
                          [profile cfgonly]\naws_access_key_id = CFGID\n\
                          aws_secret_access_key = x\n[profile role]\nrole_arn = arn:x\n";

    fn with_region() -> AccessConfig {
        AccessConfig {
            region: Some("us-east-1".into()),
            ..AccessConfig::default()
        }
    }

    #[test]
    fn the_chain_in_the_sdks_order() {
        let f = Fixture::new()
            .file("credentials", FILES)
            .file("config", CONFIG)
            .var("AWS_ACCESS_KEY_ID", "ENVID")
            .var("AWS_SECRET_ACCESS_KEY", "e");
        // The template's keys win over everything.
        let mut c = with_region();
        c.access_key = Some("TPLID".into());
        c.secret_key = Some(Secret::new("t"));
        assert_eq!(f.resolve(&c).unwrap().credentials.access_key_id, "TPLID");
        // A named profile wins over the environment.
        let mut c = with_region();
        c.profile = Some("ci".into());
        let r = f.resolve(&c).unwrap();
        assert_eq!(r.credentials.access_key_id, "CIID");
        assert_eq!(r.credentials.session_token.unwrap().expose(), "tok");
        assert!(r.source.contains("profile `ci`"), "{}", r.source);
        // Then the environment, then the default profile.
        assert_eq!(
            f.resolve(&with_region()).unwrap().credentials.access_key_id,
            "ENVID"
        );
        let f = Fixture::new().file("credentials", FILES);
        assert_eq!(
            f.resolve(&with_region()).unwrap().credentials.access_key_id,
            "DEFAULTID"
        );
    }

    #[test]
    fn profiles_from_the_environment_and_the_config_file() {
        let f = Fixture::new()
            .file("credentials", FILES)
            .file("config", CONFIG)
            .var("AWS_PROFILE", "cfgonly");
        let r = f.resolve(&with_region()).unwrap();
        assert_eq!(r.credentials.access_key_id, "CFGID");
        // A profile without a region does not borrow the default profile's: an error.
        assert!(matches!(
            f.resolve(&AccessConfig::default()),
            Err(Error::NoRegion)
        ));
        // The profile's own region.
        let f = Fixture::new()
            .file("credentials", FILES)
            .file("config", CONFIG)
            .var("AWS_PROFILE", "ci");
        assert_eq!(
            f.resolve(&AccessConfig::default()).unwrap().region,
            "us-west-2"
        );
        let f = f.var("AWS_REGION", "ap-south-1");
        assert_eq!(
            f.resolve(&AccessConfig::default()).unwrap().region,
            "ap-south-1"
        );
    }

    #[test]
    fn errors_name_what_is_missing() {
        let f = Fixture::new().file("config", CONFIG);
        assert!(matches!(
            f.resolve(&with_region()),
            Err(Error::NoCredentials { .. })
        ));
        let mut c = with_region();
        c.profile = Some("nope".into());
        assert!(matches!(f.resolve(&c), Err(Error::NoProfile { .. })));
        c.profile = Some("role".into());
        let e = f.resolve(&c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AWS profile `role` uses `role_arn`, which kiln does not support yet"
        );
        let f = Fixture::new()
            .var("AWS_ACCESS_KEY_ID", "X")
            .var("AWS_SECRET_ACCESS_KEY", "y");
        assert!(matches!(
            f.resolve(&AccessConfig::default()),
            Err(Error::NoRegion)
        ));
        let f = Fixture::new().file("credentials", "[default]\naws_access_key_id = X\n");
        assert!(matches!(
            f.resolve(&with_region()),
            Err(Error::IncompleteProfile {
                missing: "aws_secret_access_key",
                ..
            })
        ));
    }

    #[test]
    fn shared_credentials_file_option_and_session_token_from_env() {
        let f = Fixture::new().var("AWS_SESSION_TOKEN", "envtok");
        let other = f.dir.path().join("creds");
        std::fs::write(
            &other,
            "[default]\naws_access_key_id=OTHER\naws_secret_access_key=o\n",
        )
        .unwrap();
        let mut c = with_region();
        c.shared_credentials_file = Some(other);
        assert_eq!(f.resolve(&c).unwrap().credentials.access_key_id, "OTHER");
        let mut c = with_region();
        c.access_key = Some("A".into());
        c.secret_key = Some(Secret::new("s"));
        let r = f.resolve(&c).unwrap();
        assert_eq!(r.credentials.session_token.unwrap().expose(), "envtok");
    }
}
