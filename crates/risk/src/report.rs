//! The serialisable risk report and its Markdown rendering.

use serde::{Deserialize, Serialize};

use crate::analysis::{InformationLoss, LossMetric, Target};
use crate::classes::{AttackerRisk, Measures};

/// A quasi-identifier as reported: its hierarchy and the level applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QiReport {
    /// Column name.
    pub column: String,
    /// Hierarchy file, if one was given (else the implicit `value → *`).
    pub hierarchy: Option<String>,
    /// Highest level available.
    pub height: usize,
    /// Level applied.
    pub level: usize,
    /// Distinct generalised values at that level, over the whole table.
    pub distinct_values: usize,
}

/// What the lattice search did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    /// The target.
    pub target: Target,
    /// The metric minimised.
    pub metric: LossMetric,
    /// Nodes evaluated (the whole lattice, less levels held with `--levels`).
    pub nodes_evaluated: usize,
    /// Nodes meeting the target.
    pub nodes_meeting_target: usize,
    /// Whether a node meets the target.
    pub reached: bool,
    /// The levels chosen (in quasi-identifier order), when reached.
    pub chosen_levels: Option<Vec<usize>>,
    /// When not reached: the node needing the fewest suppressed records, and how many.
    pub least_suppression_levels: Option<Vec<usize>>,
    /// Records that node would have to suppress.
    pub least_suppression_records: Option<usize>,
}

/// One equivalence class, only with `--show-classes`. Its `Debug` output hides the values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    /// Generalised quasi-identifier values, in quasi-identifier order.
    pub values: Vec<String>,
    /// Records in the class.
    pub size: usize,
    /// Distinct sensitive values in the class.
    pub distinct_sensitive: Option<usize>,
}

impl std::fmt::Debug for ClassRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassRow")
            .field("values", &"[REDACTED]")
            .field("size", &self.size)
            .field("distinct_sensitive", &self.distinct_sensitive)
            .finish()
    }
}

/// Where the journalist figures come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum JournalistBasis {
    /// No population table given: journalist risk is taken equal to prosecutor risk (an upper
    /// bound, since population classes are at least as large as sample classes).
    Prosecutor,
    /// Computed against a population table.
    Population {
        /// The population file.
        file: String,
        /// Its records.
        records: usize,
    },
}

/// Every figure of a risk assessment. Holds counts and figures only, except `classes`
/// (generalised values) when asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    /// Producer and version.
    pub tool: String,
    /// The table assessed.
    pub input: String,
    /// Records read.
    pub records_read: usize,
    /// Quasi-identifiers and the generalisation applied.
    pub quasi_identifiers: Vec<QiReport>,
    /// Records suppressed (removed) to meet the target.
    pub suppressed_records: usize,
    /// The same as a fraction of the records read.
    pub suppressed_fraction: f64,
    /// A record is "at risk" when its re-identification probability is above this.
    pub risk_threshold: f64,
    /// k-anonymity, classes, l-diversity, t-closeness, prosecutor and marketer risk over the
    /// records kept.
    pub measures: Measures,
    /// Journalist risk (the attacker does not know whether the person is in the sample).
    pub journalist: AttackerRisk,
    /// Where the journalist figures come from.
    pub journalist_basis: JournalistBasis,
    /// Marketer risk against the population (Σ f/F over records), when a population is given.
    pub population_marketer: Option<f64>,
    /// Information loss of the generalisation and suppression applied.
    pub information_loss: InformationLoss,
    /// The search, when a target k was asked.
    pub search: Option<SearchReport>,
    /// The classes, only with `--show-classes`.
    pub classes: Option<Vec<ClassRow>>,
    /// Notes on how figures were computed.
    pub notes: Vec<String>,
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

impl RiskReport {
    /// Whether a target was asked and not reached (exit code 4 in the CLI).
    pub fn target_missed(&self) -> bool {
        self.search.as_ref().is_some_and(|s| !s.reached)
    }

    /// Renders the report as Markdown for the de-identification report.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write;
        let m = &self.measures;
        let mut s = String::new();
        let _ = writeln!(s, "# Re-identification risk: {}\n", md_escape(&self.input));
        let _ = writeln!(
            s,
            "{} records read, {} suppressed ({}), {} analysed. Produced by {}.\n",
            self.records_read,
            self.suppressed_records,
            pct(self.suppressed_fraction),
            m.records,
            self.tool
        );
        let _ = writeln!(s, "## Quasi-identifiers\n");
        let _ = writeln!(
            s,
            "| column | hierarchy | level | height | distinct values |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|");
        for q in &self.quasi_identifiers {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md_escape(&q.column),
                md_escape(q.hierarchy.as_deref().unwrap_or("(none: value or *)")),
                q.level,
                q.height,
                q.distinct_values
            );
        }
        let _ = writeln!(s, "\n## Privacy models\n");
        let _ = writeln!(s, "| figure | value |\n|---|---:|");
        let _ = writeln!(s, "| k-anonymity (smallest class) | {} |", m.k);
        let _ = writeln!(s, "| equivalence classes | {} |", m.equivalence_classes);
        let _ = writeln!(s, "| largest class | {} |", m.largest_class);
        let _ = writeln!(s, "| average class size | {:.3} |", m.average_class_size);
        let _ = writeln!(
            s,
            "| sample uniques | {} ({}) |",
            m.sample_uniques,
            pct(m.sample_uniques_fraction)
        );
        if let Some(sf) = &m.sensitive {
            let _ = writeln!(
                s,
                "| sensitive column | {} ({:?}, {} values) |",
                md_escape(&sf.column),
                sf.kind,
                sf.distinct_values
            );
            let _ = writeln!(s, "| distinct l-diversity | {} |", sf.l_diversity);
            let _ = writeln!(
                s,
                "| entropy l-diversity | {:.6} (pycanon: {}) |",
                sf.entropy_l, sf.entropy_l_pycanon
            );
            let _ = writeln!(s, "| t-closeness | {:.6} |", sf.t_closeness);
        }
        let _ = writeln!(
            s,
            "\n## Re-identification risk (threshold {})\n",
            pct(self.risk_threshold)
        );
        let _ = writeln!(s, "| attacker | highest | average | records at risk |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, r) in [
            ("prosecutor", &m.prosecutor),
            ("journalist", &self.journalist),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} ({}) |",
                pct(r.highest),
                pct(r.average),
                r.records_at_risk,
                pct(r.records_at_risk_fraction)
            );
        }
        let _ = writeln!(
            s,
            "| marketer | | {} | |",
            pct(self.population_marketer.unwrap_or(m.marketer))
        );
        let _ = writeln!(
            s,
            "\n## Class sizes\n\n| size | classes | records |\n|---|---:|---:|"
        );
        for b in &m.class_sizes {
            let range = match b.max_size {
                Some(x) if x == b.min_size => x.to_string(),
                Some(x) => format!("{}–{x}", b.min_size),
                None => format!("≥ {}", b.min_size),
            };
            let _ = writeln!(s, "| {range} | {} | {} |", b.classes, b.records);
        }
        let il = &self.information_loss;
        let _ = writeln!(
            s,
            "\n## Information loss\n\nloss {:.4}, precision loss {:.4}, discernibility {}\n",
            il.loss, il.precision_loss, il.discernibility
        );
        if let Some(sr) = &self.search {
            let _ = writeln!(s, "## Generalisation search\n");
            let _ = writeln!(
                s,
                "target k = {}{}, at most {} suppressed; metric {:?}; {} nodes evaluated, {} meet the target.\n",
                sr.target.k,
                sr.target
                    .l
                    .map(|l| format!(", l = {l}"))
                    .unwrap_or_default(),
                pct(sr.target.max_suppression),
                sr.metric,
                sr.nodes_evaluated,
                sr.nodes_meeting_target
            );
            let named = |levels: &[usize]| -> String {
                self.quasi_identifiers
                    .iter()
                    .zip(levels)
                    .map(|(q, l)| format!("{}={l}", md_escape(&q.column)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match (&sr.chosen_levels, &sr.least_suppression_levels) {
                (Some(l), _) => {
                    let _ = writeln!(s, "Chosen levels: {}.\n", named(l));
                }
                (None, Some(l)) => {
                    let _ = writeln!(
                        s,
                        "**Target not reached.** The node {} comes closest, needing {} records suppressed.\n",
                        named(l),
                        sr.least_suppression_records.unwrap_or(0)
                    );
                }
                (None, None) => {
                    let _ = writeln!(s, "**Target not reached.**\n");
                }
            }
        }
        if let Some(classes) = &self.classes {
            let _ = writeln!(s, "## Equivalence classes\n");
            let names: Vec<String> = self
                .quasi_identifiers
                .iter()
                .map(|q| md_escape(&q.column))
                .collect();
            let _ = writeln!(s, "| {} | size | distinct sensitive |", names.join(" | "));
            let _ = writeln!(s, "|{}---:|---:|", "---|".repeat(names.len()));
            for c in classes {
                let vals: Vec<String> = c.values.iter().map(|v| md_escape(v)).collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |",
                    vals.join(" | "),
                    c.size,
                    c.distinct_sensitive
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                );
            }
            let _ = writeln!(s);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {}", n);
            }
        }
        s
    }
}
