//! The AWS shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`) and
//! what one of their profiles says about where credentials come from, for the Bedrock
//! adapter's credential chain ([`super::aws_credentials`]).
//!
//! A profile is the union of `[profile NAME]` (or `[default]`) in the config file and `[NAME]`
//! in the credentials file; the credentials file wins a key both set. In a profile, first match
//! wins (the AWS SDKs' order):
//!
//! 1. `role_arn` with `web_identity_token_file`: the role assumed with that token;
//! 2. `role_arn` with `source_profile` (another profile's credentials, chains allowed, cycles
//!    refused; a profile that names itself uses its own keys) or `credential_source`
//!    (`Environment`, `Ec2InstanceMetadata`, `EcsContainer`): STS `AssumeRole`, with
//!    `external_id`, `role_session_name`, `duration_seconds`;
//! 3. `sso_account_id` + `sso_role_name` with `sso_session` (an `[sso-session NAME]` section with
//!    `sso_region`, `sso_start_url`) or the legacy `sso_start_url` + `sso_region`: IAM Identity
//!    Center role credentials, with the access token `aws sso login` cached;
//! 4. `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`);
//! 5. `credential_process`: a command that prints the credentials as JSON.
//!
//! Errors name the file, the line and the key, never a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use phiguard_crypto::sigv4::Credentials;
use secrecy::SecretString;

/// `duration_seconds` bounds (STS `AssumeRole`).
const DURATION_SECONDS: std::ops::RangeInclusive<u32> = 900..=43_200;
/// `AssumeRole` sessions last this long unless the profile says otherwise.
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;
/// How many `source_profile` hops a chain may take.
const MAX_CHAIN: usize = 8;

/// One key's value and where it was read, for errors.
#[derive(Clone)]
struct Entry {
    value: String,
    at: String,
}

type Section = HashMap<String, Entry>;

/// The profiles and SSO sessions of both files.
#[derive(Default)]
pub struct Profiles {
    profiles: HashMap<String, Section>,
    sso_sessions: HashMap<String, Section>,
}

/// Where a profile's credentials come from.
pub enum ProfileSource {
    Keys(Credentials),
    Process {
        command: String,
    },
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session_name: Option<String>,
    },
    AssumeRole {
        role: RoleToAssume,
        source: Box<ProfileSource>,
    },
    /// `credential_source`: the environment's keys, the instance metadata service or the
    /// container credentials endpoint, as the environment names them.
    Named(NamedSource),
    Sso {
        /// `sso_region`.
        region: String,
        account_id: String,
        role_name: String,
        /// The `aws sso login` cache file's key: the session name, or the legacy start URL.
        cache_key: String,
    },
}

/// `credential_source` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedSource {
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

/// What `AssumeRole` is called with.
#[derive(Clone)]
pub struct RoleToAssume {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    pub duration_seconds: u32,
}

impl Profiles {
    /// Reads both files; a file that is not there holds no profiles.
    pub fn load(config: Option<&Path>, credentials: Option<&Path>) -> Result<Profiles, String> {
        let mut out = Profiles::default();
        if let Some(file) = config {
            out.read(file, true)?;
        }
        if let Some(file) = credentials {
            out.read(file, false)?;
        }
        Ok(out)
    }

    /// Whether the profile is in either file.
    pub fn has(&self, name: &str) -> bool {
        self.profiles.contains_key(name)
    }

    fn read(&mut self, file: &Path, is_config: bool) -> Result<(), String> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => return Err(format!("cannot read {}", file.display())),
        };
        // Where the current section's keys go: `None` inside a section that is not read.
        let mut target: Option<(bool, String)> = None;
        // The last key had no value: indented lines after it are its sub-keys (`s3 =`).
        let mut nested = false;
        for (n, raw) in text.lines().enumerate() {
            let at = format!("{}:{}", file.display(), n + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) && nested {
                continue;
            }
            nested = false;
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{at}: a section header without ]"))?
                    .trim();
                target = section_of(name, is_config);
                if let Some((_, n)) = &target
                    && n.is_empty()
                {
                    return Err(format!("{at}: a section without a name"));
                }
                if let Some((profile, name)) = &target {
                    let map = if *profile {
                        &mut self.profiles
                    } else {
                        &mut self.sso_sessions
                    };
                    map.entry(name.clone()).or_default();
                }
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("{at}: expected key = value"))?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k.is_empty() {
                return Err(format!("{at}: a value without a key"));
            }
            nested = v.is_empty();
            let Some((profile, name)) = &target else {
                continue;
            };
            let map = if *profile {
                &mut self.profiles
            } else {
                &mut self.sso_sessions
            };
            let section = map.entry(name.clone()).or_default();
            // The credentials file (read second) wins a key both files set.
            section.insert(k, Entry { value: v, at });
        }
        Ok(())
    }

    /// Where profile `name`'s credentials come from; `Ok(None)` when it has none of the keys
    /// above (a profile that only sets a region).
    pub fn source(&self, name: &str) -> Result<Option<ProfileSource>, String> {
        self.source_in_chain(name, &mut Vec::new())
    }

    fn source_in_chain(
        &self,
        name: &str,
        chain: &mut Vec<String>,
    ) -> Result<Option<ProfileSource>, String> {
        let Some(p) = self.profiles.get(name) else {
            return Err(format!("no profile \"{name}\""));
        };
        chain.push(name.to_string());
        let get = |k: &str| p.get(k).filter(|e| !e.value.is_empty());
        let needs = |k: &str, why: &str| {
            get(k)
                .map(|e| e.value.clone())
                .ok_or_else(|| format!("profile \"{name}\": {why} needs {k}"))
        };
        if let Some(role) = get("role_arn") {
            let session_name = get("role_session_name").map(|e| e.value.clone());
            if let Some(token_file) = get("web_identity_token_file") {
                return Ok(Some(ProfileSource::WebIdentity {
                    role_arn: role.value.clone(),
                    token_file: PathBuf::from(&token_file.value),
                    session_name,
                }));
            }
            let duration_seconds = match get("duration_seconds") {
                None => DEFAULT_DURATION_SECONDS,
                Some(e) => e
                    .value
                    .parse()
                    .ok()
                    .filter(|d| DURATION_SECONDS.contains(d))
                    .ok_or_else(|| {
                        format!(
                            "{}: duration_seconds: a whole number of seconds from {} to {}",
                            e.at,
                            DURATION_SECONDS.start(),
                            DURATION_SECONDS.end()
                        )
                    })?,
            };
            let role = RoleToAssume {
                role_arn: role.value.clone(),
                external_id: get("external_id").map(|e| e.value.clone()),
                session_name,
                duration_seconds,
            };
            let source = match (get("source_profile"), get("credential_source")) {
                (Some(_), Some(e)) => {
                    return Err(format!(
                        "{}: set source_profile or credential_source, not both",
                        e.at
                    ));
                }
                (Some(s), None) if s.value == name => {
                    // A profile that names itself assumes the role with its own keys.
                    keys_of(p, name)?.map(ProfileSource::Keys).ok_or_else(|| {
                        format!(
                            "{}: profile \"{name}\" is its own source_profile but has no keys",
                            s.at
                        )
                    })?
                }
                (Some(s), None) => {
                    if chain.contains(&s.value) || chain.len() >= MAX_CHAIN {
                        return Err(format!(
                            "{}: source_profile: the chain {} loops or is too long",
                            s.at,
                            chain.join(" → ")
                        ));
                    }
                    match self.source_in_chain(&s.value, chain) {
                        Ok(Some(src)) => src,
                        Ok(None) => {
                            return Err(format!(
                                "{}: source_profile \"{}\" has no credentials",
                                s.at, s.value
                            ));
                        }
                        Err(e) => return Err(format!("{}: source_profile: {e}", s.at)),
                    }
                }
                (None, Some(c)) => ProfileSource::Named(match c.value.as_str() {
                    "Environment" => NamedSource::Environment,
                    "Ec2InstanceMetadata" => NamedSource::Ec2InstanceMetadata,
                    "EcsContainer" => NamedSource::EcsContainer,
                    _ => {
                        return Err(format!(
                            "{}: credential_source: Environment, Ec2InstanceMetadata or \
                             EcsContainer",
                            c.at
                        ));
                    }
                }),
                (None, None) => {
                    return Err(format!(
                        "profile \"{name}\": role_arn needs source_profile, credential_source \
                         or web_identity_token_file"
                    ));
                }
            };
            return Ok(Some(ProfileSource::AssumeRole {
                role,
                source: Box::new(source),
            }));
        }
        if get("sso_account_id").is_some() || get("sso_role_name").is_some() {
            let account_id = needs("sso_account_id", "IAM Identity Center")?;
            let role_name = needs("sso_role_name", "IAM Identity Center")?;
            let (region, cache_key) = match get("sso_session") {
                Some(s) => {
                    let session = self.sso_sessions.get(&s.value).ok_or_else(|| {
                        format!(
                            "{}: sso_session: no [sso-session {}] section",
                            s.at, s.value
                        )
                    })?;
                    let region = session
                        .get("sso_region")
                        .filter(|e| !e.value.is_empty())
                        .ok_or_else(|| format!("[sso-session {}] needs sso_region", s.value))?;
                    (region.value.clone(), s.value.clone())
                }
                None => (
                    needs("sso_region", "IAM Identity Center")?,
                    needs("sso_start_url", "IAM Identity Center")?,
                ),
            };
            if !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(format!("profile \"{name}\": sso_region is not a region"));
            }
            return Ok(Some(ProfileSource::Sso {
                region,
                account_id,
                role_name,
                cache_key,
            }));
        }
        if let Some(keys) = keys_of(p, name)? {
            return Ok(Some(ProfileSource::Keys(keys)));
        }
        if let Some(command) = get("credential_process") {
            return Ok(Some(ProfileSource::Process {
                command: command.value.clone(),
            }));
        }
        Ok(None)
    }
}

/// `[default]`, `[profile NAME]` and `[sso-session NAME]` in the config file, `[NAME]` in the
/// credentials file: `(is a profile, name)`; `None` for sections not read (`[services …]`).
fn section_of(header: &str, is_config: bool) -> Option<(bool, String)> {
    if !is_config {
        return Some((true, header.to_string()));
    }
    if header == "default" {
        return Some((true, header.to_string()));
    }
    let mut words = header.splitn(2, char::is_whitespace);
    match (words.next(), words.next().map(str::trim)) {
        (Some("profile"), Some(name)) => Some((true, name.to_string())),
        (Some("sso-session"), Some(name)) => Some((false, name.to_string())),
        _ => None,
    }
}

/// The profile's access keys, if it has any.
fn keys_of(p: &Section, name: &str) -> Result<Option<Credentials>, String> {
    let get = |k: &str| p.get(k).map(|e| e.value.clone()).filter(|v| !v.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Credentials::new(
            id,
            SecretString::from(secret),
            get("aws_session_token").map(SecretString::from),
        )
        .map(Some)
        .map_err(|e| format!("profile \"{name}\": {e}")),
        (None, None) => Ok(None),
        _ => Err(format!(
            "profile \"{name}\" needs both aws_access_key_id and aws_secret_access_key"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn load(config: &str, credentials: &str) -> (tempfile::TempDir, Profiles) {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("config");
        let k = dir.path().join("credentials");
        std::fs::write(&c, config).unwrap();
        std::fs::write(&k, credentials).unwrap();
        let p = Profiles::load(Some(&c), Some(&k)).unwrap();
        (dir, p)
    }

    fn key_id(s: &ProfileSource) -> &str {
        match s {
            ProfileSource::Keys(c) => c.access_key_id(),
            _ => panic!("not keys"),
        }
    }

    #[test]
    fn profiles_merge_both_files_and_resolve_in_the_sdks_order() {
        let (_d, p) = load(
            "[default]\nregion = us-east-1\n\n\
             [profile base]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 10\n\
             aws_access_key_id = AKIDCONFIG\naws_secret_access_key = from-config\n\
             [profile proc]\ncredential_process = /usr/bin/vault-aws --role x\n\
             [profile admin]\nrole_arn = arn:aws:iam::1:role/admin\nsource_profile = base\n\
             external_id = ext-1\nduration_seconds = 1800\n\
             [profile chained]\nrole_arn = arn:aws:iam::2:role/next\nsource_profile = admin\n\
             [profile ec2]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Ec2InstanceMetadata\n\
             [profile irsa]\nrole_arn = arn:aws:iam::1:role/x\nweb_identity_token_file = /var/run/token\n\
             [profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n\
             [sso-session corp]\nsso_region = us-east-2\nsso_start_url = https://corp.awsapps.com/start\n\
             [services local]\nbedrock-runtime =\n  endpoint_url = http://127.0.0.1:9\n",
            "[base]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = from-creds\n",
        );
        // A region-only profile has no credentials; the credentials file wins over the config.
        assert!(p.source("default").unwrap().is_none());
        assert_eq!(key_id(&p.source("base").unwrap().unwrap()), "AKIDCREDS");
        assert!(matches!(
            p.source("proc").unwrap().unwrap(),
            ProfileSource::Process { command } if command == "/usr/bin/vault-aws --role x"
        ));
        let Some(ProfileSource::AssumeRole { role, source }) = p.source("admin").unwrap() else {
            panic!("admin assumes a role")
        };
        assert_eq!(role.role_arn, "arn:aws:iam::1:role/admin");
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        assert_eq!(role.duration_seconds, 1800);
        assert_eq!(key_id(&source), "AKIDCREDS");
        // Role chaining: the next role's source is the first role.
        let Some(ProfileSource::AssumeRole { role, source }) = p.source("chained").unwrap() else {
            panic!("chained assumes a role")
        };
        assert_eq!(role.duration_seconds, DEFAULT_DURATION_SECONDS);
        assert!(matches!(*source, ProfileSource::AssumeRole { .. }));
        assert!(matches!(
            p.source("ec2").unwrap().unwrap(),
            ProfileSource::AssumeRole { source, .. }
                if matches!(*source, ProfileSource::Named(NamedSource::Ec2InstanceMetadata))
        ));
        assert!(matches!(
            p.source("irsa").unwrap().unwrap(),
            ProfileSource::WebIdentity { token_file, .. } if token_file == Path::new("/var/run/token")
        ));
        assert!(matches!(
            p.source("dev").unwrap().unwrap(),
            ProfileSource::Sso { region, account_id, role_name, cache_key }
                if region == "us-east-2" && account_id == "111122223333" && role_name == "Dev"
                    && cache_key == "corp"
        ));
        // `[services …]` is not a profile.
        assert!(!p.has("local"));
        assert!(
            p.source("nope")
                .err()
                .unwrap()
                .contains("no profile \"nope\"")
        );
    }

    #[test]
    fn bad_profiles_name_the_line_never_a_value() {
        let cases: &[(&str, &str)] = &[
            ("[profile a]\nrole_arn = arn:x\n", "needs source_profile"),
            (
                "[profile a]\nrole_arn = arn:x\nsource_profile = b\n[profile b]\nrole_arn = arn:y\nsource_profile = a\n",
                "loops",
            ),
            (
                "[profile a]\nrole_arn = arn:x\nsource_profile = a\n",
                "its own source_profile but has no keys",
            ),
            (
                "[profile a]\nrole_arn = arn:x\ncredential_source = Laptop\n",
                "config:3: credential_source",
            ),
            (
                "[profile a]\nrole_arn = arn:x\nsource_profile = b\ncredential_source = Environment\n",
                "not both",
            ),
            (
                "[profile a]\nrole_arn = arn:x\nsource_profile = b\nduration_seconds = 99\n[profile b]\ncredential_process = x\n",
                "config:4: duration_seconds",
            ),
            (
                "[profile a]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n",
                "no [sso-session s] section",
            ),
            ("[profile a]\nsso_account_id = 1\n", "needs sso_role_name"),
            (
                "[profile a]\naws_access_key_id = AKIDSECRETISH\n",
                "needs both",
            ),
            (
                "[profile a]\nrole_arn = arn:x\nsource_profile = b\n[profile b]\nregion = x\n",
                "has no credentials",
            ),
        ];
        for (config, want) in cases {
            let (_d, p) = load(config, "");
            let e = match p.source("a") {
                Err(e) => e,
                Ok(_) => panic!("{config}: accepted"),
            };
            assert!(e.contains(want), "{config}: {e}");
            assert!(!e.contains("AKIDSECRETISH"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("config");
        std::fs::write(&c, "[profile a]\naws_secret_access_key hunter2\n").unwrap();
        let e = Profiles::load(Some(&c), None).err().unwrap();
        assert!(e.ends_with("config:2: expected key = value"), "{e}");
        assert!(!e.contains("hunter2"));
        std::fs::write(&c, "[profile a\n").unwrap();
        let e = Profiles::load(Some(&c), None).err().unwrap();
        assert!(e.ends_with("config:1: a section header without ]"), "{e}");
        // Missing files hold no profiles.
        let p = Profiles::load(Some(&dir.path().join("none")), None).unwrap();
        assert!(!p.has("default"));
    }
}
