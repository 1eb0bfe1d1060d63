//! Errors of the risk crate. Every message names the file, line and column (or hierarchy level),
//! never a cell value: the table being assessed is PHI.

use std::path::PathBuf;

/// What can go wrong while reading a table or hierarchy or assessing risk.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    /// A file could not be opened or read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error (carries no data from the file).
        source: std::io::Error,
    },
    /// The table has no header row.
    #[error("{file}: empty file (no header row)")]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A row has more or fewer fields than the header.
    #[error("{file}: line {line}: {found} fields where the header has {expected} ({detail})")]
    RaggedRow {
        /// The file.
        file: PathBuf,
        /// 1-based line number where the record starts.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this record.
        found: usize,
        /// Which column is missing, or what is extra (header names only).
        detail: String,
    },
    /// A field (or the header) is not valid UTF-8.
    #[error("{file}: line {line}, column {column}: not valid UTF-8")]
    Utf8 {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name, or its 1-based position for the header.
        column: String,
    },
    /// The CSV parser failed (for example an I/O error mid-file).
    #[error("{file}: line {line}: malformed CSV ({kind})")]
    Csv {
        /// The file.
        file: PathBuf,
        /// 1-based line number (0 if unknown).
        line: u64,
        /// What kind of failure (never a value).
        kind: String,
    },
    /// A Parquet file could not be decoded (footer, page, encoding: structure, never values).
    #[error("{file}: cannot read Parquet: {detail}")]
    Parquet {
        /// The file.
        file: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A requested column is not in the header.
    #[error("{file}: no column named '{column}' in the header (columns: {available})")]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The column asked for.
        column: String,
        /// The header, comma-separated.
        available: String,
    },
    /// A requested column name appears more than once in the header.
    #[error("{file}: column '{column}' appears {count} times in the header")]
    DuplicateColumn {
        /// The file.
        file: PathBuf,
        /// The column.
        column: String,
        /// How many times.
        count: usize,
    },
    /// A hierarchy row has a different number of levels than the first row.
    #[error("hierarchy {file}: line {line}: {found} fields where line 1 has {expected}")]
    HierarchyRagged {
        /// The hierarchy file.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// Fields on line 1.
        expected: usize,
        /// Fields on this line.
        found: usize,
    },
    /// A hierarchy lists the same value twice with different generalisations.
    #[error(
        "hierarchy {file}: line {line}: value already listed on line {first} with other generalisations"
    )]
    HierarchyConflict {
        /// The hierarchy file.
        file: PathBuf,
        /// 1-based line of the second listing.
        line: u64,
        /// 1-based line of the first listing.
        first: u64,
    },
    /// A hierarchy file has no rows.
    #[error("hierarchy {file}: no rows")]
    HierarchyEmpty {
        /// The hierarchy file.
        file: PathBuf,
    },
    /// A value of a quasi-identifier is missing from its hierarchy.
    #[error(
        "column '{column}': a value first seen on line {line} of {file} is not in hierarchy {hierarchy} ({missing} distinct values missing)"
    )]
    NotInHierarchy {
        /// The quasi-identifier.
        column: String,
        /// The table.
        file: PathBuf,
        /// Line where the first missing value appears.
        line: u64,
        /// The hierarchy file.
        hierarchy: PathBuf,
        /// How many distinct values are missing.
        missing: usize,
    },
    /// A generalisation level is above the hierarchy's height.
    #[error("column '{column}': level {level} asked but its hierarchy has levels 0 to {height}")]
    LevelOutOfRange {
        /// The quasi-identifier.
        column: String,
        /// Level asked.
        level: usize,
        /// Highest level.
        height: usize,
    },
    /// The generalisation lattice is too large to search exhaustively.
    #[error(
        "the generalisation lattice has {nodes} nodes (limit {limit}): fix some levels with --levels"
    )]
    LatticeTooLarge {
        /// Nodes in the lattice (saturated).
        nodes: u128,
        /// The limit.
        limit: u128,
    },
    /// The population table is smaller than the sample in some classes.
    #[error(
        "population {file}: {classes} equivalence classes have fewer population records than sample records (the sample must be drawn from the population)"
    )]
    PopulationTooSmall {
        /// The population file.
        file: PathBuf,
        /// Classes affected.
        classes: usize,
    },
    /// An invalid option or combination of options.
    #[error("{0}")]
    Config(String),
    /// A de-identification report the risk cannot be added to (not a phiguard report, not
    /// JSON, a `risk` member that is not an array of risk reports).
    #[error("{0}")]
    DeidReport(String),
}

/// Describes a ragged row by header names: the first column without a value, or the extra
/// fields after the last column.
pub(crate) fn ragged_detail(header: &[String], found: usize) -> String {
    if found < header.len() {
        format!(
            "no value for column '{}'",
            header.get(found).map(String::as_str).unwrap_or_default()
        )
    } else {
        format!(
            "{} fields after the last column '{}'",
            found - header.len(),
            header.last().map(String::as_str).unwrap_or_default()
        )
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RiskError>;
