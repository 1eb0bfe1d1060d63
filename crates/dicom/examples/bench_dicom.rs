//! Throughput of DICOM de-identification (safe-harbor) over the shared corpus:
//! `cargo run --release -p phiguard-dicom --example bench_dicom [DIR] [--out DIR]`.
//! Prints files/s and MB/s on one thread and on `available_parallelism()` threads, for the
//! in-memory path (`deidentify_bytes`) and the streaming one (`deidentify_stream`, from the
//! bytes to a `Vec`). `examples/stream_dicom.rs` measures one large file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "dcm")
            && !p.to_string_lossy().contains("expected")
        {
            out.push(p);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "../../../shared/corpora/structured/dicom".into());
    let out_dir = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let mut paths = Vec::new();
    walk(Path::new(&dir), &mut paths);
    if paths.is_empty() {
        println!("no .dcm files under {dir}");
        return Ok(());
    }
    let files: Vec<(PathBuf, Vec<u8>)> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok().map(|b| (p.clone(), b)))
        .collect();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let deid = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor))?;
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), EngineOptions::default());
    let mut tally = Tally::default();
    let mut errors = 0;
    for (p, b) in &files {
        match deid.deidentify_bytes(&engine, b, &mut tally) {
            Ok(d) => {
                if let Some(dir) = &out_dir {
                    std::fs::create_dir_all(dir)?;
                    let name = p.file_name().map(|n| n.to_owned()).unwrap_or_default();
                    std::fs::write(dir.join(name), &d.bytes)?;
                }
            }
            Err(e) => {
                errors += 1;
                println!("{}: {e}", p.display());
            }
        }
    }
    println!(
        "{} files ({:.1} MB), {} errors, pixel flags: {:?}",
        files.len(),
        bytes as f64 / 1e6,
        errors,
        tally
            .notes
            .iter()
            .filter(|(k, _)| k.starts_with("dicom_pixels"))
            .collect::<Vec<_>>()
    );
    let rounds = 20;
    let run = |threads: usize, stream: bool| -> f64 {
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (deid, engine, files) = (&deid, &engine, &files);
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for r in 0..rounds {
                        for (i, (_, b)) in files.iter().enumerate() {
                            if (i + r) % threads == t {
                                if stream {
                                    let mut out = Vec::with_capacity(b.len() + 4096);
                                    let _ = deid.deidentify_stream(
                                        engine,
                                        &b[..],
                                        &mut out,
                                        &mut tally,
                                    );
                                } else {
                                    let _ = deid.deidentify_bytes(engine, b, &mut tally);
                                }
                            }
                        }
                    }
                });
            }
        });
        start.elapsed().as_secs_f64()
    };
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (stream, label) in [(false, "in memory"), (true, "streamed ")] {
        for threads in [1, n] {
            let secs = run(threads, stream);
            let total = (files.len() * rounds) as f64;
            println!(
                "{label} {threads} thread(s): {:.0} files/s, {:.1} MB/s",
                total / secs,
                (bytes * rounds) as f64 / 1e6 / secs
            );
        }
    }
    Ok(())
}
