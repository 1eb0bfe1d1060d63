//! Provider adapters, one file per wire format. Each adapter takes an OpenAI-shaped chat
//! request (already guarded) and returns OpenAI-shaped answers, so the guards and the HTTP
//! front end know nothing of provider wire formats.

pub mod aws_credentials;
pub mod aws_profiles;
pub mod azure_openai;
pub mod bedrock;
pub mod event_stream;
pub mod openai_compatible;
pub mod token;
pub mod vertex;

use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

/// The `model` of an OpenAI-shaped request, for adapters that put it in the URL.
pub(crate) fn model_of(body: &Value) -> Result<String, UpstreamError> {
    body.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .ok_or(UpstreamError::Unsupported("a request without a model"))
}

/// Seconds since the epoch, for the `created` of answers an adapter builds itself.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A fresh `chatcmpl-<provider>-<hex>` id for answers an adapter builds itself.
pub(crate) fn completion_id(provider: &str) -> String {
    format!("chatcmpl-{provider}-{:016x}", rand::random::<u64>())
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of OpenAI `chat.completion.chunk` objects.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, UpstreamError>> + Send>>;

/// An upstream failure. Never carries the upstream's body (it may echo the prompt).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream answered HTTP {0}")]
    Status(u16),
    #[error("cannot reach the upstream ({0})")]
    Transport(&'static str),
    #[error("the upstream's answer is not valid ({0})")]
    BadResponse(&'static str),
    /// The upstream reported an error inside a stream (its type name only, e.g.
    /// `throttlingException`; never its message, which may echo the prompt).
    #[error("the upstream reported an error ({0})")]
    Reported(String),
    /// The request uses something this provider's wire format cannot express.
    #[error("not supported by this provider ({0})")]
    Unsupported(&'static str),
    /// The adapter cannot authenticate (credentials unusable or the token endpoint refused).
    #[error("cannot authenticate to the upstream ({0})")]
    Auth(&'static str),
}

impl UpstreamError {
    /// An error type name reported by an upstream, kept only if it looks like an identifier.
    pub fn reported(name: &str) -> UpstreamError {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        UpstreamError::Reported(if ok {
            name.to_string()
        } else {
            "unnamed".into()
        })
    }
}

/// One upstream provider.
pub trait ProviderAdapter: Send + Sync {
    /// A non-streaming chat completion.
    fn chat(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>>;
    /// A streaming chat completion: chunks in order, ending when the upstream is done.
    fn chat_stream(&self, body: Value) -> BoxFuture<'_, Result<ChunkStream, UpstreamError>>;
    /// An embeddings request (OpenAI's shape in and out).
    fn embeddings(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>>;
}
