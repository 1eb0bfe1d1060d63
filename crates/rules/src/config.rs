//! The config file for structured de-identification (`phiguard deid --config FILE`).
//!
//! ```toml
//! profile = "safe-harbor"        # base: safe-harbor | limited-data-set | shifted
//!
//! [actions]                      # free text inside values (`text` action): as for plain text
//! NAME = "surrogate"
//! [date_shift]                   # one offset per patient: min_days <= |offset| <= max_days
//! max_days = 180
//!
//! [hl7]
//! patient = "PID-3.1"            # where the patient identifier is
//! rules = [ { select = "ZPI-*", action = "remove" }, { select = "OBX-5", action = "text" } ]
//! [fhir]
//! rules = [ { select = "Patient.extension", action = "remove" } ]
//! [dicom]
//! options = ["retain-longitudinal-modified-dates"]
//! rules = [ { select = "(0008,0080)", action = "keep" } ]
//! [csv]
//! patient = "PATIENT"
//! rules = [ { select = "SSN", action = "remove" }, { select = "NOTE", action = "text" } ]
//! ```
//! User rules come first, then the base profile's; the first matching rule wins. Unknown keys
//! are errors that name the key.

use phiguard_deid::Profile;
use phiguard_detect::Category;
use serde::Deserialize;

use crate::engine::EngineOptions;
use crate::ruleset::RawRule;

/// Errors reading the config. They name the key or rule; configs hold no PHI.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Toml(String),
    #[error("config: {at}: {message}")]
    Rule { at: String, message: String },
    #[error(
        "config: unknown profile {name:?}; expected one of safe-harbor, limited-data-set, shifted"
    )]
    UnknownProfile { name: String },
    #[error("config: {0}")]
    Text(#[from] phiguard_deid::ConfigError),
}

/// A built-in base profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProfileName {
    /// HIPAA Safe Harbor: identifiers removed or pseudonymised, dates to the year (not even the
    /// year where it reveals an age over 89), ZIP to ZIP3, ages over 89 to 90+.
    #[default]
    SafeHarbor,
    /// HIPAA limited data set: direct identifiers removed; dates, city, state and ZIP kept.
    LimitedDataSet,
    /// Expert Determination: as Safe Harbor, but dates shifted per patient (month and day kept
    /// at a consistent offset), so intervals survive.
    Shifted,
}

impl ProfileName {
    pub fn parse(name: &str) -> Option<ProfileName> {
        match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "safe-harbor" | "safeharbor" => Some(ProfileName::SafeHarbor),
            "limited-data-set" | "limited" | "lds" => Some(ProfileName::LimitedDataSet),
            "shifted" | "expert-determination" => Some(ProfileName::Shifted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::SafeHarbor => "safe-harbor",
            ProfileName::LimitedDataSet => "limited-data-set",
            ProfileName::Shifted => "shifted",
        }
    }

    /// The method statement for the report.
    pub fn method(self) -> &'static str {
        match self {
            ProfileName::SafeHarbor => phiguard_deid::SAFE_HARBOR_METHOD,
            ProfileName::LimitedDataSet => {
                "HIPAA limited data set, 45 CFR 164.514(e): direct identifiers removed; dates, \
                 city, state and ZIP kept; may be disclosed only under a data use agreement"
            }
            ProfileName::Shifted => {
                "Expert Determination, 45 CFR 164.514(b)(1): Safe Harbor identifiers removed, \
                 dates shifted by one keyed offset per patient (intervals preserved); valid only \
                 with an expert's documented determination"
            }
        }
    }
}

/// One format's section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatSection {
    /// Where the patient identifier is (format syntax); the format's default when absent.
    #[serde(default)]
    pub patient: Option<String>,
    /// Format options (DICOM Annex E options, ...).
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStructured {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    fhir: FormatSection,
    #[serde(default)]
    hl7: FormatSection,
    #[serde(default)]
    dicom: FormatSection,
    #[serde(default)]
    csv: FormatSection,
}

/// The whole config: base profile, text profile (for the `text` action and date-shift range),
/// and one section per format.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub profile: ProfileName,
    /// The text profile as configured (Safe Harbor where nothing is set); see
    /// [`Config::text_profile`] for the one in effect.
    pub text: Profile,
    /// Whether the config sets `actions.DATE` itself.
    pub text_date_set: bool,
    pub fhir: FormatSection,
    pub hl7: FormatSection,
    pub dicom: FormatSection,
    pub csv: FormatSection,
}

/// Keys handled by the text profile (`phiguard_deid::Profile::from_toml`).
const TEXT_KEYS: [&str; 3] = ["actions", "date_shift", "pseudonym"];

impl Config {
    /// The built-in profile with no changes.
    pub fn builtin(profile: ProfileName) -> Config {
        Config {
            profile,
            text: Profile::safe_harbor(),
            ..Config::default()
        }
    }

    /// Parses a config file's text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let mut text_part = toml::Table::new();
        let mut rest = toml::Table::new();
        for (k, v) in table {
            if TEXT_KEYS.contains(&k.as_str()) {
                text_part.insert(k, v);
            } else {
                rest.insert(k, v);
            }
        }
        let text_date_set = text_part
            .get("actions")
            .and_then(|a| a.get("DATE"))
            .is_some();
        let text_toml =
            toml::to_string(&text_part).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let text_profile = Profile::from_toml(&text_toml)?;
        let raw: RawStructured = rest
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.to_string()))?;
        let profile = match raw.profile {
            Some(name) => ProfileName::parse(&name).ok_or(ConfigError::UnknownProfile { name })?,
            None => ProfileName::SafeHarbor,
        };
        Ok(Config {
            profile,
            text: text_profile,
            text_date_set,
            fhir: raw.fhir,
            hl7: raw.hl7,
            dicom: raw.dicom,
            csv: raw.csv,
        })
    }

    /// Engine options for this config (today's date, language guessed per value).
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            profile: self.text_profile(),
            ..EngineOptions::default()
        }
    }

    /// The text profile in effect: the configured one, except for dates found in free text
    /// when the config does not set `actions.DATE` itself. Under `shifted` they move by the
    /// patient's offset like the dates of typed fields (keeping the intervals between them);
    /// under `limited-data-set` they are kept, as the typed dates are.
    pub fn text_profile(&self) -> Profile {
        let date = match self.profile {
            _ if self.text_date_set => return self.text.clone(),
            ProfileName::Shifted => phiguard_deid::Action::DateShift,
            ProfileName::LimitedDataSet => phiguard_deid::Action::Keep,
            ProfileName::SafeHarbor => return self.text.clone(),
        };
        // Both actions apply to DATE, so this cannot fail; the configured profile is the
        // fallback all the same.
        self.text
            .clone()
            .with_action(Category::Date, date)
            .unwrap_or_else(|_| self.text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_rejects_unknown_keys() {
        let c = Config::from_toml(
            r#"
profile = "shifted"
[date_shift]
max_days = 30
[hl7]
patient = "PID-3.1"
rules = [ { select = "ZPI-*", action = "remove" } ]
"#,
        )
        .unwrap();
        assert_eq!(c.profile, ProfileName::Shifted);
        assert_eq!(c.text.date_shift().max_days, 30);
        // Under `shifted`, dates in free text are shifted too, unless DATE is configured.
        use phiguard_deid::Action as TextAction;
        assert_eq!(
            c.text_profile().action(Category::Date),
            TextAction::DateShift
        );
        assert_eq!(
            Config::builtin(ProfileName::Shifted)
                .text_profile()
                .action(Category::Date),
            TextAction::DateShift
        );
        let date = |p| Config::builtin(p).text_profile().action(Category::Date);
        assert_eq!(date(ProfileName::SafeHarbor), TextAction::Generalize);
        assert_eq!(date(ProfileName::LimitedDataSet), TextAction::Keep);
        let set =
            Config::from_toml("profile = \"shifted\"\n[actions]\nDATE = \"redact\"\n").unwrap();
        assert_eq!(
            set.text_profile().action(Category::Date),
            TextAction::Redact
        );
        assert_eq!(c.hl7.rules.len(), 1);
        let e = Config::from_toml("[hl7]\nrulez = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rulez"), "{e}");
        let e = Config::from_toml("colour = 1\n").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = Config::from_toml("profile = \"weird\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("weird"), "{e}");
        let e =
            Config::from_toml("[[hl7.rules]]\nselect = \"PID-5\"\naction = \"keep\"\nextra = 1\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("extra"), "{e}");
    }
}
