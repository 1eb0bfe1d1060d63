#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An open-loop HTTP load generator for `scripts/bench-gateway.sh`: request i is sent at
//! start + i/rate whatever happened before (no coordinated omission, no bursts), and the
//! latency of each is measured from its own send time.
//!
//! ```sh
//! cargo run --release -p phiguard-gateway --example loadgen -- \
//!     --url http://127.0.0.1:8080/v1/chat/completions --body body.json \
//!     --header "Authorization: Bearer pg_…" --rate 1000 --seconds 10
//! ```
//! Prints one line: `rate achieved_rps p50_ms p99_ms errors total`.

use std::time::{Duration, Instant};

fn arg(name: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let url = arg("--url").pop().expect("--url URL");
    let body = std::fs::read(arg("--body").pop().expect("--body FILE")).unwrap();
    let rate: u32 = arg("--rate").pop().map_or(100, |r| r.parse().unwrap());
    let secs: f64 = arg("--seconds").pop().map_or(5.0, |s| s.parse().unwrap());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    for h in arg("--header") {
        let (k, v) = h.split_once(':').expect("--header 'Name: value'");
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            v.trim().parse().unwrap(),
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .default_headers(headers)
        .build()
        .unwrap();
    let n = (f64::from(rate) * secs) as usize;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(at.into()).await;
        let rb = client.post(&url).body(body.clone());
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
    let mut errors = 0usize;
    while let Some(r) = set.join_next().await {
        match r {
            Ok((ms, true)) => lat.push(ms),
            _ => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{rate} {:.0} {:.3} {:.3} {errors} {n}",
        n as f64 / elapsed,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}
