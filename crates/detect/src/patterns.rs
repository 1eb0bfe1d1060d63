//! Pattern recognizers with validation: dates, phone and fax numbers, SSNs, identifiers driven by
//! context words, ages over 89, e-mail, URLs and IP addresses.

use regex::Regex;

use crate::doc::Doc;
use crate::tokens::Kind;
use crate::{Category, dict};

/// The compiled regular expressions. Only `email` and `url` run over whole texts (digit chains
/// are scanned by hand, see `scan_chain`); the others classify the short matches.
pub struct Patterns {
    /// ISO 8601 timestamps, which carry a "T" inside the chain.
    iso: Regex,
    /// Numeric dates inside a chain.
    date: Regex,
    ipv4: Regex,
    email: Regex,
    url: Regex,
    ipv6: Regex,
}

/// The top-level domains a bare domain name must end with to count as a URL.
const URL_TLDS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "io", "co", "us", "uk", "de",
    "es", "fr", "it", "nl", "be", "ch", "at", "se", "no", "dk", "fi", "pl", "cz", "pt", "ca", "au",
    "nz", "br", "mx", "ar", "cl", "cy", "hu", "ru", "jp", "cn", "in", "eu",
];

fn re(p: &str) -> Regex {
    // The patterns are constants covered by tests; an invalid one is a programming error that
    // the test suite catches, so fall back to a never-matching regex rather than panic.
    Regex::new(p).unwrap_or_else(|_| never())
}

#[allow(clippy::unwrap_used)]
fn never() -> Regex {
    Regex::new(r"[^\s\S]").unwrap()
}

impl Patterns {
    pub fn new() -> Self {
        Patterns {
            iso: re(
                r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?",
            ),
            date: re(concat!(
                r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
                r"|[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{4}|[0-9]{2})(?:[ ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?",
                r"|[0-9]{1,2}\.[ ]?[0-9]{1,2}\.?[ ][0-9]{4}",
                r"|[0-9]{4}[/.][0-9]{1,2}[/.][0-9]{1,2}",
                r"|[0-9]{1,2}/[0-9]{4}",
                r"|[0-9]{1,2}\.[0-9]{1,2}\.",
                r"|[0-9]{1,2}/[0-9]{1,2}",
            )),
            ipv4: re(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"),
            email: re(r"[\w.+\-']+@[\w\-]+(?:\.[\w\-]+)+"),
            url: re(&format!(
                concat!(
                    r"(?i)(?-u:\b)(?:https?://|ftp://|www\.)[^\s<>\x22'()\[\]]+",
                    r"|(?-u:\b)[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:{})(?:\.[a-z]{{2}})?(?:/[^\s<>\x22'()]*)?(?-u:\b)",
                ),
                URL_TLDS.join("|")
            )),
            ipv6: re(r"(?i)(?:(?-u:\b)[0-9a-f]{1,4}|::)(?::{1,2}[0-9a-f]{1,4}){2,7}(?-u:\b)"),
        }
    }
}

/// E-mail addresses, URLs and IPv6 addresses, when their trigger characters appear.
pub fn emails_urls(p: &Patterns, doc: &mut Doc) {
    let text = doc.text;
    let marks = Marks::of(text.as_bytes());
    if marks.at {
        for m in p.email.find_iter(text) {
            let (s, e) = trim_trailing(text, m.start(), m.end());
            doc.push(s, e, Category::Email, 0.95, "email");
        }
    }
    // URLs need "://", "www." or a dot between two letters ("example.org")
    if marks.scheme || marks.domain_dot && dot_before_url_part(text) {
        for m in p.url.find_iter(text) {
            let (s, e) = trim_trailing(text, m.start(), m.end());
            // skip the domain of an e-mail address and plain decimal numbers
            if s > 0 && text.as_bytes()[s - 1] == b'@' {
                continue;
            }
            let a = doc.tok_at(s);
            if a < doc.claimed.len() && doc.claimed[a] {
                continue;
            }
            doc.push(s, e, Category::Url, 0.9, "url");
        }
    }
    // an IPv6 address has at least two colons followed by a hex digit
    if marks.hex_colons >= 2 {
        for m in p.ipv6.find_iter(text) {
            if m.as_str().parse::<std::net::Ipv6Addr>().is_ok() {
                doc.push(m.start(), m.end(), Category::Ip, 0.95, "ip.v6");
            }
        }
    }
}

/// What [`emails_urls`] needs to know before running a pattern, found in one pass over the
/// bytes (most texts it sees are short field values, where one plain loop beats a `memchr`
/// call per mark).
#[derive(Debug, Default, PartialEq)]
struct Marks {
    /// An "@" (an e-mail address needs one).
    at: bool,
    /// "://" somewhere.
    scheme: bool,
    /// A dot between an ASCII letter or digit and an ASCII letter ("example.org").
    domain_dot: bool,
    /// Colons followed by a hex digit (an IPv6 address has at least two).
    hex_colons: u32,
}

impl Marks {
    fn of(b: &[u8]) -> Marks {
        let mut m = Marks::default();
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'@' => m.at = true,
                b':' => {
                    let next = b.get(i + 1..).unwrap_or_default();
                    m.scheme |= next.starts_with(b"//");
                    m.hex_colons += u32::from(next.first().is_some_and(u8::is_ascii_hexdigit));
                }
                b'.' => {
                    m.domain_dot |= i > 0
                        && b[i - 1].is_ascii_alphanumeric()
                        && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
                }
                _ => {}
            }
        }
        m
    }
}

/// Whether some dot in `text` follows "www" or precedes one of [`URL_TLDS`] (both
/// case-insensitive, as in the `url` pattern): without "://", the `url` pattern cannot match
/// otherwise. Case-insensitive Unicode matching also lets the Kelvin sign stand for "k" and the
/// long s for "s".
fn dot_before_url_part(text: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'k',
        '\u{17F}' => 's',
        c => c.to_ascii_lowercase(),
    };
    let b = text.as_bytes();
    memchr::memchr_iter(b'.', b).any(|i| {
        if i >= 3 && b[i - 3..i].eq_ignore_ascii_case(b"www") {
            return true;
        }
        if !b
            .get(i + 1)
            .is_some_and(|&c| c.is_ascii_alphabetic() || c >= 0x80)
        {
            return false;
        }
        // the next four letters, folded
        let mut next = [0u8; 4];
        let mut n = 0;
        for c in text[i + 1..].chars().take(next.len()) {
            let c = fold(c);
            if !c.is_ascii_lowercase() {
                break;
            }
            next[n] = c as u8;
            n += 1;
        }
        URL_TLDS
            .iter()
            .any(|tld| next[..n].starts_with(tld.as_bytes()))
    })
}

fn trim_trailing(text: &str, s: usize, mut e: usize) -> (usize, usize) {
    while e > s {
        let c = text.as_bytes()[e - 1];
        if matches!(c, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b')') {
            e -= 1;
        } else {
            break;
        }
    }
    (s, e)
}

/// Every digit chain in the text, classified.
pub fn numbers(p: &Patterns, doc: &mut Doc) {
    let text = doc.text;
    let mut at = 0;
    // The chains start at tokens that start with a digit (or the "+"/"(" right before one), so
    // the regex runs only from there instead of scanning the whole text.
    for ti in 0..doc.toks.len() {
        let t = doc.toks[ti];
        if !t.has_digit()
            || (t.start as usize) < at
            || !text.as_bytes()[t.start as usize].is_ascii_digit()
        {
            continue;
        }
        let mut st = t.start as usize;
        let mut k = ti;
        while k >= 1
            && k + 2 > ti
            && !doc.toks[k].space_before
            && (doc.is_punct(k - 1, '(') || doc.is_punct(k - 1, '+'))
        {
            k -= 1;
            st = doc.toks[k].start as usize;
        }
        let st = st.max(at);
        let Some((m_start, m_end)) = scan_chain(p, text, st) else {
            continue;
        };
        if m_start >= t.end as usize {
            continue;
        }
        at = m_end.max(at + 1);
        let (s, mut e) = trim_chain(text, m_start, m_end);
        if s >= e {
            continue;
        }
        // "19.3." — the day-month date keeps its closing dot
        let b = text.as_bytes();
        if doc.lang != crate::Lang::En
            && e < b.len()
            && b[e] == b'.'
            && (e + 1 == b.len() || !b[e + 1].is_ascii_digit())
            && text[s..e].bytes().filter(|&c| c == b'.').count() == 1
            && e - s <= 5
        {
            e += 1;
        }
        if doc.tok_at(s) < doc.claimed.len() && doc.claimed[doc.tok_at(s)] {
            continue;
        }
        classify_chain(p, doc, s, e);
    }
}

/// Scans the digit chain that starts at byte `st` (an optional "+" and "(" then digits): digit
/// groups joined by short separators (" ", ".", "/", "-", ":", parentheses). A hand-written
/// equivalent of the `chain` pattern, which it replaces on the hot path; ISO timestamps
/// ("2021-03-14T08:30:00Z") are matched with the `iso` pattern at the same start.
fn scan_chain(p: &Patterns, text: &str, st: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let n = b.len();
    let digits = |mut i: usize| {
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = st;
    if i < n && b[i] == b'+' {
        i += 1;
    }
    if i < n && b[i] == b'(' {
        i += 1;
    }
    let first = digits(i);
    if first == i {
        return None;
    }
    if first - i == 4
        && first < n
        && b[first] == b'-'
        && let Some(m) = p.iso.find_at(text, st)
        && m.start() == st
        && m.end() > first + 1
    {
        return Some((st, m.end()));
    }
    i = first;
    loop {
        // one separator form, then digits
        let mut j = i;
        let sp = |j: usize| j < n && b[j] == b' ';
        if j < n && matches!(b[j], b'.' | b'/' | b'-' | b':') {
            j += 1;
            if sp(j) {
                j += 1;
            }
        } else if sp(j) && j + 1 < n && matches!(b[j + 1], b'.' | b'/' | b'-' | b':') {
            j += 2;
            if sp(j) {
                j += 1;
            }
        } else if j < n && b[j] == b')' || sp(j) && j + 1 < n && b[j + 1] == b')' {
            j += if b[j] == b')' { 1 } else { 2 };
            if sp(j) {
                j += 1;
            }
            if j < n && b[j] == b'(' {
                j += 1;
            }
        } else if sp(j) && j + 1 < n && b[j + 1] == b'(' {
            j += 2;
        } else if sp(j) {
            j += 1;
        } else {
            break;
        }
        let d = digits(j);
        if d == j {
            break;
        }
        i = d;
    }
    if i < n && b[i] == b')' {
        i += 1;
    }
    Some((st, i))
}

fn trim_chain(text: &str, s: usize, mut e: usize) -> (usize, usize) {
    let b = text.as_bytes();
    while e > s && !b[e - 1].is_ascii_digit() && b[e - 1] != b')' {
        e -= 1;
    }
    if e > s && b[e - 1] == b')' && !text[s..e].contains('(') {
        e -= 1;
    }
    let mut s = s;
    if b[s] == b'(' && !text[s..e].contains(')') {
        s += 1;
    }
    (s, e)
}

/// Splits a chain around the dates inside it, then classifies the rest.
fn classify_chain(p: &Patterns, doc: &mut Doc, s: usize, e: usize) {
    let text = doc.text;
    let slice = &text[s..e];
    let bytes = text.as_bytes();
    // an IPv4 address: digits and three dots
    let dots = slice.bytes().filter(|&c| c == b'.').count();
    if dots == 3 && slice.bytes().all(|c| c.is_ascii_digit() || c == b'.') && p.ipv4.is_match(slice)
    {
        if slice
            .split('.')
            .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255))
        {
            doc.push(s, e, Category::Ip, 0.9, "ip.v4");
        }
        return;
    }
    // a phone-shaped whole chain wins over dates inside it
    let digits = slice.bytes().filter(u8::is_ascii_digit).count();
    let mut cursor = s;
    // every numeric date has a "/", "." or "-" in it
    let separated = dots > 0 || slice.bytes().any(|c| c == b'/' || c == b'-');
    if separated && !(digits >= 9 && looks_like_phone(slice)) {
        for m in p.date.find_iter(slice) {
            let (ds, de) = (s + m.start(), s + m.end());
            // dates must not be glued to more digits
            if ds > 0 && bytes[ds - 1].is_ascii_digit()
                || de < bytes.len() && bytes[de].is_ascii_digit()
            {
                continue;
            }
            if de < bytes.len()
                && !m.as_str().ends_with('.')
                && bytes[de] == b'.'
                && de + 1 < bytes.len()
                && bytes[de + 1].is_ascii_digit()
            {
                continue;
            }
            if let Some(conf) = valid_numeric_date(m.as_str(), doc, ds, de) {
                if ds > cursor {
                    classify_number(doc, cursor, ds);
                }
                doc.push(ds, de, Category::Date, conf, "date.numeric");
                cursor = de;
            }
        }
    }
    if cursor < e {
        let (a, b) = trim_chain(text, cursor, e);
        let a = skip_non_digit(text, a, b);
        if a < b {
            classify_number(doc, a, b);
        }
    }
}

fn skip_non_digit(text: &str, mut a: usize, b: usize) -> usize {
    let bytes = text.as_bytes();
    while a < b && !bytes[a].is_ascii_digit() && bytes[a] != b'+' && bytes[a] != b'(' {
        a += 1;
    }
    a
}

fn looks_like_phone(s: &str) -> bool {
    s.starts_with('+') || s.starts_with('(') || s.contains(')')
}

/// Validates a numeric date match; returns its confidence.
fn valid_numeric_date(d: &str, doc: &Doc, s: usize, e: usize) -> Option<f32> {
    let parts: Vec<&str> = d
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .collect();
    let nums: Vec<u32> = parts.iter().filter_map(|x| x.parse().ok()).collect();
    let sep_count = parts.len().saturating_sub(1);
    // one separator throughout: "6/29-11/29" is a range of two dates, not d/m/y
    let seps: Vec<char> = d
        .trim_end_matches('.')
        .chars()
        .filter(|c| matches!(c, '/' | '-' | '.'))
        .collect();
    if seps.windows(2).any(|w| w[0] != w[1]) && !d.contains(':') && !d.contains(' ') {
        return None;
    }
    let first_len = parts.first().map_or(0, |x| x.len());
    match (nums.as_slice(), first_len) {
        // y-m-d
        ([y, m, dd, ..], 4) => {
            (*m >= 1 && *m <= 12 && *dd >= 1 && *dd <= 31 && (1800..=2199).contains(y))
                .then_some(0.95)
        }
        ([a, b, y, ..], _) if parts.len() >= 3 && sep_count >= 2 => {
            let ylen = parts[2].len();
            let ok_year = ylen == 4 && (1800..=2199).contains(y) || ylen == 2;
            let dm = (*a >= 1 && *a <= 31 && *b >= 1 && *b <= 12)
                || (*a >= 1 && *a <= 12 && *b >= 1 && *b <= 31);
            (ok_year && dm).then_some(if ylen == 4 { 0.95 } else { 0.8 })
        }
        ([m, y], _) if parts[1].len() == 4 => {
            (*m >= 1 && *m <= 12 && (1900..=2199).contains(y) && d.contains('/')).then_some(0.75)
        }
        ([a, b], _) => {
            // "19.3." (de/es) or "3/14" (en): both parts small; reject ratios, scores and BP.
            // "03/33": month and two-digit year.
            // single digits only in the dotted form ("2.3."), never "1/2"
            let small = parts[0].len() <= 2
                && parts[1].len() <= 2
                && (parts[0].len() + parts[1].len() >= 3 || d.ends_with('.'));
            let dm = small
                && ((1..=31).contains(a) && (1..=12).contains(b)
                    || (1..=12).contains(a) && (1..=31).contains(b));
            let month_year = small && d.contains('/') && (1..=12).contains(a);
            if d.ends_with('.') && dm {
                return Some(0.7);
            }
            if d.contains('/') && (dm || month_year) && !near_measure(doc, s, e) {
                return Some(if dm { 0.55 } else { 0.5 });
            }
            None
        }
        _ => None,
    }
}

/// A unit or score word right after or before (e.g. "5/10 pain", "GCS 3/15").
fn near_measure(doc: &Doc, s: usize, e: usize) -> bool {
    let j = doc.tok_end(e);
    if j < doc.toks.len() && doc.toks[j].kind == Kind::Word {
        let f = doc.f(j);
        if f & dict::UNIT != 0 {
            return true;
        }
        let w = doc.s(j).to_ascii_lowercase();
        if matches!(
            w.as_str(),
            "pain" | "strength" | "scale" | "power" | "vision" | "dolor" | "schmerz" | "score"
        ) {
            return true;
        }
    }
    let i = doc.tok_at(s);
    // right after a redaction tag ("[NAME] 30/2", "Child [NAME]: 5/15"): an earlier run judged
    // this value with the word the tag replaced and left it, so it stays (de-identifying twice
    // changes nothing)
    let mut k = i;
    while k > 0 && doc.toks[k - 1].kind == Kind::Punct && doc.toks[k - 1].ch == ':' {
        k -= 1;
    }
    if k >= 2 && doc.toks[k - 2].upper && crate::names::is_tag(doc, k - 2) {
        return true;
    }
    if let Some(p) = doc.prev_word(i, 2) {
        let w = doc.s(p).to_lowercase();
        if SCALE_WORDS.contains(&w.as_str()) || RESULT_WORDS.contains(&w.as_str()) {
            return true;
        }
    }
    // further back on the same line, over numbers, punctuation and at most two function words:
    // "EVA 2/10, 3/10, 7/10 y 1/10", "Apgar fue 3/10", "AV de 4/10", "IgG: positiva 1/64"
    let mut j = i;
    let mut function_words = 0;
    let mut buf = dict::LowerBuf::default();
    while j > 0 && i - j < 16 && !doc.toks[j].newline_before {
        j -= 1;
        let t = doc.toks[j];
        match t.kind {
            Kind::Num => continue,
            // not across the end of a sentence ("Dolor. El 3/10 ingresó")
            Kind::Punct if t.ch == '.' && doc.toks[j + 1].space_before => return false,
            Kind::Punct if t.ch != ';' => continue,
            Kind::Word => {
                let w = dict::lower(doc.s(j), &mut buf);
                if SCALE_WORDS.contains(&w) {
                    return true;
                }
                if doc.has(j, dict::FUNCTION | dict::STOP_ANY) && function_words < 2 {
                    function_words += 1;
                    continue;
                }
                return false;
            }
            _ => return false,
        }
    }
    false
}

/// Scales, scores and titres whose values are written "a/b" ("Apgar 9/10", "Glasgow 6/15",
/// "Gleason 6/10", "título 1/80"), in English, Spanish and German, lower case.
const SCALE_WORDS: &[&str] = &[
    "gcs",
    "pain",
    "dolor",
    "schmerz",
    "strength",
    "power",
    "bp",
    "ta",
    "rr",
    "score",
    "grade",
    "grado",
    "ratio",
    "apgar",
    "nyha",
    "eva",
    "vas",
    "nrs",
    "ecog",
    "glasgow",
    "gleason",
    "escala",
    "scale",
    "skala",
    "título",
    "titulo",
    "títulos",
    "titer",
    "titre",
    "dilución",
    "diluciones",
    "dilution",
    "dilutions",
    "verdünnung",
    "av",
    "agudeza",
    "visus",
    "acuity",
    "child",
    "pugh",
    "índice",
    "indice",
    "intensidad",
    "intensität",
    "humphrey",
    "ana",
    "rpr",
    "vdrl",
    "tpha",
    "igg",
    "igm",
    "iga",
    "mitótico",
    "mitotic",
    "fuerza",
    "kraft",
];

/// Words after which "a/b" is a test result ("positiva 1/64", "positivos (1/80)").
const RESULT_WORDS: &[&str] = &[
    "positivo",
    "positiva",
    "positivos",
    "positivas",
    "positive",
    "positiv",
    "negativo",
    "negativa",
    "negative",
    "negativ",
    "reactivo",
    "reactiva",
];

/// The identifier category named by a context word shortly before token `i`, if any.
pub fn id_context(doc: &Doc, i: usize, max_back: usize) -> Option<Category> {
    let mut found: Option<Category> = None;
    let mut j = i;
    let mut words = 0;
    let mut buf = dict::LowerBuf::default();
    while j > 0 && words < max_back {
        j -= 1;
        let t = doc.toks[j];
        if t.kind == Kind::Punct {
            if matches!(
                t.ch,
                ':' | '#' | '.' | '-' | '(' | '/' | 'º' | '°' | '=' | '_'
            ) {
                if doc.toks[j + 1].newline_before && words > 0 {
                    return found;
                }
                continue;
            }
            return found;
        }
        if t.kind == Kind::Num {
            return found;
        }
        words += 1;
        let w = crate::dict::lower(doc.s(j), &mut buf);
        let weak = matches!(
            w,
            "station"
                | "zimmer"
                | "bett"
                | "room"
                | "ward"
                | "bed"
                | "habitación"
                | "habitacion"
                | "cama"
                | "intensivstation"
        );
        if weak && words > 1 {
            return found;
        }
        if let Some(c) = doc.dict.id_context(w) {
            // "Insurance ID:": a specific word before a generic one wins
            if c != Category::OtherId {
                return Some(c);
            }
            found.get_or_insert(c);
        }
        if t.kind == Kind::Alnum {
            return found;
        }
        if doc.toks[j].newline_before {
            return found;
        }
    }
    found
}

/// "vom 4. bis 18.10.21", "am 21. und 23.04.2028", "(13. - 24.10.2023": the first day of a
/// range written before a full date.
pub fn range_days(doc: &mut Doc) {
    let n = doc.toks.len();
    for i in 0..n.saturating_sub(3) {
        let t = doc.toks[i];
        if doc.claimed[i] || t.kind != Kind::Num || t.len() > 2 || !doc.is_punct(i + 1, '.') {
            continue;
        }
        if !doc.s(i).parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)) {
            continue;
        }
        let mut k = i + 2;
        if !(matches!(
            doc.s(k),
            "bis" | "und" | "-" | "–" | "al" | "y" | "to" | "and"
        )) {
            continue;
        }
        k += 1;
        if k < n
            && doc.claimed[k]
            && doc
                .spans
                .iter()
                .any(|sp| sp.category == Category::Date && sp.start == doc.toks[k].start as usize)
        {
            doc.push_toks(i, i + 1, Category::Date, 0.7, "date.range_start");
        }
    }
}

/// Splits a chain around years that stand apart from their neighbours by a space
/// ("2020 - 2020 6 Zyklen", "vom 2022 276 auf"): the parts that are not years, as byte ranges
/// of `slice`; `None` when there is no such year.
fn split_years(slice: &str) -> Option<Vec<(usize, usize)>> {
    let b = slice.as_bytes();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let st = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((st, i));
        } else {
            i += 1;
        }
    }
    let is_year = |k: usize| {
        let (st, en) = groups[k];
        en - st == 4
            && slice[st..en]
                .parse::<u32>()
                .is_ok_and(|y| (1900..=2099).contains(&y))
            && (k == 0 || slice[groups[k - 1].1..st].contains(' '))
            && (k + 1 == groups.len() || slice[en..groups[k + 1].0].contains(' '))
    };
    let years: Vec<bool> = (0..groups.len()).map(is_year).collect();
    if !years.iter().any(|&y| y) {
        return None;
    }
    let mut out = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for (k, &(st, en)) in groups.iter().enumerate() {
        if years[k] {
            if let Some(r) = run.take() {
                out.push(r);
            }
        } else {
            run = Some(run.map_or((st, en), |(a, _)| (a, en)));
        }
    }
    if let Some(r) = run {
        out.push(r);
    }
    Some(out)
}

/// A dosing schedule, the doses morning-noon-evening(-night) written in German-speaking and
/// other European prescriptions: three or four doses of one or two digits or a fraction, joined
/// by hyphens, at least one of them zero or a fraction or all of one digit ("1-0-1",
/// "0-0-0-2/3", "1/2-1/2-1/2", "18-0-12", "1-1-1-1"), optionally after the strength ("40
/// 1-0-0", "30/70 0-0-0-6").
fn dosing_schedule(slice: &str) -> bool {
    schedule(slice)
        || slice
            .split_once(' ')
            .is_some_and(|(head, tail)| is_strength(head) && schedule(tail))
}

/// A drug's strength before its schedule: digits with "." "," or "/" ("40", "12,5", "30/70").
fn is_strength(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b',' | b'/'))
}

/// The doses of a schedule alone (see `dosing_schedule`), spaces around the hyphens allowed.
fn schedule(slice: &str) -> bool {
    let tail = match slice.rsplit_once(' ') {
        Some((head, tail))
            if !tail.is_empty() && is_strength(head.trim()) && tail.contains('-') =>
        {
            tail
        }
        _ => slice,
    };
    let mut doses = [""; 4];
    let mut n = 0;
    for d in tail.split('-') {
        if n == doses.len() {
            return false;
        }
        doses[n] = d.trim();
        n += 1;
    }
    if n < 3 {
        return false;
    }
    let doses = &doses[..n];
    let digits = |d: &str| !d.is_empty() && d.len() <= 2 && d.bytes().all(|c| c.is_ascii_digit());
    let fraction = |d: &str| {
        d.split_once('/')
            .is_some_and(|(a, b)| a.len() == 1 && b.len() == 1 && digits(a) && digits(b))
    };
    doses.iter().all(|d| digits(d) || fraction(d))
        && (doses.iter().any(|d| *d == "0" || fraction(d)) || doses.iter().all(|d| d.len() == 1))
}

/// A joint's range of motion by the neutral-zero method ("0-10-60", "(20-0-130)"): three
/// angles of at most 180 degrees, one of them zero.
fn neutral_zero_range(slice: &str) -> bool {
    let inner = slice.trim_start_matches('(').trim_end_matches(')');
    let mut n = 0;
    let mut zero = false;
    for g in inner.split('-') {
        let g = g.trim();
        n += 1;
        if g.is_empty() || g.len() > 3 || !g.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
        zero |= g == "0";
        if g.parse::<u32>().map_or(true, |v| v > 180) {
            return false;
        }
    }
    n == 3 && zero
}

/// A time of day, "12:14" or "12:14:02".
fn clock_time(slice: &str) -> bool {
    let Some((hour, rest)) = slice.split_once(':') else {
        return false;
    };
    let minutes = |p: &str| p.len() == 2 && p.parse::<u32>().is_ok_and(|v| v <= 59);
    (1..=2).contains(&hour.len())
        && hour.parse::<u32>().is_ok_and(|h| h <= 24)
        && match rest.split_once(':') {
            Some((m, sec)) => minutes(m) && minutes(sec),
            None => minutes(rest),
        }
}

/// The number ending at token `j` (exclusive) is followed by the name of a blood-count
/// analyte ("219000 Thrombo").
fn before_lab_analyte(doc: &Doc, j: usize) -> bool {
    j < doc.toks.len() && !doc.toks[j].newline_before && lab_analyte(doc, j)
}

/// Token `k` names a blood-count analyte (`lexicon::LAB_COUNT_ANALYTES`).
fn lab_analyte(doc: &Doc, k: usize) -> bool {
    doc.toks[k].kind == Kind::Word && {
        let mut buf = dict::LowerBuf::default();
        crate::lexicon::LAB_COUNT_ANALYTES.contains(&dict::lower(doc.s(k), &mut buf))
    }
}

/// The number at token `i` follows the name of a blood-count analyte (with at most a colon or
/// an opening bracket between): a count, not an identifier.
fn after_lab_analyte(doc: &Doc, i: usize) -> bool {
    let mut j = i;
    while j > 0
        && doc.toks[j - 1].kind == Kind::Punct
        && matches!(doc.toks[j - 1].ch, ':' | '(' | '=')
    {
        j -= 1;
    }
    j > 0 && !doc.toks[j].newline_before && lab_analyte(doc, j - 1)
}

/// Classifies a digit chain that is not a date.
fn classify_number(doc: &mut Doc, s: usize, e: usize) {
    let text = doc.text;
    let slice = &text[s..e];
    let digits = slice.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 {
        return;
    }
    let groups = slice
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .count();
    if groups >= 2
        && let Some(pieces) = split_years(slice)
    {
        for (a, b) in pieces {
            classify_number(doc, s + a, s + b);
        }
        return;
    }
    let i = doc.tok_at(s);
    let j = doc.tok_end(e);
    // ages over 89
    if digits <= 3
        && groups == 1
        && let Ok(v) = slice
            .trim_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
        && (90..=125).contains(&v)
        && age_unit_after(doc, j)
    {
        let end = age_span_end(doc, j, e);
        doc.push(s, end, Category::AgeOver89, 0.9, "age.over89");
        return;
    }
    // a year, or a range of years ("2019-2020"), is not an identifier (Safe Harbor keeps years)
    let is_year =
        |g: &str| g.len() == 4 && g.parse::<u32>().is_ok_and(|y| (1900..=2099).contains(&y));
    let year_groups: Vec<&str> = slice
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .collect();
    if groups <= 2
        && year_groups.iter().all(|g| is_year(g))
        && slice
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | ' '))
        && (groups == 1 || !slice.contains("  "))
    {
        return;
    }
    let ctx = id_context(doc, i, 3);
    let unit_after = j < doc.toks.len()
        && (doc.has(j, dict::UNIT) || doc.is_punct(j, '%') || doc.is_punct(j, '°'))
        && !doc.toks[j].newline_before;
    if unit_after && ctx.is_none() {
        return;
    }
    // a dosing schedule ("1-0-1", "40 1-0-0", "1/2-0-1/2") or a blood count after its analyte
    // ("Thrombo 234000", "Leukozyten 6.400") is a measurement
    if ctx.is_none()
        && (dosing_schedule(slice)
            || neutral_zero_range(slice)
            || clock_time(slice)
            || after_lab_analyte(doc, i)
            || before_lab_analyte(doc, j)
            || slice.contains('/') && near_measure(doc, s, e))
    {
        return;
    }
    // decimals and thousands separators: "1.16", "150.000", "2,5"
    let seps: Vec<char> = slice.chars().filter(|c| !c.is_ascii_digit()).collect();
    let only_dots = !seps.is_empty() && seps.iter().all(|&c| c == '.' || c == ',');
    if only_dots && ctx.is_none() && !(digits >= 8 && groups >= 3) {
        return;
    }
    let ssn_shape = groups == 3 && {
        let g: Vec<usize> = slice.split(['-', ' ']).map(str::len).collect();
        g == [3, 2, 4]
    };
    if ssn_shape && ctx.is_none_or(|c| c == Category::Ssn) {
        doc.push(s, e, Category::Ssn, 0.9, "ssn");
        return;
    }
    if digits >= 7 {
        let cat = ctx.unwrap_or(
            if looks_like_phone(slice) || phone_shape(slice, digits, groups) {
                Category::Phone
            } else {
                Category::OtherId
            },
        );
        doc.push(
            s,
            e,
            cat,
            if ctx.is_some() { 0.95 } else { 0.8 },
            "number.long",
        );
        return;
    }
    if digits >= 5 {
        let range_like = groups == 2
            && slice
                .trim_matches(['(', ')'])
                .split(['-', '/', ' '])
                .all(|g| g.trim().len() <= 3);
        if range_like && ctx.is_none() {
            return;
        }
        let cat = ctx.unwrap_or(Category::OtherId);
        doc.push(
            s,
            e,
            cat,
            if ctx.is_some() { 0.9 } else { 0.6 },
            "number.id",
        );
        return;
    }
    if let Some(cat) = ctx
        && digits >= 2
        && !(unit_after)
    {
        doc.push(s, e, cat, 0.8, "number.context");
    }
}

fn phone_shape(slice: &str, digits: usize, groups: usize) -> bool {
    (digits == 10 || digits == 11) && groups >= 2
        || groups >= 3
        || slice.starts_with('0') && groups >= 2
}

fn age_unit_after(doc: &Doc, j: usize) -> bool {
    let mut k = j;
    if doc.is_punct(k, '-') {
        k += 1;
    }
    if k >= doc.toks.len() || doc.toks[k].kind == Kind::Num {
        return false;
    }
    let w = doc.s(k).to_lowercase();
    if doc.lang != crate::Lang::En && matches!(w.as_str(), "y" | "a" | "yo") {
        return false; // Spanish "y" (and), "a" (to)
    }
    matches!(
        w.as_str(),
        "y" | "yo"
            | "yr"
            | "yrs"
            | "year"
            | "years"
            | "años"
            | "anos"
            | "año"
            | "jahre"
            | "jahren"
            | "jährig"
            | "jährige"
            | "jähriger"
            | "jährigen"
            | "j"
            | "a"
            | "yoa"
            | "jahrige"
            | "jähr"
    ) || w.starts_with("year")
        || w.starts_with("jährig")
}

fn age_span_end(doc: &Doc, j: usize, e: usize) -> usize {
    // Spanish and German: include the unit word ("92 años"), as corpora label it; English: the number.
    if doc.lang == crate::Lang::En {
        return e;
    }
    let mut k = j;
    if doc.is_punct(k, '-') {
        k += 1;
    }
    if k < doc.toks.len() {
        doc.toks[k].end as usize
    } else {
        e
    }
}

/// Tokens `i..=j` are an ICD-10 code with its subdivision ("F60.31", "M94.26", "C18.7"): a
/// diagnosis, not an identifier.
fn icd10_code(doc: &Doc, i: usize, j: usize) -> bool {
    let head = doc.s(i).as_bytes();
    j == i + 2
        && doc.is_punct(i + 1, '.')
        && head.len() == 3
        && head[0].is_ascii_uppercase()
        && head[0] != b'U'
        && head[1].is_ascii_digit()
        && (head[2].is_ascii_digit() || matches!(head[2], b'A' | b'B'))
        && {
            let sub = doc.s(j);
            (1..=4).contains(&sub.len()) && sub.bytes().all(|c| c.is_ascii_alphanumeric())
        }
}

/// Identifiers made of letters and digits ("RV123456", "HPI-987654", "#UPMC-231500JR",
/// IBANs), and short numbers after a context word.
pub fn alnum_ids(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut i = 0;
    while i < n {
        let t = doc.toks[i];
        if !(t.kind == Kind::Alnum
            || t.kind == Kind::Num
            || (t.kind == Kind::Word && (t.upper || t.cap && t.len() == 1) && t.len() <= 6))
        {
            i += 1;
            continue;
        }
        // build a compound of alnum parts joined by '-' or '/' with no spaces
        let mut j = i;
        let mut digits = count_digits(doc.s(i));
        let mut letters = doc.s(i).chars().any(char::is_alphabetic);
        while j + 2 < n
            && (doc.is_punct(j + 1, '-') || doc.is_punct(j + 1, '/') || doc.is_punct(j + 1, '.'))
            && !doc.toks[j + 1].space_before
            && !doc.toks[j + 2].space_before
            && doc.toks[j + 2].kind != Kind::Punct
            && (doc.toks[j + 2].kind != Kind::Word
                || doc.toks[j + 2].upper
                || doc.toks[j + 2].len() <= 3)
        {
            j += 2;
            digits += count_digits(doc.s(j));
            letters |= doc.s(j).chars().any(char::is_alphabetic);
        }
        let has_alnum = (i..=j).any(|k| doc.toks[k].kind == Kind::Alnum);
        // measurements glued to their unit: "1000mg", "600células", "14.610/mm3"
        let measure = (i..=j).any(|k| {
            doc.toks[k].kind == Kind::Alnum && {
                let w = doc.s(k);
                let first_digit = w.starts_with(|c: char| c.is_ascii_digit());
                let lower = w.chars().filter(|c| c.is_lowercase()).count();
                first_digit && lower >= 2
                    || doc.dict.get(&w.to_lowercase()) & dict::UNIT != 0
                    || w.ends_with("m2")
                    || w.ends_with("m3")
            }
        });
        // a rate or concentration written with its unit after a slash: "10-11/Sek",
        // "100-120/min", "6.400/µl"
        let per_unit = j > i
            && doc.is_punct(j - 1, '/')
            && doc.toks[j].kind == Kind::Word
            && doc.has(j, dict::UNIT);
        if measure
            || per_unit
            || (icd10_code(doc, i, j) || notation(doc, i, j)) && id_context(doc, i, 3).is_none()
        {
            i = j + 1;
            continue;
        }
        if digits >= 4 && (letters || has_alnum) && (has_alnum || j > i) {
            let mut a = i;
            if a > 0 && doc.is_punct(a - 1, '#') && !doc.toks[a].space_before {
                a -= 1;
            }
            let ctx = id_context(doc, i, 3);
            let dd = digits;
            if !doc.any_claimed(i, j) || ctx.is_some() {
                let cat = ctx.unwrap_or(Category::OtherId);
                let conf = if ctx.is_some() {
                    0.9
                } else if dd >= 5 {
                    0.7
                } else {
                    0.55
                };
                doc.push_toks(a, j, cat, conf, "id.alnum");
            } else {
                // extend an existing numeric span over the letter parts
                doc.push_toks(a, j, Category::OtherId, 0.6, "id.alnum");
            }
        } else if digits >= 1
            && has_alnum
            && !doc.any_claimed(i, j)
            && let Some(cat) = id_context(doc, i, 2)
        {
            doc.push_toks(i, j, cat, 0.75, "id.context");
        }
        i = j + 1;
    }
}

/// The compound of tokens `i..=j` (parts joined by single marks) is a measurement or a
/// notation: each part is one (see `not_an_id_part`), it is a run of vertebral levels
/// ("T11-T12"), or a variant after an HGVS prefix ("c.1766G").
fn notation(doc: &Doc, i: usize, j: usize) -> bool {
    (i..=j).step_by(2).all(|k| not_an_id_part(doc.s(k), doc))
        || j > i && (i..=j).step_by(2).all(|k| vertebra(doc.s(k)))
        || hgvs_prefixed(doc, i)
}

/// A part of a digit compound that is a measurement or a notation, not an identifier's:
/// dimensions ("65x46", "14X10X10"), a number of up to four digits with a unit glued after it
/// ("5000UI", "20g", "24h"), degrees ("39º"), a dbSNP reference ("rs121912744").
fn not_an_id_part(w: &str, doc: &Doc) -> bool {
    let digits = w.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &w[digits..];
    let dimension = w.contains(['x', 'X'])
        && w.split(['x', 'X'])
            .all(|p| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    // up to four digits: a national ID's check letter may be a unit's ("12345678S")
    let unit_suffix = (1..=4).contains(&digits)
        && !rest.is_empty()
        && doc.dict.get(&rest.to_lowercase()) & dict::UNIT != 0;
    let degrees = (1..=3).contains(&digits) && matches!(rest, "º" | "°" | "ºC" | "°C");
    let dbsnp = w.len() > 2 && w.starts_with("rs") && w[2..].bytes().all(|b| b.is_ascii_digit());
    dimension || unit_suffix || degrees || dbsnp
}

/// A vertebra or its level: "T11", "D10", "L4", "C5", "S1".
fn vertebra(w: &str) -> bool {
    let b = w.as_bytes();
    (2..=3).contains(&b.len())
        && matches!(b[0], b'C' | b'T' | b'D' | b'L' | b'S')
        && b[1..].iter().all(u8::is_ascii_digit)
}

/// A sequence variant in HGVS notation: "c.1766G", "p.R490W", "g.20210G": one of the prefixes
/// c, g, m, n, p, r and a period directly before the compound.
fn hgvs_prefixed(doc: &Doc, i: usize) -> bool {
    i >= 2
        && doc.is_punct(i - 1, '.')
        && !doc.toks[i].space_before
        && !doc.toks[i - 1].space_before
        && matches!(doc.s(i - 2), "c" | "g" | "m" | "n" | "p" | "r")
}

fn count_digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Dates written with month names, in English, Spanish and German, and weekday names.
pub fn month_dates(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    for i in 0..n {
        let f = doc.f(i);
        if f & (dict::MONTH | dict::WEEKDAY) == 0 || doc.claimed[i] {
            continue;
        }
        let t = doc.toks[i];
        if f & dict::WEEKDAY != 0 && f & dict::MONTH == 0 {
            if t.cap || doc.lang == crate::Lang::Es {
                doc.push_toks(i, i, Category::Date, 0.5, "date.weekday");
            }
            continue;
        }
        let word = crate::dict::lower(doc.s(i), &mut buf).to_string();
        // English and German month names are capitalised; Spanish ones usually are not
        if !t.cap && doc.lang != crate::Lang::Es {
            continue;
        }
        let mut a = i;
        let mut b = i;
        let mut has_num = false;
        let mut k = i + 1;
        if doc.is_punct(k, '.') {
            k += 1;
        }
        // right: day, ordinal, year
        if k < n && is_day(doc, k) {
            b = k;
            has_num = true;
            k += 1;
            if doc.is_punct(k, '.') && doc.lang == crate::Lang::De {
                k += 1;
            }
            if doc.is_punct(k, ',') {
                k += 1;
            }
            if k < n && is_year(doc, k) {
                b = k;
            } else if doc.is_punct(k, '\'')
                && k + 1 < n
                && doc.toks[k + 1].kind == Kind::Num
                && doc.toks[k + 1].len() == 2
            {
                b = k + 1;
            }
        } else if k < n && is_year(doc, k) {
            b = k;
            has_num = true;
        } else if k + 1 < n
            && (matches!(doc.s(k), "de" | "del" | "of") && is_year(doc, k + 1)
                || doc.is_punct(k, '\'')
                    && doc.toks[k + 1].kind == Kind::Num
                    && doc.toks[k + 1].len() == 2
                // "diciembre-2002", "febrero-03": a hyphen joins a year or two digits
                || k == i + 1
                    && joined(doc, k)
                    && joined(doc, k + 1)
                    && (is_year(doc, k + 1)
                        || doc.toks[k + 1].kind == Kind::Num && doc.toks[k + 1].len() == 2))
        {
            b = k + 1;
            has_num = true;
        } else if k + 2 < n
            && matches!(doc.s(k), "de" | "del")
            && doc.s(k + 1).eq_ignore_ascii_case("año")
            && is_year(doc, k + 2)
        {
            // "enero del año 2001"
            b = k + 2;
            has_num = true;
        }
        // left: "5 March", "5th of March", "5 de marzo", "5. März", "March" after weekday
        let mut l = i;
        if l >= 1 && matches!(doc.s(l - 1), "de" | "of" | "the") {
            l -= 1;
        }
        if l >= 1 && doc.is_punct(l - 1, '.') && l >= 2 && is_day(doc, l - 2) {
            a = l - 2;
            has_num = true;
        } else if l == i && l >= 2 && joined(doc, l) && joined(doc, l - 1) && is_day(doc, l - 2) {
            // "23-enero-2004"
            a = l - 2;
            has_num = true;
        } else if l >= 1 && is_day(doc, l - 1) {
            a = l - 1;
            has_num = true;
        }
        if a >= 2 && doc.is_punct(a - 1, ',') && doc.has(a - 2, dict::WEEKDAY) {
            a -= 2;
        } else if a >= 1 && doc.has(a - 1, dict::WEEKDAY) {
            a -= 1;
        }
        if !has_num {
            let ambiguous = doc.f(i) & dict::AMBIGUOUS_MONTH != 0 || word.len() <= 3;
            if ambiguous {
                continue;
            }
            doc.push_toks(a, b, Category::Date, 0.6, "date.month");
            continue;
        }
        doc.push_toks(a, b, Category::Date, 0.9, "date.month");
    }
}

/// Token `k` is a hyphen with no space before it and none before the token after it, or
/// (for `k` after a hyphen) directly follows one: the two sides of "enero-2004" are joined.
fn joined(doc: &Doc, k: usize) -> bool {
    let hyphen = |j: usize| doc.is_punct(j, '-');
    k < doc.toks.len() && !doc.toks[k].space_before && (hyphen(k) || k >= 1 && hyphen(k - 1))
}

fn is_day(doc: &Doc, k: usize) -> bool {
    let s = doc.s(k);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 2 {
        return false;
    }
    let rest = &s[digits.len()..];
    let ok_suffix = rest.is_empty()
        || matches!(
            rest.to_ascii_lowercase().as_str(),
            "st" | "nd" | "rd" | "th" | "º" | "o"
        );
    ok_suffix && digits.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

fn is_year(doc: &Doc, k: usize) -> bool {
    let t = doc.toks[k];
    t.kind == Kind::Num
        && t.len() == 4
        && doc
            .s(k)
            .parse::<u32>()
            .is_ok_and(|y| (1800..=2199).contains(&y))
}

/// Ages over 89 written in words ("ninety-one-year-old", "noventa y dos años").
pub fn age_words(doc: &mut Doc) {
    let n = doc.toks.len();
    let mut buf = dict::LowerBuf::default();
    for i in 0..n {
        if doc.toks[i].kind != Kind::Word || doc.claimed[i] {
            continue;
        }
        let german_compound = doc.lang == crate::Lang::De
            && doc.toks[i].len() > 10
            && doc.s(i).contains("undneunzig");
        if !(doc.has(i, dict::NUMBER_WORD) || german_compound) {
            continue;
        }
        let w = crate::dict::lower(doc.s(i), &mut buf);
        if !(w.starts_with("ninety")
            || w.starts_with("noventa")
            || w.starts_with("neunzig")
            || w.contains("undneunzig")
            || w == "hundred"
            || w == "cien"
            || w == "ciento")
        {
            continue;
        }
        // extend over number words and hyphens up to a year/age word
        let mut k = i + 1;
        let mut end = i;
        while k < n && k < i + 7 {
            let wk = crate::dict::lower(doc.s(k), &mut buf).to_string();
            if doc.toks[k].kind == Kind::Punct && doc.toks[k].ch == '-' {
                k += 1;
                continue;
            }
            if matches!(
                wk.as_str(),
                "one"
                    | "two"
                    | "three"
                    | "four"
                    | "five"
                    | "six"
                    | "seven"
                    | "eight"
                    | "nine"
                    | "y"
                    | "uno"
                    | "dos"
                    | "tres"
                    | "cuatro"
                    | "cinco"
                    | "seis"
                    | "siete"
                    | "ocho"
                    | "nueve"
                    | "and"
            ) {
                end = k;
                k += 1;
                continue;
            }
            if wk.starts_with("year")
                || wk == "años"
                || wk.starts_with("jahr")
                || wk.starts_with("jähr")
                || wk == "yo"
            {
                let e = if doc.lang == crate::Lang::En { end } else { k };
                doc.push_toks(i, e, Category::AgeOver89, 0.85, "age.words");
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass marks are the searches they replace, on every string of up to four bytes
    /// drawn from the characters they look at (and a few they must ignore).
    #[test]
    fn marks_are_the_searches_they_replace() {
        let alphabet: &[u8] = b"@:/.aZ9f- ";
        let slow = |b: &[u8]| Marks {
            at: b.contains(&b'@'),
            scheme: (0..b.len()).any(|i| b[i] == b':' && b[i + 1..].starts_with(b"//")),
            domain_dot: (1..b.len().saturating_sub(1)).any(|i| {
                b[i] == b'.' && b[i - 1].is_ascii_alphanumeric() && b[i + 1].is_ascii_alphabetic()
            }),
            hex_colons: (0..b.len())
                .filter(|&i| b[i] == b':' && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit))
                .count() as u32,
        };
        let mut s = Vec::new();
        let mut checked = 0;
        for n in 0..=4u32 {
            for mut k in 0..alphabet.len().pow(n) {
                s.clear();
                for _ in 0..n {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                assert_eq!(Marks::of(&s), slow(&s), "{:?}", String::from_utf8_lossy(&s));
                checked += 1;
            }
        }
        assert!(checked > 10_000);
        let m = Marks::of("see https://x.org, a@b.es, fe80::1:2".as_bytes());
        assert!(m.at && m.scheme && m.domain_dot && m.hex_colons == 2);
    }

    /// `dot_before_url_part` and the IPv6 pre-check read the case-insensitive classes of the
    /// `url` and `ipv6` patterns as ASCII plus the two non-ASCII chars that fold to ASCII letters.
    #[test]
    fn case_insensitive_classes_fold_as_the_pre_checks_assume() {
        let letter = Regex::new(r"(?i)^[a-z]$").unwrap();
        let hex = Regex::new(r"(?i)^[0-9a-f]$").unwrap();
        let mut folding = Vec::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            if c.is_ascii() {
                continue;
            }
            assert!(!hex.is_match(&s), "{c:?}");
            if letter.is_match(&s) {
                folding.push(c);
            }
        }
        assert_eq!(folding, ['\u{17F}', '\u{212A}']);
        assert!(Regex::new(r"(?i)^s$").unwrap().is_match("\u{17F}"));
        assert!(Regex::new(r"(?i)^k$").unwrap().is_match("\u{212A}"));
    }

    #[test]
    fn url_pre_check_sees_every_url() {
        let p = Patterns::new();
        for t in [
            "see example.org today",
            "WWW.EXAMPLE.COM",
            "www.1example",
            "mail me at x@y.de or visit uni-koeln.de/pfad",
            "host.\u{212A}\u{212A}",
            "a.u\u{17F}",
            "foo.community",
            "ftp://files",
        ] {
            assert!(
                !p.url.is_match(t) || t.contains("://") || dot_before_url_part(t),
                "{t}"
            );
        }
        assert!(!dot_before_url_part("Pt. stable. Dr.Smith e.g. 3.5 mg"));
    }

    /// Runs of digit groups joined by short separators: the reference definition of what
    /// `scan_chain` matches.
    const CHAIN: &str = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?|(?:\+?\(|\+|(?-u:\b))[0-9]+(?:(?:[ ]?[./\-:][ ]?|[ ]?\)[ ]?\(?|[ ]\(|[ ])[0-9]+)*\)?";

    /// `scan_chain` must match what the reference `chain` pattern matches, at digit starts.
    #[test]
    fn scan_chain_agrees_with_the_chain_pattern() {
        let p = Patterns::new();
        let chain = Regex::new(CHAIN).unwrap();
        let pieces = [
            "1", "23", "456", "2021", " ", ".", "/", "-", ":", "(", ")", " (", ") ", " - ", "a",
            "+", "x", "T", ", ", "  ",
        ];
        // every combination of up to 5 pieces, deterministic
        let mut texts = Vec::new();
        let k = pieces.len();
        for a in 0..k {
            for b in 0..k {
                for c in 0..k {
                    texts.push(format!(
                        "{}{}{}4{}",
                        pieces[a],
                        pieces[b],
                        pieces[c],
                        pieces[(a + b) % k]
                    ));
                    texts.push(format!(
                        "9{}{}{}{}7",
                        pieces[a],
                        pieces[b],
                        pieces[c],
                        pieces[(b + c) % k]
                    ));
                }
            }
        }
        texts.push("2021-03-14T08:30:00Z tail".to_string());
        texts.push("+46 (0)8 928 571 38".to_string());
        for t in &texts {
            let bytes = t.as_bytes();
            for st in 0..bytes.len() {
                if !bytes[st].is_ascii_digit() || st > 0 && bytes[st - 1].is_ascii_alphanumeric() {
                    continue;
                }
                let ours = scan_chain(&p, t, st);
                let reference = chain
                    .find_at(t, st)
                    .filter(|m| m.start() == st)
                    .map(|m| (m.start(), m.end()));
                assert_eq!(ours, reference, "text {t:?} at {st}");
            }
        }
    }
}
