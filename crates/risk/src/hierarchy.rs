//! ARX generalisation hierarchies (`value;level1;level2;...;*`, one row per value, every row the
//! same length) and their application to a column: one code map per level.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::error::{Result, RiskError};
use crate::table::Column;

/// A hierarchy as read from an ARX CSV file.
pub struct Hierarchy {
    path: PathBuf,
    /// Row per value: `[value, level1, ..., levelN]`.
    rows: Vec<Vec<String>>,
    index: FxHashMap<String, usize>,
}

impl std::fmt::Debug for Hierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hierarchy")
            .field("path", &self.path)
            .field("values", &self.rows.len())
            .field("height", &self.height())
            .finish()
    }
}

impl Hierarchy {
    /// Reads an ARX hierarchy file. The delimiter is `;` (ARX's), or `,`/tab when the first line
    /// has no `;`. A value listed twice must have the same generalisations.
    pub fn read(path: &Path) -> Result<Hierarchy> {
        let bytes = std::fs::read(path).map_err(|source| RiskError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Hierarchy::from_bytes(path, &bytes)
    }

    /// Parses hierarchy text; `path` is used in error messages only.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Hierarchy> {
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let delimiter = if first.contains(&b';') {
            b';'
        } else {
            crate::table::sniff_delimiter(first)
        };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        let mut index: FxHashMap<String, usize> = FxHashMap::default();
        let mut width = 0usize;
        let mut rec = csv::ByteRecord::new();
        // 1-based line of a record from its byte offset (see table::LineCounter).
        let (mut seen, mut upto) = (0u64, 0usize);
        let mut line_at = |byte: u64| -> u64 {
            let end = (byte as usize).saturating_add(1).min(bytes.len());
            if end > upto {
                seen += memchr::memchr_iter(b'\n', &bytes[upto..end]).count() as u64;
                upto = end;
            }
            seen + 1
        };
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(RiskError::Csv {
                        file: path.to_path_buf(),
                        line: e.position().map(|p| line_at(p.byte())).unwrap_or(0),
                        kind: "parse error".into(),
                    });
                }
            }
            let line = rec.position().map(|p| line_at(p.byte())).unwrap_or(0);
            if rows.is_empty() {
                width = rec.len();
            } else if rec.len() != width {
                return Err(RiskError::HierarchyRagged {
                    file: path.to_path_buf(),
                    line,
                    expected: width,
                    found: rec.len(),
                });
            }
            let mut row = Vec::with_capacity(rec.len());
            for (i, f) in rec.iter().enumerate() {
                let s = std::str::from_utf8(f).map_err(|_| RiskError::Utf8 {
                    file: path.to_path_buf(),
                    line,
                    column: format!("level {i}"),
                })?;
                row.push(s.to_string());
            }
            match index.get(&row[0]) {
                Some(&i) => {
                    if rows[i] != row {
                        return Err(RiskError::HierarchyConflict {
                            file: path.to_path_buf(),
                            line,
                            first: lines[i],
                        });
                    }
                }
                None => {
                    index.insert(row[0].clone(), rows.len());
                    rows.push(row);
                    lines.push(line);
                }
            }
        }
        if rows.is_empty() {
            return Err(RiskError::HierarchyEmpty {
                file: path.to_path_buf(),
            });
        }
        Ok(Hierarchy {
            path: path.to_path_buf(),
            rows,
            index,
        })
    }

    /// A built-in hierarchy over the distinct values of `column`, named `builtin:KIND`:
    ///
    /// - `zip`: digits masked from the right, `02139` → `0213*` → `021**` → … → `*` (all values
    ///   the same number of digits);
    /// - `age`: `85` → `85-89` → `80-89` → `80-99` → `*`, with every age of 90 or more in `90+`
    ///   at levels 1–3 (HIPAA Safe Harbor's aggregation);
    /// - `year`: like `age` without the `90+` rule (for birth years);
    /// - `date`: ISO dates `YYYY-MM-DD`, `YYYY-MM` or `YYYY` → `YYYY-MM` → `YYYY` → 5-year band
    ///   → 10-year band → `*`.
    ///
    /// An empty value (missing) stays empty up to the last level, `*`. Any other value that
    /// does not fit is an error naming the line where it first appears.
    pub fn builtin(kind: &str, column: &Column, table_path: &Path) -> Result<Hierarchy> {
        let path = PathBuf::from(format!("builtin:{kind}"));
        let bad = |code: usize, why: &str| {
            RiskError::Config(format!(
                "column '{}': the value on line {} of {} does not fit builtin:{kind} ({why})",
                column.name(),
                column.first_line(code as u32),
                table_path.display()
            ))
        };
        let band = |v: i64, w: i64| -> String {
            let lo = v.div_euclid(w) * w;
            format!("{lo}-{}", lo + w - 1)
        };
        let all = column.values();
        // Missing values get their own chain after the match.
        let values: Vec<(usize, &String)> = all
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(all.len());
        match kind {
            "zip" => {
                let len = values.first().map(|(_, v)| v.len()).unwrap_or(0);
                for &(c, v) in &values {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad(c, "not all digits"));
                    }
                    if v.len() != len {
                        return Err(bad(c, "not the same number of digits as the first value"));
                    }
                    let mut row = vec![v.clone()];
                    for i in 1..len {
                        row.push(format!("{}{}", &v[..len - i], "*".repeat(i)));
                    }
                    row.push("*".to_string());
                    rows.push(row);
                }
            }
            "age" | "year" => {
                for &(c, v) in &values {
                    let n: i64 = v.trim().parse().map_err(|_| bad(c, "not a whole number"))?;
                    let mut row = vec![v.clone()];
                    if kind == "age" && n >= 90 {
                        row.extend(["90+".to_string(), "90+".to_string(), "90+".to_string()]);
                    } else {
                        row.extend([band(n, 5), band(n, 10), band(n, 20)]);
                    }
                    row.push("*".to_string());
                    rows.push(row);
                }
            }
            "date" => {
                for &(c, v) in &values {
                    let b = v.as_bytes();
                    let digits = |r: std::ops::Range<usize>| {
                        b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit))
                    };
                    let ok = digits(0..4)
                        && match b.len() {
                            4 => true,
                            7 => b[4] == b'-' && digits(5..7),
                            10 => b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
                            _ => false,
                        };
                    if !ok {
                        return Err(bad(c, "not YYYY-MM-DD, YYYY-MM or YYYY"));
                    }
                    let year: i64 = v[..4].parse().map_err(|_| bad(c, "bad year"))?;
                    rows.push(vec![
                        v.clone(),
                        v[..v.len().min(7)].to_string(),
                        v[..4].to_string(),
                        band(year, 5),
                        band(year, 10),
                        "*".to_string(),
                    ]);
                }
            }
            other => {
                return Err(RiskError::Config(format!(
                    "unknown built-in hierarchy 'builtin:{other}' (zip, age, year, date)"
                )));
            }
        }
        let height = match kind {
            "zip" => values.first().map(|(_, v)| v.len()).unwrap_or(1),
            "date" => 5,
            _ => 4,
        };
        if all.iter().any(String::is_empty) {
            let mut row = vec![String::new(); height];
            row.push("*".to_string());
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(RiskError::HierarchyEmpty { file: path });
        }
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r[0].clone(), i))
            .collect();
        Ok(Hierarchy { path, rows, index })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Highest level (the number of generalisation columns).
    pub fn height(&self) -> usize {
        self.rows
            .first()
            .map(|r| r.len().saturating_sub(1))
            .unwrap_or(0)
    }
    /// Number of values (leaves) listed.
    pub fn leaves(&self) -> usize {
        self.rows.len()
    }
    /// The generalisation of `value` at `level` (level 0 is the value itself).
    pub fn generalise(&self, value: &str, level: usize) -> Option<&str> {
        let &i = self.index.get(value)?;
        self.rows[i].get(level).map(String::as_str)
    }
}

/// One level of a quasi-identifier: the label of every base code, and each label's loss.
pub struct Level {
    map: Vec<u32>,
    labels: Vec<String>,
    lookup: FxHashMap<String, u32>,
    loss: Vec<f64>,
}

impl Level {
    /// The label code of every base (level-0) code.
    pub fn map(&self) -> &[u32] {
        &self.map
    }
    /// Labels (generalised values) by label code.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// Iyengar's generalisation loss of each label: (leaves under it − 1) / (domain − 1).
    pub fn loss(&self) -> &[f64] {
        &self.loss
    }
    /// The label code of a generalised value, if any sample value maps to it.
    pub fn code_of(&self, label: &str) -> Option<u32> {
        self.lookup.get(label).copied()
    }
}

/// A quasi-identifier with every generalisation level applied to its column.
pub struct QuasiIdentifier {
    name: String,
    hierarchy: Option<Hierarchy>,
    levels: Vec<Level>,
}

impl std::fmt::Debug for QuasiIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuasiIdentifier")
            .field("name", &self.name)
            .field("hierarchy", &self.hierarchy)
            .field("height", &self.height())
            .finish_non_exhaustive()
    }
}

fn intern(lookup: &mut FxHashMap<String, u32>, labels: &mut Vec<String>, s: &str) -> u32 {
    if let Some(&c) = lookup.get(s) {
        return c;
    }
    let c = labels.len() as u32;
    labels.push(s.to_string());
    lookup.insert(s.to_string(), c);
    c
}

impl QuasiIdentifier {
    /// Builds the levels of `column`. With a hierarchy every value of the column must be in it
    /// (an error names the line of the first missing value). Without one, the column has two
    /// levels: the value, and `*` (suppressed attribute).
    pub fn new(column: &Column, table_path: &Path, hierarchy: Option<Hierarchy>) -> Result<Self> {
        let values = column.values();
        let mut levels = Vec::new();
        // Level 0: the values themselves.
        let mut lookup0 = FxHashMap::default();
        for (i, v) in values.iter().enumerate() {
            lookup0.insert(v.clone(), i as u32);
        }
        levels.push(Level {
            map: (0..values.len() as u32).collect(),
            labels: values.to_vec(),
            lookup: lookup0,
            loss: vec![0.0; values.len()],
        });
        match &hierarchy {
            Some(h) => {
                let missing: Vec<u32> = (0..values.len() as u32)
                    .filter(|&c| !h.index.contains_key(&values[c as usize]))
                    .collect();
                if let Some(&first) = missing.iter().min_by_key(|&&c| column.first_line(c)) {
                    return Err(RiskError::NotInHierarchy {
                        column: column.name().to_string(),
                        file: table_path.to_path_buf(),
                        line: column.first_line(first),
                        hierarchy: h.path.clone(),
                        missing: missing.len(),
                    });
                }
                let domain = h.leaves();
                for level in 1..=h.height() {
                    // Leaves under each label of this level, over the whole hierarchy.
                    let mut leaves: FxHashMap<&str, usize> = FxHashMap::default();
                    for r in &h.rows {
                        *leaves.entry(r[level].as_str()).or_default() += 1;
                    }
                    let mut labels = Vec::new();
                    let mut lookup = FxHashMap::default();
                    let mut map = Vec::with_capacity(values.len());
                    for v in values {
                        let label = h.generalise(v, level).unwrap_or("*");
                        map.push(intern(&mut lookup, &mut labels, label));
                    }
                    let loss = labels
                        .iter()
                        .map(|l| {
                            let n = leaves.get(l.as_str()).copied().unwrap_or(1);
                            if domain <= 1 {
                                0.0
                            } else {
                                (n.saturating_sub(1)) as f64 / (domain - 1) as f64
                            }
                        })
                        .collect();
                    levels.push(Level {
                        map,
                        labels,
                        lookup,
                        loss,
                    });
                }
            }
            None => {
                let mut lookup = FxHashMap::default();
                lookup.insert("*".to_string(), 0);
                levels.push(Level {
                    map: vec![0; values.len()],
                    labels: vec!["*".to_string()],
                    lookup,
                    loss: vec![if values.len() > 1 { 1.0 } else { 0.0 }],
                });
            }
        }
        Ok(QuasiIdentifier {
            name: column.name().to_string(),
            hierarchy,
            levels,
        })
    }

    /// The column name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The hierarchy, if one was given.
    pub fn hierarchy(&self) -> Option<&Hierarchy> {
        self.hierarchy.as_ref()
    }
    /// Highest level.
    pub fn height(&self) -> usize {
        self.levels.len() - 1
    }
    /// A level (0 = original values).
    pub fn level(&self, level: usize) -> Option<&Level> {
        self.levels.get(level)
    }
    /// The label code at `level` of a raw value (used to match a population table), or `None`
    /// when no sample value generalises to the same label.
    pub fn code_of_value(&self, value: &str, level: usize) -> Option<u32> {
        let lv = self.levels.get(level)?;
        if level == 0 {
            return lv.code_of(value);
        }
        match &self.hierarchy {
            Some(h) => lv.code_of(h.generalise(value, level)?),
            None => Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arx_format() {
        let h = Hierarchy::from_bytes(
            Path::new("h.csv"),
            b"29;[20,30[;*\n22;[20,30[;*\n43;>=40;*\n",
        )
        .unwrap();
        assert_eq!(h.height(), 2);
        assert_eq!(h.leaves(), 3);
        assert_eq!(h.generalise("22", 1), Some("[20,30["));
        assert_eq!(h.generalise("43", 2), Some("*"));
        assert_eq!(h.generalise("44", 1), None);
    }

    #[test]
    fn builtin_hierarchies() {
        let t = crate::table::Table::from_reader(
            Path::new("t.csv"),
            "z,a,d\n02139,34,1961-02-03\n10001,92,1961-02\n,,\n".as_bytes(),
            &["z", "a", "d"],
        )
        .unwrap();
        let p = Path::new("t.csv");
        let z = Hierarchy::builtin("zip", &t.columns()[0], p).unwrap();
        assert_eq!(z.height(), 5);
        assert_eq!(z.generalise("02139", 2), Some("021**"));
        assert_eq!(z.generalise("02139", 5), Some("*"));
        assert_eq!(z.generalise("", 4), Some(""));
        assert_eq!(z.generalise("", 5), Some("*"));
        let a = Hierarchy::builtin("age", &t.columns()[1], p).unwrap();
        assert_eq!(a.generalise("34", 1), Some("30-34"));
        assert_eq!(a.generalise("34", 3), Some("20-39"));
        assert_eq!(a.generalise("92", 2), Some("90+"));
        let y = Hierarchy::builtin("year", &t.columns()[1], p).unwrap();
        assert_eq!(y.generalise("92", 2), Some("90-99"));
        let d = Hierarchy::builtin("date", &t.columns()[2], p).unwrap();
        assert_eq!(d.generalise("1961-02-03", 1), Some("1961-02"));
        assert_eq!(d.generalise("1961-02", 1), Some("1961-02"));
        assert_eq!(d.generalise("1961-02-03", 3), Some("1960-1964"));
        assert_eq!(d.generalise("1961-02-03", 4), Some("1960-1969"));
        let e = Hierarchy::builtin("zip", &t.columns()[2], p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && !e.contains("1961"), "{e}");
        let e = Hierarchy::builtin("date", &t.columns()[1], p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && !e.contains("34"), "{e}");
        assert!(Hierarchy::builtin("nope", &t.columns()[0], p).is_err());
    }

    #[test]
    fn ragged_and_conflicting_rows_are_errors() {
        let e = Hierarchy::from_bytes(Path::new("h.csv"), b"a;x;*\nb;*\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("line 2: 2 fields where line 1 has 3"),
            "{e}"
        );
        let e = Hierarchy::from_bytes(Path::new("h.csv"), b"a;x;*\r\nb;*\r\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("line 2: 2 fields where line 1 has 3"),
            "{e}"
        );
        let e = Hierarchy::from_bytes(Path::new("h.csv"), b"a;x;*\na;y;*\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Hierarchy::from_bytes(Path::new("h.csv"), b"").unwrap_err();
        assert!(e.to_string().contains("no rows"));
    }
}
