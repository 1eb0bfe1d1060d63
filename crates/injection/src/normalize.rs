//! Text normalisation before signals and features: Unicode NFKC (full-width and other
//! compatibility forms fold to their plain letters), invisible format characters removed
//! (zero-width spaces and joiners, bidi controls, soft hyphens, BOM), lower case, Cyrillic and
//! Greek look-alikes folded inside otherwise Latin words, light de-leetspeak inside words that
//! are made only of letters and leet digits (`1gn0re` → `ignore`, but `covid-19` and `b12` are
//! left alone), letters spelled out one by one joined (`s a y t h a t` → `saythat`), and
//! whitespace runs collapsed to one space.

use unicode_normalization::UnicodeNormalization;

/// True for characters that render as nothing and are used to split trigger words.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// A Latin letter for a Cyrillic or Greek look-alike (lower case), if any.
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'е' | 'ё' => 'e',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'с' => 'c',
        'х' | 'χ' => 'x',
        'у' => 'y',
        'і' | 'ι' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'т' | 'τ' => 't',
        'н' => 'h',
        'в' => 'b',
        'ν' => 'v',
        'α' => 'a',
        'ε' => 'e',
        _ => return None,
    })
}

/// The letter a leetspeak character stands for, if any.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        _ => return None,
    })
}

/// Normalises `text` for screening (see the module docs).
pub fn normalize(text: &str) -> String {
    normalize_with(text, true)
}

/// [`normalize`]; `fast` takes the shortcuts for ASCII text and for words with nothing to
/// fold (the tests check that both ways give the same text).
fn normalize_with(text: &str, fast: bool) -> String {
    let flat = if fast && text.is_ascii() {
        flatten_ascii(text)
    } else {
        flatten(text)
    };
    fold_words(&flat, fast)
}

/// NFKC, invisible characters removed, whitespace runs collapsed to one space, lower case.
fn flatten(text: &str) -> String {
    let mut flat = String::with_capacity(text.len());
    let mut space = true;
    for c in text.nfkc().filter(|c| !invisible(*c)) {
        if c.is_whitespace() {
            if !space {
                flat.push(' ');
                space = true;
            }
            continue;
        }
        space = false;
        for l in c.to_lowercase() {
            flat.push(l);
        }
    }
    if flat.ends_with(' ') {
        flat.pop();
    }
    flat
}

/// [`flatten`] for ASCII text: already NFKC, nothing invisible, and its whitespace is what
/// `char::is_whitespace` says of ASCII (tab, line feed, vertical tab, form feed, carriage
/// return, space).
fn flatten_ascii(text: &str) -> String {
    let mut flat = String::with_capacity(text.len());
    let mut space = true;
    for b in text.bytes() {
        if matches!(b, b'\t'..=b'\r' | b' ') {
            if !space {
                flat.push(' ');
                space = true;
            }
            continue;
        }
        space = false;
        flat.push(char::from(b.to_ascii_lowercase()));
    }
    if flat.ends_with(' ') {
        flat.pop();
    }
    flat
}

/// Joins letters spelled out one by one and folds each word of flattened text.
fn fold_words(flat: &str, fast: bool) -> String {
    let mut out = String::with_capacity(flat.len());
    let words: Vec<&str> = flat.split(' ').collect();
    let single = |w: &str| {
        let mut c = w.chars();
        matches!((c.next(), c.next()), (Some(a), None) if a.is_alphabetic())
    };
    let mut i = 0;
    while i < words.len() {
        if i > 0 {
            out.push(' ');
        }
        // Letters spelled out one by one ("s a y t h a t"): five or more join into one word.
        let run = words[i..].iter().take_while(|w| single(w)).count();
        if run >= 5 {
            for w in &words[i..i + run] {
                out.push_str(w);
            }
            i += run;
            continue;
        }
        if fast && nothing_to_fold(words[i]) {
            out.push_str(words[i]);
        } else {
            fold_word(words[i], &mut out);
        }
        i += 1;
    }
    out
}

/// True when [`fold_word`] would leave `word` as it is: ASCII (so no look-alikes) with no
/// leetspeak character.
fn nothing_to_fold(word: &str) -> bool {
    word.bytes()
        .all(|b| b.is_ascii() && leet(char::from(b)).is_none())
}

/// Folds look-alikes and leetspeak in one whitespace-separated word.
fn fold_word(word: &str, out: &mut String) {
    // Trim surrounding punctuation (kept as is) so `"1gn0re,"` still folds.
    let core_start = word
        .char_indices()
        .find(|(_, c)| c.is_alphanumeric() || leet(*c).is_some())
        .map_or(word.len(), |(i, _)| i);
    let core_end = word
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_alphanumeric())
        .map_or(core_start, |(i, c)| i + c.len_utf8())
        .max(core_start);
    let (pre, core, post) = (
        &word[..core_start],
        &word[core_start..core_end],
        &word[core_end..],
    );
    let latin = core.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let glyphs = core.chars().filter(|c| homoglyph(*c).is_some()).count();
    let leets = core.chars().filter(|c| leet(*c).is_some()).count();
    let letters = core.chars().filter(|c| c.is_alphabetic()).count();
    let only_letters_and_leet = core.chars().all(|c| c.is_alphabetic() || leet(c).is_some());
    // Look-alikes fold only inside words that are mostly Latin (real Russian or Greek stays).
    let fold_glyphs = glyphs > 0 && latin > 0 && latin >= glyphs;
    let fold_leet = leets > 0 && only_letters_and_leet && letters >= 2 && letters > leets;
    out.push_str(pre);
    if !fold_glyphs && !fold_leet {
        out.push_str(core);
    } else {
        for c in core.chars() {
            let c = if fold_glyphs {
                homoglyph(c).unwrap_or(c)
            } else {
                c
            };
            let c = if fold_leet { leet(c).unwrap_or(c) } else { c };
            out.push(c);
        }
    }
    out.push_str(post);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn folds_case_width_invisibles_and_whitespace() {
        assert_eq!(
            normalize("  ＩＧＮＯＲＥ\u{200B} previous\n\n\tINSTRUCTIONS  "),
            "ignore previous instructions"
        );
        assert_eq!(normalize("ig\u{200D}nore al\u{00AD}l"), "ignore all");
    }

    #[test]
    fn light_deleet_only_inside_words() {
        assert_eq!(
            normalize("1gn0re pr3v10us instructions"),
            "ignore previous instructions"
        );
        // Numbers, doses and codes are left alone.
        assert_eq!(
            normalize("Take 500 mg at 08:00, covid-19, b12, ICD I10"),
            "take 500 mg at 08:00, covid-19, b12, icd i10"
        );
    }

    #[test]
    fn spelled_out_letters_join() {
        assert_eq!(normalize("please S a y t h a t now"), "please saythat now");
        // Short runs (initials, list labels) stay.
        assert_eq!(normalize("options a b c"), "options a b c");
    }

    proptest::proptest! {
        /// The shortcuts change nothing: ASCII text with every kind of whitespace, leetspeak
        /// and punctuation, and text with look-alikes, invisibles and full-width letters.
        #[test]
        fn shortcuts_give_the_same_text(
            ascii in "([a-zA-Z0-9!|@$+ \t\n\r\u{0B}\u{0C},.:;'-]|ign0re|4ll|S a y t h a t){0,60}",
            other in "([a-zA-Z0-9 \t\n!$]|ign0re|\u{043E}|\u{0435}|\u{200B}|Ｉ|\u{00A0}|\u{85}|é|ß){0,40}"
        ) {
            proptest::prop_assert_eq!(normalize_with(&ascii, true), normalize_with(&ascii, false));
            proptest::prop_assert_eq!(normalize_with(&other, true), normalize_with(&other, false));
        }
    }

    #[test]
    fn homoglyphs_fold_only_in_latin_words() {
        // Cyrillic 'о' and 'е' inside a Latin word.
        assert_eq!(normalize("ign\u{043E}r\u{0435}"), "ignore");
        // A Russian word stays Russian.
        assert_eq!(normalize("Привет"), "привет");
    }
}
