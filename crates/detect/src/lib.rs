//! # phiguard-detect
//!
//! Finds the 18 HIPAA Safe Harbor identifiers (plus organisation names) in clinical free text,
//! in English, Spanish and German. Text in, [`Span`]s out: no I/O, no knowledge of file formats
//! or HTTP. Built from validated patterns, embedded dictionaries and context rules; everything it
//! needs is compiled into the crate, so nothing is downloaded at run time.
//!
//! ```
//! use phiguard_detect::{Category, Detector};
//! let detector = Detector::new();
//! let text = "Seen by Dr. Maria Lopez on 03/14/2021, MRN 4839201.";
//! let spans = detector.detect(text);
//! assert!(spans.iter().any(|s| s.category == Category::Date));
//! assert!(spans.iter().any(|s| s.category == Category::Mrn));
//! ```

mod dict;
mod doc;
mod lexicon;
mod names;
mod patterns;
mod span;
mod tokens;

pub use span::{Category, CharIndex, Span};

use doc::Doc;

/// The language of a document, which selects dictionaries and context words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Es,
    De,
}

impl Lang {
    /// Parses `en`, `es` or `de` (case-insensitive).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Lang::En),
            "es" | "spanish" | "español" => Some(Lang::Es),
            "de" | "german" | "deutsch" => Some(Lang::De),
            _ => None,
        }
    }

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::De => "de",
        }
    }
}

/// The PHI detector. Build it once (it compiles its patterns and dictionaries) and share it:
/// it is `Send + Sync` and `detect` takes `&self`.
pub struct Detector {
    dict: dict::Dictionaries,
    patterns: patterns::Patterns,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector {
    /// Builds a detector from the embedded patterns and dictionaries.
    pub fn new() -> Self {
        Detector {
            dict: dict::Dictionaries::load(),
            patterns: patterns::Patterns::new(),
        }
    }

    /// Guesses the language of `text` from its most frequent function words, as
    /// [`Detector::detect_lang`] does when it is given none.
    pub fn guess_language(&self, text: &str) -> Lang {
        let mut toks = Vec::with_capacity(text.len() / 4);
        tokens::tokenize(text, &mut toks);
        lang_from_votes(self.word_flags(text, &toks).1)
    }

    /// The dictionary flags of every token (0 for all but words under 40 bytes) and the
    /// function-word votes per language (en, es, de) they add up to.
    fn word_flags(&self, text: &str, toks: &[tokens::Tok]) -> (Vec<u64>, [u32; 3]) {
        let mut flags = Vec::with_capacity(toks.len());
        let mut buf = dict::LowerBuf::default();
        let mut votes = [0u32; 3];
        for t in toks {
            let f = if t.kind == tokens::Kind::Word && t.len() < 40 {
                self.dict.get(dict::lower(&text[t.range()], &mut buf))
            } else {
                0
            };
            if f & dict::STOP_ANY != 0 {
                votes[0] += u32::from(f & dict::STOP_EN != 0);
                votes[1] += u32::from(f & dict::STOP_ES != 0);
                votes[2] += u32::from(f & dict::STOP_DE != 0);
            }
            flags.push(f);
        }
        (flags, votes)
    }

    /// Detects PHI, guessing the language of `text`.
    pub fn detect(&self, text: &str) -> Vec<Span> {
        self.detect_lang(text, None)
    }

    /// Detects PHI in `text`; `lang` forces a language, `None` guesses it per document.
    /// Spans come back sorted by start and never overlap.
    pub fn detect_lang(&self, text: &str, lang: Option<Lang>) -> Vec<Span> {
        self.detect_guessing(text, lang).1
    }

    /// As [`Detector::detect_lang`], also returning the language used: `lang` when given,
    /// otherwise the one [`Detector::guess_language`] would guess, found in the same pass.
    pub fn detect_guessing(&self, text: &str, lang: Option<Lang>) -> (Lang, Vec<Span>) {
        if text.is_empty() {
            return (lang.unwrap_or(Lang::En), Vec::new());
        }
        let mut toks = Vec::with_capacity(text.len() / 4);
        tokens::tokenize(text, &mut toks);
        let (flags, votes) = self.word_flags(text, &toks);
        let lang = lang.unwrap_or_else(|| lang_from_votes(votes));
        // all-lower-case text (chat, transcripts): trust the dictionaries instead of capitals
        if toks.len() >= 3 && !text.chars().any(char::is_uppercase) {
            let common = match lang {
                Lang::En => dict::COMMON_EN,
                Lang::Es => dict::COMMON_ES,
                Lang::De => dict::COMMON_DE,
            };
            for (t, f) in toks.iter_mut().zip(&flags) {
                let named =
                    f & (dict::FIRST | dict::LAST | dict::CITY | dict::COUNTRY | dict::STATE) != 0;
                let helper = f
                    & (dict::TITLE
                        | dict::STREET_PREFIX
                        | dict::MONTH
                        | dict::WEEKDAY
                        | dict::FACILITY)
                    != 0;
                if t.kind == tokens::Kind::Word
                    && (named && f & (common | dict::FUNCTION) == 0 || helper)
                {
                    t.cap = true;
                }
            }
            // initials between two names: "bertram m. jørgensen"
            for k in 1..toks.len().saturating_sub(1) {
                let next = if toks[k + 1].kind == tokens::Kind::Punct && toks[k + 1].ch == '.' {
                    k + 2
                } else {
                    k + 1
                };
                if toks[k].kind == tokens::Kind::Word
                    && toks[k].len() == 1
                    && toks[k - 1].cap
                    && next < toks.len()
                    && toks[next].cap
                {
                    toks[k].cap = true;
                }
            }
        }
        let mut doc = Doc::new(text, &toks, &flags, lang, &self.dict);
        patterns::emails_urls(&self.patterns, &mut doc);
        names::addresses(&mut doc);
        patterns::numbers(&self.patterns, &mut doc);
        patterns::month_dates(&mut doc);
        patterns::range_days(&mut doc);
        patterns::alnum_ids(&mut doc);
        patterns::age_words(&mut doc);
        names::facilities(&mut doc);
        names::place_phrases(&mut doc);
        names::names(&mut doc);
        names::places(&mut doc);
        // Last, so that what the others found across the line's end is kept whole.
        names::labelled_fields(&mut doc);
        names::streets_before_postcodes(&mut doc);
        names::address_tails(&mut doc);
        let mut spans = doc.spans;
        trim_email_label(text, &mut spans);
        (lang, merge(spans))
    }
}

/// "Madrid. (España) E-mail: ...": the "E" of an "E-mail" label after an address or a name is
/// not part of it.
fn trim_email_label(text: &str, spans: &mut Vec<Span>) {
    let mut trimmed = false;
    for s in spans.iter_mut() {
        let rest = text.get(s.end..).unwrap_or_default();
        if !rest
            .get(..5)
            .is_some_and(|r| r.eq_ignore_ascii_case("-mail"))
        {
            continue;
        }
        let head = text.get(s.start..s.end).unwrap_or_default();
        let Some(before) = head.strip_suffix(['E', 'e']) else {
            continue;
        };
        if before.ends_with(char::is_alphanumeric) {
            continue;
        }
        let kept = before
            .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':'));
        s.end = s.start + kept.len();
        trimmed = true;
    }
    if trimmed {
        spans.retain(|s| s.end > s.start);
    }
}

/// Sorts spans and merges overlapping ones; the merged span keeps the category of its most
/// confident part.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if let Some(last) = out.last_mut()
            && s.start < last.end
        {
            if s.end > last.end {
                last.end = s.end;
            }
            if s.confidence > last.confidence {
                last.category = s.category;
                last.confidence = s.confidence;
                last.recognizer = s.recognizer;
            }
            continue;
        }
        out.push(s);
    }
    out
}

/// Picks the language whose function words are most frequent (English on a tie).
fn lang_from_votes(votes: [u32; 3]) -> Lang {
    // too little evidence (a short snippet, an address) stays English
    if votes.iter().max().copied().unwrap_or(0) < 2 {
        return Lang::En;
    }
    if votes[1] > votes[0] && votes[1] >= votes[2] {
        Lang::Es
    } else if votes[2] > votes[0] && votes[2] > votes[1] {
        Lang::De
    } else {
        Lang::En
    }
}
