//! A one-pass tokenizer: words, numbers, mixed alphanumerics and single punctuation marks, with
//! byte offsets and the whitespace that precedes each token.

/// What a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Letters only.
    Word,
    /// ASCII digits only.
    Num,
    /// Letters and digits mixed.
    Alnum,
    /// One character that is neither a letter, a digit nor whitespace.
    Punct,
}

/// One token. Offsets are bytes into the text.
#[derive(Debug, Clone, Copy)]
pub struct Tok {
    pub start: u32,
    pub end: u32,
    pub kind: Kind,
    /// Whitespace directly before this token.
    pub space_before: bool,
    /// A line break in the whitespace before this token.
    pub newline_before: bool,
    /// First character is uppercase.
    pub cap: bool,
    /// Every letter is uppercase (and there are at least two letters).
    pub upper: bool,
    /// The punctuation character, for `Punct` tokens.
    pub ch: char,
}

impl Tok {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.ch == c
    }
    pub fn has_digit(&self) -> bool {
        matches!(self.kind, Kind::Num | Kind::Alnum)
    }
}

/// Splits `text` into tokens.
pub fn tokenize(text: &str, out: &mut Vec<Tok>) {
    out.clear();
    let bytes = text.as_bytes();
    let mut i = 0usize;
    let mut space = false;
    let mut newline = false;
    let n = bytes.len();
    while i < n {
        let b = bytes[i];
        if b < 0x80 {
            if b.is_ascii_whitespace() {
                space = true;
                if b == b'\n' || b == b'\r' {
                    newline = true;
                }
                i += 1;
                continue;
            }
            if b.is_ascii_alphanumeric() {
                i = word(text, i, space, newline, out);
                space = false;
                newline = false;
                continue;
            }
            out.push(Tok {
                start: i as u32,
                end: i as u32 + 1,
                kind: Kind::Punct,
                space_before: space,
                newline_before: newline,
                cap: false,
                upper: false,
                ch: b as char,
            });
            space = false;
            newline = false;
            i += 1;
        } else {
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            if c.is_whitespace() {
                space = true;
                if c == '\u{2028}' || c == '\u{2029}' || c == '\u{85}' {
                    newline = true;
                }
                i += c.len_utf8();
            } else if c.is_alphanumeric() {
                i = word(text, i, space, newline, out);
                space = false;
                newline = false;
            } else {
                out.push(Tok {
                    start: i as u32,
                    end: (i + c.len_utf8()) as u32,
                    kind: Kind::Punct,
                    space_before: space,
                    newline_before: newline,
                    cap: false,
                    upper: false,
                    ch: c,
                });
                space = false;
                newline = false;
                i += c.len_utf8();
            }
        }
    }
}

fn word(text: &str, start: usize, space: bool, newline: bool, out: &mut Vec<Tok>) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut letters = 0u32;
    let mut digits = 0u32;
    let mut uppers = 0u32;
    let mut first_upper = false;
    let mut first = true;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b.is_ascii_digit() {
                digits += 1;
            } else if b.is_ascii_alphabetic() {
                letters += 1;
                if b.is_ascii_uppercase() {
                    uppers += 1;
                    if first {
                        first_upper = true;
                    }
                }
            } else {
                break;
            }
            i += 1;
        } else {
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            if c.is_alphabetic() {
                letters += 1;
                if c.is_uppercase() {
                    uppers += 1;
                    if first {
                        first_upper = true;
                    }
                }
            } else if c.is_numeric() || c.is_alphanumeric() {
                // combining marks and other alphanumerics: count as letters of the word
                letters += 1;
            } else {
                break;
            }
            i += c.len_utf8();
        }
        first = false;
    }
    let kind = match (letters, digits) {
        (0, _) => Kind::Num,
        (_, 0) => Kind::Word,
        _ => Kind::Alnum,
    };
    out.push(Tok {
        start: start as u32,
        end: i as u32,
        kind,
        space_before: space,
        newline_before: newline,
        cap: first_upper,
        upper: letters >= 2 && uppers == letters,
        ch: '\0',
    });
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(String, Kind)> {
        let mut v = Vec::new();
        tokenize(s, &mut v);
        v.iter()
            .map(|t| (s[t.range()].to_string(), t.kind))
            .collect()
    }

    #[test]
    fn splits_words_numbers_and_punctuation() {
        let t = toks("Dr. Müller, MRN A12-3 on 3/14");
        let words: Vec<&str> = t.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            words,
            [
                "Dr", ".", "Müller", ",", "MRN", "A12", "-", "3", "on", "3", "/", "14"
            ]
        );
        assert_eq!(t[5].1, Kind::Alnum);
        assert_eq!(t[7].1, Kind::Num);
    }

    #[test]
    fn flags_case_and_newlines() {
        let mut v = Vec::new();
        let s = "HTN\nSánchez";
        tokenize(s, &mut v);
        assert!(v[0].upper && v[0].cap);
        assert!(v[1].newline_before && v[1].cap && !v[1].upper);
    }
}
