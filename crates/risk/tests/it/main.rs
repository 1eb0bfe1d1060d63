#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests of phiguard-risk: hand-computed small tables, errors, the lattice search,
//! and a live comparison with pycanon on ARX's adult.csv.

mod adult;
mod errors;
mod fhir;
mod hand;
mod parquet;
mod props;
mod pycanon;

use std::path::{Path, PathBuf};

/// A file under `tests/data`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The ARX folder of the shared corpora, or `None` (with a note) when absent.
pub fn arx_corpus() -> Option<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/csv/arx");
    if p.join("adult.csv").is_file() {
        Some(p)
    } else {
        eprintln!("note: {} absent, skipping the adult.csv test", p.display());
        None
    }
}

/// Approximate equality for figures computed by different float paths.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}
