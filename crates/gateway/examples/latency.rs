#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Latency the gateway adds, measured on loopback: an open-loop load generator sends
//! chat completions with a ~1,500-character clinical note full of PHI at fixed rates, once
//! directly to a mock OpenAI-compatible upstream and once through the gateway (clinician role:
//! every leaf scanned, PHI tokenized, answer restored, two audit appends per request), and
//! prints p50/p99 of both and the difference. Then time to first token on streams.
//!
//! ```sh
//! cargo run --release -p phiguard-gateway --example latency -- --rates 100,300,1000 --seconds 5 --audit sqlite
//! ```
//! `--audit sqlite` appends to the real tamper-evident store as `phiguard serve` opens it
//! (phiguard-audit, SQLite with the file and payloads encrypted under a local key file,
//! synchronous=FULL) in a temp folder, through the journal `phiguard serve` puts in front of it;
//! `--audit sqlite-plain` to a plaintext one; `--audit sqlite-direct` to the encrypted store
//! without the journal (every group-commit batch a store transaction); `--audit memory` keeps
//! records in memory. `--durability background` runs with `[audit] durability = "background"`
//! (records fsynced right after the answer instead of before it; default `answer`).

/// The allocator the `phiguard` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::post;
use phiguard_gateway::{AuditSink, AuditSinkError, Config, Gateway, KeyStore, MemorySink};
use serde_json::{Value, json};

const NOTE: &str = "DISCHARGE SUMMARY. Patient: Maria Lopez, MRN 4839201, DOB 07/22/1956, admitted 03/14/2021 to Springfield General Hospital under Dr. John Carter. \
Phone 617-555-0199, email maria.lopez@example.org, address 42 Elm Street, Springfield, MA 01103. \
History of present illness: 64-year-old woman with type 2 diabetes mellitus, hypertension and chronic kidney disease stage 3 presenting with three days of progressive dyspnea, orthopnea and bilateral leg swelling. \
On arrival blood pressure 168/94, heart rate 104, oxygen saturation 89% on room air. Chest radiograph showed bilateral pleural effusions and pulmonary vascular congestion. \
BNP 1,840 pg/mL, troponin negative times two. Echocardiogram: ejection fraction 35%, moderate mitral regurgitation. \
Hospital course: diuresed with intravenous furosemide with net negative 4.2 liters, started on carvedilol and sacubitril-valsartan, metformin held for contrast. \
Creatinine peaked at 1.9 and returned to baseline 1.5. Discharged 03/19/2021 in stable condition to home with her daughter Ana Lopez (phone 617-555-0143). \
Follow-up with Dr. Carter in cardiology clinic in one week and with nephrology in four weeks. Medications: carvedilol 6.25 mg twice daily, sacubitril-valsartan 24/26 mg twice daily, \
furosemide 40 mg daily, insulin glargine 18 units nightly. Pending results at discharge: repeat basic metabolic panel and magnesium in three days, and a sleep study referral. Summarize the hospital course for the primary care physician in five sentences.";

/// The store as `phiguard serve` wires it: commits without waiting for the disk, and a WAL
/// syncer that the group commit runs on its own thread.
struct StoreSink(
    Mutex<phiguard_audit::AuditStore>,
    Option<phiguard_audit::WalSyncer>,
);
impl AuditSink for StoreSink {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        self.append_batch(std::slice::from_ref(record))?;
        match &self.1 {
            Some(s) => s.sync().map_err(|_| AuditSinkError("sync failed".into())),
            None => Ok(()),
        }
    }
    fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
        self.0
            .lock()
            .unwrap()
            .append_batch(records)
            .map(|_| ())
            .map_err(|_| AuditSinkError("append failed".into()))
    }
    fn syncer(&self) -> Option<phiguard_gateway::Syncer> {
        let s = self.1.clone()?;
        Some(Box::new(move || {
            s.sync().map_err(|_| AuditSinkError("sync failed".into()))
        }))
    }
}

/// The store behind its journal, as `phiguard serve` wires it.
struct JournalSink(phiguard_audit::JournaledLog);
impl AuditSink for JournalSink {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        self.append_batch(std::slice::from_ref(record))?;
        self.0
            .syncer()
            .sync()
            .map_err(|_| AuditSinkError("sync failed".into()))
    }
    fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
        self.0
            .append_batch(records)
            .map_err(|_| AuditSinkError("append failed".into()))
    }
    fn appends_inline(&self) -> bool {
        true
    }
    fn syncer(&self) -> Option<phiguard_gateway::Syncer> {
        let s = self.0.syncer();
        Some(Box::new(move || {
            s.sync().map_err(|_| AuditSinkError("sync failed".into()))
        }))
    }
}

async fn mock(body: Bytes) -> axum::response::Response {
    let v: Value = serde_json::from_slice(&body).unwrap();
    let stream = v["stream"].as_bool().unwrap_or(false);
    let text = "The patient [[NAME_1]] was admitted on [[DATE_2]] with decompensated heart failure, diuresed 4.2 liters, started on guideline therapy and discharged home in stable condition; follow up with cardiology in one week.";
    if !stream {
        return axum::Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}))
        .into_response();
    }
    let mut out = String::new();
    for w in text.split_inclusive(' ') {
        out.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]})
        ));
    }
    out.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], out).into_response()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Open loop: request i is sent at start + i/rate whatever happened before.
async fn load(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    rate: u32,
    secs: u32,
) -> (Vec<f64>, usize) {
    let n = (rate * secs) as usize;
    let body = json!({"model": "m", "messages": [{"role": "system", "content": "You are a clinical summarizer."}, {"role": "user", "content": NOTE}]});
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(at.into()).await;
        let rb = client
            .post(url)
            .bearer_auth(key)
            .header("X-Patient-Ref", "bench-1")
            .json(&body);
        set.spawn(async move {
            let t = Instant::now();
            let ok = match rb.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (t.elapsed().as_secs_f64() * 1e3, ok)
        });
    }
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (ms, ok) = r.unwrap();
        if ok {
            lat.push(ms);
        } else {
            errors += 1;
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (lat, errors)
}

async fn ttft(client: &reqwest::Client, url: &str, key: &str, n: usize) -> Vec<f64> {
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": NOTE}]});
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut r = client
            .post(url)
            .bearer_auth(key)
            .header("X-Patient-Ref", "bench-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let mut first = None;
        while let Some(chunk) = r.chunk().await.unwrap() {
            let s = String::from_utf8_lossy(&chunk);
            if first.is_none() && s.contains("\"content\":\"") && !s.contains("\"content\":\"\"") {
                first = Some(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        out.push(first.unwrap_or(f64::NAN));
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let rates: Vec<u32> = arg("--rates", "100,300,1000")
        .split(',')
        .map(|r| r.parse().unwrap())
        .collect();
    let secs: u32 = arg("--seconds", "5").parse().unwrap();
    let audit = arg("--audit", "sqlite");
    // `[audit] durability`: "answer" (records fsynced before each answer) or "background".
    let durability = arg("--durability", "answer");

    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(up, Router::new().route("/v1/chat/completions", post(mock)))
            .await
            .unwrap()
    });

    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nplain_http = true\n[providers.local]\nkind = \"openai_compatible\"\nendpoint = \"http://{up_addr}/v1\"\nmodels = [\"m\"]\nprivate = true\n[roles.clinician]\nactions = [\"chat\"]\nmodels = [\"*\"]\nphi = \"full\"\ninput = \"tokenize\"\n[audit]\ndurability = \"{durability}\"\n"
    );
    let config = Config::parse(&cfg, Path::new("bench.toml"), |_| None).unwrap();
    let keys = Arc::new(KeyStore::open(&dir.path().join("keys.db")).unwrap());
    let key = keys.create("clinician", &[], None).unwrap().token;
    // `sqlite-direct`: the encrypted store without the journal (each batch a store commit).
    let direct = audit == "sqlite-direct";
    let audit = if direct { "sqlite" } else { audit.as_str() };
    let sink: Arc<dyn AuditSink> = if audit == "sqlite" || audit == "sqlite-plain" {
        let url = phiguard_audit::StoreUrl::Sqlite(dir.path().join("audit.db"));
        let options = phiguard_audit::Options {
            durability: phiguard_audit::Durability::Normal,
            ..phiguard_audit::Options::default()
        };
        let store = if audit == "sqlite" {
            // The embedded default, as `phiguard serve` opens it: file and payloads encrypted.
            phiguard_audit::AuditStore::open_with_local_key(
                &url,
                options,
                &dir.path().join("kek.json"),
            )
            .unwrap()
            .0
        } else {
            phiguard_audit::AuditStore::open(&url, options).unwrap()
        };
        let store: Arc<dyn AuditSink> = match store {
            // As `phiguard serve` wires it: the journal in front of the store.
            phiguard_audit::AuditStore::Sqlite(log) if !direct => Arc::new(JournalSink(
                phiguard_audit::JournaledLog::start(log, Default::default()).unwrap(),
            )),
            store => {
                let syncer = store.wal_syncer();
                Arc::new(StoreSink(Mutex::new(store), syncer))
            }
        };
        // Group commit, as `phiguard serve` wires it.
        Arc::new(phiguard_gateway::GroupCommit::new(store, 256))
    } else {
        Arc::new(MemorySink::default())
    };
    let gw = Gateway::new(
        config,
        Arc::new(phiguard_detect::Detector::new()),
        keys,
        sink,
    )
    .unwrap();
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g_addr = gl.local_addr().unwrap();
    tokio::spawn(async move {
        phiguard_gateway::serve(gw, gl, std::future::pending())
            .await
            .unwrap()
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let direct = format!("http://{up_addr}/v1/chat/completions");
    let via = format!("http://{g_addr}/v1/chat/completions");
    // Warm up.
    let _ = load(&client, &via, &key, 50, 1).await;
    let _ = load(&client, &direct, &key, 50, 1).await;

    println!(
        "prompt: {} characters; audit: {audit}, durability {durability}; {secs} s per rate; open loop",
        NOTE.chars().count()
    );
    println!(
        "| rate (req/s) | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | gateway errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for rate in rates {
        let (d, de) = load(&client, &direct, &key, rate, secs).await;
        let (g, ge) = load(&client, &via, &key, rate, secs).await;
        let total = (rate * secs) as f64;
        println!(
            "| {rate} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}% |",
            pct(&d, 0.5),
            pct(&d, 0.99),
            pct(&g, 0.5),
            pct(&g, 0.99),
            pct(&g, 0.5) - pct(&d, 0.5),
            pct(&g, 0.99) - pct(&d, 0.99),
            100.0 * ge as f64 / total
        );
        let _ = de;
    }
    let td = ttft(&client, &direct, &key, 100).await;
    let tg = ttft(&client, &via, &key, 100).await;
    println!();
    println!(
        "time to first token (stream, 100 sequential requests): direct p50 {:.2} ms p99 {:.2} ms; gateway p50 {:.2} ms p99 {:.2} ms",
        pct(&td, 0.5),
        pct(&td, 0.99),
        pct(&tg, 0.5),
        pct(&tg, 0.99)
    );
}
