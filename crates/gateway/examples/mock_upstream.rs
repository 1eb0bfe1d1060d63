#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A mock OpenAI-compatible upstream for load tests from a separate process
//! (`scripts/bench-gateway.sh`): `POST /v1/chat/completions` answers at once with a fixed
//! clinical summary that carries two tokens, `[[NAME_1]]` and `[[DATE_2]]` (what a model
//! answering a tokenized prompt writes back), plain or as an SSE stream; `GET /v1/models` lists
//! `local-model`.
//!
//! `cargo run --release -p phiguard-gateway --example mock_upstream -- [ADDR]` (default
//! 127.0.0.1:0); prints `listening on http://ADDR` once it accepts connections.

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

const ANSWER: &str = "The patient [[NAME_1]] was admitted on [[DATE_2]] with decompensated heart failure, diuresed 4.2 liters, started on guideline therapy and discharged home in stable condition; follow up with cardiology in one week.";

async fn chat(body: Bytes) -> axum::response::Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = v["model"].as_str().unwrap_or("local-model").to_string();
    if !v["stream"].as_bool().unwrap_or(false) {
        return axum::Json(json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 45, "total_tokens": 445}}))
        .into_response();
    }
    let mut out = String::new();
    for w in ANSWER.split_inclusive(' ') {
        out.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]})
        ));
    }
    out.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], out).into_response()
}

async fn models() -> axum::Json<Value> {
    axum::Json(json!({"object": "list", "data": [{"id": "local-model", "object": "model"}]}))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models));
    axum::serve(listener, app).await.unwrap();
}
