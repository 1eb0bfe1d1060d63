//! AWS Bedrock through the real gateway: a mock Bedrock runtime on loopback that checks the
//! SigV4 signature of every request (recomputed with the same credentials; the canonical
//! request is built here, independently of the adapter) and answers Converse JSON, a real
//! binary event stream for ConverseStream (encoded here with CRC32s), and Titan embeddings.
//!
//! Behaviour by model id: `br-leaky*` answers a fixed text full of PHI; other models echo the
//! last user text and append `[[NAME_9]]`; with `toolConfig` the answer is a `toolUse` whose
//! input echoes the text. Streams: `br-corrupt` flips a byte in the third frame,
//! `br-exception` sends a throttling exception after the first text, `br-truncated` stops in
//! the middle of a frame. Streams are sent in 7-byte pieces, so frames span reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use phiguard_crypto::sigv4::{self, Credentials, Scope};
use phiguard_detect::Detector;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::mock::{LEAKY_TEXT, Mock};
use crate::streaming::events;
use crate::*;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[derive(Clone, Default)]
struct BedrockMock {
    bodies: Mock,
    paths: Arc<std::sync::Mutex<Vec<String>>>,
    bad_signatures: Arc<AtomicUsize>,
    /// The `x-amz-security-token` of each signed request (empty without one).
    session_tokens: Arc<std::sync::Mutex<Vec<String>>>,
}

// --- an independent event-stream encoder (string headers only, which is all Bedrock sends) ---

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32fast::hash(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let c = crc32fast::hash(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

// --- SigV4 check: the canonical request built here, the key derivation from phiguard-crypto ---

fn uri_encode_segment(seg: &str) -> String {
    seg.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// True when `Authorization` is well formed and its signature matches the request.
fn signature_ok(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(authz) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(rest) = authz.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let parts: Vec<&str> = rest.split(", ").collect();
    let [cred, signed, sig] = parts.as_slice() else {
        return false;
    };
    let (Some(cred), Some(signed), Some(sig)) = (
        cred.strip_prefix("Credential="),
        signed.strip_prefix("SignedHeaders="),
        sig.strip_prefix("Signature="),
    ) else {
        return false;
    };
    let Some(amz_date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let expected_cred = format!(
        "{ACCESS_KEY}/{}/{REGION}/bedrock/aws4_request",
        &amz_date[..8]
    );
    if cred != expected_cred || sig.len() != 64 {
        return false;
    }
    let names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date", "content-type"] {
        if !names.contains(&required) {
            return false;
        }
    }
    let mut canonical_headers = String::new();
    for n in &names {
        let Some(v) = headers.get(*n).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        canonical_headers.push_str(&format!("{n}:{}\n", v.trim()));
    }
    // As AWS does for every service but S3: each segment of the path as received is
    // URI-encoded once more.
    let canonical_uri = uri
        .path()
        .split('/')
        .map(uri_encode_segment)
        .collect::<Vec<_>>()
        .join("/");
    let creq = format!(
        "POST\n{canonical_uri}\n\n{canonical_headers}\n{signed}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let scope = Scope {
        amz_date,
        region: REGION,
        service: "bedrock",
    };
    let creds = Credentials::new(
        ACCESS_KEY,
        secrecy::SecretString::from(SECRET_KEY.to_string()),
        None,
    )
    .unwrap();
    let sts = sigv4::string_to_sign(&scope, &creq).unwrap();
    sigv4::signature(&creds, &scope, &sts).unwrap() == sig
}

fn last_user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(m) = msgs.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    m["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn pieces(s: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        cur.push(c);
        if cur.len() >= n {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

async fn handle(
    State(mock): State<BedrockMock>,
    Path((model, op)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !signature_ok(&uri, &headers, &body) {
        mock.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "The request signature we calculated does not match"})),
        )
            .into_response();
    }
    mock.session_tokens.lock().unwrap().push(
        headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    mock.bodies.received.lock().unwrap().push(body.clone());
    mock.paths.lock().unwrap().push(uri.path().to_string());
    if op == "invoke" {
        let n = body["inputText"].as_str().unwrap().len();
        return axum::Json(json!({"embedding": [0.5, -0.25, n as f64], "inputTextTokenCount": 3}))
            .into_response();
    }
    let text = if model.starts_with("br-leaky") {
        LEAKY_TEXT.to_string()
    } else {
        format!("You said: {} [[NAME_9]]", last_user_text(&body))
    };
    let tool = body.get("toolConfig").is_some();
    if op == "converse" {
        let content = if tool {
            json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"query": text}}}])
        } else {
            json!([{"text": text}])
        };
        return axum::Json(json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": if tool { "tool_use" } else { "end_turn" },
            "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
            "metrics": {"latencyMs": 1}
        }))
        .into_response();
    }
    assert_eq!(op, "converse-stream");
    let mut frames = vec![event("messageStart", json!({"role": "assistant"}))];
    if tool {
        frames.push(event("contentBlockStart", json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup"}}})));
        for p in pieces(&json!({"query": text}).to_string(), 3) {
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": p}}}),
            ));
        }
    } else {
        for p in pieces(&text, 3) {
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": p}, "p": "abcdef"}),
            ));
        }
    }
    frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    frames.push(event(
        "messageStop",
        json!({"stopReason": if tool { "tool_use" } else { "end_turn" }}),
    ));
    frames.push(event(
        "metadata",
        json!({"usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18}, "metrics": {"latencyMs": 1}}),
    ));
    if model == "br-corrupt" {
        let n = frames[2].len();
        frames[2][n - 6] ^= 0x20;
    }
    if model == "br-exception" {
        frames.truncate(2);
        frames.push(frame(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            format!("{{\"message\":\"Too many requests: {text}\"}}").as_bytes(),
        ));
    }
    let mut all: Vec<u8> = frames.concat();
    if model == "br-truncated" {
        all.truncate(all.len() - 5);
    }
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = all
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    (
        [("content-type", "application/vnd.amazon.eventstream")],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

async fn start_mock() -> (BedrockMock, String) {
    let mock = BedrockMock::default();
    let app = Router::new()
        .route("/model/{model}/{op}", post(handle))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (mock, format!("http://{addr}"))
}

fn config(endpoint: &str, secret: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[limits]
upstream_timeout_secs = 5

[providers.bedrock]
kind = "bedrock"
endpoint = "{endpoint}"
region = "{REGION}"
aws_access_key_id = "{ACCESS_KEY}"
aws_secret_access_key = "{secret}"
models = ["{CLAUDE}", "br-leaky", "br-corrupt", "br-exception", "br-truncated", "amazon.titan-embed-text-v2:0"]
[providers.bedrock.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["chat.completions", "embeddings"]

[providers.bedrock_nobaa]
kind = "bedrock"
endpoint = "{endpoint}"
region = "{REGION}"
aws_access_key_id = "{ACCESS_KEY}"
aws_secret_access_key = "{secret}"
models = ["br-nobaa"]

[roles.clinician]
actions = ["chat", "embedding"]
models = ["*"]
phi = "full"
input = "tokenize"

[roles.analyst]
actions = ["chat"]
models = ["*"]
phi = "none"
input = "redact"
"#,
        signed = date(-30),
        future = date(365),
    )
}

async fn start_bedrock_with(secret: &str) -> (Harness, BedrockMock) {
    let (bm, endpoint) = start_mock().await;
    let h = start_config(
        &config(&endpoint, secret),
        Mock::default(),
        Arc::new(Detector::new()),
    )
    .await;
    (h, bm)
}

async fn start_bedrock() -> (Harness, BedrockMock) {
    start_bedrock_with(SECRET_KEY).await
}

fn content(evs: &[Value]) -> String {
    evs.iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn plain_chat_is_signed_mapped_and_tokens_round_trip() {
    let (h, bm) = start_bedrock().await;
    let key = h.key("clinician");
    let body = json!({"model": CLAUDE, "max_tokens": 64, "temperature": 0.1,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": NOTE}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 0);
    // The model id's colon is percent-encoded in the path (and signed double-encoded).
    assert_eq!(
        bm.paths.lock().unwrap().last().unwrap(),
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    let sent = bm.bodies.last();
    assert_eq!(sent["system"], json!([{"text": "Be brief."}]));
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 64);
    assert!(sent.get("model").is_none(), "{sent}");
    assert_no_phi(&bm.bodies.all_text(), &NOTE_PHI);
    assert!(bm.bodies.all_text().contains("[[NAME_1]]"));
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["completion_tokens"], 7);
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    for p in NOTE_PHI {
        assert!(text.contains(p), "{p} not restored: {text}");
    }
    assert!(text.contains("[[NAME_9]]"), "{text}");
    let rec = h.completes().pop().unwrap();
    assert_eq!(rec["provider"], "bedrock");
    assert_eq!(rec["decision"]["routing"], "baa_active");
}

#[tokio::test]
async fn phi_is_not_routed_to_bedrock_without_a_baa() {
    let (h, bm) = start_bedrock().await;
    let key = h.key("clinician");
    let (s, _, b) = h
        .chat(
            &key,
            Some("p-17"),
            json!({"model": "br-nobaa", "messages": [{"role": "user", "content": NOTE}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (403, "phi_route_denied"));
    assert_eq!(bm.bodies.count(), 0);
}

#[tokio::test]
async fn analyst_answer_is_scrubbed_and_tool_calls_map() {
    let (h, bm) = start_bedrock().await;
    let key = h.key("analyst");
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "br-leaky", "messages": [{"role": "user", "content": "Any follow-up due?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_no_phi(
        &b,
        &["John Carter", "617-555-0199", "03/14/2021", "4839201"],
    );
    // Tools: OpenAI tools → toolConfig; toolUse → tool_calls with guarded arguments.
    let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": NOTE}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    let sent = bm.bodies.last();
    assert_eq!(sent["toolConfig"]["tools"][0]["toolSpec"]["name"], "lookup");
    assert_no_phi(&sent.to_string(), &NOTE_PHI);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_1");
    assert_eq!(call["function"]["name"], "lookup");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["query"].as_str().unwrap().contains("[NAME]"), "{args}");
    assert_no_phi(&b, &NOTE_PHI);
    // A tool result goes back as a toolResult block.
    let body = json!({"model": CLAUDE, "messages": [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "found"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (s, _, b) = h.chat(&key, None, body).await;
    assert_eq!(s, 200, "{b}");
    let sent = bm.bodies.last();
    assert_eq!(
        sent["messages"][1]["content"][0]["toolUse"]["toolUseId"],
        "tooluse_1"
    );
    assert_eq!(
        sent["messages"][2]["content"][0]["toolResult"],
        json!({"toolUseId": "tooluse_1", "content": [{"text": "found"}]})
    );
}

#[tokio::test]
async fn event_stream_phi_split_across_frames_is_scrubbed_for_analyst() {
    let (h, _bm) = start_bedrock().await;
    let key = h.key("analyst");
    let (s, headers, b) = h
        .chat(
            &key,
            None,
            json!({"model": "br-leaky", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Any follow-up due?"}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let (evs, done) = events(&b);
    assert!(done, "{b}");
    let visible = evs
        .iter()
        .filter(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert!(visible > 10, "only {visible} visible chunks");
    let text = content(&evs);
    assert!(text.contains("Follow up with"), "{text}");
    assert_no_phi(
        &text,
        &[
            "John Carter",
            "Carter",
            "617-555-0199",
            "555-0199",
            "03/14/2021",
            "4839201",
        ],
    );
    assert!(
        evs.iter()
            .any(|e| e["choices"][0]["finish_reason"] == "stop")
    );
    assert!(evs.iter().any(|e| e["usage"]["total_tokens"] == 18), "{b}");
    let rec = h.completes().pop().unwrap();
    assert_eq!(rec["output"]["stream"], true);
    assert_eq!(rec["output"]["disposition"], "returned");
}

#[tokio::test]
async fn event_stream_clinician_restores_and_tool_arguments_are_guarded() {
    let (h, bm) = start_bedrock().await;
    let key = h.key("clinician");
    let (s, _, b) = h
        .chat(&key, Some("p-17"), json!({"model": CLAUDE, "stream": true, "messages": [{"role": "user", "content": NOTE}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_no_phi(&bm.bodies.all_text(), &NOTE_PHI);
    assert!(
        bm.paths
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .ends_with("/converse-stream")
    );
    let (evs, done) = events(&b);
    assert!(done, "{b}");
    let text = content(&evs);
    for p in NOTE_PHI {
        assert!(text.contains(p), "{p} not restored: {text}");
    }
    let analyst = h.key("analyst");
    let body = json!({"model": CLAUDE, "stream": true, "messages": [{"role": "user", "content": NOTE}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (s, _, b) = h.chat(&analyst, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    let (evs, done) = events(&b);
    assert!(done, "{b}");
    let first = evs
        .iter()
        .find_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["id"].as_str())
        .unwrap();
    assert_eq!(first, "tooluse_1");
    let args: String = evs
        .iter()
        .flat_map(|e| {
            e["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["function"]["arguments"].as_str().map(str::to_string))
        .collect();
    let v: Value = serde_json::from_str(&args).unwrap();
    assert!(v["query"].as_str().unwrap().contains("[NAME]"), "{v}");
    assert_no_phi(&b, &NOTE_PHI);
    assert!(
        evs.iter()
            .any(|e| e["choices"][0]["finish_reason"] == "tool_calls")
    );
}

#[tokio::test]
async fn corrupt_truncated_or_exception_streams_are_upstream_errors() {
    let (h, _bm) = start_bedrock().await;
    let key = h.key("analyst");
    for (model, why) in [
        ("br-corrupt", "CRC mismatch"),
        ("br-truncated", "ended inside a message"),
        ("br-exception", "throttlingException"),
    ] {
        let (s, _, b) = h
            .chat(&key, Some("p-17"), json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hello Maria Lopez"}]}))
            .await;
        assert_eq!(s, 200, "{model}: {b}");
        let (evs, done) = events(&b);
        assert!(!done, "{model}: a failed stream must not end with [DONE]");
        let err = &evs.last().unwrap()["error"];
        assert_eq!(err["code"], "upstream_error", "{model}: {b}");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{model}: {b}"
        );
        // The exception's message (which echoes the prompt) is never relayed.
        assert!(!b.contains("Too many requests"), "{b}");
        assert_no_phi(&b, &["Maria Lopez"]);
        let rec = h.completes().pop().unwrap();
        assert_eq!(rec["output"]["disposition"], "partial", "{model}");
        assert_eq!(rec["decision"]["code"], "upstream_error", "{model}");
    }
}

#[tokio::test]
async fn wrong_secret_is_refused_by_the_signature_check() {
    let (h, bm) = start_bedrock_with("not-the-right-secret").await;
    let key = h.key("analyst");
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": CLAUDE, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (502, "upstream_error"));
    assert!(b.contains("403"), "{b}");
    assert!(!b.contains("signature we calculated"), "{b}");
    assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 1);
    assert_eq!(bm.bodies.count(), 0);
}

#[tokio::test]
async fn titan_embeddings_through_invoke_model() {
    let (h, bm) = start_bedrock().await;
    let key = h.key("clinician");
    let r = h
        .client
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&key)
        .header("X-Patient-Ref", "p-17")
        .json(&json!({"model": "amazon.titan-embed-text-v2:0", "input": ["Maria Lopez has asthma", "plain text"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["usage"]["prompt_tokens"], 6);
    assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 0);
    assert!(
        bm.paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p.ends_with("/invoke"))
    );
    assert_no_phi(&bm.bodies.all_text(), &["Maria Lopez"]);
    // Other embedding models are refused clearly, without a call.
    let r = h
        .client
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": CLAUDE, "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b = r.text().await.unwrap();
    assert_eq!(error_code(&b), "invalid_request");
    assert!(b.contains("not supported"), "{b}");
}

/// A container credentials endpoint (ECS task role / EKS Pod Identity shape) on loopback that
/// requires its authorization token and hands out the mock's key with a session token, valid
/// for an hour. Returns its URL and the number of fetches.
async fn start_credentials_endpoint(up: bool, first_wrong: bool) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let f = fetches.clone();
    let app = Router::new().route(
        "/creds",
        axum::routing::get(move |h: HeaderMap| {
            let f = f.clone();
            async move {
                if !up || h.get("authorization").is_none_or(|v| v != "pod-token") {
                    return axum::http::StatusCode::FORBIDDEN.into_response();
                }
                let n = f.fetch_add(1, Ordering::SeqCst);
                let exp = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
                axum::Json(json!({
                    "AccessKeyId": ACCESS_KEY,
                    "SecretAccessKey": if first_wrong && n == 0 { "revoked-secret" } else { SECRET_KEY },
                    "Token": format!("session-{n}"),
                    "Expiration": exp.format(&time::format_description::well_known::Rfc3339).unwrap(),
                }))
                .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/creds"), fetches)
}

async fn start_bedrock_with_endpoint_credentials(
    up: bool,
    first_wrong: bool,
) -> (Harness, BedrockMock, Arc<AtomicUsize>, tempfile::TempDir) {
    let (bm, endpoint) = start_mock().await;
    let (creds_url, fetches) = start_credentials_endpoint(up, first_wrong).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "pod-token\n").unwrap();
    let keys =
        format!("aws_access_key_id = \"{ACCESS_KEY}\"\naws_secret_access_key = \"{SECRET_KEY}\"\n");
    let endpoint_creds = format!(
        "aws_credentials_url = \"{creds_url}\"\naws_credentials_token_file = \"{}\"\n",
        token_file.display()
    );
    let cfg = config(&endpoint, SECRET_KEY).replacen(&keys, &endpoint_creds, 1);
    assert!(cfg.contains("aws_credentials_url"), "{cfg}");
    let h = start_config(&cfg, Mock::default(), Arc::new(Detector::new())).await;
    (h, bm, fetches, dir)
}

#[tokio::test]
async fn temporary_credentials_from_a_container_endpoint_sign_requests() {
    let (h, bm, fetches, _dir) = start_bedrock_with_endpoint_credentials(true, false).await;
    let key = h.key("clinician");
    for _ in 0..2 {
        let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": NOTE}]});
        let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
        assert_eq!(s, 200, "{b}");
    }
    assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 0);
    // Fetched once (valid for an hour), and its session token is sent and signed.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(
        *bm.session_tokens.lock().unwrap(),
        vec!["session-0", "session-0"]
    );
}

#[tokio::test]
async fn no_credentials_from_the_endpoint_means_nothing_is_sent() {
    let (h, bm, _, _dir) = start_bedrock_with_endpoint_credentials(false, false).await;
    let key = h.key("clinician");
    let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": NOTE}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 502, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["error"]["code"], "upstream_error", "{b}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot authenticate"),
        "{b}"
    );
    assert!(
        bm.bodies.received.lock().unwrap().is_empty(),
        "nothing reached Bedrock"
    );
    assert!(!b.contains(SECRET_KEY) && !b.contains("pod-token"), "{b}");
}

#[tokio::test]
async fn credentials_the_upstream_refuses_are_fetched_again() {
    let (h, bm, fetches, _dir) = start_bedrock_with_endpoint_credentials(true, true).await;
    let key = h.key("clinician");
    let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": "hello"}]});
    let (s, _, b) = h.chat(&key, None, body.clone()).await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 1);
    let (s, _, b) = h.chat(&key, None, body).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

/// The real server with credentials from a `credential_process` command, named in the provider
/// and through a profile of a shared config file: every request is signed with them.
#[tokio::test]
async fn credentials_from_a_process_sign_requests_directly_and_through_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let exp = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let script = dir.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat <<'EOF'\n{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY}\", \"SecretAccessKey\": \"{SECRET_KEY}\", \"SessionToken\": \"proc-session\", \"Expiration\": \"{exp}\"}}\nEOF\n"
        ),
    )
    .unwrap();
    let command = format!("sh '{}'", script.display());
    let profile_file = dir.path().join("config");
    std::fs::write(
        &profile_file,
        format!("[profile bedrock]\nregion = {REGION}\ncredential_process = {command}\n"),
    )
    .unwrap();
    let keys =
        format!("aws_access_key_id = \"{ACCESS_KEY}\"\naws_secret_access_key = \"{SECRET_KEY}\"\n");
    for source in [
        format!("aws_credential_process = \"{command}\"\n"),
        format!(
            "aws_profile = \"bedrock\"\naws_config_file = \"{}\"\n",
            profile_file.display()
        ),
    ] {
        let (bm, endpoint) = start_mock().await;
        let cfg = config(&endpoint, SECRET_KEY).replacen(&keys, &source, 1);
        assert!(cfg.contains(&source), "{cfg}");
        let h = start_config(&cfg, Mock::default(), Arc::new(Detector::new())).await;
        let key = h.key("clinician");
        let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": NOTE}]});
        let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
        assert_eq!(s, 200, "{source}: {b}");
        assert_eq!(bm.bad_signatures.load(Ordering::SeqCst), 0, "{source}");
        assert_eq!(
            *bm.session_tokens.lock().unwrap(),
            vec!["proc-session"],
            "{source}"
        );
        assert_no_phi(&bm.bodies.all_text(), &NOTE_PHI);
    }
}
