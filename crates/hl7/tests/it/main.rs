#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests for phiguard-hl7.

mod keys;
mod leak;
mod malformed;
mod properties;
mod structure;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use phiguard_deid::DeidKey;
use phiguard_hl7::Hl7Deid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

/// An engine with a fixed key and a fixed "today" (ages over 89 are computed against it); built
/// once per key byte (building the detector is slow in debug builds).
pub fn engine(key: u8, _config: &Config) -> &'static Engine {
    static ENGINES: [OnceLock<Engine>; 16] = [const { OnceLock::new() }; 16];
    ENGINES[usize::from(key % 16)].get_or_init(|| {
        let today = time::Date::from_calendar_date(2026, time::Month::December, 4).unwrap();
        Engine::new(
            DeidKey::from_bytes([key; 32]),
            EngineOptions {
                today,
                ..EngineOptions::default()
            },
        )
    })
}

/// De-identifies `input` with `config` and key byte `key`.
pub fn run_with(config: &Config, key: u8, input: &[u8]) -> (Vec<u8>, Tally) {
    let deid = Hl7Deid::new(config).unwrap();
    let e = engine(key, config);
    let mut out = Vec::new();
    let mut tally = Tally::default();
    deid.deidentify(e, input, &mut out, &mut tally).unwrap();
    (out, tally)
}

pub fn run(profile: ProfileName, key: u8, input: &[u8]) -> (Vec<u8>, Tally) {
    run_with(&Config::builtin(profile), key, input)
}

/// The fixtures in tests/data.
pub fn fixtures() -> Vec<PathBuf> {
    hl7_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"))
}

/// Every `.hl7` file under `dir` (sorted), or none when it is absent.
pub fn hl7_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(hl7_files(&p));
        } else if p.extension().is_some_and(|x| x == "hl7") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The shared corpus, when present (CI puts `shared` beside the clone).
pub fn corpus() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/hl7v2");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {} is absent; corpus tests skipped", dir.display());
        None
    }
}

/// Fixtures plus the corpus files.
pub fn all_files() -> Vec<PathBuf> {
    let mut v = fixtures();
    if let Some(c) = corpus() {
        v.extend(hl7_files(&c));
    }
    v
}
