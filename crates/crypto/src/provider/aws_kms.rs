//! The AWS KMS key provider, over KMS's JSON HTTP API (`TrentService`, protocol
//! `application/x-amz-json-1.1`, operation in `X-Amz-Target`), with requests signed by
//! [`crate::sigv4`]. No AWS SDK; the HTTP client is `ureq` with rustls.
//!
//! - **KEK**: one KMS key (its ARN, key id or alias, as configured). KEK version is always 0:
//!   KMS records the key version inside its own ciphertext blob, so rotation in KMS is
//!   transparent to us and old data keeps decrypting.
//! - **generate_data_key** = `GenerateDataKey` (`KeySpec` `AES_256`), one call per message;
//!   **wrap** = `Encrypt` of a data key; **unwrap** = `Decrypt` with the `KeyId` pinned.
//! - The envelope's encryption context is passed as KMS `EncryptionContext`, so KMS binds it
//!   (a wrong context fails `Decrypt`) and it appears in CloudTrail (it is never secret).
//! - Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
//!   ([`Credentials::from_env`]); never logged, never in errors.
//! - Errors: `InvalidCiphertextException` → `authentication_failed`; `DisabledException` /
//!   `KMSInvalidStateException` → `kek_revoked`; `NotFoundException` → `wrong_key`; rejected
//!   credentials, an unreachable endpoint and timeouts → `io` with a message saying which.

use std::io::ErrorKind;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::provider::{KekRef, KeyProvider, MAX_KEK_ID, WrappedKey};
use crate::sigv4::{self, Credentials, Scope};
use crate::{CryptoError, DataKey, EncryptionContext};

/// The provider name stored in ciphertext headers.
pub const PROVIDER_NAME: &str = "aws-kms";
/// The KEK version stored in headers (KMS versions keys inside its ciphertext blob).
pub const KEK_VERSION: u32 = 0;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const MAX_RESPONSE: u64 = 1 << 20;

/// Where and how to reach KMS.
#[derive(Clone, Debug)]
pub struct KmsClientConfig {
    /// e.g. `us-east-1`.
    pub region: String,
    /// The endpoint URL; `None` for `https://kms.<region>.amazonaws.com/`. Tests point it at
    /// a local mock (`http://127.0.0.1:5077`).
    pub endpoint: Option<String>,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for a whole call (connect, send, receive).
    pub timeout: Duration,
}

impl KmsClientConfig {
    /// Defaults: 5 s to connect, 30 s per call, the public regional endpoint.
    pub fn new(region: impl Into<String>) -> KmsClientConfig {
        KmsClientConfig {
            region: region.into(),
            endpoint: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A signed-request client for the KMS JSON API.
pub struct KmsClient {
    agent: ureq::Agent,
    url: String,
    host: String,
    path: String,
    region: String,
    credentials: Credentials,
}

impl std::fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsClient")
            .field("url", &self.url)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .finish()
    }
}

fn kms_err(kind: ErrorKind, msg: String) -> CryptoError {
    CryptoError::Io {
        what: "AWS KMS".to_string(),
        source: std::io::Error::new(kind, msg),
    }
}

/// Splits `scheme://authority/path` into (authority, path).
fn split_url(url: &str) -> Result<(String, String), CryptoError> {
    let bad = || {
        kms_err(
            ErrorKind::InvalidInput,
            format!("endpoint {url:?} is not an http:// or https:// URL"),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) || path.contains(['?', '#'])
    {
        return Err(bad());
    }
    Ok((authority.to_string(), path.to_string()))
}

impl KmsClient {
    /// A client for `config` with `credentials`.
    pub fn new(
        config: &KmsClientConfig,
        credentials: Credentials,
    ) -> Result<KmsClient, CryptoError> {
        let url = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com/", config.region));
        let (host, path) = split_url(&url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .build()
            .into();
        Ok(KmsClient {
            agent,
            url,
            host,
            path,
            region: config.region.clone(),
            credentials,
        })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `TrentService.<operation>` with a JSON body; returns the JSON response, or the
    /// KMS error mapped to a [`CryptoError`] by `map_kms`.
    fn call(&self, operation: &str, body: &Value) -> Result<Value, KmsCallError> {
        let body =
            Zeroizing::new(serde_json::to_vec(body).map_err(|e| {
                KmsCallError::Local(kms_err(ErrorKind::InvalidData, e.to_string()))
            })?);
        let amz_date = sigv4::amz_date_now();
        let target = format!("TrentService.{operation}");
        let mut headers = vec![
            ("Content-Type".to_string(), CONTENT_TYPE.to_string()),
            ("Host".to_string(), self.host.clone()),
            ("X-Amz-Date".to_string(), amz_date.clone()),
            ("X-Amz-Target".to_string(), target),
        ];
        if let Some(token) = self.credentials.session_token() {
            headers.push(("X-Amz-Security-Token".to_string(), token.to_string()));
        }
        let scope = Scope {
            amz_date: &amz_date,
            region: &self.region,
            service: "kms",
        };
        let authz = sigv4::authorization(
            &self.credentials,
            &scope,
            &sigv4::Request {
                method: "POST",
                path: &self.path,
                query: "",
                headers: &headers,
                body: &body,
            },
        )
        .map_err(|e| {
            KmsCallError::Local(kms_err(
                ErrorKind::InvalidInput,
                format!("cannot sign the request: {e}"),
            ))
        })?;
        let mut req = self.agent.post(&self.url);
        for (k, v) in headers.iter().filter(|(k, _)| k != "Host") {
            req = req.header(k.as_str(), v.as_str());
        }
        req = req.header("Authorization", authz.as_str());
        let resp = req.send(&body[..]).map_err(|e| {
            let kind = match &e {
                ureq::Error::Timeout(_) => ErrorKind::TimedOut,
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                    ErrorKind::ConnectionRefused
                }
                ureq::Error::Io(io) => io.kind(),
                _ => ErrorKind::Other,
            };
            KmsCallError::Local(kms_err(
                kind,
                format!(
                    "{operation} to {} failed: {e} (is the endpoint reachable?)",
                    self.url
                ),
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .map_err(|e| {
                KmsCallError::Local(kms_err(
                    ErrorKind::InvalidData,
                    format!(
                        "{operation}: cannot read the response from {}: {e}",
                        self.url
                    ),
                ))
            })?;
        let text = Zeroizing::new(text);
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            if value.is_null() {
                return Err(KmsCallError::Local(kms_err(
                    ErrorKind::InvalidData,
                    format!("{operation}: the response from {} is not JSON", self.url),
                )));
            }
            return Ok(value);
        }
        let kind = value
            .get("__type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message: String = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        Err(KmsCallError::Kms {
            status,
            kind,
            message,
            operation: operation.to_string(),
        })
    }

    /// `CreateKey`: a new symmetric encryption key; returns its ARN. (For tests and setup.)
    pub fn create_key(&self, description: &str) -> Result<String, CryptoError> {
        let v = self
            .call(
                "CreateKey",
                &json!({
                    "Description": description,
                    "KeySpec": "SYMMETRIC_DEFAULT",
                    "KeyUsage": "ENCRYPT_DECRYPT",
                }),
            )
            .map_err(|e| e.into_crypto(None))?;
        v.pointer("/KeyMetadata/Arn")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                kms_err(
                    ErrorKind::InvalidData,
                    "CreateKey returned no key ARN".into(),
                )
            })
    }

    /// `DisableKey` (revocation, as KMS does it).
    pub fn disable_key(&self, key_id: &str) -> Result<(), CryptoError> {
        self.call("DisableKey", &json!({ "KeyId": key_id }))
            .map_err(|e| e.into_crypto(None))?;
        Ok(())
    }
}

/// A failed KMS call: local (network, signing) or an error response from KMS.
enum KmsCallError {
    Local(CryptoError),
    Kms {
        status: u16,
        kind: String,
        message: String,
        operation: String,
    },
}

impl KmsCallError {
    /// Maps KMS's error types onto the crate's error codes (`kek` names the key involved).
    fn into_crypto(self, kek: Option<&KekRef>) -> CryptoError {
        let (status, kind, message, operation) = match self {
            KmsCallError::Local(e) => return e,
            KmsCallError::Kms {
                status,
                kind,
                message,
                operation,
            } => (status, kind, message, operation),
        };
        match (kind.as_str(), kek) {
            ("InvalidCiphertextException", _) => CryptoError::Authentication(
                "AWS KMS rejected the wrapped data key (altered key section, or a different \
                 encryption context)",
            ),
            ("DisabledException" | "KMSInvalidStateException", Some(k)) => {
                CryptoError::Revoked { kek: k.clone() }
            }
            ("NotFoundException", Some(k)) => CryptoError::UnknownKek {
                found: k.clone(),
                provider: "AWS KMS".to_string(),
            },
            (
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "SignatureDoesNotMatch"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "MissingAuthenticationToken"
                | "AccessDeniedException",
                _,
            ) => kms_err(
                ErrorKind::PermissionDenied,
                format!(
                    "AWS KMS rejected the credentials for {operation} ({kind}, HTTP {status}): \
                     check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and \
                     the key policy. {message}"
                ),
            ),
            _ => kms_err(
                ErrorKind::Other,
                format!("AWS KMS {operation} failed ({kind}, HTTP {status}): {message}"),
            ),
        }
    }
}

/// A KEK held in AWS KMS. See the module documentation.
#[derive(Debug)]
pub struct AwsKmsProvider {
    client: KmsClient,
    key_id: String,
}

fn context_json(context: &EncryptionContext) -> Value {
    Value::Object(
        context
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<Map<String, Value>>(),
    )
}

fn b64_field(v: &Value, field: &str, op: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let s = v.get(field).and_then(Value::as_str).ok_or_else(|| {
        kms_err(
            ErrorKind::InvalidData,
            format!("{op}: the response has no {field}"),
        )
    })?;
    B64.decode(s).map(Zeroizing::new).map_err(|_| {
        kms_err(
            ErrorKind::InvalidData,
            format!("{op}: {field} in the response is not base64"),
        )
    })
}

impl AwsKmsProvider {
    /// A provider for the KMS key `key_id` (ARN, key id or `alias/…`). Makes no call.
    pub fn new(
        client: KmsClient,
        key_id: impl Into<String>,
    ) -> Result<AwsKmsProvider, CryptoError> {
        let key_id = key_id.into();
        if key_id.is_empty() || key_id.len() > MAX_KEK_ID {
            return Err(kms_err(
                ErrorKind::InvalidInput,
                format!("the KMS key id must be 1..={MAX_KEK_ID} bytes"),
            ));
        }
        Ok(AwsKmsProvider { client, key_id })
    }

    /// The configured key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The client (for `CreateKey`, `DisableKey`).
    pub fn client(&self) -> &KmsClient {
        &self.client
    }

    fn kek(&self) -> KekRef {
        KekRef {
            id: self.key_id.clone(),
            version: KEK_VERSION,
        }
    }

    fn wrapped(&self, blob: Vec<u8>) -> Result<WrappedKey, CryptoError> {
        if blob.is_empty() || blob.len() > crate::provider::MAX_WRAPPED_KEY {
            return Err(kms_err(
                ErrorKind::InvalidData,
                format!("KMS returned a {}-byte CiphertextBlob", blob.len()),
            ));
        }
        Ok(WrappedKey {
            provider: PROVIDER_NAME.to_string(),
            kek: self.kek(),
            blob,
        })
    }
}

impl KeyProvider for AwsKmsProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn current(&self) -> Result<KekRef, CryptoError> {
        Ok(self.kek())
    }

    fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError> {
        let plain = Zeroizing::new(B64.encode(data_key.expose_secret()));
        let mut body = json!({ "KeyId": self.key_id, "Plaintext": plain.as_str() });
        if !context.is_empty() {
            body["EncryptionContext"] = context_json(context);
        }
        let v = self
            .client
            .call("Encrypt", &body)
            .map_err(|e| e.into_crypto(Some(&self.kek())));
        // The request body held the data key in base64: clear it.
        if let Some(p) = body.get_mut("Plaintext") {
            *p = Value::Null;
        }
        let v = v?;
        let blob = b64_field(&v, "CiphertextBlob", "Encrypt")?;
        self.wrapped(blob.to_vec())
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
        if wrapped.kek.id != self.key_id || wrapped.kek.version != KEK_VERSION {
            return Err(CryptoError::UnknownKek {
                found: wrapped.kek.clone(),
                provider: format!("AWS KMS key {}", self.key_id),
            });
        }
        let mut body = json!({
            "KeyId": self.key_id,
            "CiphertextBlob": B64.encode(&wrapped.blob),
        });
        if !context.is_empty() {
            body["EncryptionContext"] = context_json(context);
        }
        let v = self
            .client
            .call("Decrypt", &body)
            .map_err(|e| e.into_crypto(Some(&wrapped.kek)))?;
        let plain = b64_field(&v, "Plaintext", "Decrypt")?;
        DataKey::from_slice(&plain).ok_or(CryptoError::Authentication(
            "AWS KMS returned a data key of the wrong length",
        ))
    }

    fn generate_data_key(
        &self,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        let mut body = json!({ "KeyId": self.key_id, "KeySpec": "AES_256" });
        if !context.is_empty() {
            body["EncryptionContext"] = context_json(context);
        }
        let v = self
            .client
            .call("GenerateDataKey", &body)
            .map_err(|e| e.into_crypto(Some(&self.kek())))?;
        let plain = b64_field(&v, "Plaintext", "GenerateDataKey")?;
        let key = DataKey::from_slice(&plain).ok_or_else(|| {
            kms_err(
                ErrorKind::InvalidData,
                "GenerateDataKey returned a data key of the wrong length".into(),
            )
        })?;
        let blob = b64_field(&v, "CiphertextBlob", "GenerateDataKey")?;
        Ok((key, self.wrapped(blob.to_vec())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("http://127.0.0.1:5077").unwrap(),
            ("127.0.0.1:5077".to_string(), "/".to_string())
        );
        assert_eq!(
            split_url("https://kms.us-east-1.amazonaws.com/").unwrap(),
            ("kms.us-east-1.amazonaws.com".to_string(), "/".to_string())
        );
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://").is_err());
        assert!(split_url("http://u@h/").is_err());
    }
}
