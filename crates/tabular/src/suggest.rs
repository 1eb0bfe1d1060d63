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
    let deid = TabularDeid::new(config).map_err(TabularError::Config)?;
    let mut opened = open(&deid, input)?;
    let sample = read_sample(&mut opened.reader, sample_rows.saturating_add(1))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Proposed by `phiguard deid --suggest` for the {} profile. Review every rule before use.",
        config.profile.as_str()
    );
    let Some((first_line, first)) = sample.first() else {
        out.push_str("# The table is empty: nothing to propose.\n[csv]\nrules = []\n");
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
    let _ = writeln!(
        out,
        "# {} sampled rows, {} columns{}; per column: the rule's reason, then the detector's \
         categories as the share of distinct sampled values (at most 100) they were found in.",
        text_rows.len(),
        names.len(),
        if is_header {
            ""
        } else {
            " (no header row: columns are col1, col2, ...)"
        }
    );
    let qualify = |name: &str| match table {
        Some(t) => format!("{t}.{name}"),
        None => name.to_string(),
    };
    out.push_str("[csv]\n");
    match patient_column(deid.patient.as_ref(), table, &names) {
        Some(i) => {
            let _ = writeln!(
                out,
                "patient = {}  # the patient key: dates shift per patient",
                toml_string(&qualify(&names[i]))
            );
        }
        None => out.push_str("# no patient column found: dates shift by the dataset-wide offset\n"),
    }
    if !is_header {
        out.push_str("options = [\"no-header\"]\n");
    }
    out.push_str("rules = [\n");
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
        let _ = writeln!(
            out,
            "    {{ select = {}, action = {} }},  # {why}; {detected}",
            toml_string(&qualify(name)),
            toml_string(action.as_str())
        );
    }
    out.push_str("]\n");
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
