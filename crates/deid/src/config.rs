//! Per-category actions: the Safe Harbor default profile and the TOML config that changes it.
//!
//! ```toml
//! [actions]              # any category not listed keeps its Safe Harbor default
//! NAME = "surrogate"     # redact | surrogate | pseudonym | date_shift | generalize | keep
//! DATE = "date_shift"
//!
//! [date_shift]           # per-patient offset, never 0: min_days <= |offset| <= max_days
//! min_days = 1
//! max_days = 365
//!
//! [pseudonym]
//! hex_digits = 8         # NAME-3f9a1c2b; 8..=64
//! ```
//! Unknown keys are errors that name the key.

use std::collections::BTreeMap;

use phiguard_detect::Category;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What to do with one detected identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace with a typed tag such as `[NAME]`.
    Redact,
    /// Replace with a realistic, consistent surrogate (keyed HMAC).
    Surrogate,
    /// Replace with a keyed pseudonym such as `NAME-3f9a1c2b`.
    Pseudonym,
    /// Shift a date by the patient's consistent offset, keeping its written format.
    DateShift,
    /// Dates to the year, ZIP codes to the ZIP3 rule, ages over 89 to "90+".
    Generalize,
    /// Leave the text as it is.
    Keep,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 6] = [
        Action::Redact,
        Action::Surrogate,
        Action::Pseudonym,
        Action::DateShift,
        Action::Generalize,
        Action::Keep,
    ];

    /// The config spelling (`"date_shift"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Surrogate => "surrogate",
            Action::Pseudonym => "pseudonym",
            Action::DateShift => "date_shift",
            Action::Generalize => "generalize",
            Action::Keep => "keep",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether this action can be applied to `category`; `Err` carries a hint.
    fn check(self, category: Category) -> Result<(), &'static str> {
        match (self, category) {
            (Action::DateShift, Category::Date) => Ok(()),
            (Action::DateShift, _) => Err("date_shift applies only to DATE"),
            (Action::Generalize, Category::Date | Category::Location | Category::AgeOver89) => {
                Ok(())
            }
            (Action::Generalize, _) => {
                Err("generalize applies only to DATE, LOCATION (ZIP codes) and AGE_OVER_89")
            }
            (Action::Surrogate, Category::Date) => {
                Err("use date_shift for consistent surrogate dates")
            }
            (Action::Surrogate, Category::AgeOver89) => {
                Err("use generalize (90+) or redact for ages over 89")
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors in a config file. They name the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Toml(String),
    #[error("unknown key \"actions.{key}\": not a category (expected one of {expected})")]
    UnknownCategory { key: String, expected: String },
    #[error(
        "unknown action \"{action}\" for \"actions.{key}\" (expected one of redact, surrogate, pseudonym, date_shift, generalize, keep)"
    )]
    UnknownAction { key: String, action: String },
    #[error("\"actions.{key}\" = \"{action}\" is not allowed: {hint}")]
    NotApplicable {
        key: String,
        action: Action,
        hint: &'static str,
    },
    #[error("\"{key}\" is out of range: {why}")]
    OutOfRange { key: &'static str, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    actions: Option<BTreeMap<String, String>>,
    date_shift: Option<RawDateShift>,
    pseudonym: Option<RawPseudonym>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDateShift {
    min_days: Option<i64>,
    max_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPseudonym {
    hex_digits: Option<usize>,
}

/// The largest allowed date shift (100 years).
pub const MAX_SHIFT_DAYS: i64 = 36_500;

/// The date-shift range: every patient's offset `o` has `min_days <= |o| <= max_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DateShiftRange {
    pub min_days: i64,
    pub max_days: i64,
}

impl Default for DateShiftRange {
    fn default() -> Self {
        DateShiftRange {
            min_days: 1,
            max_days: 365,
        }
    }
}

/// A full set of per-category actions and their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    actions: BTreeMap<Category, Action>,
    date_shift: DateShiftRange,
    pseudonym_hex_digits: usize,
}

/// The profile as applied, in the form written to the run report (every category listed).
#[derive(Debug, Clone, Serialize)]
pub struct AppliedConfig {
    pub actions: BTreeMap<&'static str, Action>,
    pub date_shift: DateShiftRange,
    pub pseudonym: AppliedPseudonym,
    pub zip3: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppliedPseudonym {
    pub hex_digits: usize,
}

/// The Safe Harbor default action for `category`.
pub fn safe_harbor_action(category: Category) -> Action {
    match category {
        Category::Date | Category::AgeOver89 => Action::Generalize,
        // ZIP codes are generalized to ZIP3; any other location is redacted.
        Category::Location => Action::Generalize,
        Category::Profession | Category::Other => Action::Keep,
        _ => Action::Redact,
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::safe_harbor()
    }
}

impl Profile {
    /// HIPAA Safe Harbor, 45 CFR 164.514(b)(2): dates to the year, ages over 89 to "90+", ZIP
    /// codes to the ZIP3 rule, every other Safe Harbor identifier and ORGANIZATION redacted with a
    /// typed tag, PROFESSION and OTHER kept.
    pub fn safe_harbor() -> Profile {
        Profile {
            actions: Category::ALL
                .into_iter()
                .map(|c| (c, safe_harbor_action(c)))
                .collect(),
            date_shift: DateShiftRange::default(),
            pseudonym_hex_digits: 8,
        }
    }

    /// Parses a TOML config over the Safe Harbor default.
    pub fn from_toml(text: &str) -> Result<Profile, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let mut profile = Profile::safe_harbor();
        for (key, value) in raw.actions.unwrap_or_default() {
            let category = Category::parse(&key.to_ascii_uppercase()).ok_or_else(|| {
                ConfigError::UnknownCategory {
                    key: key.clone(),
                    expected: Category::ALL.map(|c| c.as_str()).join(", "),
                }
            })?;
            let action = Action::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                ConfigError::UnknownAction {
                    key: key.clone(),
                    action: value.clone(),
                }
            })?;
            action
                .check(category)
                .map_err(|hint| ConfigError::NotApplicable {
                    key: key.clone(),
                    action,
                    hint,
                })?;
            profile.actions.insert(category, action);
        }
        if let Some(ds) = raw.date_shift {
            let range = DateShiftRange {
                min_days: ds.min_days.unwrap_or(profile.date_shift.min_days),
                max_days: ds.max_days.unwrap_or(profile.date_shift.max_days),
            };
            if range.min_days < 1 {
                return Err(ConfigError::OutOfRange {
                    key: "date_shift.min_days",
                    why: "must be at least 1 (a shift of 0 days would keep the real dates)".into(),
                });
            }
            if range.max_days < range.min_days || range.max_days > MAX_SHIFT_DAYS {
                return Err(ConfigError::OutOfRange {
                    key: "date_shift.max_days",
                    why: format!("must be between min_days and {MAX_SHIFT_DAYS}"),
                });
            }
            profile.date_shift = range;
        }
        if let Some(p) = raw.pseudonym
            && let Some(n) = p.hex_digits
        {
            if !(8..=64).contains(&n) {
                return Err(ConfigError::OutOfRange {
                    key: "pseudonym.hex_digits",
                    why: "must be between 8 and 64".into(),
                });
            }
            profile.pseudonym_hex_digits = n;
        }
        Ok(profile)
    }

    /// Sets the action for one category (checked like a config entry).
    pub fn with_action(
        mut self,
        category: Category,
        action: Action,
    ) -> Result<Profile, ConfigError> {
        action
            .check(category)
            .map_err(|hint| ConfigError::NotApplicable {
                key: category.as_str().to_string(),
                action,
                hint,
            })?;
        self.actions.insert(category, action);
        Ok(self)
    }

    /// The configured action for `category`.
    pub fn action(&self, category: Category) -> Action {
        self.actions
            .get(&category)
            .copied()
            .unwrap_or_else(|| safe_harbor_action(category))
    }

    /// The date-shift range.
    pub fn date_shift(&self) -> DateShiftRange {
        self.date_shift
    }

    /// Hex digits in a pseudonym.
    pub fn pseudonym_hex_digits(&self) -> usize {
        self.pseudonym_hex_digits
    }

    /// The categories whose action differs from the Safe Harbor default.
    pub fn differences_from_safe_harbor(&self) -> Vec<(Category, Action)> {
        Category::ALL
            .into_iter()
            .map(|c| (c, self.action(c)))
            .filter(|&(c, a)| a != safe_harbor_action(c))
            .collect()
    }

    /// The method statement for the report.
    pub fn method(&self) -> String {
        let diff = self.differences_from_safe_harbor();
        if diff.is_empty() {
            return crate::SAFE_HARBOR_METHOD.to_string();
        }
        let list: Vec<String> = diff
            .iter()
            .map(|(c, a)| format!("{}={}", c.as_str(), a.as_str()))
            .collect();
        format!(
            "Configured actions, differing from the HIPAA Safe Harbor default (45 CFR 164.514(b)(2)) for: {}",
            list.join(", ")
        )
    }

    /// The profile as applied, for the report.
    pub fn applied(&self) -> AppliedConfig {
        AppliedConfig {
            actions: Category::ALL
                .into_iter()
                .map(|c| (c.as_str(), self.action(c)))
                .collect(),
            date_shift: self.date_shift,
            pseudonym: AppliedPseudonym {
                hex_digits: self.pseudonym_hex_digits,
            },
            zip3: crate::zip::RULE,
        }
    }

    /// SHA-256 (hex) of the applied config in canonical JSON: equal configs, whatever their
    /// spelling or comments, have equal fingerprints.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(&self.applied()).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_safe_harbor() {
        let p = Profile::from_toml("").unwrap();
        assert_eq!(p, Profile::safe_harbor());
        assert!(p.differences_from_safe_harbor().is_empty());
        assert_eq!(p.method(), crate::SAFE_HARBOR_METHOD);
        assert_eq!(p.action(Category::Date), Action::Generalize);
        assert_eq!(p.action(Category::Name), Action::Redact);
        assert_eq!(p.action(Category::Organization), Action::Redact);
        assert_eq!(p.action(Category::Profession), Action::Keep);
        assert_eq!(p.action(Category::Other), Action::Keep);
    }

    #[test]
    fn actions_override_defaults() {
        let p = Profile::from_toml(
            "[actions]\nNAME = \"surrogate\"\ndate = \"date_shift\"\nMRN = \"pseudonym\"\n\
             [date_shift]\nmax_days = 30\n[pseudonym]\nhex_digits = 12\n",
        )
        .unwrap();
        assert_eq!(p.action(Category::Name), Action::Surrogate);
        assert_eq!(p.action(Category::Date), Action::DateShift);
        assert_eq!(p.action(Category::Mrn), Action::Pseudonym);
        assert_eq!(p.date_shift().max_days, 30);
        assert_eq!(p.pseudonym_hex_digits(), 12);
        assert!(p.method().contains("NAME=surrogate"));
        assert_ne!(p.fingerprint(), Profile::safe_harbor().fingerprint());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Profile::from_toml("actionz = 1\n").unwrap_err().to_string();
        assert!(err.contains("actionz"), "{err}");
        let err = Profile::from_toml("[date_shift]\nmax_dayz = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_dayz"), "{err}");
        let err = Profile::from_toml("[actions]\nNAMES = \"redact\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("actions.NAMES"), "{err}");
        let err = Profile::from_toml("[actions]\nNAME = \"hide\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hide") && err.contains("actions.NAME"),
            "{err}"
        );
    }

    #[test]
    fn inapplicable_actions_are_rejected() {
        for (cat, action) in [
            ("NAME", "date_shift"),
            ("PHONE", "generalize"),
            ("DATE", "surrogate"),
            ("AGE_OVER_89", "surrogate"),
        ] {
            let text = format!("[actions]\n{cat} = \"{action}\"\n");
            let err = Profile::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(cat), "{err}");
        }
    }

    #[test]
    fn ranges_are_checked() {
        assert!(Profile::from_toml("[date_shift]\nmin_days = 0\n").is_err());
        assert!(Profile::from_toml("[date_shift]\nmin_days = 10\nmax_days = 5\n").is_err());
        assert!(Profile::from_toml("[date_shift]\nmax_days = 100000\n").is_err());
        assert!(Profile::from_toml("[pseudonym]\nhex_digits = 4\n").is_err());
    }

    #[test]
    fn fingerprint_ignores_spelling() {
        let a = Profile::from_toml("# comment\n[actions]\nname = \"redact\"\n").unwrap();
        assert_eq!(a.fingerprint(), Profile::safe_harbor().fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }
}
