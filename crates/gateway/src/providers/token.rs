//! OAuth access tokens for the hosted adapters (Entra ID client credentials for Azure OpenAI,
//! the service-account JWT-bearer grant for Vertex AI): one form POST to a token endpoint,
//! and a cache that keeps a token until a minute before it expires. Refreshes are serialized
//! (one token request at a time per adapter). Tokens are never logged or put in errors.

use std::future::Future;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::UpstreamError;
use super::openai_compatible::transport;

/// A token is used until this long before its expiry.
pub const MARGIN: Duration = Duration::from_secs(60);

/// A cached bearer token.
#[derive(Default)]
pub struct TokenCache {
    inner: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache([REDACTED])")
    }
}

impl TokenCache {
    /// The cached token if still good, else a fresh one from `fetch` (token, lifetime).
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<SecretString, UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(SecretString, Duration), UpstreamError>>,
    {
        let mut guard = self.inner.lock().await;
        if let Some((tok, good_until)) = guard.as_ref()
            && Instant::now() < *good_until
        {
            return Ok(tok.clone());
        }
        let (tok, lifetime) = fetch().await?;
        // A token living no longer than the margin serves this request only.
        match lifetime.checked_sub(MARGIN) {
            Some(rest) if !rest.is_zero() => {
                *guard = Some((tok.clone(), Instant::now() + rest));
            }
            _ => *guard = None,
        }
        Ok(tok)
    }

    /// Drops the cached token (after the upstream refused it).
    pub async fn forget(&self) {
        *self.inner.lock().await = None;
    }
}

/// `application/x-www-form-urlencoded` (RFC 3986 unreserved characters kept).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                phiguard_crypto::sigv4::uri_encode(k.as_bytes()),
                phiguard_crypto::sigv4::uri_encode(v.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs a token request; returns the access token and its lifetime. `who` names the
/// endpoint in errors (a static string: no URL, no secret).
pub async fn request_token(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
    who: &'static str,
) -> Result<(SecretString, Duration), UpstreamError> {
    let resp = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form_encode(form))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| match transport(&e) {
            UpstreamError::Timeout => UpstreamError::Timeout,
            _ => UpstreamError::Auth(who),
        })?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Auth(who));
    }
    let v: Value = resp.json().await.map_err(|_| UpstreamError::Auth(who))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(UpstreamError::Auth(who))?;
    // A number, or (older Entra ID endpoints) a string of digits; default one hour.
    let secs = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok((
        SecretString::from(token.to_string()),
        Duration::from_secs(secs),
    ))
}

/// The `Authorization` header value for a bearer token.
pub fn bearer(token: &SecretString) -> String {
    format!("Bearer {}", token.expose_secret())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn caches_until_the_margin_and_short_tokens_are_not_kept() {
        let calls = AtomicUsize::new(0);
        let cache = TokenCache::default();
        let fetch = |secs: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok((
                    SecretString::from("t".to_string()),
                    Duration::from_secs(secs),
                ))
            }
        };
        cache.get(|| fetch(3600)).await.unwrap();
        cache.get(|| fetch(3600)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.forget().await;
        cache.get(|| fetch(30)).await.unwrap();
        cache.get(|| fetch(30)).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "a 30 s token is within the margin"
        );
        assert_eq!(form_encode(&[("a b", "x/y=z")]), "a%20b=x%2Fy%3Dz");
    }
}
