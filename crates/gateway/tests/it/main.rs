#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests: the real router on a loopback port, the real detector, a real SQLite key
//! store, against a mock upstream speaking OpenAI's wire format.

mod azure;
mod bedrock;
mod chat;
mod durability;
mod injection;
mod mock;
mod ops;
mod registry;
mod streaming;
mod tls;
mod vertex;

use std::path::Path;
use std::sync::Arc;

use phiguard_detect::{Detector, Span};
use phiguard_gateway::guard::{GuardError, InjectionScreen, PhiScanner};
use phiguard_gateway::{Config, Gateway, KeyStore, MemorySink};
use serde_json::Value;

pub struct Harness {
    pub base: String,
    pub mock: mock::Mock,
    pub sink: Arc<MemorySink>,
    pub keys: Arc<KeyStore>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn date(days_from_today: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days_from_today);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub fn config_text(upstream: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[limits]
max_request_bytes = 65536
upstream_timeout_secs = 5
requests_per_second_per_key = 1
burst_per_key = 40

[providers.private]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["echo", "leaky", "slow"]
private = true

[providers.baa_ok]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["baa-model"]
[providers.baa_ok.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["chat.completions"]

[providers.baa_expired]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["expired-model"]
[providers.baa_expired.baa]
signed = "{long_ago}"
effective = "{long_ago}"
expires = "{today}"
services = ["chat.completions"]

[providers.baa_other_service]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["embed-only-model"]
[providers.baa_other_service.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["embeddings"]

[providers.no_baa]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["nobaa-model"]

[providers.consumer]
kind = "openai_compatible"
endpoint = "https://api.openai.com/v1"
models = ["consumer-model"]
private = true
[providers.consumer.baa]
signed = "{signed}"
effective = "{signed}"
expires = "{future}"
services = ["chat.completions"]

[roles.clinician]
actions = ["chat", "summarization", "embedding"]
models = ["*"]
phi = "full"
input = "tokenize"

[roles.analyst]
actions = ["chat"]
models = ["*"]
phi = "none"
input = "redact"

[roles.blocker]
actions = ["chat"]
models = ["echo"]
phi = "none"
input = "block"

[roles.guarded]
actions = ["chat", "embedding"]
models = ["*"]
phi = "full"
input = "tokenize"
injection = "block"

[roles.unscreened]
actions = ["chat"]
models = ["*"]
phi = "full"
input = "tokenize"
injection = "off"
"#,
        signed = date(-30),
        future = date(365),
        long_ago = date(-400),
        today = date(0),
    )
}

pub async fn start_with(scanner: Arc<dyn PhiScanner>) -> Harness {
    start_config_text(scanner, config_text).await
}

/// Starts a gateway whose config is `text(upstream URL)`, in front of the OpenAI mock.
pub async fn start_config_text(
    scanner: Arc<dyn PhiScanner>,
    text: impl Fn(&str) -> String,
) -> Harness {
    let (mock, upstream) = mock::start().await;
    start_config(&text(&upstream), mock, scanner).await
}

/// The gateway on a loopback port with `config` (the OpenAI mock `mock` is kept in the harness).
pub async fn start_config(config: &str, mock: mock::Mock, scanner: Arc<dyn PhiScanner>) -> Harness {
    start_config_screen(config, mock, scanner, None).await
}

/// As [`start_config_text`], with the injection screen replaced when `screen` is given.
pub async fn start_full(
    scanner: Arc<dyn PhiScanner>,
    screen: Option<Arc<dyn InjectionScreen>>,
    text: impl Fn(&str) -> String,
) -> Harness {
    let (mock, upstream) = mock::start().await;
    start_config_screen(&text(&upstream), mock, scanner, screen).await
}

/// As [`start_config`], with the injection screen replaced when `screen` is given.
pub async fn start_config_screen(
    config: &str,
    mock: mock::Mock,
    scanner: Arc<dyn PhiScanner>,
    screen: Option<Arc<dyn InjectionScreen>>,
) -> Harness {
    let config = Config::parse(config, Path::new("test.toml"), |_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(KeyStore::open(&dir.path().join("keys.db")).unwrap());
    let sink = Arc::new(MemorySink::default());
    let mut gw = Gateway::new(config, scanner, keys.clone(), sink.clone()).unwrap();
    if let Some(s) = screen {
        gw = gw.with_injection_screen(s);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        phiguard_gateway::serve(gw, listener, std::future::pending())
            .await
            .unwrap();
    });
    Harness {
        base: format!("http://{addr}"),
        mock,
        sink,
        keys,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

pub async fn start() -> Harness {
    start_with(Arc::new(Detector::new())).await
}

impl Harness {
    pub fn key(&self, role: &str) -> String {
        self.keys.create(role, &[], None).unwrap().token
    }

    pub async fn chat(
        &self,
        key: &str,
        patient: Option<&str>,
        body: Value,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut rb = self
            .client
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(&body);
        if let Some(p) = patient {
            rb = rb.header("X-Patient-Ref", p);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// Completion records.
    pub fn completes(&self) -> Vec<Value> {
        self.sink
            .records()
            .into_iter()
            .filter(|r| r["phase"] == "complete")
            .collect()
    }
}

/// A scanner that always fails (to check the gateway fails closed).
pub struct BrokenScanner;
impl PhiScanner for BrokenScanner {
    fn scan(&self, _: &str) -> Result<Vec<Span>, GuardError> {
        Err(GuardError("scanner offline".into()))
    }
}

pub const NOTE: &str =
    "Summarize: Maria Lopez was seen on 03/14/2021, MRN 4839201, phone 617-555-0199.";
pub const NOTE_PHI: [&str; 4] = ["Maria Lopez", "03/14/2021", "4839201", "617-555-0199"];

/// The text of `GET /metrics`.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub fn assert_no_phi(text: &str, phi: &[&str]) {
    for p in phi {
        assert!(!text.contains(p), "a PHI value is present: {p}\n{text}");
    }
}

pub fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    assert!(v["error"]["message"].is_string(), "{body}");
    assert!(v["error"]["type"].is_string(), "{body}");
    v["error"]["code"].as_str().unwrap().to_string()
}

/// The real detector, except that it panics on text holding `marker` (to check that a
/// detector crash while filtering an answer fails closed and still leaves an audit record).
pub struct PanicsOn(pub Detector, pub &'static str);
impl PhiScanner for PanicsOn {
    fn scan(&self, text: &str) -> Result<Vec<Span>, GuardError> {
        if text.contains(self.1) {
            panic!("test scanner crash");
        }
        Ok(self.0.detect(text))
    }
}
