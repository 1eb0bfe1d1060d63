//! # phiguard-deid
//!
//! De-identification of detected PHI: per-category actions (redact with a typed tag, realistic
//! surrogates, keyed pseudonyms, per-patient date shifts, Safe Harbor generalization, keep),
//! the Safe Harbor default profile and the TOML config that changes it, the HMAC key file, and
//! the run report with its review sheet. No CLI code and no file formats beyond the key file:
//! text in (with the detector's spans), text out.
//!
//! ```
//! use phiguard_deid::{DeidKey, Deidentifier, Document, Profile};
//! use phiguard_detect::{Category, Lang, Span};
//!
//! let text = "Seen by Dr. Maria Lopez on 03/14/2021.";
//! let spans = [
//!     Span { start: 12, end: 23, category: Category::Name, confidence: 0.9, recognizer: "doc" },
//!     Span { start: 27, end: 37, category: Category::Date, confidence: 0.9, recognizer: "doc" },
//! ];
//! let deid = Deidentifier::new(Profile::safe_harbor(), DeidKey::from_bytes([7; 32]));
//! let out = deid
//!     .deidentify(&Document { text, spans: &spans, patient: "patient-1", lang: Lang::En })
//!     .unwrap();
//! assert_eq!(out.text, "Seen by Dr. [NAME] on 2021.");
//! ```

pub mod age;
pub mod config;
pub mod date;
pub mod deidentify;
pub mod key;
pub mod report;
pub mod surrogate;
pub mod zip;

pub use config::{Action, ConfigError, Profile};
pub use deidentify::{Decision, DeidError, Deidentified, Deidentifier, Document, Note, tag};
pub use key::{DeidKey, KeyError, KeyOrigin};
pub use report::{Report, ReportBuilder, ReviewOptions};

/// The method statement of the Safe Harbor default profile.
pub const SAFE_HARBOR_METHOD: &str = "HIPAA Safe Harbor, 45 CFR 164.514(b)(2)";
