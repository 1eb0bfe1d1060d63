//! A mock upstream speaking OpenAI's chat-completions wire format (plain JSON and SSE). It
//! records every body it receives so tests can check what reached the provider.
//!
//! Behaviour by model name: `leaky*` answers a fixed text full of PHI the model "invented";
//! every other model echoes the last user message (so placeholders come back) and appends an
//! invented placeholder `[[NAME_9]]`. With `tools` in the request it answers a tool call whose
//! arguments echo the user text. Streams are cut into 3-byte chunks.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const LEAKY_TEXT: &str = "Follow up with Dr. John Carter at 617-555-0199 about the visit on 03/14/2021; the chart lists MRN 4839201.";

#[derive(Clone, Default)]
pub struct Mock {
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Mock {
    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
    pub fn last(&self) -> Value {
        self.received.lock().unwrap().last().cloned().unwrap()
    }
    pub fn all_text(&self) -> String {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn last_user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(m) = msgs.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

pub async fn chat(State(mock): State<Mock>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    mock.received.lock().unwrap().push(body.clone());
    let model = body["model"].as_str().unwrap_or("").to_string();
    if model == "slow" {
        tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    }
    let text = if model.starts_with("leaky") {
        LEAKY_TEXT.to_string()
    } else {
        format!("You said: {} [[NAME_9]]", last_user_text(&body))
    };
    let tool = body.get("tools").is_some();
    let stream = body["stream"].as_bool().unwrap_or(false);
    if !stream {
        let message = if tool {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": serde_json::to_string(&json!({"query": text})).unwrap()}}]})
        } else {
            json!({"role": "assistant", "content": text})
        };
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": if tool { "tool_calls" } else { "stop" },
                "logprobs": {"content": text.split(' ').map(|t| json!({"token": t, "logprob": -0.1})).collect::<Vec<_>>()}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        }))
        .into_response();
    }
    let mut out = String::new();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    out.push_str(&chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    let bytes = if tool {
        serde_json::to_string(&json!({"query": text})).unwrap()
    } else {
        text.clone()
    };
    let mut pieces = Vec::new();
    let mut cur = String::new();
    for c in bytes.chars() {
        cur.push(c);
        if cur.len() >= 3 {
            pieces.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    if tool {
        out.push_str(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}),
            Value::Null,
        ));
    }
    for p in pieces {
        let delta = if tool {
            json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
        } else {
            json!({"content": p})
        };
        out.push_str(&chunk(delta, Value::Null));
    }
    out.push_str(&chunk(
        json!({}),
        json!(if tool { "tool_calls" } else { "stop" }),
    ));
    out.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], out).into_response()
}

pub async fn embed(State(mock): State<Mock>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    mock.received.lock().unwrap().push(body.clone());
    let n = match &body["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
        .into_response()
}

/// Starts the mock on a loopback port; returns its base URL (`http://127.0.0.1:P/v1`).
pub async fn start() -> (Mock, String) {
    let mock = Mock::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embed))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (mock, format!("http://{addr}/v1"))
}
