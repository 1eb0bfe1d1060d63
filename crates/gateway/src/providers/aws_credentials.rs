//! Where the Bedrock adapter's AWS credentials come from, and their refresh.
//!
//! Long-lived access keys are what AWS itself advises against: a deployment on ECS, EKS or EC2
//! gets short-lived credentials from its task role, pod identity or instance profile, rotated
//! every few hours. The sources, first match wins (the AWS SDKs' order):
//!
//! 1. a role named in the config (`aws_role_arn`): with a web identity token
//!    (`aws_web_identity_token_file`, else `AWS_WEB_IDENTITY_TOKEN_FILE`) through STS
//!    `AssumeRoleWithWebIdentity`; otherwise through STS `AssumeRole` (with `aws_external_id`),
//!    signed with the credentials the rest of this list finds (role chaining). STS is at
//!    `aws_sts_endpoint`, else `AWS_ENDPOINT_URL_STS`, else `https://sts.{region}.amazonaws.com`;
//! 2. `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`) in the config;
//! 3. `aws_credential_process` in the config: a command whose output is the credentials;
//! 4. a named profile (`aws_profile`) of the shared config and credentials files
//!    (`aws_config_file`, else `AWS_CONFIG_FILE`, else `~/.aws/config`;
//!    `aws_shared_credentials_file`, else `AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`): keys, `credential_process`, assume-role (`role_arn` with
//!    `source_profile` or `credential_source`), web identity, or IAM Identity Center (SSO)
//!    with the token `aws sso login` cached (see [`super::aws_profiles`]);
//! 5. a container credentials endpoint named in the config (`aws_credentials_url`, with the
//!    authorization token read from `aws_credentials_token_file`);
//! 6. the EC2 instance metadata service named in the config (`aws_imds_endpoint`);
//! 7. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 8. the `AWS_PROFILE` profile, or a `[default]` profile with credentials, of those files;
//! 9. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA), through STS
//!    `AssumeRoleWithWebIdentity`;
//! 10. `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS task
//!     roles, EKS Pod Identity) with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
//!     `AWS_CONTAINER_AUTHORIZATION_TOKEN`;
//! 11. IMDSv2 (a session token first, then the instance profile's role), at
//!     `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`, unless
//!     `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Keys are fixed. Other credentials (a role, a process, SSO, an endpoint) are fetched on first
//! use and again five minutes before they expire; one fetch at a time. If a refresh fails while
//! the credentials held are still valid they are used; once they have expired the request is
//! refused (`cannot authenticate to the upstream`) and nothing is sent. Secrets never reach a
//! log line, an error or `Debug` output; neither does a process's command line or its stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

use phiguard_crypto::sigv4::Credentials;
use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;

use super::UpstreamError;
use super::aws_profiles::{
    DEFAULT_DURATION_SECONDS, NamedSource, ProfileSource, Profiles, RoleToAssume,
};
use crate::config::ProviderConfig;

/// Endpoint credentials are fetched again this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The ECS agent's address, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";
/// The EC2 instance metadata service.
const IMDS_DEFAULT: &str = "http://169.254.169.254";
/// Each call to a credentials endpoint (all of them are link-local or loopback).
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);
/// Each call to STS or the IAM Identity Center portal.
const AWS_API_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `credential_process` command may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Where credentials are fetched from.
#[derive(Clone)]
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
    /// STS `AssumeRole`, signed with `source`'s credentials.
    AssumeRole {
        sts: String,
        /// The SigV4 scope's region.
        region: String,
        role: RoleToAssume,
        session_name: String,
        source: std::sync::Arc<AwsCredentials>,
    },
    /// A command (run by `sh -c`) that prints `{"Version": 1, "AccessKeyId", …}`.
    Process { command: String },
    /// IAM Identity Center `GetRoleCredentials`, with the access token `aws sso login` cached.
    Sso {
        portal: String,
        token_file: PathBuf,
        account_id: String,
        role_name: String,
    },
}

#[derive(Clone)]
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
        let picked = Chain {
            p,
            env,
            client: &client,
        }
        .pick()?;
        Ok(AwsCredentials::of(picked, client))
    }

    fn of((source, fixed, endpoint): Picked, client: reqwest::Client) -> AwsCredentials {
        AwsCredentials {
            source,
            fixed,
            endpoint,
            client,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Which source was picked (`config`, `profile`, `container`, `instance metadata`,
    /// `environment`, `web identity`, `assume role`, `credential process`, `sso`), for the
    /// start-up log. Never a secret.
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
                sts_answer(resp).await
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
            Endpoint::AssumeRole {
                sts,
                region,
                role,
                session_name,
                source,
            } => {
                // Boxed: the source may itself assume a role (a chain).
                let base = Box::pin(source.get()).await?;
                let duration = role.duration_seconds.to_string();
                let mut form = vec![
                    ("Action", "AssumeRole"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", role.role_arn.as_str()),
                    ("RoleSessionName", session_name.as_str()),
                    ("DurationSeconds", duration.as_str()),
                ];
                if let Some(id) = &role.external_id {
                    form.push(("ExternalId", id.as_str()));
                }
                let body = super::token::form_encode(&form).into_bytes();
                let rb = signed_post(&self.client, sts, region, "sts", &base, body)?;
                let resp = rb
                    .timeout(AWS_API_TIMEOUT)
                    .send()
                    .await
                    .map_err(|_| UpstreamError::Auth("cannot reach STS"))?;
                if !resp.status().is_success() {
                    if resp.status() == reqwest::StatusCode::FORBIDDEN {
                        // The source's temporary credentials may have been revoked.
                        source.forget().await;
                    }
                    return Err(UpstreamError::Auth("STS refused to assume the role"));
                }
                sts_answer(resp).await
            }
            Endpoint::Process { command } => run_credential_process(command).await,
            Endpoint::Sso {
                portal,
                token_file,
                account_id,
                role_name,
            } => {
                let token = read_sso_token(token_file)?;
                let rb = self
                    .client
                    .get(format!("{portal}/federation/credentials"))
                    .query(&[("account_id", account_id), ("role_name", role_name)])
                    .header("x-amz-sso_bearer_token", token)
                    .timeout(AWS_API_TIMEOUT);
                let resp = rb
                    .send()
                    .await
                    .map_err(|_| UpstreamError::Auth("cannot reach IAM Identity Center"))?;
                match resp.status().as_u16() {
                    200 => {}
                    401 => {
                        return Err(UpstreamError::Auth(
                            "the IAM Identity Center session has expired; run `aws sso login`",
                        ));
                    }
                    _ => {
                        return Err(UpstreamError::Auth(
                            "IAM Identity Center refused the role credentials",
                        ));
                    }
                }
                let v: Value = resp.json().await.map_err(|_| {
                    UpstreamError::Auth("IAM Identity Center's answer is not valid")
                })?;
                parse_sso_credentials(&v)
            }
        }
    }
}

/// The credentials in a successful STS answer (XML).
async fn sts_answer(
    resp: reqwest::Response,
) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    let xml = resp
        .text()
        .await
        .map_err(|_| UpstreamError::Auth("cannot read STS's answer"))?;
    parse_sts_credentials(&xml)
}

/// A SigV4-signed form `POST {url}/` for `service` (STS's query API).
fn signed_post(
    client: &reqwest::Client,
    url: &str,
    region: &str,
    service: &str,
    credentials: &Credentials,
    body: Vec<u8>,
) -> Result<reqwest::RequestBuilder, UpstreamError> {
    use phiguard_crypto::sigv4;
    let cannot = UpstreamError::Auth("cannot sign the STS request");
    let u = reqwest::Url::parse(url).map_err(|_| cannot.clone())?;
    let host = match (u.host_str(), u.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(cannot),
    };
    let amz_date = sigv4::amz_date_now();
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    if let Some(token) = credentials.session_token() {
        headers.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    let authz = sigv4::authorization(
        credentials,
        &sigv4::Scope {
            amz_date: &amz_date,
            region,
            service,
        },
        &sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        },
    )
    .map_err(|_| cannot)?;
    let mut rb = client.post(format!("{url}/")).body(body);
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        rb = rb.header(k.as_str(), v.as_str());
    }
    Ok(rb.header("authorization", authz))
}

/// Runs a `credential_process` command: its stdout is the credentials (`Version` 1); no
/// `Expiration` means they do not expire. Neither the command line nor its stderr (either may
/// hold a secret) reaches an error.
async fn run_credential_process(
    command: &str,
) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|_| UpstreamError::Auth("cannot start the credential process"))?;
    let out = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| UpstreamError::Auth("the credential process timed out"))?
        .map_err(|_| UpstreamError::Auth("the credential process failed"))?;
    if !out.status.success() {
        return Err(UpstreamError::Auth("the credential process failed"));
    }
    let bad = UpstreamError::Auth("the credential process's output is not valid");
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|_| bad.clone())?;
    if v.get("Version").and_then(Value::as_u64) != Some(1) {
        return Err(bad);
    }
    let str_of = |k: &str| v.get(k).and_then(Value::as_str);
    let expires = match v.get("Expiration") {
        // Credentials without an expiry are kept for as long as the gateway runs.
        None | Some(Value::Null) => OffsetDateTime::now_utc() + time::Duration::days(365 * 100),
        Some(_) => rfc3339(str_of("Expiration")).ok_or(bad.clone())?,
    };
    keys_until(
        str_of("AccessKeyId"),
        str_of("SecretAccessKey"),
        str_of("SessionToken"),
        expires,
        bad,
    )
}

/// The access token of an `aws sso login` cache file, refused once it has expired (a refresh
/// needs the login's client registration: the operator logs in again).
fn read_sso_token(file: &Path) -> Result<String, UpstreamError> {
    let expired =
        UpstreamError::Auth("the IAM Identity Center session has expired; run `aws sso login`");
    let text = std::fs::read_to_string(file).map_err(|_| {
        UpstreamError::Auth("no cached IAM Identity Center token; run `aws sso login`")
    })?;
    let bad = UpstreamError::Auth("the cached IAM Identity Center token is not valid");
    let v: Value = serde_json::from_str(&text).map_err(|_| bad.clone())?;
    let token = v
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(bad.clone())?;
    let expires = rfc3339(v.get("expiresAt").and_then(Value::as_str)).ok_or(bad)?;
    if expires <= OffsetDateTime::now_utc() {
        return Err(expired);
    }
    Ok(token.to_string())
}

/// `{"roleCredentials": {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}}`,
/// the expiry in milliseconds since the epoch.
fn parse_sso_credentials(v: &Value) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    let bad = UpstreamError::Auth("IAM Identity Center's answer is not valid");
    let c = v.get("roleCredentials").ok_or(bad.clone())?;
    let expires = c
        .get("expiration")
        .and_then(Value::as_i64)
        .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .ok_or(bad.clone())?;
    let str_of = |k: &str| c.get(k).and_then(Value::as_str);
    keys_until(
        str_of("accessKeyId"),
        str_of("secretAccessKey"),
        str_of("sessionToken"),
        expires,
        bad,
    )
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
    let str_of = |k: &str| v.get(k).and_then(Value::as_str);
    let expires = rfc3339(str_of("Expiration")).ok_or(bad.clone())?;
    keys_until(
        str_of("AccessKeyId"),
        str_of("SecretAccessKey"),
        str_of("Token"),
        expires,
        bad,
    )
}

/// An RFC 3339 time.
fn rfc3339(text: Option<&str>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()
}

/// Keys valid until `expires`; `bad` when the key id or the secret is missing or empty (an
/// empty session token counts as none).
fn keys_until(
    id: Option<&str>,
    secret: Option<&str>,
    token: Option<&str>,
    expires: OffsetDateTime,
    bad: UpstreamError,
) -> Result<(Credentials, OffsetDateTime), UpstreamError> {
    fn set(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    let (Some(id), Some(secret)) = (set(id), set(secret)) else {
        return Err(bad);
    };
    let creds = Credentials::new(
        id,
        SecretString::from(secret.to_string()),
        set(token).map(|t| SecretString::from(t.to_string())),
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
    let get = |k: &str| fields.get(k).map(String::as_str);
    let expires = rfc3339(get("Expiration")).ok_or(bad.clone())?;
    keys_until(
        get("AccessKeyId"),
        get("SecretAccessKey"),
        get("SessionToken"),
        expires,
        bad,
    )
}

type Picked = (&'static str, Option<Credentials>, Option<Endpoint>);

/// What the chain reads: the provider's config, the environment, and the client fetched
/// credentials go through (for a role's source).
struct Chain<'a> {
    p: &'a ProviderConfig,
    env: &'a dyn Fn(&str) -> Option<String>,
    client: &'a reqwest::Client,
}

fn set(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

fn keys(id: String, secret: String, token: Option<String>) -> Result<Credentials, String> {
    Credentials::new(
        id,
        SecretString::from(secret),
        token.map(SecretString::from),
    )
    .map_err(|e| e.to_string())
}

impl Chain<'_> {
    fn env(&self, k: &str) -> Option<String> {
        (self.env)(k)
    }

    /// The module's list, in order.
    fn pick(&self) -> Result<Picked, String> {
        let p = self.p;
        // 1. A role named in the config.
        if let Some(role_arn) = set(&p.aws_role_arn) {
            if let Some(token_file) = set(&p.aws_web_identity_token_file)
                .or_else(|| self.env("AWS_WEB_IDENTITY_TOKEN_FILE"))
            {
                return self.web_identity(role_arn, PathBuf::from(token_file), None);
            }
            let role = RoleToAssume {
                role_arn,
                external_id: set(&p.aws_external_id),
                session_name: None,
                duration_seconds: DEFAULT_DURATION_SECONDS,
            };
            // Signed with what the rest of the chain finds.
            let mut rest = p.clone();
            rest.aws_role_arn = None;
            rest.aws_external_id = None;
            let source = Chain {
                p: &rest,
                env: self.env,
                client: self.client,
            }
            .pick()
            .map_err(|e| format!("aws_role_arn: the credentials to assume it with: {e}"))?;
            return self.assume_role(role, source);
        }
        if set(&p.aws_external_id).is_some() {
            return Err("aws_external_id: needs aws_role_arn".into());
        }
        if set(&p.aws_web_identity_token_file).is_some() {
            return Err("aws_web_identity_token_file: needs aws_role_arn".into());
        }
        // 2. Keys in the config.
        match (set(&p.aws_access_key_id), set(&p.aws_secret_access_key)) {
            (Some(id), Some(secret)) => {
                return Ok((
                    "config",
                    Some(keys(id, secret, set(&p.aws_session_token))?),
                    None,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(
                    "set both aws_access_key_id and aws_secret_access_key, or neither".into(),
                );
            }
        }
        // 3. A credential process in the config.
        if let Some(command) = set(&p.aws_credential_process) {
            return Ok((
                "credential process",
                None,
                Some(Endpoint::Process { command }),
            ));
        }
        // 4. A profile named in the config.
        if let Some(profile) = set(&p.aws_profile) {
            return self
                .profile(&profile)?
                .map_err(|e| format!("aws_profile: {e}"));
        }
        // 5. and 6. Endpoints named in the config.
        if let Some(url) = set(&p.aws_credentials_url) {
            check_secure_url(&url, true).map_err(|e| format!("aws_credentials_url: {e}"))?;
            let token =
                set(&p.aws_credentials_token_file).map(|f| TokenFrom::File(PathBuf::from(f)));
            return Ok(("container", None, Some(Endpoint::Container { url, token })));
        }
        if let Some(base) = set(&p.aws_imds_endpoint) {
            let base = base.trim_end_matches('/').to_string();
            reqwest::Url::parse(&base).map_err(|_| "aws_imds_endpoint: not a URL".to_string())?;
            return Ok(("instance metadata", None, Some(Endpoint::Imds { base })));
        }
        // 7. The environment's keys.
        if let Some(picked) = self.env_keys()? {
            return Ok(picked);
        }
        // 8. The environment's profile, or the default one.
        match self.env("AWS_PROFILE") {
            Some(profile) => {
                return self
                    .profile(&profile)?
                    .map_err(|e| format!("AWS_PROFILE: {e}"));
            }
            None => {
                if let Ok(picked) = self.profile("default")? {
                    return Ok(picked);
                }
            }
        }
        // 9. Web identity (EKS IRSA).
        if let (Some(token_file), Some(role_arn)) = (
            self.env("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.env("AWS_ROLE_ARN"),
        ) {
            return self.web_identity(role_arn, PathBuf::from(token_file), None);
        }
        // 10. Container credentials.
        if let Some(picked) = self.env_container()? {
            return Ok(picked);
        }
        // 11. The instance metadata service.
        if self
            .env("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(
                "no AWS credentials: none in the config, the environment or a profile, \
                 and the instance metadata service is disabled"
                    .to_string(),
            );
        }
        self.env_imds()
    }

    fn env_keys(&self) -> Result<Option<Picked>, String> {
        match (
            self.env("AWS_ACCESS_KEY_ID"),
            self.env("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => Ok(Some((
                "environment",
                Some(keys(id, secret, self.env("AWS_SESSION_TOKEN"))?),
                None,
            ))),
            (None, None) => Ok(None),
            _ => Err("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into()),
        }
    }

    fn env_container(&self) -> Result<Option<Picked>, String> {
        let token = self
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .map(|f| TokenFrom::File(PathBuf::from(f)))
            .or_else(|| {
                self.env("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                    .map(TokenFrom::Value)
            });
        if let Some(rel) = self.env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let url = format!("{ECS_HOST}{rel}");
            return Ok(Some((
                "container",
                None,
                Some(Endpoint::Container { url, token }),
            )));
        }
        if let Some(url) = self.env("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            check_secure_url(&url, true)
                .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: {e}"))?;
            return Ok(Some((
                "container",
                None,
                Some(Endpoint::Container { url, token }),
            )));
        }
        Ok(None)
    }

    fn env_imds(&self) -> Result<Picked, String> {
        let base = self
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| IMDS_DEFAULT.to_string())
            .trim_end_matches('/')
            .to_string();
        reqwest::Url::parse(&base)
            .map_err(|_| "AWS_EC2_METADATA_SERVICE_ENDPOINT: not a URL".to_string())?;
        Ok(("instance metadata", None, Some(Endpoint::Imds { base })))
    }

    /// STS at `aws_sts_endpoint`, else `AWS_ENDPOINT_URL_STS`, else the region's.
    fn sts(&self) -> Result<String, String> {
        let url = set(&self.p.aws_sts_endpoint)
            .or_else(|| self.env("AWS_ENDPOINT_URL_STS"))
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region()));
        check_secure_url(&url, false).map_err(|e| format!("aws_sts_endpoint: {e}"))?;
        Ok(url.trim_end_matches('/').to_string())
    }

    fn region(&self) -> String {
        set(&self.p.region).unwrap_or_else(|| "us-east-1".to_string())
    }

    fn session_name(&self, given: Option<String>) -> String {
        given
            .or_else(|| self.env("AWS_ROLE_SESSION_NAME"))
            .unwrap_or_else(|| format!("phiguard-{}", OffsetDateTime::now_utc().unix_timestamp()))
    }

    fn web_identity(
        &self,
        role_arn: String,
        token_file: PathBuf,
        session_name: Option<String>,
    ) -> Result<Picked, String> {
        let endpoint = Endpoint::WebIdentity {
            sts: self.sts()?,
            role_arn,
            session_name: self.session_name(session_name),
            token_file,
        };
        Ok(("web identity", None, Some(endpoint)))
    }

    fn assume_role(&self, role: RoleToAssume, source: Picked) -> Result<Picked, String> {
        let session_name = self.session_name(role.session_name.clone());
        let endpoint = Endpoint::AssumeRole {
            sts: self.sts()?,
            region: self.region(),
            role,
            session_name,
            source: std::sync::Arc::new(AwsCredentials::of(source, self.client.clone())),
        };
        Ok(("assume role", None, Some(endpoint)))
    }

    /// Profile `name` of the shared files: `Err` for a broken file, `Ok(Err)` when the profile
    /// is not there or holds no credentials (the caller says which setting named it).
    fn profile(&self, name: &str) -> Result<Result<Picked, String>, String> {
        let home = self.env("HOME").map(PathBuf::from);
        let file = |config: &Option<String>, var: &str, default: &str| {
            set(config)
                .or_else(|| self.env(var))
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let config = file(&self.p.aws_config_file, "AWS_CONFIG_FILE", "config");
        let credentials = file(
            &self.p.aws_shared_credentials_file,
            "AWS_SHARED_CREDENTIALS_FILE",
            "credentials",
        );
        let profiles = Profiles::load(config.as_deref(), credentials.as_deref())?;
        let shown = |f: &Option<PathBuf>| {
            f.as_ref()
                .map_or_else(|| "(none)".to_string(), |f| f.display().to_string())
        };
        if !profiles.has(name) {
            return Ok(Err(format!(
                "no profile \"{name}\" in {} or {}",
                shown(&config),
                shown(&credentials)
            )));
        }
        match profiles.source(name)? {
            Some(source) => self.profile_source(source).map(Ok),
            None => Ok(Err(format!("profile \"{name}\" has no credentials"))),
        }
    }

    fn profile_source(&self, source: ProfileSource) -> Result<Picked, String> {
        Ok(match source {
            ProfileSource::Keys(c) => ("profile", Some(c), None),
            ProfileSource::Process { command } => (
                "credential process",
                None,
                Some(Endpoint::Process { command }),
            ),
            ProfileSource::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => self.web_identity(role_arn, token_file, session_name)?,
            ProfileSource::AssumeRole { role, source } => {
                let source = self.profile_source(*source)?;
                self.assume_role(role, source)?
            }
            ProfileSource::Named(NamedSource::Environment) => self.env_keys()?.ok_or(
                "credential_source Environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 are not set",
            )?,
            ProfileSource::Named(NamedSource::EcsContainer) => self.env_container()?.ok_or(
                "credential_source EcsContainer: no AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or \
                 _FULL_URI",
            )?,
            ProfileSource::Named(NamedSource::Ec2InstanceMetadata) => self.env_imds()?,
            ProfileSource::Sso {
                region,
                account_id,
                role_name,
                cache_key,
            } => {
                let portal = self
                    .env("AWS_ENDPOINT_URL_SSO")
                    .unwrap_or_else(|| format!("https://portal.sso.{region}.amazonaws.com"));
                check_secure_url(&portal, false)
                    .map_err(|e| format!("AWS_ENDPOINT_URL_SSO: {e}"))?;
                let home = self
                    .env("HOME")
                    .ok_or("IAM Identity Center: HOME is not set (the token cache is under it)")?;
                let hash = {
                    use sha1::Digest;
                    hex::encode(sha1::Sha1::digest(cache_key.as_bytes()))
                };
                let token_file = Path::new(&home)
                    .join(".aws")
                    .join("sso")
                    .join("cache")
                    .join(format!("{hash}.json"));
                (
                    "sso",
                    None,
                    Some(Endpoint::Sso {
                        portal: portal.trim_end_matches('/').to_string(),
                        token_file,
                        account_id,
                        role_name,
                    }),
                )
            }
        })
    }
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

    /// Serves `app` on a loopback port; its base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
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
        let f = file.to_str().unwrap();
        let home = dir.path().to_str().unwrap();
        std::fs::write(&file, "[default]\naws_access_key_id AKIDX\n").unwrap();
        let e = resolve(&bedrock(), &[("AWS_SHARED_CREDENTIALS_FILE", f)])
            .err()
            .unwrap();
        assert!(e.ends_with(":2: expected key = value"), "{e}");
        std::fs::write(&file, "[default]\naws_access_key_id = AKIDX\n").unwrap();
        let e = resolve(&bedrock(), &[("AWS_SHARED_CREDENTIALS_FILE", f)])
            .err()
            .unwrap();
        assert!(e.contains("needs both"), "{e}");
        assert!(!e.contains("AKIDX"), "{e}");
        // No files at all: on to the instance metadata service.
        let c = resolve(&bedrock(), &[("HOME", home)]).unwrap();
        assert_eq!(c.source(), "instance metadata");
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
        serve(app).await
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
        serve(app).await
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
        // The token never crosses the network in clear; without a token file the role is
        // assumed with the rest of the chain's credentials.
        p.aws_sts_endpoint = Some("http://sts.example.com".into());
        assert!(resolve(&p, &[]).err().unwrap().contains("use https"));
        p.aws_sts_endpoint = None;
        p.aws_web_identity_token_file = None;
        assert_eq!(resolve(&p, &[]).unwrap().source(), "assume role");
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

    /// The secret of each access key the mock STS knows: it checks every request's SigV4
    /// signature with it, as STS does.
    fn sts_secret(id: &str) -> Option<&'static str> {
        match id {
            "AKIDBASE" => Some("base-secret"),
            "ASIAADMIN" => Some("admin-secret"),
            _ => None,
        }
    }

    /// What the mock STS saw: (access key id that signed, form).
    type Seen = Arc<std::sync::Mutex<Vec<(String, HashMap<String, String>)>>>;

    /// A mock STS answering `AssumeRole` for correctly signed requests: role `…:role/admin`
    /// gives `ASIAADMIN` (whose secret it knows, for chains), any other role `ASIAROLE`.
    async fn start_assume_role_sts(seen: Seen) -> String {
        let app = Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    use axum::response::IntoResponse;
                    let refuse = |code: &str| {
                        (
                            StatusCode::FORBIDDEN,
                            format!("<ErrorResponse><Error><Code>{code}</Code></Error></ErrorResponse>"),
                        )
                            .into_response()
                    };
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let authz = h("authorization");
                    let Some(cred) = authz
                        .split("Credential=")
                        .nth(1)
                        .and_then(|c| c.split(',').next())
                    else {
                        return refuse("MissingAuthenticationToken");
                    };
                    let mut scope = cred.split('/');
                    let id = scope.next().unwrap_or("").to_string();
                    let (_, region, service) = (scope.next(), scope.next(), scope.next());
                    let Some(secret) = sts_secret(&id) else {
                        return refuse("InvalidClientTokenId");
                    };
                    let signed: Vec<String> = authz
                        .split("SignedHeaders=")
                        .nth(1)
                        .and_then(|s| s.split(',').next())
                        .unwrap_or("")
                        .split(';')
                        .map(str::to_string)
                        .collect();
                    let pairs: Vec<(String, String)> =
                        signed.iter().map(|k| (k.clone(), h(k))).collect();
                    let token = h("x-amz-security-token");
                    let creds = Credentials::new(
                        id.clone(),
                        SecretString::from(secret.to_string()),
                        (!token.is_empty()).then(|| SecretString::from(token.clone())),
                    )
                    .unwrap();
                    let amz_date = h("x-amz-date");
                    let want = phiguard_crypto::sigv4::authorization(
                        &creds,
                        &phiguard_crypto::sigv4::Scope {
                            amz_date: &amz_date,
                            region: region.unwrap_or(""),
                            service: service.unwrap_or(""),
                        },
                        &phiguard_crypto::sigv4::Request {
                            method: "POST",
                            path: "/",
                            query: "",
                            headers: &pairs,
                            body: body.as_bytes(),
                        },
                    );
                    // A session key must come with its token, and the token must be signed.
                    let token_ok = !id.starts_with("ASIA")
                        || token == "admin-session" && signed.iter().any(|k| k == "x-amz-security-token");
                    if want.ok().as_deref() != Some(authz.as_str())
                        || service != Some("sts")
                        || region != Some("us-east-1")
                        || !token_ok
                    {
                        return refuse("SignatureDoesNotMatch");
                    }
                    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    if form.get("Action").map(String::as_str) != Some("AssumeRole") {
                        return refuse("InvalidAction");
                    }
                    let admin = form.get("RoleArn").is_some_and(|r| r.ends_with(":role/admin"));
                    seen.lock().unwrap().push((id, form));
                    let exp = (OffsetDateTime::now_utc() + time::Duration::hours(1))
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap();
                    let (key, secret, session) = if admin {
                        ("ASIAADMIN", "admin-secret", "admin-session")
                    } else {
                        ("ASIAROLE", "role-secret", "role-session")
                    };
                    format!(
                        "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                         <AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
                         <SessionToken>{session}</SessionToken><Expiration>{exp}</Expiration>\
                         </Credentials></AssumeRoleResult></AssumeRoleResponse>"
                    )
                    .into_response()
                }
            }),
        );
        serve(app).await
    }

    #[tokio::test]
    async fn roles_are_assumed_with_signed_sts_calls_and_chained() {
        let seen: Seen = Arc::default();
        let sts = start_assume_role_sts(seen.clone()).await;
        // A role in the config, signed with the config's keys.
        let mut p = bedrock();
        p.aws_role_arn = Some("arn:aws:iam::123456789012:role/bedrock".into());
        p.aws_external_id = Some("ext-42".into());
        p.aws_access_key_id = Some("AKIDBASE".into());
        p.aws_secret_access_key = Some("base-secret".into());
        p.aws_sts_endpoint = Some(sts.clone());
        let c = resolve(&p, &[("AWS_ROLE_SESSION_NAME", "gw-1")]).unwrap();
        assert_eq!(c.source(), "assume role");
        let got = c.get().await.unwrap();
        assert_eq!(got.access_key_id(), "ASIAROLE");
        assert_eq!(got.session_token(), Some("role-session"));
        c.get().await.unwrap();
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "cached for the hour");
            let (id, form) = &seen[0];
            assert_eq!(id, "AKIDBASE");
            assert_eq!(form["ExternalId"], "ext-42");
            assert_eq!(form["RoleSessionName"], "gw-1");
            assert_eq!(form["DurationSeconds"], "3600");
        }
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("session"),
            "{shown}"
        );

        // Profiles: admin from base's keys, then bedrock from admin's session (its token is
        // sent and signed).
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[profile admin]\nrole_arn = arn:aws:iam::1:role/admin\nsource_profile = base\n\
             role_session_name = admin-session-name\nduration_seconds = 900\n\
             [profile bedrock]\nrole_arn = arn:aws:iam::1:role/bedrock\nsource_profile = admin\n",
        )
        .unwrap();
        std::fs::write(
            &credentials,
            "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n",
        )
        .unwrap();
        let mut p = bedrock();
        p.aws_profile = Some("bedrock".into());
        p.aws_config_file = Some(config.to_str().unwrap().into());
        p.aws_shared_credentials_file = Some(credentials.to_str().unwrap().into());
        p.aws_sts_endpoint = Some(sts.clone());
        seen.lock().unwrap().clear();
        let c = resolve(&p, &[]).unwrap();
        assert_eq!(c.get().await.unwrap().access_key_id(), "ASIAROLE");
        {
            let seen = seen.lock().unwrap();
            let signers: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(signers, ["AKIDBASE", "ASIAADMIN"]);
            assert_eq!(seen[0].1["RoleSessionName"], "admin-session-name");
            assert_eq!(seen[0].1["DurationSeconds"], "900");
        }

        // Keys STS does not accept: refused, and nothing secret in the error.
        let mut p = bedrock();
        p.aws_role_arn = Some("arn:aws:iam::1:role/bedrock".into());
        p.aws_access_key_id = Some("AKIDBASE".into());
        p.aws_secret_access_key = Some("wrong-secret".into());
        p.aws_sts_endpoint = Some(sts.clone());
        let e = resolve(&p, &[]).unwrap().get().await.unwrap_err();
        assert_eq!(e, UpstreamError::Auth("STS refused to assume the role"));
        // Settings that need a role are refused without one.
        let mut p = bedrock();
        p.aws_external_id = Some("x".into());
        assert!(
            resolve(&p, &[])
                .err()
                .unwrap()
                .contains("needs aws_role_arn")
        );
    }

    /// A `credential_process` script printing `output`, counting its runs in `runs`.
    fn script(dir: &Path, name: &str, output: &str, exit: i32) -> String {
        let path = dir.join(name);
        let runs = dir.join(format!("{name}.runs"));
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho run >> '{}'\necho 'process-stderr-secret' >&2\ncat <<'EOF'\n{output}\nEOF\nexit {exit}\n",
                runs.display()
            ),
        )
        .unwrap();
        format!("sh '{}' --token cmdline-secret", path.display())
    }

    fn runs(dir: &Path, name: &str) -> usize {
        std::fs::read_to_string(dir.join(format!("{name}.runs")))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn credential_processes_are_run_and_their_secrets_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let exp = (OffsetDateTime::now_utc() + time::Duration::hours(1))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        // Temporary credentials from the config's command, kept until the refresh margin.
        let mut p = bedrock();
        p.aws_credential_process = Some(script(
            d,
            "temp",
            &format!(
                r#"{{"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "proc-secret", "SessionToken": "proc-token", "Expiration": "{exp}"}}"#
            ),
            0,
        ));
        let c = resolve(&p, &[]).unwrap();
        assert_eq!(c.source(), "credential process");
        let got = c.get().await.unwrap();
        assert_eq!(got.access_key_id(), "ASIAPROC");
        assert_eq!(got.session_token(), Some("proc-token"));
        c.get().await.unwrap();
        assert_eq!(runs(d, "temp"), 1);
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{p:?}").contains("cmdline-secret"));
        // Keys without an expiry, from a profile's command: run once.
        std::fs::write(
            d.join("config"),
            format!(
                "[profile vault]\ncredential_process = {}\n",
                script(
                    d,
                    "fixed",
                    r#"{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "proc-secret"}"#,
                    0
                )
            ),
        )
        .unwrap();
        let c = resolve(
            &bedrock(),
            &[
                ("AWS_PROFILE", "vault"),
                ("AWS_CONFIG_FILE", d.join("config").to_str().unwrap()),
            ],
        )
        .unwrap();
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKIDPROC");
        c.get().await.unwrap();
        assert_eq!(runs(d, "fixed"), 1);
        // Failures: a non-zero exit, output that is not version 1, expired credentials.
        let past = "2020-01-01T00:00:00Z";
        for (name, output, exit, want) in [
            (
                "fails",
                r#"{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "proc-secret"}"#
                    .to_string(),
                3,
                "the credential process failed",
            ),
            (
                "v2",
                r#"{"Version": 2, "AccessKeyId": "AKIDX", "SecretAccessKey": "proc-secret"}"#
                    .to_string(),
                0,
                "the credential process's output is not valid",
            ),
            (
                "junk",
                "proc-secret".to_string(),
                0,
                "the credential process's output is not valid",
            ),
            (
                "old",
                format!(
                    r#"{{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "proc-secret", "Expiration": "{past}"}}"#
                ),
                0,
                "the AWS credentials fetched have expired",
            ),
        ] {
            let mut p = bedrock();
            p.aws_credential_process = Some(script(d, name, &output, exit));
            let e = resolve(&p, &[]).unwrap().get().await.unwrap_err();
            assert_eq!(e, UpstreamError::Auth(want), "{name}");
            let shown = format!("{e} {e:?}");
            for secret in ["proc-secret", "cmdline-secret", "process-stderr-secret"] {
                assert!(!shown.contains(secret), "{name}: {shown}");
            }
        }
    }

    #[tokio::test]
    async fn sso_role_credentials_come_from_the_cached_login() {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new().route(
            "/federation/credentials",
            get({
                let calls = calls.clone();
                move |h: HeaderMap, q: axum::extract::Query<HashMap<String, String>>| {
                    let calls = calls.clone();
                    async move {
                        use axum::response::IntoResponse;
                        calls.fetch_add(1, Ordering::SeqCst);
                        if h.get("x-amz-sso_bearer_token")
                            .is_none_or(|t| t != "sso-access-token")
                        {
                            return StatusCode::UNAUTHORIZED.into_response();
                        }
                        if q.get("account_id").map(String::as_str) != Some("111122223333")
                            || q.get("role_name").map(String::as_str) != Some("Dev")
                        {
                            return StatusCode::FORBIDDEN.into_response();
                        }
                        let exp = (OffsetDateTime::now_utc() + time::Duration::hours(1))
                            .unix_timestamp()
                            * 1000;
                        axum::Json(json!({"roleCredentials": {
                            "accessKeyId": "ASIASSO",
                            "secretAccessKey": "sso-secret",
                            "sessionToken": "sso-session",
                            "expiration": exp,
                        }}))
                        .into_response()
                    }
                }
            }),
        );
        let portal = serve(app).await;
        let home = tempfile::tempdir().unwrap();
        let aws = home.path().join(".aws");
        std::fs::create_dir_all(aws.join("sso").join("cache")).unwrap();
        std::fs::write(
            aws.join("config"),
            "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n\
             [sso-session corp]\nsso_region = us-east-2\nsso_start_url = https://corp.awsapps.com/start\n",
        )
        .unwrap();
        // The AWS CLI names the cache file by the SHA-1 of the session name.
        let cache = aws
            .join("sso")
            .join("cache")
            .join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
        let write_token = |token: &str, minutes: i64| {
            let at = (OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            std::fs::write(
                &cache,
                json!({"accessToken": token, "expiresAt": at, "region": "us-east-2"}).to_string(),
            )
            .unwrap();
        };
        let env = [
            ("HOME", home.path().to_str().unwrap()),
            ("AWS_PROFILE", "dev"),
            ("AWS_ENDPOINT_URL_SSO", portal.as_str()),
        ];
        let c = resolve(&bedrock(), &env).unwrap();
        assert_eq!(c.source(), "sso");
        // Not logged in yet.
        let e = c.get().await.unwrap_err();
        assert!(e.to_string().contains("aws sso login"), "{e}");
        write_token("sso-access-token", 60);
        let got = c.get().await.unwrap();
        assert_eq!(got.access_key_id(), "ASIASSO");
        assert_eq!(got.session_token(), Some("sso-session"));
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // An expired login, or a token the portal no longer takes: log in again.
        c.forget().await;
        write_token("sso-access-token", -1);
        let e = c.get().await.unwrap_err();
        assert!(e.to_string().contains("aws sso login"), "{e}");
        write_token("revoked-token", 60);
        let e = c.get().await.unwrap_err();
        assert!(e.to_string().contains("aws sso login"), "{e}");
        assert!(!format!("{e:?}").contains("token\""));
    }
}
