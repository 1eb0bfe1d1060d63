//! Latency of single-record durable appends, as the gateway's audit writer makes them when
//! requests arrive one at a time: the embedded default store (file and payloads encrypted under
//! a local key file, `synchronous=FULL`), one transaction and one fsync per append. Prints
//! p50 / p99 / p99.9 / max and how many appends took over 2 ms (WAL checkpoints, disk stalls).
//!
//! `cargo run --release -p phiguard-audit --example append_latency [-- APPENDS [DIR [MODE]]]`
//!
//! MODE `full` (the default) commits with `synchronous=FULL`; `normal` commits with
//! `synchronous=NORMAL` and never syncs (the commit alone, as a dispatch record waits for it in
//! `phiguard serve`); `sync` commits with `NORMAL` and then fsyncs the WAL through
//! `WalSyncer` (what a completion record waits for, done inline here).

use std::time::Instant;

use phiguard_audit::{AuditLog, Options};
use serde_json::json;

fn record(i: u64) -> serde_json::Value {
    json!({
        "event": "gateway.request",
        "request_id": format!("req_{i:024x}"),
        "actor": {"kind": "service", "id": "key_3f9a1c2b"},
        "patient_ref": "sha256:5d41402abc4b2a76b9719d911017c592",
        "provider": "local-vllm", "model": "local-model", "model_version": "2025-01",
        "action": "summarization", "decision": "allow", "role": "clinician",
        "guards": {"phi": {"NAME": 4, "DATE": 3, "PHONE": 2, "MRN": 1, "LOCATION": 3},
                   "injection": "clean", "input": "tokenized"},
        "started_at": "2026-12-05T01:02:03.456789Z", "stage": "dispatch",
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5000);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mode = args.next().unwrap_or_else(|| "full".into());
    let dir = tempfile::tempdir_in(base)?;
    let mut options = Options::default();
    if mode != "full" {
        options.durability = phiguard_audit::Durability::Normal;
    }
    let (mut log, _) = AuditLog::open_with_local_key(
        &dir.path().join("audit.db"),
        options,
        &dir.path().join("key.json"),
    )?;
    let syncer = log.wal_syncer();
    for i in 0..50 {
        log.append(&record(i))?;
    }
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n as u64 {
        let t = Instant::now();
        log.append(&record(i))?;
        if let Some(s) = syncer.as_ref().filter(|_| mode == "sync") {
            s.sync()?;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = t0.elapsed().as_secs_f64();
    let slow = lat.iter().filter(|&&v| v > 2.0).count();
    let slow_time: f64 = lat.iter().filter(|&&v| v > 2.0).sum();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    println!(
        "{n} appends in {total:.2} s: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; \
         {slow} over 2 ms ({slow_time:.0} ms in all)",
        q(0.5),
        q(0.99),
        q(0.999),
        lat[lat.len() - 1]
    );
    Ok(())
}
