//! What happens to each column of one table: the first matching rule (user rules, then the
//! profile's name table), or, for a column no rule covers, a decision from a sample of its
//! values run through the detector. Then the per-cell application, with a cache of values the
//! detector found clean (codes and clinical descriptions repeat a lot).

use std::collections::{BTreeMap, HashSet};

use phiguard_detect::Category;
use phiguard_rules::{
    Action, Engine, Kind, Outcome, PatientRef, ProfileName, RuleError, RuleSet, Tally, is_uuid,
};

use crate::profile::{Class, classify};
use crate::selector::ColumnSelector;

/// At most this many distinct values of a column go through the detector when sampling.
const DETECT_SAMPLE: usize = 100;
/// At most this many clean values are remembered per column.
const CLEAN_CACHE: usize = 1 << 14;

/// What the detector found in a column's sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Non-empty values looked at.
    pub values: usize,
    /// Values that run through the detector (distinct, capped).
    pub detected_over: usize,
    /// Per category: values (of `detected_over`) with at least one detection.
    pub categories: BTreeMap<Category, usize>,
    /// Values that are UUIDs.
    pub uuids: usize,
    /// Values that are numbers.
    pub numbers: usize,
    /// Values that are integers of five digits or more.
    pub long_ints: usize,
    /// Distinct values.
    pub distinct: usize,
    /// Values that are ISO dates or timestamps with at least a month (`2020-03`, `2020-03-14`,
    /// `2020-03-14T09:30:00Z`).
    pub dates: usize,
}

impl Sample {
    /// Samples `values` (empty ones are skipped).
    pub fn of<'a>(engine: &Engine, values: impl Iterator<Item = &'a str>) -> Sample {
        let mut s = Sample::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for v in values {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            s.values += 1;
            s.uuids += usize::from(is_uuid(v));
            s.dates += usize::from(
                v.len() >= 7
                    && phiguard_rules::dates::year(v, phiguard_rules::DateFormat::Iso).is_some(),
            );
            if is_number(v) {
                s.numbers += 1;
                if v.len() >= 5 && v.bytes().all(|b| b.is_ascii_digit()) {
                    s.long_ints += 1;
                }
            }
            if !seen.insert(v) {
                continue;
            }
            if s.detected_over < DETECT_SAMPLE {
                s.detected_over += 1;
                let spans = engine.detector().detect(v);
                let mut cats: Vec<Category> = spans.iter().map(|sp| sp.category).collect();
                cats.sort();
                cats.dedup();
                for c in cats {
                    *s.categories.entry(c).or_default() += 1;
                }
            }
        }
        s.distinct = seen.len();
        s
    }

    /// The category found in the most values, with its share of the detected values.
    pub fn dominant(&self) -> Option<(Category, f64)> {
        let (c, n) = self.categories.iter().max_by_key(|(_, n)| **n)?;
        Some((*c, *n as f64 / self.detected_over.max(1) as f64))
    }

    /// `NAME 93%, DATE 4%` over the detected values, or `none`.
    pub fn describe(&self) -> String {
        if self.categories.is_empty() {
            return "none".to_string();
        }
        let mut v: Vec<(&Category, &usize)> = self.categories.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(c, n)| {
                format!(
                    "{} {:.0}%",
                    c.as_str(),
                    **n as f64 * 100.0 / self.detected_over.max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A content decision for a column no rule covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The class chosen, `None` for free text or codes/numbers (the `text` action, numbers kept).
    pub class: Option<Class>,
    /// Why, PHI-free (`mostly NAME`, `UUIDs`, `numbers`, `free text`).
    pub reason: String,
}

/// Decides what to do with a column no rule covers, from its sample.
pub fn decide(sample: &Sample) -> Decision {
    let d = |class: Option<Class>, reason: String| Decision { class, reason };
    if sample.values == 0 {
        return d(None, "no values sampled: text".to_string());
    }
    if sample.uuids * 10 >= sample.values * 9 {
        return d(Some(Class::Id), "UUIDs: pseudonym".to_string());
    }
    if sample.dates * 2 >= sample.values {
        return d(
            Some(Class::Date),
            format!(
                "ISO dates ({:.0}%): date",
                sample.dates as f64 * 100.0 / sample.values as f64
            ),
        );
    }
    // A bare number gives the detector no context: in a column of numbers, its "identifier"
    // findings (MRN, account, other id) are as likely codes (SNOMED, quantities); the
    // uniqueness test below decides those. Phones, SSNs, dates and ages still count.
    let numeric = sample.numbers == sample.values;
    if let Some((c, share)) = sample.dominant()
        && share >= 0.5
        && let Some(class) = Class::of_category(c)
        && !(numeric && class == Class::Id)
    {
        return d(
            Some(class),
            format!(
                "mostly {} ({:.0}%): {}",
                c.as_str(),
                share * 100.0,
                class.as_str()
            ),
        );
    }
    if numeric {
        if sample.values >= 10
            && sample.long_ints == sample.values
            && sample.distinct * 10 >= sample.values * 9
        {
            return d(
                Some(Class::Id),
                "unique integers of 5+ digits: pseudonym".to_string(),
            );
        }
        return d(
            None,
            "numbers: kept, any other value through text".to_string(),
        );
    }
    if sample.categories.is_empty() {
        return d(None, "codes or text, no identifier found: text".to_string());
    }
    d(None, "mixed text: text".to_string())
}

/// A plain number (integer, decimal, scientific; `NaN`).
pub fn is_number(v: &str) -> bool {
    let t = v.trim();
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.parse::<f64>().is_ok()
        || t == "NaN"
}

/// A number the detector need not see: a decimal (measurements, money) or an integer of at
/// most four digits. Phone numbers, SSNs and record numbers are longer integers.
fn trivially_clean(v: &str) -> bool {
    let t = v.trim();
    if !is_number(t) {
        return false;
    }
    t.contains('.') || t.trim_start_matches(['-', '+']).len() <= 4
}

/// The plan for one column. `Debug` leaves out the cache of values.
pub struct ColumnPlan {
    /// The column name as in the header (`colN` without one).
    pub name: String,
    /// Rule id when covered, else the uncovered label (`column NAME: reason`).
    pub label: String,
    pub covered: bool,
    pub action: Action,
    pub kind: Kind,
    /// The class the name (or content) gave, if any.
    pub class: Option<Class>,
    /// Why this action, PHI-free (for `--suggest`).
    pub why: String,
    /// Plain numbers skip the detector (an uncovered column whose sample was not identifiers:
    /// a bare number carries no context the detector could judge).
    numbers_kept: bool,
    /// Values the detector found clean, for the `text` action.
    clean: HashSet<Box<str>>,
}

impl std::fmt::Debug for ColumnPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnPlan")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("covered", &self.covered)
            .field("action", &self.action)
            .field("kind", &self.kind)
            .field("class", &self.class)
            .field("cached_clean_values", &self.clean.len())
            .finish()
    }
}

impl ColumnPlan {
    /// Applies the plan to one value.
    pub fn apply(
        &mut self,
        engine: &Engine,
        tally: &mut Tally,
        value: &str,
        patient: Option<&PatientRef>,
    ) -> Result<Outcome, RuleError> {
        if self.action == Action::Text {
            if value.trim().is_empty()
                || trivially_clean(value)
                || (self.numbers_kept && is_number(value))
            {
                tally.count(&self.label, self.covered, self.action, false, false);
                return Ok(Outcome::Keep);
            }
            if self.clean.contains(value) {
                tally.count(&self.label, self.covered, self.action, false, false);
                return Ok(Outcome::Keep);
            }
            let out = engine.apply_counted(
                tally,
                &self.label,
                self.covered,
                self.action,
                self.kind,
                value,
                patient,
            )?;
            if out == Outcome::Keep && self.clean.len() < CLEAN_CACHE {
                self.clean.insert(value.into());
            }
            return Ok(out);
        }
        engine.apply_counted(
            tally,
            &self.label,
            self.covered,
            self.action,
            self.kind,
            value,
            patient,
        )
    }
}

/// The compiled rules of one run.
pub struct Rules {
    pub rules: RuleSet<ColumnSelector>,
    pub profile: ProfileName,
}

impl Rules {
    /// Plans column `name` of `table`; `sample` gives the column's values when the plan needs
    /// them (only for columns no rule covers).
    pub fn plan<'a, I: Iterator<Item = &'a str>>(
        &self,
        engine: &Engine,
        table: Option<&str>,
        name: &str,
        columns: &[String],
        sample: impl FnOnce() -> I,
    ) -> ColumnPlan {
        let named = classify(name).map(|(_, c)| c);
        if let Some(rule) = self.rules.first(|s| s.matches(table, name)) {
            let kind = match named {
                Some(c) => c.kind(),
                None => default_kind(rule.action),
            };
            let builtin = rule.id.starts_with(&format!("{}: ", self.profile.as_str()));
            let why = match (builtin, named) {
                (true, Some(c)) => format!(
                    "name matches {} ({})",
                    rule.id.split_once(": ").map_or("", |(_, p)| p),
                    c.as_str()
                ),
                _ => format!("rule {}", rule.id),
            };
            if builtin && named == Some(Class::Text) && code_display(name, columns) {
                return ColumnPlan {
                    name: name.to_string(),
                    label: format!("{} (display text of a code column)", rule.id),
                    covered: true,
                    action: Action::Keep,
                    kind,
                    class: named,
                    why: format!("{why}, display text of a code column"),
                    numbers_kept: false,
                    clean: HashSet::new(),
                };
            }
            return ColumnPlan {
                name: name.to_string(),
                label: rule.id.clone(),
                covered: true,
                action: rule.action,
                kind,
                class: named,
                why,
                numbers_kept: false,
                clean: HashSet::new(),
            };
        }
        let decision = decide(&Sample::of(engine, sample()));
        let (action, kind) = match decision.class {
            Some(c) => (c.action(self.profile), c.kind()),
            None => (Action::Text, Kind::Text),
        };
        ColumnPlan {
            name: name.to_string(),
            label: format!("column {name} ({})", decision.reason),
            covered: false,
            action,
            kind,
            class: decision.class,
            why: format!("no name rule; content: {}", decision.reason),
            numbers_kept: true,
            clean: HashSet::new(),
        }
    }
}

/// True if `name` is the display text of a code in the same table: `DESCRIPTION` beside
/// `CODE`, `REASONDESCRIPTION` beside `REASONCODE`, `BODYSITE_DESCRIPTION` beside
/// `BODYSITE_CODE`, `DESCRIPTION1` beside another column ending in `1` (`REACTION1`). Terminology
/// display names (SNOMED, LOINC, RxNorm) name no one, and the detector mistakes some of them
/// for names and places ("Morse Fall Scale"), so the built-in profiles keep them.
pub fn code_display(name: &str, columns: &[String]) -> bool {
    let n = crate::selector::normalize(name);
    let Some(at) = n.find("DESCRIPTION") else {
        return false;
    };
    let (prefix, suffix) = (&n[..at], &n[at + "DESCRIPTION".len()..]);
    let norm: Vec<String> = columns
        .iter()
        .map(|c| crate::selector::normalize(c))
        .collect();
    let code = format!("{prefix}CODE{suffix}");
    if norm.contains(&code) {
        return true;
    }
    !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
        && norm.iter().any(|c| {
            *c != n
                && c.ends_with(suffix)
                && !c.contains("DESCRIPTION")
                && c[..c.len() - suffix.len()]
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphabetic())
        })
}

/// The kind for a user rule on a column the name table does not know.
pub fn default_kind(action: Action) -> Kind {
    use phiguard_rules::{DateFormat, Generalize};
    match action {
        Action::Pseudonym => Kind::Id,
        Action::DateShift | Action::Generalize(Generalize::Year) => Kind::Date(DateFormat::Auto),
        Action::Generalize(Generalize::Zip3) => Kind::Zip,
        Action::Generalize(Generalize::Age | Generalize::AgeBand) => Kind::Age,
        _ => Kind::Text,
    }
}

/// Which column holds the patient identifier: the configured selector when it matches a
/// column of this table, else `PATIENT` / `PATIENTID` / `PATIENT_ID`, else `Id` in a table that
/// looks like a patient table (named `patient(s)`, or with birth date / name / SSN columns).
pub fn patient_column(
    configured: Option<&ColumnSelector>,
    table: Option<&str>,
    columns: &[String],
) -> Option<usize> {
    if let Some(sel) = configured
        && let Some(i) = columns.iter().position(|c| sel.matches(table, c))
    {
        return Some(i);
    }
    let norm: Vec<String> = columns
        .iter()
        .map(|c| crate::selector::normalize(c))
        .collect();
    if let Some(i) = norm
        .iter()
        .position(|c| matches!(c.as_str(), "PATIENT" | "PATIENTID" | "PATIENT_ID"))
    {
        return Some(i);
    }
    let id = norm.iter().position(|c| c == "ID")?;
    let table_is_patients = table.is_some_and(|t| {
        matches!(
            crate::selector::normalize(t).as_str(),
            "PATIENT" | "PATIENTS"
        )
    });
    let looks = norm
        .iter()
        .filter(|c| {
            matches!(
                classify(c).map(|(_, k)| k),
                Some(Class::BirthDate | Class::Name | Class::Ssn)
            )
        })
        .count()
        >= 2;
    (table_is_patients || looks).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(is_number("77.49"));
        assert!(is_number("-71.15"));
        assert!(is_number("1e5"));
        assert!(is_number("NaN"));
        assert!(!is_number("e"));
        assert!(!is_number("8302-2"));
        assert!(!is_number(""));
        assert!(trivially_clean("1.0"));
        assert!(trivially_clean("174"));
        assert!(!trivially_clean("5082225200"));
    }

    fn sample(values: &[&str]) -> Sample {
        let engine = Engine::new(
            phiguard_deid::DeidKey::from_bytes([1; 32]),
            phiguard_rules::EngineOptions::default(),
        );
        Sample::of(&engine, values.iter().copied())
    }

    #[test]
    fn content_decisions() {
        // SNOMED codes repeat: kept (text action, numbers skip the detector).
        let codes = [
            "418290006",
            "76067001",
            "418290006",
            "271807003",
            "76067001",
        ];
        assert_eq!(decide(&sample(&codes)).class, None);
        // Unique long integers: identifiers.
        let ids: Vec<String> = (0..20)
            .map(|i| format!("{}", 4_812_337 + i * 7919))
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(decide(&sample(&ids)).class, Some(Class::Id));
        let uuids = ["0b1a4b5c-1d2e-4f30-8a9b-0c1d2e3f4a5b"; 3];
        assert_eq!(decide(&sample(&uuids)).class, Some(Class::Id));
        let dates = ["2020-03-14", "2021-01-02T10:00:00Z", ""];
        assert_eq!(decide(&sample(&dates)).class, Some(Class::Date));
        assert_eq!(decide(&sample(&["1.5", "2", "3.25"])).class, None);
        assert_eq!(decide(&sample(&[])).class, None);
    }

    #[test]
    fn code_displays() {
        let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = cols(&[
            "CODE",
            "DESCRIPTION",
            "REASONCODE",
            "REASONDESCRIPTION",
            "REACTION1",
        ]);
        assert!(code_display("DESCRIPTION", &c));
        assert!(code_display("REASONDESCRIPTION", &c));
        assert!(code_display("DESCRIPTION1", &c));
        assert!(!code_display("DESCRIPTION2", &c));
        assert!(!code_display(
            "DESCRIPTION",
            &cols(&["NOTE", "DESCRIPTION"])
        ));
        assert!(!code_display("NOTE", &c));
    }

    #[test]
    fn patient_columns() {
        let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            patient_column(None, Some("encounters"), &cols(&["Id", "START", "PATIENT"])),
            Some(2)
        );
        assert_eq!(
            patient_column(None, Some("patients"), &cols(&["Id", "X"])),
            Some(0)
        );
        assert_eq!(
            patient_column(None, None, &cols(&["Id", "BIRTHDATE", "FIRST", "LAST"])),
            Some(0)
        );
        assert_eq!(
            patient_column(None, Some("payers"), &cols(&["Id", "NAME"])),
            None
        );
        assert_eq!(
            patient_column(None, None, &cols(&["Id", "PATIENTID"])),
            Some(1)
        );
    }
}
