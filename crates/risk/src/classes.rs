//! Equivalence classes (records sharing the same generalised quasi-identifier tuple) and the
//! privacy and risk figures computed over them. The sensitive-attribute figures follow pycanon
//! 1.3.6's definitions exactly (see `docs/risk.md`).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RiskError};
use crate::table::Column;

/// The partition of the rows into equivalence classes.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Class index of every row.
    pub row_class: Vec<u32>,
    /// Size of every class.
    pub sizes: Vec<u32>,
    /// One row of every class (its first), to read the class's generalised values.
    pub first_row: Vec<u32>,
}

/// One quasi-identifier as seen by [`partition`]: base codes per row, the label of each base
/// code at the chosen level, and the number of labels.
#[derive(Debug, Clone, Copy)]
pub struct QiView<'a> {
    /// Base code per row.
    pub codes: &'a [u32],
    /// Label code per base code.
    pub map: &'a [u32],
    /// Number of label codes.
    pub labels: usize,
}

/// Groups rows by their tuple of label codes. Keys are packed into a `u64` (mixed radix) when
/// the label counts allow, else hashed as vectors.
pub fn partition(qis: &[QiView<'_>], rows: usize) -> Partition {
    let mut radix_ok = true;
    let mut prod: u64 = 1;
    for q in qis {
        match prod.checked_mul(q.labels.max(1) as u64) {
            Some(p) => prod = p,
            None => {
                radix_ok = false;
                break;
            }
        }
    }
    let mut row_class = Vec::with_capacity(rows);
    let mut sizes: Vec<u32> = Vec::new();
    let mut first_row: Vec<u32> = Vec::new();
    if radix_ok {
        let mut map: FxHashMap<u64, u32> = FxHashMap::default();
        for r in 0..rows {
            let mut key = 0u64;
            for q in qis {
                key = key * q.labels.max(1) as u64 + u64::from(q.map[q.codes[r] as usize]);
            }
            let next = sizes.len() as u32;
            let c = *map.entry(key).or_insert(next);
            if c == next {
                sizes.push(0);
                first_row.push(r as u32);
            }
            sizes[c as usize] += 1;
            row_class.push(c);
        }
    } else {
        let mut map: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        let mut key = Vec::with_capacity(qis.len());
        for r in 0..rows {
            key.clear();
            key.extend(qis.iter().map(|q| q.map[q.codes[r] as usize]));
            let next = sizes.len() as u32;
            let c = match map.get(&key) {
                Some(&c) => c,
                None => {
                    map.insert(key.clone(), next);
                    sizes.push(0);
                    first_row.push(r as u32);
                    next
                }
            };
            sizes[c as usize] += 1;
            row_class.push(c);
        }
    }
    Partition {
        row_class,
        sizes,
        first_row,
    }
}

/// How the sensitive attribute's values are compared for t-closeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensitiveKind {
    /// Equal ground distance (pycanon's choice for string columns).
    Categorical,
    /// Ordered distance over the sorted distinct values (pycanon's choice for numeric columns).
    Numerical,
}

/// The sensitive attribute, coded by rank of its value in sorted order (numerically for a
/// numerical attribute, so `1` and `1.0` are one value, as pandas reads them).
#[derive(Clone)]
pub struct Sensitive {
    name: String,
    kind: SensitiveKind,
    ranks: Vec<u32>,
    distinct: usize,
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensitive")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("distinct", &self.distinct)
            .finish_non_exhaustive()
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

impl Sensitive {
    /// Codes a column. `kind` `None` detects it as pandas does for a CSV column: numerical when
    /// every value parses as a number, categorical otherwise. Asking for numerical when a value
    /// is not a number is an error naming the line of the first such value.
    pub fn new(column: &Column, kind: Option<SensitiveKind>) -> Result<Sensitive> {
        let values = column.values();
        let numbers: Vec<Option<f64>> = values.iter().map(|v| parse_number(v)).collect();
        let all_numbers = !values.is_empty() && numbers.iter().all(Option::is_some);
        let kind = match kind {
            Some(SensitiveKind::Numerical) if !all_numbers => {
                let line = numbers
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.is_none())
                    .map(|(c, _)| column.first_line(c as u32))
                    .min()
                    .unwrap_or(0);
                return Err(RiskError::Config(format!(
                    "sensitive column '{}' asked as numerical but the value on line {line} is not a number",
                    column.name()
                )));
            }
            Some(k) => k,
            None if all_numbers => SensitiveKind::Numerical,
            None => SensitiveKind::Categorical,
        };
        let (rank_of_code, distinct) = match kind {
            SensitiveKind::Numerical => {
                let nums: Vec<f64> = numbers.iter().map(|n| n.unwrap_or(0.0)).collect();
                let mut order: Vec<u32> = (0..nums.len() as u32).collect();
                order.sort_by(|&a, &b| nums[a as usize].total_cmp(&nums[b as usize]));
                rank(
                    &order,
                    |a, b| nums[a as usize] == nums[b as usize],
                    nums.len(),
                )
            }
            SensitiveKind::Categorical => {
                let mut order: Vec<u32> = (0..values.len() as u32).collect();
                order.sort_by(|&a, &b| values[a as usize].cmp(&values[b as usize]));
                rank(
                    &order,
                    |a, b| values[a as usize] == values[b as usize],
                    values.len(),
                )
            }
        };
        Ok(Sensitive {
            name: column.name().to_string(),
            kind,
            ranks: column
                .codes()
                .iter()
                .map(|&c| rank_of_code[c as usize])
                .collect(),
            distinct,
        })
    }

    /// The column name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Categorical or numerical.
    pub fn kind(&self) -> SensitiveKind {
        self.kind
    }
    /// Rank code of every row.
    pub fn ranks(&self) -> &[u32] {
        &self.ranks
    }
    /// Distinct values in the whole table.
    pub fn distinct(&self) -> usize {
        self.distinct
    }
}

fn rank(order: &[u32], eq: impl Fn(u32, u32) -> bool, n: usize) -> (Vec<u32>, usize) {
    let mut out = vec![0u32; n];
    let mut r = 0u32;
    for (i, &c) in order.iter().enumerate() {
        if i > 0 && !eq(order[i - 1], c) {
            r += 1;
        }
        out[c as usize] = r;
    }
    (out, if n == 0 { 0 } else { r as usize + 1 })
}

/// numpy's `np.sum` over a contiguous float64 array (pairwise summation: sequential below 8
/// elements, 8 accumulators up to 128, halving above), so that entropies are bit-for-bit those
/// pycanon computes.
pub fn numpy_sum(a: &[f64]) -> f64 {
    fn pairwise(a: &[f64]) -> f64 {
        let n = a.len();
        if n < 8 {
            let mut res = 0.0;
            for &x in a {
                res += x;
            }
            res
        } else if n <= 128 {
            let mut r = [0.0f64; 8];
            r.copy_from_slice(&a[..8]);
            let mut i = 8;
            while i < n - (n % 8) {
                for j in 0..8 {
                    r[j] += a[i + j];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            while i < n {
                res += a[i];
                i += 1;
            }
            res
        } else {
            let mut n2 = n / 2;
            n2 -= n2 % 8;
            pairwise(&a[..n2]) + pairwise(&a[n2..])
        }
    }
    pairwise(a)
}

/// Class-size distribution bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeBucket {
    /// Smallest class size in the bucket.
    pub min_size: usize,
    /// Largest class size in the bucket (`None`: unbounded).
    pub max_size: Option<usize>,
    /// Classes in the bucket.
    pub classes: usize,
    /// Records in those classes.
    pub records: usize,
}

/// Risk under one attacker model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackerRisk {
    /// Highest re-identification probability of any record.
    pub highest: f64,
    /// Average probability over records.
    pub average: f64,
    /// Records whose probability is above the threshold.
    pub records_at_risk: usize,
    /// The same as a fraction of the records analysed.
    pub records_at_risk_fraction: f64,
}

/// Figures over the sensitive attribute (pycanon's definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitiveFigures {
    /// The column.
    pub column: String,
    /// How t-closeness compares values.
    pub kind: SensitiveKind,
    /// Distinct values among the records analysed.
    pub distinct_values: usize,
    /// Distinct l-diversity: the fewest distinct sensitive values in a class.
    pub l_diversity: usize,
    /// Entropy l-diversity as a real number: exp of the smallest class entropy (natural log).
    pub entropy_l: f64,
    /// What pycanon's `entropy_l_diversity` returns: `int(min(e ** H))`, truncated, so a class
    /// with two equally frequent values gives 1 (e ** ln 2 = 1.9999999999999998).
    pub entropy_l_pycanon: usize,
    /// t-closeness: the largest Earth Mover's Distance between a class's distribution and the
    /// table's (equal distance for categorical, ordered distance for numerical values).
    pub t_closeness: f64,
}

/// Every figure measured over one partition (after suppression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Records analysed (not suppressed).
    pub records: usize,
    /// Equivalence classes.
    pub equivalence_classes: usize,
    /// k: the smallest class (0 when no record is left).
    pub k: usize,
    /// Largest class.
    pub largest_class: usize,
    /// Mean class size.
    pub average_class_size: f64,
    /// Records alone in their class.
    pub sample_uniques: usize,
    /// Sample uniques as a fraction of the records.
    pub sample_uniques_fraction: f64,
    /// Prosecutor model: the attacker knows the person is in the data. Highest 1/k, average
    /// classes/records.
    pub prosecutor: AttackerRisk,
    /// Mean over classes of 1/|class| (pycanon's `average_rir`; not weighted by records, so it
    /// differs from the prosecutor average).
    pub mean_class_risk: f64,
    /// Marketer model (no population table): classes/records, the expected fraction of records
    /// re-identified when every record is matched.
    pub marketer: f64,
    /// Class-size distribution.
    pub class_sizes: Vec<SizeBucket>,
    /// Sensitive-attribute figures, when a sensitive column is given.
    pub sensitive: Option<SensitiveFigures>,
}

const BUCKETS: [(usize, Option<usize>); 9] = [
    (1, Some(1)),
    (2, Some(2)),
    (3, Some(3)),
    (4, Some(4)),
    (5, Some(9)),
    (10, Some(19)),
    (20, Some(49)),
    (50, Some(99)),
    (100, None),
];

/// Computes the figures over the classes with `retained[c]`, as if the other classes' records
/// were removed from the table (as pycanon would see the suppressed table).
pub fn measure(
    p: &Partition,
    retained: &[bool],
    sensitive: Option<&Sensitive>,
    threshold: f64,
) -> Measures {
    let mut records = 0usize;
    let mut classes = 0usize;
    let mut k = usize::MAX;
    let mut largest = 0usize;
    let mut uniques = 0usize;
    let mut at_risk = 0usize;
    let mut inv_sum = 0.0f64;
    let mut buckets: Vec<SizeBucket> = BUCKETS
        .iter()
        .map(|&(min_size, max_size)| SizeBucket {
            min_size,
            max_size,
            classes: 0,
            records: 0,
        })
        .collect();
    for (c, &s) in p.sizes.iter().enumerate() {
        if !retained[c] {
            continue;
        }
        let s = s as usize;
        records += s;
        classes += 1;
        k = k.min(s);
        largest = largest.max(s);
        inv_sum += 1.0 / s as f64;
        if s == 1 {
            uniques += 1;
        }
        if 1.0 / s as f64 > threshold {
            at_risk += s;
        }
        if let Some(b) = buckets
            .iter_mut()
            .find(|b| s >= b.min_size && b.max_size.is_none_or(|m| s <= m))
        {
            b.classes += 1;
            b.records += s;
        }
    }
    if classes == 0 {
        k = 0;
    }
    let frac = |x: usize| {
        if records == 0 {
            0.0
        } else {
            x as f64 / records as f64
        }
    };
    Measures {
        records,
        equivalence_classes: classes,
        k,
        largest_class: largest,
        average_class_size: if classes == 0 {
            0.0
        } else {
            records as f64 / classes as f64
        },
        sample_uniques: uniques,
        sample_uniques_fraction: frac(uniques),
        prosecutor: AttackerRisk {
            highest: if k == 0 { 0.0 } else { 1.0 / k as f64 },
            average: frac(classes),
            records_at_risk: at_risk,
            records_at_risk_fraction: frac(at_risk),
        },
        mean_class_risk: if classes == 0 {
            0.0
        } else {
            inv_sum / classes as f64
        },
        marketer: frac(classes),
        class_sizes: buckets,
        sensitive: sensitive.map(|s| sensitive_figures(p, retained, s, records)),
    }
}

/// Sorted `(class, rank)` pairs of the retained rows, run-length encoded: per class, the
/// `(rank, count)` list in rank order.
fn class_histograms(
    p: &Partition,
    retained: &[bool],
    s: &Sensitive,
) -> Vec<(u32, Vec<(u32, u32)>)> {
    let mut pairs: Vec<u64> = p
        .row_class
        .iter()
        .zip(s.ranks())
        .filter(|(c, _)| retained[**c as usize])
        .map(|(&c, &r)| (u64::from(c) << 32) | u64::from(r))
        .collect();
    pairs.sort_unstable();
    let mut out: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let key = pairs[i];
        let mut j = i;
        while j < pairs.len() && pairs[j] == key {
            j += 1;
        }
        let class = (key >> 32) as u32;
        let rank = (key & 0xffff_ffff) as u32;
        match out.last_mut() {
            Some((c, h)) if *c == class => h.push((rank, (j - i) as u32)),
            _ => out.push((class, vec![(rank, (j - i) as u32)])),
        }
        i = j;
    }
    out
}

/// Distinct sensitive values of each class (0 for classes not retained).
pub fn distinct_per_class(p: &Partition, retained: &[bool], s: &Sensitive) -> Vec<usize> {
    let mut out = vec![0usize; p.sizes.len()];
    for (c, h) in class_histograms(p, retained, s) {
        out[c as usize] = h.len();
    }
    out
}

fn sensitive_figures(
    p: &Partition,
    retained: &[bool],
    s: &Sensitive,
    records: usize,
) -> SensitiveFigures {
    let hists = class_histograms(p, retained, s);
    // The table's distribution over the values present in the retained records, in order.
    let mut global: Vec<u32> = vec![0; s.distinct()];
    for (_, h) in &hists {
        for &(r, n) in h {
            global[r as usize] += n;
        }
    }
    let present: Vec<(u32, u32)> = global
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(r, &n)| (r as u32, n))
        .collect();
    let m = present.len();
    let pglob: Vec<f64> = present
        .iter()
        .map(|&(_, n)| n as f64 / records as f64)
        .collect();
    let mut l = usize::MAX;
    let mut min_h = f64::INFINITY;
    let mut t = 0.0f64;
    let mut terms: Vec<f64> = Vec::new();
    for (c, h) in &hists {
        let size = p.sizes[*c as usize] as f64;
        l = l.min(h.len());
        terms.clear();
        terms.extend(h.iter().map(|&(_, n)| {
            let q = n as f64 / size;
            q * q.ln()
        }));
        min_h = min_h.min(-numpy_sum(&terms));
        // EMD against the table's distribution, summed in value order as pycanon does.
        let mut emd = 0.0f64;
        let mut cum = 0.0f64;
        let mut it = h.iter().peekable();
        for (i, &(r, _)) in present.iter().enumerate() {
            let cnt = match it.peek() {
                Some(&&(hr, n)) if hr == r => {
                    it.next();
                    n
                }
                _ => 0,
            };
            let diff = cnt as f64 / size - pglob[i];
            match s.kind() {
                SensitiveKind::Categorical => emd += diff.abs(),
                SensitiveKind::Numerical => {
                    cum += diff;
                    emd += cum.abs();
                }
            }
        }
        let emd = match s.kind() {
            SensitiveKind::Categorical => 0.5 * emd,
            SensitiveKind::Numerical if m > 1 => 1.0 / (m - 1) as f64 * emd,
            SensitiveKind::Numerical => 0.0,
        };
        t = t.max(emd);
    }
    if hists.is_empty() {
        l = 0;
        min_h = 0.0;
    }
    let entropy_l = std::f64::consts::E.powf(min_h);
    SensitiveFigures {
        column: s.name().to_string(),
        kind: s.kind(),
        distinct_values: m,
        l_diversity: l,
        entropy_l,
        entropy_l_pycanon: if hists.is_empty() {
            0
        } else {
            entropy_l.trunc() as usize
        },
        t_closeness: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_sum_matches_sequential_for_short_and_pairwise_for_long() {
        assert_eq!(numpy_sum(&[]), 0.0);
        assert_eq!(numpy_sum(&[1.0, 2.0, 3.0]), 6.0);
        let v: Vec<f64> = (0..300).map(|i| 0.1 * i as f64).collect();
        let s = numpy_sum(&v);
        assert!((s - 4485.0).abs() < 1e-9);
        // np.sum([1/(i+3) for i in range(9)]) = 0x1.8516ae822df44p+0 (numpy 2.0.2), one ulp
        // below the sequential sum.
        let v: Vec<f64> = (0..9).map(|i| 1.0 / (i as f64 + 3.0)).collect();
        assert_eq!(numpy_sum(&v).to_bits(), 0x3FF8516AE822DF44);
        assert_eq!(
            v.iter().fold(0.0, |a, x| a + x).to_bits(),
            0x3FF8516AE822DF45
        );
    }

    #[test]
    fn partition_counts_classes_both_key_paths() {
        let a = [0u32, 1, 0, 1, 0];
        let b = [0u32, 0, 0, 1, 1];
        let id: Vec<u32> = (0..2).collect();
        let qis = [
            QiView {
                codes: &a,
                map: &id,
                labels: 2,
            },
            QiView {
                codes: &b,
                map: &id,
                labels: 2,
            },
        ];
        let p = partition(&qis, 5);
        assert_eq!(p.sizes, vec![2, 1, 1, 1]);
        assert_eq!(p.row_class, vec![0, 1, 0, 2, 3]);
        // Force the vector-key path with a huge label count.
        let big = [
            QiView {
                codes: &a,
                map: &id,
                labels: usize::MAX / 2,
            },
            QiView {
                codes: &b,
                map: &id,
                labels: usize::MAX / 2,
            },
        ];
        let q = partition(&big, 5);
        assert_eq!(q.sizes, p.sizes);
        assert_eq!(q.row_class, p.row_class);
    }
}
