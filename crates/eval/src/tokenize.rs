//! Tokens as score.py defines them: maximal runs matching Python's `[^\W_]+`, with offsets in
//! Unicode code points.

use crate::alnum_exceptions::NOT_TOKEN_CHARS;

/// One token: a maximal run of token characters (see [`is_token_char`]).
///
/// `start`/`end` are code-point offsets (Python `str` indices, end exclusive), the unit the JSONL
/// offsets use; `byte_start`/`byte_end` index the same text as a Rust `&str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Code-point offset of the first character.
    pub start: usize,
    /// Code-point offset just past the last character.
    pub end: usize,
    /// Byte offset of the first character.
    pub byte_start: usize,
    /// Byte offset just past the last character.
    pub byte_end: usize,
}

/// True for a character that Python's `re` matches with `[^\W_]`, i.e. `str.isalnum()`: General
/// Category L* (letters) or N* (numbers).
///
/// Built on [`char::is_alphanumeric`], minus the code points that Rust counts as alphabetic but
/// Python does not: `Other_Alphabetic` combining marks (such as Devanagari vowel signs or
/// U+0345) and symbols (circled letters such as Ⓐ). Code points assigned after Unicode 16 follow
/// `is_alphanumeric`.
#[inline]
pub fn is_token_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_alphanumeric() && !is_excepted(c)
}

fn is_excepted(c: char) -> bool {
    match NOT_TOKEN_CHARS.first() {
        Some(&(lo, _)) if c < lo => false,
        _ => NOT_TOKEN_CHARS
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok(),
    }
}

/// The tokens of `text`, in order.
///
/// ```
/// let toks = phiguard_eval::tokens("Dr. Müller_2 (ß)");
/// let words: Vec<_> = toks.iter().map(|t| &"Dr. Müller_2 (ß)"[t.byte_start..t.byte_end]).collect();
/// assert_eq!(words, ["Dr", "Müller", "2", "ß"]);
/// assert_eq!((toks[1].start, toks[1].end), (4, 10)); // code points, not bytes
/// ```
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    tokens_into(text, &mut out);
    out
}

/// Like [`tokens`], reusing `out` (cleared first) to avoid an allocation per document.
pub fn tokens_into(text: &str, out: &mut Vec<Token>) {
    out.clear();
    let mut open: Option<(usize, usize)> = None;
    let mut ci = 0usize;
    for (bi, c) in text.char_indices() {
        if is_token_char(c) {
            if open.is_none() {
                open = Some((ci, bi));
            }
        } else if let Some((start, byte_start)) = open.take() {
            out.push(Token {
                start,
                end: ci,
                byte_start,
                byte_end: bi,
            });
        }
        ci += 1;
    }
    if let Some((start, byte_start)) = open {
        out.push(Token {
            start,
            end: ci,
            byte_start,
            byte_end: text.len(),
        });
    }
}

/// Counts the tokens of `text` without storing them (a cheap pass used as a benchmark baseline).
pub fn count_tokens(text: &str) -> usize {
    let mut n = 0;
    let mut inside = false;
    for c in text.chars() {
        let t = is_token_char(c);
        if t && !inside {
            n += 1;
        }
        inside = t;
    }
    n
}

/// Indices of the tokens overlapping the code-point range `[start, end)`, exactly as score.py's
/// `overlapping()`: from the first token whose end is past `start` while tokens start before
/// `end`. (An empty or reversed range still hits a token that strictly contains `start`.)
pub fn overlapping(tokens: &[Token], start: i64, end: i64) -> std::ops::Range<usize> {
    let first = tokens.partition_point(|t| to_i64(t.end) <= start);
    let mut last = first;
    while last < tokens.len() && to_i64(tokens[last].start) < end {
        last += 1;
    }
    first..last
}

fn to_i64(x: usize) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        tokens(text)
            .iter()
            .map(|t| &text[t.byte_start..t.byte_end])
            .collect()
    }

    #[test]
    fn ascii_runs_split_on_punctuation_and_underscore() {
        assert_eq!(
            words("MRN: 123-45_abc, J.Smith's"),
            ["MRN", "123", "45", "abc", "J", "Smith", "s"]
        );
        assert_eq!(words("abc123def"), ["abc123def"]);
        assert!(words("").is_empty());
        assert!(words(" _-.,;:!?()[]{}\n\t").is_empty());
        assert_eq!(words("x"), ["x"]);
    }

    #[test]
    fn offsets_are_code_points() {
        let text = "Año 東京 😀 x";
        let t = tokens(text);
        let spans: Vec<_> = t.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, [(0, 3), (4, 6), (9, 10)]);
        assert_eq!(&text[t[1].byte_start..t[1].byte_end], "東京");
    }

    #[test]
    fn latin_letters_with_diacritics_stay_whole_when_precomposed() {
        assert_eq!(
            words("José Müller Straße Ñandú Łódź"),
            ["José", "Müller", "Straße", "Ñandú", "Łódź"]
        );
    }

    #[test]
    fn combining_marks_split_tokens_as_in_python() {
        // NFD "é" = e + U+0301 (Mn, not alphabetic for either language).
        assert_eq!(words("Jose\u{301} Pe\u{301}rez"), ["Jose", "Pe", "rez"]);
        // U+0345 combining ypogegrammeni is Other_Alphabetic: Rust alphanumeric, Python not.
        assert!('\u{345}'.is_alphanumeric());
        assert!(!is_token_char('\u{345}'));
        // Devanagari: the vowel sign U+093F (Mc) is Other_Alphabetic; Python splits on it.
        assert_eq!(words("हिंदी"), ["ह", "द"]);
    }

    #[test]
    fn symbols_and_numbers_follow_python() {
        assert!(!is_token_char('Ⓐ')); // So, Other_Alphabetic
        assert!(is_token_char('²')); // No
        assert!(is_token_char('Ⅻ')); // Nl
        assert!(is_token_char('ª')); // Lo
        assert!(is_token_char('٣')); // Arabic-Indic digit, Nd
        assert!(!is_token_char('_'));
        assert!(!is_token_char('€'));
        assert!(!is_token_char('\u{a0}'));
        assert_eq!(words("m²·Ⅻ½"), ["m²", "Ⅻ½"]);
    }

    #[test]
    fn exception_table_is_sorted_disjoint_and_alphanumeric() {
        for w in NOT_TOKEN_CHARS.windows(2) {
            assert!(w[0].1 < w[1].0, "{:?} {:?}", w[0], w[1]);
        }
        for &(lo, hi) in NOT_TOKEN_CHARS {
            assert!(lo <= hi);
            for c in lo..=hi {
                assert!(c.is_alphanumeric(), "U+{:04X}", c as u32);
            }
        }
    }

    /// Re-derives the exception table: Python's rule is General_Category L* or N*, which the
    /// regex crate exposes as `[\p{L}\p{N}]` (Unicode 16). Code points the regex crate does not
    /// know yet (assigned after Unicode 16) are left to `is_alphanumeric`.
    #[test]
    fn exceptions_are_exactly_the_non_letter_alphabetics() {
        let letter_or_number = regex::Regex::new(r"^[\p{L}\p{N}]$").unwrap();
        let unassigned = regex::Regex::new(r"^\p{Cn}$").unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.encode_utf8(&mut buf);
            if unassigned.is_match(s) {
                continue;
            }
            assert_eq!(
                is_token_char(c),
                letter_or_number.is_match(s),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn count_tokens_matches_tokens() {
        for text in [
            "",
            "a",
            "a b",
            " a_b-c ",
            "Ñandú 東京 😀 x",
            "हिंदी",
            "__x__",
        ] {
            assert_eq!(count_tokens(text), tokens(text).len(), "{text}");
        }
    }

    #[test]
    fn overlapping_follows_score_py() {
        // tokens: [0,3) [4,7) [8,9)
        let t = tokens("abc def g");
        assert_eq!(overlapping(&t, 0, 3), 0..1);
        assert_eq!(overlapping(&t, 2, 5), 0..2);
        assert_eq!(overlapping(&t, 3, 4), 1..1); // only the space
        assert_eq!(overlapping(&t, 3, 5), 1..2);
        assert_eq!(overlapping(&t, 1, 1), 0..1); // empty span inside a token
        assert_eq!(overlapping(&t, 3, 3), 1..1); // empty span at a token end
        assert_eq!(overlapping(&t, 5, 2), 1..1); // reversed range: token 1 starts at 4 >= 2
        assert_eq!(overlapping(&t, 5, 5), 1..2);
        assert_eq!(overlapping(&t, -5, 100), 0..3);
        assert_eq!(overlapping(&t, 9, 20), 3..3);
        assert_eq!(overlapping(&[], 0, 5), 0..0);
    }
}
