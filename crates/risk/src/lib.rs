//! # phiguard-risk
//!
//! Re-identification risk for HIPAA Expert Determination, over a table (CSV, Parquet, or FHIR
//! Patient resources flattened to columns) with declared
//! quasi-identifiers and an optional sensitive column:
//!
//! - equivalence classes, k-anonymity, sample uniques, class-size distribution;
//! - distinct and entropy l-diversity and t-closeness, with pycanon's exact definitions;
//! - prosecutor, journalist (against a population table, or equal to prosecutor) and marketer
//!   risk: highest, average and records above a threshold;
//! - ARX generalisation hierarchies, and an exhaustive search of the generalisation lattice for
//!   the node reaching a target k (and l) with suppression of at most a given fraction of
//!   records and the least information loss.
//!
//! The [`RiskReport`] holds counts and figures only; cell values appear in it only as
//! generalised class values when [`RiskConfig::show_classes`] is set. Errors name files, lines
//! and columns, never values.
//!
//! ```
//! # fn main() -> Result<(), phiguard_risk::RiskError> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("t.csv");
//! std::fs::write(&path, "zip;sex;dx\n123;F;a\n123;F;b\n124;M;a\n").unwrap();
//! let mut cfg = phiguard_risk::RiskConfig::new(&path, &["zip", "sex"]);
//! cfg.sensitive = Some("dx".into());
//! let report = phiguard_risk::assess(&cfg)?;
//! assert_eq!(report.measures.k, 1);
//! assert_eq!(report.measures.equivalence_classes, 2);
//! assert_eq!(report.measures.sample_uniques, 1);
//! # Ok(()) }
//! ```

mod analysis;
mod classes;
pub mod deid_report;
mod error;
mod fhir;
mod hierarchy;
mod parquet;
mod report;
mod table;

use std::path::{Path, PathBuf};

pub use analysis::{
    Dataset, InformationLoss, LossMetric, MAX_LATTICE_NODES, NodeResult, SearchOutcome, Target,
};
pub use classes::{
    AttackerRisk, Measures, Partition, QiView, Sensitive, SensitiveFigures, SensitiveKind,
    SizeBucket, measure, numpy_sum, partition,
};
pub use error::{Result, RiskError};
pub use fhir::{PATIENT_COLUMNS, flatten_patient, is_fhir_path, read_patients};
pub use hierarchy::{Hierarchy, Level, QuasiIdentifier};
pub use parquet::{is_parquet, read_parquet};
pub use report::{ClassRow, JournalistBasis, QiReport, RiskReport, SearchReport};
pub use table::{Column, Table, sniff_delimiter};

/// Default risk threshold: a record is at risk above 0.2, i.e. in a class of fewer than 5.
pub const DEFAULT_RISK_THRESHOLD: f64 = 0.2;

/// What to assess and how.
#[derive(Debug, Clone)]
pub struct RiskConfig {
    /// The table (CSV, delimiter sniffed; or Parquet, recognised by content), or FHIR Patient
    /// resources (see `fhir`).
    pub input: PathBuf,
    /// Read the input as FHIR Patient resources flattened to [`PATIENT_COLUMNS`] (`None`: when
    /// it is a folder or a `.json`/`.ndjson` file).
    pub fhir: Option<bool>,
    /// Quasi-identifier columns.
    pub quasi_identifiers: Vec<String>,
    /// Sensitive column for l-diversity and t-closeness.
    pub sensitive: Option<String>,
    /// Force how the sensitive column is compared (default: numerical when every value is a
    /// number, as pandas and so pycanon decide).
    pub sensitive_kind: Option<SensitiveKind>,
    /// ARX hierarchy file per quasi-identifier, or `builtin:zip|age|year|date` (see
    /// [`Hierarchy::builtin`]).
    pub hierarchies: Vec<(String, PathBuf)>,
    /// Fixed generalisation levels (others are 0, or searched when `target_k` is set).
    pub levels: Vec<(String, usize)>,
    /// Target k: search the lattice for the least-loss node meeting it.
    pub target_k: Option<usize>,
    /// Target distinct l-diversity (with `target_k`).
    pub target_l: Option<usize>,
    /// Largest fraction of records the search may suppress.
    pub max_suppression: f64,
    /// Records above this re-identification probability are "at risk".
    pub risk_threshold: f64,
    /// What the search minimises.
    pub metric: LossMetric,
    /// Population table for journalist and marketer risk.
    pub population: Option<PathBuf>,
    /// Include the classes' generalised values in the report.
    pub show_classes: bool,
}

impl RiskConfig {
    /// A configuration with defaults: no sensitive column, no hierarchies, levels 0, no search,
    /// no suppression, threshold 0.2, loss metric.
    pub fn new(input: &Path, quasi_identifiers: &[&str]) -> Self {
        RiskConfig {
            input: input.to_path_buf(),
            fhir: None,
            quasi_identifiers: quasi_identifiers.iter().map(|s| s.to_string()).collect(),
            sensitive: None,
            sensitive_kind: None,
            hierarchies: Vec::new(),
            levels: Vec::new(),
            target_k: None,
            target_l: None,
            max_suppression: 0.0,
            risk_threshold: DEFAULT_RISK_THRESHOLD,
            metric: LossMetric::Loss,
            population: None,
            show_classes: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(RiskError::Config(m));
        if self.quasi_identifiers.is_empty() {
            return bad("at least one quasi-identifier is needed".into());
        }
        for (i, q) in self.quasi_identifiers.iter().enumerate() {
            if self.quasi_identifiers[..i].contains(q) {
                return bad(format!("quasi-identifier '{q}' given twice"));
            }
        }
        if let Some(s) = &self.sensitive
            && self.quasi_identifiers.contains(s)
        {
            return bad(format!(
                "'{s}' cannot be both a quasi-identifier and sensitive"
            ));
        }
        for (c, _) in &self.hierarchies {
            if !self.quasi_identifiers.contains(c) {
                return bad(format!(
                    "hierarchy given for '{c}', which is not a quasi-identifier"
                ));
            }
        }
        for (c, _) in &self.levels {
            if !self.quasi_identifiers.contains(c) {
                return bad(format!(
                    "level given for '{c}', which is not a quasi-identifier"
                ));
            }
        }
        if self.target_k == Some(0) {
            return bad("the target k must be at least 1".into());
        }
        if self.target_l.is_some() && self.target_k.is_none() {
            return bad("a target l needs a target k (use --k 1 for l alone)".into());
        }
        if self.target_l.is_some() && self.sensitive.is_none() {
            return bad("a target l needs a sensitive column".into());
        }
        if !(0.0..=1.0).contains(&self.max_suppression) {
            return bad("the maximum suppression must be between 0 and 1".into());
        }
        if !(self.risk_threshold > 0.0 && self.risk_threshold <= 1.0) {
            return bad("the risk threshold must be in (0, 1]".into());
        }
        Ok(())
    }
}

/// Reads the table and hierarchies of `cfg` into a [`Dataset`].
pub fn load(cfg: &RiskConfig) -> Result<Dataset> {
    cfg.validate()?;
    let mut names: Vec<&str> = cfg.quasi_identifiers.iter().map(String::as_str).collect();
    if let Some(s) = &cfg.sensitive {
        names.push(s);
    }
    let table = read_table(&cfg.input, cfg.fhir, &names)?;
    let mut qis = Vec::with_capacity(cfg.quasi_identifiers.len());
    for (i, q) in cfg.quasi_identifiers.iter().enumerate() {
        let col = &table.columns()[i];
        let h = match cfg.hierarchies.iter().rev().find(|(c, _)| c == q) {
            Some((_, p)) => match p.to_str().and_then(|s| s.strip_prefix("builtin:")) {
                Some(kind) => Some(Hierarchy::builtin(kind, col, &cfg.input)?),
                None => Some(Hierarchy::read(p)?),
            },
            None => None,
        };
        qis.push(QuasiIdentifier::new(col, &cfg.input, h)?);
    }
    let sensitive = match &cfg.sensitive {
        Some(_) => {
            let col = &table.columns()[cfg.quasi_identifiers.len()];
            Some(Sensitive::new(col, cfg.sensitive_kind)?)
        }
        None => None,
    };
    Ok(Dataset::new(table, qis, sensitive))
}

/// Reads the columns `names` of a table: FHIR Patient resources when `fhir` says so (`None`: a
/// folder or a `.json`/`.ndjson` file), Parquet when the content is (see [`is_parquet`]), CSV
/// otherwise.
pub fn read_table(path: &Path, fhir: Option<bool>, names: &[&str]) -> Result<Table> {
    if fhir.unwrap_or_else(|| is_fhir_path(path)) {
        read_patients(path, names)
    } else if is_parquet(path) {
        read_parquet(path, names)
    } else {
        Table::read_csv(path, names)
    }
}

/// Runs the assessment `cfg` describes.
pub fn assess(cfg: &RiskConfig) -> Result<RiskReport> {
    let ds = load(cfg)?;
    assess_dataset(&ds, cfg)
}

/// Runs the assessment on an already loaded dataset (the search and figures of [`assess`]).
pub fn assess_dataset(ds: &Dataset, cfg: &RiskConfig) -> Result<RiskReport> {
    let qis = ds.quasi_identifiers();
    let fixed: Vec<Option<usize>> = qis
        .iter()
        .map(|q| {
            cfg.levels
                .iter()
                .rev()
                .find(|(c, _)| c == q.name())
                .map(|(_, l)| *l)
        })
        .collect();
    let base: Vec<usize> = fixed.iter().map(|f| f.unwrap_or(0)).collect();
    ds.check_levels(&base)?;
    let rows = ds.table().rows();
    let mut notes = Vec::new();

    let (levels, partition, retained, search) = match cfg.target_k {
        Some(k) => {
            let target = Target {
                k,
                l: cfg.target_l,
                max_suppression: cfg.max_suppression,
            };
            let out = ds.search(&fixed, &target, cfg.metric)?;
            let report = SearchReport {
                target,
                metric: cfg.metric,
                nodes_evaluated: out.nodes,
                nodes_meeting_target: out.meeting,
                reached: out.best.is_some(),
                chosen_levels: out.best.as_ref().map(|b| b.levels.clone()),
                least_suppression_levels: match &out.best {
                    Some(_) => None,
                    None => out.least_suppression.as_ref().map(|n| n.levels.clone()),
                },
                least_suppression_records: match &out.best {
                    Some(_) => None,
                    None => out.least_suppression.as_ref().map(|n| n.failing_records),
                },
            };
            match &out.best {
                Some(b) => {
                    let (_, p, pass) = ds.evaluate(&b.levels, &target)?;
                    (b.levels.clone(), p, pass, Some(report))
                }
                None => {
                    notes.push(format!(
                        "no generalisation meets k = {k} with at most {:.2}% of records suppressed; figures are for the levels given (or 0) without suppression",
                        100.0 * cfg.max_suppression
                    ));
                    let p = ds.partition(&base)?;
                    let all = vec![true; p.sizes.len()];
                    (base.clone(), p, all, Some(report))
                }
            }
        }
        None => {
            let p = ds.partition(&base)?;
            let all = vec![true; p.sizes.len()];
            (base.clone(), p, all, None)
        }
    };

    let measures = measure(&partition, &retained, ds.sensitive(), cfg.risk_threshold);
    let suppressed = rows - measures.records;
    let info = ds.information_loss(&levels, &partition, &retained)?;

    let (journalist, basis, population_marketer) = match &cfg.population {
        None => {
            notes.push(
                "no population table given: journalist risk is reported equal to prosecutor risk (an upper bound)".into(),
            );
            (
                measures.prosecutor.clone(),
                JournalistBasis::Prosecutor,
                None,
            )
        }
        Some(pop) => {
            let (counts, pop_rows) = ds.population_counts(pop, &levels, &partition, &retained)?;
            let mut highest = 0.0f64;
            let mut sum = 0.0f64;
            let mut at_risk = 0usize;
            for (c, &f) in partition.sizes.iter().enumerate() {
                if !retained[c] {
                    continue;
                }
                let big_f = counts[c] as f64;
                let risk = 1.0 / big_f;
                highest = highest.max(risk);
                sum += f64::from(f) * risk;
                if risk > cfg.risk_threshold {
                    at_risk += f as usize;
                }
            }
            let n = measures.records.max(1) as f64;
            (
                AttackerRisk {
                    highest,
                    average: sum / n,
                    records_at_risk: at_risk,
                    records_at_risk_fraction: at_risk as f64 / n,
                },
                JournalistBasis::Population {
                    file: pop.display().to_string(),
                    records: pop_rows,
                },
                Some(sum / n),
            )
        }
    };

    let quasi_identifiers = qis
        .iter()
        .zip(&levels)
        .map(|(q, &l)| QiReport {
            column: q.name().to_string(),
            hierarchy: q.hierarchy().map(|h| h.path().display().to_string()),
            height: q.height(),
            level: l,
            distinct_values: q.level(l).map(|lv| lv.labels().len()).unwrap_or(0),
        })
        .collect();

    let classes = if cfg.show_classes {
        let values = ds.class_values(&levels, &partition)?;
        let distinct = ds
            .sensitive()
            .map(|s| classes::distinct_per_class(&partition, &retained, s));
        let mut rows: Vec<ClassRow> = values
            .into_iter()
            .enumerate()
            .filter(|(c, _)| retained[*c])
            .map(|(c, v)| ClassRow {
                values: v,
                size: partition.sizes[c] as usize,
                distinct_sensitive: distinct.as_ref().map(|d| d[c]),
            })
            .collect();
        rows.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.values.cmp(&b.values)));
        Some(rows)
    } else {
        None
    };

    if let Some(s) = ds.sensitive() {
        notes.push(format!(
            "sensitive column '{}' compared as {} for t-closeness",
            s.name(),
            match s.kind() {
                SensitiveKind::Categorical => "categorical (equal distance)",
                SensitiveKind::Numerical => "numerical (ordered distance)",
            }
        ));
    }
    if suppressed > 0 {
        notes.push(format!(
            "{suppressed} records in classes below the target were suppressed (removed); figures are over the {} records kept",
            measures.records
        ));
    }

    Ok(RiskReport {
        tool: format!("phiguard-risk {}", env!("CARGO_PKG_VERSION")),
        input: cfg.input.display().to_string(),
        records_read: rows,
        quasi_identifiers,
        suppressed_records: suppressed,
        suppressed_fraction: if rows == 0 {
            0.0
        } else {
            suppressed as f64 / rows as f64
        },
        risk_threshold: cfg.risk_threshold,
        measures,
        journalist,
        journalist_basis: basis,
        population_marketer,
        information_loss: info,
        search,
        classes,
        notes,
    })
}
