//! # phiguard-tabular
//!
//! CSV and Parquet de-identification by column rules, streaming, and `--suggest`.
//!
//! - Selectors ([`ColumnSelector`]): a column name (exact, case-insensitive), a glob (`*_DATE`,
//!   `ADDRESS*`), or `table.column` where the table is the file stem (`patients.SSN`), so one
//!   config covers a whole export.
//! - Rules: the user's `[csv] rules`, then the built-in profile's column-name table
//!   ([`profile::NAME_TABLE`]); a column no rule covers is sampled and its values run through
//!   the detector: mostly one PHI category gets that category's action, anything else goes
//!   through `text` (numbers the detector finds nothing in are kept). Every such decision is
//!   counted in [`Tally::uncovered`](phiguard_rules::Tally) under `column NAME (reason)`.
//! - The patient of a row is the configured `[csv] patient` column, else `PATIENT` /
//!   `PATIENTID`, else `Id` in a patient table, so dates shift per patient as in FHIR and HL7.
//! - CSV streams row by row (after a bounded sample of the first rows); Parquet streams batch by
//!   batch (feature `parquet`, on by default).
//!
//! ```
//! use phiguard_rules::{Config, Engine, EngineOptions, Tally};
//! use phiguard_deid::DeidKey;
//! use phiguard_tabular::TabularDeid;
//!
//! let config = Config::builtin(phiguard_rules::ProfileName::SafeHarbor);
//! let deid = TabularDeid::new(&config).unwrap();
//! let engine = Engine::new(DeidKey::from_bytes([1; 32]), config.engine_options());
//! let input = "Id,FIRST,BIRTHDATE,CODE\np1,Maria,1980-03-14,8302-2\n";
//! let mut out = Vec::new();
//! let mut tally = Tally::default();
//! deid.deidentify_table(&engine, Some("patients"), input.as_bytes(), &mut out, &mut tally).unwrap();
//! let out = String::from_utf8(out).unwrap();
//! assert!(!out.contains("Maria") && out.contains(",1980,8302-2"));
//! ```

mod delimited;
#[cfg(feature = "parquet")]
mod parquet_file;
pub mod plan;
pub mod profile;
pub mod selector;
mod suggest;

use std::io::{Read, Write};

use phiguard_rules::{Config, ConfigError, Engine, RuleSet, Selector, Tally};

pub use delimited::sniff_delimiter;
pub use selector::ColumnSelector;
pub use suggest::{Suggestion, suggest, suggest_parts, suggest_table};

/// Errors de-identifying a table. They name the position (line, column number or name, row
/// group), never a value.
#[derive(Debug, thiserror::Error)]
pub enum TabularError {
    /// A row whose field count differs from the header's.
    #[error("line {line}: {actual} fields where the header has {expected}")]
    Ragged {
        line: u64,
        expected: usize,
        actual: usize,
    },
    /// A field that is not UTF-8.
    #[error("line {line}, field {field}: not valid UTF-8")]
    Utf8 { line: u64, field: usize },
    /// Reading the input failed.
    #[error("read error near line {line}: {kind}")]
    Read { line: u64, kind: std::io::ErrorKind },
    /// Writing the output failed.
    #[error("write error: {0}")]
    Write(std::io::ErrorKind),
    /// An action failed on a value (the message names the rule's column, not the value).
    #[error("line {line}, column {column}: {message}")]
    Action {
        line: u64,
        column: String,
        message: String,
    },
    /// The config is invalid.
    #[error("{0}")]
    Config(ConfigError),
    /// The Parquet file could not be read or written.
    #[error("parquet: {0}")]
    Parquet(String),
}

/// CSV options from `[csv] options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// `Some(true)`: the first row is a header (`header`); `Some(false)`: there is none
    /// (`no-header`, columns are then named `col1`, `col2`, ...); `None`: guessed.
    pub header: Option<bool>,
    /// `delimiter=;` (`,` `;` `|` `tab`); sniffed from the first lines when absent.
    pub delimiter: Option<u8>,
}

impl CsvOptions {
    fn parse(options: &[String]) -> Result<CsvOptions, ConfigError> {
        let mut o = CsvOptions::default();
        for (i, opt) in options.iter().enumerate() {
            let t = opt.trim().to_ascii_lowercase().replace('_', "-");
            let err = |message: String| ConfigError::Rule {
                at: format!("csv.options[{i}] ({opt:?})"),
                message,
            };
            match t.as_str() {
                "header" => o.header = Some(true),
                "no-header" | "headerless" => o.header = Some(false),
                _ => match t.strip_prefix("delimiter=") {
                    Some(",") | Some("comma") => o.delimiter = Some(b','),
                    Some(";") | Some("semicolon") => o.delimiter = Some(b';'),
                    Some("|") | Some("pipe") => o.delimiter = Some(b'|'),
                    Some("tab") | Some("\t") => o.delimiter = Some(b'\t'),
                    _ => {
                        return Err(err(
                            "unknown option; expected header, no-header, delimiter=, delimiter=; \
                             delimiter=| or delimiter=tab"
                                .to_string(),
                        ));
                    }
                },
            }
        }
        Ok(o)
    }
}

/// CSV/Parquet de-identifier, built once per run from the config; `Send + Sync`.
pub struct TabularDeid {
    rules: plan::Rules,
    patient: Option<ColumnSelector>,
    options: CsvOptions,
    sample_rows: usize,
}

impl TabularDeid {
    /// Compiles `config.csv` (user rules, then the built-in profile's name table).
    pub fn new(config: &Config) -> Result<TabularDeid, ConfigError> {
        let user = RuleSet::<ColumnSelector>::compile("csv", &config.csv.rules)?;
        let builtin = RuleSet::<ColumnSelector>::builtin(
            config.profile.as_str(),
            &profile::builtin_pairs(config.profile),
        )?;
        let patient = match &config.csv.patient {
            Some(p) => Some(
                ColumnSelector::parse(p).map_err(|message| ConfigError::Rule {
                    at: format!("csv.patient ({p:?})"),
                    message,
                })?,
            ),
            None => None,
        };
        Ok(TabularDeid {
            rules: plan::Rules {
                rules: user.then(builtin),
                profile: config.profile,
            },
            patient,
            options: CsvOptions::parse(&config.csv.options)?,
            sample_rows: 200,
        })
    }

    /// Streams one CSV table of unknown name (`table.column` selectors do not apply) to `out`.
    /// On error the caller discards `out`.
    pub fn deidentify<R: Read, W: Write>(
        &self,
        engine: &Engine,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), TabularError> {
        self.deidentify_table(engine, None, input, out, tally)
    }

    /// Streams one CSV table named `table` (the file stem, e.g. `patients`) to `out`.
    pub fn deidentify_table<R: Read, W: Write>(
        &self,
        engine: &Engine,
        table: Option<&str>,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), TabularError> {
        delimited::run(self, engine, table, input, out, tally)
    }

    /// Streams one Parquet file (a `std::fs::File`, or any
    /// [`ChunkReader`](parquet::file::reader::ChunkReader)) batch by batch to `out`, with the
    /// same schema except where an action needs strings (see `docs/tabular.md`).
    #[cfg(feature = "parquet")]
    pub fn deidentify_parquet<R, W>(
        &self,
        engine: &Engine,
        table: Option<&str>,
        input: R,
        out: W,
        tally: &mut Tally,
    ) -> Result<(), TabularError>
    where
        R: parquet::file::reader::ChunkReader + 'static,
        W: Write + Send,
    {
        parquet_file::run(self, engine, table, input, out, tally)
    }
}

/// Content sniffing: true if these first bytes look like a CSV/TSV table or a Parquet file.
pub fn sniff(first_bytes: &[u8]) -> bool {
    sniff_parquet(first_bytes) || delimited::sniff(first_bytes)
}

/// True if the bytes start with the Parquet magic `PAR1`.
pub fn sniff_parquet(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"PAR1")
}

/// The table name for a file: its stem (`exports/patients.csv` → `patients`).
pub fn table_name(path: &std::path::Path) -> Option<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.to_string())
}
