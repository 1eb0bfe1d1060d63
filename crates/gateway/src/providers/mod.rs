//! Provider adapters, one file per wire format. Each adapter takes an OpenAI-shaped chat
//! request (already guarded) and returns OpenAI-shaped answers, so the guards and the HTTP
//! front end know nothing of provider wire formats. Bedrock, Vertex and Azure slot in here.

pub mod openai_compatible;

use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

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
