//! Throughput of HL7 v2 de-identification (safe-harbor profile) on the shared corpus:
//! messages/s and MB/s on one thread and on `available_parallelism()` threads (files shared out
//! with `std::thread::scope`), plus the tokenizer alone (parse every segment), and one long
//! stream shared out over the threads by `deidentify_with_threads`.
//!
//! `cargo run --release -p phiguard-hl7 --example bench_hl7 [-- DIR [SECONDS]]`
//! (default DIR: ../shared/corpora/structured/hl7v2 from the workspace root).

/// The allocator the `phiguard` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use phiguard_deid::DeidKey;
use phiguard_hl7::{Hl7Deid, parse_segments};
use phiguard_rules::{Config, Engine, ProfileName, Tally};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "hl7") {
                out.push(p);
            }
        }
    }
}

/// Runs `f` over `inputs` in rounds until `secs` have passed; returns (messages, bytes, seconds).
fn measure(
    inputs: &[Vec<u8>],
    threads: usize,
    secs: f64,
    f: &(dyn Fn(&[u8]) -> u64 + Sync),
) -> (u64, u64, f64) {
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(secs);
    let (msgs, bytes) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let (mut m, mut b) = (0u64, 0u64);
                    while start.elapsed() < deadline {
                        for input in inputs.iter().skip(t).step_by(threads) {
                            m += f(input);
                            b += input.len() as u64;
                        }
                    }
                    (m, b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    (msgs, bytes, start.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/corpora/structured/hl7v2".to_string()),
    );
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let only = args.next();
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .hl7 files under {}", dir.display()).into());
    }
    let inputs: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let total: usize = inputs.iter().map(Vec::len).sum();
    // The same messages as one batch stream (byte order marks dropped, each file ending with a
    // line break), so the per-file cost (buffers, the report's per-file counts) is paid once.
    let mut batch = Vec::with_capacity(total + inputs.len());
    for i in &inputs {
        let body = i.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(i);
        batch.extend_from_slice(body);
        if !body.ends_with(b"\n") && !body.ends_with(b"\r") {
            batch.push(b'\r');
        }
    }
    let batches: Vec<Vec<u8>> = vec![batch; 8];
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config)?;
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
    // One tally per file, as the binary keeps them (merged into the run's report).
    let run = |input: &[u8]| -> u64 {
        let mut tally = Tally::default();
        let mut out = Vec::with_capacity(input.len() + 64);
        match deid.deidentify(&engine, input, &mut out, &mut tally) {
            Ok(()) => tally.records,
            Err(_) => 0,
        }
    };
    let parse = |input: &[u8]| -> u64 {
        parse_segments(input)
            .map(|s| s.iter().filter(|s| &s.id == b"MSH").count() as u64)
            .unwrap_or(0)
    };
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "corpus: {} files, {:.1} KB, {}",
        inputs.len(),
        total as f64 / 1e3,
        dir.display()
    );
    for (label, f) in [
        ("deid safe-harbor", &run as &(dyn Fn(&[u8]) -> u64 + Sync)),
        ("tokenize only", &parse),
    ] {
        let sets: [(&str, &[Vec<u8>]); 2] = [("per file", &inputs), ("one batch", &batches)];
        for (set, data) in sets {
            if only.as_deref().is_some_and(|o| !label.starts_with(o)) {
                continue;
            }
            for threads in [1, n] {
                let (m, b, t) = measure(data, threads, secs, f);
                println!(
                    "{label:18} {set:9} {threads} thread(s): {:>10.0} messages/s  {:>7.2} MB/s",
                    m as f64 / t,
                    b as f64 / t / 1e6
                );
            }
        }
    }
    // One long stream (the batch a hundred times) shared out over the threads by the library
    // (`deidentify_with_threads`, chunks of whole messages), as `phiguard deid` runs one big
    // file.
    if only
        .as_deref()
        .is_none_or(|o| "deid safe-harbor".starts_with(o))
    {
        let long: Vec<Vec<u8>> = vec![batches[0].repeat(100)];
        for threads in [1, n] {
            let stream = |input: &[u8]| -> u64 {
                let mut tally = Tally::default();
                let mut out = Vec::with_capacity(input.len() + 64);
                match deid.deidentify_with_threads(&engine, input, &mut out, &mut tally, threads) {
                    Ok(()) => tally.records,
                    Err(_) => 0,
                }
            };
            let (m, b, t) = measure(&long, 1, secs, &stream);
            println!(
                "{:18} {:9} {threads} thread(s): {:>10.0} messages/s  {:>7.2} MB/s",
                "deid safe-harbor",
                "1 stream",
                m as f64 / t,
                b as f64 / t / 1e6
            );
        }
    }
    Ok(())
}
