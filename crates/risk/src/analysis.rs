//! A table with its quasi-identifiers and sensitive attribute: partitions at any generalisation
//! node, suppression to a target, information loss, the lattice search, population matching.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::classes::{Partition, QiView, Sensitive, distinct_per_class, partition};
use crate::error::{Result, RiskError};
use crate::hierarchy::QuasiIdentifier;
use crate::table::Table;

/// Largest lattice searched exhaustively.
pub const MAX_LATTICE_NODES: u128 = 20_000;

/// The information-loss measure the search minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossMetric {
    /// Iyengar's generalisation loss (ARX's "Loss"): per cell, (leaves under the generalised
    /// value − 1) / (leaves in the hierarchy − 1), averaged over cells; a suppressed record
    /// counts 1 per quasi-identifier.
    #[default]
    Loss,
    /// Sweeney's precision loss: per cell, level / height, averaged; suppressed records count 1.
    Precision,
}

/// Information loss of a node after suppression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InformationLoss {
    /// Iyengar's generalisation loss, 0 (nothing generalised) to 1 (everything suppressed).
    pub loss: f64,
    /// Precision loss (mean of level/height), 0 to 1.
    pub precision_loss: f64,
    /// Discernibility: Σ |class|² over kept classes + suppressed records × records.
    pub discernibility: u64,
}

/// A privacy target for the search and for suppression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Every kept class has at least k records.
    pub k: usize,
    /// Every kept class has at least l distinct sensitive values (needs a sensitive column).
    pub l: Option<usize>,
    /// Largest fraction of records that may be suppressed (removed) to meet it.
    pub max_suppression: f64,
}

/// One node of the lattice evaluated against a target.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    /// Level per quasi-identifier.
    pub levels: Vec<usize>,
    /// Records in classes that fail the target.
    pub failing_records: usize,
    /// Whether the failing records fit within the suppression limit.
    pub meets: bool,
    /// Information loss with the failing classes suppressed.
    pub loss: InformationLoss,
}

/// The outcome of the lattice search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Nodes in the (possibly restricted) lattice, all evaluated.
    pub nodes: usize,
    /// Nodes that meet the target.
    pub meeting: usize,
    /// The node chosen: least loss by the metric, then fewest suppressed records, then lowest
    /// levels.
    pub best: Option<NodeResult>,
    /// The node needing the fewest suppressed records (useful when none meets the target).
    pub least_suppression: Option<NodeResult>,
}

/// The table ready for analysis.
pub struct Dataset {
    table: Table,
    qis: Vec<QuasiIdentifier>,
    sensitive: Option<Sensitive>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("table", &self.table)
            .field("qis", &self.qis)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

impl Dataset {
    /// Assembles a dataset. `qis` must be built from `table`'s columns.
    pub fn new(table: Table, qis: Vec<QuasiIdentifier>, sensitive: Option<Sensitive>) -> Self {
        Dataset {
            table,
            qis,
            sensitive,
        }
    }
    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }
    /// The quasi-identifiers.
    pub fn quasi_identifiers(&self) -> &[QuasiIdentifier] {
        &self.qis
    }
    /// The sensitive attribute.
    pub fn sensitive(&self) -> Option<&Sensitive> {
        self.sensitive.as_ref()
    }

    /// Checks a level vector against the hierarchies.
    pub fn check_levels(&self, levels: &[usize]) -> Result<()> {
        if levels.len() != self.qis.len() {
            return Err(RiskError::Config(format!(
                "{} levels given for {} quasi-identifiers",
                levels.len(),
                self.qis.len()
            )));
        }
        for (q, &l) in self.qis.iter().zip(levels) {
            if l > q.height() {
                return Err(RiskError::LevelOutOfRange {
                    column: q.name().to_string(),
                    level: l,
                    height: q.height(),
                });
            }
        }
        Ok(())
    }

    fn views(&self, levels: &[usize]) -> Result<Vec<QiView<'_>>> {
        self.check_levels(levels)?;
        let mut views = Vec::with_capacity(self.qis.len());
        for (i, (q, &l)) in self.qis.iter().zip(levels).enumerate() {
            let lv = q.level(l).ok_or_else(|| RiskError::LevelOutOfRange {
                column: q.name().to_string(),
                level: l,
                height: q.height(),
            })?;
            let col = self.table.columns().get(i).ok_or_else(|| {
                RiskError::Config("quasi-identifier without a column".to_string())
            })?;
            views.push(QiView {
                codes: col.codes(),
                map: lv.map(),
                labels: lv.labels().len(),
            });
        }
        Ok(views)
    }

    /// The equivalence classes at `levels` (one level per quasi-identifier).
    pub fn partition(&self, levels: &[usize]) -> Result<Partition> {
        let views = self.views(levels)?;
        Ok(partition(&views, self.table.rows()))
    }

    /// Which classes meet `target` (size ≥ k and, if asked, ≥ l distinct sensitive values).
    pub fn passing(&self, p: &Partition, target: &Target) -> Result<Vec<bool>> {
        let all = vec![true; p.sizes.len()];
        let distinct = match (target.l, &self.sensitive) {
            (Some(_), Some(s)) => Some(distinct_per_class(p, &all, s)),
            (Some(_), None) => {
                return Err(RiskError::Config(
                    "an l-diversity target needs a sensitive column".to_string(),
                ));
            }
            _ => None,
        };
        Ok(p.sizes
            .iter()
            .enumerate()
            .map(|(c, &s)| {
                s as usize >= target.k
                    && match (&distinct, target.l) {
                        (Some(d), Some(l)) => d[c] >= l,
                        _ => true,
                    }
            })
            .collect())
    }

    /// Information loss at `levels` with the classes not `retained` suppressed.
    pub fn information_loss(
        &self,
        levels: &[usize],
        p: &Partition,
        retained: &[bool],
    ) -> Result<InformationLoss> {
        let rows = self.table.rows();
        let nq = self.qis.len();
        let mut loss_sum = 0.0f64;
        let mut prec_sum = 0.0f64;
        let mut suppressed = 0usize;
        // Per-base-code loss of each quasi-identifier at its level.
        let mut per_code: Vec<Vec<f64>> = Vec::with_capacity(nq);
        let mut prec: Vec<f64> = Vec::with_capacity(nq);
        for (q, &l) in self.qis.iter().zip(levels) {
            let lv = q.level(l).ok_or_else(|| RiskError::LevelOutOfRange {
                column: q.name().to_string(),
                level: l,
                height: q.height(),
            })?;
            per_code.push(lv.map().iter().map(|&m| lv.loss()[m as usize]).collect());
            prec.push(if q.height() == 0 {
                0.0
            } else {
                l as f64 / q.height() as f64
            });
        }
        let prec_row: f64 = prec.iter().sum();
        for r in 0..rows {
            if !retained[p.row_class[r] as usize] {
                suppressed += 1;
                continue;
            }
            for (j, col) in self.table.columns().iter().take(nq).enumerate() {
                loss_sum += per_code[j][col.codes()[r] as usize];
            }
            prec_sum += prec_row;
        }
        let cells = (rows * nq).max(1) as f64;
        let supp_cells = (suppressed * nq) as f64;
        let mut disc: u64 = (suppressed as u64).saturating_mul(rows as u64);
        for (c, &s) in p.sizes.iter().enumerate() {
            if retained[c] {
                disc = disc.saturating_add(u64::from(s) * u64::from(s));
            }
        }
        Ok(InformationLoss {
            loss: (loss_sum + supp_cells) / cells,
            precision_loss: (prec_sum + supp_cells) / cells,
            discernibility: disc,
        })
    }

    /// Evaluates one node against `target`.
    pub fn evaluate(
        &self,
        levels: &[usize],
        target: &Target,
    ) -> Result<(NodeResult, Partition, Vec<bool>)> {
        let p = self.partition(levels)?;
        let pass = self.passing(&p, target)?;
        let failing: usize = p
            .sizes
            .iter()
            .zip(&pass)
            .filter(|(_, ok)| !**ok)
            .map(|(&s, _)| s as usize)
            .sum();
        let allowed = (target.max_suppression * self.table.rows() as f64 + 1e-9).floor() as usize;
        let loss = self.information_loss(levels, &p, &pass)?;
        Ok((
            NodeResult {
                levels: levels.to_vec(),
                failing_records: failing,
                meets: failing <= allowed,
                loss,
            },
            p,
            pass,
        ))
    }

    /// Exhaustive search of the lattice (levels in `fixed` are held) for the node meeting
    /// `target` with the least loss by `metric`.
    pub fn search(
        &self,
        fixed: &[Option<usize>],
        target: &Target,
        metric: LossMetric,
    ) -> Result<SearchOutcome> {
        let ranges: Vec<(usize, usize)> = self
            .qis
            .iter()
            .zip(fixed)
            .map(|(q, f)| match f {
                Some(l) => (*l, *l),
                None => (0, q.height()),
            })
            .collect();
        let nodes: u128 = ranges
            .iter()
            .map(|(a, b)| (b - a + 1) as u128)
            .fold(1u128, |acc, n| acc.saturating_mul(n));
        if nodes > MAX_LATTICE_NODES {
            return Err(RiskError::LatticeTooLarge {
                nodes,
                limit: MAX_LATTICE_NODES,
            });
        }
        let key = |n: &NodeResult| -> (f64, usize, usize) {
            let l = match metric {
                LossMetric::Loss => n.loss.loss,
                LossMetric::Precision => n.loss.precision_loss,
            };
            (l, n.failing_records, n.levels.iter().sum())
        };
        let better = |a: &NodeResult, b: &NodeResult| -> bool {
            let (ka, kb) = (key(a), key(b));
            match ka.0.total_cmp(&kb.0) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => (ka.1, ka.2, &a.levels) < (kb.1, kb.2, &b.levels),
            }
        };
        let mut levels: Vec<usize> = ranges.iter().map(|r| r.0).collect();
        let mut best: Option<NodeResult> = None;
        let mut least: Option<NodeResult> = None;
        let mut meeting = 0usize;
        let mut count = 0usize;
        loop {
            let (node, _, _) = self.evaluate(&levels, target)?;
            count += 1;
            if node.meets {
                meeting += 1;
                if best.as_ref().is_none_or(|b| better(&node, b)) {
                    best = Some(node.clone());
                }
            }
            if least.as_ref().is_none_or(|b| {
                (node.failing_records, key(&node).0) < (b.failing_records, key(b).0)
            }) {
                least = Some(node);
            }
            // Next node (mixed-radix counter over the ranges).
            let mut i = 0;
            loop {
                if i == levels.len() {
                    return Ok(SearchOutcome {
                        nodes: count,
                        meeting,
                        best,
                        least_suppression: least,
                    });
                }
                if levels[i] < ranges[i].1 {
                    levels[i] += 1;
                    break;
                }
                levels[i] = ranges[i].0;
                i += 1;
            }
        }
    }

    /// Generalised values of every class at `levels` (for `--show-classes`).
    pub fn class_values(&self, levels: &[usize], p: &Partition) -> Result<Vec<Vec<String>>> {
        let views = self.views(levels)?;
        let mut out = Vec::with_capacity(p.sizes.len());
        for &r in &p.first_row {
            let mut vals = Vec::with_capacity(views.len());
            for (q, (v, &l)) in self.qis.iter().zip(views.iter().zip(levels)) {
                let label = v.map[v.codes[r as usize] as usize] as usize;
                let s = q
                    .level(l)
                    .and_then(|lv| lv.labels().get(label))
                    .cloned()
                    .unwrap_or_default();
                vals.push(s);
            }
            out.push(vals);
        }
        Ok(out)
    }

    /// Population size of every class at `levels` (0 for classes not `retained`), from a
    /// population table with the same quasi-identifier columns, generalised the same way.
    /// Returns the counts and the number of population records read.
    pub fn population_counts(
        &self,
        population: &Path,
        levels: &[usize],
        p: &Partition,
        retained: &[bool],
    ) -> Result<(Vec<u64>, usize)> {
        let names: Vec<&str> = self.qis.iter().map(|q| q.name()).collect();
        let pop = crate::read_table(population, None, &names)?;
        let views = self.views(levels)?;
        // Label tuple of every sample class → class.
        let mut classes: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        for (c, &r) in p.first_row.iter().enumerate() {
            if retained[c] {
                let key: Vec<u32> = views
                    .iter()
                    .map(|v| v.map[v.codes[r as usize] as usize])
                    .collect();
                classes.insert(key, c as u32);
            }
        }
        // Label code of every population value, per column (None: matches no sample class).
        let pop_labels: Vec<Vec<Option<u32>>> = self
            .qis
            .iter()
            .zip(pop.columns())
            .zip(levels)
            .map(|((q, col), &l)| col.values().iter().map(|v| q.code_of_value(v, l)).collect())
            .collect();
        let mut counts = vec![0u64; p.sizes.len()];
        let mut key = Vec::with_capacity(self.qis.len());
        'rows: for r in 0..pop.rows() {
            key.clear();
            for (j, col) in pop.columns().iter().enumerate() {
                match pop_labels[j][col.codes()[r] as usize] {
                    Some(l) => key.push(l),
                    None => continue 'rows,
                }
            }
            if let Some(&c) = classes.get(&key) {
                counts[c as usize] += 1;
            }
        }
        let short = p
            .sizes
            .iter()
            .zip(&counts)
            .zip(retained)
            .filter(|((s, n), keep)| **keep && (**n) < u64::from(**s))
            .count();
        if short > 0 {
            return Err(RiskError::PopulationTooSmall {
                file: population.to_path_buf(),
                classes: short,
            });
        }
        Ok((counts, pop.rows()))
    }
}
