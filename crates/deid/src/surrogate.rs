//! Consistent replacements picked by keyed HMAC: the same value and key always give the same
//! output, across files, runs and machines; another key gives another output.
//!
//! - [`pseudonym`]: `NAME-3f9a1c2b` (category label + hex of HMAC-SHA256).
//! - [`surrogate`]: a realistic value. Names, cities and streets come from small built-in lists
//!   (`data/surrogates/`); e-mail addresses and URLs are built from them under `example.org`;
//!   IPv4 addresses get new octets; phone, SSN and other ID-shaped values are format-preserving
//!   (same length, digits replaced by digits, letters by letters of the same case, punctuation
//!   kept).

use phiguard_detect::Category;

use crate::key::DeidKey;

const GIVEN_NAMES: &str = include_str!("../data/surrogates/given_names.txt");
const SURNAMES: &str = include_str!("../data/surrogates/surnames.txt");
const CITIES: &str = include_str!("../data/surrogates/cities.txt");
const STREETS: &str = include_str!("../data/surrogates/streets.txt");

/// Name titles and suffixes kept as written in a surrogate name.
const TITLES: &[&str] = &[
    "dr", "dra", "mr", "mrs", "ms", "miss", "mx", "prof", "sr", "sra", "srta", "don", "doña",
    "dña", "herr", "frau", "fr", "hr", "md", "phd", "rn", "np", "pa", "do", "jr", "ii", "iii",
    "iv", "von", "van", "der", "de", "del", "la", "y", "und",
];

fn list(text: &'static str) -> impl Iterator<Item = &'static str> + Clone {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Normalises a value for keying: trimmed, inner whitespace collapsed, lower case. "JOHN  Smith"
/// and "John Smith" get the same pseudonym.
pub fn normalize(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `LABEL-hex`, e.g. `NAME-3f9a1c2b`, with `hex_digits` hex digits (8..=64).
pub fn pseudonym(key: &DeidKey, category: Category, value: &str, hex_digits: usize) -> String {
    let mac = key.mac(&[
        b"phiguard.deid.pseudonym.v1",
        category.as_str().as_bytes(),
        normalize(value).as_bytes(),
    ]);
    let hex = hex::encode(mac);
    let n = hex_digits.clamp(1, hex.len());
    format!("{}-{}", category.as_str(), &hex[..n])
}

/// True when `text` looks like a pseudonym this module writes (`LABEL-` + 8..=64 lowercase hex).
pub fn is_pseudonym(text: &str) -> bool {
    let Some((label, hex)) = text.rsplit_once('-') else {
        return false;
    };
    Category::parse(label).is_some()
        && (8..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A stream of keyed pseudo-random bytes for one (purpose, category, value).
struct Stream<'k> {
    key: &'k DeidKey,
    purpose: &'static [u8],
    category: Category,
    value: String,
    counter: u64,
    block: [u8; 32],
    pos: usize,
}

impl<'k> Stream<'k> {
    fn new(key: &'k DeidKey, purpose: &'static [u8], category: Category, value: &str) -> Self {
        Stream {
            key,
            purpose,
            category,
            value: normalize(value),
            counter: 0,
            block: [0; 32],
            pos: 32,
        }
    }

    fn byte(&mut self) -> u8 {
        if self.pos == self.block.len() {
            self.block = self.key.mac(&[
                self.purpose,
                self.category.as_str().as_bytes(),
                self.value.as_bytes(),
                &self.counter.to_be_bytes(),
            ]);
            self.counter += 1;
            self.pos = 0;
        }
        let b = self.block[self.pos];
        self.pos += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// Uniform in 0..n (n <= 256), by rejection sampling.
    fn below(&mut self, n: u8) -> u8 {
        let n16 = u16::from(n.max(1));
        let limit = 256 - (256 % n16);
        loop {
            let b = u16::from(self.byte());
            if b < limit {
                return (b % n16) as u8;
            }
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> Option<&'a str> {
        if items.is_empty() {
            return None;
        }
        let i = (self.u64() % items.len() as u64) as usize;
        items.get(i).copied()
    }
}

/// Replaces every digit with a digit and every letter with a letter of the same case, keeping
/// everything else; the result differs from `value` whenever `value` has a digit or letter.
pub fn format_preserving(key: &DeidKey, category: Category, value: &str) -> String {
    let mut stream = Stream::new(key, b"phiguard.deid.fpe.v1", category, value);
    for _ in 0..8 {
        let out = fpe_once(&mut stream, category, value);
        if out != value {
            return out;
        }
    }
    fpe_once(&mut stream, category, value)
}

fn fpe_once(stream: &mut Stream<'_>, category: Category, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut first_digit = true;
    for c in value.chars() {
        if c.is_ascii_digit() || c.is_numeric() {
            // A surrogate SSN starts with 9: the 9xx areas are never issued as SSNs.
            let d = if category == Category::Ssn && first_digit {
                9
            } else {
                stream.below(10)
            };
            first_digit = false;
            out.push(char::from(b'0' + d));
        } else if c.is_alphabetic() {
            let l = char::from(b'a' + stream.below(26));
            if c.is_uppercase() {
                out.push(l.to_ascii_uppercase());
            } else {
                out.push(l);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`format_preserving`] but hex digits stay hex digits (for IPv6 addresses and MAC-style
/// device ids).
fn hex_preserving(key: &DeidKey, category: Category, value: &str) -> String {
    let mut stream = Stream::new(key, b"phiguard.deid.hex.v1", category, value);
    value
        .chars()
        .map(|c| {
            if c.is_ascii_hexdigit() {
                let h = b"0123456789abcdef"[usize::from(stream.below(16))];
                let h = char::from(h);
                if c.is_ascii_uppercase() {
                    h.to_ascii_uppercase()
                } else {
                    h
                }
            } else {
                c
            }
        })
        .collect()
}

/// A realistic, consistent surrogate for `value` of `category`.
pub fn surrogate(key: &DeidKey, category: Category, value: &str) -> String {
    match category {
        Category::Name => surrogate_name(key, value),
        Category::Location => surrogate_location(key, value),
        Category::Email => surrogate_email(key, value),
        Category::Url => surrogate_url(key, value),
        Category::Ip => surrogate_ip(key, value),
        Category::Organization => surrogate_organization(key, value),
        _ => format_preserving(key, category, value),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameRole {
    Given,
    Surname,
}

/// Word by word: titles kept, initials become other initials, surnames (the last word, or the
/// words before a comma in "Surname, Given") come from the surname list, other words from the
/// given-name list. Each word is keyed on its own, so "Maria Lopez" and "Dr. Lopez" share the
/// surrogate surname.
fn surrogate_name(key: &DeidKey, value: &str) -> String {
    // Split into words (letters, apostrophes) and the rest.
    let mut pieces: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in value.char_indices() {
        let w = c.is_alphabetic() || c == '\'' || c == '’';
        if i > 0 && w != in_word {
            pieces.push((in_word, &value[start..i]));
            start = i;
        }
        in_word = w;
    }
    if !value.is_empty() {
        pieces.push((in_word, &value[start..]));
    }
    let is_title = |w: &str| TITLES.contains(&w.to_lowercase().as_str());
    let name_words: Vec<usize> = pieces
        .iter()
        .enumerate()
        .filter(|(_, (w, t))| *w && !is_title(t) && t.chars().count() > 1)
        .map(|(i, _)| i)
        .collect();
    let comma_at = pieces.iter().position(|(w, t)| !w && t.contains(','));
    let has_title = pieces.iter().any(|(w, t)| *w && is_title(t));
    // "Surname, Given": exactly one name word before the comma and some after it.
    let surname_first = comma_at.filter(|&c| {
        let before = name_words.iter().filter(|&&w| w < c).count();
        before == 1 && name_words.len() > 1
    });
    let role = |i: usize| -> NameRole {
        match surname_first {
            Some(c) => {
                if i < c {
                    NameRole::Surname
                } else {
                    NameRole::Given
                }
            }
            _ => {
                if name_words.last() == Some(&i) && (name_words.len() > 1 || has_title) {
                    NameRole::Surname
                } else {
                    NameRole::Given
                }
            }
        }
    };
    let mut out = String::with_capacity(value.len());
    for (i, &(is_word, text)) in pieces.iter().enumerate() {
        if !is_word || is_title(text) {
            out.push_str(text);
        } else if text.chars().count() == 1 {
            // An initial.
            let mut s = Stream::new(key, b"phiguard.deid.initial.v1", Category::Name, text);
            let l = char::from(b'A' + s.below(26));
            out.push(if text.chars().all(char::is_lowercase) {
                l.to_ascii_lowercase()
            } else {
                l
            });
        } else {
            let (purpose, names): (&'static [u8], &'static str) = match role(i) {
                NameRole::Given => (b"phiguard.deid.given.v1", GIVEN_NAMES),
                NameRole::Surname => (b"phiguard.deid.surname.v1", SURNAMES),
            };
            let word = pick_different(key, purpose, Category::Name, text, names);
            out.push_str(&match_case(&word, text));
        }
    }
    out
}

/// Picks from `items` by HMAC of `value`, never returning `value` itself.
fn pick_different(
    key: &DeidKey,
    purpose: &'static [u8],
    category: Category,
    value: &str,
    items: &'static str,
) -> String {
    let items: Vec<&str> = list(items).collect();
    let mut stream = Stream::new(key, purpose, category, value);
    let norm = normalize(value);
    for _ in 0..8 {
        match stream.pick(&items) {
            Some(p) if normalize(p) != norm => return p.to_string(),
            Some(_) => continue,
            None => break,
        }
    }
    format_preserving(key, category, value)
}

/// Upper case when the original word is all upper case (and longer than one letter), else as
/// in the list.
fn match_case(word: &str, original: &str) -> String {
    let letters: Vec<char> = original.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        word.to_uppercase()
    } else if letters.iter().all(|c| c.is_lowercase()) {
        word.to_lowercase()
    } else {
        word.to_string()
    }
}

fn surrogate_location(key: &DeidKey, value: &str) -> String {
    if crate::zip::is_zip(value) {
        return format_preserving(key, Category::Location, value);
    }
    let has_digit = value.chars().any(|c| c.is_ascii_digit());
    let has_letter = value.chars().any(char::is_alphabetic);
    if has_digit && has_letter {
        // A street address: a street from the list, the house number format-preserved.
        let street = pick_different(
            key,
            b"phiguard.deid.street.v1",
            Category::Location,
            value,
            STREETS,
        );
        let digits = value
            .split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .map_or(1, str::len);
        let mut s = Stream::new(key, b"phiguard.deid.house.v1", Category::Location, value);
        let mut number: String = (0..digits)
            .map(|_| char::from(b'0' + s.below(10)))
            .collect();
        if number.starts_with('0') {
            number.replace_range(0..1, "1");
        }
        let number_first = value.trim_start().starts_with(|c: char| c.is_ascii_digit());
        let out = if number_first {
            format!("{number} {street}")
        } else {
            format!("{street} {number}")
        };
        return match_case(&out, value);
    }
    if !has_letter {
        return format_preserving(key, Category::Location, value);
    }
    let city = pick_different(
        key,
        b"phiguard.deid.city.v1",
        Category::Location,
        value,
        CITIES,
    );
    match_case(&city, value)
}

/// Lower-case ASCII for an e-mail local part.
fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ñ' => 'n',
                'ç' => 'c',
                'ß' => 's',
                c => c,
            };
            folded.is_ascii_alphanumeric().then_some(folded)
        })
        .collect()
}

fn surrogate_email(key: &DeidKey, value: &str) -> String {
    let given = pick_different(
        key,
        b"phiguard.deid.email.given.v1",
        Category::Email,
        value,
        GIVEN_NAMES,
    );
    let surname = pick_different(
        key,
        b"phiguard.deid.email.surname.v1",
        Category::Email,
        value,
        SURNAMES,
    );
    let mut s = Stream::new(key, b"phiguard.deid.email.n.v1", Category::Email, value);
    let n = s.below(100);
    format!(
        "{}.{}{n}@example.org",
        ascii_fold(&given),
        ascii_fold(&surname)
    )
}

fn surrogate_url(key: &DeidKey, value: &str) -> String {
    let mac = key.mac(&[
        b"phiguard.deid.url.v1",
        Category::Url.as_str().as_bytes(),
        normalize(value).as_bytes(),
    ]);
    let path = &hex::encode(mac)[..8];
    match value.find("://") {
        Some(i) => format!("{}://example.org/{path}", &value[..i]),
        None if value.to_lowercase().starts_with("www.") => format!("www.example.org/{path}"),
        None => format!("example.org/{path}"),
    }
}

fn surrogate_ip(key: &DeidKey, value: &str) -> String {
    let parts: Vec<&str> = value.split('.').collect();
    let is_v4 = parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if is_v4 {
        let mut s = Stream::new(key, b"phiguard.deid.ipv4.v1", Category::Ip, value);
        // 10.0.0.0/8: a private range, so a surrogate never names a real public host.
        let octets: Vec<String> = (0..3).map(|_| (1 + s.below(254)).to_string()).collect();
        return format!("10.{}", octets.join("."));
    }
    if value.contains(':') {
        return hex_preserving(key, Category::Ip, value);
    }
    format_preserving(key, Category::Ip, value)
}

fn surrogate_organization(key: &DeidKey, value: &str) -> String {
    const KINDS: &[&str] = &[
        "General Hospital",
        "Medical Center",
        "Community Clinic",
        "Health Center",
        "Regional Hospital",
    ];
    let city = pick_different(
        key,
        b"phiguard.deid.org.city.v1",
        Category::Organization,
        value,
        CITIES,
    );
    let mut s = Stream::new(
        key,
        b"phiguard.deid.org.kind.v1",
        Category::Organization,
        value,
    );
    let kind = s.pick(KINDS).unwrap_or("Medical Center");
    match_case(&format!("{city} {kind}"), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> DeidKey {
        DeidKey::from_bytes([b; 32])
    }

    #[test]
    fn lists_are_not_empty() {
        for l in [GIVEN_NAMES, SURNAMES, CITIES, STREETS] {
            assert!(list(l).count() >= 30);
        }
    }

    #[test]
    fn pseudonym_shape_and_consistency() {
        let k = key(1);
        let p = pseudonym(&k, Category::Name, "John Smith", 8);
        assert!(p.starts_with("NAME-") && p.len() == 13, "{p}");
        assert!(is_pseudonym(&p));
        assert_eq!(pseudonym(&k, Category::Name, "JOHN  smith ", 8), p);
        assert_ne!(pseudonym(&key(2), Category::Name, "John Smith", 8), p);
        assert_ne!(pseudonym(&k, Category::Mrn, "John Smith", 8), p[..]);
        assert_eq!(
            pseudonym(&k, Category::Name, "x", 16).len(),
            "NAME-".len() + 16
        );
        assert!(!is_pseudonym("NAME-xyz"));
        assert!(!is_pseudonym("FOO-3f9a1c2b"));
    }

    #[test]
    fn names_keep_titles_and_shape() {
        let k = key(3);
        let s = surrogate(&k, Category::Name, "Dr. Maria Lopez");
        assert!(s.starts_with("Dr. "), "{s}");
        assert!(!s.contains("Maria") && !s.contains("Lopez"), "{s}");
        assert_eq!(s.split_whitespace().count(), 3);
        // The surname is keyed on its own.
        let t = surrogate(&k, Category::Name, "Mrs. Lopez");
        assert_eq!(t.rsplit(' ').next(), s.rsplit(' ').next());
        let u = surrogate(&k, Category::Name, "LOPEZ, MARIA");
        assert_eq!(u, u.to_uppercase());
        assert!(u.contains(", "));
        let v = surrogate(&k, Category::Name, "J. Smith");
        assert!(
            v.chars().next().unwrap().is_ascii_uppercase() && v[1..].starts_with(". "),
            "{v}"
        );
    }

    #[test]
    fn locations() {
        let k = key(4);
        let zip = surrogate(&k, Category::Location, "02139");
        assert_eq!(zip.len(), 5);
        assert!(zip.bytes().all(|b| b.is_ascii_digit()));
        let street = surrogate(&k, Category::Location, "123 Main Street");
        assert!(street.starts_with(|c: char| c.is_ascii_digit()), "{street}");
        assert!(!street.contains("Main"));
        let city = surrogate(&k, Category::Location, "Boston");
        assert!(list(CITIES).any(|c| c == city), "{city}");
        assert_ne!(city, "Boston");
    }

    #[test]
    fn email_url_ip_org() {
        let k = key(5);
        let e = surrogate(&k, Category::Email, "maria.lopez@gmail.com");
        assert!(e.ends_with("@example.org") && e.is_ascii(), "{e}");
        let u = surrogate(&k, Category::Url, "https://facebook.com/maria.lopez");
        assert!(u.starts_with("https://example.org/"), "{u}");
        let ip = surrogate(&k, Category::Ip, "192.168.1.20");
        assert!(ip.starts_with("10.") && ip.split('.').count() == 4, "{ip}");
        let v6 = surrogate(&k, Category::Ip, "fe80::1ff:fe23:4567:890a");
        assert_eq!(v6.len(), "fe80::1ff:fe23:4567:890a".len());
        let o = surrogate(&k, Category::Organization, "Massachusetts General Hospital");
        assert!(!o.contains("Massachusetts"), "{o}");
    }

    #[test]
    fn ssn_surrogate_is_never_issued() {
        let s = surrogate(&key(6), Category::Ssn, "123-45-6789");
        assert!(
            s.starts_with('9') && s.len() == 11 && &s[3..4] == "-",
            "{s}"
        );
    }

    fn shape(s: &str) -> Vec<u8> {
        s.chars()
            .map(|c| {
                if c.is_numeric() {
                    b'9'
                } else if c.is_uppercase() {
                    b'A'
                } else if c.is_alphabetic() {
                    b'a'
                } else {
                    c.len_utf8() as u8
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn surrogate_is_consistent_per_key(value in "[A-Za-z0-9 .,'-]{1,40}", k in any::<u8>()) {
            for cat in [Category::Name, Category::Location, Category::Phone, Category::Mrn, Category::Email] {
                let a = surrogate(&key(k), cat, &value);
                let b = surrogate(&key(k), cat, &value);
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn different_keys_give_different_surrogates(value in "[A-Za-z0-9]{6,30}", k in 0u8..255) {
            // Format-preserving values with six or more symbols: a collision has
            // probability < 1e-6 per case.
            let a = format_preserving(&key(k), Category::Mrn, &value);
            let b = format_preserving(&key(k + 1), Category::Mrn, &value);
            prop_assert_ne!(a, b);
            let a = pseudonym(&key(k), Category::Name, &value, 8);
            let b = pseudonym(&key(k + 1), Category::Name, &value, 8);
            prop_assert_ne!(a, b);
        }

        #[test]
        fn format_preserving_keeps_length_and_shape(value in "[A-Za-z0-9() .+/#-]{1,40}", k in any::<u8>()) {
            for cat in [Category::Phone, Category::Ssn, Category::Mrn, Category::Account, Category::License] {
                let out = format_preserving(&key(k), cat, &value);
                prop_assert_eq!(out.chars().count(), value.chars().count());
                prop_assert_eq!(shape(&out), shape(&value));
                if value.chars().any(|c| c.is_ascii_alphanumeric()) && !(cat == Category::Ssn && value.chars().filter(char::is_ascii_alphanumeric).count() == 1) {
                    prop_assert_ne!(&out, &value);
                }
            }
        }
    }
}
