//! Quick single-thread throughput probe: `cargo run --release --example throughput -- FILE.jsonl...`
//! (the full benchmark is `phiguard bench`).
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let det = phiguard_detect::Detector::new();
    for path in std::env::args().skip(1) {
        let mut texts = Vec::new();
        for line in std::fs::read_to_string(&path)?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                texts.push(t.to_string());
            }
        }
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        let mut n = 0usize;
        let start = Instant::now();
        let mut rounds = 0;
        // ROUNDS=N runs a fixed number of passes (for instruction counts under callgrind)
        let fixed: Option<usize> = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok());
        while fixed.map_or(start.elapsed().as_secs_f64() < 2.0, |f| rounds < f) {
            for t in &texts {
                n += det.detect(t).len();
            }
            rounds += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{path}: {:.1} M chars/s ({rounds} rounds, {n} spans)",
            (chars * rounds) as f64 / secs / 1e6
        );
    }
    Ok(())
}
