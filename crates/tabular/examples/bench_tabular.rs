//! Throughput of CSV and Parquet de-identification (safe-harbor) on the shared corpus:
//! rows/s and MB/s on one thread and on `available_parallelism()` threads (files spread over
//! threads with `std::thread::scope`).
//!
//! ```sh
//! cargo run --release -p phiguard-tabular --example bench_tabular [CSV_DIR]
//! ```
//! CSV_DIR defaults to `../shared/corpora/structured/csv` (from the repository root); the
//! crate's `tests/data` is used when that is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use phiguard_rules::{Config, Engine, ProfileName, Tally};
use phiguard_tabular::TabularDeid;

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            csv_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
}

struct Input {
    table: String,
    bytes: Vec<u8>,
}

/// Runs every input once per pass over `threads` threads until at least two seconds have
/// passed; returns (rows, bytes, elapsed).
fn measure(
    threads: usize,
    inputs: &[Input],
    run: &(dyn Fn(&Input, &mut Tally) + Sync),
) -> (u64, u64, Duration) {
    let start = Instant::now();
    let (mut rows, mut bytes) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(2) {
        let next = AtomicUsize::new(0);
        let counts: Vec<(u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut tally = Tally::default();
                        let mut b = 0u64;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(input) = inputs.get(i) else { break };
                            run(input, &mut tally);
                            b += input.bytes.len() as u64;
                        }
                        (tally.records, b)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (r, b) in counts {
            rows += r;
            bytes += b;
        }
    }
    (rows, bytes, start.elapsed())
}

fn report(what: &str, threads: usize, (rows, bytes, t): (u64, u64, Duration)) {
    let s = t.as_secs_f64();
    println!(
        "{what:8} {threads:2} thread(s): {:>10.0} rows/s  {:>7.1} MB/s",
        rows as f64 / s,
        bytes as f64 / s / 1e6
    );
}

/// A Parquet copy of a CSV table: columns that parse as timestamps become timestamps, numeric
/// ones Float64, the rest strings.
fn to_parquet(csv_bytes: &[u8], repeat: usize) -> Vec<u8> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let text: ArrayRef = Arc::new(StringArray::from(
            rows.iter()
                .map(|r| Some(r[i].to_string()).filter(|s| !s.is_empty()))
                .collect::<Vec<_>>(),
        ));
        let ts = DataType::Timestamp(TimeUnit::Second, Some("+00:00".into()));
        let typed = [ts, DataType::Float64]
            .into_iter()
            .find_map(|t| cast_with_options(&text, &t, &strict).ok())
            .unwrap_or(text);
        fields.push(Field::new(name, typed.data_type().clone(), true));
        arrays.push(typed);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    for _ in 0..repeat {
        w.write(&batch).unwrap();
    }
    w.close().unwrap();
    out
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpora/structured/csv"));
    let mut files = Vec::new();
    csv_files(&dir, &mut files);
    if files.is_empty() {
        let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        eprintln!(
            "note: no CSV under {}; using {}",
            dir.display(),
            fallback.display()
        );
        csv_files(&fallback, &mut files);
    }
    files.sort();
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            table: phiguard_tabular::table_name(p).unwrap_or_default(),
            bytes: std::fs::read(p).unwrap(),
        })
        .collect();
    let total: usize = inputs.iter().map(|i| i.bytes.len()).sum();
    println!(
        "{} CSV files, {:.1} MB, safe-harbor profile",
        inputs.len(),
        total as f64 / 1e6
    );
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = TabularDeid::new(&config).unwrap();
    let engine = Engine::new(
        phiguard_deid::DeidKey::from_bytes([7; 32]),
        config.engine_options(),
    );
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());

    let csv_run = |input: &Input, tally: &mut Tally| {
        deid.deidentify_table(
            &engine,
            Some(&input.table),
            input.bytes.as_slice(),
            std::io::sink(),
            tally,
        )
        .unwrap();
    };
    report("CSV", 1, measure(1, &inputs, &csv_run));
    report("CSV", n, measure(n, &inputs, &csv_run));

    // Parquet copies of the encounters table (typed dates and numbers), 20 copies each.
    let source = files
        .iter()
        .find(|p| p.file_stem().is_some_and(|s| s == "encounters"))
        .or_else(|| {
            files
                .iter()
                .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        })
        .unwrap();
    let pq = to_parquet(&std::fs::read(source).unwrap(), 20);
    let pq_inputs: Vec<Input> = (0..n.max(2) * 2)
        .map(|_| Input {
            table: phiguard_tabular::table_name(source).unwrap_or_default(),
            bytes: pq.clone(),
        })
        .collect();
    println!(
        "Parquet: {} copies of {} x20 ({:.1} MB each)",
        pq_inputs.len(),
        source.display(),
        pq.len() as f64 / 1e6
    );
    let pq_run = |input: &Input, tally: &mut Tally| {
        let mut out = Vec::new();
        deid.deidentify_parquet(
            &engine,
            Some(&input.table),
            bytes::Bytes::from(input.bytes.clone()),
            &mut out,
            tally,
        )
        .unwrap();
    };
    report("Parquet", 1, measure(1, &pq_inputs, &pq_run));
    report("Parquet", n, measure(n, &pq_inputs, &pq_run));
}
