//! Column selectors: `SSN` (exact name, case-insensitive), `*_DATE` / `ADDRESS*` (globs with `*`
//! and `?`), and `patients.SSN` (table = the file's stem, so one config covers a whole export).

use phiguard_rules::Selector;

/// A compiled column selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSelector {
    /// Upper-cased table pattern, `None` for any table.
    table: Option<String>,
    /// Upper-cased column pattern.
    column: String,
}

impl Selector for ColumnSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty column selector".to_string());
        }
        let (table, column) = match t.split_once('.') {
            Some((table, column)) => {
                if table.trim().is_empty() || column.trim().is_empty() {
                    return Err(
                        "a `table.column` selector needs both a table and a column".to_string()
                    );
                }
                (Some(table.trim().to_uppercase()), column.trim())
            }
            None => (None, t),
        };
        Ok(ColumnSelector {
            table,
            column: column.to_uppercase(),
        })
    }
}

impl ColumnSelector {
    /// True if this selector selects `column` (as written in the header, and in its normalised
    /// form, see [`normalize`]) of table `table` (the file stem, when known).
    pub fn matches(&self, table: Option<&str>, column: &str) -> bool {
        if let Some(pattern) = &self.table {
            match table {
                Some(t) if glob(pattern, &t.to_uppercase()) => {}
                _ => return false,
            }
        }
        let upper = column.trim().to_uppercase();
        glob(&self.column, &upper) || glob(&self.column, &normalize(column))
    }
}

/// A column name as the built-in name table sees it: upper case, with spaces, `-` and `.`
/// turned into `_` (`marital-status` → `MARITAL_STATUS`).
pub fn normalize(column: &str) -> String {
    column
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Glob match: `*` any run of characters (also none), `?` one character, everything else
/// literally. Both sides are expected in the same case.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> ColumnSelector {
        match ColumnSelector::parse(s) {
            Ok(s) => s,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*_DATE", "BIRTH_DATE"));
        assert!(!glob("*_DATE", "BIRTHDATE"));
        assert!(glob("ADDRESS*", "ADDRESS"));
        assert!(glob("ADDRESS*", "ADDRESS_LINE_2"));
        assert!(glob("A?C", "ABC"));
        assert!(!glob("A?C", "AC"));
        assert!(glob("*ID", "PATIENTID"));
        assert!(glob("*", ""));
        assert!(!glob("X", ""));
        assert!(glob("*A*B*", "XXAYYBZZ"));
        assert!(!glob("*A*B", "XXAYYBZZ"));
    }

    #[test]
    fn selectors() {
        assert!(sel("ssn").matches(None, "SSN"));
        assert!(sel("SSN").matches(Some("patients"), "ssn"));
        assert!(!sel("SSN").matches(None, "SSN2"));
        assert!(sel("patients.SSN").matches(Some("Patients"), "SSN"));
        assert!(!sel("patients.SSN").matches(Some("payers"), "SSN"));
        assert!(!sel("patients.SSN").matches(None, "SSN"));
        assert!(sel("*_DATE").matches(None, "service-date"));
        assert!(sel("marital-status").matches(None, "Marital-Status"));
        assert!(ColumnSelector::parse("  ").is_err());
        assert!(ColumnSelector::parse("patients.").is_err());
    }
}
