//! # phiguard-rules
//!
//! The rule language shared by every structured format (FHIR, HL7 v2, DICOM, CSV/Parquet):
//!
//! - [`Action`]: what happens to one value — keep, remove, redact, blank, keyed HMAC pseudonym,
//!   consistent surrogate, per-patient date shift, generalise (year, ZIP3, age 90+), or `text`
//!   (run the free-text detector inside the value).
//! - [`RuleSet`]: ordered rules, each a format-specific selector plus an action; the first
//!   matching rule wins. Format crates implement [`Selector`] for their selector syntax
//!   (`PID-5`, `Patient.name`, `(0010,0010)`, a column name) and compile the rules of their
//!   section of the config file with [`RuleSet::compile`], which names the offending rule in
//!   every error.
//! - [`Engine`]: applies an action to a value with the key: the same patient gets the same
//!   pseudonym and the same date shift in every format, every run, with the same key.
//! - [`Tally`]: counts per rule and per category, and every path no rule covered, for the
//!   run report. It holds paths and counts, never values.
//! - [`Config`]: the config file (`--config FILE`), a base profile plus per-format sections,
//!   unknown keys rejected by name.
//!
//! ```
//! use phiguard_rules::{Action, Engine, EngineOptions, Kind, Outcome, DateFormat};
//! use phiguard_deid::DeidKey;
//!
//! let engine = Engine::new(DeidKey::from_bytes([7; 32]), EngineOptions::default());
//! let patient = engine.patient("MRN-0042");
//! let shifted = engine
//!     .apply(Action::DateShift, Kind::Date(DateFormat::Iso), "2020-03-14", Some(&patient))
//!     .unwrap();
//! assert!(matches!(shifted, Outcome::Replace(_)));
//! let year = engine
//!     .apply(Action::Generalize(phiguard_rules::Generalize::Year), Kind::Date(DateFormat::Iso), "2020-03-14", None)
//!     .unwrap();
//! assert_eq!(year, Outcome::Replace("2020".into()));
//! ```

pub mod action;
pub mod config;
pub mod dates;
pub mod engine;
pub mod ruleset;
pub mod tally;

pub use action::{Action, Generalize};
pub use config::{Config, ConfigError, FormatSection, ProfileName};
pub use dates::DateFormat;
pub use engine::{Engine, EngineOptions, Kind, Outcome, PatientRef, RuleError, is_uuid};
pub use ruleset::{RawRule, Rule, RuleSet, Selector};
pub use tally::{REVIEW_SAMPLE, ReviewItem, ReviewSample, Tally};
