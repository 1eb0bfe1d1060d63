//! Azure Key Vault (and Managed HSM) key provider over the REST API.
//!
//! - `wrap` = `POST {vault}/keys/{name}/{version}/wrapkey?api-version=7.4` with
//!   `{"alg": "RSA-OAEP-256" | "A256KW", "value": base64url(data key)}`; the response is
//!   `{"kid": "{vault}/keys/{name}/{version}", "value": base64url(wrapped)}`.
//! - `unwrap` = `…/unwrapkey` with the same body shape and the wrapped bytes.
//! - Authentication: a bearer token, either given (`PHIGUARD_AZURE_TOKEN`) or obtained with
//!   the client-credentials flow from Entra ID (`POST {authority}/{tenant}/oauth2/v2.0/token`,
//!   scope `https://vault.azure.net/.default`), cached until a minute before it expires.
//!
//! KEK id = `{vault}/keys/{name}` (the key's `kid` without a version). Key Vault names
//! versions with opaque strings; phiguard numbers them 1, 2, … in the order they are listed
//! in [`AzureKeyVaultConfig::versions`] (append only: the last one is current). The wrapped
//! blob also carries the Key Vault version string (`u8 length ‖ version ‖ wrapped bytes`), so
//! a reordered list is reported as a wrong key instead of a confusing authentication error.
//!
//! Key Vault's wrapKey takes no associated data: the encryption context is bound by the
//! envelope (header AAD and key commitment), as docs/encryption.md explains.
//!
//! Service errors (401, 403, 404, 429, 5xx) become [`CryptoError`]s that name the operation,
//! the key and the HTTP status and the service's error code, never a token, a client secret
//! or key bytes. 429 and 5xx are retried once (after `Retry-After`, capped by
//! [`AzureKeyVaultConfig::max_retry_wait`]). A disabled key version (`KeyDisabled`) is
//! reported as [`CryptoError::Revoked`], an unknown one (`KeyNotFound`) as
//! [`CryptoError::UnknownKek`].

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::provider::http::{
    self, Reply, bad_response, build_agent, form_encode, io_error, oauth_error_code, status_kind,
    transport_error, with_retry,
};
use crate::provider::{KekRef, KeyProvider, MAX_KEK_ID, WrappedKey};
use crate::{CryptoError, DataKey, EncryptionContext};

/// The provider name stored in ciphertext headers.
pub const PROVIDER_NAME: &str = "azure-kv";
/// The Key Vault REST API version used.
pub const API_VERSION: &str = "7.4";
/// The public Entra ID authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The OAuth scope for Key Vault data-plane calls.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// Environment variable holding a ready bearer token.
pub const ENV_TOKEN: &str = "PHIGUARD_AZURE_TOKEN";
/// Environment variables for the client-credentials flow.
pub const ENV_TENANT_ID: &str = "PHIGUARD_AZURE_TENANT_ID";
pub const ENV_CLIENT_ID: &str = "PHIGUARD_AZURE_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "PHIGUARD_AZURE_CLIENT_SECRET";
pub const ENV_AUTHORITY: &str = "PHIGUARD_AZURE_AUTHORITY";

const MAX_RESPONSE: u64 = 1 << 20;
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// base64url; Key Vault sends it unpadded, but padded input is accepted too.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The key-wrapping algorithm Key Vault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapAlgorithm {
    /// RSA-OAEP with SHA-256 (RSA keys in Key Vault or Managed HSM).
    RsaOaep256,
    /// AES key wrap, RFC 3394 (AES keys, Managed HSM only).
    A256Kw,
}

impl WrapAlgorithm {
    /// The `alg` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WrapAlgorithm::RsaOaep256 => "RSA-OAEP-256",
            WrapAlgorithm::A256Kw => "A256KW",
        }
    }
}

/// How the provider authenticates to Key Vault.
pub enum AzureCredential {
    /// A ready bearer token for `https://vault.azure.net`.
    Token(SecretString),
    /// The OAuth 2.0 client-credentials flow against Entra ID.
    ClientSecret {
        /// `https://login.microsoftonline.com` unless a sovereign cloud or a test mock.
        authority: String,
        tenant_id: String,
        client_id: String,
        client_secret: SecretString,
    },
}

impl AzureCredential {
    /// From the environment: `PHIGUARD_AZURE_TOKEN` if set, else `PHIGUARD_AZURE_TENANT_ID`,
    /// `PHIGUARD_AZURE_CLIENT_ID` and `PHIGUARD_AZURE_CLIENT_SECRET` (and optionally
    /// `PHIGUARD_AZURE_AUTHORITY`). `None` when neither is complete.
    pub fn from_env() -> Option<AzureCredential> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var(ENV_TOKEN) {
            return Some(AzureCredential::Token(SecretString::from(token)));
        }
        Some(AzureCredential::ClientSecret {
            authority: var(ENV_AUTHORITY).unwrap_or_else(|| DEFAULT_AUTHORITY.to_string()),
            tenant_id: var(ENV_TENANT_ID)?,
            client_id: var(ENV_CLIENT_ID)?,
            client_secret: SecretString::from(var(ENV_CLIENT_SECRET)?),
        })
    }
}

impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureCredential::Token(_) => f.write_str("Token([REDACTED])"),
            AzureCredential::ClientSecret {
                authority,
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("authority", authority)
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// Where the KEK lives and how to reach it.
#[derive(Debug)]
pub struct AzureKeyVaultConfig {
    /// `https://{vault}.vault.azure.net` (or a Managed HSM URL, or a test mock).
    pub vault_url: String,
    /// The key's name in the vault.
    pub key_name: String,
    /// The Key Vault version strings of the key, oldest first; phiguard version *n* is the
    /// *n*-th entry and the last one is current. Append only.
    pub versions: Vec<String>,
    pub algorithm: WrapAlgorithm,
    pub credential: AzureCredential,
    /// Whole-request timeout (connect, send, receive) for each HTTP call.
    pub timeout: Duration,
    /// Longest wait honoured from a `Retry-After` header before the single retry.
    pub max_retry_wait: Duration,
}

impl AzureKeyVaultConfig {
    /// A configuration with the defaults: RSA-OAEP-256, 10 s timeout, 5 s longest retry wait.
    pub fn new(
        vault_url: impl Into<String>,
        key_name: impl Into<String>,
        versions: Vec<String>,
        credential: AzureCredential,
    ) -> AzureKeyVaultConfig {
        AzureKeyVaultConfig {
            vault_url: vault_url.into(),
            key_name: key_name.into(),
            versions,
            algorithm: WrapAlgorithm::RsaOaep256,
            credential,
            timeout: Duration::from_secs(10),
            max_retry_wait: Duration::from_secs(5),
        }
    }
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// The Azure Key Vault key provider.
pub struct AzureKeyVault {
    config: AzureKeyVaultConfig,
    vault: String,
    kek_id: String,
    agent: ureq::Agent,
    token: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("kek_id", &self.kek_id)
            .field("versions", &self.config.versions)
            .field("algorithm", &self.config.algorithm)
            .field("credential", &self.config.credential)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyOpResult {
    kid: String,
    value: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct ServiceError {
    #[serde(default)]
    error: Option<ServiceErrorBody>,
}

#[derive(Deserialize, Default)]
struct ServiceErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    innererror: Option<Box<ServiceErrorBody>>,
}

impl AzureKeyVault {
    /// Checks the configuration and builds the HTTP client. Makes no network call.
    pub fn new(config: AzureKeyVaultConfig) -> Result<AzureKeyVault, CryptoError> {
        let vault = config.vault_url.trim_end_matches('/').to_string();
        check_url(&vault, "vault URL")?;
        if let AzureCredential::ClientSecret { authority, .. } = &config.credential {
            check_url(authority.trim_end_matches('/'), "authority URL")?;
        }
        if config.key_name.is_empty() || !config.key_name.chars().all(is_name_char) {
            return Err(invalid(
                "the Key Vault key name must be 1..127 letters, digits and dashes",
            ));
        }
        if config.versions.is_empty() {
            return Err(invalid("at least one Key Vault key version is needed"));
        }
        if let Some(v) = config
            .versions
            .iter()
            .find(|v| v.is_empty() || v.len() > 255 || !v.chars().all(is_name_char))
        {
            return Err(invalid(&format!(
                "Key Vault key version `{v}` is not a version id"
            )));
        }
        let kek_id = format!("{vault}/keys/{}", config.key_name);
        if kek_id.len() > MAX_KEK_ID {
            return Err(invalid("the key's URL is longer than 255 bytes"));
        }
        let agent = build_agent(config.timeout);
        Ok(AzureKeyVault {
            config,
            vault,
            kek_id,
            agent,
            token: Mutex::new(None),
        })
    }

    /// The KEK id stored in headers: `{vault}/keys/{name}`.
    pub fn kek_id(&self) -> &str {
        &self.kek_id
    }

    fn version_string(&self, version: u32) -> Option<&str> {
        let index = usize::try_from(version).ok()?.checked_sub(1)?;
        self.config.versions.get(index).map(String::as_str)
    }

    fn key_url(&self, kv_version: &str, op: &str) -> String {
        format!(
            "{}/keys/{}/{kv_version}/{op}?api-version={API_VERSION}",
            self.vault, self.config.key_name
        )
    }

    fn bearer(&self) -> Result<Zeroizing<String>, CryptoError> {
        match &self.config.credential {
            AzureCredential::Token(t) => {
                Ok(Zeroizing::new(format!("Bearer {}", t.expose_secret())))
            }
            AzureCredential::ClientSecret {
                authority,
                tenant_id,
                client_id,
                client_secret,
            } => {
                let mut cache = self.token.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = cache.as_ref()
                    && Instant::now() < c.refresh_at
                {
                    return Ok(Zeroizing::new(format!(
                        "Bearer {}",
                        c.token.expose_secret()
                    )));
                }
                let fresh = client_credentials(
                    &self.agent,
                    authority.trim_end_matches('/'),
                    tenant_id,
                    client_id,
                    client_secret,
                    self.config.max_retry_wait,
                )?;
                let header = Zeroizing::new(format!("Bearer {}", fresh.token.expose_secret()));
                *cache = Some(fresh);
                Ok(header)
            }
        }
    }

    fn forget_token(&self) {
        let mut cache = self.token.lock().unwrap_or_else(|e| e.into_inner());
        *cache = None;
    }

    /// One key operation (`wrapkey` or `unwrapkey`) with the single retry.
    fn key_op(
        &self,
        kek: &KekRef,
        kv_version: &str,
        op: &'static str,
        value: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let url = self.key_url(kv_version, op);
        let body = Zeroizing::new(
            serde_json::json!({
                "alg": self.config.algorithm.as_str(),
                "value": B64URL.encode(value),
            })
            .to_string(),
        );
        let what = || format!("Azure Key Vault {op} with {kek} ({kv_version})");
        let bearer = self.bearer()?;
        let reply = with_retry(self.config.max_retry_wait, || {
            post(
                &self.agent,
                &url,
                Some(bearer.as_str()),
                "application/json",
                body.as_bytes(),
            )
            .map_err(|e| transport_error(what(), e))
        })?;
        if reply.status != 200 {
            if reply.status == 401 {
                self.forget_token();
            }
            return Err(service_error(what(), kek, &reply));
        }
        let parsed: KeyOpResult = serde_json::from_slice(&reply.body)
            .map_err(|e| bad_response(what(), &format!("not a key operation result ({e})")))?;
        let expected_kid = format!("/keys/{}/{kv_version}", self.config.key_name);
        if !parsed.kid.trim_end_matches('/').ends_with(&expected_kid) {
            return Err(bad_response(
                what(),
                "the response names another key or version (kid)",
            ));
        }
        let out = Zeroizing::new(
            B64URL
                .decode(parsed.value.as_bytes())
                .map_err(|_| bad_response(what(), "the value is not base64url"))?,
        );
        drop(Zeroizing::new(parsed.value));
        Ok(out)
    }
}

impl KeyProvider for AzureKeyVault {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn current(&self) -> Result<KekRef, CryptoError> {
        let version = u32::try_from(self.config.versions.len())
            .map_err(|_| invalid("too many Key Vault key versions"))?;
        Ok(KekRef {
            id: self.kek_id.clone(),
            version,
        })
    }

    fn wrap(
        &self,
        data_key: &DataKey,
        _context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError> {
        let kek = self.current()?;
        let kv_version = self
            .version_string(kek.version)
            .ok_or_else(|| invalid("no current Key Vault key version"))?;
        let wrapped = self.key_op(&kek, kv_version, "wrapkey", data_key.expose_secret())?;
        if wrapped.is_empty() || wrapped.len() > 2048 {
            return Err(bad_response(
                format!("Azure Key Vault wrapkey with {kek}"),
                "the wrapped key has an implausible length",
            ));
        }
        let mut blob = Vec::with_capacity(1 + kv_version.len() + wrapped.len());
        blob.push(u8::try_from(kv_version.len()).map_err(|_| invalid("version id too long"))?);
        blob.extend_from_slice(kv_version.as_bytes());
        blob.extend_from_slice(&wrapped);
        Ok(WrappedKey {
            provider: PROVIDER_NAME.to_string(),
            kek,
            blob,
        })
    }

    fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _context: &EncryptionContext,
    ) -> Result<DataKey, CryptoError> {
        if wrapped.provider != PROVIDER_NAME {
            return Err(CryptoError::WrongProvider {
                found: wrapped.provider.clone(),
                expected: PROVIDER_NAME.to_string(),
            });
        }
        let unknown = |why: &str| CryptoError::UnknownKek {
            found: wrapped.kek.clone(),
            provider: format!("Azure Key Vault key {} ({why})", self.kek_id),
        };
        if wrapped.kek.id != self.kek_id {
            return Err(unknown("another key"));
        }
        let kv_version = self
            .version_string(wrapped.kek.version)
            .ok_or_else(|| unknown("no such version configured"))?;
        let (stored, sealed) = split_blob(&wrapped.blob).ok_or(CryptoError::Authentication(
            "the wrapped data key is malformed (Azure Key Vault blob)",
        ))?;
        if stored != kv_version.as_bytes() {
            return Err(unknown(
                "the configured version list maps this version to another Key Vault version",
            ));
        }
        let plain = self.key_op(&wrapped.kek, kv_version, "unwrapkey", sealed)?;
        DataKey::from_slice(&plain).ok_or(CryptoError::Authentication(
            "the unwrapped data key has the wrong length",
        ))
    }
}

fn split_blob(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = blob.split_first()?;
    let len = usize::from(len);
    if len == 0 || rest.len() <= len {
        return None;
    }
    Some(rest.split_at(len))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn client_credentials(
    agent: &ureq::Agent,
    authority: &str,
    tenant_id: &str,
    client_id: &str,
    client_secret: &SecretString,
    max_retry_wait: Duration,
) -> Result<CachedToken, CryptoError> {
    if tenant_id.is_empty() || !tenant_id.chars().all(|c| is_name_char(c) || c == '.') {
        return Err(invalid(
            "the Entra ID tenant id is not a GUID or domain name",
        ));
    }
    let url = format!("{authority}/{tenant_id}/oauth2/v2.0/token");
    let what = || format!("Entra ID token request for client {client_id} at {url}");
    let body = Zeroizing::new(form_encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret.expose_secret()),
        ("scope", VAULT_SCOPE),
    ]));
    let started = Instant::now();
    let reply = with_retry(max_retry_wait, || {
        post(
            agent,
            &url,
            None,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
        .map_err(|e| transport_error(what(), e))
    })?;
    if reply.status != 200 {
        let code = oauth_error_code(&reply.body);
        return Err(io_error(
            what(),
            status_kind(reply.status),
            format!(
                "HTTP {}{}: the client credentials were rejected or the tenant is unknown",
                reply.status,
                code.map(|c| format!(" ({c})")).unwrap_or_default()
            ),
        ));
    }
    let parsed: TokenResponse = serde_json::from_slice(&reply.body)
        .map_err(|_| bad_response(what(), "not an OAuth token response"))?;
    if parsed.access_token.is_empty() {
        return Err(bad_response(what(), "the access token is empty"));
    }
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(300));
    Ok(CachedToken {
        token: SecretString::from(parsed.access_token),
        refresh_at: started + lifetime.saturating_sub(TOKEN_MARGIN),
    })
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    let mut req = agent
        .post(url)
        .header("Content-Type", content_type)
        .header("Accept", "application/json");
    if let Some(b) = bearer {
        req = req.header("Authorization", b);
    }
    let mut resp = req.send(body)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = Zeroizing::new(
        resp.body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()?,
    );
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

fn service_error(what: String, kek: &KekRef, reply: &Reply) -> CryptoError {
    let parsed: ServiceError = serde_json::from_slice(&reply.body).unwrap_or_default();
    let outer = parsed.error.as_ref().and_then(|e| e.code.clone());
    let inner = parsed
        .error
        .as_ref()
        .and_then(|e| e.innererror.as_ref())
        .and_then(|e| e.code.clone());
    let codes: Vec<String> = [outer, inner]
        .into_iter()
        .flatten()
        .filter(|c| c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    if codes.iter().any(|c| c == "KeyDisabled") {
        return CryptoError::Revoked { kek: kek.clone() };
    }
    if reply.status == 404 {
        return CryptoError::UnknownKek {
            found: kek.clone(),
            provider: format!(
                "Azure Key Vault ({}: HTTP 404, no such key or version)",
                if codes.is_empty() {
                    "NotFound".to_string()
                } else {
                    codes.join("/")
                }
            ),
        };
    }
    let hint = match reply.status {
        401 => "the bearer token was rejected (expired, or issued for another audience)",
        403 => {
            "the identity may not use this key (missing wrapKey/unwrapKey permission) or a firewall blocks it"
        }
        400 => {
            "the service rejected the request (wrong algorithm for this key type, or an altered wrapped key)"
        }
        429 => "throttled by the service; retried once after Retry-After, still throttled",
        500..=599 => "the service failed; retried once, still failing",
        _ => "unexpected status",
    };
    let code = if codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", codes.join("/"))
    };
    io_error(
        what,
        status_kind(reply.status),
        format!("HTTP {}{code}: {hint}", reply.status),
    )
}

/// Plain `http://` only to loopback (test mocks): bearer tokens never cross a network in
/// clear.
fn check_url(url: &str, what: &str) -> Result<(), CryptoError> {
    http::check_url("Azure Key Vault provider", url, what)
}

fn invalid(why: &str) -> CryptoError {
    CryptoError::KeyFileState(format!("Azure Key Vault provider: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_encode(&[("a b", "x&y=z/~."), ("scope", VAULT_SCOPE)]),
            "a%20b=x%26y%3Dz%2F~.&scope=https%3A%2F%2Fvault.azure.net%2F.default"
        );
    }

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(check_url("https://v.vault.azure.net", "x").is_ok());
        assert!(check_url("http://127.0.0.1:8080", "x").is_ok());
        assert!(check_url("http://localhost", "x").is_ok());
        assert!(check_url("http://example.com", "x").is_err());
        assert!(check_url("http://127.0.0.1.evil.com", "x").is_err());
        assert!(check_url("https://v.vault.azure.net?x=1", "x").is_err());
    }

    #[test]
    fn blob_splitting_rejects_short_blobs() {
        assert!(split_blob(&[]).is_none());
        assert!(split_blob(&[3, b'a', b'b', b'c']).is_none());
        assert_eq!(
            split_blob(&[1, b'a', 9, 9]),
            Some((&b"a"[..], &[9u8, 9][..]))
        );
    }
}
