//! Applying an action to one value, with the key.
//!
//! The patient is what makes values consistent across formats: [`Engine::patient`] takes the
//! patient's identifier as the source system wrote it (FHIR `Patient.id`, HL7 `PID-3`, a CSV
//! patient column, DICOM `PatientID`), and the date shift is keyed by it, so the same patient gets
//! the same offset in every file, run and format with the same key. Identifier pseudonyms are
//! keyed by the value alone (not by the format or the field), so the patient id `abc` becomes the
//! same 16 hex digits in a FHIR reference, a CSV foreign key and an HL7 `PID-3`.

use phiguard_deid::{
    DeidKey, Deidentifier, Document, Profile, age, surrogate, tag as category_tag, zip,
};
use phiguard_detect::{Category, Detector, Lang};
use time::Date;

use crate::action::{Action, Generalize};
use crate::dates::{self, DateFormat};
use crate::tally::Tally;

/// What a value is, as far as its format knows: decides how an action is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Free text, or a string of unknown meaning.
    Text,
    /// An identifier of a known category (name, street address, phone, e-mail, SSN, ...).
    Phi(Category),
    /// An identifier of a record or person (patient id, MRN, accession number, FHIR id):
    /// pseudonymised to the same 16 hex digits wherever it appears.
    Id,
    /// A DICOM UID: pseudonymised to a valid `2.25.<decimal>` UID.
    Uid,
    /// A date (any precision, with or without a time).
    Date(DateFormat),
    /// A birth date: its year too is removed when it reveals an age over 89.
    BirthDate(DateFormat),
    /// An age: a number, optionally with a DICOM unit (`095Y`).
    Age,
    /// A ZIP or postal code.
    Zip,
}

/// The result of one action.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Leave the value as it is.
    Keep,
    /// Remove the element (the format decides what removal means: drop the JSON member, empty
    /// the HL7 field, delete the DICOM attribute, empty the CSV cell).
    Remove,
    /// Write this instead.
    Replace(String),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Keep => f.write_str("Keep"),
            Outcome::Remove => f.write_str("Remove"),
            Outcome::Replace(s) => write!(f, "Replace({} bytes)", s.len()),
        }
    }
}

/// The patient a value belongs to. `Debug` never shows the identifier.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PatientRef(String);

impl std::fmt::Debug for PatientRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientRef([REDACTED])")
    }
}

/// Errors applying an action. They never carry the value.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("the text de-identifier rejected the detector's spans: {0}")]
    Text(String),
}

/// Engine parameters.
#[derive(Clone)]
pub struct EngineOptions {
    /// Per-category actions and the date-shift range for text inside values (`text` action),
    /// and the date-shift range for structured dates.
    pub profile: Profile,
    /// The day ages are computed against (birth dates revealing an age over 89).
    pub today: Date,
    /// The language of free text, or `None` to guess it per value.
    pub lang: Option<Lang>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            profile: Profile::safe_harbor(),
            today: time::OffsetDateTime::now_utc().date(),
            lang: None,
        }
    }
}

/// Applies actions with one key. Share it across threads by reference.
pub struct Engine {
    deid: Deidentifier,
    detector: Detector,
    today: Date,
    lang: Option<Lang>,
}

/// Why a value was handled differently from its action (for the report's notes).
pub(crate) type Note = &'static str;

/// The text de-identified (`None` when nothing was found) and detections per category.
pub type TextResult = (Option<String>, Vec<(Category, u64)>);

/// A date that could not be read in a date-typed field: removed rather than kept.
pub const NOTE_DATE_UNPARSED: &str = "date_not_parsed_removed";
/// A birth date revealing an age over 89: removed, year included.
pub const NOTE_BIRTH_OVER_89: &str = "birth_date_over_89_removed";
/// A value that should be a ZIP code and is not: removed.
pub const NOTE_ZIP_UNPARSED: &str = "zip_not_parsed_removed";
/// A date shifted without a patient: the dataset-wide offset was used.
pub const NOTE_NO_PATIENT: &str = "date_shift_without_patient";

impl Engine {
    pub fn new(key: DeidKey, options: EngineOptions) -> Engine {
        Engine {
            deid: Deidentifier::new(options.profile, key),
            detector: Detector::new(),
            today: options.today,
            lang: options.lang,
        }
    }

    /// The key this engine applies.
    pub fn key(&self) -> &DeidKey {
        self.deid.key()
    }

    /// The detector used by the `text` action (shared so callers need not build another).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The patient whose source identifier is `id` (trimmed; case kept).
    pub fn patient(&self, id: &str) -> PatientRef {
        PatientRef(id.trim().to_string())
    }

    /// The date shift in days for `patient`, or the dataset-wide offset without one.
    pub fn date_offset(&self, patient: Option<&PatientRef>) -> i64 {
        match patient {
            Some(p) => self.deid.date_offset(&p.0),
            None => self.deid.date_offset(""),
        }
    }

    /// The identifier pseudonym, keyed by the value alone so it is the same in every format:
    /// a UUID (`urn:uuid:` references, Synthea ids) becomes another valid version-4 UUID, lower
    /// case; anything else 16 lowercase hex digits of HMAC(key, value).
    pub fn id_pseudonym(&self, value: &str) -> String {
        let v = value.trim();
        if is_uuid(v) {
            let lower = v.to_ascii_lowercase();
            let mac = self.key().mac(&[b"phiguard.rules.id.v1", lower.as_bytes()]);
            let mut b = [0u8; 16];
            b.copy_from_slice(&mac[..16]);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h = hex::encode(b);
            return format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            );
        }
        let mac = self.key().mac(&[b"phiguard.rules.id.v1", v.as_bytes()]);
        hex::encode(&mac[..8])
    }

    /// A DICOM UID pseudonym: `2.25.` and the decimal of 128 bits of HMAC(key, uid) (PS3.5
    /// B.2), the same for the same UID in every file of a study.
    pub fn uid(&self, value: &str) -> String {
        let v = value.trim_end_matches(['\0', ' ']).trim();
        let mac = self.key().mac(&[b"phiguard.rules.uid.v1", v.as_bytes()]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&mac[..16]);
        format!("2.25.{}", u128::from_be_bytes(b))
    }

    fn over_89(&self, year: i32) -> bool {
        self.today.year() - year >= 90
    }

    /// Applies `action` to `value` and counts it in `tally` under `rule` (a rule id, or a path
    /// no rule covered when `covered` is false).
    #[allow(clippy::too_many_arguments)]
    pub fn apply_counted(
        &self,
        tally: &mut Tally,
        rule: &str,
        covered: bool,
        action: Action,
        kind: Kind,
        value: &str,
        patient: Option<&PatientRef>,
    ) -> Result<Outcome, RuleError> {
        let outcome = self.apply_noted(tally, action, kind, value, patient)?;
        let changed = !matches!(outcome, Outcome::Keep);
        tally.count(
            rule,
            covered,
            action,
            changed,
            matches!(outcome, Outcome::Remove),
        );
        match &outcome {
            Outcome::Keep => {}
            Outcome::Remove => tally.sample_change(rule, action, None),
            Outcome::Replace(v) => tally.sample_change(rule, action, Some(v)),
        }
        Ok(outcome)
    }

    /// Applies `action` to `value`, with the engine's notes and text detections recorded in
    /// `tally` but no rule count and no review sample (for callers that count and sample with
    /// their own locations).
    pub fn apply_noted(
        &self,
        tally: &mut Tally,
        action: Action,
        kind: Kind,
        value: &str,
        patient: Option<&PatientRef>,
    ) -> Result<Outcome, RuleError> {
        let (outcome, note) = self.apply_inner(action, kind, value, patient, Some(tally))?;
        if let Some(n) = note {
            tally.note(n);
        }
        Ok(outcome)
    }

    /// Applies `action` to `value`.
    pub fn apply(
        &self,
        action: Action,
        kind: Kind,
        value: &str,
        patient: Option<&PatientRef>,
    ) -> Result<Outcome, RuleError> {
        Ok(self.apply_inner(action, kind, value, patient, None)?.0)
    }

    fn apply_inner(
        &self,
        action: Action,
        kind: Kind,
        value: &str,
        patient: Option<&PatientRef>,
        tally: Option<&mut Tally>,
    ) -> Result<(Outcome, Option<Note>), RuleError> {
        if value.trim().is_empty() && action != Action::Remove {
            return Ok((Outcome::Keep, None));
        }
        let key = self.key();
        let replace = |s: String| {
            if s == value {
                Outcome::Keep
            } else {
                Outcome::Replace(s)
            }
        };
        Ok(match action {
            Action::Keep => (Outcome::Keep, None),
            Action::Remove => (Outcome::Remove, None),
            Action::Blank => (Outcome::Replace(String::new()), None),
            Action::Redact => (Outcome::Replace(redaction_tag(kind)), None),
            Action::Pseudonym => {
                let s = match kind {
                    Kind::Id | Kind::Zip => self.id_pseudonym(value),
                    Kind::Uid => self.uid(value),
                    Kind::Phi(c) => surrogate::pseudonym(
                        key,
                        c,
                        value,
                        self.deid.profile().pseudonym_hex_digits(),
                    ),
                    Kind::Date(f) | Kind::BirthDate(f) => {
                        return self.apply_inner(
                            Action::DateShift,
                            Kind::Date(f),
                            value,
                            patient,
                            tally,
                        );
                    }
                    Kind::Age => {
                        return self.apply_inner(
                            Action::Generalize(Generalize::Age),
                            kind,
                            value,
                            patient,
                            tally,
                        );
                    }
                    Kind::Text => surrogate::pseudonym(
                        key,
                        Category::Other,
                        value,
                        self.deid.profile().pseudonym_hex_digits(),
                    ),
                };
                (Outcome::Replace(s), None)
            }
            Action::Surrogate => match kind {
                Kind::Phi(c) => (Outcome::Replace(surrogate::surrogate(key, c, value)), None),
                Kind::Id | Kind::Zip => (
                    Outcome::Replace(surrogate::format_preserving(key, Category::OtherId, value)),
                    None,
                ),
                Kind::Uid => (Outcome::Replace(self.uid(value)), None),
                Kind::Date(_) | Kind::BirthDate(_) => {
                    return self.apply_inner(Action::DateShift, kind, value, patient, tally);
                }
                Kind::Age => {
                    return self.apply_inner(
                        Action::Generalize(Generalize::Age),
                        kind,
                        value,
                        patient,
                        tally,
                    );
                }
                Kind::Text => return self.apply_inner(Action::Text, kind, value, patient, tally),
            },
            Action::DateShift => {
                let (format, birth) = match kind {
                    Kind::Date(f) => (f, false),
                    Kind::BirthDate(f) => (f, true),
                    _ => (DateFormat::Auto, false),
                };
                if birth
                    && let Some(y) = dates::year(value, format)
                    && self.over_89(y)
                {
                    return Ok((Outcome::Remove, Some(NOTE_BIRTH_OVER_89)));
                }
                let days = self.date_offset(patient);
                let note = patient.is_none().then_some(NOTE_NO_PATIENT);
                match dates::shift(value, format, days) {
                    Some(s) => (replace(s), note),
                    None => (Outcome::Remove, Some(NOTE_DATE_UNPARSED)),
                }
            }
            Action::Generalize(Generalize::Year) => {
                let (format, birth) = match kind {
                    Kind::Date(f) => (f, false),
                    Kind::BirthDate(f) => (f, true),
                    _ => (DateFormat::Auto, false),
                };
                match dates::year(value, format) {
                    Some(y) if birth && self.over_89(y) => {
                        (Outcome::Remove, Some(NOTE_BIRTH_OVER_89))
                    }
                    Some(y) => (replace(dates::year_text(y, format)), None),
                    None => (Outcome::Remove, Some(NOTE_DATE_UNPARSED)),
                }
            }
            Action::Generalize(Generalize::Zip3) => match zip::generalize(value) {
                Some(s) => (replace(s), None),
                None => (Outcome::Remove, Some(NOTE_ZIP_UNPARSED)),
            },
            Action::Generalize(g @ (Generalize::Age | Generalize::AgeBand)) => (
                generalize_age(value, g == Generalize::AgeBand).map_or(Outcome::Keep, replace),
                None,
            ),
            Action::Text => {
                let (out, counts) = self.text(value, patient)?;
                if let Some(t) = tally {
                    for (c, n) in counts {
                        t.category(c, n);
                    }
                }
                (out.map_or(Outcome::Keep, replace), None)
            }
        })
    }

    /// Runs the detector over `value` and de-identifies what it finds with the profile's
    /// per-category actions. Returns the new text (`None` when nothing was found) and the number
    /// of detections per category.
    pub fn text(&self, value: &str, patient: Option<&PatientRef>) -> Result<TextResult, RuleError> {
        let (lang, spans) = self.detector.detect_guessing(value, self.lang);
        if spans.is_empty() {
            return Ok((None, Vec::new()));
        }
        let mut counts: Vec<(Category, u64)> = Vec::new();
        for s in &spans {
            match counts.iter_mut().find(|(c, _)| *c == s.category) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.category, 1)),
            }
        }
        let patient = patient.map_or("", |p| p.0.as_str());
        let out = self
            .deid
            .deidentify(&Document {
                text: value,
                spans: &spans,
                patient,
                lang,
            })
            .map_err(|e| RuleError::Text(e.to_string()))?;
        Ok((Some(out.text), counts))
    }
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn redaction_tag(kind: Kind) -> String {
    match kind {
        Kind::Phi(c) => category_tag(c),
        Kind::Id | Kind::Uid => "[ID]".to_string(),
        Kind::Date(_) | Kind::BirthDate(_) => category_tag(Category::Date),
        Kind::Zip => category_tag(Category::Location),
        Kind::Age => category_tag(Category::AgeOver89),
        Kind::Text => "[REDACTED]".to_string(),
    }
}

/// `Some(new)` when the age must change. Plain numbers: `92` → `90+`; DICOM AS: `092Y` → `090Y`
/// (days, weeks and months are always under 90 years); bands: `42` → `40-44`.
fn generalize_age(value: &str, band: bool) -> Option<String> {
    let t = value.trim();
    let b = t.as_bytes();
    if b.len() == 4 && b[..3].iter().all(u8::is_ascii_digit) && b"DWMY".contains(&b[3]) {
        let n: u32 = t[..3].parse().ok()?;
        return match b[3] {
            b'Y' if n >= 90 => Some("090Y".to_string()),
            b'Y' if band => Some(format!("{:03}Y", n / 5 * 5)),
            _ => None,
        };
    }
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let n: f64 = t.parse().ok()?;
        if n >= 90.0 {
            return Some("90+".to_string());
        }
        if band {
            let lo = (n as u32) / 5 * 5;
            return Some(format!("{}-{}", lo, lo + 4));
        }
        return None;
    }
    match age::generalize(t) {
        age::AgeOutcome::Generalized(s) | age::AgeOutcome::NoNumber(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let today = Date::from_calendar_date(2026, time::Month::December, 4).unwrap_or(Date::MIN);
        Engine::new(
            DeidKey::from_bytes([3; 32]),
            EngineOptions {
                today,
                ..EngineOptions::default()
            },
        )
    }

    #[test]
    fn same_patient_same_shift_across_formats() {
        let e = engine();
        let p = e.patient(" 12345 ");
        let iso = e.apply(
            Action::DateShift,
            Kind::Date(DateFormat::Iso),
            "2020-03-14",
            Some(&p),
        );
        let hl7 = e.apply(
            Action::DateShift,
            Kind::Date(DateFormat::Hl7),
            "20200314",
            Some(&p),
        );
        let (Ok(Outcome::Replace(a)), Ok(Outcome::Replace(b))) = (iso, hl7) else {
            panic!("dates not shifted");
        };
        assert_eq!(a.replace('-', ""), b);
        let other = Engine::new(DeidKey::from_bytes([4; 32]), EngineOptions::default());
        let c = other.apply(
            Action::DateShift,
            Kind::Date(DateFormat::Iso),
            "2020-03-14",
            Some(&other.patient("12345")),
        );
        assert_ne!(c.ok(), Some(Outcome::Replace(a)));
    }

    #[test]
    fn id_pseudonyms_are_format_independent() {
        let e = engine();
        let a = e.apply(Action::Pseudonym, Kind::Id, "abc-1", None).ok();
        let b = e.apply(Action::Pseudonym, Kind::Id, " abc-1", None).ok();
        assert_eq!(a, b);
        assert!(matches!(a, Some(Outcome::Replace(ref s)) if s.len() == 16));
        let u = e.id_pseudonym("0B1A4B5C-1D2E-4F30-8a9b-0c1d2e3f4a5b");
        assert!(is_uuid(&u) && u.as_bytes()[14] == b'4', "{u}");
        assert_eq!(u, e.id_pseudonym("0b1a4b5c-1d2e-4f30-8a9b-0c1d2e3f4a5b"));
        let uid = e.uid("1.2.840.113619.2.1.1.1");
        assert!(uid.starts_with("2.25.") && uid.len() <= 64);
        assert_eq!(uid, e.uid("1.2.840.113619.2.1.1.1\0"));
    }

    #[test]
    fn birth_dates_over_89_lose_the_year() {
        let e = engine();
        let y = Action::Generalize(Generalize::Year);
        assert_eq!(
            e.apply(y, Kind::BirthDate(DateFormat::Iso), "1930-05-01", None)
                .ok(),
            Some(Outcome::Remove)
        );
        assert_eq!(
            e.apply(y, Kind::BirthDate(DateFormat::Iso), "1950-05-01", None)
                .ok(),
            Some(Outcome::Replace("1950".into()))
        );
        assert_eq!(
            e.apply(y, Kind::Date(DateFormat::Iso), "1930-05-01", None)
                .ok(),
            Some(Outcome::Replace("1930".into()))
        );
        assert_eq!(
            e.apply(y, Kind::Date(DateFormat::Hl7), "196203520", None)
                .ok(),
            Some(Outcome::Remove)
        );
        assert_eq!(
            e.apply(
                Action::DateShift,
                Kind::BirthDate(DateFormat::Iso),
                "1920-01-01",
                Some(&e.patient("p"))
            )
            .ok(),
            Some(Outcome::Remove)
        );
    }

    #[test]
    fn ages_and_zips() {
        let e = engine();
        let age = Action::Generalize(Generalize::Age);
        assert_eq!(
            e.apply(age, Kind::Age, "92", None).ok(),
            Some(Outcome::Replace("90+".into()))
        );
        assert_eq!(
            e.apply(age, Kind::Age, "089Y", None).ok(),
            Some(Outcome::Keep)
        );
        assert_eq!(
            e.apply(age, Kind::Age, "095Y", None).ok(),
            Some(Outcome::Replace("090Y".into()))
        );
        let band = Action::Generalize(Generalize::AgeBand);
        assert_eq!(
            e.apply(band, Kind::Age, "42", None).ok(),
            Some(Outcome::Replace("40-44".into()))
        );
        let z = Action::Generalize(Generalize::Zip3);
        assert_eq!(
            e.apply(z, Kind::Zip, "02139", None).ok(),
            Some(Outcome::Replace("021".into()))
        );
        assert_eq!(
            e.apply(z, Kind::Zip, "03601", None).ok(),
            Some(Outcome::Replace("000".into()))
        );
        assert_eq!(
            e.apply(z, Kind::Zip, "N/A", None).ok(),
            Some(Outcome::Remove)
        );
    }

    #[test]
    fn text_runs_the_detector() {
        let e = engine();
        let mut t = Tally::default();
        let out = e
            .apply_counted(
                &mut t,
                "r",
                true,
                Action::Text,
                Kind::Text,
                "Seen by Dr. Maria Lopez on 03/14/2021.",
                None,
            )
            .ok();
        let Some(Outcome::Replace(s)) = out else {
            panic!("text not changed")
        };
        assert!(!s.contains("Lopez") && !s.contains("03/14"));
        assert!(t.categories.get("NAME").copied().unwrap_or(0) >= 1);
        assert_eq!(
            e.apply(
                Action::Text,
                Kind::Text,
                "Hemoglobin 13.2 g/dL, within normal limits.",
                None
            )
            .ok(),
            Some(Outcome::Keep)
        );
    }
}
