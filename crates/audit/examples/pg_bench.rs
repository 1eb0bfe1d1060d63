//! Durable appends per second on PostgreSQL with group commit, against the embedded SQLite
//! store measured in the same run (the ratio is what to compare across machines).
//!
//! `cargo run --release -p phiguard-audit --example pg_bench -- [ADMIN_URL] [RECORDS] [BATCH]`
//! (default ADMIN_URL: $PHIGUARD_TEST_PG_URL, else postgres://postgres@127.0.0.1:5432/test).
//! A database `phiguard_bench_<random>` is created for the run and dropped at its end.

use std::time::Instant;

use phiguard_audit::{AuditLog, Options, PgAuditLog};
use serde_json::{Value, json};

fn record(i: u64) -> Value {
    json!({
        "kind": "ai_request",
        "user": format!("svc-notes-{}", i % 50),
        "patient_ref": format!("pref-{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "model": "gpt-4o",
        "action": "summarization",
        "decision": "allow",
        "request_id": format!("req-{i:012}"),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let admin_url = args
        .next()
        .or_else(|| std::env::var("PHIGUARD_TEST_PG_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let records: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let batch: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let recs: Vec<Value> = (0..records).map(record).collect();

    // SQLite, same records, same batches.
    let dir = tempfile::tempdir()?;
    let mut lite = AuditLog::open_with(&dir.path().join("bench.db"), Options::default())?;
    let t = Instant::now();
    for chunk in recs.chunks(batch as usize) {
        lite.append_batch(chunk)?;
    }
    let lite_rate = records as f64 / t.elapsed().as_secs_f64();
    drop(lite);

    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)?;
    let mut random = [0u8; 4];
    getrandom::getrandom(&mut random).map_err(|e| format!("getrandom: {e}"))?;
    let name = format!("phiguard_bench_{}", hex::encode(random));
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let (prefix, _) = admin_url
        .rsplit_once('/')
        .ok_or("the admin URL has no database name")?;
    let url = format!("{prefix}/{name}");
    let result = (|| -> Result<(f64, f64), Box<dyn std::error::Error>> {
        let mut pg = PgAuditLog::connect(&url, Options::default())?;
        let t = Instant::now();
        for chunk in recs.chunks(batch as usize) {
            pg.append_batch(chunk)?;
        }
        let group = records as f64 / t.elapsed().as_secs_f64();
        let single_n = 500u64.min(records);
        let t = Instant::now();
        for r in recs.iter().take(single_n as usize) {
            pg.append(r)?;
        }
        Ok((group, single_n as f64 / t.elapsed().as_secs_f64()))
    })();
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
    let (pg_group, pg_single) = result?;
    println!("records {records}, batch {batch}");
    println!("sqlite group commit      {lite_rate:>10.0} records/s");
    println!(
        "postgres group commit    {pg_group:>10.0} records/s  ({:.2}x sqlite)",
        pg_group / lite_rate
    );
    println!("postgres one per commit  {pg_single:>10.0} records/s");
    Ok(())
}
