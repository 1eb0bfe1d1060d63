//! Actions on one value, and their config spelling.

use serde::{Deserialize, Serialize};

/// How a value is generalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generalize {
    /// A date keeps its year only; a birth date that reveals an age over 89 loses the year too.
    Year,
    /// A ZIP code becomes its three-digit area, `000` where the area is restricted.
    Zip3,
    /// An age of 90 or more becomes `90+` (DICOM `090Y`); younger ages are kept.
    Age,
    /// An age becomes a five-year band (`40-44`), and 90 or more becomes `90+`.
    AgeBand,
}

/// What happens to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave the value as it is.
    Keep,
    /// Remove the element, field or attribute.
    Remove,
    /// Replace the value with a typed tag such as `[NAME]`.
    Redact,
    /// Keep the element with an empty value.
    Blank,
    /// Replace with a keyed HMAC pseudonym (identifiers: 16 hex digits, the same in every format).
    Pseudonym,
    /// Replace with a realistic, consistent surrogate of the same kind.
    Surrogate,
    /// Shift a date by the patient's offset (one per patient for the whole dataset).
    DateShift,
    /// Generalise (year, ZIP3, age).
    Generalize(Generalize),
    /// Run the free-text detector and de-identify inside the value.
    Text,
}

impl Action {
    /// Parses the config spelling: `keep`, `remove`, `redact`, `blank`, `pseudonym` (or `hmac`),
    /// `surrogate`, `date_shift`, `generalize:year|zip3|age|age_band`, `text`.
    pub fn parse(s: &str) -> Option<Action> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Some(match s.as_str() {
            "keep" => Action::Keep,
            "remove" | "delete" => Action::Remove,
            "redact" => Action::Redact,
            "blank" | "empty" => Action::Blank,
            "pseudonym" | "hmac" | "pseudonymize" => Action::Pseudonym,
            "surrogate" => Action::Surrogate,
            "date_shift" | "dateshift" | "shift" => Action::DateShift,
            "generalize:year" | "generalize_year" | "year" => Action::Generalize(Generalize::Year),
            "generalize:zip3" | "generalize_zip3" | "zip3" => Action::Generalize(Generalize::Zip3),
            "generalize:age" | "generalize_age" | "age" => Action::Generalize(Generalize::Age),
            "generalize:age_band" | "generalize_age_band" | "age_band" => {
                Action::Generalize(Generalize::AgeBand)
            }
            "text" | "free_text" => Action::Text,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Remove => "remove",
            Action::Redact => "redact",
            Action::Blank => "blank",
            Action::Pseudonym => "pseudonym",
            Action::Surrogate => "surrogate",
            Action::DateShift => "date_shift",
            Action::Generalize(Generalize::Year) => "generalize:year",
            Action::Generalize(Generalize::Zip3) => "generalize:zip3",
            Action::Generalize(Generalize::Age) => "generalize:age",
            Action::Generalize(Generalize::AgeBand) => "generalize:age_band",
            Action::Text => "text",
        }
    }

    /// Every accepted spelling, for error messages.
    pub const SPELLINGS: &'static str = "keep, remove, redact, blank, pseudonym, surrogate, \
date_shift, generalize:year, generalize:zip3, generalize:age, generalize:age_band, text";
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for a in [
            Action::Keep,
            Action::Remove,
            Action::Redact,
            Action::Blank,
            Action::Pseudonym,
            Action::Surrogate,
            Action::DateShift,
            Action::Generalize(Generalize::Year),
            Action::Generalize(Generalize::Zip3),
            Action::Generalize(Generalize::Age),
            Action::Generalize(Generalize::AgeBand),
            Action::Text,
        ] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("Date-Shift"), Some(Action::DateShift));
        assert_eq!(Action::parse("nuke"), None);
    }
}
