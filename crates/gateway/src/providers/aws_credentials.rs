//! Where the Bedrock adapter's AWS credentials come from, and their refresh.
//!
//! Long-lived access keys are what AWS itself advises against: a deployment on ECS, EKS or EC2
//! gets short-lived credentials from its task role, pod identity or instance profile, rotated
//! every few hours. The sources, first match wins (the AWS SDKs' order; IAM Identity Center
//! (SSO), `credential_process` and assume-role profiles are not among them):
//!
//! 1. `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`) in the provider's
//!    config;
//! 2. a named profile of the shared credentials file (`aws_profile`, file
//!    `aws_shared_credentials_file`, else `AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`);
//! 3. a container credentials endpoint named in the config (`aws_credentials_url`, with the
//!    authorization token read from `aws_credentials_token_file`);
//! 4. a role to assume with a web identity token named in the config (`aws_role_arn`,
//!    `aws_web_identity_token_file`; STS at `aws_sts_endpoint`, else `AWS_ENDPOINT_URL_STS`,
//!    else `https://sts.{region}.amazonaws.com`);
//! 5. the EC2 instance metadata service named in the config (`aws_imds_endpoint`);
//! 6. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 7. the `AWS_PROFILE` profile, or a `[default]` profile, of the shared credentials file;
//! 8. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA), through STS
//!    `AssumeRoleWithWebIdentity`;
//! 9. `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS task
//!    roles, EKS Pod Identity) with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN`;
//! 10. IMDSv2 (a session token first, then the instance profile's role), at
//!     `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`, unless
//!     `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Keys (1, 2, 6, 7) are fixed. Endpoint credentials (3, 4, 5, 8, 9, 10) are fetched on first
//! use and again five minutes before they expire; one fetch at a time. If a refresh fails while the
//! credentials held are still valid they are used; once they have expired the request is
//! refused (`cannot authenticate to the upstream`) and nothing is sent. Secrets never reach a
//! log line, an error or `Debug` output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use phiguard_crypto::sigv4::Credentials;
use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;

use super::UpstreamError;
use crate::config::ProviderConfig;

/// Endpoint credentials are fetched again this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The ECS agent's address, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";
/// The EC2 instance metadata service.
const IMDS_DEFAULT: &str = "http://169.254.169.254";
/// Each call to a credentials endpoint (all of them are link-local or loopback).
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where credentials are fetched from.
#[derive(Clone, PartialEq, Eq)]
enum Endpoint {
    /// A container credentials endpoint (ECS, EKS Pod Identity): GET, optional Authorization.
    Container {
        url: String,
        token: Option<TokenFrom>,
    },
    /// The EC2 instance metadata service, version 2.
    Imds { base: String },
    /// STS `AssumeRoleWithWebIdentity` with a projected service-account token (EKS IRSA).
    WebIdentity {
        sts: String,
        role_arn: String,
        session_name: String,
        token_file: PathBuf,
    },
}

#[derive(Clone, PartialEq, Eq)]
enum TokenFrom {
    /// Read on every fetch (EKS rotates the file).
    File(PathBuf),
    Value(String),
}

/// The credential source of one Bedrock provider.
pub struct AwsCredentials {
    source: &'static str,
    fixed: Option<Credentials>,
    endpoint: Option<Endpoint>,
    client: reqwest::Client,
    /// Endpoint credentials and when they expire.
    cache: tokio::sync::Mutex<Option<(Credentials, OffsetDateTime)>>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsCredentials({})", self.source)
    }
}

impl AwsCredentials {
    /// Fixed credentials (tests, callers that manage their own).
    pub fn fixed(credentials: Credentials, client: reqwest::Client) -> AwsCredentials {
        AwsCredentials {
            source: "given",
            fixed: Some(credentials),
            endpoint: None,
            client,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Picks the source for provider `p` (see the module's list), reading the process
    /// environment. No network call is made here. Credentials are fetched with a client of
    /// their own that ignores `HTTP(S)_PROXY`: the metadata and container endpoints are
    /// link-local, and their secrets must not pass through a proxy.
    pub fn resolve(p: &ProviderConfig) -> Result<AwsCredentials, String> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|_| "cannot build the HTTP client".to_string())?;
        AwsCredentials::resolve_with(p, client, &|k| {
            std::env::var(k).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`AwsCredentials::resolve`] with the environment given as a lookup function.
    pub fn resolve_with(
        p: &ProviderConfig,
        client: reqwest::Client,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AwsCredentials, String> {
        let (source, fixed, endpoint) = pick(p, env)?;
        Ok(AwsCredentials {
            source,
            fixed,
            endpoint,
            client,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// Which source was picked (`config`, `profile`, `container`, `instance metadata`,
    /// `environment`), for the start-up log. Never a secret.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Credentials good for a request signed now.
    pub async fn get(&self) -> Result<Credentials, UpstreamError> {
        if let Some(c) = &self.fixed {
            return Ok(c.clone());
        }
        let Some(endpoint) = &self.endpoint else {
            return Err(UpstreamError::Auth("no AWS credentials"));
        };
        let mut cache = self.cache.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some((c, expires)) = cache.as_ref()
            && now + REFRESH_MARGIN < *expires
        {
            return Ok(c.clone());
        }
        match self.fetch(endpoint).await {
            Ok((c, expires)) if now < expires => {
                *cache = Some((c.clone(), expires));
                Ok(c)
            }
            Ok(_) => Err(UpstreamError::Auth(
                "the AWS credentials fetched have expired",
            )),
            // Still valid, only inside the refresh margin: used while the endpoint is down.
            Err(e) => match cache.as_ref() {
                Some((c, expires)) if now < *expires => Ok(c.clone()),
                _ => Err(e),
            },
        }
    }

    /// Drops fetched credentials (after the upstream refused them as expired).
    pub async fn forget(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(
        &self,
        endpoint: &Endpoint,
    ) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
        match endpoint {
            Endpoint::Container { url, token } => {
                let mut rb = self.client.get(url).timeout(ENDPOINT_TIMEOUT);
                if let Some(t) = token {
                    let value = match t {
                        TokenFrom::Value(v) => v.clone(),
                        TokenFrom::File(path) => std::fs::read_to_string(path)
                            .map_err(|_| {
                                UpstreamError::Auth(
                                    "cannot read the container credentials token file",
                                )
                            })?
                            .trim()
                            .to_string(),
                    };
                    rb = rb.header("authorization", value);
                }
                let v = json_of(rb, "the container credentials endpoint").await?;
                parse_endpoint_credentials(&v)
            }
            Endpoint::WebIdentity {
                sts,
                role_arn,
                session_name,
                token_file,
            } => {
                let token = std::fs::read_to_string(token_file)
                    .map_err(|_| UpstreamError::Auth("cannot read the web identity token file"))?;
                let form = super::token::form_encode(&[
                    ("Action", "AssumeRoleWithWebIdentity"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", role_arn),
                    ("RoleSessionName", session_name),
                    ("WebIdentityToken", token.trim()),
                ]);
                let resp = self
                    .client
                    .post(format!("{sts}/"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .timeout(ENDPOINT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|_| UpstreamError::Auth("cannot reach STS"))?;
                if !resp.status().is_success() {
                    return Err(UpstreamError::Auth("STS refused the web identity token"));
                }
                let xml = resp
                    .text()
                    .await
                    .map_err(|_| UpstreamError::Auth("cannot read STS's answer"))?;
                parse_sts_credentials(&xml)
            }
            Endpoint::Imds { base } => {
                const WHO: &str = "the instance metadata service";
                let resp = self
                    .client
                    .put(format!("{base}/latest/api/token"))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    .timeout(ENDPOINT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|_| UpstreamError::Auth(WHO))?;
                if !resp.status().is_success() {
                    return Err(UpstreamError::Auth(WHO));
                }
                let token = resp.text().await.map_err(|_| UpstreamError::Auth(WHO))?;
                let list = format!("{base}/latest/meta-data/iam/security-credentials/");
                let resp = self
                    .client
                    .get(&list)
                    .header("x-aws-ec2-metadata-token", token.trim())
                    .timeout(ENDPOINT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|_| UpstreamError::Auth(WHO))?;
                if !resp.status().is_success() {
                    return Err(UpstreamError::Auth(
                        "the instance has no instance profile (no IAM role)",
                    ));
                }
                let roles = resp.text().await.map_err(|_| UpstreamError::Auth(WHO))?;
                let role = roles
                    .lines()
                    .map(str::trim)
                    .find(|r| !r.is_empty())
                    .filter(|r| {
                        r.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
                    })
                    .ok_or(UpstreamError::Auth(
                        "the instance has no instance profile (no IAM role)",
                    ))?;
                let rb = self
                    .client
                    .get(format!("{list}{role}"))
                    .header("x-aws-ec2-metadata-token", token.trim())
                    .timeout(ENDPOINT_TIMEOUT);
                let v = json_of(rb, WHO).await?;
                if v.get("Code")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c != "Success")
                {
                    return Err(UpstreamError::Auth(
                        "the instance metadata service has no credentials for the role",
                    ));
                }
                parse_endpoint_credentials(&v)
            }
        }
    }
}

async fn json_of(rb: reqwest::RequestBuilder, who: &'static str) -> Result<Value, UpstreamError> {
    let resp = rb.send().await.map_err(|_| UpstreamError::Auth(who))?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Auth(who));
    }
    resp.json().await.map_err(|_| UpstreamError::Auth(who))
}

/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}` as the container endpoints and
/// IMDS answer.
fn parse_endpoint_credentials(v: &Value) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    let bad = UpstreamError::Auth("the credentials endpoint's answer is not valid");
    let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(id), Some(secret), Some(expiration)) = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("Expiration"),
    ) else {
        return Err(bad);
    };
    let expires = OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad.clone())?;
    let creds = Credentials::new(
        id,
        SecretString::from(secret.to_string()),
        field("Token").map(|t| SecretString::from(t.to_string())),
    )
    .map_err(|_| bad)?;
    Ok((creds, expires))
}

/// The `<Credentials>` of an STS `AssumeRoleWithWebIdentityResponse` (XML).
fn parse_sts_credentials(xml: &str) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    use quick_xml::events::Event;
    let bad = UpstreamError::Auth("STS's answer is not valid");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    let mut current: Option<String> = None;
    let mut fields: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    loop {
        match reader.read_event().map_err(|_| bad.clone())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "Credentials" {
                    inside = true;
                } else if inside {
                    current = Some(name);
                }
            }
            Event::Text(t) => {
                if let Some(name) = &current {
                    let text = t.decode().map_err(|_| bad.clone())?;
                    fields.insert(name.clone(), text.trim().to_string());
                }
            }
            Event::End(e) => {
                if e.local_name().as_ref() == b"Credentials" {
                    inside = false;
                }
                current = None;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let v = serde_json::json!({
        "AccessKeyId": fields.get("AccessKeyId"),
        "SecretAccessKey": fields.get("SecretAccessKey"),
        "Token": fields.get("SessionToken"),
        "Expiration": fields.get("Expiration"),
    });
    parse_endpoint_credentials(&v)
}

type Picked = (&'static str, Option<Credentials>, Option<Endpoint>);

fn pick(p: &ProviderConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Picked, String> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let keys = |id: String, secret: String, token: Option<String>| {
        Credentials::new(
            id,
            SecretString::from(secret),
            token.map(SecretString::from),
        )
        .map_err(|e| e.to_string())
    };
    // 1. Keys in the config.
    match (set(&p.aws_access_key_id), set(&p.aws_secret_access_key)) {
        (Some(id), Some(secret)) => {
            return Ok((
                "config",
                Some(keys(id, secret, set(&p.aws_session_token))?),
                None,
            ));
        }
        (None, None) => {}
        _ => return Err("set both aws_access_key_id and aws_secret_access_key, or neither".into()),
    }
    let file = set(&p.aws_shared_credentials_file)
        .or_else(|| env("AWS_SHARED_CREDENTIALS_FILE"))
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".aws").join("credentials")));
    // 2. A profile named in the config.
    if let Some(profile) = set(&p.aws_profile) {
        let file = file
            .ok_or("aws_profile: no shared credentials file (set aws_shared_credentials_file)")?;
        let c = profile_keys(&file, &profile)?.ok_or_else(|| {
            format!(
                "aws_profile: no profile \"{profile}\" with keys in {}",
                file.display()
            )
        })?;
        return Ok(("profile", Some(c), None));
    }
    // 3. to 5. Endpoints named in the config.
    if let Some(url) = set(&p.aws_credentials_url) {
        check_secure_url(&url, true).map_err(|e| format!("aws_credentials_url: {e}"))?;
        let token = set(&p.aws_credentials_token_file).map(|f| TokenFrom::File(PathBuf::from(f)));
        return Ok(("container", None, Some(Endpoint::Container { url, token })));
    }
    let sts = |region: Option<&str>| -> Result<String, String> {
        let url = set(&p.aws_sts_endpoint)
            .or_else(|| env("AWS_ENDPOINT_URL_STS"))
            .unwrap_or_else(|| {
                format!(
                    "https://sts.{}.amazonaws.com",
                    region.unwrap_or("us-east-1")
                )
            });
        check_secure_url(&url, false).map_err(|e| format!("aws_sts_endpoint: {e}"))?;
        Ok(url.trim_end_matches('/').to_string())
    };
    let web_identity = |role_arn: String, token_file: String| -> Result<Picked, String> {
        let session_name = env("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("phiguard-{}", OffsetDateTime::now_utc().unix_timestamp()));
        let endpoint = Endpoint::WebIdentity {
            sts: sts(p.region.as_deref())?,
            role_arn,
            session_name,
            token_file: PathBuf::from(token_file),
        };
        Ok(("web identity", None, Some(endpoint)))
    };
    if let Some(role_arn) = set(&p.aws_role_arn) {
        let token_file = set(&p.aws_web_identity_token_file)
            .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE"))
            .ok_or(
                "aws_role_arn: needs aws_web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE)",
            )?;
        return web_identity(role_arn, token_file);
    }
    if let Some(base) = set(&p.aws_imds_endpoint) {
        let base = base.trim_end_matches('/').to_string();
        reqwest::Url::parse(&base).map_err(|_| "aws_imds_endpoint: not a URL".to_string())?;
        return Ok(("instance metadata", None, Some(Endpoint::Imds { base })));
    }
    // 6. The environment's keys.
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok((
                "environment",
                Some(keys(id, secret, env("AWS_SESSION_TOKEN"))?),
                None,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".to_string(),
            );
        }
    }
    // 7. The environment's profile, or the default one.
    if let Some(file) = &file {
        match env("AWS_PROFILE") {
            Some(profile) => {
                let c = profile_keys(file, &profile)?.ok_or_else(|| {
                    format!(
                        "AWS_PROFILE: no profile \"{profile}\" with keys in {}",
                        file.display()
                    )
                })?;
                return Ok(("profile", Some(c), None));
            }
            None => {
                if let Some(c) = profile_keys(file, "default")? {
                    return Ok(("profile", Some(c), None));
                }
            }
        }
    }
    // 8. Web identity (EKS IRSA).
    if let (Some(token_file), Some(role_arn)) =
        (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
    {
        return web_identity(role_arn, token_file);
    }
    // 9. Container credentials.
    let token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        .map(|f| TokenFrom::File(PathBuf::from(f)))
        .or_else(|| env("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(TokenFrom::Value));
    if let Some(rel) = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let url = format!("{ECS_HOST}{rel}");
        return Ok(("container", None, Some(Endpoint::Container { url, token })));
    }
    if let Some(url) = env("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        check_secure_url(&url, true)
            .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: {e}"))?;
        return Ok(("container", None, Some(Endpoint::Container { url, token })));
    }
    // 10. The instance metadata service.
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(
            "no AWS credentials: none in the config, the environment or a profile, \
                    and the instance metadata service is disabled"
                .to_string(),
        );
    }
    let base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| IMDS_DEFAULT.to_string())
        .trim_end_matches('/')
        .to_string();
    reqwest::Url::parse(&base)
        .map_err(|_| "AWS_EC2_METADATA_SERVICE_ENDPOINT: not a URL".to_string())?;
    Ok(("instance metadata", None, Some(Endpoint::Imds { base })))
}

/// A URL that receives a token or hands out secrets must not carry them in the clear over the
/// network: HTTPS, or plain HTTP to loopback (and, when `agents`, to the ECS / EKS agents'
/// link-local addresses: the rule the AWS SDKs apply to container credentials).
fn check_secure_url(url: &str, agents: bool) -> Result<(), &'static str> {
    let u = reqwest::Url::parse(url).map_err(|_| "not a URL")?;
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let local = match u.host() {
                Some(url::Host::Ipv4(a)) => {
                    a.is_loopback()
                        || agents
                            && (a == std::net::Ipv4Addr::new(169, 254, 170, 2)
                                || a == std::net::Ipv4Addr::new(169, 254, 170, 23))
                }
                Some(url::Host::Ipv6(a)) => {
                    a.is_loopback()
                        || agents
                            && a == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
                }
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if local {
                Ok(())
            } else {
                Err("plain HTTP only to loopback or the ECS/EKS agent addresses; use https")
            }
        }
        _ => Err("not an http(s) URL"),
    }
}

/// The keys of `profile` in a shared credentials file (INI: `[name]` sections of `key = value`
/// lines, `#` and `;` comments); `None` when the file or the profile is not there or has no
/// keys. Errors name the file and line, never a value.
fn profile_keys(file: &Path, profile: &str) -> Result<Option<Credentials>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(format!("cannot read {}", file.display())),
    };
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| {
                format!("{}:{}: a section header without ]", file.display(), n + 1)
            })?;
            inside = name.trim() == profile;
            continue;
        }
        if !inside {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected key = value", file.display(), n + 1))?;
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Credentials::new(
            id,
            SecretString::from(secret),
            token.map(SecretString::from),
        )
        .map(Some)
        .map_err(|e| format!("{}: profile \"{profile}\": {e}", file.display())),
        (None, None) => Ok(None),
        _ => Err(format!(
            "{}: profile \"{profile}\" needs both aws_access_key_id and aws_secret_access_key",
            file.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, put};
    use serde_json::json;

    use super::*;
    use crate::config::ProviderKind;

    fn bedrock() -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::Bedrock,
            endpoint: "https://bedrock-runtime.us-east-1.amazonaws.com".into(),
            models: vec!["m".into()],
            region: Some("us-east-1".into()),
            ..Default::default()
        }
    }

    async fn id(c: &AwsCredentials) -> String {
        c.get().await.unwrap().access_key_id().to_string()
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn resolve(p: &ProviderConfig, pairs: &[(&str, &str)]) -> Result<AwsCredentials, String> {
        AwsCredentials::resolve_with(p, reqwest::Client::new(), &env_of(pairs))
    }

    #[tokio::test]
    async fn sources_in_order_and_keys_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s-default\n\n\
             [prod]\naws_access_key_id=AKIDPROD\naws_secret_access_key=s-prod\naws_session_token = t-prod\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();

        // The config's keys beat everything.
        let mut p = bedrock();
        p.aws_access_key_id = Some("AKIDCONFIG".into());
        p.aws_secret_access_key = Some("s-config".into());
        let c = resolve(
            &p,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.source(), id(&c).await.as_str()),
            ("config", "AKIDCONFIG")
        );
        assert!(!format!("{c:?}").contains("s-config"));

        // A profile named in the config, from the file named in the config.
        let mut p = bedrock();
        p.aws_profile = Some("prod".into());
        p.aws_shared_credentials_file = Some(f.into());
        let c = resolve(
            &p,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
            ],
        )
        .unwrap();
        assert_eq!((c.source(), id(&c).await.as_str()), ("profile", "AKIDPROD"));
        assert_eq!(c.get().await.unwrap().session_token(), Some("t-prod"));
        p.aws_profile = Some("missing".into());
        let e = resolve(&p, &[]).unwrap_err();
        assert!(e.contains("no profile \"missing\""), "{e}");
        assert!(!e.contains("s-prod") && !e.contains("AKIDPROD"), "{e}");

        // The environment's keys, then AWS_PROFILE, then [default].
        let p = bedrock();
        let c = resolve(
            &p,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
                ("AWS_SHARED_CREDENTIALS_FILE", f),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.source(), id(&c).await.as_str()),
            ("environment", "AKIDENV")
        );
        let c = resolve(
            &p,
            &[("AWS_PROFILE", "prod"), ("AWS_SHARED_CREDENTIALS_FILE", f)],
        )
        .unwrap();
        assert_eq!(id(&c).await, "AKIDPROD");
        let c = resolve(&p, &[("AWS_SHARED_CREDENTIALS_FILE", f)]).unwrap();
        assert_eq!(id(&c).await, "AKIDDEFAULT");
        assert!(resolve(&p, &[("AWS_ACCESS_KEY_ID", "AKIDENV")]).is_err());

        // Then the container endpoint, then IMDS (unless disabled): picked without a call.
        let c = resolve(
            &p,
            &[(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            )],
        )
        .unwrap();
        assert_eq!(c.source(), "container");
        let e = resolve(
            &p,
            &[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://10.1.2.3/creds",
            )],
        )
        .err()
        .unwrap();
        assert!(e.contains("plain HTTP only to loopback"), "{e}");
        assert!(
            resolve(
                &p,
                &[(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://127.0.0.1:9/creds"
                )]
            )
            .is_ok()
        );
        assert!(
            resolve(
                &p,
                &[(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://[fd00:ec2::23]/creds"
                )]
            )
            .is_ok()
        );
        assert_eq!(resolve(&p, &[]).unwrap().source(), "instance metadata");
        let e = resolve(&p, &[("AWS_EC2_METADATA_DISABLED", "true")])
            .err()
            .unwrap();
        assert!(e.contains("no AWS credentials"), "{e}");
    }

    #[test]
    fn a_malformed_credentials_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, "[default]\naws_access_key_id AKIDX\n").unwrap();
        let e = profile_keys(&file, "default").unwrap_err();
        assert!(e.ends_with(":2: expected key = value"), "{e}");
        std::fs::write(&file, "[default]\naws_access_key_id = AKIDX\n").unwrap();
        let e = profile_keys(&file, "default").unwrap_err();
        assert!(e.contains("needs both"), "{e}");
        assert!(
            profile_keys(&dir.path().join("none"), "default")
                .unwrap()
                .is_none()
        );
    }

    /// A mock of IMDSv2 (session token required) and of a container credentials endpoint
    /// (Authorization required). Each fetch hands out a new key id, valid for `lifetime_secs`.
    #[derive(Clone)]
    struct Mock {
        fetches: Arc<AtomicUsize>,
        lifetime_secs: i64,
        up: Arc<std::sync::atomic::AtomicBool>,
    }

    fn answer(m: &Mock) -> axum::response::Response {
        use axum::response::IntoResponse;
        if !m.up.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let n = m.fetches.fetch_add(1, Ordering::SeqCst);
        let exp = OffsetDateTime::now_utc() + time::Duration::seconds(m.lifetime_secs);
        axum::Json(json!({
            "Code": "Success",
            "AccessKeyId": format!("ASIAFETCH{n}"),
            "SecretAccessKey": format!("secret-{n}"),
            "Token": format!("token-{n}"),
            "Expiration": exp.format(&time::format_description::well_known::Rfc3339).unwrap(),
        }))
        .into_response()
    }

    async fn start(m: Mock) -> String {
        let app = Router::new()
            .route(
                "/latest/api/token",
                put(|h: HeaderMap| async move {
                    match h.get("x-aws-ec2-metadata-token-ttl-seconds") {
                        Some(_) => Ok("imds-session"),
                        None => Err(StatusCode::BAD_REQUEST),
                    }
                }),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/",
                get(|h: HeaderMap| async move {
                    if h.get("x-aws-ec2-metadata-token")
                        .is_some_and(|v| v == "imds-session")
                    {
                        Ok("phiguard-role\n")
                    } else {
                        Err(StatusCode::UNAUTHORIZED)
                    }
                }),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/phiguard-role",
                get({
                    let m = m.clone();
                    move |h: HeaderMap| {
                        let m = m.clone();
                        async move {
                            if h.get("x-aws-ec2-metadata-token")
                                .is_some_and(|v| v == "imds-session")
                            {
                                answer(&m)
                            } else {
                                use axum::response::IntoResponse;
                                StatusCode::UNAUTHORIZED.into_response()
                            }
                        }
                    }
                }),
            )
            .route(
                "/container",
                get(move |h: HeaderMap| {
                    let m = m.clone();
                    async move {
                        if h.get("authorization").is_some_and(|v| v == "pod-token") {
                            answer(&m)
                        } else {
                            use axum::response::IntoResponse;
                            StatusCode::FORBIDDEN.into_response()
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn mock(lifetime_secs: i64) -> Mock {
        Mock {
            fetches: Arc::new(AtomicUsize::new(0)),
            lifetime_secs,
            up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    #[tokio::test]
    async fn imds_v2_credentials_are_cached_until_the_refresh_margin() {
        let m = mock(3600);
        let base = start(m.clone()).await;
        let mut p = bedrock();
        p.aws_imds_endpoint = Some(base);
        let c = resolve(&p, &[]).unwrap();
        assert_eq!(c.source(), "instance metadata");
        let first = c.get().await.unwrap();
        assert_eq!(first.access_key_id(), "ASIAFETCH0");
        assert_eq!(first.session_token(), Some("token-0"));
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAFETCH0");
        assert_eq!(
            m.fetches.load(Ordering::SeqCst),
            1,
            "fetched once for an hour"
        );
        assert!(!format!("{c:?}").contains("secret-0"));
    }

    #[tokio::test]
    async fn short_lived_credentials_are_fetched_again_and_kept_while_the_endpoint_is_down() {
        // Valid for 4 minutes: inside the 5-minute margin, so every request fetches again.
        let m = mock(240);
        let base = start(m.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "pod-token\n").unwrap();
        let mut p = bedrock();
        p.aws_credentials_url = Some(format!("{base}/container"));
        p.aws_credentials_token_file = Some(token_file.to_str().unwrap().into());
        let c = resolve(&p, &[]).unwrap();
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAFETCH0");
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAFETCH1");
        // The endpoint goes down: the held credentials are still valid, so they serve.
        m.up.store(false, Ordering::SeqCst);
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAFETCH1");
        // Forgotten (the upstream refused them) and the endpoint still down: refused.
        c.forget().await;
        let e = c.get().await.unwrap_err();
        assert!(matches!(e, UpstreamError::Auth(_)), "{e:?}");
        assert!(!e.to_string().contains("secret"), "{e}");
        // A wrong token is refused by the endpoint: no credentials.
        m.up.store(true, Ordering::SeqCst);
        std::fs::write(&token_file, "other").unwrap();
        assert!(c.get().await.is_err());
    }

    /// A mock STS answering `AssumeRoleWithWebIdentity` for the token `irsa-jwt` (XML, as STS
    /// does), and an `ErrorResponse` (403) otherwise.
    async fn start_sts(calls: Arc<AtomicUsize>) -> String {
        let app = Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let calls = calls.clone();
                async move {
                    use axum::response::IntoResponse;
                    calls.fetch_add(1, Ordering::SeqCst);
                    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    let ok = form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity")
                        && form.get("RoleArn").map(String::as_str)
                            == Some("arn:aws:iam::123456789012:role/phiguard")
                        && form.get("WebIdentityToken").map(String::as_str) == Some("irsa-jwt")
                        && form.get("RoleSessionName").is_some_and(|n| n.len() >= 2);
                    if !ok {
                        return (
                            StatusCode::FORBIDDEN,
                            "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>",
                        )
                            .into_response();
                    }
                    let exp = (OffsetDateTime::now_utc() + time::Duration::hours(1))
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap();
                    format!(
                        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ai:phiguard</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>irsa-session</SessionToken>
      <SecretAccessKey>irsa-secret</SecretAccessKey>
      <Expiration>{exp}</Expiration>
      <AccessKeyId>ASIAIRSA</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#
                    )
                    .into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn web_identity_through_sts() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sts = start_sts(calls.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "irsa-jwt\n").unwrap();
        let t = token.to_str().unwrap();
        let role = "arn:aws:iam::123456789012:role/phiguard";
        // From the environment (as EKS sets it), after keys and profiles.
        let env = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", t),
            ("AWS_ROLE_ARN", role),
            ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ];
        let c = resolve(&bedrock(), &env).unwrap();
        assert_eq!(c.source(), "web identity");
        let got = c.get().await.unwrap();
        assert_eq!(got.access_key_id(), "ASIAIRSA");
        assert_eq!(got.session_token(), Some("irsa-session"));
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "cached for the hour");
        assert!(!format!("{c:?}").contains("irsa"));
        // From the config; a wrong token is refused by STS: no credentials, no secret in the error.
        let mut p = bedrock();
        p.aws_role_arn = Some(role.into());
        p.aws_web_identity_token_file = Some(t.into());
        p.aws_sts_endpoint = Some(sts.clone());
        let c = resolve(&p, &[]).unwrap();
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAIRSA");
        std::fs::write(&token, "stolen").unwrap();
        let c = resolve(&p, &[]).unwrap();
        let e = c.get().await.unwrap_err();
        assert_eq!(e, UpstreamError::Auth("STS refused the web identity token"));
        // The token never crosses the network in clear, and a role needs its token file.
        p.aws_sts_endpoint = Some("http://sts.example.com".into());
        assert!(resolve(&p, &[]).err().unwrap().contains("use https"));
        p.aws_sts_endpoint = None;
        p.aws_web_identity_token_file = None;
        assert!(
            resolve(&p, &[])
                .err()
                .unwrap()
                .contains("needs aws_web_identity_token_file")
        );
        // Without an endpoint override the regional STS is used.
        let mut p = bedrock();
        p.aws_role_arn = Some(role.into());
        p.aws_web_identity_token_file = Some(t.into());
        let c = resolve(&p, &[]).unwrap();
        assert!(
            matches!(&c.endpoint, Some(Endpoint::WebIdentity { sts, .. }) if sts == "https://sts.us-east-1.amazonaws.com")
        );
    }

    #[test]
    fn sts_answers_without_credentials_are_refused() {
        for xml in [
            "<AssumeRoleWithWebIdentityResponse/>",
            "<a><Credentials><AccessKeyId>ASIAX</AccessKeyId></Credentials></a>",
            "not xml <<<",
        ] {
            assert!(parse_sts_credentials(xml).is_err(), "{xml}");
        }
    }

    #[tokio::test]
    async fn expired_credentials_are_refused() {
        let m = mock(-10);
        let base = start(m.clone()).await;
        let mut p = bedrock();
        p.aws_imds_endpoint = Some(base);
        let c = resolve(&p, &[]).unwrap();
        let e = c.get().await.unwrap_err();
        assert_eq!(
            e,
            UpstreamError::Auth("the AWS credentials fetched have expired")
        );
    }
}
