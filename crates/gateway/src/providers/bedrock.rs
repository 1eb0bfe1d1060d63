//! AWS Bedrock: the Converse API (`POST {endpoint}/model/{modelId}/converse`) and
//! ConverseStream (`…/converse-stream`, answered as an `application/vnd.amazon.eventstream`
//! binary event stream, decoded in [`super::event_stream`]). Requests are signed with SigV4
//! (service `bedrock`) by `phiguard_crypto::sigv4`, the implementation checked against the AWS
//! SigV4 test suite. Embeddings: Amazon Titan text embeddings through InvokeModel.
//!
//! OpenAI → Converse: `system`/`developer` messages → `system`; user and assistant messages →
//! content blocks (text, data-URL images, `toolUse` from `tool_calls`); `tool` messages →
//! `toolResult` blocks in a user turn (consecutive turns of one role are merged, as Converse
//! wants them alternating); `max_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`;
//! `tools`/`tool_choice` → `toolConfig`. And back: text and `toolUse` blocks → the message and
//! its `tool_calls`; `stopReason` → `finish_reason`; `usage` → `usage`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use phiguard_crypto::sigv4::{self, Scope};
use serde_json::{Map, Value, json};

use super::aws_credentials::AwsCredentials;
use super::event_stream::{self, Message};
use super::openai_compatible::transport;
use super::{
    BoxFuture, ChunkStream, ProviderAdapter, UpstreamError, completion_id, model_of, unix_now,
};

/// The SigV4 service name for the Bedrock runtime.
pub const SERVICE: &str = "bedrock";

/// The adapter.
pub struct Bedrock {
    client: reqwest::Client,
    /// `scheme://host[:port]`.
    origin: String,
    /// The `Host` header value (signed).
    host: String,
    /// The endpoint's path, without a trailing slash (usually empty).
    prefix: String,
    region: String,
    credentials: AwsCredentials,
    timeout: Duration,
}

impl std::fmt::Debug for Bedrock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bedrock({}, {})", self.origin, self.region)
    }
}

impl Bedrock {
    /// `endpoint` is the runtime's base URL, e.g.
    /// `https://bedrock-runtime.us-east-1.amazonaws.com`.
    pub fn new(
        client: reqwest::Client,
        endpoint: &str,
        region: &str,
        credentials: AwsCredentials,
        timeout: Duration,
    ) -> Result<Bedrock, String> {
        let url = reqwest::Url::parse(endpoint).map_err(|_| "endpoint: not a URL".to_string())?;
        let host_name = url
            .host_str()
            .ok_or_else(|| "endpoint: no host".to_string())?;
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name.to_string(),
        };
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("region: expected a region name such as us-east-1".into());
        }
        Ok(Bedrock {
            client,
            origin: format!("{}://{host}", url.scheme()),
            host,
            prefix: url.path().trim_end_matches('/').to_string(),
            region: region.to_string(),
            credentials,
            timeout,
        })
    }

    /// A signed `POST {endpoint}/model/{model}/{op}`, with credentials good now (fetched or
    /// refreshed first when they come from an endpoint; refused when none can be had).
    async fn signed(
        &self,
        model: &str,
        op: &str,
        body: Vec<u8>,
        accept: &str,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        // The model id goes on the wire percent-encoded once (`…v1%3A0`); SigV4 for every
        // service but S3 encodes each path segment again, so the canonical URI has `%253A`.
        // The signer decodes a segment and encodes it once, so it is handed the twice-encoded
        // segment.
        let once = sigv4::uri_encode(model.as_bytes());
        let twice = sigv4::uri_encode(once.as_bytes());
        let path = format!("{}/model/{once}/{op}", self.prefix);
        let sign_path = format!("{}/model/{twice}/{op}", self.prefix);
        let credentials = self.credentials.get().await?;
        let amz_date = sigv4::amz_date_now();
        let mut headers = vec![
            ("accept".to_string(), accept.to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        if let Some(token) = credentials.session_token() {
            headers.push(("x-amz-security-token".to_string(), token.to_string()));
        }
        let scope = Scope {
            amz_date: &amz_date,
            region: &self.region,
            service: SERVICE,
        };
        let authz = sigv4::authorization(
            &credentials,
            &scope,
            &sigv4::Request {
                method: "POST",
                path: &sign_path,
                query: "",
                headers: &headers,
                body: &body,
            },
        )
        .map_err(|_| UpstreamError::Auth("cannot sign the request"))?;
        let mut rb = self
            .client
            .post(format!("{}{path}", self.origin))
            .body(body);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            rb = rb.header(k.as_str(), v.as_str());
        }
        Ok(rb.header("authorization", authz))
    }

    async fn invoke_titan(&self, model: &str, body: Value) -> Result<Value, UpstreamError> {
        let bytes =
            serde_json::to_vec(&body).map_err(|_| UpstreamError::BadResponse("encoding"))?;
        let resp = self
            .signed(model, "invoke", bytes, "application/json")
            .await?
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        self.refused(&resp).await;
        super::openai_compatible::json_answer(resp).await
    }

    /// Temporary credentials the upstream refuses (expired early, revoked) are fetched again
    /// for the next request.
    async fn refused(&self, resp: &reqwest::Response) {
        if resp.status() == reqwest::StatusCode::FORBIDDEN {
            self.credentials.forget().await;
        }
    }
}

impl ProviderAdapter for Bedrock {
    fn chat(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            let model = model_of(&body)?;
            let converse = to_converse(&body)?;
            let bytes = serde_json::to_vec(&converse)
                .map_err(|_| UpstreamError::Unsupported("the request cannot be encoded"))?;
            let resp = self
                .signed(&model, "converse", bytes, "application/json")
                .await?
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| transport(&e))?;
            self.refused(&resp).await;
            let v = super::openai_compatible::json_answer(resp).await?;
            from_converse(&v, &model)
        })
    }

    fn chat_stream(&self, body: Value) -> BoxFuture<'_, Result<ChunkStream, UpstreamError>> {
        Box::pin(async move {
            let model = model_of(&body)?;
            let include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let converse = to_converse(&body)?;
            let bytes = serde_json::to_vec(&converse)
                .map_err(|_| UpstreamError::Unsupported("the request cannot be encoded"))?;
            let rb = self
                .signed(
                    &model,
                    "converse-stream",
                    bytes,
                    "application/vnd.amazon.eventstream",
                )
                .await?;
            let resp = tokio::time::timeout(self.timeout, rb.send())
                .await
                .map_err(|_| UpstreamError::Timeout)?
                .map_err(|e| transport(&e))?;
            if !resp.status().is_success() {
                self.refused(&resp).await;
                return Err(UpstreamError::Status(resp.status().as_u16()));
            }
            let timeout = self.timeout;
            let state = StreamState::new(model, include_usage);
            let s = futures_util::stream::unfold(
                (resp.bytes_stream(), BytesMut::new(), state, false),
                move |(mut bytes, mut buf, mut st, done)| async move {
                    if done {
                        return None;
                    }
                    loop {
                        match event_stream::decode(&mut buf) {
                            Err(e) => {
                                return Some((
                                    Err(UpstreamError::BadResponse(e.as_str())),
                                    (bytes, buf, st, true),
                                ));
                            }
                            Ok(Some(msg)) => match st.on_message(&msg) {
                                Ok(None) => continue,
                                Ok(Some(chunk)) => {
                                    return Some((Ok(chunk), (bytes, buf, st, false)));
                                }
                                Err(e) => return Some((Err(e), (bytes, buf, st, true))),
                            },
                            Ok(None) => {}
                        }
                        match tokio::time::timeout(timeout, bytes.next()).await {
                            Err(_) => {
                                return Some((Err(UpstreamError::Timeout), (bytes, buf, st, true)));
                            }
                            Ok(Some(Err(e))) => {
                                return Some((Err(transport(&e)), (bytes, buf, st, true)));
                            }
                            Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
                            Ok(None) => {
                                let err = if !buf.is_empty() {
                                    UpstreamError::BadResponse(
                                        event_stream::FrameError::Truncated.as_str(),
                                    )
                                } else if !st.stopped {
                                    UpstreamError::BadResponse(
                                        "the event stream ended before messageStop",
                                    )
                                } else {
                                    return None;
                                };
                                return Some((Err(err), (bytes, buf, st, true)));
                            }
                        }
                    }
                },
            );
            Ok(Box::pin(s) as ChunkStream)
        })
    }

    fn embeddings(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            let model = model_of(&body)?;
            if !model.starts_with("amazon.titan-embed") {
                return Err(UpstreamError::Unsupported(
                    "Bedrock embeddings other than Amazon Titan text embeddings",
                ));
            }
            let inputs: Vec<&str> = match body.get("input") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or(UpstreamError::Unsupported("token-array embedding inputs"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(UpstreamError::Unsupported("this embeddings input")),
            };
            let mut data = Vec::with_capacity(inputs.len());
            let mut tokens = 0u64;
            for (i, text) in inputs.iter().enumerate() {
                let mut req = json!({"inputText": text});
                if let Some(d) = body.get("dimensions") {
                    req["dimensions"] = d.clone();
                }
                let v = self.invoke_titan(&model, req).await?;
                let embedding = v
                    .get("embedding")
                    .filter(|e| e.is_array())
                    .cloned()
                    .ok_or(UpstreamError::BadResponse("no embedding in the answer"))?;
                tokens += v
                    .get("inputTextTokenCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
            }
            Ok(json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI → Converse

/// Maps an OpenAI chat request to a Converse request body (the model goes in the path).
pub fn to_converse(body: &Value) -> Result<Value, UpstreamError> {
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(UpstreamError::Unsupported("n greater than 1"));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(UpstreamError::Unsupported("a request without messages"))?;
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    };
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                for t in texts(content)? {
                    system.push(json!({"text": t}));
                }
            }
            "user" => push("user", content_blocks(content)?),
            "assistant" => {
                let mut blocks = content_blocks(content)?;
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for c in calls {
                        blocks.push(tool_use_block(c)?);
                    }
                }
                push("assistant", blocks);
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).ok_or(
                    UpstreamError::Unsupported("a tool message without tool_call_id"),
                )?;
                let result: Vec<Value> = texts(content)?
                    .into_iter()
                    .map(|t| json!({"text": t}))
                    .collect();
                push(
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id, "content": result}})],
                );
            }
            _ => return Err(UpstreamError::Unsupported("this message role")),
        }
    }
    let mut out = Map::new();
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(n) = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        inference.insert("maxTokens".into(), n.clone());
    }
    if let Some(t) = body.get("temperature").filter(|v| !v.is_null()) {
        inference.insert("temperature".into(), t.clone());
    }
    if let Some(p) = body.get("top_p").filter(|v| !v.is_null()) {
        inference.insert("topP".into(), p.clone());
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            inference.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tc) = tool_config(body)? {
        out.insert("toolConfig".into(), tc);
    }
    Ok(Value::Object(out))
}

/// The text of a message's content (a string, or the text parts of an array).
fn texts(content: &Value) -> Result<Vec<String>, UpstreamError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("text").and_then(Value::as_str) != Some(""))
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text") | None, Some(Value::String(t))) => Ok(t.clone()),
                    _ => Err(UpstreamError::Unsupported(
                        "non-text content in this message",
                    )),
                },
            )
            .collect(),
        _ => Err(UpstreamError::Unsupported("this message content")),
    }
}

fn content_blocks(content: &Value) -> Result<Vec<Value>, UpstreamError> {
    let Value::Array(parts) = content else {
        return Ok(texts(content)?
            .into_iter()
            .map(|t| json!({"text": t}))
            .collect());
    };
    let mut out = Vec::new();
    for p in parts {
        match p.get("type").and_then(Value::as_str) {
            Some("text") => match p.get("text").and_then(Value::as_str) {
                Some("") => {}
                Some(t) => out.push(json!({"text": t})),
                None => return Err(UpstreamError::Unsupported("a text part without text")),
            },
            Some("image_url") => {
                let url = p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(image_block(url)?);
            }
            _ => return Err(UpstreamError::Unsupported("this content part type")),
        }
    }
    Ok(out)
}

/// A `data:image/…;base64,…` URL as a Converse image block (Bedrock cannot fetch URLs).
fn image_block(url: &str) -> Result<Value, UpstreamError> {
    let rest = url
        .strip_prefix("data:image/")
        .ok_or(UpstreamError::Unsupported(
            "image URLs other than base64 data URLs",
        ))?;
    let (format, data) = rest
        .split_once(";base64,")
        .ok_or(UpstreamError::Unsupported(
            "image URLs other than base64 data URLs",
        ))?;
    let format = match format {
        "jpg" | "jpeg" => "jpeg",
        "png" => "png",
        "gif" => "gif",
        "webp" => "webp",
        _ => return Err(UpstreamError::Unsupported("this image format")),
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn tool_use_block(call: &Value) -> Result<Value, UpstreamError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or(UpstreamError::Unsupported("a tool call without an id"))?;
    let f = call.get("function").ok_or(UpstreamError::Unsupported(
        "a tool call that is not a function",
    ))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or(UpstreamError::Unsupported("a tool call without a name"))?;
    let input = match f.get("arguments") {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|_| UpstreamError::Unsupported("tool-call arguments that are not JSON"))?,
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    };
    Ok(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
}

fn tool_config(body: &Value) -> Result<Option<Value>, UpstreamError> {
    let Some(tools) = body
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let mut specs = Vec::new();
    for t in tools {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(UpstreamError::Unsupported("tools other than functions"));
        }
        let f = t.get("function").unwrap_or(&Value::Null);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or(UpstreamError::Unsupported("a tool without a name"))?;
        let mut spec = json!({
            "name": name,
            "inputSchema": {"json": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}))},
        });
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            spec["description"] = json!(d);
        }
        specs.push(json!({"toolSpec": spec}));
    }
    let mut tc = json!({"tools": specs});
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => tc["toolChoice"] = json!({"any": {}}),
        Some(Value::String(s)) if s == "auto" => tc["toolChoice"] = json!({"auto": {}}),
        Some(Value::Object(o)) => {
            if let Some(n) = o.get("function").and_then(|f| f.get("name")) {
                tc["toolChoice"] = json!({"tool": {"name": n}});
            }
        }
        // "none" has no Converse equivalent; the tools must still be declared when the
        // conversation holds toolUse blocks.
        _ => {}
    }
    Ok(Some(tc))
}

// ---------------------------------------------------------------------------------------------
// Converse → OpenAI

/// Maps Converse's `stopReason` to OpenAI's `finish_reason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

fn usage(u: &Value) -> Value {
    let i = u.get("inputTokens").and_then(Value::as_u64).unwrap_or(0);
    let o = u.get("outputTokens").and_then(Value::as_u64).unwrap_or(0);
    let t = u
        .get("totalTokens")
        .and_then(Value::as_u64)
        .unwrap_or(i + o);
    json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": t})
}

/// Maps a Converse answer to an OpenAI `chat.completion`.
pub fn from_converse(v: &Value, model: &str) -> Result<Value, UpstreamError> {
    let content = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or(UpstreamError::BadResponse("no output.message.content"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let id = tu.get("toolUseId").and_then(Value::as_str).unwrap_or("");
            let name = tu.get("name").and_then(Value::as_str).unwrap_or("");
            let args = tu.get("input").cloned().unwrap_or_else(|| json!({}));
            calls.push(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}));
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let stop = v.get("stopReason").and_then(Value::as_str).unwrap_or("");
    let mut out = json!({
        "id": completion_id("bedrock"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop)}],
    });
    if let Some(u) = v.get("usage") {
        out["usage"] = usage(u);
    }
    Ok(out)
}

/// ConverseStream events → `chat.completion.chunk` objects.
pub struct StreamState {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    /// Converse content-block index → OpenAI tool-call index.
    tools: BTreeMap<u64, u64>,
    /// True once `messageStop` arrived.
    pub stopped: bool,
}

impl StreamState {
    pub fn new(model: String, include_usage: bool) -> StreamState {
        StreamState {
            id: completion_id("bedrock"),
            created: unix_now(),
            model,
            include_usage,
            tools: BTreeMap::new(),
            stopped: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    fn tool_index(&mut self, block: u64) -> u64 {
        let next = self.tools.len() as u64;
        *self.tools.entry(block).or_insert(next)
    }

    /// One decoded message → at most one chunk; exceptions → an error.
    pub fn on_message(&mut self, msg: &Message) -> Result<Option<Value>, UpstreamError> {
        match msg.header_str(":message-type") {
            Some("event") => {}
            Some("exception") => {
                return Err(UpstreamError::reported(
                    msg.header_str(":exception-type").unwrap_or(""),
                ));
            }
            Some("error") => {
                return Err(UpstreamError::reported(
                    msg.header_str(":error-code").unwrap_or(""),
                ));
            }
            _ => return Err(UpstreamError::BadResponse("an event without :message-type")),
        }
        let kind = msg
            .header_str(":event-type")
            .ok_or(UpstreamError::BadResponse("an event without :event-type"))?;
        let p: Value = serde_json::from_slice(&msg.payload)
            .map_err(|_| UpstreamError::BadResponse("an event payload is not JSON"))?;
        let block = p
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(match kind {
            "messageStart" => Some(self.chunk(json!({"role": "assistant", "content": ""}), None)),
            "contentBlockStart" => match p.pointer("/start/toolUse") {
                Some(tu) => {
                    let index = self.tool_index(block);
                    Some(self.chunk(
                        json!({"tool_calls": [{"index": index,
                            "id": tu.get("toolUseId").and_then(Value::as_str).unwrap_or(""),
                            "type": "function",
                            "function": {"name": tu.get("name").and_then(Value::as_str).unwrap_or(""), "arguments": ""}}]}),
                        None,
                    ))
                }
                None => None,
            },
            "contentBlockDelta" => {
                if let Some(t) = p.pointer("/delta/text").and_then(Value::as_str) {
                    Some(self.chunk(json!({"content": t}), None))
                } else if let Some(a) = p.pointer("/delta/toolUse/input").and_then(Value::as_str) {
                    let index = self.tool_index(block);
                    Some(self.chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": a}}]}),
                        None,
                    ))
                } else {
                    None // reasoning and other block kinds are not relayed
                }
            }
            "contentBlockStop" => None,
            "messageStop" => {
                self.stopped = true;
                let stop = p.get("stopReason").and_then(Value::as_str).unwrap_or("");
                Some(self.chunk(json!({}), Some(finish_reason(stop))))
            }
            "metadata" => match p.get("usage") {
                Some(u) if self.include_usage => Some(json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage(u),
                })),
                _ => None,
            },
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::providers::event_stream::{HeaderValue, encode};
    use phiguard_crypto::sigv4::Credentials;
    use secrecy::SecretString;

    #[test]
    fn request_mapping() {
        let body = json!({
            "model": "anthropic.claude-3-haiku-20240307-v1:0",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Boston\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": "END",
            "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        });
        let c = to_converse(&body).unwrap();
        assert_eq!(c["system"], json!([{"text": "Be brief."}]));
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "tool result and next user turn merged: {c}");
        assert_eq!(m[0]["content"][0]["text"], "Weather?");
        assert_eq!(m[0]["content"][1]["image"]["format"], "png");
        assert_eq!(
            m[1]["content"][0]["toolUse"],
            json!({"toolUseId": "t1", "name": "weather", "input": {"city": "Boston"}})
        );
        assert_eq!(m[2]["role"], "user");
        assert_eq!(
            m[2]["content"][0]["toolResult"],
            json!({"toolUseId": "t1", "content": [{"text": "sunny"}]})
        );
        assert_eq!(m[2]["content"][1]["text"], "Thanks");
        assert_eq!(
            c["inferenceConfig"],
            json!({"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert_eq!(
            c["toolConfig"]["tools"][0]["toolSpec"],
            json!({"name": "weather", "description": "w", "inputSchema": {"json": {"type": "object"}}})
        );
        assert_eq!(c["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert!(c.get("model").is_none());
        // Unsupported things are refused clearly.
        let bad = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
        assert!(matches!(
            to_converse(&bad),
            Err(UpstreamError::Unsupported(_))
        ));
        let bad = json!({"model": "m", "n": 2, "messages": []});
        assert!(matches!(
            to_converse(&bad),
            Err(UpstreamError::Unsupported(_))
        ));
    }

    #[test]
    fn response_mapping() {
        let v = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Boston"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17}
        });
        let o = from_converse(&v, "m").unwrap();
        assert_eq!(o["object"], "chat.completion");
        let c = &o["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(c["message"]["content"], "Let me check.");
        assert_eq!(c["message"]["tool_calls"][0]["id"], "tu1");
        let args: Value = serde_json::from_str(
            c["message"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args, json!({"city": "Boston"}));
        assert_eq!(
            o["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
        );
        for (s, f) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(s), f);
        }
        assert!(from_converse(&json!({"output": {}}), "m").is_err());
    }

    fn ev(kind: &str, payload: Value) -> Message {
        let f = encode(
            &[
                (":event-type", HeaderValue::String(kind.into())),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("event".into())),
            ],
            payload.to_string().as_bytes(),
        );
        event_stream::decode(&mut BytesMut::from(&f[..]))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn stream_events_to_chunks() {
        let mut st = StreamState::new("m".into(), true);
        let c = st
            .on_message(&ev("messageStart", json!({"role": "assistant"})))
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["delta"]["role"], "assistant");
        let c = st
            .on_message(&ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["delta"]["content"], "Hi");
        assert!(
            st.on_message(&ev("contentBlockStop", json!({"contentBlockIndex": 0})))
                .unwrap()
                .is_none()
        );
        let c = st.on_message(&ev("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "weather"}}}))).unwrap().unwrap();
        assert_eq!(c["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
        assert_eq!(c["choices"][0]["delta"]["tool_calls"][0]["id"], "tu1");
        let c = st
            .on_message(&ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"ci"}}}),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"ci"
        );
        assert!(!st.stopped);
        let c = st
            .on_message(&ev("messageStop", json!({"stopReason": "tool_use"})))
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert!(st.stopped);
        let c = st
            .on_message(&ev(
                "metadata",
                json!({"usage": {"inputTokens": 3, "outputTokens": 4}}),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(c["usage"]["total_tokens"], 7);
        // An exception frame is an upstream error naming its type only.
        let f = encode(
            &[
                (
                    ":exception-type",
                    HeaderValue::String("throttlingException".into()),
                ),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("exception".into())),
            ],
            br#"{"message":"echoes Maria Lopez"}"#,
        );
        let m = event_stream::decode(&mut BytesMut::from(&f[..]))
            .unwrap()
            .unwrap();
        let e = st.on_message(&m).unwrap_err();
        assert_eq!(e, UpstreamError::Reported("throttlingException".into()));
        assert!(!e.to_string().contains("Maria"));
    }

    #[tokio::test]
    async fn signing_path_double_encodes_the_model_id() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string()),
            None,
        )
        .unwrap();
        let b = Bedrock::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            "us-east-1",
            AwsCredentials::fixed(creds, reqwest::Client::new()),
            Duration::from_secs(1),
        )
        .unwrap();
        let rb = b
            .signed(
                "anthropic.claude-v2:1",
                "converse",
                b"{}".to_vec(),
                "application/json",
            )
            .await
            .unwrap();
        let req = rb.build().unwrap();
        assert_eq!(
            req.url().as_str(),
            "http://127.0.0.1:9/model/anthropic.claude-v2%3A1/converse"
        );
        let authz = req.headers()["authorization"].to_str().unwrap();
        assert!(
            authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authz}"
        );
        assert!(authz.contains("/us-east-1/bedrock/aws4_request"), "{authz}");
        assert!(
            authz.contains("SignedHeaders=accept;content-type;host;x-amz-date,"),
            "{authz}"
        );
        assert!(!format!("{b:?}").contains("wJalr"));
    }
}
