//! AWS Signature Version 4 (header signing), for the AWS KMS key provider. Implemented here
//! with HMAC-SHA256 from RustCrypto rather than the AWS SDK; tested against the AWS SigV4 test
//! suite (`tests/data/sigv4/suite.json`).
//!
//! The steps, as AWS documents them:
//! 1. canonical request = method ‖ `\n` ‖ canonical URI ‖ `\n` ‖ canonical query ‖ `\n` ‖
//!    canonical headers ‖ `\n` ‖ signed headers ‖ `\n` ‖ hex(SHA-256(body));
//! 2. string to sign = `AWS4-HMAC-SHA256` ‖ `\n` ‖ amz-date ‖ `\n` ‖ scope ‖ `\n` ‖
//!    hex(SHA-256(canonical request)), where scope = `date/region/service/aws4_request`;
//! 3. signing key = HMAC chain over `"AWS4" ‖ secret`, date, region, service, `aws4_request`;
//! 4. signature = hex(HMAC(signing key, string to sign)).
//!
//! Paths are normalized (dot segments removed, repeated slashes collapsed) and each segment
//! is percent-decoded then encoded once with the RFC 3986 unreserved set, as for every
//! service but S3. Query parameters are decoded, re-encoded and sorted by name, then value.
//! Header names are lower-cased and sorted; values are trimmed with inner runs of spaces
//! collapsed, and repeated headers are joined with commas in their order.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request cannot be signed. Never includes a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigV4Error {
    /// The time is not `YYYYMMDDTHHMMSSZ`.
    #[error("x-amz-date must be YYYYMMDDTHHMMSSZ (got {0:?})")]
    BadDate(String),
    /// A scope part (region or service) is empty or has characters that break the scope.
    #[error("invalid {what} {value:?} for the SigV4 scope")]
    BadScope { what: &'static str, value: String },
    /// A header name is not an HTTP token, or a value holds a line break.
    #[error("invalid header {0:?}")]
    BadHeader(String),
    /// The method is not an HTTP token.
    #[error("invalid HTTP method {0:?}")]
    BadMethod(String),
    /// The path does not start with `/`.
    #[error("the path must start with '/' (got {0:?})")]
    BadPath(String),
    /// There is no `host` header to sign.
    #[error("the request has no Host header (SigV4 signs it)")]
    NoHost,
    /// The access key id is empty or has characters that break the credential scope.
    #[error("invalid AWS access key id")]
    BadAccessKey,
    /// A required environment variable is unset or empty.
    #[error("{0} is not set")]
    MissingEnv(&'static str),
}

/// AWS credentials. `Debug` shows the access key id only (it names the key, and CloudTrail
/// logs it); the secret key and session token print `[REDACTED]`.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
    ) -> Result<Credentials, SigV4Error> {
        let access_key_id = access_key_id.into();
        if access_key_id.is_empty()
            || !access_key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(SigV4Error::BadAccessKey);
        }
        Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        })
    }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional) `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Credentials, SigV4Error> {
        let get = |k: &'static str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let id = get("AWS_ACCESS_KEY_ID").ok_or(SigV4Error::MissingEnv("AWS_ACCESS_KEY_ID"))?;
        let secret =
            get("AWS_SECRET_ACCESS_KEY").ok_or(SigV4Error::MissingEnv("AWS_SECRET_ACCESS_KEY"))?;
        let token = get("AWS_SESSION_TOKEN").map(SecretString::from);
        Credentials::new(id, SecretString::from(secret), token)
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The session token, to send as `X-Amz-Security-Token`. Do not log it.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(|t| t.expose_secret())
    }
}

/// One HTTP request to sign. `headers` must include `host` and `x-amz-date` (and
/// `x-amz-security-token` with temporary credentials); every header given is signed.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, e.g. `/` (percent-encoded or not).
    pub path: &'a str,
    /// The query string without `?` (may be empty).
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The credential scope: when, where and for which service.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    fn validate(&self) -> Result<(), SigV4Error> {
        let d = self.amz_date.as_bytes();
        let ok = d.len() == 16
            && d[8] == b'T'
            && d[15] == b'Z'
            && d[..8].iter().all(u8::is_ascii_digit)
            && d[9..15].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(SigV4Error::BadDate(self.amz_date.to_string()));
        }
        for (what, value) in [("region", self.region), ("service", self.service)] {
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(SigV4Error::BadScope {
                    what,
                    value: value.to_string(),
                });
            }
        }
        Ok(())
    }

    /// `20150830/us-east-1/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.amz_date.get(..8).unwrap_or(""),
            self.region,
            self.service
        )
    }
}

/// The current UTC time as `YYYYMMDDTHHMMSSZ`.
pub fn amz_date_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (upper-case hex).
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn canonical_uri(path: &str) -> Result<String, SigV4Error> {
    if !path.starts_with('/') {
        return Err(SigV4Error::BadPath(path.to_string()));
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing =
        path.len() > 1 && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/.."));
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(&percent_decode(s)))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_headers(headers: &[(String, String)]) -> Result<(String, String), SigV4Error> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        if !is_token(name) || value.contains(['\r', '\n']) {
            return Err(SigV4Error::BadHeader(name.clone()));
        }
        let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
        map.entry(name.to_ascii_lowercase())
            .or_default()
            .push(collapsed);
    }
    if !map.contains_key("host") {
        return Err(SigV4Error::NoHost);
    }
    let mut canonical = String::new();
    for (name, values) in &map {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    let signed = map.keys().cloned().collect::<Vec<_>>().join(";");
    Ok((canonical, signed))
}

/// Step 1: the canonical request and the signed-headers list.
pub fn canonical_request(req: &Request<'_>) -> Result<(String, String), SigV4Error> {
    if !is_token(req.method) {
        return Err(SigV4Error::BadMethod(req.method.to_string()));
    }
    let (headers, signed) = canonical_headers(req.headers)?;
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path)?,
        canonical_query(req.query),
        headers,
        signed,
        hex::encode(Sha256::digest(req.body))
    );
    Ok((creq, signed))
}

/// Step 2: the string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> Result<String, SigV4Error> {
    scope.validate()?;
    Ok(format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    ))
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Steps 3 and 4: the hex signature of a string to sign.
pub fn signature(
    credentials: &Credentials,
    scope: &Scope<'_>,
    string_to_sign: &str,
) -> Result<String, SigV4Error> {
    scope.validate()?;
    let mut k_secret = zeroize::Zeroizing::new(b"AWS4".to_vec());
    k_secret.extend_from_slice(credentials.secret_access_key.expose_secret().as_bytes());
    let k_date = zeroize::Zeroizing::new(hmac(&k_secret, &scope.amz_date.as_bytes()[..8]));
    let k_region = zeroize::Zeroizing::new(hmac(k_date.as_ref(), scope.region.as_bytes()));
    let k_service = zeroize::Zeroizing::new(hmac(k_region.as_ref(), scope.service.as_bytes()));
    let k_signing = zeroize::Zeroizing::new(hmac(k_service.as_ref(), b"aws4_request"));
    Ok(hex::encode(hmac(
        k_signing.as_ref(),
        string_to_sign.as_bytes(),
    )))
}

/// Signs `req` and returns the `Authorization` header value.
pub fn authorization(
    credentials: &Credentials,
    scope: &Scope<'_>,
    req: &Request<'_>,
) -> Result<String, SigV4Error> {
    let (creq, signed) = canonical_request(req)?;
    let sts = string_to_sign(scope, &creq)?;
    let sig = signature(credentials, scope, &sts)?;
    Ok(format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={sig}",
        credentials.access_key_id,
        scope.credential_scope()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize() {
        assert_eq!(canonical_uri("/").unwrap(), "/");
        assert_eq!(canonical_uri("//example//").unwrap(), "/example/");
        assert_eq!(canonical_uri("/example1/example2/../..").unwrap(), "/");
        assert_eq!(canonical_uri("/./example").unwrap(), "/example");
        assert_eq!(canonical_uri("/a%20b").unwrap(), "/a%20b");
        assert!(canonical_uri("example").is_err());
    }

    #[test]
    fn percent_decode_keeps_bad_escapes() {
        assert_eq!(percent_decode("%41%zz%4"), b"A%zz%4");
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::new(
            "AKIDEXAMPLE",
            SecretString::from("very-secret".to_string()),
            Some(SecretString::from("tok-secret".to_string())),
        )
        .unwrap();
        let s = format!("{c:?}");
        assert!(
            !s.contains("very-secret") && !s.contains("tok-secret"),
            "{s}"
        );
        assert!(s.contains("AKIDEXAMPLE"));
    }

    #[test]
    fn amz_date_now_has_the_format() {
        let d = amz_date_now();
        let scope = Scope {
            amz_date: &d,
            region: "us-east-1",
            service: "kms",
        };
        assert!(scope.validate().is_ok(), "{d}");
    }
}
