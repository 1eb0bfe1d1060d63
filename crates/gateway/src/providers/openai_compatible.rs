//! OpenAI's chat-completions wire format: vLLM, Ollama, llama.cpp server, TGI (self-hosted,
//! `private`), and OpenAI-compatible hosted services. Server-sent events for streams.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;

use super::{BoxFuture, ChunkStream, ProviderAdapter, UpstreamError};

/// The adapter.
pub struct OpenAiCompatible {
    client: reqwest::Client,
    url: String,
    embeddings_url: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenAiCompatible({})", self.url)
    }
}

impl OpenAiCompatible {
    /// `endpoint` is the base URL (`…/v1`); requests go to `{endpoint}/chat/completions`.
    pub fn new(
        client: reqwest::Client,
        endpoint: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Self {
        OpenAiCompatible {
            client,
            url: format!("{}/chat/completions", endpoint.trim_end_matches('/')),
            embeddings_url: format!("{}/embeddings", endpoint.trim_end_matches('/')),
            api_key: api_key.filter(|k| !k.is_empty()),
            timeout,
        }
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        self.request_to(&self.url, body)
    }

    fn request_to(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        let mut rb = self.client.post(url).json(body);
        if let Some(k) = &self.api_key {
            rb = rb.bearer_auth(k);
        }
        rb
    }
}

pub(crate) fn transport(e: &reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else if e.is_connect() {
        UpstreamError::Transport("connection failed")
    } else {
        UpstreamError::Transport("request failed")
    }
}

pub(crate) async fn json_answer(resp: reqwest::Response) -> Result<Value, UpstreamError> {
    if !resp.status().is_success() {
        return Err(UpstreamError::Status(resp.status().as_u16()));
    }
    let v: Value = resp
        .json()
        .await
        .map_err(|_| UpstreamError::BadResponse("not JSON"))?;
    if !v.is_object() {
        return Err(UpstreamError::BadResponse("not a JSON object"));
    }
    Ok(v)
}

impl ProviderAdapter for OpenAiCompatible {
    fn embeddings(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            let resp = self
                .request_to(&self.embeddings_url, &body)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| transport(&e))?;
            json_answer(resp).await
        })
    }

    fn chat(&self, mut body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            if let Some(m) = body.as_object_mut() {
                m.insert("stream".into(), Value::Bool(false));
            }
            let resp = self
                .request(&body)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| transport(&e))?;
            json_answer(resp).await
        })
    }

    fn chat_stream(&self, body: Value) -> BoxFuture<'_, Result<ChunkStream, UpstreamError>> {
        Box::pin(async move { sse_chunks(self.request(&body), self.timeout).await })
    }
}

/// Sends a streaming request and decodes its server-sent events as JSON objects (until
/// `data: [DONE]` or the end of the body). Shared by the adapters that speak SSE.
pub(crate) async fn sse_chunks(
    rb: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<ChunkStream, UpstreamError> {
    let resp = tokio::time::timeout(timeout, rb.send())
        .await
        .map_err(|_| UpstreamError::Timeout)?
        .map_err(|e| transport(&e))?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Status(resp.status().as_u16()));
    }
    let bytes = resp.bytes_stream();
    let state = (bytes, BytesMut::new(), false);
    let s = futures_util::stream::unfold(state, move |(mut bytes, mut buf, done)| async move {
        if done {
            return None;
        }
        loop {
            // A complete event in the buffer?
            if let Some((end, sep)) = find_event_end(&buf) {
                let event = buf.split_to(end);
                buf.advance(sep);
                match parse_event(&event) {
                    Event::Skip => continue,
                    Event::Done => return None,
                    Event::Chunk(v) => return Some((Ok(v), (bytes, buf, false))),
                    Event::Bad => {
                        return Some((
                            Err(UpstreamError::BadResponse("an event is not JSON")),
                            (bytes, buf, true),
                        ));
                    }
                }
            }
            match tokio::time::timeout(timeout, bytes.next()).await {
                Err(_) => {
                    return Some((Err(UpstreamError::Timeout), (bytes, buf, true)));
                }
                Ok(None) => {
                    // Stream ended without [DONE]: a final event without a blank line.
                    if buf.iter().any(|b| !b.is_ascii_whitespace()) {
                        let event = buf.split();
                        if let Event::Chunk(v) = parse_event(&event) {
                            return Some((Ok(v), (bytes, buf, true)));
                        }
                    }
                    return None;
                }
                Ok(Some(Err(e))) => {
                    return Some((Err(transport(&e)), (bytes, buf, true)));
                }
                Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
            }
        }
    });
    Ok(Box::pin(s) as ChunkStream)
}

enum Event {
    Chunk(Value),
    Done,
    Skip,
    Bad,
}

/// The end of the first event (index of its blank-line separator, and the separator length).
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_event(event: &[u8]) -> Event {
    let Ok(text) = std::str::from_utf8(event) else {
        return Event::Bad;
    };
    let mut data = String::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if data.is_empty() {
        return Event::Skip;
    }
    if data.trim() == "[DONE]" {
        return Event::Done;
    }
    match serde_json::from_str::<Value>(&data) {
        Ok(v) if v.is_object() => Event::Chunk(v),
        _ => Event::Bad,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sse_events() {
        let buf = b"data: {\"a\":1}\n\n: comment\n\ndata: [DONE]\n\n";
        let (end, sep) = find_event_end(buf).unwrap();
        assert!(matches!(parse_event(&buf[..end]), Event::Chunk(_)));
        let rest = &buf[end + sep..];
        let (end2, _) = find_event_end(rest).unwrap();
        assert!(matches!(parse_event(&rest[..end2]), Event::Skip));
        assert!(matches!(parse_event(b"data: [DONE]"), Event::Done));
        assert!(matches!(parse_event(b"data: {oops"), Event::Bad));
    }
}
