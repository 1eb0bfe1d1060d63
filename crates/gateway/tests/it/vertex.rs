//! Google Vertex AI through the real gateway: a mock on loopback serving the OAuth token
//! endpoint (it verifies the service-account JWT's RS256 signature, audience, issuer and
//! scope) and Gemini's `generateContent`, `streamGenerateContent?alt=sse` and `predict`, each
//! checking the project, location and the bearer it issued.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use phiguard_detect::Detector;
use serde_json::{Value, json};

use crate::mock::{LEAKY_TEXT, Mock};
use crate::streaming::events;
use crate::*;

const EMAIL: &str = "gateway@test-project.iam.gserviceaccount.com";
const PROJECT: &str = "test-project";
const LOCATION: &str = "us-central1";

/// A throwaway RSA-2048 key generated for these tests only (never used anywhere else).
const SA_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDo5HTWrCfN4Dki\n\
ZdRfS58qtj2XR3I6Jq6H1CKIAYSWpKZ4NxJaB7Bdkycu6SCZA+3eVXsoWk6yOgLg\n\
hpxptTacImp2rADJpe2e9AQyuPoxeXvPUm5sxn4HxzWLdjATSngHD2qnl/XXck4z\n\
PG4rIm+4YfZ7j5+eX+NnWW3VdVKxWafrF2xGIcPvHUqf1qhnrQFdnGKF0tF0Ji96\n\
oPhMo9iEwT7shvNr1bM7rGQS8biG6x9F+3dl59dRlblyePo6QridtcxyY4AhHe6r\n\
tWDh7fm6HOH7n52ZYRJXKKgPI15xQhIh99WggyaxiuUNd2dONN1TafKkpARL29SF\n\
UB0UKdN9AgMBAAECggEAGu1rSvTtx0KRKJaAhyItvZkDpw2mOe4GCQNwmKwgQfC4\n\
pLatYwZ3kGI2yhg/YiHPq4DTtBc4+Sd29LHrvNcsgMID8EOz9Zy/TD0njRvRJc5H\n\
j/GWffI3WTvhx4W7Ske2eA6CxOzvimEXhJoMnOUm6Lk+8Atrp7qrhuQSrHcbwBCG\n\
v78iOwYhoggLNd9fddwTiocxLNzGlsF37jAIWd/8DQwEG4NhgTfmqvfkH6yty2J4\n\
Vp1D2HJ3YJNaEcjY4J/2I8i1pxr0MAh+QNBa83akvOSjtWje5aLp8x8NczEku9b8\n\
xxgLeSwV2Zcbs0J/dBQdo9A8qAPugjq/85R2xVM9IQKBgQD2k0Ox/gzBnv4rm1B1\n\
O3LQUcJzOyiKKJ0XaJTtj2w5P1acIvt2Ir+x7q8VGmkfyEhLXu5cGIIun9Tf/ft6\n\
IpvKvwngaVKvRye1BHV4F6U8yxwBwkudQHtdxHQ6PVQXZqZE2FNe9Nxc+8+iIM3G\n\
hPjVJJtrU5MQQ9j6c97wwWanLQKBgQDxy042kYRJ+xBVF5e0rT9/wpDAUBbUMO2y\n\
ed4CdxHjPnRpRMXz0GlwZ5Nf+p4z5YeXEjlU4WDeFsKrO82Y6GkHDDNuxQ3vLFar\n\
ZPpsUXxE4U7dA0VLe68+BeRdzC5zP6jFZXPuJB/EvNgwE8uBpr0L6xt5IrpqBGvY\n\
248gvg+PkQKBgCkS7PLoc+2I86QF8kglCAIlrHOPhjhFfa2ZkT1lZ8y9fUrzFNpf\n\
/XjBXs7wIFTYAxrzDFexCXaEz2wkndCBlVwXqKiGQuzJuJaR0JOZtL/EwbyVRg1C\n\
4YoEIKxW7Pwc8FOFiZXGyjJ/C95hAoYwPlcbCvy85kGOW8WUqa2HOfddAoGABMrl\n\
0vkRaTH7weQE0sT4VDz0B4vO2AfcPkRiHSRlC18KiaeeUNXZsSusZSOfjSHIjTsE\n\
PeV1uRE0bJZz3csFgelA/7oSK6JyWVVYDVuUHf1lRcYx0mwyLgWJ4D4S0Z/6ZWc8\n\
ZAT9SDYCBvntd7VpW9oeIkmI7l8GEDdR3/FEd7ECgYAeiSD42SfGGa8Szx5VbbSU\n\
LfdGOwo2ZsHy52HFWDhwzXE9aQl691vTNrKGU4BdH7nY7YL7xtyMd2z4rmZ4HYOV\n\
/1eWw9vDDoi1lJxoPIXr5lsC0sq1BgxC+mJaGbiCK7+0DLi5gkZeF5vXJ/P6kuKp\n\
KdBblrsjDTuFFxxb4MjkGw==\n\
-----END PRIVATE KEY-----\n\
";
const SA_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6OR01qwnzeA5ImXUX0uf\n\
KrY9l0dyOiauh9QiiAGElqSmeDcSWgewXZMnLukgmQPt3lV7KFpOsjoC4IacabU2\n\
nCJqdqwAyaXtnvQEMrj6MXl7z1JubMZ+B8c1i3YwE0p4Bw9qp5f113JOMzxuKyJv\n\
uGH2e4+fnl/jZ1lt1XVSsVmn6xdsRiHD7x1Kn9aoZ60BXZxihdLRdCYveqD4TKPY\n\
hME+7Ibza9WzO6xkEvG4husfRft3ZefXUZW5cnj6OkK4nbXMcmOAIR3uq7Vg4e35\n\
uhzh+5+dmWESVyioDyNecUISIffVoIMmsYrlDXdnTjTdU2nypKQES9vUhVAdFCnT\n\
fQIDAQAB\n\
-----END PUBLIC KEY-----\n\
";

#[derive(Clone, Default)]
struct VertexMock {
    bodies: Mock,
    calls: Arc<std::sync::Mutex<Vec<String>>>,
    token_calls: Arc<AtomicUsize>,
    keyfile_token_calls: Arc<AtomicUsize>,
    bad_auth: Arc<AtomicUsize>,
    token_uri: Arc<std::sync::Mutex<String>>,
}

fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

async fn token(State(mock): State<VertexMock>, body: String) -> Response {
    let n = mock.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let aud = mock.token_uri.lock().unwrap().clone();
    let ok = form_value(&body, "grant_type").as_deref()
        == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        && form_value(&body, "assertion").is_some_and(|a| {
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            validation.set_audience(&[aud.as_str()]);
            validation.set_issuer(&[EMAIL]);
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(SA_PUBLIC_KEY.as_bytes()).unwrap();
            match jsonwebtoken::decode::<Value>(&a, &key, &validation) {
                Ok(d) => {
                    d.claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
                        && d.header.kid.as_deref() == Some("kid-1")
                }
                Err(_) => false,
            }
        });
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": format!("vertex-token-{n}"), "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

async fn keyfile_token(State(mock): State<VertexMock>) -> Response {
    mock.keyfile_token_calls.fetch_add(1, Ordering::SeqCst);
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

fn last_user_text(body: &Value) -> String {
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    let Some(c) = contents.iter().rev().find(|c| c["role"] == "user") else {
        return String::new();
    };
    c["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn sse(v: &Value) -> String {
    format!("data: {v}\r\n\r\n")
}

async fn model_call(
    State(mock): State<VertexMock>,
    Path((project, location, model_method)): Path<(String, String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !bearer.starts_with("Bearer vertex-token-") || project != PROJECT || location != LOCATION {
        mock.bad_auth.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    let (model, method) = model_method.split_once(':').unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    mock.bodies.received.lock().unwrap().push(body.clone());
    mock.calls.lock().unwrap().push(format!("{model}:{method}"));
    if method == "predict" {
        let preds: Vec<Value> = body["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|_| json!({"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 2.0, "truncated": false}}}))
            .collect();
        return axum::Json(json!({"predictions": preds})).into_response();
    }
    let text = if model.starts_with("gemini-leaky") {
        LEAKY_TEXT.to_string()
    } else {
        format!("You said: {} [[NAME_9]]", last_user_text(&body))
    };
    let tool = body.get("tools").is_some();
    let usage = json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15});
    if method == "generateContent" {
        let part = if tool {
            json!({"functionCall": {"name": "lookup", "args": {"query": text}}})
        } else {
            json!({"text": text})
        };
        return axum::Json(json!({
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model
        }))
        .into_response();
    }
    assert_eq!(method, "streamGenerateContent");
    assert_eq!(q.get("alt").map(String::as_str), Some("sse"));
    let mut out = String::new();
    if tool {
        out.push_str(&sse(&json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "lookup", "args": {"query": text}}}]}, "finishReason": "STOP"}],
            "usageMetadata": usage})));
    } else {
        let mut pieces = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            cur.push(c);
            if cur.len() >= 3 {
                pieces.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            pieces.push(cur);
        }
        let last = pieces.len() - 1;
        for (i, p) in pieces.iter().enumerate() {
            let mut ev =
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}}]});
            if i == last {
                ev["candidates"][0]["finishReason"] = json!("STOP");
                ev["usageMetadata"] = usage.clone();
            }
            out.push_str(&sse(&ev));
        }
        if model == "gemini-cut" {
            // The stream stops before the finish reason.
            let cut = out.rfind("data: ").unwrap();
            out.truncate(cut);
        }
    }
    ([("content-type", "text/event-stream")], out).into_response()
}

async fn start_mock() -> (VertexMock, String) {
    let mock = VertexMock::default();
    let app = Router::new()
        .route("/token", post(token))
        .route("/keyfile-token", post(keyfile_token))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{model_method}",
            post(model_call),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let base = format!("http://{addr}");
    *mock.token_uri.lock().unwrap() = format!("{base}/token");
    (mock, base)
}

async fn start_vertex() -> (Harness, VertexMock, tempfile::TempDir) {
    let (vm, endpoint) = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    // The key file names another token URI; the config's token_uri replaces it.
    std::fs::write(
        &key_file,
        json!({"type": "service_account", "project_id": PROJECT, "private_key_id": "kid-1",
               "private_key": SA_PRIVATE_KEY, "client_email": EMAIL,
               "token_uri": format!("{endpoint}/keyfile-token")})
        .to_string(),
    )
    .unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[limits]
upstream_timeout_secs = 5

[providers.vertex]
kind = "vertex"
endpoint = "{endpoint}"
project = "{PROJECT}"
location = "{LOCATION}"
service_account_file = "{key}"
token_uri = "{endpoint}/token"
models = ["gemini-2.0-flash", "gemini-leaky", "gemini-cut", "text-embedding-005"]
[providers.vertex.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["chat.completions", "embeddings"]

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
        key = key_file.display(),
        signed = date(-30),
        future = date(365),
    );
    let h = start_config(&config, Mock::default(), Arc::new(Detector::new())).await;
    (h, vm, dir)
}

#[tokio::test]
async fn plain_chat_with_a_cached_service_account_token() {
    let (h, vm, _dir) = start_vertex().await;
    let key = h.key("clinician");
    for _ in 0..2 {
        let body = json!({"model": "gemini-2.0-flash", "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": NOTE}]});
        let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
        assert_eq!(s, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        for p in NOTE_PHI {
            assert!(text.contains(p), "{p} not restored: {text}");
        }
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["prompt_tokens"], 10);
    }
    assert_eq!(
        vm.token_calls.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );
    assert_eq!(vm.keyfile_token_calls.load(Ordering::SeqCst), 0);
    assert_eq!(vm.bad_auth.load(Ordering::SeqCst), 0);
    let sent = vm.bodies.last();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 50);
    assert_no_phi(&vm.bodies.all_text(), &NOTE_PHI);
    assert_eq!(
        vm.calls.lock().unwrap().as_slice(),
        [
            "gemini-2.0-flash:generateContent",
            "gemini-2.0-flash:generateContent"
        ]
    );
}

#[tokio::test]
async fn tool_calls_map_both_ways_and_are_guarded() {
    let (h, vm, _dir) = start_vertex().await;
    let key = h.key("analyst");
    let tools = json!([{"type": "function", "function": {"name": "lookup", "description": "find",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]);
    let (s, _, b) = h
        .chat(&key, Some("p-17"), json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": NOTE}], "tools": tools}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        vm.bodies.last()["tools"][0]["functionDeclarations"][0]["name"],
        "lookup"
    );
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "lookup");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["query"].as_str().unwrap().contains("[NAME]"), "{args}");
    assert_no_phi(&b, &NOTE_PHI);
    // The result goes back as a functionResponse named after the call.
    let body = json!({"model": "gemini-2.0-flash", "tools": tools, "messages": [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "found"}]});
    let (s, _, b) = h.chat(&key, None, body).await;
    assert_eq!(s, 200, "{b}");
    let sent = vm.bodies.last();
    assert_eq!(sent["contents"][1]["role"], "model");
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "lookup", "response": {"content": "found"}})
    );
    // Streamed function calls are guarded too.
    let (s, _, b) = h
        .chat(&key, Some("p-17"), json!({"model": "gemini-2.0-flash", "stream": true, "messages": [{"role": "user", "content": NOTE}], "tools": tools}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (evs, done) = events(&b);
    assert!(done, "{b}");
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
}

#[tokio::test]
async fn sse_stream_phi_split_across_events_is_scrubbed() {
    let (h, vm, _dir) = start_vertex().await;
    let key = h.key("analyst");
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "gemini-leaky", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Any follow-up due?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        vm.calls.lock().unwrap().as_slice(),
        ["gemini-leaky:streamGenerateContent"]
    );
    let (evs, done) = events(&b);
    assert!(done, "{b}");
    let text: String = evs
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
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
    assert!(evs.iter().any(|e| e["usage"]["total_tokens"] == 15), "{b}");
    // A stream cut before its finish reason is an upstream error, not a silent end.
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "gemini-cut", "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
        .await;
    assert_eq!(s, 200);
    let (evs, done) = events(&b);
    assert!(!done, "{b}");
    assert_eq!(
        evs.last().unwrap()["error"]["code"],
        "upstream_error",
        "{b}"
    );
}

#[tokio::test]
async fn embeddings_through_predict() {
    let (h, vm, _dir) = start_vertex().await;
    let key = h.key("clinician");
    let r = h
        .client
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&key)
        .header("X-Patient-Ref", "p-17")
        .json(&json!({"model": "text-embedding-005", "input": ["Maria Lopez has asthma", "plain"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    assert_eq!(vm.bodies.last()["instances"].as_array().unwrap().len(), 2);
    assert_no_phi(&vm.bodies.all_text(), &["Maria Lopez"]);
}
