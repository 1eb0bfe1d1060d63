//! A fixed amount of HL7 v2 de-identification work (safe-harbor profile), for instruction
//! counts that do not depend on time or machine load:
//!
//! ```sh
//! cargo build --release -p phiguard-hl7 --example profile_hl7
//! valgrind --tool=callgrind --toggle-collect='*Hl7Deid*deidentify*' \
//!     target/release/examples/profile_hl7 ../shared/corpora/structured/hl7v2 3
//! ```
//! Each round de-identifies every `.hl7` file under DIR once as its own input, then all of
//! them once as one stream (a third argument, `files` or `batch`, keeps one of the two).
//! Prints the messages processed, so instructions per message can be worked out from
//! callgrind's total, and digests of every output byte and of every report, so a faster version
//! can be checked to write exactly the same files and counts.

/// The allocator the `phiguard` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

use phiguard_deid::DeidKey;
use phiguard_hl7::Hl7Deid;
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/corpora/structured/hl7v2".to_string()),
    );
    let rounds: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    // `files` or `batch` profiles one half alone (the digests then differ from a full run's).
    let only = args.next();
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    paths.sort();
    let inputs: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mut batch = Vec::new();
    for i in &inputs {
        let body = i.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(i);
        batch.extend_from_slice(body);
        if !body.ends_with(b"\n") && !body.ends_with(b"\r") {
            batch.push(b'\r');
        }
    }
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config)?;
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
    let mut messages = 0u64;
    // A digest of every output, to check that a faster version writes the same bytes.
    let mut digest = std::hash::DefaultHasher::new();
    // And of every report (its counts, notes and categories), to check they are the same too.
    let mut report = std::hash::DefaultHasher::new();
    for round in 0..rounds {
        let files = only.as_deref() != Some("batch");
        let whole = only.as_deref() != Some("files");
        let set = inputs.iter().filter(|_| files);
        for input in set.chain(std::iter::once(&batch).filter(|_| whole)) {
            let mut tally = Tally::default();
            let mut out = Vec::with_capacity(input.len() + 64);
            deid.deidentify(&engine, &input[..], &mut out, &mut tally)?;
            std::hash::Hash::hash(&out, &mut digest);
            if round == 0 {
                // Once: formatting reports would weigh in a profile of the whole program.
                std::hash::Hash::hash(&format!("{tally:?}"), &mut report);
            }
            messages += tally.records;
        }
    }
    println!(
        "{messages} messages in {rounds} rounds; output digest {:016x}, report digest {:016x}",
        std::hash::Hasher::finish(&digest),
        std::hash::Hasher::finish(&report)
    );
    Ok(())
}
