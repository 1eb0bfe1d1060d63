//! Throughput of FHIR de-identification on the shared corpus (or the folders given).
//!
//! `cargo run --release -p phiguard-fhir --example bench_fhir [DIR...]`
//!
//! Prints resources/s and MB/s (best of three runs) with one thread and with `available_parallelism()` threads
//! (files spread over threads with `std::thread::scope`), for the safe-harbor profile as is
//! (narrative and base64 notes through the text detector) and for the same inputs with
//! narratives and attachment data stripped first (the JSON path alone), plus parse and
//! re-serialise only, and both safe-harbor cases again with every Bundle streamed in two passes
//! (`deidentify_seekable` with a size threshold of 0).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use phiguard_deid::DeidKey;
use phiguard_fhir::{FhirDeid, Json};
use phiguard_rules::{Config, Engine, ProfileName, Tally};

fn files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if p.is_dir() {
                stack.push(p);
            } else if (name.ends_with(".json") || name.ends_with(".ndjson"))
                && !name.ends_with("-target.json")
                && !name.starts_with("config-")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Removes `text.div` and attachment `data` (the JSON path without free text); written
/// pretty-printed again like the originals, so only the free text differs.
fn strip(v: &mut Json) {
    match v {
        Json::Obj(m) => {
            m.retain(|(k, x)| !(k == "text" && x.get("div").is_some()) && k != "data");
            m.iter_mut().for_each(|(_, x)| strip(x));
        }
        Json::Arr(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

fn resources(v: &Json) -> usize {
    match v.get("entry") {
        Some(Json::Arr(e)) => e.len(),
        _ => 1,
    }
}

/// Resources as Python's baseline counts them: Bundle entries (1 for a lone resource), and
/// NDJSON lines.
fn count(b: &[u8]) -> usize {
    match Json::from_slice(b) {
        Ok(v) => resources(&v),
        Err(_) => b
            .split(|c| *c == b'\n')
            .filter(|l| Json::from_slice(l).is_ok())
            .count(),
    }
}

fn measure(
    name: &str,
    inputs: &[Vec<u8>],
    counts: &[usize],
    threads: usize,
    job: &(dyn Fn(&[u8]) + Sync),
) {
    let bytes: usize = inputs.iter().map(Vec::len).sum();
    let n: usize = counts.iter().sum();
    // Best of three: the machine is shared, and the best run is the least disturbed one.
    let mut secs = f64::INFINITY;
    for _ in 0..3 {
        let next = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else { break };
                        job(input);
                    }
                });
            }
        });
        secs = secs.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{name:<34} {threads:>2} thread(s): {:>9.0} resources/s {:>7.1} MB/s  ({n} resources, {:.1} MB, {secs:.2}s)",
        n as f64 / secs,
        bytes as f64 / 1e6 / secs,
        bytes as f64 / 1e6
    );
}

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let dirs = if args.is_empty() {
        vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/fhir")]
    } else {
        args
    };
    let paths = files(&dirs);
    if paths.is_empty() {
        eprintln!("no FHIR files under {dirs:?}");
        return;
    }
    let inputs: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let stripped: Vec<Vec<u8>> = inputs
        .iter()
        .filter_map(|b| {
            let mut v = Json::from_slice(b).ok()?;
            strip(&mut v);
            serde_json::to_vec_pretty(&v).ok()
        })
        .collect();
    let config = Config::builtin(ProfileName::SafeHarbor);
    let fhir = FhirDeid::new(&config).unwrap_or_else(|e| panic_free_exit(&e.to_string()));
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deid = |b: &[u8]| {
        let mut t = Tally::default();
        let mut out = Vec::with_capacity(b.len());
        let _ = fhir.deidentify(&engine, b, &mut out, &mut t);
    };
    // Every Bundle streamed in two passes (`deidentify_seekable` below its size threshold).
    let streaming = FhirDeid::new(&config)
        .unwrap_or_else(|e| panic_free_exit(&e.to_string()))
        .with_stream_threshold(0);
    let streamed = |b: &[u8]| {
        let mut t = Tally::default();
        let mut out = Vec::with_capacity(b.len());
        let _ =
            streaming.deidentify_seekable(&engine, std::io::Cursor::new(b), &mut out, &mut t, 1);
    };
    let parse = |b: &[u8]| {
        if let Ok(v) = Json::from_slice(b) {
            let _ = serde_json::to_vec_pretty(&v);
        } else {
            for l in b.split(|c| *c == b'\n') {
                if let Ok(v) = Json::from_slice(l) {
                    let _ = serde_json::to_vec(&v);
                }
            }
        }
    };
    let counts: Vec<usize> = inputs.iter().map(|b| count(b)).collect();
    println!("{} files from {:?}", inputs.len(), dirs);
    let stripped_counts: Vec<usize> = stripped.iter().map(|b| count(b)).collect();
    for threads in [1, parallel] {
        measure(
            "parse + re-serialise only",
            &inputs,
            &counts,
            threads,
            &parse,
        );
        measure(
            "safe-harbor, JSON path only",
            &stripped,
            &stripped_counts,
            threads,
            &deid,
        );
        measure(
            "safe-harbor, with narrative+notes",
            &inputs,
            &counts,
            threads,
            &deid,
        );
        measure(
            "the same, Bundles streamed",
            &inputs,
            &counts,
            threads,
            &streamed,
        );
        measure(
            "JSON path only, Bundles streamed",
            &stripped,
            &stripped_counts,
            threads,
            &streamed,
        );
    }
    // The same resources as one NDJSON export, lines spread over threads inside the file.
    let mut ndjson = Vec::new();
    let mut lines = 0usize;
    for b in &inputs {
        if let Ok(v) = Json::from_slice(b)
            && let Some(Json::Arr(entries)) = v.get("entry")
        {
            for e in entries {
                if let Some(r) = e.get("resource")
                    && serde_json::to_writer(&mut ndjson, r).is_ok()
                {
                    ndjson.push(b'\n');
                    lines += 1;
                }
            }
        }
    }
    let one = [ndjson];
    for threads in [1, parallel] {
        let nd = |b: &[u8]| {
            let mut t = Tally::default();
            let mut out = Vec::with_capacity(b.len());
            let _ = fhir.deidentify_with_threads(&engine, b, &mut out, &mut t, threads);
        };
        measure(
            &format!("NDJSON export, {threads} line thread(s)"),
            &one,
            &[lines],
            1,
            &nd,
        );
    }
}

fn panic_free_exit(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}
