//! Azure OpenAI through the real gateway: a mock Azure resource on loopback that checks the
//! deployment path, `api-version` and the `api-key` header or the Entra ID bearer (from its
//! own token endpoint), then answers like the OpenAI mock (JSON and SSE).

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

use crate::mock::Mock;
use crate::streaming::events;
use crate::*;

const API_VERSION: &str = "2024-10-21";
const API_KEY: &str = "azure-test-key";
const TENANT: &str = "contoso-tenant";
const CLIENT_ID: &str = "app-123";
const CLIENT_SECRET: &str = "entra-secret-value";

#[derive(Clone, Default)]
struct AzureMock {
    chat: Mock,
    deployments: Arc<std::sync::Mutex<Vec<String>>>,
    token_calls: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

fn authorized(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    h("api-key") == Some(API_KEY)
        || h("authorization").is_some_and(|a| a.starts_with("Bearer entra-token-"))
}

async fn deployment_call(
    mock: AzureMock,
    dep: String,
    q: std::collections::HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
    embeddings: bool,
) -> Response {
    if q.get("api-version").map(String::as_str) != Some(API_VERSION) {
        mock.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::BAD_REQUEST, "bad api-version").into_response();
    }
    if !authorized(&headers) {
        mock.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    mock.deployments.lock().unwrap().push(dep);
    if embeddings {
        crate::mock::embed(State(mock.chat), body).await
    } else {
        crate::mock::chat(State(mock.chat), body).await
    }
}

async fn chat(
    State(mock): State<AzureMock>,
    Path(dep): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deployment_call(mock, dep, q, headers, body, false).await
}

async fn embeddings(
    State(mock): State<AzureMock>,
    Path(dep): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deployment_call(mock, dep, q, headers, body, true).await
}

async fn token(
    State(mock): State<AzureMock>,
    Path(tenant): Path<String>,
    body: String,
) -> Response {
    let form: std::collections::HashMap<String, String> = body
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect();
    let n = mock.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let ok = tenant == TENANT
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("scope").map(String::as_str)
            == Some("https://cognitiveservices.azure.com/.default");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("entra-token-{n}")}))
        .into_response()
}

async fn start_mock() -> (AzureMock, String) {
    let mock = AzureMock::default();
    let app = Router::new()
        .route("/openai/deployments/{dep}/chat/completions", post(chat))
        .route("/openai/deployments/{dep}/embeddings", post(embeddings))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (mock, format!("http://{addr}"))
}

fn config(endpoint: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[limits]
upstream_timeout_secs = 5

[providers.azure]
kind = "azure_openai"
endpoint = "{endpoint}"
api_version = "{API_VERSION}"
api_key = "{API_KEY}"
models = ["gpt-4o", "leaky-azure", "text-embedding-3-small"]
deployments = {{ "gpt-4o" = "gpt4o-prod", "leaky-azure" = "leaky-dep", "text-embedding-3-small" = "embed-dep" }}
[providers.azure.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["chat.completions", "embeddings"]

[providers.azure_entra]
kind = "azure_openai"
endpoint = "{endpoint}"
api_version = "{API_VERSION}"
entra_authority = "{endpoint}"
entra_tenant_id = "{TENANT}"
entra_client_id = "{CLIENT_ID}"
entra_client_secret = "{CLIENT_SECRET}"
models = ["gpt-4o-entra"]
deployments = {{ "gpt-4o-entra" = "gpt4o-entra" }}
private = true

[providers.azure_bad_secret]
kind = "azure_openai"
endpoint = "{endpoint}"
api_version = "{API_VERSION}"
entra_authority = "{endpoint}"
entra_tenant_id = "{TENANT}"
entra_client_id = "{CLIENT_ID}"
entra_client_secret = "wrong"
models = ["gpt-4o-bad"]
deployments = {{ "gpt-4o-bad" = "gpt4o-bad" }}
private = true

[providers.azure_bad_key]
kind = "azure_openai"
endpoint = "{endpoint}"
api_version = "{API_VERSION}"
api_key = "not-the-key"
models = ["gpt-4o-badkey"]
deployments = {{ "gpt-4o-badkey" = "gpt4o-badkey" }}
private = true

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

async fn start_azure() -> (Harness, AzureMock) {
    let (am, endpoint) = start_mock().await;
    let h = start_config(
        &config(&endpoint),
        Mock::default(),
        Arc::new(Detector::new()),
    )
    .await;
    (h, am)
}

#[tokio::test]
async fn api_key_deployment_and_version_tokens_round_trip() {
    let (h, am) = start_azure().await;
    let key = h.key("clinician");
    let (s, _, b) = h
        .chat(
            &key,
            Some("p-17"),
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": NOTE}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(am.deployments.lock().unwrap().as_slice(), ["gpt4o-prod"]);
    assert_eq!(am.refused.load(Ordering::SeqCst), 0);
    assert_no_phi(&am.chat.all_text(), &NOTE_PHI);
    let v: Value = serde_json::from_str(&b).unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    for p in NOTE_PHI {
        assert!(text.contains(p), "{p} not restored: {text}");
    }
    // Embeddings go to the embeddings deployment.
    let r = h
        .client
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&key)
        .header("X-Patient-Ref", "p-17")
        .json(&json!({"model": "text-embedding-3-small", "input": "Maria Lopez"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(am.deployments.lock().unwrap().last().unwrap(), "embed-dep");
    assert_no_phi(&am.chat.all_text(), &["Maria Lopez"]);
    // A wrong key: Azure's 401 becomes upstream_error, its body is not relayed.
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": "gpt-4o-badkey", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (502, "upstream_error"));
    assert!(b.contains("401"), "{b}");
}

#[tokio::test]
async fn streams_are_scrubbed_and_tool_arguments_guarded() {
    let (h, _am) = start_azure().await;
    let key = h.key("analyst");
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "leaky-azure", "stream": true, "messages": [{"role": "user", "content": "Any follow-up due?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
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
            "03/14/2021",
            "4839201",
        ],
    );
    let body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": NOTE}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    let (evs, done) = events(&b);
    assert!(done);
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
async fn entra_id_bearer_is_fetched_once_and_bad_credentials_fail_clearly() {
    let (h, am) = start_azure().await;
    let key = h.key("analyst");
    for _ in 0..3 {
        let (s, _, b) = h
            .chat(&key, None, json!({"model": "gpt-4o-entra", "messages": [{"role": "user", "content": "hello"}]}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    assert_eq!(
        am.token_calls.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );
    assert_eq!(am.deployments.lock().unwrap().len(), 3);
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": "gpt-4o-bad", "messages": [{"role": "user", "content": "hello"}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (502, "upstream_error"));
    assert!(b.contains("cannot authenticate"), "{b}");
    assert!(!b.contains("wrong") && !b.contains("invalid_client"), "{b}");
    assert_eq!(
        am.deployments.lock().unwrap().len(),
        3,
        "nothing sent without a token"
    );
}
