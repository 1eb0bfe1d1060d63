//! `phiguard.toml`: the gateway's configuration. Unknown keys are errors (naming the key and its
//! line); `${VAR}` and `${VAR:-default}` are expanded from the environment before parsing.
//!
//! ```toml
//! [server]
//! listen = "${PHIGUARD_LISTEN:-127.0.0.1:8080}"
//! plain_http = true
//!
//! [providers.local]
//! kind = "openai_compatible"
//! endpoint = "${UPSTREAM_BASE_URL}"
//! models = ["llama-3.1-8b"]
//! private = true
//!
//! [roles.clinician]
//! actions = ["chat"]
//! models = ["*"]
//! phi = "full"
//! input = "tokenize"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::Date;

/// A configuration error. Messages name the file, line and key, never a value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    At {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: Limits,
    /// Providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// The model registry (`[models.NAME]`): version and metadata of the models callers use.
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
    /// Roles by name.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
}

/// `[models.NAME]`: one model of the registry. `NAME` is the name callers send in `model`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The provider serving it (a `[providers.NAME]`).
    pub provider: String,
    /// The model version (e.g. `2024-08-06`), recorded in every audit record.
    pub version: String,
    /// The name sent upstream (default: `NAME`), e.g. a Bedrock model id.
    #[serde(default)]
    pub upstream_name: Option<String>,
    /// Free text shown by `GET /v1/models`.
    #[serde(default)]
    pub description: Option<String>,
    /// From this date (UTC) on, requests for the model are refused (`model_retired`, 410).
    #[serde(default, deserialize_with = "de_opt_date")]
    pub retired: Option<Date>,
}

impl ModelEntry {
    /// The name sent upstream.
    pub fn upstream<'a>(&'a self, name: &'a str) -> &'a str {
        self.upstream_name.as_deref().unwrap_or(name)
    }

    /// True when the model is retired on `today`.
    pub fn is_retired(&self, today: Date) -> bool {
        self.retired.is_some_and(|r| today >= r)
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on.
    pub listen: String,
    /// Serve plain HTTP. Only allowed on a loopback address, and not together with `[server.tls]`.
    #[serde(default)]
    pub plain_http: bool,
    /// The SQLite file of service API keys (default `$PHIGUARD_HOME/gateway/keys.db`).
    #[serde(default)]
    pub key_store: Option<PathBuf>,
    /// TLS termination (`[server.tls]`): required for a non-loopback `listen` address.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: TLS termination with rustls (TLS 1.2 or 1.3 only), optionally mutual TLS.
/// Paths are used as given (relative ones from the working directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates: when set, every client must present a certificate issued by one
    /// of them (mutual TLS); the handshake fails otherwise.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Lowest protocol version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: MinTlsVersion,
}

/// The lowest TLS version the server accepts. Nothing below 1.2 exists here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MinTlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl<'de> Deserialize<'de> for MinTlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            F(f64),
        }
        let s = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::F(f) => format!("{f}"),
        };
        match s.trim().trim_start_matches(['v', 'V']) {
            "1.2" => Ok(MinTlsVersion::Tls12),
            "1.3" => Ok(MinTlsVersion::Tls13),
            _ => Err(serde::de::Error::custom(
                "server.tls.min_version: expected \"1.2\" or \"1.3\" (TLS below 1.2 is not served)",
            )),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Seconds allowed for the upstream to answer (for streams: to send its headers, and
    /// between two chunks).
    #[serde(default = "default_upstream_timeout_secs")]
    pub upstream_timeout_secs: u64,
    /// Sustained requests per second allowed per API key (GCRA); unset: no limit.
    #[serde(default)]
    pub requests_per_second_per_key: Option<u32>,
    /// Requests a key may send at once above the sustained rate (default: the rate).
    #[serde(default)]
    pub burst_per_key: Option<u32>,
    /// Sustained requests per second allowed per route (`/v1/chat/completions`,
    /// `/v1/embeddings`, `/v1/models`), all callers together (GCRA); unset: no limit.
    #[serde(default)]
    pub requests_per_second_per_route: Option<u32>,
    /// Requests a route may take at once above the sustained rate (default: the rate).
    #[serde(default)]
    pub burst_per_route: Option<u32>,
    /// Sustained requests per second allowed per end user of a key (GCRA): the user named by
    /// the `X-Phiguard-User` header, else by the OpenAI body field `user`. Users are counted
    /// per API key; requests naming no user have only the per-key limit. Unset: no limit.
    #[serde(default)]
    pub requests_per_second_per_user: Option<u32>,
    /// Requests a user may send at once above the sustained rate (default: the rate).
    #[serde(default)]
    pub burst_per_user: Option<u32>,
}

fn default_max_request_bytes() -> usize {
    1024 * 1024
}

fn default_upstream_timeout_secs() -> u64 {
    60
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: default_max_request_bytes(),
            upstream_timeout_secs: default_upstream_timeout_secs(),
            requests_per_second_per_key: None,
            burst_per_key: None,
            requests_per_second_per_route: None,
            burst_per_route: None,
            requests_per_second_per_user: None,
            burst_per_user: None,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit store URL (`sqlite:PATH` or `postgres://…`); default the embedded store
    /// under `$PHIGUARD_HOME`.
    #[serde(default)]
    pub store: Option<String>,
    /// Wait for the disk (fsync) on the dispatch record too, before anything goes upstream.
    /// Off by default: the dispatch record is committed first (it survives a crash of the
    /// gateway) and made power-loss durable with the completion record, before the answer
    /// reaches the caller; on, a power loss during the upstream call cannot lose it either,
    /// for one more disk wait per request.
    #[serde(default)]
    pub sync_dispatch: bool,
    /// When a request's records must be on disk (fsynced): before its answer reaches the
    /// caller (the default), or right after, without the request waiting for the disk.
    #[serde(default)]
    pub durability: Durability,
    /// The embedded store: how long, in milliseconds, a record waits in the journal (where it
    /// is already durable) for others to join its batch before the store takes them in (one
    /// store transaction per batch). Default 20; records show in `phiguard audit query` about
    /// this much later.
    #[serde(default)]
    pub journal_delay_ms: Option<u64>,
    /// The embedded store: the CPU priority of the thread that takes journaled records into
    /// the store. `idle` (the default: Linux `SCHED_IDLE`, so it never preempts a request;
    /// a normal-priority thread takes over when records wait over a second) or `normal`.
    #[serde(default)]
    pub ingest_priority: IngestPriority,
}

/// `[audit] ingest_priority`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestPriority {
    #[default]
    Idle,
    Normal,
}

/// `[audit] durability`: when a request's audit records reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Both records survive a power loss before the caller sees the answer: one fsync wait
    /// per request (shared with concurrent requests).
    #[default]
    Answer,
    /// Both records are written (they survive a crash or kill of the gateway) before the
    /// upstream call and the answer, and fsynced right after without the request waiting: a
    /// power loss or OS crash can take the records of the last moments (at most
    /// `MAX_UNSYNCED`), and a failed fsync fails every later request until a restart.
    Background,
}

/// The wire format a provider speaks (one adapter file per kind under `providers/`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI's chat completions API: vLLM, Ollama, llama.cpp server, TGI, OpenAI itself.
    #[default]
    OpenaiCompatible,
    /// AWS Bedrock Converse / ConverseStream (SigV4, binary event stream).
    Bedrock,
    /// Azure OpenAI: deployments, `api-version`, `api-key` or an Entra ID bearer.
    AzureOpenai,
    /// Google Vertex AI Gemini `generateContent` / `streamGenerateContent`.
    Vertex,
}

impl ProviderKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::AzureOpenai => "azure_openai",
            ProviderKind::Vertex => "vertex",
        }
    }
}

/// `[providers.NAME]`. The fields after `baa` belong to one kind each (`check` refuses them
/// on another kind).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (requests go to `{endpoint}/chat/completions`).
    pub endpoint: String,
    /// Models served here (names callers use). May be empty when `[models.NAME]` tables name
    /// this provider.
    #[serde(default)]
    pub models: Vec<String>,
    /// A self-hosted deployment inside the compliance boundary.
    #[serde(default)]
    pub private: bool,
    /// Bearer token sent upstream, if any.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The Business Associate Agreement covering this provider, if any.
    #[serde(default)]
    pub baa: Option<BaaRecord>,

    /// Bedrock: the AWS region (SigV4 scope), e.g. `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock: access key id (default `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    /// Bedrock: secret access key (default `AWS_SECRET_ACCESS_KEY`; never printed).
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
    /// Bedrock: session token for temporary credentials (default `AWS_SESSION_TOKEN`; never
    /// printed).
    #[serde(default)]
    pub aws_session_token: Option<String>,
    /// Bedrock: a profile of the shared credentials file (default `AWS_PROFILE`).
    #[serde(default)]
    pub aws_profile: Option<String>,
    /// Bedrock: the shared credentials file (default `AWS_SHARED_CREDENTIALS_FILE`, else
    /// `~/.aws/credentials`).
    #[serde(default)]
    pub aws_shared_credentials_file: Option<String>,
    /// Bedrock: a container credentials endpoint (ECS task role, EKS Pod Identity agent; default
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`). HTTPS, or HTTP to loopback or the agents'
    /// link-local addresses.
    #[serde(default)]
    pub aws_credentials_url: Option<String>,
    /// Bedrock: the file holding the container endpoint's authorization token (default
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), read on every fetch.
    #[serde(default)]
    pub aws_credentials_token_file: Option<String>,
    /// Bedrock: the EC2 instance metadata service (default
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`).
    #[serde(default)]
    pub aws_imds_endpoint: Option<String>,
    /// Bedrock: the IAM role to assume: with a web identity token (EKS IRSA) when there is
    /// one, else through STS `AssumeRole` with the credentials the rest of the chain finds.
    #[serde(default)]
    pub aws_role_arn: Option<String>,
    /// Bedrock: the web identity token file (default `AWS_WEB_IDENTITY_TOKEN_FILE`), read on
    /// every fetch.
    #[serde(default)]
    pub aws_web_identity_token_file: Option<String>,
    /// Bedrock: the STS endpoint (default `AWS_ENDPOINT_URL_STS`, else
    /// `https://sts.{region}.amazonaws.com`).
    #[serde(default)]
    pub aws_sts_endpoint: Option<String>,
    /// Bedrock: the shared config file, for `aws_profile` (default `AWS_CONFIG_FILE`, else
    /// `~/.aws/config`).
    #[serde(default)]
    pub aws_config_file: Option<String>,
    /// Bedrock: a command (run by `sh -c`) that prints the credentials as JSON (the AWS CLI's
    /// `credential_process`; never printed).
    #[serde(default)]
    pub aws_credential_process: Option<String>,
    /// Bedrock: the external id `aws_role_arn`'s trust policy asks for (with `AssumeRole`).
    #[serde(default)]
    pub aws_external_id: Option<String>,

    /// Azure OpenAI: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Azure OpenAI: model name callers use → deployment name.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Azure OpenAI with Entra ID (client credentials) instead of `api_key`: tenant.
    #[serde(default)]
    pub entra_tenant_id: Option<String>,
    /// Entra ID application (client) id.
    #[serde(default)]
    pub entra_client_id: Option<String>,
    /// Entra ID client secret (never printed).
    #[serde(default)]
    pub entra_client_secret: Option<String>,
    /// Entra ID authority (default `https://login.microsoftonline.com`; a sovereign cloud or a
    /// test mock otherwise).
    #[serde(default)]
    pub entra_authority: Option<String>,

    /// Vertex AI: the Google Cloud project.
    #[serde(default)]
    pub project: Option<String>,
    /// Vertex AI: the location (region), e.g. `us-central1`.
    #[serde(default)]
    pub location: Option<String>,
    /// Vertex AI: service-account JSON key file (default `GOOGLE_APPLICATION_CREDENTIALS`).
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// Vertex AI: replaces the key file's `token_uri` (private endpoints, tests).
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("models", &self.models)
            .field("private", &self.private)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("baa", &self.baa)
            .field("region", &self.region)
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field(
                "aws_secret_access_key",
                &self.aws_secret_access_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("aws_profile", &self.aws_profile)
            .field(
                "aws_shared_credentials_file",
                &self.aws_shared_credentials_file,
            )
            .field("aws_credentials_url", &self.aws_credentials_url)
            .field(
                "aws_credentials_token_file",
                &self.aws_credentials_token_file,
            )
            .field("aws_imds_endpoint", &self.aws_imds_endpoint)
            .field("aws_role_arn", &self.aws_role_arn)
            .field(
                "aws_web_identity_token_file",
                &self.aws_web_identity_token_file,
            )
            .field("aws_sts_endpoint", &self.aws_sts_endpoint)
            .field("aws_config_file", &self.aws_config_file)
            .field(
                "aws_credential_process",
                &self.aws_credential_process.as_ref().map(|_| "[REDACTED]"),
            )
            .field("aws_external_id", &self.aws_external_id)
            .field(
                "aws_session_token",
                &self.aws_session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("api_version", &self.api_version)
            .field("deployments", &self.deployments)
            .field("entra_tenant_id", &self.entra_tenant_id)
            .field("entra_client_id", &self.entra_client_id)
            .field(
                "entra_client_secret",
                &self.entra_client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("entra_authority", &self.entra_authority)
            .field("project", &self.project)
            .field("location", &self.location)
            .field("service_account_file", &self.service_account_file)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl ProviderConfig {
    /// Each kind's required fields are set, and no other kind's fields are.
    fn check_kind_fields(&self, name: &str) -> Result<(), String> {
        let kind = self.kind;
        let fields: [(&str, bool, &[ProviderKind]); 25] = [
            ("region", self.region.is_some(), &[ProviderKind::Bedrock]),
            (
                "aws_access_key_id",
                self.aws_access_key_id.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_secret_access_key",
                self.aws_secret_access_key.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_session_token",
                self.aws_session_token.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_profile",
                self.aws_profile.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_shared_credentials_file",
                self.aws_shared_credentials_file.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_credentials_url",
                self.aws_credentials_url.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_credentials_token_file",
                self.aws_credentials_token_file.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_imds_endpoint",
                self.aws_imds_endpoint.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_role_arn",
                self.aws_role_arn.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_web_identity_token_file",
                self.aws_web_identity_token_file.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_sts_endpoint",
                self.aws_sts_endpoint.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_config_file",
                self.aws_config_file.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_credential_process",
                self.aws_credential_process.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "aws_external_id",
                self.aws_external_id.is_some(),
                &[ProviderKind::Bedrock],
            ),
            (
                "api_version",
                self.api_version.is_some(),
                &[ProviderKind::AzureOpenai],
            ),
            (
                "deployments",
                !self.deployments.is_empty(),
                &[ProviderKind::AzureOpenai],
            ),
            (
                "entra_tenant_id",
                self.entra_tenant_id.is_some(),
                &[ProviderKind::AzureOpenai],
            ),
            (
                "entra_client_id",
                self.entra_client_id.is_some(),
                &[ProviderKind::AzureOpenai],
            ),
            (
                "entra_client_secret",
                self.entra_client_secret.is_some(),
                &[ProviderKind::AzureOpenai],
            ),
            (
                "entra_authority",
                self.entra_authority.is_some(),
                &[ProviderKind::AzureOpenai],
            ),
            ("project", self.project.is_some(), &[ProviderKind::Vertex]),
            ("location", self.location.is_some(), &[ProviderKind::Vertex]),
            (
                "service_account_file",
                self.service_account_file.is_some(),
                &[ProviderKind::Vertex],
            ),
            (
                "token_uri",
                self.token_uri.is_some(),
                &[ProviderKind::Vertex],
            ),
        ];
        for (field, set, kinds) in fields {
            if set && !kinds.contains(&kind) {
                return Err(format!(
                    "providers.{name}.{field}: not a field of kind \"{}\"",
                    kind.as_str()
                ));
            }
        }
        let need = |field: &str, v: &Option<String>| match v.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(format!(
                "providers.{name}.{field}: required for kind \"{}\"",
                kind.as_str()
            )),
        };
        match kind {
            ProviderKind::OpenaiCompatible => {}
            ProviderKind::Bedrock => {
                need("region", &self.region)?;
                if self.api_key.is_some() {
                    return Err(format!(
                        "providers.{name}.api_key: Bedrock signs with AWS credentials \
                         (aws_access_key_id, aws_secret_access_key)"
                    ));
                }
            }
            ProviderKind::AzureOpenai => {
                need("api_version", &self.api_version)?;
                if let Some(m) = self
                    .models
                    .iter()
                    .find(|m| !self.deployments.contains_key(m.as_str()))
                {
                    return Err(format!(
                        "providers.{name}.deployments: no deployment for model \"{m}\""
                    ));
                }
                let entra = self.entra_tenant_id.is_some()
                    || self.entra_client_id.is_some()
                    || self.entra_client_secret.is_some();
                if entra {
                    need("entra_tenant_id", &self.entra_tenant_id)?;
                    need("entra_client_id", &self.entra_client_id)?;
                    need("entra_client_secret", &self.entra_client_secret)?;
                    if self.api_key.as_deref().is_some_and(|k| !k.is_empty()) {
                        return Err(format!(
                            "providers.{name}: set api_key or the entra_* fields, not both"
                        ));
                    }
                }
            }
            ProviderKind::Vertex => {
                need("project", &self.project)?;
                need("location", &self.location)?;
                if self.api_key.is_some() {
                    return Err(format!(
                        "providers.{name}.api_key: Vertex AI uses a service account \
                         (service_account_file)"
                    ));
                }
            }
        }
        for (field, url) in [
            ("entra_authority", &self.entra_authority),
            ("token_uri", &self.token_uri),
        ] {
            if let Some(u) = url {
                check_url(u).map_err(|why| format!("providers.{name}.{field}: {why}"))?;
            }
        }
        Ok(())
    }
}

/// `http(s)`, and plain `http` only to loopback.
fn check_url(url: &str) -> Result<(), &'static str> {
    let url = reqwest::Url::parse(url).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected http or https");
    }
    if url.scheme() == "http" && !crate::routing::is_loopback_host(&url) {
        return Err("plain http is only allowed to loopback");
    }
    Ok(())
}

/// A BAA record: dates are `YYYY-MM-DD`; the agreement is active from `effective` until the
/// day before `expires` (it stops the moment the expiry date begins, UTC).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaaRecord {
    #[serde(deserialize_with = "de_date")]
    pub signed: Date,
    #[serde(deserialize_with = "de_date")]
    pub effective: Date,
    #[serde(deserialize_with = "de_date")]
    pub expires: Date,
    /// Operations covered: `chat.completions`, `embeddings`, …
    pub services: Vec<String>,
    /// Free-text reference to the signed document.
    #[serde(default)]
    pub reference: Option<String>,
    /// The 10-point review of the agreement. Absent: not recorded (routing behaves as without
    /// it, with a start-up warning); present: every point must be `true` for PHI to be routed.
    #[serde(default)]
    pub checklist: Option<BaaChecklist>,
}

/// `[providers.NAME.baa.checklist]`: the 10 points every vendor BAA is checked against. All
/// keys are required; unknown keys are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaaChecklist {
    /// 1. The agreement is signed by both parties.
    pub signed: bool,
    /// 2. The vendor does not train on our PHI.
    pub no_training_on_phi: bool,
    /// 3. Retention and deletion terms are stated.
    pub retention_and_deletion: bool,
    /// 4. Subcontractors are disclosed.
    pub subcontractor_disclosure: bool,
    /// 5. A breach-notification timeline is stated.
    pub breach_notification_timeline: bool,
    /// 6. Data portability.
    pub data_portability: bool,
    /// 7. No mixing with other customers' data.
    pub no_data_mixing: bool,
    /// 8. Security Rule safeguards, AI training infrastructure included.
    pub security_rule_safeguards: bool,
    /// 9. It covers the specific AI services used.
    pub covers_ai_services: bool,
    /// 10. Evidence such as a SOC 2 Type II report.
    pub security_evidence: bool,
}

impl BaaChecklist {
    /// Every point with its config key.
    pub fn items(&self) -> [(&'static str, bool); 10] {
        [
            ("signed", self.signed),
            ("no_training_on_phi", self.no_training_on_phi),
            ("retention_and_deletion", self.retention_and_deletion),
            ("subcontractor_disclosure", self.subcontractor_disclosure),
            (
                "breach_notification_timeline",
                self.breach_notification_timeline,
            ),
            ("data_portability", self.data_portability),
            ("no_data_mixing", self.no_data_mixing),
            ("security_rule_safeguards", self.security_rule_safeguards),
            ("covers_ai_services", self.covers_ai_services),
            ("security_evidence", self.security_evidence),
        ]
    }

    /// The keys of the points that are not `true`.
    pub fn missing(&self) -> Vec<&'static str> {
        self.items()
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(k, _)| k)
            .collect()
    }

    /// True when every point holds.
    pub fn complete(&self) -> bool {
        self.items().iter().all(|(_, ok)| *ok)
    }
}

/// The state of a BAA's checklist, as recorded in audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecklistState {
    Complete,
    Incomplete,
    NotRecorded,
}

impl ChecklistState {
    /// The name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecklistState::Complete => "complete",
            ChecklistState::Incomplete => "incomplete",
            ChecklistState::NotRecorded => "not_recorded",
        }
    }
}

impl BaaRecord {
    /// True when the agreement is signed, in effect on `today` and covers `service` (the
    /// checklist is not looked at: see [`BaaRecord::checklist_state`]).
    pub fn covers(&self, service: &str, today: Date) -> bool {
        self.in_effect(today) && self.services.iter().any(|s| s == service)
    }

    /// Days from `today` until the agreement expires (0 or less once it has).
    pub fn days_remaining(&self, today: Date) -> i64 {
        (self.expires - today).whole_days()
    }

    /// True when the agreement is signed and in effect on `today` (whatever it covers).
    pub fn in_effect(&self, today: Date) -> bool {
        self.signed <= today && self.effective <= today && today < self.expires
    }

    /// Whether the 10-point checklist is recorded, and complete.
    pub fn checklist_state(&self) -> ChecklistState {
        match &self.checklist {
            None => ChecklistState::NotRecorded,
            Some(c) if c.complete() => ChecklistState::Complete,
            Some(_) => ChecklistState::Incomplete,
        }
    }
}

fn de_opt_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    de_date(d).map(Some)
}

fn de_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    let s = String::deserialize(d)?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(&s, &fmt).map_err(|_| serde::de::Error::custom("expected a date YYYY-MM-DD"))
}

/// What a role may see of PHI (the minimum-necessary rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiPermission {
    /// No PHI at all: detected PHI is scrubbed from answers.
    None,
    /// De-identified data only: placeholders stay masked, PHI in answers is scrubbed.
    Deidentified,
    /// Full PHI: tokenized values are restored in answers.
    Full,
}

/// What happens to PHI detected in a request before it goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputPolicy {
    /// Send as is (only to a private or BAA-covered provider, and only for `phi = "full"`).
    Allow,
    /// Replace with typed tags such as `[NAME]`.
    Redact,
    /// Replace with placeholders such as `[[NAME_1]]` kept in a per-request vault.
    Tokenize,
    /// Refuse the request.
    Block,
}

impl InputPolicy {
    /// The lower-case name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            InputPolicy::Allow => "allow",
            InputPolicy::Redact => "redact",
            InputPolicy::Tokenize => "tokenize",
            InputPolicy::Block => "block",
        }
    }
}

/// What happens to a request that the prompt-injection screen marks as an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionMode {
    /// Not screened.
    Off,
    /// Screened; an injection is forwarded and recorded (audit record, metrics). The default:
    /// the screen's false positives must not stop a clinician's work.
    #[default]
    Flag,
    /// Screened; an injection is refused (`injection_blocked`) before anything goes upstream.
    Block,
}

impl InjectionMode {
    /// The lower-case name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            InjectionMode::Off => "off",
            InjectionMode::Flag => "flag",
            InjectionMode::Block => "block",
        }
    }
}

/// `[roles.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Actions allowed (`chat`, `summarization`, `coding`, …; `*` for any).
    pub actions: Vec<String>,
    /// Models allowed (`*` for any).
    pub models: Vec<String>,
    pub phi: PhiPermission,
    pub input: InputPolicy,
    /// Prompt-injection screening of the caller's messages (default `flag`).
    #[serde(default)]
    pub injection: InjectionMode,
}

impl RoleConfig {
    /// True when the role may use `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == "*" || m == model)
    }

    /// True when the role may perform `action`.
    pub fn allows_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
    }
}

impl Config {
    /// Reads, expands and parses `path`, then checks it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&raw, path, |k| std::env::var(k).ok())
    }

    /// Parses config text; `env` resolves `${VAR}`; `path` is only used in messages.
    pub fn parse(
        raw: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let expanded = expand_env(raw, &env).map_err(|(line, message)| ConfigError::At {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        let config: Config = toml::from_str(&expanded).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    expanded[..s.start.min(expanded.len())]
                        .matches('\n')
                        .count()
                        + 1
                })
                .unwrap_or(0);
            ConfigError::At {
                path: path.to_path_buf(),
                line,
                // toml's message names the key (`unknown field `x``); its Display would
                // also quote the source line, which may hold a secret, so only the message.
                message: e.message().trim().to_string(),
            }
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// The listen address, checked: with `[server.tls]` any address; without it plain HTTP,
    /// only on loopback and only when `server.plain_http = true`.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self
            .server
            .listen
            .parse()
            .map_err(|_| "server.listen: expected HOST:PORT with an IP address".to_string())?;
        match (&self.server.tls, self.server.plain_http) {
            (Some(_), true) => Err(
                "server.plain_http = true and [server.tls] exclude each other: choose one".into(),
            ),
            (Some(_), false) => Ok(addr),
            (None, _) if !addr.ip().is_loopback() => Err(
                "server.listen: a non-loopback address needs [server.tls] (cert and key); plain \
                 HTTP is only served on loopback"
                    .into(),
            ),
            (None, false) => Err(
                "configure [server.tls] (cert and key), or set server.plain_http = true to serve \
                 plain HTTP on loopback"
                    .into(),
            ),
            (None, true) => Ok(addr),
        }
    }

    fn check(&self) -> Result<(), String> {
        self.listen_addr()?;
        for (name, v) in [
            (
                "limits.requests_per_second_per_key",
                self.limits.requests_per_second_per_key,
            ),
            ("limits.burst_per_key", self.limits.burst_per_key),
            (
                "limits.requests_per_second_per_route",
                self.limits.requests_per_second_per_route,
            ),
            ("limits.burst_per_route", self.limits.burst_per_route),
            (
                "limits.requests_per_second_per_user",
                self.limits.requests_per_second_per_user,
            ),
            ("limits.burst_per_user", self.limits.burst_per_user),
        ] {
            if v == Some(0) {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.roles.is_empty() {
            return Err("no [roles.NAME] section: define at least one role".into());
        }
        for (name, p) in &self.providers {
            check_url(&p.endpoint).map_err(|why| format!("providers.{name}.endpoint: {why}"))?;
            if p.models.is_empty() && !self.models.values().any(|m| &m.provider == name) {
                return Err(format!(
                    "providers.{name}.models: empty (list models here, or name this provider \
                     in a [models.NAME] table)"
                ));
            }
            p.check_kind_fields(name)?;
            if let Some(b) = &p.baa {
                if b.effective < b.signed {
                    return Err(format!(
                        "providers.{name}.baa: effective date before signed date"
                    ));
                }
                if b.expires <= b.effective {
                    return Err(format!(
                        "providers.{name}.baa: expires on or before the effective date"
                    ));
                }
            }
        }
        self.check_models()?;
        if self.audit.sync_dispatch && self.audit.durability == Durability::Background {
            return Err(
                "audit.sync_dispatch = true waits for the disk before the upstream call, \
                 and audit.durability = \"background\" never waits for it: choose one"
                    .into(),
            );
        }
        for (name, r) in &self.roles {
            if r.input == InputPolicy::Allow && r.phi != PhiPermission::Full {
                return Err(format!(
                    "roles.{name}: input = \"allow\" sends PHI upstream and needs phi = \"full\""
                ));
            }
        }
        Ok(())
    }

    /// The `[models.NAME]` tables: each names a configured provider, a version, and is not
    /// listed under another provider.
    fn check_models(&self) -> Result<(), String> {
        for (name, m) in &self.models {
            if name.trim().is_empty() {
                return Err("models: a model name is empty".into());
            }
            let Some(p) = self.providers.get(&m.provider) else {
                return Err(format!(
                    "models.{name}.provider: no [providers.{}] section",
                    m.provider
                ));
            };
            if m.version.trim().is_empty() {
                return Err(format!("models.{name}.version: empty"));
            }
            if m.upstream_name
                .as_deref()
                .is_some_and(|u| u.trim().is_empty())
            {
                return Err(format!("models.{name}.upstream_name: empty"));
            }
            if let Some((other, _)) = self
                .providers
                .iter()
                .find(|(n, q)| *n != &m.provider && q.models.iter().any(|x| x == name))
            {
                return Err(format!(
                    "models.{name}.provider: the model is also listed in providers.{other}.models"
                ));
            }
            if p.kind == ProviderKind::AzureOpenai && !p.deployments.contains_key(m.upstream(name))
            {
                return Err(format!(
                    "providers.{}.deployments: no deployment for model \"{}\" (models.{name})",
                    m.provider,
                    m.upstream(name)
                ));
            }
        }
        Ok(())
    }

    /// The BAA of every provider that depends on one, in name order: a private deployment
    /// needs none, so its record (if any) decides nothing.
    pub fn baa_bound(&self) -> impl Iterator<Item = (&String, &BaaRecord)> {
        self.providers
            .iter()
            .filter(|(_, p)| !p.private)
            .filter_map(|(n, p)| p.baa.as_ref().map(|b| (n, b)))
    }

    /// BAAs (of providers that need one) that expire within `within_days` of `today`, or have
    /// expired: provider names and dates only.
    pub fn baa_expiry_warnings(&self, today: Date, within_days: i64) -> Vec<String> {
        let mut out = Vec::new();
        for (name, b) in self.baa_bound() {
            let days = b.days_remaining(today);
            if days <= 0 {
                out.push(format!(
                    "providers.{name}.baa expired on {}: PHI is not routed to this provider",
                    b.expires
                ));
            } else if days <= within_days {
                out.push(format!(
                    "providers.{name}.baa expires on {} (in {days} day{}): PHI routing to this \
                     provider stops then",
                    b.expires,
                    if days == 1 { "" } else { "s" }
                ));
            }
        }
        out
    }

    /// Start-up warnings (provider and key names only): BAAs without a recorded checklist, or
    /// with points not met.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, b) in self.baa_bound() {
            match &b.checklist {
                None => out.push(format!(
                    "providers.{name}.baa: no checklist recorded \
                     ([providers.{name}.baa.checklist]); PHI routing relies on the dates and \
                     services alone"
                )),
                Some(c) if !c.complete() => out.push(format!(
                    "providers.{name}.baa.checklist: not met ({}); PHI will not be routed to \
                     this provider",
                    c.missing().join(", ")
                )),
                Some(_) => {}
            }
        }
        out
    }

    /// The provider serving `model`: the registry's when the model is in `[models]`, else the
    /// first provider (in name order) listing it.
    pub fn provider_for(&self, model: &str) -> Option<(&str, &ProviderConfig)> {
        if let Some(m) = self.models.get(model) {
            return self
                .providers
                .get_key_value(&m.provider)
                .map(|(n, p)| (n.as_str(), p));
        }
        self.providers
            .iter()
            .find(|(_, p)| p.models.iter().any(|m| m == model))
            .map(|(n, p)| (n.as_str(), p))
    }

    /// Every model callers may name, with its provider and registry entry (if any): each
    /// provider's listed models in order, then the registry's models it serves not listed.
    pub fn all_models(&self) -> Vec<(&str, &str, Option<&ModelEntry>)> {
        let mut out: Vec<(&str, &str, Option<&ModelEntry>)> = Vec::new();
        for (pname, p) in &self.providers {
            for m in &p.models {
                // A name listed under two providers is served by the first (provider_for).
                if out.iter().any(|(n, _, _)| n == m) {
                    continue;
                }
                out.push((m.as_str(), pname.as_str(), self.models.get(m)));
            }
            for (m, e) in &self.models {
                if &e.provider == pname && !p.models.contains(m) {
                    out.push((m.as_str(), pname.as_str(), Some(e)));
                }
            }
        }
        out
    }
}

/// Expands `${VAR}` and `${VAR:-default}` line by line (comment lines are left alone).
/// Errors give the 1-based line and the variable name.
pub fn expand_env(
    raw: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let end = after.find('}').ok_or_else(|| {
                (
                    i + 1,
                    "unclosed ${ (expected ${VAR} or ${VAR:-default})".to_string(),
                )
            })?;
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((i + 1, "bad variable name in ${…}".to_string()));
            }
            let value = match env(name).filter(|v| !v.is_empty()) {
                Some(v) => v,
                None => match default {
                    Some(d) => d.to_string(),
                    None => {
                        return Err((
                            i + 1,
                            format!(
                                "environment variable {name} is not set (use ${{{name}:-default}})"
                            ),
                        ));
                    }
                },
            };
            if value.contains(['\n', '"', '\\']) {
                return Err((
                    i + 1,
                    format!("environment variable {name} holds a newline, quote or backslash"),
                ));
            }
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const BASE: &str = r#"
[server]
listen = "${PHIGUARD_LISTEN:-127.0.0.1:8080}"
plain_http = true

[providers.local]
kind = "openai_compatible"
endpoint = "${UPSTREAM_BASE_URL}"
models = ["m1"]
private = true

[roles.clinician]
actions = ["chat"]
models = ["*"]
phi = "full"
input = "tokenize"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "UPSTREAM_BASE_URL").then(|| "http://127.0.0.1:9/v1".to_string())
    }

    #[test]
    fn expands_and_parses() {
        let c = Config::parse(BASE, Path::new("x.toml"), env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.providers["local"].endpoint, "http://127.0.0.1:9/v1");
        assert_eq!(c.roles["clinician"].input, InputPolicy::Tokenize);
        assert_eq!(c.roles["clinician"].injection, InjectionMode::Flag);
    }

    #[test]
    fn injection_modes_parse_and_bad_ones_are_refused() {
        for (v, m) in [
            ("off", InjectionMode::Off),
            ("flag", InjectionMode::Flag),
            ("block", InjectionMode::Block),
        ] {
            let raw = BASE.replace(
                "input = \"tokenize\"",
                &format!("input = \"tokenize\"\ninjection = \"{v}\""),
            );
            let c = Config::parse(&raw, Path::new("x.toml"), env).unwrap();
            assert_eq!(c.roles["clinician"].injection, m);
            assert_eq!(m.as_str(), v);
        }
        let raw = BASE.replace(
            "input = \"tokenize\"",
            "input = \"tokenize\"\ninjection = \"warn\"",
        );
        assert!(Config::parse(&raw, Path::new("x.toml"), env).is_err());
    }

    #[test]
    fn audit_durability_parses_and_conflicts_with_sync_dispatch() {
        let c = Config::parse(BASE, Path::new("x.toml"), env).unwrap();
        assert_eq!(c.audit.durability, Durability::Answer);
        for (v, d) in [
            ("answer", Durability::Answer),
            ("background", Durability::Background),
        ] {
            let raw = format!("{BASE}\n[audit]\ndurability = \"{v}\"\n");
            let c = Config::parse(&raw, Path::new("x.toml"), env).unwrap();
            assert_eq!(c.audit.durability, d);
        }
        let raw = format!("{BASE}\n[audit]\ndurability = \"eventually\"\n");
        let e = Config::parse(&raw, Path::new("x.toml"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("eventually") && e.contains("x.toml:"), "{e}");
        let raw = format!("{BASE}\n[audit]\ndurability = \"background\"\nsync_dispatch = true\n");
        let e = Config::parse(&raw, Path::new("x.toml"), env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sync_dispatch") && e.contains("durability"),
            "{e}"
        );
    }

    #[test]
    fn audit_ingest_priority_parses() {
        let c = Config::parse(BASE, Path::new("x"), env).unwrap();
        assert_eq!(c.audit.ingest_priority, IngestPriority::Idle);
        let raw = format!("{BASE}\n[audit]\ningest_priority = \"normal\"\n");
        let c = Config::parse(&raw, Path::new("x"), env).unwrap();
        assert_eq!(c.audit.ingest_priority, IngestPriority::Normal);
        let raw = format!("{BASE}\n[audit]\ningest_priority = \"realtime\"\n");
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x:") && e.contains("`realtime`") && e.contains("`normal`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let raw = BASE.replace("private = true", "private = true\nbogus_key = 1");
        let e = Config::parse(&raw, Path::new("x.toml"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus_key"), "{e}");
        assert!(e.starts_with("x.toml:11:"), "{e}");
    }

    #[test]
    fn missing_variable_names_it_and_its_line() {
        let e = Config::parse(BASE, Path::new("x.toml"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml:8:") && e.contains("UPSTREAM_BASE_URL"),
            "{e}"
        );
    }

    #[test]
    fn non_loopback_or_no_plain_flag_refused() {
        let raw = BASE.replace("${PHIGUARD_LISTEN:-127.0.0.1:8080}", "0.0.0.0:8080");
        assert!(Config::parse(&raw, Path::new("x"), env).is_err());
        let raw = BASE.replace("plain_http = true", "plain_http = false");
        assert!(Config::parse(&raw, Path::new("x"), env).is_err());
    }

    #[test]
    fn tls_section() {
        let tls = "[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let on_any = BASE
            .replace("${PHIGUARD_LISTEN:-127.0.0.1:8080}", "0.0.0.0:8443")
            .replace("plain_http = true\n", tls);
        let c = Config::parse(&on_any, Path::new("x"), env).unwrap();
        let t = c.server.tls.as_ref().unwrap();
        assert_eq!(t.min_version, MinTlsVersion::Tls12);
        assert!(t.client_ca.is_none());
        assert_eq!(c.listen_addr().unwrap().port(), 8443);
        // min_version 1.3 (string or number), and nothing below 1.2.
        for (v, want) in [
            ("\"1.3\"", Some(MinTlsVersion::Tls13)),
            ("1.2", Some(MinTlsVersion::Tls12)),
            ("\"1.1\"", None),
            ("\"1.0\"", None),
        ] {
            let raw = on_any.replace(
                "key = \"k.pem\"",
                &format!("key = \"k.pem\"\nmin_version = {v}"),
            );
            match (Config::parse(&raw, Path::new("x"), env), want) {
                (Ok(c), Some(w)) => assert_eq!(c.server.tls.unwrap().min_version, w),
                (Err(e), None) => assert!(e.to_string().contains("min_version"), "{e}"),
                (r, w) => panic!("{v}: {r:?} wanted {w:?}"),
            }
        }
        // Unknown keys in [server.tls] are errors naming the key.
        let raw = on_any.replace("key = \"k.pem\"", "key = \"k.pem\"\nciphers = \"x\"");
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ciphers"), "{e}");
        // plain_http together with tls is ambiguous.
        let raw = BASE.replace("plain_http = true\n", &format!("plain_http = true\n{tls}"));
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclude"), "{e}");
    }

    #[test]
    fn non_loopback_without_tls_names_the_fix() {
        let raw = BASE.replace("${PHIGUARD_LISTEN:-127.0.0.1:8080}", "10.1.2.3:8080");
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[server.tls]") && e.contains("loopback"), "{e}");
    }

    #[test]
    fn zero_rate_limits_refused() {
        let raw = format!("{BASE}\n[limits]\nrequests_per_second_per_route = 0\n");
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("requests_per_second_per_route"), "{e}");
    }

    #[test]
    fn allow_needs_full_phi() {
        let raw = BASE
            .replace("phi = \"full\"", "phi = \"none\"")
            .replace("\"tokenize\"", "\"allow\"");
        let e = Config::parse(&raw, Path::new("x"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("roles.clinician"), "{e}");
    }

    #[test]
    fn baa_window() {
        let d = |s: &str| {
            Date::parse(
                s,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .unwrap()
        };
        let b = BaaRecord {
            signed: d("2025-01-01"),
            effective: d("2025-02-01"),
            expires: d("2026-02-01"),
            services: vec!["chat.completions".into()],
            reference: None,
            checklist: None,
        };
        assert!(!b.covers("chat.completions", d("2025-01-15")));
        assert!(b.covers("chat.completions", d("2025-02-01")));
        assert!(b.covers("chat.completions", d("2026-01-31")));
        assert!(!b.covers("chat.completions", d("2026-02-01")));
        assert!(!b.covers("embeddings", d("2025-06-01")));
    }

    const CHECKLIST: &str = "[providers.hosted.baa.checklist]
signed = true
no_training_on_phi = true
retention_and_deletion = true
subcontractor_disclosure = true
breach_notification_timeline = true
data_portability = true
no_data_mixing = true
security_rule_safeguards = true
covers_ai_services = true
security_evidence = true
";

    fn hosted(checklist: &str) -> String {
        format!(
            "{BASE}
[providers.hosted]
kind = \"openai_compatible\"
endpoint = \"https://llm.example.org/v1\"
models = [\"h1\"]
[providers.hosted.baa]
signed = \"2026-01-10\"
effective = \"2026-02-01\"
expires = \"2027-02-01\"
services = [\"chat.completions\"]
{checklist}"
        )
    }

    #[test]
    fn model_registry_parses_and_resolves() {
        let raw = format!(
            "{BASE}
[models.gpt-4o]
provider = \"local\"
version = \"2024-08-06\"
upstream_name = \"gpt-4o-2024-08-06\"
description = \"general chat\"
retired = \"2027-06-30\"

[models.m1]
provider = \"local\"
version = \"1.0\"
"
        );
        let c = Config::parse(&raw, Path::new("x"), env).unwrap();
        let m = &c.models["gpt-4o"];
        assert_eq!(m.version, "2024-08-06");
        assert_eq!(m.upstream("gpt-4o"), "gpt-4o-2024-08-06");
        assert_eq!(c.models["m1"].upstream("m1"), "m1");
        assert!(!m.is_retired(time::macros::date!(2027 - 06 - 29)));
        assert!(m.is_retired(time::macros::date!(2027 - 06 - 30)));
        // Served by the registry's provider without being listed there.
        assert_eq!(c.provider_for("gpt-4o").unwrap().0, "local");
        assert_eq!(c.provider_for("m1").unwrap().0, "local");
        assert!(c.provider_for("nope").is_none());
        let all: Vec<_> = c
            .all_models()
            .into_iter()
            .map(|(n, p, e)| (n, p, e.is_some()))
            .collect();
        assert_eq!(all, vec![("m1", "local", true), ("gpt-4o", "local", true)]);
        // A provider may list no models when the registry names it.
        let raw = raw.replace("models = [\"m1\"]\n", "");
        assert!(Config::parse(&raw, Path::new("x"), env).is_ok());
    }

    #[test]
    fn model_registry_errors_name_the_key() {
        let entry = |body: &str| format!("{BASE}\n[models.gpt-4o]\n{body}\n");
        let err = |raw: String| {
            Config::parse(&raw, Path::new("x"), env)
                .unwrap_err()
                .to_string()
        };
        let e = err(entry("provider = \"nowhere\"\nversion = \"1\""));
        assert!(
            e.contains("models.gpt-4o.provider") && e.contains("nowhere"),
            "{e}"
        );
        let e = err(entry("provider = \"local\""));
        assert!(e.contains("version"), "{e}");
        let e = err(entry("provider = \"local\"\nversion = \" \""));
        assert!(e.contains("models.gpt-4o.version"), "{e}");
        let e = err(entry(
            "provider = \"local\"\nversion = \"1\"\nretired = \"soon\"",
        ));
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        let e = err(entry(
            "provider = \"local\"\nversion = \"1\"\nowner = \"x\"",
        ));
        assert!(e.contains("owner"), "{e}");
        let e = err(entry(
            "provider = \"local\"\nversion = \"1\"\nupstream_name = \"\"",
        ));
        assert!(e.contains("models.gpt-4o.upstream_name"), "{e}");
        // Listed under another provider: ambiguous.
        let raw = format!(
            "{BASE}\n[providers.other]\nkind = \"openai_compatible\"\nendpoint = \"http://127.0.0.1:9/v1\"\nmodels = [\"gpt-4o\"]\n\
             private = true\n[models.gpt-4o]\nprovider = \"local\"\nversion = \"1\"\n"
        );
        let e = err(raw);
        assert!(
            e.contains("models.gpt-4o.provider") && e.contains("providers.other.models"),
            "{e}"
        );
        // A provider with neither listed nor registry models.
        let e = err(BASE.replace("models = [\"m1\"]\n", ""));
        assert!(e.contains("providers.local.models"), "{e}");
    }

    #[test]
    fn baa_checklist_parses_and_is_strict() {
        let c = Config::parse(&hosted(CHECKLIST), Path::new("x"), env).unwrap();
        let b = c.providers["hosted"].baa.as_ref().unwrap();
        assert_eq!(b.checklist_state(), ChecklistState::Complete);
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        // Not recorded: accepted, with a warning naming the provider.
        let c = Config::parse(&hosted(""), Path::new("x"), env).unwrap();
        let b = c.providers["hosted"].baa.as_ref().unwrap();
        assert_eq!(b.checklist_state(), ChecklistState::NotRecorded);
        let w = c.warnings();
        assert!(
            w.len() == 1 && w[0].contains("providers.hosted.baa"),
            "{w:?}"
        );
        // A false point: accepted (it is a record), incomplete, warned about by key.
        let c = Config::parse(
            &hosted(&CHECKLIST.replace("no_training_on_phi = true", "no_training_on_phi = false")),
            Path::new("x"),
            env,
        )
        .unwrap();
        let b = c.providers["hosted"].baa.as_ref().unwrap();
        assert_eq!(b.checklist_state(), ChecklistState::Incomplete);
        let w = c.warnings();
        assert!(w.len() == 1 && w[0].contains("no_training_on_phi"), "{w:?}");
        // Unknown and missing keys are errors naming the key.
        let e = Config::parse(
            &hosted(&format!("{CHECKLIST}soc3 = true\n")),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("soc3"), "{e}");
        let e = Config::parse(
            &hosted(&CHECKLIST.replace("data_portability = true\n", "")),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data_portability"), "{e}");
        let e = Config::parse(
            &hosted(&CHECKLIST.replace("signed = true", "signed = \"yes\"")),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bool"), "{e}");
    }

    #[test]
    fn kind_fields_are_checked_and_secrets_hidden() {
        let bedrock = BASE.replace(
            "kind = \"openai_compatible\"",
            "kind = \"bedrock\"\nregion = \"us-east-1\"\naws_access_key_id = \"AKID\"\naws_secret_access_key = \"s3cr3t-value\"\naws_credential_process = \"vault-aws --token pr0cess-secret\"",
        );
        let c = Config::parse(&bedrock, Path::new("x"), env).unwrap();
        let p = &c.providers["local"];
        assert_eq!(p.kind, ProviderKind::Bedrock);
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("s3cr3t-value")
                && !dbg.contains("pr0cess-secret")
                && dbg.contains("AKID"),
            "{dbg}"
        );
        // A required field missing, and another kind's field.
        let e = Config::parse(
            &bedrock.replace("region = \"us-east-1\"\n", ""),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("providers.local.region"), "{e}");
        let e = Config::parse(
            &bedrock.replace("region =", "api_version = \"2024-10-21\"\nregion ="),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("providers.local.api_version") && e.contains("bedrock"),
            "{e}"
        );
        let e = Config::parse(
            &BASE.replace("private = true", "private = true\nregion = \"us-east-1\""),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("providers.local.region"), "{e}");
        // Unknown keys stay errors.
        let e = Config::parse(
            &bedrock.replace("region =", "aws_region = \"x\"\nregion ="),
            Path::new("x"),
            env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("aws_region"), "{e}");
    }

    #[test]
    fn commented_provider_examples_parse() {
        // Uncomment every commented table and `key = value` line of the example file.
        let raw = include_str!("../../../examples/phiguard.toml");
        let text: String = raw
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                // The TLS example replaces plain_http: it stays commented here.
                Some(rest)
                    if rest.starts_with("[server.")
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            matches!(k.trim(), "cert" | "key" | "client_ca" | "min_version")
                        }) =>
                {
                    format!("{l}\n")
                }
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        }) =>
                {
                    format!("{rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        let c = Config::parse(&text, Path::new("examples/phiguard.toml"), |k| {
            match k {
                "UPSTREAM_BASE_URL" => Some("http://127.0.0.1:9/v1".to_string()),
                // Variables with a default in the file keep it.
                k if k.starts_with("PHIGUARD_") || k.starts_with("UPSTREAM_") => None,
                _ => Some("x".to_string()),
            }
        })
        .unwrap();
        assert_eq!(c.providers["bedrock"].kind, ProviderKind::Bedrock);
        assert_eq!(c.providers["azure"].deployments["gpt-4o"], "gpt-4o-prod");
        assert_eq!(c.providers["vertex"].kind, ProviderKind::Vertex);
        assert!(c.providers.contains_key("hosted"));
        let baa = c.providers["hosted"].baa.as_ref().unwrap();
        assert_eq!(baa.checklist_state(), ChecklistState::Complete);
        let m = &c.models["claude-3-5-sonnet"];
        assert_eq!(m.provider, "bedrock");
        assert_eq!(
            m.upstream("claude-3-5-sonnet"),
            "anthropic.claude-3-5-sonnet-20240620-v1:0"
        );
        assert_eq!(c.provider_for("claude-3-5-sonnet").unwrap().0, "bedrock");
    }

    #[test]
    fn example_config_parses() {
        let raw = include_str!("../../../examples/phiguard.toml");
        let c = Config::parse(raw, Path::new("examples/phiguard.toml"), env).unwrap();
        assert_eq!(c.roles["clinician"].phi, PhiPermission::Full);
        assert_eq!(c.roles["analyst"].phi, PhiPermission::None);
    }
}
