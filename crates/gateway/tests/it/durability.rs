//! `[audit] durability`: whether a request waits for the disk before its answer. The gateway
//! runs over `GroupCommit` and a journal-like sink whose fsync is held at a gate.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use phiguard_detect::Detector;
use phiguard_gateway::{AuditSink, AuditSinkError, Config, Gateway, GroupCommit, KeyStore, Syncer};
use serde_json::{Value, json};

use crate::*;

/// Appends on the caller's thread to a volatile list; its sync moves them to the durable list
/// once the gate is open.
#[derive(Default, Clone)]
struct GatedDisk {
    volatile: Arc<Mutex<Vec<Value>>>,
    durable: Arc<Mutex<Vec<Value>>>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl GatedDisk {
    fn open_gate(&self) {
        *self
            .gate
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.gate.1.notify_all();
    }
}

/// Opens the gate when dropped, so that a failed assertion does not leave the runtime's
/// shutdown waiting on a sync stuck at the gate.
struct OpenOnDrop(GatedDisk);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open_gate();
    }
}

impl AuditSink for GatedDisk {
    fn append(&self, _: &Value) -> Result<(), AuditSinkError> {
        Err(AuditSinkError("group commit writes batches".into()))
    }
    fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
        self.volatile.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
    fn syncer(&self) -> Option<Syncer> {
        let disk = self.clone();
        Some(Box::new(move || {
            let (lock, cv) = &*disk.gate;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            let mut v = disk.volatile.lock().unwrap();
            disk.durable.lock().unwrap().extend(v.drain(..));
            Ok(())
        }))
    }
    fn appends_inline(&self) -> bool {
        true
    }
}

/// A gateway with `[audit] durability = durability` over a disk whose syncs are held.
async fn start_gated(durability: &str) -> (String, String, GatedDisk, mock::Mock) {
    let (mock, upstream) = mock::start().await;
    let text = format!(
        "{}\n[audit]\ndurability = \"{durability}\"\n",
        config_text(&upstream)
    );
    let config = Config::parse(&text, Path::new("test.toml"), |_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(KeyStore::open(&dir.path().join("keys.db")).unwrap());
    let key = keys.create("clinician", &[], None).unwrap().token;
    let disk = GatedDisk::default();
    let sink = Arc::new(GroupCommit::new(Arc::new(disk.clone()), 64));
    let gw = Gateway::new(config, Arc::new(Detector::new()), keys, sink).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _dir = dir;
        phiguard_gateway::serve(gw, listener, std::future::pending())
            .await
            .unwrap();
    });
    (format!("http://{addr}"), key, disk, mock)
}

fn body() -> Value {
    json!({"model": "echo", "messages": [{"role": "user", "content": "Summarize: Maria Lopez, MRN 4839201, seen 03/14/2021."}]})
}

/// Polls `cond` for up to 30 s (the caller asserts what it waited for).
async fn eventually(cond: impl Fn() -> bool) {
    for _ in 0..3000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn unsynced_gauge(client: &reqwest::Client, base: &str) -> u64 {
    let text = metrics_text(client, base).await;
    text.lines()
        .find_map(|l| l.strip_prefix("phiguard_gateway_audit_unsynced "))
        .unwrap_or_else(|| panic!("no unsynced gauge: {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_answer_waits_for_the_disk() {
    let (base, key, disk, _mock) = start_gated("answer").await;
    let _open = OpenOnDrop(disk.clone());
    let client = reqwest::Client::new();
    let request = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .header("X-Patient-Ref", "p-1")
        .json(&body())
        .send();
    let request = tokio::spawn(request);
    // Both records are written; the answer waits for their sync.
    eventually(|| disk.volatile.lock().unwrap().len() == 2 || request.is_finished()).await;
    assert_eq!(disk.volatile.lock().unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !request.is_finished(),
        "the answer came before its records were on disk"
    );
    assert!(disk.durable.lock().unwrap().is_empty());
    disk.open_gate();
    let r = request.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(disk.durable.lock().unwrap().len(), 2);
    assert_eq!(unsynced_gauge(&client, &base).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_background_the_answer_waits_only_for_the_write() {
    let (base, key, disk, _mock) = start_gated("background").await;
    let _open = OpenOnDrop(disk.clone());
    let client = reqwest::Client::new();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .header("X-Patient-Ref", "p-1")
            .json(&body())
            .send(),
    )
    .await
    .expect("the answer waited for the stuck disk")
    .unwrap();
    assert_eq!(r.status(), 200);
    // Both records were written before the answer; neither is on disk yet, and the gauge
    // counts them.
    let written: Vec<Value> = disk.volatile.lock().unwrap().clone();
    let phases: Vec<&str> = written.iter().filter_map(|r| r["phase"].as_str()).collect();
    assert_eq!(phases, ["dispatch", "complete"]);
    assert!(disk.durable.lock().unwrap().is_empty());
    assert_eq!(unsynced_gauge(&client, &base).await, 2);
    // The sync runs without anyone waiting for it.
    disk.open_gate();
    eventually(|| disk.durable.lock().unwrap().len() == 2).await;
    assert_eq!(disk.durable.lock().unwrap().len(), 2);
    let mut gauge = unsynced_gauge(&client, &base).await;
    for _ in 0..3000 {
        if gauge == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        gauge = unsynced_gauge(&client, &base).await;
    }
    assert_eq!(gauge, 0);
}
