//! The embedded dictionaries, merged into one map from a lowercase word to flags.
//! Sources and licences of every list: `data/README.md`.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::lexicon;

pub const FIRST: u64 = 1;
pub const LAST: u64 = 1 << 1;
pub const CITY: u64 = 1 << 2;
pub const STATE: u64 = 1 << 3;
pub const COUNTRY: u64 = 1 << 4;
pub const STREET_SUFFIX: u64 = 1 << 5;
pub const COMMON_EN: u64 = 1 << 6;
pub const COMMON_ES: u64 = 1 << 7;
pub const COMMON_DE: u64 = 1 << 8;
pub const AMBIGUOUS: u64 = 1 << 9;
pub const MEDICAL: u64 = 1 << 10;
pub const MONTH: u64 = 1 << 11;
pub const WEEKDAY: u64 = 1 << 12;
pub const TITLE: u64 = 1 << 13;
pub const NAME_CTX: u64 = 1 << 14;
pub const ID_CTX: u64 = 1 << 15;
pub const FACILITY: u64 = 1 << 16;
pub const STREET_PREFIX: u64 = 1 << 17;
pub const UNIT: u64 = 1 << 18;
pub const EPONYM_HEAD: u64 = 1 << 19;
pub const EPONYM_PREFIX: u64 = 1 << 20;
pub const CONNECTOR: u64 = 1 << 21;
pub const PLACE_PREP: u64 = 1 << 22;
pub const ADDRESS_UNIT: u64 = 1 << 23;
pub const NAME_SUFFIX: u64 = 1 << 24;
pub const PHRASE_START: u64 = 1 << 25;
pub const STATE_CODE: u64 = 1 << 26;
pub const AMBIGUOUS_MONTH: u64 = 1 << 27;
pub const FUNCTION: u64 = 1 << 28;
pub const HONORIFIC: u64 = 1 << 29;
pub const STOP_EN: u64 = 1 << 30;
pub const STOP_ES: u64 = 1 << 31;
pub const STOP_DE: u64 = 1 << 32;
pub const STOP_ANY: u64 = STOP_EN | STOP_ES | STOP_DE;
pub const NAME_FOLLOW: u64 = 1 << 33;
pub const NUMBER_WORD: u64 = 1 << 34;
pub const SAINT: u64 = 1 << 35;
pub const CLINICAL_NOUN: u64 = 1 << 36;
/// Ends a Spanish name in a signature line (`lexicon::AFTER_NAME_ES`).
pub const AFTER_NAME_ES: u64 = 1 << 37;
/// Names a hospital department in Spanish (`lexicon::DEPARTMENT_WORDS_ES`).
pub const DEPARTMENT_ES: u64 = 1 << 38;

pub struct Dictionaries {
    words: FxHashMap<Box<str>, u64>,
    /// Multi-word entries (cities, countries, names), lowercase, single-spaced, with flags.
    phrases: FxHashMap<Box<str>, u64>,
    id_ctx: FxHashMap<&'static str, crate::Category>,
    pub max_phrase_words: usize,
}

macro_rules! data {
    ($name:literal) => {
        include_str!(concat!("../data/", $name))
    };
}

impl Dictionaries {
    pub fn load() -> Self {
        let mut d = Dictionaries {
            words: FxHashMap::default(),
            phrases: FxHashMap::default(),
            id_ctx: lexicon::ID_CONTEXT.iter().copied().collect(),
            max_phrase_words: 1,
        };
        d.add_list(data!("first_names.txt"), FIRST);
        d.add_list(data!("last_names.txt"), LAST);
        d.add_list(data!("us_cities.txt"), CITY);
        d.add_list(data!("world_cities.txt"), CITY);
        d.add_list(data!("us_counties.txt"), CITY);
        d.add_list(data!("us_states.txt"), STATE);
        d.add_list(data!("countries.txt"), COUNTRY);
        d.add_list(data!("regions_es_de.txt"), STATE);
        d.add_list(data!("street_suffixes.txt"), STREET_SUFFIX);
        d.add_list(data!("common_words_en.txt"), COMMON_EN);
        d.add_list(data!("common_words_es.txt"), COMMON_ES);
        d.add_list(data!("common_words_de.txt"), COMMON_DE);
        d.add_list(data!("ambiguous_names.txt"), AMBIGUOUS);
        d.add_list(data!("medical_terms.txt"), MEDICAL);
        for (w, _) in lexicon::MONTHS {
            d.add(w, MONTH);
        }
        for w in lexicon::AMBIGUOUS_MONTHS {
            d.add(w, AMBIGUOUS_MONTH);
        }
        let hand: &[(&[&str], u64)] = &[
            (lexicon::WEEKDAYS, WEEKDAY),
            (lexicon::TITLES, TITLE),
            (lexicon::NAME_CONTEXT, NAME_CTX),
            (lexicon::FACILITY_WORDS, FACILITY),
            (lexicon::STREET_PREFIXES, STREET_PREFIX),
            (lexicon::UNITS, UNIT),
            (lexicon::EPONYM_HEADS, EPONYM_HEAD),
            (lexicon::EPONYM_HEADS_DE, EPONYM_HEAD),
            (lexicon::EPONYM_PREFIXES, EPONYM_PREFIX),
            (lexicon::NAME_CONNECTORS, CONNECTOR),
            (lexicon::PLACE_PREPS, PLACE_PREP),
            (lexicon::ADDRESS_UNITS, ADDRESS_UNIT),
            (lexicon::NAME_SUFFIXES, NAME_SUFFIX),
            (lexicon::FUNCTION_WORDS, FUNCTION),
            (lexicon::HONORIFICS, HONORIFIC),
            (lexicon::NAME_FOLLOWERS, NAME_FOLLOW),
            (lexicon::AGE_NUMBER_WORDS, NUMBER_WORD),
            (
                &[
                    "st", "mt", "saint", "mount", "sankt", "ste", "san", "santa", "sta",
                ],
                SAINT,
            ),
            (lexicon::STREET_TYPES_LOWER, STREET_SUFFIX),
            (lexicon::STOP_EN, STOP_EN),
            (lexicon::STOP_ES, STOP_ES),
            (lexicon::STOP_DE, STOP_DE),
            (
                lexicon::CLINICAL_NOUNS,
                COMMON_EN | COMMON_ES | COMMON_DE | CLINICAL_NOUN,
            ),
            (lexicon::CLINICAL_NOT_PLACES, MEDICAL),
            (lexicon::AFTER_NAME_ES, AFTER_NAME_ES),
            (lexicon::DEPARTMENT_WORDS_ES, DEPARTMENT_ES),
        ];
        for (list, flag) in hand {
            for w in *list {
                d.add(w, *flag);
            }
        }
        // the micro sign (U+00B5) and the Greek mu (U+03BC) are both typed for "micro"
        for w in lexicon::UNITS.iter().filter(|w| w.contains('µ')) {
            d.add(&w.replace('µ', "μ"), UNIT);
        }
        for (w, _) in lexicon::ID_CONTEXT {
            d.add(w, ID_CTX);
        }
        // two-letter US state codes are upper-case in the states list's source; keep them apart
        let codes: FxHashSet<&str> = data!("us_states.txt")
            .lines()
            .filter(|l| l.len() == 2)
            .collect();
        for c in codes {
            d.add(c, STATE_CODE);
        }
        d
    }

    fn add_list(&mut self, list: &str, flag: u64) {
        for line in list.lines() {
            let w = line.trim();
            if w.is_empty() || w.starts_with('#') {
                continue;
            }
            if w.contains(' ') {
                let n = w.split(' ').count();
                self.max_phrase_words = self.max_phrase_words.max(n.min(5));
                *self.phrases.entry(w.into()).or_insert(0) |= flag;
                if let Some(first) = w.split(' ').next() {
                    self.add(first, PHRASE_START);
                }
            } else {
                self.add(w, flag);
            }
        }
    }

    fn add(&mut self, w: &str, flag: u64) {
        let key = w.to_lowercase();
        *self.words.entry(key.into_boxed_str()).or_insert(0) |= flag;
    }

    /// Flags of a lowercase word.
    #[inline]
    pub fn get(&self, lower: &str) -> u64 {
        self.words.get(lower).copied().unwrap_or(0)
    }

    /// Flags of a lowercase multi-word phrase.
    pub fn phrase(&self, lower: &str) -> u64 {
        self.phrases.get(lower).copied().unwrap_or(0)
    }

    pub fn id_context(&self, lower: &str) -> Option<crate::Category> {
        self.id_ctx.get(lower).copied()
    }
}

/// Scratch space for [`lower`]: ASCII words of up to 40 bytes are lowercased in place, longer
/// and non-ASCII ones into a reused string.
pub struct LowerBuf {
    short: [u8; 40],
    long: String,
}

impl Default for LowerBuf {
    fn default() -> Self {
        LowerBuf {
            short: [0; 40],
            long: String::new(),
        }
    }
}

/// The lowercase form of `s`, char by char: `s` itself when it is ASCII without capitals,
/// otherwise lowercased into `buf`.
#[inline]
pub fn lower<'b>(s: &'b str, buf: &'b mut LowerBuf) -> &'b str {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return s;
        }
        if let Some(short) = buf.short.get_mut(..s.len()) {
            short.copy_from_slice(s.as_bytes());
            short.make_ascii_lowercase();
            // lowercase ASCII is still UTF-8, so this never falls through
            if let Ok(w) = std::str::from_utf8(short) {
                return w;
            }
        }
    }
    let long = &mut buf.long;
    long.clear();
    for c in s.chars() {
        if c.is_ascii() {
            long.push(c.to_ascii_lowercase());
        } else {
            long.extend(c.to_lowercase());
        }
    }
    long.as_str()
}
