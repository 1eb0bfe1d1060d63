//! `phiguard deid --suggest`: samples a table and proposes a `[csv]` config section, one rule per
//! column with a comment saying why (the name rule that matched, the detector's categories and
//! their share of the sampled values). No sampled value is ever written.

use std::fmt::Write as _;
use std::io::Read;

use phiguard_rules::{Config, Engine, ProfileName};

use crate::delimited::{fields, header, open, read_sample};
use crate::plan::{Sample, patient_column};
use crate::{TabularDeid, TabularError};

/// Proposes a `[csv]` section for the Safe Harbor profile from the first `sample_rows` rows of
/// a table of unknown name.
pub fn suggest<R: Read>(
    engine: &Engine,
    input: R,
    sample_rows: usize,
) -> Result<String, TabularError> {
    suggest_table(
        engine,
        &Config::builtin(ProfileName::SafeHarbor),
        None,
        input,
        sample_rows,
    )
}

/// Proposes a `[csv]` section for `config`'s profile from the first `sample_rows` rows of table
/// `table` (the file stem; rules then select `table.column`).
pub fn suggest_table<R: Read>(
    engine: &Engine,
    config: &Config,
    table: Option<&str>,
    input: R,
    sample_rows: usize,
) -> Result<String, TabularError> {
    Ok(suggest_parts(engine, config, table, input, sample_rows)?.to_toml())
}

/// One table's proposal in parts, so that a caller can merge several tables into one
/// `[csv]` section. Every line is already rendered (TOML, with its reason as a comment).
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The profile the rules were chosen for.
    pub profile: &'static str,
    /// Comment lines about the sample (without the leading `# `).
    pub notes: Vec<String>,
    /// The `patient = ...` line, when a patient column was found.
    pub patient: Option<String>,
    /// The first row is not a header (`options = ["no-header"]`).
    pub no_header: bool,
    /// One `{ select = ..., action = ... },  # why` line per column (empty for an empty table).
    pub rules: Vec<String>,
}

impl Suggestion {
    /// The proposal as a config section.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# Proposed by `phiguard deid --suggest` for the {} profile. Review every rule before use.\n",
            self.profile
        );
        for n in &self.notes {
            let _ = writeln!(out, "# {n}");
        }
        out.push_str("[csv]\n");
        if self.rules.is_empty() {
            out.push_str("rules = []\n");
            return out;
        }
        match &self.patient {
            Some(line) => {
                let _ = writeln!(out, "{line}");
            }
            None => {
                out.push_str("# no patient column found: dates shift by the dataset-wide offset\n")
            }
        }
        if self.no_header {
            out.push_str("options = [\"no-header\"]\n");
        }
        out.push_str("rules = [\n");
        for r in &self.rules {
            let _ = writeln!(out, "{r}");
        }
        out.push_str("]\n");
        out
    }
}

/// As [`suggest_table`], in parts.
pub fn suggest_parts<R: Read>(
    engine: &Engine,
    config: &Config,
    table: Option<&str>,
    input: R,
    sample_rows: usize,
) -> Result<Suggestion, TabularError> {
    let deid = TabularDeid::new(config).map_err(TabularError::Config)?;
    let mut opened = open(&deid, input)?;
    let sample = read_sample(&mut opened.reader, sample_rows.saturating_add(1))?;
    let mut out = Suggestion {
        profile: config.profile.as_str(),
        notes: Vec::new(),
        patient: None,
        no_header: false,
        rules: Vec::new(),
    };
    let Some((first_line, first)) = sample.first() else {
        out.notes
            .push("The table is empty: nothing to propose.".to_string());
        return Ok(out);
    };
    let first = fields(first, *first_line)?;
    let (names, is_header) = header(&deid, engine, &first);
    let rows: Vec<(u64, &csv::ByteRecord)> = sample
        .iter()
        .skip(usize::from(is_header))
        .map(|(l, r)| (*l, r))
        .collect();
    let mut text_rows = Vec::with_capacity(rows.len());
    for (line, rec) in &rows {
        if rec.len() != names.len() {
            return Err(TabularError::Ragged {
                line: *line,
                expected: names.len(),
                actual: rec.len(),
            });
        }
        text_rows.push(fields(rec, *line)?);
    }
    out.notes.push(format!(
        "{} sampled rows, {} columns{}; per column: the rule's reason, then the detector's \
         categories as the share of distinct sampled values (at most 100) they were found in.",
        text_rows.len(),
        names.len(),
        if is_header {
            ""
        } else {
            " (no header row: columns are col1, col2, ...)"
        }
    ));
    let qualify = |name: &str| match table {
        Some(t) => format!("{t}.{name}"),
        None => name.to_string(),
    };
    out.patient = patient_column(deid.patient.as_ref(), table, &names).map(|i| {
        format!(
            "patient = {}  # the patient key: dates shift per patient",
            toml_string(&qualify(&names[i]))
        )
    });
    out.no_header = !is_header;
    for (i, name) in names.iter().enumerate() {
        let sample = Sample::of(engine, text_rows.iter().map(|r| r[i]));
        let detected = format!(
            "detector: {} of {} values",
            sample.describe(),
            sample.detected_over
        );
        let plan = deid.rules.plan(engine, table, name, &names, || {
            text_rows.iter().map(move |r| r[i])
        });
        let (action, why) = (plan.action, plan.why);
        out.rules.push(format!(
            "    {{ select = {}, action = {} }},  # {why}; {detected}",
            toml_string(&qualify(name)),
            toml_string(action.as_str())
        ));
    }
    Ok(out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
