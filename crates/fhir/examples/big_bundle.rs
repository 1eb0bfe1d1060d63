//! One big Bundle document, streamed (`deidentify_seekable`, two passes, one entry at a time)
//! and read whole (`deidentify`): throughput and peak resident memory.
//!
//! `cargo run --release -p phiguard-fhir --example big_bundle [MIB] [stream|memory|both] [pretty|compact]`
//!
//! The Bundle (default 1024 MiB) is generated as it is read (`tests/it/synth.rs`: pretty
//! printed, or with `compact` on one line as FHIR servers return it, a Patient every 50
//! entries, Observations with notes), so the disk plays no part and
//! the input never sits in memory unless the path under test puts it there. The output goes to
//! a hasher; with `both`, the two outputs must hash alike. Peak RSS is `VmHWM` from
//! `/proc/self/status`, reset through `/proc/self/clear_refs` before each run (Linux); the
//! streamed run goes first, as memory the allocator keeps after the in-memory run would count
//! against it.

#[path = "../tests/it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::hash::Hasher;
use std::io::Write;
use std::time::Instant;

use phiguard_deid::DeidKey;
use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, Engine, ProfileName, Tally};

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Hashes what is written.
struct Sink {
    h: std::hash::DefaultHasher,
    n: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.h.write(buf);
        self.n += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(
    mode: &str,
    mib: u64,
    compact: bool,
    fhir: &FhirDeid,
    engine: &Engine,
) -> Result<(u64, u64), String> {
    let input = if compact {
        synth::Bundle::compact_of_size(mib << 20)
    } else {
        synth::Bundle::of_size(mib << 20)
    };
    let (len, entries) = (input.len(), input.entries());
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:").unwrap_or(0);
    let mut sink = Sink {
        h: std::hash::DefaultHasher::new(),
        n: 0,
    };
    let mut tally = Tally::default();
    let t = Instant::now();
    let r = match mode {
        "stream" => fhir.deidentify_seekable(engine, input, &mut sink, &mut tally, 1),
        _ => fhir.deidentify(engine, input, &mut sink, &mut tally),
    };
    let secs = t.elapsed().as_secs_f64();
    r.map_err(|e| e.to_string())?;
    let peak = status_kib("VmHWM:").unwrap_or(0);
    println!(
        "{mode:>6}: {:.0} MiB, {entries} entries in {secs:.1} s: {:.1} MB/s, {:.0} resources/s; \
         output {:.0} MiB; RSS before {:.0} MiB, peak {:.0} MiB{}",
        len as f64 / 1048576.0,
        len as f64 / 1e6 / secs,
        tally.records as f64 / secs,
        sink.n as f64 / 1048576.0,
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        if reset {
            ""
        } else {
            " (peak not reset: whole process)"
        },
    );
    Ok((sink.h.finish(), sink.n))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mode = args.get(1).map_or("both", String::as_str);
    let compact = args.get(2).is_some_and(|a| a == "compact");
    let config = Config::builtin(ProfileName::SafeHarbor);
    // Streamed whatever the size (the default streams from `STREAM_THRESHOLD` up).
    let fhir = FhirDeid::new(&config)
        .map_err(|e| e.to_string())?
        .with_stream_threshold(0);
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
    match mode {
        "stream" | "memory" => {
            run(mode, mib, compact, &fhir, &engine)?;
        }
        _ => {
            let a = run("stream", mib, compact, &fhir, &engine)?;
            let b = run("memory", mib, compact, &fhir, &engine)?;
            if a != b {
                return Err("the streamed output differs from the in-memory one".into());
            }
            println!("outputs identical ({} bytes)", a.1);
        }
    }
    Ok(())
}
