//! Counts for the run report: per rule, per path no rule covered, per detected category, and
//! notes (dates that could not be read, birth dates over 89, ...). Paths and counts only.

use std::collections::BTreeMap;

use phiguard_detect::Category;
use serde::Serialize;

use crate::action::Action;

/// What one rule (or one uncovered path's default) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The action, in config spelling.
    pub action: String,
    /// Values the rule matched.
    pub values: u64,
    /// Values it changed (replaced or removed).
    pub changed: u64,
    /// Values it removed.
    pub removed: u64,
}

/// Counts for one run (or one file; merge them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Per rule id.
    pub rules: BTreeMap<String, RuleCount>,
    /// Paths no rule covered, with the safe default applied to them.
    pub uncovered: BTreeMap<String, RuleCount>,
    /// Detections inside free text (`text` action), per category.
    pub categories: BTreeMap<String, u64>,
    /// Special handling, per note.
    pub notes: BTreeMap<String, u64>,
    /// Files and records (resources, messages, rows, DICOM files) processed.
    pub files: u64,
    pub records: u64,
}

impl Tally {
    /// Counts one value handled by `rule` (`covered`) or by the default for path `rule`.
    pub fn count(
        &mut self,
        rule: &str,
        covered: bool,
        action: Action,
        changed: bool,
        removed: bool,
    ) {
        let map = if covered {
            &mut self.rules
        } else {
            &mut self.uncovered
        };
        let e = match map.get_mut(rule) {
            Some(e) => e,
            None => map.entry(rule.to_string()).or_insert_with(|| RuleCount {
                action: action.as_str().to_string(),
                ..RuleCount::default()
            }),
        };
        e.values += 1;
        e.changed += u64::from(changed);
        e.removed += u64::from(removed);
    }

    /// Counts detections of `category` inside free text.
    pub fn category(&mut self, category: Category, n: u64) {
        *self
            .categories
            .entry(category.as_str().to_string())
            .or_default() += n;
    }

    /// Counts one note.
    pub fn note(&mut self, note: &str) {
        match self.notes.get_mut(note) {
            Some(n) => *n += 1,
            None => {
                self.notes.insert(note.to_string(), 1);
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: Tally) {
        for (map, theirs) in [
            (&mut self.rules, other.rules),
            (&mut self.uncovered, other.uncovered),
        ] {
            for (k, v) in theirs {
                let e = map.entry(k).or_insert_with(|| RuleCount {
                    action: v.action.clone(),
                    ..RuleCount::default()
                });
                e.values += v.values;
                e.changed += v.changed;
                e.removed += v.removed;
            }
        }
        for (k, v) in other.categories {
            *self.categories.entry(k).or_default() += v;
        }
        for (k, v) in other.notes {
            *self.notes.entry(k).or_default() += v;
        }
        self.files += other.files;
        self.records += other.records;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_up() {
        let mut a = Tally::default();
        a.count("r1", true, Action::Remove, true, true);
        a.count("PID-99", false, Action::Remove, true, true);
        let mut b = Tally::default();
        b.count("r1", true, Action::Remove, true, true);
        b.note("x");
        b.records = 2;
        a.merge(b);
        assert_eq!(a.rules["r1"].values, 2);
        assert_eq!(a.uncovered["PID-99"].removed, 1);
        assert_eq!(a.notes["x"], 1);
        assert_eq!(a.records, 2);
    }
}
