//! HTTP plumbing shared by the REST key providers (Azure Key Vault, Google Cloud KMS): a ureq
//! agent with timeouts and no redirects, the loopback-only rule for plain HTTP, one retry on
//! throttling or server errors, and the mapping of transport and status failures to
//! `CryptoError::Io` without secrets.

use std::io;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Pause before the single retry when the service gives no `Retry-After`.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

pub(crate) fn build_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// Plain `http://` only to loopback (test mocks): bearer tokens never cross a network in
/// clear.
pub(crate) fn check_url(provider: &str, url: &str, what: &str) -> Result<(), CryptoError> {
    let ok = url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                url.strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
    if ok && !url.contains(['?', '#', ' ']) {
        Ok(())
    } else {
        Err(CryptoError::KeyFileState(format!(
            "{provider}: the {what} must be https:// (http:// only to localhost) without query: {url}"
        )))
    }
}

/// Calls `f`; on 429 or 5xx waits (`Retry-After`, capped) and calls it once more.
pub(crate) fn with_retry(
    max_wait: Duration,
    f: impl Fn() -> Result<Reply, CryptoError>,
) -> Result<Reply, CryptoError> {
    let first = f()?;
    if first.status == 429 || first.status >= 500 {
        std::thread::sleep(first.retry_after.unwrap_or(DEFAULT_BACKOFF).min(max_wait));
        return f();
    }
    Ok(first)
}

pub(crate) fn status_kind(status: u16) -> io::ErrorKind {
    match status {
        401 | 403 => io::ErrorKind::PermissionDenied,
        404 => io::ErrorKind::NotFound,
        400 => io::ErrorKind::InvalidInput,
        429 => io::ErrorKind::QuotaExceeded,
        _ => io::ErrorKind::Other,
    }
}

pub(crate) fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    let e: OAuthError = serde_json::from_slice(body).ok()?;
    e.error
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(e.error)
}

pub(crate) fn transport_error(what: String, e: ureq::Error) -> CryptoError {
    let (kind, detail) = match &e {
        ureq::Error::Timeout(t) => (io::ErrorKind::TimedOut, format!("timed out ({t})")),
        ureq::Error::Io(io) => (io.kind(), format!("I/O error ({})", io.kind())),
        ureq::Error::HostNotFound => (io::ErrorKind::NotFound, "host not found".to_string()),
        ureq::Error::ConnectionFailed => (
            io::ErrorKind::ConnectionRefused,
            "connection failed".to_string(),
        ),
        ureq::Error::BodyExceedsLimit(n) => (
            io::ErrorKind::InvalidData,
            format!("response larger than {n} bytes"),
        ),
        other => (io::ErrorKind::Other, other.to_string()),
    };
    io_error(what, kind, detail)
}

pub(crate) fn bad_response(what: String, why: &str) -> CryptoError {
    io_error(
        what,
        io::ErrorKind::InvalidData,
        format!("malformed response: {why}"),
    )
}

pub(crate) fn io_error(what: String, kind: io::ErrorKind, message: String) -> CryptoError {
    CryptoError::Io {
        what,
        source: io::Error::new(kind, message),
    }
}

/// `application/x-www-form-urlencoded`.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
