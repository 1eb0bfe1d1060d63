//! Google Vertex AI, Gemini models: `POST {endpoint}/v1/projects/{project}/locations/
//! {location}/publishers/google/models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse` for streams (server-sent events, each a partial
//! `GenerateContentResponse`; the SSE reader is shared with [`super::openai_compatible`]).
//! Embeddings: `…/models/{model}:predict` (text-embedding models).
//!
//! Authentication: a service-account JSON key; an RS256 JWT (signed by
//! `phiguard_crypto`'s `ServiceAccountKey::jwt_assertion`, scope `cloud-platform`) is
//! exchanged at the token URI (the key file's, or `token_uri` from the config) with the
//! JWT-bearer grant; the access token is cached until a minute before it expires.
//!
//! OpenAI → Gemini: `system`/`developer` → `systemInstruction`; user → `user` parts (text,
//! data-URL images as `inlineData`); assistant → `model` parts (text, `functionCall` from
//! `tool_calls`); `tool` → a `functionResponse` part (the name found from the matching tool
//! call); `max_tokens`, `temperature`, `top_p`, `stop`, `n` → `generationConfig`; `tools` →
//! `functionDeclarations`; `tool_choice` → `toolConfig.functionCallingConfig`. And back:
//! candidates → choices, `functionCall` parts → `tool_calls`, `finishReason` →
//! `finish_reason`, `usageMetadata` → `usage`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use phiguard_crypto::provider::gcp_kms::ServiceAccountKey;
use serde_json::{Map, Value, json};

use super::openai_compatible::{json_answer, sse_chunks, transport};
use super::token::{self, TokenCache};
use super::{
    BoxFuture, ChunkStream, ProviderAdapter, UpstreamError, completion_id, model_of, unix_now,
};
use crate::config::ProviderConfig;

/// The OAuth scope requested for Vertex AI.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The JWT-bearer grant type (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The environment variable naming a service-account key file when the config names none.
pub const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";

/// The adapter.
pub struct Vertex {
    client: reqwest::Client,
    /// `{endpoint}/v1/projects/{project}/locations/{location}/publishers/google/models`.
    models_url: String,
    key: ServiceAccountKey,
    token_uri: String,
    cache: TokenCache,
    timeout: Duration,
}

impl std::fmt::Debug for Vertex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vertex({}, {:?})", self.models_url, self.key)
    }
}

fn path_part(what: &str, v: &str) -> Result<String, String> {
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("{what}: expected letters, digits, '-', '_' or '.'"));
    }
    Ok(v.to_string())
}

impl Vertex {
    /// From a checked `[providers.NAME]` of kind `vertex`: reads the service-account key
    /// file (`service_account_file`, else `GOOGLE_APPLICATION_CREDENTIALS`). No network call.
    pub fn from_config(
        client: reqwest::Client,
        p: &ProviderConfig,
        timeout: Duration,
    ) -> Result<Vertex, String> {
        let project = path_part("project", p.project.as_deref().unwrap_or(""))?;
        let location = path_part("location", p.location.as_deref().unwrap_or(""))?;
        let file = match &p.service_account_file {
            Some(f) => f.clone(),
            None => std::env::var(ENV_CREDENTIALS)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Into::into)
                .ok_or_else(|| {
                    format!("service_account_file (or {ENV_CREDENTIALS}) is required")
                })?,
        };
        let key = ServiceAccountKey::from_file(Path::new(&file))
            .map_err(|e| format!("service_account_file: {e}"))?;
        let token_uri = p.token_uri.clone().unwrap_or_else(|| key.token_uri.clone());
        Ok(Vertex {
            client,
            models_url: format!(
                "{}/v1/projects/{project}/locations/{location}/publishers/google/models",
                p.endpoint.trim_end_matches('/')
            ),
            key,
            token_uri,
            cache: TokenCache::default(),
            timeout,
        })
    }

    async fn bearer(&self) -> Result<String, UpstreamError> {
        let tok = self
            .cache
            .get(|| async {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let assertion = self
                    .key
                    .jwt_assertion(SCOPE, &self.token_uri, now)
                    .map_err(|_| UpstreamError::Auth("cannot sign the service-account JWT"))?;
                token::request_token(
                    &self.client,
                    &self.token_uri,
                    &[
                        ("grant_type", JWT_BEARER_GRANT),
                        ("assertion", assertion.as_str()),
                    ],
                    self.timeout,
                    "the token endpoint refused the service-account assertion",
                )
                .await
            })
            .await?;
        Ok(token::bearer(&tok))
    }

    async fn request(
        &self,
        model: &str,
        method: &str,
        query: &str,
        body: &Value,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        let model = path_part("model", model)
            .map_err(|_| UpstreamError::Unsupported("this model name in a Vertex AI path"))?;
        let auth = self.bearer().await?;
        Ok(self
            .client
            .post(format!("{}/{model}:{method}{query}", self.models_url))
            .header("authorization", auth)
            .json(body))
    }

    async fn on_error(&self, e: UpstreamError) -> UpstreamError {
        if e == UpstreamError::Status(401) {
            self.cache.forget().await;
        }
        e
    }

    async fn json_call(
        &self,
        model: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, UpstreamError> {
        let resp = self
            .request(model, method, "", body)
            .await?
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        match json_answer(resp).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.on_error(e).await),
        }
    }
}

impl ProviderAdapter for Vertex {
    fn chat(&self, body: Value) -> BoxFuture<'_, Result<Value, UpstreamError>> {
        Box::pin(async move {
            let model = model_of(&body)?;
            let req = to_gemini(&body)?;
            let v = self.json_call(&model, "generateContent", &req).await?;
            from_gemini(&v, &model)
        })
    }

    fn chat_stream(&self, body: Value) -> BoxFuture<'_, Result<ChunkStream, UpstreamError>> {
        Box::pin(async move {
            let model = model_of(&body)?;
            let include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let req = to_gemini(&body)?;
            let rb = self
                .request(&model, "streamGenerateContent", "?alt=sse", &req)
                .await?;
            let inner = match sse_chunks(rb, self.timeout).await {
                Ok(s) => s,
                Err(e) => return Err(self.on_error(e).await),
            };
            let st = StreamState::new(model, include_usage);
            let pending = std::collections::VecDeque::<Value>::new();
            let s = futures_util::stream::unfold(
                (inner, st, pending, false),
                |(mut inner, mut st, mut pending, done)| async move {
                    loop {
                        if let Some(c) = pending.pop_front() {
                            return Some((Ok(c), (inner, st, pending, done)));
                        }
                        if done {
                            return None;
                        }
                        match inner.next().await {
                            Some(Ok(v)) => match st.on_chunk(&v) {
                                Ok(chunks) => pending.extend(chunks),
                                Err(e) => return Some((Err(e), (inner, st, pending, true))),
                            },
                            Some(Err(e)) => return Some((Err(e), (inner, st, pending, true))),
                            None if st.finished => return None,
                            None => {
                                return Some((
                                    Err(UpstreamError::BadResponse(
                                        "the stream ended before a finish reason",
                                    )),
                                    (inner, st, pending, true),
                                ));
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
            let inputs: Vec<Value> = match body.get("input") {
                Some(Value::String(s)) => vec![json!({"content": s})],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(|s| json!({"content": s}))
                            .ok_or(UpstreamError::Unsupported("token-array embedding inputs"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(UpstreamError::Unsupported("this embeddings input")),
            };
            let mut req = json!({"instances": inputs});
            if let Some(d) = body.get("dimensions") {
                req["parameters"] = json!({"outputDimensionality": d});
            }
            let v = self.json_call(&model, "predict", &req).await?;
            let preds = v
                .get("predictions")
                .and_then(Value::as_array)
                .ok_or(UpstreamError::BadResponse("no predictions"))?;
            let mut data = Vec::new();
            let mut tokens = 0u64;
            for (i, p) in preds.iter().enumerate() {
                let values = p
                    .pointer("/embeddings/values")
                    .filter(|e| e.is_array())
                    .cloned()
                    .ok_or(UpstreamError::BadResponse("a prediction without values"))?;
                tokens += p
                    .pointer("/embeddings/statistics/token_count")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u64;
                data.push(json!({"object": "embedding", "index": i, "embedding": values}));
            }
            Ok(json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI → Gemini

/// Maps an OpenAI chat request to a Gemini `generateContent` body.
pub fn to_gemini(body: &Value) -> Result<Value, UpstreamError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(UpstreamError::Unsupported("a request without messages"))?;
    // Tool-call id → function name, for tool results (Gemini matches them by name).
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for m in messages {
        for c in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(name)) = (
                c.get("id").and_then(Value::as_str),
                c.pointer("/function/name").and_then(Value::as_str),
            ) {
                names.insert(id.to_string(), name.to_string());
            }
        }
    }
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, parts: Vec<Value>| {
        if parts.is_empty() {
            return;
        }
        match contents.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => contents.push((role, parts)),
        }
    };
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(parts(content)?),
            "user" => push("user", parts(content)?),
            "assistant" => {
                let mut p = parts(content)?;
                for c in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or(UpstreamError::Unsupported("a tool call without a name"))?;
                    let args = match c.pointer("/function/arguments") {
                        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                        Some(Value::String(s)) => {
                            serde_json::from_str::<Value>(s).map_err(|_| {
                                UpstreamError::Unsupported("tool-call arguments that are not JSON")
                            })?
                        }
                        _ => json!({}),
                    };
                    p.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                push("model", p);
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = names.get(id).ok_or(UpstreamError::Unsupported(
                    "a tool message that answers no earlier tool call",
                ))?;
                let text: String = parts(content)?
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n");
                push(
                    "user",
                    vec![
                        json!({"functionResponse": {"name": name, "response": {"content": text}}}),
                    ],
                );
            }
            _ => return Err(UpstreamError::Unsupported("this message role")),
        }
    }
    let mut out = Map::new();
    out.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut gen_config = Map::new();
    for (from, to) in [
        ("max_completion_tokens", "maxOutputTokens"),
        ("max_tokens", "maxOutputTokens"),
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null())
            && !gen_config.contains_key(to)
        {
            gen_config.insert(to.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            gen_config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            gen_config.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if !gen_config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gen_config));
    }
    if let Some(tools) = body
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    {
        let mut decls = Vec::new();
        for t in tools {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(UpstreamError::Unsupported("tools other than functions"));
            }
            let f = t.get("function").unwrap_or(&Value::Null);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or(UpstreamError::Unsupported("a tool without a name"))?;
            let mut d = json!({"name": name});
            if let Some(desc) = f.get("description").and_then(Value::as_str) {
                d["description"] = json!(desc);
            }
            if let Some(p) = f.get("parameters") {
                d["parameters"] = p.clone();
            }
            decls.push(d);
        }
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        let mode = match body.get("tool_choice") {
            Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
            Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
            Some(Value::String(s)) if s == "auto" => Some(json!({"mode": "AUTO"})),
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"mode": "ANY", "allowedFunctionNames": [n]})),
            _ => None,
        };
        if let Some(m) = mode {
            out.insert("toolConfig".into(), json!({"functionCallingConfig": m}));
        }
    }
    Ok(Value::Object(out))
}

fn parts(content: &Value) -> Result<Vec<Value>, UpstreamError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(items) => {
            let mut out = Vec::new();
            for p in items {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => match p.get("text").and_then(Value::as_str) {
                        Some("") => {}
                        Some(t) => out.push(json!({"text": t})),
                        None => {
                            return Err(UpstreamError::Unsupported("a text part without text"));
                        }
                    },
                    Some("image_url") => {
                        let url = p
                            .pointer("/image_url/url")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let (mime, data) = url
                            .strip_prefix("data:")
                            .and_then(|r| r.split_once(";base64,"))
                            .filter(|(m, _)| m.starts_with("image/"))
                            .ok_or(UpstreamError::Unsupported(
                                "image URLs other than base64 data URLs",
                            ))?;
                        out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                    }
                    _ => return Err(UpstreamError::Unsupported("this content part type")),
                }
            }
            Ok(out)
        }
        _ => Err(UpstreamError::Unsupported("this message content")),
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini → OpenAI

/// Maps Gemini's `finishReason` (with whether the candidate called functions).
pub fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called => "tool_calls",
        _ => "stop",
    }
}

fn usage(u: &Value) -> Value {
    let p = u
        .get("promptTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let c = u
        .get("candidatesTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let t = u
        .get("totalTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(p + c);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": t})
}

/// A candidate's text and function calls (`tool_base` numbers the calls' ids and indexes).
fn candidate_parts(cand: &Value, tool_base: usize) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in cand
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(fc) = p.get("functionCall") {
            let n = tool_base + calls.len();
            let id = fc
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{n}"));
            let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
            calls.push(json!({"index": n, "id": id, "type": "function",
                "function": {"name": fc.get("name").and_then(Value::as_str).unwrap_or(""),
                             "arguments": args.to_string()}}));
        }
    }
    (text, calls)
}

fn check_error(v: &Value) -> Result<(), UpstreamError> {
    match v.get("error") {
        Some(e) => Err(UpstreamError::reported(
            e.get("status").and_then(Value::as_str).unwrap_or(""),
        )),
        None => Ok(()),
    }
}

/// Maps a Gemini answer to an OpenAI `chat.completion`.
pub fn from_gemini(v: &Value, model: &str) -> Result<Value, UpstreamError> {
    check_error(v)?;
    let cands = v
        .get("candidates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut choices = Vec::new();
    if cands.is_empty() {
        // The prompt was blocked (`promptFeedback.blockReason`).
        if v.pointer("/promptFeedback/blockReason").is_none() {
            return Err(UpstreamError::BadResponse("no candidates"));
        }
        choices.push(
            json!({"index": 0, "message": {"role": "assistant", "content": ""},
            "finish_reason": "content_filter"}),
        );
    }
    for (i, c) in cands.iter().enumerate() {
        let (text, mut calls) = candidate_parts(c, 0);
        for call in &mut calls {
            if let Some(o) = call.as_object_mut() {
                o.remove("index");
            }
        }
        let mut message = json!({"role": "assistant",
            "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
        let called = !calls.is_empty();
        if called {
            message["tool_calls"] = Value::Array(calls);
        }
        let reason = c.get("finishReason").and_then(Value::as_str).unwrap_or("");
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        choices.push(json!({"index": index, "message": message,
            "finish_reason": finish_reason(reason, called)}));
    }
    let mut out = json!({
        "id": completion_id("vertex"), "object": "chat.completion", "created": unix_now(), "model": model,
        "choices": choices,
    });
    if let Some(u) = v.get("usageMetadata") {
        out["usage"] = usage(u);
    }
    Ok(out)
}

/// Gemini stream events → `chat.completion.chunk` objects.
pub struct StreamState {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    started: bool,
    /// Tool calls so far, per candidate.
    calls: BTreeMap<u64, usize>,
    /// True once a candidate reported a finish reason.
    pub finished: bool,
}

impl StreamState {
    pub fn new(model: String, include_usage: bool) -> StreamState {
        StreamState {
            id: completion_id("vertex"),
            created: unix_now(),
            model,
            include_usage,
            started: false,
            calls: BTreeMap::new(),
            finished: false,
        }
    }

    fn chunk(&self, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        })
    }

    /// One `GenerateContentResponse` → chunks: the candidates' text and function calls, then
    /// (when a candidate finished) a chunk with the finish reasons and the usage.
    pub fn on_chunk(&mut self, v: &Value) -> Result<Vec<Value>, UpstreamError> {
        check_error(v)?;
        let cands = v
            .get("candidates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut deltas = Vec::new();
        let mut finishes = Vec::new();
        if cands.is_empty() && v.pointer("/promptFeedback/blockReason").is_some() {
            self.finished = true;
            finishes.push(json!({"index": 0, "delta": {}, "finish_reason": "content_filter"}));
        }
        for (i, c) in cands.iter().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            let base = self.calls.get(&index).copied().unwrap_or(0);
            let (text, calls) = candidate_parts(c, base);
            let mut delta = Map::new();
            if !self.started {
                delta.insert("role".into(), json!("assistant"));
            }
            delta.insert("content".into(), Value::String(text));
            if !calls.is_empty() {
                self.calls.insert(index, base + calls.len());
                delta.insert("tool_calls".into(), Value::Array(calls));
            }
            deltas.push(json!({"index": index, "delta": delta, "finish_reason": null}));
            if let Some(r) = c.get("finishReason").and_then(Value::as_str) {
                self.finished = true;
                let called = self.calls.get(&index).is_some_and(|n| *n > 0);
                finishes.push(json!({"index": index, "delta": {},
                    "finish_reason": finish_reason(r, called)}));
            }
        }
        self.started = true;
        let mut out = Vec::new();
        if !deltas.is_empty() {
            out.push(self.chunk(deltas));
        }
        if !finishes.is_empty() {
            let mut last = self.chunk(finishes);
            if self.include_usage
                && let Some(u) = v.get("usageMetadata")
            {
                last["usage"] = usage(u);
            }
            out.push(last);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn request_mapping() {
        let body = json!({
            "model": "gemini-2.0-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Boston\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": ["END"],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}}
        });
        let g = to_gemini(&body).unwrap();
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}]})
        );
        let c = g["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3, "{g}");
        assert_eq!(c[0]["role"], "user");
        assert_eq!(c[0]["parts"][1]["inlineData"]["mimeType"], "image/png");
        assert_eq!(c[1]["role"], "model");
        assert_eq!(
            c[1]["parts"][0]["functionCall"],
            json!({"name": "weather", "args": {"city": "Boston"}})
        );
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "weather", "response": {"content": "sunny"}})
        );
        assert_eq!(c[2]["parts"][1]["text"], "Thanks");
        assert_eq!(
            g["generationConfig"],
            json!({"maxOutputTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert_eq!(
            g["tools"][0]["functionDeclarations"][0],
            json!({"name": "weather", "description": "w", "parameters": {"type": "object"}})
        );
        assert_eq!(
            g["toolConfig"]["functionCallingConfig"],
            json!({"mode": "ANY", "allowedFunctionNames": ["weather"]})
        );
        let orphan = json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]});
        assert!(matches!(
            to_gemini(&orphan),
            Err(UpstreamError::Unsupported(_))
        ));
    }

    #[test]
    fn response_mapping() {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "weather", "args": {"city": "Boston"}}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}
        });
        let o = from_gemini(&v, "gemini").unwrap();
        let c = &o["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(c["message"]["content"], "Checking.");
        assert_eq!(c["message"]["tool_calls"][0]["id"], "call_0");
        assert!(c["message"]["tool_calls"][0].get("index").is_none());
        assert_eq!(
            c["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Boston\"}"
        );
        assert_eq!(o["usage"]["total_tokens"], 13);
        assert_eq!(finish_reason("MAX_TOKENS", false), "length");
        assert_eq!(finish_reason("SAFETY", false), "content_filter");
        assert_eq!(finish_reason("STOP", false), "stop");
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(
            from_gemini(&blocked, "g").unwrap()["choices"][0]["finish_reason"],
            "content_filter"
        );
        let err =
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Maria"}});
        assert_eq!(
            from_gemini(&err, "g").unwrap_err(),
            UpstreamError::Reported("RESOURCE_EXHAUSTED".into())
        );
    }

    #[test]
    fn stream_chunks() {
        let mut st = StreamState::new("g".into(), true);
        let c = st
            .on_chunk(&json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]}))
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(c[0]["choices"][0]["delta"]["content"], "Hel");
        assert!(c[0]["choices"][0]["finish_reason"].is_null());
        assert!(!st.finished);
        let c = st
            .on_chunk(&json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3}}))
            .unwrap();
        assert_eq!(c.len(), 2, "the finish reason comes in its own chunk");
        assert!(c[0]["choices"][0]["delta"].get("role").is_none());
        assert_eq!(c[0]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
        assert!(c[0]["choices"][0]["finish_reason"].is_null());
        assert_eq!(c[1]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(c[1]["usage"]["total_tokens"], 3);
        assert!(st.finished);
    }
}
