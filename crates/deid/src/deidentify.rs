//! Applying a [`Profile`] to one document: every detected span is replaced according to its
//! category's action, and every decision is recorded for the run report.

use phiguard_detect::{Category, Lang, Span};
use serde::Serialize;

use crate::age::{self, AgeOutcome};
use crate::config::{Action, Profile};
use crate::date::DateText;
use crate::key::DeidKey;
use crate::surrogate;
use crate::zip;

/// Errors de-identifying one document. They carry offsets, never text.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    #[error(
        "span {index} (bytes {start}..{end}) is out of order, overlaps the previous one, or is not on character boundaries"
    )]
    InvalidSpan {
        index: usize,
        start: usize,
        end: usize,
    },
}

/// Why a decision differs from the plain configured action. Notes marked for review put the
/// decision on the review sheet whatever its confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Note {
    /// The span is a tag or pseudonym phiguard wrote: left as it is.
    AlreadyDeidentified,
    /// The date could not be parsed: redacted instead of shifted or generalized.
    DateNotParsed,
    /// The shifted date would leave the years 1000..=9999: redacted.
    DateOutOfRange,
    /// The date has no year to keep: redacted.
    DateWithoutYear,
    /// A location that is not a ZIP code cannot be generalized: redacted.
    NotAZip,
    /// An AGE_OVER_89 span whose number is below 90: kept (Safe Harbor allows it).
    AgeUnder90,
    /// An age without digits: replaced by "90+" as a whole.
    AgeSpelledOut,
}

impl Note {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Note::AlreadyDeidentified => "already_deidentified",
            Note::DateNotParsed => "date_not_parsed",
            Note::DateOutOfRange => "date_out_of_range",
            Note::DateWithoutYear => "date_without_year",
            Note::NotAZip => "not_a_zip",
            Note::AgeUnder90 => "age_under_90",
            Note::AgeSpelledOut => "age_spelled_out",
        }
    }

    /// A sentence for the Markdown report.
    pub fn describe(self) -> &'static str {
        match self {
            Note::AlreadyDeidentified => "already a phiguard tag or pseudonym; left as it is",
            Note::DateNotParsed => "date not understood; redacted instead (low confidence)",
            Note::DateOutOfRange => "shifted date out of range; redacted instead",
            Note::DateWithoutYear => "date without a year; redacted",
            Note::NotAZip => "location is not a ZIP code; redacted",
            Note::AgeUnder90 => "age below 90; kept",
            Note::AgeSpelledOut => "age without digits; replaced by 90+ as a whole",
        }
    }

    /// Whether a reviewer should look at this decision whatever its confidence.
    pub fn needs_review(self) -> bool {
        matches!(
            self,
            Note::DateNotParsed | Note::DateOutOfRange | Note::AgeUnder90 | Note::AgeSpelledOut
        )
    }
}

/// What happened to one detected span. Holds the replacement (de-identified text), never the
/// original text.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Byte offsets of the span in the original text.
    pub start: usize,
    pub end: usize,
    pub category: Category,
    /// The action the profile asked for.
    pub configured: Action,
    /// The action actually applied (differs on fallbacks, see `note`).
    pub applied: Action,
    pub confidence: f32,
    pub recognizer: &'static str,
    /// The text written in place of the span; `None` when the text was left unchanged.
    pub replacement: Option<String>,
    pub note: Option<Note>,
}

impl Decision {
    /// True when the output differs from the input at this span.
    pub fn changed(&self) -> bool {
        self.replacement.is_some()
    }
}

/// One de-identified document. `Debug` shows sizes only: the text may still hold PHI the
/// detector missed.
#[derive(Clone)]
pub struct Deidentified {
    pub text: String,
    pub decisions: Vec<Decision>,
}

impl std::fmt::Debug for Deidentified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Deidentified({} bytes, {} decisions)",
            self.text.len(),
            self.decisions.len()
        )
    }
}

/// One document to de-identify.
pub struct Document<'a> {
    pub text: &'a str,
    /// Detected spans: byte offsets, sorted, non-overlapping, on char boundaries.
    pub spans: &'a [Span],
    /// The patient the document belongs to (keys the date shift).
    pub patient: &'a str,
    /// The document's language: decides how numeric dates are read (en m/d/y, es and de d/m/y)
    /// and which language's month names are tried first. The caller names it (the `phiguard`
    /// binary takes `--lang` or the detector's guess, the language the spans were found in).
    pub lang: Lang,
}

/// Applies a profile with a key. Cheap to share across threads (`&self` only).
pub struct Deidentifier {
    profile: Profile,
    key: DeidKey,
}

/// The typed redaction tag for a category: `[NAME]`, `[DATE]`, ...
pub fn tag(category: Category) -> String {
    let name = category.as_str();
    let mut t = String::with_capacity(name.len() + 2);
    t.push('[');
    t.push_str(name);
    t.push(']');
    t
}

/// True when the span is text phiguard wrote: a typed tag (or the label inside one) or, when
/// the category is configured to be pseudonymised, a pseudonym. Re-running de-identification
/// leaves these alone. (A real identifier shaped like a pseudonym, e.g. "MRN-11335577", is only
/// trusted as one where pseudonyms are what this profile writes.)
fn is_own_output(text: &str, start: usize, end: usize, pseudonyms: bool) -> bool {
    let s = text[start..end].trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'))
        && Category::parse(inner).is_some()
    {
        return true;
    }
    if Category::parse(s).is_some() && text[..start].ends_with('[') && text[end..].starts_with(']')
    {
        return true;
    }
    pseudonyms && surrogate::is_pseudonym(s)
}

impl Deidentifier {
    pub fn new(profile: Profile, key: DeidKey) -> Deidentifier {
        Deidentifier { profile, key }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn key(&self) -> &DeidKey {
        &self.key
    }

    /// The patient's date shift in days: HMAC(key, patient) mapped into
    /// `min_days..=max_days` with a sign, never 0.
    pub fn date_offset(&self, patient: &str) -> i64 {
        let range = self.profile.date_shift();
        let mac = self
            .key
            .mac(&[b"phiguard.deid.date_shift.v1", patient.as_bytes()]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        let u = u64::from_be_bytes(first);
        let n = (range.max_days - range.min_days + 1).max(1) as u64;
        let v = u % (2 * n);
        if v < n {
            range.min_days + v as i64
        } else {
            -(range.min_days + (v - n) as i64)
        }
    }

    /// De-identifies one document.
    pub fn deidentify(&self, doc: &Document<'_>) -> Result<Deidentified, DeidError> {
        let text = doc.text;
        let mut out = String::with_capacity(text.len());
        let mut decisions = Vec::with_capacity(doc.spans.len());
        let mut cursor = 0usize;
        let mut offset: Option<i64> = None;
        for (index, span) in doc.spans.iter().enumerate() {
            let (start, end) = (span.start, span.end);
            if start < cursor
                || end < start
                || end > text.len()
                || !text.is_char_boundary(start)
                || !text.is_char_boundary(end)
            {
                return Err(DeidError::InvalidSpan { index, start, end });
            }
            if start == end {
                continue;
            }
            out.push_str(&text[cursor..start]);
            let original = &text[start..end];
            let configured = self.profile.action(span.category);
            let pseudonyms = configured == Action::Pseudonym;
            let (applied, replacement, note) = if is_own_output(text, start, end, pseudonyms) {
                (Action::Keep, None, Some(Note::AlreadyDeidentified))
            } else {
                let mut ctx = Ctx {
                    doc,
                    offset: &mut offset,
                    me: self,
                };
                self.apply(configured, span.category, original, &mut ctx)
            };
            // A replacement equal to the original is no change.
            let replacement = replacement.filter(|r| r != original);
            out.push_str(replacement.as_deref().unwrap_or(original));
            decisions.push(Decision {
                start,
                end,
                category: span.category,
                configured,
                applied,
                confidence: span.confidence,
                recognizer: span.recognizer,
                replacement,
                note,
            });
            cursor = end;
        }
        out.push_str(&text[cursor..]);
        Ok(Deidentified {
            text: out,
            decisions,
        })
    }

    /// Applies `action` to one value; returns (applied action, replacement, note).
    fn apply(
        &self,
        action: Action,
        category: Category,
        original: &str,
        ctx: &mut Ctx<'_, '_>,
    ) -> (Action, Option<String>, Option<Note>) {
        let redact = |note: Option<Note>| (Action::Redact, Some(tag(category)), note);
        match action {
            Action::Keep => (Action::Keep, None, None),
            Action::Redact => redact(None),
            Action::Pseudonym => (
                Action::Pseudonym,
                Some(surrogate::pseudonym(
                    &self.key,
                    category,
                    original,
                    self.profile.pseudonym_hex_digits(),
                )),
                None,
            ),
            Action::Surrogate => match category {
                // Not reachable through a checked profile; fail safe.
                Category::Date | Category::AgeOver89 => redact(None),
                _ => (
                    Action::Surrogate,
                    Some(surrogate::surrogate(&self.key, category, original)),
                    None,
                ),
            },
            Action::DateShift => {
                if category != Category::Date {
                    return redact(None);
                }
                let lang = Some(ctx.doc.lang);
                match DateText::parse(original, lang) {
                    None => redact(Some(Note::DateNotParsed)),
                    Some(d) => match d.shifted(ctx.offset()) {
                        Some(s) => (Action::DateShift, Some(s), None),
                        None => redact(Some(Note::DateOutOfRange)),
                    },
                }
            }
            Action::Generalize => match category {
                Category::Date => {
                    let lang = Some(ctx.doc.lang);
                    match DateText::parse(original, lang) {
                        None => redact(Some(Note::DateNotParsed)),
                        Some(d) => match d.year_text() {
                            Some(y) => (Action::Generalize, Some(y), None),
                            None => redact(Some(Note::DateWithoutYear)),
                        },
                    }
                }
                Category::Location => match zip::generalize(original) {
                    Some(z) => (Action::Generalize, Some(z), None),
                    None => redact(Some(Note::NotAZip)),
                },
                Category::AgeOver89 => match age::generalize(original) {
                    AgeOutcome::Generalized(s) => (Action::Generalize, Some(s), None),
                    AgeOutcome::AlreadyGeneralized => (Action::Generalize, None, None),
                    AgeOutcome::Under90 => (Action::Keep, None, Some(Note::AgeUnder90)),
                    AgeOutcome::NoNumber(s) => {
                        (Action::Generalize, Some(s), Some(Note::AgeSpelledOut))
                    }
                },
                _ => redact(None),
            },
        }
    }
}

/// Per-document values computed on first use.
struct Ctx<'d, 'a> {
    doc: &'d Document<'a>,
    offset: &'d mut Option<i64>,
    me: &'d Deidentifier,
}

impl Ctx<'_, '_> {
    fn offset(&mut self) -> i64 {
        *self
            .offset
            .get_or_insert_with(|| self.me.date_offset(self.doc.patient))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeidKey {
        DeidKey::from_bytes([42; 32])
    }

    fn span(text: &str, needle: &str, category: Category) -> Span {
        let start = text.find(needle).unwrap();
        Span {
            start,
            end: start + needle.len(),
            category,
            confidence: 0.9,
            recognizer: "test",
        }
    }

    fn spans(text: &str, items: &[(&str, Category)]) -> Vec<Span> {
        let mut v: Vec<Span> = items.iter().map(|&(n, c)| span(text, n, c)).collect();
        v.sort_by_key(|s| s.start);
        v
    }

    const NOTE: &str = "Patient John Smith (MRN 4839201), 92 yo, seen March 5th, 2021 at \
        Springfield Clinic, Boston 02139. Call (617) 555-0199. Email john@x.org. DOB 3/14.";

    fn note_spans() -> Vec<Span> {
        spans(
            NOTE,
            &[
                ("John Smith", Category::Name),
                ("4839201", Category::Mrn),
                ("92 yo", Category::AgeOver89),
                ("March 5th, 2021", Category::Date),
                ("Springfield Clinic", Category::Organization),
                ("Boston", Category::Location),
                ("02139", Category::Location),
                ("(617) 555-0199", Category::Phone),
                ("john@x.org", Category::Email),
                ("3/14", Category::Date),
            ],
        )
    }

    fn run(profile: Profile, text: &str, spans: &[Span], patient: &str) -> Deidentified {
        Deidentifier::new(profile, key())
            .deidentify(&Document {
                text,
                spans,
                patient,
                lang: Lang::En,
            })
            .unwrap()
    }

    #[test]
    fn safe_harbor_default() {
        let out = run(Profile::safe_harbor(), NOTE, &note_spans(), "p1");
        assert_eq!(
            out.text,
            "Patient [NAME] (MRN [MRN]), 90+ yo, seen 2021 at [ORGANIZATION], [LOCATION] 021. \
             Call [PHONE]. Email [EMAIL]. DOB [DATE]."
        );
        let d = &out.decisions;
        assert_eq!(d.len(), 10);
        assert_eq!(d[5].note, Some(Note::NotAZip));
        assert_eq!(d[9].note, Some(Note::DateWithoutYear));
        assert!(d.iter().all(|d| d.changed()));
    }

    /// Re-running on the output, with a detector that flags every replacement again, changes
    /// nothing.
    #[test]
    fn safe_harbor_is_idempotent() {
        let first = run(Profile::safe_harbor(), NOTE, &note_spans(), "p1");
        // Spans over the replacements, as a detector might report them.
        let mut again = Vec::new();
        let mut shift: isize = 0;
        for d in &first.decisions {
            let r = d.replacement.as_deref().unwrap();
            let start = (d.start as isize + shift) as usize;
            again.push(Span {
                start,
                end: start + r.len(),
                category: d.category,
                confidence: 0.9,
                recognizer: "test",
            });
            shift += r.len() as isize - (d.end - d.start) as isize;
        }
        let second = run(Profile::safe_harbor(), &first.text, &again, "p1");
        assert_eq!(second.text, first.text);
        assert!(second.decisions.iter().all(|d| !d.changed()));
        // And the tag labels alone (inside brackets) are left too.
        let inner = span(&first.text, "NAME", Category::Name);
        let third = run(Profile::safe_harbor(), &first.text, &[inner], "p1");
        assert_eq!(third.text, first.text);
    }

    #[test]
    fn configured_actions() {
        let profile = Profile::from_toml(
            "[actions]\nNAME = \"pseudonym\"\nDATE = \"date_shift\"\nLOCATION = \"surrogate\"\n\
             PHONE = \"surrogate\"\nMRN = \"surrogate\"\nORGANIZATION = \"keep\"\nEMAIL = \"surrogate\"\n",
        )
        .unwrap();
        let out = run(profile, NOTE, &note_spans(), "p1");
        assert!(!out.text.contains("John Smith"));
        assert!(out.text.contains("Patient NAME-"));
        assert!(out.text.contains("Springfield Clinic"));
        assert!(!out.text.contains("4839201"));
        assert!(!out.text.contains("555-0199"));
        assert!(!out.text.contains("March 5th, 2021"));
        assert!(!out.text.contains("02139"));
        let phone = out
            .decisions
            .iter()
            .find(|d| d.category == Category::Phone)
            .unwrap();
        let r = phone.replacement.as_deref().unwrap();
        assert_eq!(r.len(), "(617) 555-0199".len());
        assert!(
            r.starts_with('(') && r[4..].starts_with(") ") && r[9..].starts_with('-'),
            "{r}"
        );
        let org = out
            .decisions
            .iter()
            .find(|d| d.category == Category::Organization)
            .unwrap();
        assert_eq!(org.applied, Action::Keep);
        assert_eq!(org.replacement, None);
    }

    #[test]
    fn date_shift_is_consistent_per_patient_and_keeps_intervals() {
        let profile = Profile::safe_harbor()
            .with_action(Category::Date, Action::DateShift)
            .unwrap();
        let deid = Deidentifier::new(profile, key());
        let text = "Admitted 03/01/2021, discharged 03/11/2021.";
        let sp = spans(
            text,
            &[
                ("03/01/2021", Category::Date),
                ("03/11/2021", Category::Date),
            ],
        );
        let doc = |patient| Document {
            text,
            spans: &sp,
            patient,
            lang: Lang::En,
        };
        let a = deid.deidentify(&doc("patient-a")).unwrap();
        let a2 = deid.deidentify(&doc("patient-a")).unwrap();
        assert_eq!(a.text, a2.text);
        let offset = deid.date_offset("patient-a");
        assert_ne!(offset, 0);
        assert!((1..=365).contains(&offset.abs()));
        let shifted: Vec<time::Date> = a
            .decisions
            .iter()
            .map(|d| {
                match DateText::parse(d.replacement.as_deref().unwrap(), Some(Lang::En))
                    .unwrap()
                    .value()
                {
                    crate::date::DateValue::Full(x) => x,
                    _ => panic!(),
                }
            })
            .collect();
        assert_eq!((shifted[1] - shifted[0]).whole_days(), 10);
        // Another patient (almost surely) gets another offset.
        let offsets: std::collections::HashSet<i64> = (0..20)
            .map(|i| deid.date_offset(&format!("patient-{i}")))
            .collect();
        assert!(offsets.len() > 10);
    }

    #[test]
    fn unparseable_date_falls_back_to_redact_for_review() {
        let profile = Profile::safe_harbor()
            .with_action(Category::Date, Action::DateShift)
            .unwrap();
        let text = "Seen the day after Thanksgiving.";
        let sp = spans(text, &[("the day after Thanksgiving", Category::Date)]);
        let out = run(profile, text, &sp, "p");
        assert_eq!(out.text, "Seen [DATE].");
        assert_eq!(out.decisions[0].applied, Action::Redact);
        assert_eq!(out.decisions[0].configured, Action::DateShift);
        assert_eq!(out.decisions[0].note, Some(Note::DateNotParsed));
        assert!(Note::DateNotParsed.needs_review());
    }

    #[test]
    fn ages_and_zips() {
        let text = "89 yo and 95-year-old in 03601";
        let sp = spans(
            text,
            &[
                ("89 yo", Category::AgeOver89),
                ("95-year-old", Category::AgeOver89),
                ("03601", Category::Location),
            ],
        );
        let out = run(Profile::safe_harbor(), text, &sp, "p");
        assert_eq!(out.text, "89 yo and 90+-year-old in 000");
        assert_eq!(out.decisions[0].note, Some(Note::AgeUnder90));
        assert_eq!(out.decisions[0].applied, Action::Keep);
    }

    #[test]
    fn invalid_spans_are_errors_without_text() {
        let text = "Jane Doe é";
        let bad = [
            Span {
                start: 5,
                end: 3,
                category: Category::Name,
                confidence: 1.0,
                recognizer: "t",
            },
            Span {
                start: 0,
                end: 100,
                category: Category::Name,
                confidence: 1.0,
                recognizer: "t",
            },
            Span {
                start: 0,
                end: 10,
                category: Category::Name,
                confidence: 1.0,
                recognizer: "t",
            },
        ];
        for s in bad {
            let err = Deidentifier::new(Profile::safe_harbor(), key())
                .deidentify(&Document {
                    text,
                    spans: &[s],
                    patient: "p",
                    lang: Lang::En,
                })
                .unwrap_err()
                .to_string();
            assert!(!err.contains("Jane"), "{err}");
        }
        let overlapping = [
            span(text, "Jane Doe", Category::Name),
            span(text, "Doe", Category::Name),
        ];
        assert!(
            Deidentifier::new(Profile::safe_harbor(), key())
                .deidentify(&Document {
                    text,
                    spans: &overlapping,
                    patient: "p",
                    lang: Lang::En,
                })
                .is_err()
        );
    }

    fn render(i: usize, d: time::Date) -> String {
        let (y, m, day) = (d.year(), u8::from(d.month()), d.day());
        match i % 4 {
            0 => format!("{m:02}/{day:02}/{y}"),
            1 => format!("{y}-{m:02}-{day:02}"),
            2 => format!("{} {day}, {y}", d.month()),
            _ => format!("{day}.{m}.{y}"),
        }
    }

    fn parse_full(text: &str) -> time::Date {
        match DateText::parse(text, Some(Lang::En)).map(|d| d.value()) {
            Some(crate::date::DateValue::Full(d)) => d,
            _ => panic!("not a full date"),
        }
    }

    proptest::proptest! {
        /// Two dates of one patient keep their interval, both move by the patient's offset,
        /// and the offset is never 0 and stays in range.
        #[test]
        fn date_shift_keeps_intervals_within_a_patient(
            patient in "[a-z0-9-]{1,20}",
            k in proptest::prelude::any::<u8>(),
            a in 0i64..40_000,
            b in 0i64..40_000,
            fa in 0usize..4,
            fb in 0usize..4,
            max_days in 1i64..=1000,
        ) {
            let base = time::Date::from_calendar_date(1950, time::Month::January, 1).unwrap();
            let (da, db) = (base + time::Duration::days(a), base + time::Duration::days(b));
            let (ta, tb) = (render(fa, da), render(fb, db));
            let text = format!("Seen {ta} and {tb}.");
            let sp = spans(&text, &[(&ta, Category::Date)]);
            let start_b = text.rfind(&tb).unwrap();
            let mut sp = sp;
            sp.push(Span { start: start_b, end: start_b + tb.len(), category: Category::Date, confidence: 0.9, recognizer: "test" });
            let profile = Profile::from_toml(&format!(
                "[actions]\nDATE = \"date_shift\"\n[date_shift]\nmax_days = {max_days}\n"
            )).unwrap();
            let deid = Deidentifier::new(profile, DeidKey::from_bytes([k; 32]));
            let out = deid.deidentify(&Document { text: &text, spans: &sp, patient: &patient, lang: Lang::En }).unwrap();
            let offset = deid.date_offset(&patient);
            proptest::prop_assert!(offset != 0 && offset.abs() <= max_days);
            let sa = parse_full(out.decisions[0].replacement.as_deref().unwrap());
            let sb = parse_full(out.decisions[1].replacement.as_deref().unwrap());
            proptest::prop_assert_eq!(sb - sa, db - da);
            proptest::prop_assert_eq!((sa - da).whole_days(), offset);
        }
    }

    /// A value of `category` as a detector might find it.
    fn value_strategy() -> impl proptest::strategy::Strategy<Value = (Category, String)> {
        use proptest::prelude::*;
        prop_oneof![
            "[A-Z][a-z]{2,8} [A-Z][a-z]{2,8}".prop_map(|v| (Category::Name, v)),
            (1u32..=12, 1u32..=28, 1900u32..2100)
                .prop_map(|(m, d, y)| (Category::Date, format!("{m}/{d}/{y}"))),
            "[A-Z][a-z]{2,8}".prop_map(|v| (Category::Date, v)),
            "[0-9]{5}".prop_map(|v| (Category::Location, v)),
            "[0-9]{1,4} [A-Z][a-z]{3,8} St".prop_map(|v| (Category::Location, v)),
            (90u32..120).prop_map(|a| (Category::AgeOver89, format!("{a} yo"))),
            (0u32..90).prop_map(|a| (Category::AgeOver89, format!("{a} years"))),
            "[0-9]{3}-[0-9]{3}-[0-9]{4}".prop_map(|v| (Category::Phone, v)),
            "[A-Z]{2}[0-9]{6}".prop_map(|v| (Category::Mrn, v)),
            "[A-Z][a-z]{3,8} Hospital".prop_map(|v| (Category::Organization, v)),
        ]
    }

    proptest::proptest! {
        /// With a detector that flags every replacement again, a second Safe Harbor run changes
        /// nothing, and no redacted or generalized original survives the first.
        #[test]
        fn safe_harbor_twice_changes_nothing(values in proptest::collection::vec(value_strategy(), 1..8)) {
            let mut text = String::from("Note:");
            let mut sp = Vec::new();
            for (category, value) in &values {
                text.push_str(" x ");
                sp.push(Span { start: text.len(), end: text.len() + value.len(), category: *category, confidence: 0.9, recognizer: "test" });
                text.push_str(value);
            }
            let first = run(Profile::safe_harbor(), &text, &sp, "p");
            let mut again = Vec::new();
            let mut delta: isize = 0;
            for d in &first.decisions {
                let len = d.replacement.as_ref().map_or(d.end - d.start, String::len);
                let start = (d.start as isize + delta) as usize;
                again.push(Span { start, end: start + len, category: d.category, confidence: 0.9, recognizer: "test" });
                delta += len as isize - (d.end - d.start) as isize;
            }
            let second = run(Profile::safe_harbor(), &first.text, &again, "p");
            proptest::prop_assert_eq!(&second.text, &first.text);
            for ((category, value), d) in values.iter().zip(&first.decisions) {
                // Ages under 90 stay; a ZIP3 such as 021 is already generalized.
                let already = *category == Category::Location && zip::generalize(value).as_deref() == Some(value.as_str());
                if *category != Category::AgeOver89 && !already {
                    proptest::prop_assert!(d.changed(), "{:?} unchanged", category);
                    proptest::prop_assert_ne!(d.replacement.as_deref(), Some(value.as_str()));
                }
            }
        }
    }

    #[test]
    fn multibyte_text_is_handled() {
        let text = "Paciente José Müller, 91 años, ingresó el 5 de marzo de 2021.";
        let sp = spans(
            text,
            &[
                ("José Müller", Category::Name),
                ("91 años", Category::AgeOver89),
                ("5 de marzo de 2021", Category::Date),
            ],
        );
        let out = run(Profile::safe_harbor(), text, &sp, "p");
        assert_eq!(out.text, "Paciente [NAME], 90+ años, ingresó el 2021.");
    }
}
