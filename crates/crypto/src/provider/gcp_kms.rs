//! Google Cloud KMS key provider over the REST API.
//!
//! - `wrap` = `POST {base}/v1/{key}:encrypt` with `{"plaintext": base64(data key),
//!   "additionalAuthenticatedData": base64(canonical context)}`; the response's `name`
//!   (`…/cryptoKeyVersions/N`) gives the KEK version, its `ciphertext` is the blob.
//! - `unwrap` = `POST {base}/v1/{key}:decrypt` with `{"ciphertext", "additionalAuthenticatedData"}`
//!   (Cloud KMS finds the version inside its ciphertext).
//! - `current` = `GET {base}/v1/{key}` → `primary.name`, cached (and updated by every
//!   `wrap`); [`GcpKms::refresh`] forgets it after a rotation.
//! - Authentication: an OAuth access token, either given (`PHIGUARD_GCP_TOKEN`) or minted
//!   from a service-account JSON key: an RS256 JWT (`iss` = client email, `scope` =
//!   cloudkms, `aud` = token URI, `iat`, `exp` = iat + 1 h) exchanged at the token URI with
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, cached until a minute before
//!   it expires.
//!
//! KEK id = the CryptoKey resource name `projects/…/locations/…/keyRings/…/cryptoKeys/…`.
//! The envelope's encryption context (canonical form) is Cloud KMS's additional
//! authenticated data, so a wrapped key presented with another context fails to decrypt.
//!
//! Service errors become [`CryptoError`]s that name the operation, key, HTTP status and the
//! service's status code, never a token, a private key or key bytes: a decrypt rejected with
//! 400 `INVALID_ARGUMENT` is [`CryptoError::Authentication`], a disabled or destroyed
//! version (`FAILED_PRECONDITION`) is [`CryptoError::Revoked`], 404 is
//! [`CryptoError::UnknownKek`]. 429 and 5xx are retried once.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::provider::http::{
    self, Reply, bad_response, build_agent, form_encode, io_error, oauth_error_code, status_kind,
    transport_error, with_retry,
};
use crate::provider::{KekRef, KeyProvider, MAX_KEK_ID, WrappedKey};
use crate::{CryptoError, DataKey, EncryptionContext};

/// The provider name stored in ciphertext headers.
pub const PROVIDER_NAME: &str = "gcp-kms";
/// The public Cloud KMS endpoint.
pub const DEFAULT_BASE_URL: &str = "https://cloudkms.googleapis.com";
/// Google's OAuth token endpoint (service-account keys name it as `token_uri`).
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth scope requested for Cloud KMS.
pub const KMS_SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
/// The JWT-bearer grant type (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Environment variable holding a ready access token.
pub const ENV_TOKEN: &str = "PHIGUARD_GCP_TOKEN";
/// Environment variable naming a service-account JSON key file.
pub const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";

const MAX_RESPONSE: u64 = 1 << 20;
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
const JWT_LIFETIME: u64 = 3600;

/// A service-account key as Google issues it (JSON). Only the fields used are read.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    private_key: SecretString,
    pub token_uri: String,
}

#[derive(Deserialize)]
struct ServiceAccountJson {
    client_email: String,
    #[serde(default)]
    private_key_id: Option<String>,
    private_key: Zeroizing<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.to_string()
}

impl ServiceAccountKey {
    /// Parses a service-account JSON key. Errors name the line and column, never content.
    pub fn from_json(json: &str) -> Result<ServiceAccountKey, CryptoError> {
        let raw: ServiceAccountJson = serde_json::from_str(json).map_err(|e| {
            invalid(&format!(
                "not a service-account JSON key (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        Ok(ServiceAccountKey {
            client_email: raw.client_email,
            private_key_id: raw.private_key_id,
            private_key: SecretString::from(raw.private_key.as_str()),
            token_uri: raw.token_uri,
        })
    }

    /// Reads a service-account JSON key file.
    pub fn from_file(path: &Path) -> Result<ServiceAccountKey, CryptoError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(CryptoError::io(
            format!("cannot read service-account key {}", path.display()),
        ))?);
        ServiceAccountKey::from_json(&text)
    }

    /// A key from its parts (PEM is PKCS#8 or PKCS#1 RSA).
    pub fn new(
        client_email: impl Into<String>,
        private_key_id: Option<String>,
        private_key_pem: SecretString,
        token_uri: impl Into<String>,
    ) -> ServiceAccountKey {
        ServiceAccountKey {
            client_email: client_email.into(),
            private_key_id,
            private_key: private_key_pem,
            token_uri: token_uri.into(),
        }
    }
}

impl ServiceAccountKey {
    /// The RS256-signed JWT-bearer assertion (RFC 7523) Google's token endpoint exchanges for
    /// an access token: `iss` = client email, `scope`, `aud` = the token URI, `iat` = `now`
    /// (seconds since the epoch), `exp` = one hour later; `kid` = the private key id. Errors
    /// name the service account, never the key.
    pub fn jwt_assertion(
        &self,
        scope: &str,
        audience: &str,
        now: u64,
    ) -> Result<Zeroizing<String>, CryptoError> {
        let signing_key =
            jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.expose_secret().as_bytes())
                .map_err(|_| {
                    invalid(&format!(
                        "the private key of service account {} is not an RSA PEM key",
                        self.client_email
                    ))
                })?;
        let claims = Claims {
            iss: &self.client_email,
            scope,
            aud: audience,
            iat: now,
            exp: now + JWT_LIFETIME,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid.clone_from(&self.private_key_id);
        Ok(Zeroizing::new(
            jsonwebtoken::encode(&header, &claims, &signing_key).map_err(|e| {
                invalid(&format!(
                    "cannot sign the service-account JWT ({:?})",
                    e.kind()
                ))
            })?,
        ))
    }
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"[REDACTED]")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

/// How the provider authenticates to Cloud KMS.
pub enum GcpCredential {
    /// A ready OAuth access token with the cloudkms scope.
    Token(SecretString),
    /// A service-account key; tokens are minted with the JWT-bearer grant.
    ServiceAccount(ServiceAccountKey),
}

impl GcpCredential {
    /// From the environment: `PHIGUARD_GCP_TOKEN` if set, else the service-account key file
    /// named by `GOOGLE_APPLICATION_CREDENTIALS`. `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<GcpCredential>, CryptoError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var(ENV_TOKEN) {
            return Ok(Some(GcpCredential::Token(SecretString::from(token))));
        }
        match var(ENV_CREDENTIALS) {
            Some(path) => Ok(Some(GcpCredential::ServiceAccount(
                ServiceAccountKey::from_file(Path::new(&path))?,
            ))),
            None => Ok(None),
        }
    }
}

impl fmt::Debug for GcpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcpCredential::Token(_) => f.write_str("Token([REDACTED])"),
            GcpCredential::ServiceAccount(k) => f.debug_tuple("ServiceAccount").field(k).finish(),
        }
    }
}

/// Where the KEK lives and how to reach it.
#[derive(Debug)]
pub struct GcpKmsConfig {
    /// `projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}`.
    pub key_name: String,
    /// `https://cloudkms.googleapis.com` (or a test mock).
    pub base_url: String,
    /// Replaces the service-account key's `token_uri` when set (tests, private endpoints).
    pub token_uri: Option<String>,
    pub credential: GcpCredential,
    /// Whole-request timeout (connect, send, receive) for each HTTP call.
    pub timeout: Duration,
    /// Longest wait honoured from a `Retry-After` header before the single retry.
    pub max_retry_wait: Duration,
}

impl GcpKmsConfig {
    /// A configuration with the defaults: public endpoint, 10 s timeout, 5 s retry wait.
    pub fn new(key_name: impl Into<String>, credential: GcpCredential) -> GcpKmsConfig {
        GcpKmsConfig {
            key_name: key_name.into(),
            base_url: DEFAULT_BASE_URL.to_string(),
            token_uri: None,
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

/// The Google Cloud KMS key provider.
pub struct GcpKms {
    config: GcpKmsConfig,
    base: String,
    agent: ureq::Agent,
    token: Mutex<Option<CachedToken>>,
    primary: Mutex<Option<u32>>,
}

impl fmt::Debug for GcpKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKms")
            .field("key_name", &self.config.key_name)
            .field("base_url", &self.base)
            .field("credential", &self.config.credential)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

#[derive(Deserialize)]
struct EncryptResponse {
    name: String,
    ciphertext: String,
}

#[derive(Deserialize)]
struct DecryptResponse {
    plaintext: String,
}

#[derive(Deserialize)]
struct CryptoKeyResponse {
    primary: Option<PrimaryVersion>,
}

#[derive(Deserialize)]
struct PrimaryVersion {
    name: String,
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
    status: Option<String>,
}

/// The JWT claims of the service-account assertion.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl GcpKms {
    /// Checks the configuration and builds the HTTP client. Makes no network call.
    pub fn new(config: GcpKmsConfig) -> Result<GcpKms, CryptoError> {
        let base = config.base_url.trim_end_matches('/').to_string();
        check_url(&base, "base URL")?;
        if let GcpCredential::ServiceAccount(k) = &config.credential {
            check_url(
                config.token_uri.as_deref().unwrap_or(&k.token_uri),
                "token URI",
            )?;
        }
        if !is_crypto_key_name(&config.key_name) {
            return Err(invalid(
                "the key name must be projects/P/locations/L/keyRings/R/cryptoKeys/K",
            ));
        }
        if config.key_name.len() > MAX_KEK_ID {
            return Err(invalid("the key name is longer than 255 bytes"));
        }
        let agent = build_agent(config.timeout);
        Ok(GcpKms {
            config,
            base,
            agent,
            token: Mutex::new(None),
            primary: Mutex::new(None),
        })
    }

    /// Forgets the cached primary version (call after a rotation in Cloud KMS).
    pub fn refresh(&self) {
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn kek(&self, version: u32) -> KekRef {
        KekRef {
            id: self.config.key_name.clone(),
            version,
        }
    }

    fn bearer(&self) -> Result<Zeroizing<String>, CryptoError> {
        match &self.config.credential {
            GcpCredential::Token(t) => Ok(Zeroizing::new(format!("Bearer {}", t.expose_secret()))),
            GcpCredential::ServiceAccount(key) => {
                let mut cache = self.token.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = cache.as_ref()
                    && Instant::now() < c.refresh_at
                {
                    return Ok(Zeroizing::new(format!(
                        "Bearer {}",
                        c.token.expose_secret()
                    )));
                }
                let token_uri = self.config.token_uri.as_deref().unwrap_or(&key.token_uri);
                let fresh = jwt_bearer(&self.agent, key, token_uri, self.config.max_retry_wait)?;
                let header = Zeroizing::new(format!("Bearer {}", fresh.token.expose_secret()));
                *cache = Some(fresh);
                Ok(header)
            }
        }
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// One call with the single retry; non-200 replies become errors via `on_error`.
    fn call(
        &self,
        what: &dyn Fn() -> String,
        url: &str,
        body: Option<&[u8]>,
        on_error: &dyn Fn(&Reply) -> CryptoError,
    ) -> Result<Reply, CryptoError> {
        let bearer = self.bearer()?;
        let reply = with_retry(self.config.max_retry_wait, || {
            send(&self.agent, url, Some(bearer.as_str()), body)
                .map_err(|e| transport_error(what(), e))
        })?;
        if reply.status != 200 {
            if reply.status == 401 {
                self.forget_token();
            }
            return Err(on_error(&reply));
        }
        Ok(reply)
    }
}

impl KeyProvider for GcpKms {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn current(&self) -> Result<KekRef, CryptoError> {
        if let Some(v) = *self.primary.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(self.kek(v));
        }
        let url = format!("{}/v1/{}", self.base, self.config.key_name);
        let what = || format!("Cloud KMS get {}", self.config.key_name);
        let kek = self.kek(0);
        let reply = self.call(&what, &url, None, &|r| service_error(what(), &kek, r))?;
        let parsed: CryptoKeyResponse = serde_json::from_slice(&reply.body)
            .map_err(|_| bad_response(what(), "not a CryptoKey"))?;
        let version = parsed
            .primary
            .and_then(|p| version_of(&self.config.key_name, &p.name))
            .ok_or_else(|| {
                bad_response(
                    what(),
                    "the key has no primary version (not a symmetric ENCRYPT_DECRYPT key?)",
                )
            })?;
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
        Ok(self.kek(version))
    }

    fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError> {
        let aad = context.canonical_bytes()?;
        let url = format!("{}/v1/{}:encrypt", self.base, self.config.key_name);
        let what = || format!("Cloud KMS encrypt with {}", self.config.key_name);
        let body = Zeroizing::new(
            serde_json::json!({
                "plaintext": B64.encode(data_key.expose_secret()),
                "additionalAuthenticatedData": B64.encode(&aad),
            })
            .to_string(),
        );
        let kek = self.kek(0);
        let reply = self.call(&what, &url, Some(body.as_bytes()), &|r| {
            service_error(what(), &kek, r)
        })?;
        let parsed: EncryptResponse = serde_json::from_slice(&reply.body)
            .map_err(|_| bad_response(what(), "not an EncryptResponse"))?;
        let version = version_of(&self.config.key_name, &parsed.name)
            .ok_or_else(|| bad_response(what(), "the response names another key or no version"))?;
        let blob = B64
            .decode(parsed.ciphertext.as_bytes())
            .map_err(|_| bad_response(what(), "the ciphertext is not base64"))?;
        if blob.is_empty() || blob.len() > crate::provider::MAX_WRAPPED_KEY {
            return Err(bad_response(
                what(),
                "the ciphertext has an implausible length",
            ));
        }
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
        Ok(WrappedKey {
            provider: PROVIDER_NAME.to_string(),
            kek: self.kek(version),
            blob,
        })
    }

    fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, CryptoError> {
        if wrapped.provider != PROVIDER_NAME {
            return Err(CryptoError::WrongProvider {
                found: wrapped.provider.clone(),
                expected: PROVIDER_NAME.to_string(),
            });
        }
        if wrapped.kek.id != self.config.key_name {
            return Err(CryptoError::UnknownKek {
                found: wrapped.kek.clone(),
                provider: format!("Cloud KMS key {}", self.config.key_name),
            });
        }
        let aad = context.canonical_bytes()?;
        let url = format!("{}/v1/{}:decrypt", self.base, self.config.key_name);
        let what = || format!("Cloud KMS decrypt with {}", wrapped.kek);
        let body = serde_json::json!({
            "ciphertext": B64.encode(&wrapped.blob),
            "additionalAuthenticatedData": B64.encode(&aad),
        })
        .to_string();
        let reply = self.call(&what, &url, Some(body.as_bytes()), &|r| {
            if r.status == 400 && error_status(r).as_deref() == Some("INVALID_ARGUMENT") {
                CryptoError::Authentication(
                    "Cloud KMS could not decrypt the wrapped data key (altered blob, another \
                     key, or a different encryption context)",
                )
            } else {
                service_error(what(), &wrapped.kek, r)
            }
        })?;
        let parsed: DecryptResponse = serde_json::from_slice(&reply.body)
            .map_err(|_| bad_response(what(), "not a DecryptResponse"))?;
        let plaintext = Zeroizing::new(parsed.plaintext);
        let plain = Zeroizing::new(
            B64.decode(plaintext.as_bytes())
                .map_err(|_| bad_response(what(), "the plaintext is not base64"))?,
        );
        DataKey::from_slice(&plain).ok_or(CryptoError::Authentication(
            "the unwrapped data key has the wrong length",
        ))
    }
}

/// `N` from `{key}/cryptoKeyVersions/N`, only for this key.
fn version_of(key_name: &str, version_name: &str) -> Option<u32> {
    let n = version_name
        .strip_prefix(key_name)?
        .strip_prefix("/cryptoKeyVersions/")?;
    n.parse::<u32>().ok().filter(|v| *v > 0)
}

fn is_crypto_key_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 8
        && parts[0] == "projects"
        && parts[2] == "locations"
        && parts[4] == "keyRings"
        && parts[6] == "cryptoKeys"
        && [1, 3, 5, 7].iter().all(|&i| {
            !parts[i].is_empty()
                && parts[i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn jwt_bearer(
    agent: &ureq::Agent,
    key: &ServiceAccountKey,
    token_uri: &str,
    max_retry_wait: Duration,
) -> Result<CachedToken, CryptoError> {
    let what = || {
        format!(
            "Google OAuth token request for {} at {token_uri}",
            key.client_email
        )
    };
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let assertion = key.jwt_assertion(KMS_SCOPE, token_uri, iat)?;
    let body = Zeroizing::new(form_encode(&[
        ("grant_type", JWT_BEARER_GRANT),
        ("assertion", assertion.as_str()),
    ]));
    let started = Instant::now();
    let reply = with_retry(max_retry_wait, || {
        send_form(agent, token_uri, body.as_bytes()).map_err(|e| transport_error(what(), e))
    })?;
    if reply.status != 200 {
        let code = oauth_error_code(&reply.body);
        return Err(io_error(
            what(),
            status_kind(reply.status),
            format!(
                "HTTP {}{}: the service-account assertion was rejected (unknown or disabled \
                 key, clock skew, or wrong token URI)",
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

fn error_status(reply: &Reply) -> Option<String> {
    let parsed: ServiceError = serde_json::from_slice(&reply.body).ok()?;
    parsed
        .error?
        .status
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
}

fn service_error(what: String, kek: &KekRef, reply: &Reply) -> CryptoError {
    let status = error_status(reply);
    if status.as_deref() == Some("FAILED_PRECONDITION") {
        return CryptoError::Revoked { kek: kek.clone() };
    }
    if reply.status == 404 {
        return CryptoError::UnknownKek {
            found: kek.clone(),
            provider: "Cloud KMS (HTTP 404 NOT_FOUND: no such key or version)".to_string(),
        };
    }
    let hint = match reply.status {
        401 => "the access token was rejected (expired or revoked)",
        403 => {
            "the identity may not use this key (missing cloudkms.cryptoKeyEncrypterDecrypter role)"
        }
        400 => "the service rejected the request",
        429 => "throttled by the service; retried once after Retry-After, still throttled",
        500..=599 => "the service failed; retried once, still failing",
        _ => "unexpected status",
    };
    let code = status.map(|s| format!(" ({s})")).unwrap_or_default();
    io_error(
        what,
        status_kind(reply.status),
        format!("HTTP {}{code}: {hint}", reply.status),
    )
}

// ---- HTTP plumbing (the same shape as azure_kv.rs; kept per provider, one file each) ----

/// POST a JSON body, or GET without one.
fn send(
    agent: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Reply, ureq::Error> {
    let resp = match body {
        Some(b) => {
            let mut req = agent
                .post(url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json");
            if let Some(t) = bearer {
                req = req.header("Authorization", t);
            }
            req.send(b)?
        }
        None => {
            let mut req = agent.get(url).header("Accept", "application/json");
            if let Some(t) = bearer {
                req = req.header("Authorization", t);
            }
            req.call()?
        }
    };
    read_reply(resp)
}

fn send_form(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<Reply, ureq::Error> {
    let resp = agent
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .send(body)?;
    read_reply(resp)
}

fn read_reply(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
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

/// Plain `http://` only to loopback (test mocks): bearer tokens never cross a network in
/// clear.
fn check_url(url: &str, what: &str) -> Result<(), CryptoError> {
    http::check_url("Google Cloud KMS provider", url, what)
}

fn invalid(why: &str) -> CryptoError {
    CryptoError::KeyFileState(format!("Google Cloud KMS provider: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";

    #[test]
    fn key_names_are_checked() {
        assert!(is_crypto_key_name(KEY));
        assert!(!is_crypto_key_name(
            "projects/p/locations/global/keyRings/r"
        ));
        assert!(!is_crypto_key_name(
            "projects/p/locations/global/keyRings/r/cryptoKeys/k:encrypt"
        ));
        assert!(!is_crypto_key_name(
            "projects//locations/global/keyRings/r/cryptoKeys/k"
        ));
    }

    #[test]
    fn versions_are_read_only_from_this_key() {
        assert_eq!(
            version_of(KEY, &format!("{KEY}/cryptoKeyVersions/3")),
            Some(3)
        );
        assert_eq!(version_of(KEY, &format!("{KEY}/cryptoKeyVersions/0")), None);
        assert_eq!(
            version_of(
                KEY,
                "projects/x/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
            ),
            None
        );
    }

    #[test]
    fn service_account_debug_hides_the_private_key() {
        let key = ServiceAccountKey::from_json(
            r#"{"client_email":"a@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETBITS\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap();
        let shown = format!("{:?}", GcpCredential::ServiceAccount(key));
        assert!(!shown.contains("SECRETBITS"), "{shown}");
        assert!(shown.contains("REDACTED"));
        assert!(shown.contains(DEFAULT_TOKEN_URI));
    }
}
