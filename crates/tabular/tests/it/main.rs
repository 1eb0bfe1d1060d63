#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests for phiguard-tabular.

mod keys;
mod leak;
mod malformed;
#[cfg(feature = "parquet")]
mod parquet;
mod structure;
mod suggest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use phiguard_deid::DeidKey;
use phiguard_rules::{Config, Engine, ProfileName, Tally};
use phiguard_tabular::{TabularDeid, TabularError};

/// The day ages are computed against, fixed so results do not drift.
pub fn today() -> time::Date {
    time::Date::from_calendar_date(2026, time::Month::December, 4).unwrap()
}

/// The engine for `key` (built once per key: building the detector is the slow part in debug
/// builds). The tests' configs keep the default text profile, so the key is all that varies.
pub fn engine_for(key: u8, config: &Config) -> Arc<Engine> {
    static ENGINES: OnceLock<Mutex<HashMap<u8, Arc<Engine>>>> = OnceLock::new();
    let mut map = ENGINES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap();
    map.entry(key)
        .or_insert_with(|| {
            let mut opts = config.engine_options();
            opts.today = today();
            Arc::new(Engine::new(DeidKey::from_bytes([key; 32]), opts))
        })
        .clone()
}

pub fn config(profile: ProfileName) -> Config {
    Config::builtin(profile)
}

/// De-identifies one CSV text as table `table`.
pub fn run(
    config: &Config,
    key: u8,
    table: Option<&str>,
    input: &[u8],
) -> Result<(String, Tally), TabularError> {
    let deid = TabularDeid::new(config).unwrap();
    let engine = engine_for(key, config);
    let mut out = Vec::new();
    let mut tally = Tally::default();
    deid.deidentify_table(&engine, table, input, &mut out, &mut tally)?;
    Ok((String::from_utf8(out).unwrap(), tally))
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The shared corpus folder, or `None` (with a note) when it is absent.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/csv");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("note: {} absent; corpus part skipped", p.display());
        None
    }
}

/// Every `.csv` file under `dir`, sorted.
pub fn csv_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A parsed table: header (if the first row is one) and rows.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Table {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let delim = phiguard_tabular::sniff_delimiter(text.as_bytes());
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .delimiter(delim)
            .from_reader(text.as_bytes());
        let mut rows: Vec<Vec<String>> = r
            .records()
            .map(|x| x.unwrap().iter().map(str::to_string).collect())
            .collect();
        let header = if rows.is_empty() {
            Vec::new()
        } else {
            rows.remove(0)
        };
        Table { header, rows }
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    pub fn column(&self, name: &str) -> Vec<&str> {
        match self.col(name) {
            Some(i) => self.rows.iter().map(|r| r[i].as_str()).collect(),
            None => Vec::new(),
        }
    }
}
