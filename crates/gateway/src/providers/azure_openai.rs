//! Azure OpenAI: OpenAI's wire format (JSON and SSE, shared with [`super::openai_compatible`])
//! under `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`
//! (and `…/embeddings`). The model name callers use maps to a deployment in the config.
//! Authentication: the `api-key` header, or an Entra ID bearer token from the OAuth 2.0
//! client-credentials flow (scope `https://cognitiveservices.azure.com/.default`), cached until
//! a minute before it expires and dropped when Azure answers 401.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::openai_compatible::{json_answer, sse_chunks, transport};
use super::token::{self, TokenCache};
use super::{BoxFuture, ChunkStream, ProviderAdapter, UpstreamError};
use crate::config::ProviderConfig;

/// Entra ID's public-cloud authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The OAuth scope for Azure OpenAI (Cognitive Services).
pub const SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// How the adapter authenticates.
enum Auth {
    ApiKey(SecretString),
    Entra {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        cache: TokenCache,
    },
}

/// The adapter.
pub struct AzureOpenAi {
    client: reqwest::Client,
    endpoint: String,
    api_version: String,
    deployments: BTreeMap<String, String>,
    auth: Auth,
    timeout: Duration,
}

impl std::fmt::Debug for AzureOpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::ApiKey(_) => "api-key",
            Auth::Entra { .. } => "entra-id",
        };
        write!(f, "AzureOpenAi({}, {auth})", self.endpoint)
    }
}

impl AzureOpenAi {
    /// From a checked `[providers.NAME]` of kind `azure_openai`. Makes no network call.
    pub fn from_config(
        client: reqwest::Client,
        p: &ProviderConfig,
        timeout: Duration,
    ) -> Result<AzureOpenAi, String> {
        let auth = match (
            &p.entra_tenant_id,
            &p.entra_client_id,
            &p.entra_client_secret,
        ) {
            (Some(tenant), Some(client_id), Some(secret)) => {
                if !tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err("entra_tenant_id: expected a tenant id or domain".into());
                }
                let authority = p
                    .entra_authority
                    .as_deref()
                    .unwrap_or(DEFAULT_AUTHORITY)
                    .trim_end_matches('/');
                Auth::Entra {
                    token_url: format!("{authority}/{tenant}/oauth2/v2.0/token"),
                    client_id: client_id.clone(),
                    client_secret: SecretString::from(secret.clone()),
                    cache: TokenCache::default(),
                }
            }
            _ => match p.api_key.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => Auth::ApiKey(SecretString::from(k.to_string())),
                None => {
                    return Err(
                        "api_key (or entra_tenant_id, entra_client_id, entra_client_secret) \
                         is required"
                            .into(),
                    );
                }
            },
        };
        Ok(AzureOpenAi {
            client,
            endpoint: p.endpoint.trim_end_matches('/').to_string(),
            api_version: p.api_version.clone().unwrap_or_default(),
            deployments: p.deployments.clone(),
            auth,
            timeout,
        })
    }

    fn url(&self, body: &Value, op: &str) -> Result<String, UpstreamError> {
        let model = body.get("model").and_then(Value::as_str).unwrap_or("");
        let deployment = self
            .deployments
            .get(model)
            .ok_or(UpstreamError::Unsupported("a model without a deployment"))?;
        Ok(format!(
            "{}/openai/deployments/{}/{op}?api-version={}",
            self.endpoint,
            phiguard_crypto::sigv4::uri_encode(deployment.as_bytes()),
            phiguard_crypto::sigv4::uri_encode(self.api_version.as_bytes()),
        ))
    }

    async fn request(
        &self,
        op: &str,
        body: &Value,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        let rb = self.client.post(self.url(body, op)?).json(body);
        Ok(match &self.auth {
            Auth::ApiKey(k) => rb.header("api-key", k.expose_secret()),
            Auth::Entra {
                token_url,
                client_id,
                client_secret,
                cache,
            } => {
                let tok = cache
                    .get(|| async {
                        token::request_token(
                            &self.client,
                            token_url,
                            &[
                                ("grant_type", "client_credentials"),
                                ("client_id", client_id),
                                ("client_secret", client_secret.expose_secret()),
                                ("scope", SCOPE),
                            ],
                            self.timeout,
                            "the Entra ID token endpoint refused the client credentials",
                        )
                        .await
                    })
                    .await?;
                rb.header("authorization", token::bearer(&tok))
            }
        })
    }

    /// After a 401 the cached Entra ID token is dropped (the next request gets a new one).
    async fn on_status(&self, e: UpstreamError) -> UpstreamError {
        if let (UpstreamError::Status(401), Auth::Entra { cache, .. }) = (&e, &self.auth) {
            cache.forget().await;
        }
        e
    }

    async fn json_call(&self, op: &str, body: &Value) -> Result<Value, UpstreamError> {
        let resp = self
            .request(op, body)
            .await?
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        match json_answer(resp).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.on_status(e).await),
        }
    }
}

impl ProviderAdapter for AzureOpenAi {
    fn chat(&self, mut body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            if let Some(m) = body.as_object_mut() {
                m.insert("stream".into(), Value::Bool(false));
            }
            self.json_call("chat/completions", &body).await
        })
    }

    fn chat_stream(&self, body: Value) -> BoxFuture<'_, Result<ChunkStream, UpstreamError>> {
        Box::pin(async move {
            let rb = self.request("chat/completions", &body).await?;
            match sse_chunks(rb, self.timeout).await {
                Ok(s) => Ok(s),
                Err(e) => Err(self.on_status(e).await),
            }
        })
    }

    fn embeddings(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move { self.json_call("embeddings", &body).await })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_urls_and_debug() {
        let p = ProviderConfig {
            kind: crate::config::ProviderKind::AzureOpenai,
            endpoint: "https://res.openai.azure.com/".into(),
            models: vec!["gpt-4o".into()],
            api_key: Some("k-secret".into()),
            api_version: Some("2024-10-21".into()),
            deployments: [("gpt-4o".to_string(), "prod gpt4o".to_string())].into(),
            ..Default::default()
        };
        let a =
            AzureOpenAi::from_config(reqwest::Client::new(), &p, Duration::from_secs(1)).unwrap();
        assert_eq!(
            a.url(&json!({"model": "gpt-4o"}), "chat/completions")
                .unwrap(),
            "https://res.openai.azure.com/openai/deployments/prod%20gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert!(matches!(
            a.url(&json!({"model": "other"}), "embeddings"),
            Err(UpstreamError::Unsupported(_))
        ));
        assert!(!format!("{a:?}").contains("k-secret"));
    }
}
