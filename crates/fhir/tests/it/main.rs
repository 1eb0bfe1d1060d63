#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests for phiguard-fhir: leaks over every corpus file, structure, keys, rules,
//! malformed input.

mod golden;
mod keys;
mod leak;
mod malformed;
mod rules;
mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use phiguard_deid::DeidKey;
use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};
use serde_json::Value;

/// One engine per key byte for the whole test binary (building the detector is not free).
/// Every config in these tests uses the default text profile.
pub fn engine(key: u8, config: &Config) -> &'static Engine {
    static ENGINES: Mutex<BTreeMap<u8, &'static Engine>> = Mutex::new(BTreeMap::new());
    let mut map = ENGINES.lock().unwrap();
    map.entry(key).or_insert_with(|| {
        let today = time::Date::from_calendar_date(2026, time::Month::December, 4).unwrap();
        Box::leak(Box::new(Engine::new(
            DeidKey::from_bytes([key; 32]),
            EngineOptions {
                today,
                ..config.engine_options()
            },
        )))
    })
}

/// De-identifies `input` with `config` and key byte `key`.
pub fn run(config: &Config, key: u8, input: &[u8]) -> (Vec<u8>, Tally) {
    let fhir = FhirDeid::new(config).unwrap();
    let e = engine(key, config);
    let mut out = Vec::new();
    let mut tally = Tally::default();
    fhir.deidentify(e, input, &mut out, &mut tally).unwrap();
    (out, tally)
}

pub fn run_profile(p: ProfileName, key: u8, input: &[u8]) -> Vec<u8> {
    run(&Config::builtin(p), key, input).0
}

/// Every resource document of `v` (one value, or NDJSON lines).
pub fn parse_all(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes)
        .unwrap()
        .trim_start_matches('\u{feff}');
    match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/fhir")
}

/// FHIR inputs: the fixtures, and the shared corpus when present (not the anonymizer's
/// expected outputs or configs).
pub fn inputs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![data_dir()];
    let corpus = corpus_dir();
    if corpus.is_dir() {
        dirs.push(corpus);
    } else {
        eprintln!(
            "note: {} absent; only the fixtures are tested",
            corpus.display()
        );
    }
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let json = name.ends_with(".json") || name.ends_with(".ndjson");
            if json && !name.ends_with("-target.json") && !name.starts_with("config-") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}
