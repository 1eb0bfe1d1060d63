//! Trains the embedded model and writes `crates/injection/data/model.bin`.
//!
//! ```sh
//! cargo run --release -p phiguard-injection --example train -- ../shared/corpora/injection/dev.jsonl
//! ```
//!
//! Deterministic: the same corpus gives the same bytes (fixed seeds, single thread).

#[path = "support/corpus.rs"]
mod common;

use std::path::PathBuf;

use phiguard_injection::SIGNALS;
use phiguard_injection::train::{Settings, train};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().ok_or("usage: train CORPUS.jsonl [OUT]")?);
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/model.bin"));
    let items = common::load(&corpus)?;
    let data: Vec<(&str, bool, &str)> = items
        .iter()
        .map(|i| (i.text.as_str(), i.injection, i.source.as_str()))
        .collect();
    let settings = Settings::default();
    let model = train(&data, settings);
    let bytes = model.to_bytes();
    std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let pos = items.iter().filter(|i| i.injection).count();
    println!(
        "trained on {} texts ({} injection, {} benign); threshold {:.4}; wrote {} bytes to {}",
        items.len(),
        pos,
        items.len() - pos,
        model.threshold,
        bytes.len(),
        out.display()
    );
    for (i, s) in SIGNALS.iter().enumerate() {
        println!("  signal weight {s:<26} {:+.3}", model.signal_weight(i));
    }
    Ok(())
}
