//! The encoding characters a message declares in MSH-1 and MSH-2 (or FHS/BHS), and the escape
//! sequences built on them.

use std::borrow::Cow;

/// The delimiters of one message. Any character may be chosen, as long as the five are distinct
/// and none is a letter, a digit, CR or LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    /// MSH-1.
    pub field: u8,
    /// MSH-2, first character.
    pub component: u8,
    /// MSH-2, second character.
    pub repetition: Option<u8>,
    /// MSH-2, third character.
    pub escape: Option<u8>,
    /// MSH-2, fourth character.
    pub subcomponent: Option<u8>,
    /// MSH-2, fifth character (v2.7+ truncation character), when declared.
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: Some(b'~'),
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
            truncation: None,
        }
    }
}

impl Delimiters {
    /// Reads the delimiters from a header segment (`MSH`, `FHS`, `BHS`): the byte after the
    /// segment name is the field separator, the bytes up to the next field separator (at most
    /// five) the encoding characters. The error says what is wrong, never what the bytes are.
    pub fn from_header(segment: &[u8]) -> Result<Delimiters, &'static str> {
        let Some(&field) = segment.get(3) else {
            return Err("header segment has no field separator");
        };
        if !usable(field) {
            return Err("field separator is a letter, digit, space or line break");
        }
        let rest = &segment[4..];
        let end = memchr::memchr(field, rest).unwrap_or(rest.len());
        let enc = &rest[..end];
        if enc.is_empty() {
            return Err("encoding characters (MSH-2) are missing");
        }
        if enc.len() > 5 {
            return Err("encoding characters (MSH-2) are longer than five characters");
        }
        for (i, &c) in enc.iter().enumerate() {
            if !usable(c) {
                return Err("an encoding character is a letter, digit, space or line break");
            }
            if c == field || enc[..i].contains(&c) {
                return Err("encoding characters are not distinct");
            }
        }
        Ok(Delimiters {
            field,
            component: enc[0],
            repetition: enc.get(1).copied(),
            escape: enc.get(2).copied(),
            subcomponent: enc.get(3).copied(),
            truncation: enc.get(4).copied(),
        })
    }

    fn is_delim(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || Some(b) == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
            || Some(b) == self.truncation
    }

    /// The leaf value as it is when it needs no decoding: ASCII with no escape character.
    #[inline]
    pub fn plain<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        // Bytes from 0x80 up are never plain, so 0x80 stands for "no escape character".
        let esc = self.escape.unwrap_or(0x80);
        raw.iter().all(|&b| b < 0x80 && b != esc).then_some(raw)
    }

    /// Decodes the escape sequences of one leaf value for detection: `\F\ \S\ \T\ \R\ \E\ \P\`
    /// to the delimiters, `\Xhh..\` to its bytes, `\.br\` (and `\.sp\`) to a line break;
    /// formatting and character-set commands (`\H\ \N\ \.in..\ \Cxxyy\ ...`) are dropped. Bytes
    /// that are not UTF-8 are replaced by U+FFFD.
    pub fn decode<'a>(&self, raw: &'a [u8]) -> Cow<'a, str> {
        let esc = match self.escape {
            Some(e) if raw.contains(&e) => e,
            _ => return lossy(raw),
        };
        let mut out: Vec<u8> = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b != esc {
                out.push(b);
                i += 1;
                continue;
            }
            let Some(len) = raw[i + 1..].iter().position(|&c| c == esc) else {
                // An escape character with no closing one: kept as written.
                out.extend_from_slice(&raw[i..]);
                break;
            };
            let body = &raw[i + 1..i + 1 + len];
            i += len + 2;
            match body {
                b"F" => out.push(self.field),
                b"S" => out.push(self.component),
                b"R" => out.extend(self.repetition),
                b"T" => out.extend(self.subcomponent),
                b"E" => out.push(esc),
                b"P" => out.extend(self.truncation),
                b".br" | b".sp" => out.push(b'\n'),
                [b'X', hex @ ..] => {
                    let mut k = 0;
                    while k + 1 < hex.len() {
                        if let (Some(h), Some(l)) = (hexval(hex[k]), hexval(hex[k + 1])) {
                            out.push(h << 4 | l);
                        }
                        k += 2;
                    }
                }
                _ => {}
            }
        }
        match String::from_utf8(out) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// Writes `text` escaped so that it is one leaf value again: delimiters become `\F\`-style
    /// escapes, CR LF `\X0D\\X0A\`, LF `\.br\`, a lone CR `\X0D\`.
    pub fn encode(&self, text: &str, out: &mut Vec<u8>) {
        let b = text.as_bytes();
        let esc = self.escape.unwrap_or(b'\\');
        let put = |out: &mut Vec<u8>, body: &[u8]| {
            out.push(esc);
            out.extend_from_slice(body);
            out.push(esc);
        };
        let mut i = 0;
        while i < b.len() {
            // Runs of plain bytes are copied whole (most values have nothing to escape). Letters
            // and digits are never delimiters, and most replacements are only those.
            let run = b[i..]
                .iter()
                .position(|&c| {
                    !c.is_ascii_alphanumeric() && (c == b'\r' || c == b'\n' || self.is_delim(c))
                })
                .unwrap_or(b.len() - i);
            out.extend_from_slice(&b[i..i + run]);
            i += run;
            let Some(&c) = b.get(i) else { break };
            i += 1;
            if c == b'\r' {
                if b.get(i) == Some(&b'\n') {
                    i += 1;
                    put(out, b"X0D");
                    put(out, b"X0A");
                } else {
                    put(out, b"X0D");
                }
            } else if c == b'\n' {
                put(out, b".br");
            } else if c == self.field {
                put(out, b"F");
            } else if c == self.component {
                put(out, b"S");
            } else if Some(c) == self.repetition {
                put(out, b"R");
            } else if Some(c) == self.subcomponent {
                put(out, b"T");
            } else if Some(c) == self.escape {
                put(out, b"E");
            } else {
                put(out, b"P");
            }
        }
    }
}

/// `raw` as text, borrowed when it is UTF-8 (the common case: checked first, fast for ASCII),
/// with U+FFFD for bytes that are not.
fn lossy(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

fn usable(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || c == b'\r' || c == b'\n' || c == b' ')
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_standard_and_odd_delimiters() {
        let d = Delimiters::from_header(b"MSH|^~\\&|A").unwrap();
        assert_eq!(d, Delimiters::default());
        let d = Delimiters::from_header(b"MSH^~|\\&^SENDING").unwrap();
        assert_eq!(
            (d.field, d.component, d.repetition, d.subcomponent),
            (b'^', b'~', Some(b'|'), Some(b'&'))
        );
        let d = Delimiters::from_header(b"MSH|^~\\&#|").unwrap();
        assert_eq!(d.truncation, Some(b'#'));
        assert!(Delimiters::from_header(b"MSH").is_err());
        assert!(Delimiters::from_header(b"MSH||").is_err());
        assert!(Delimiters::from_header(b"MSH|^^\\&|").is_err());
        assert!(Delimiters::from_header(b"MSHA^~\\&").is_err());
    }

    #[test]
    fn escapes_round_trip() {
        let d = Delimiters::default();
        let raw =
            b"A\\T\\E \\F\\ \\S\\ \\R\\ \\E\\ line\\.br\\next\\X0D\\\\X0A\\end \\H\\bold\\N\\";
        let text = d.decode(raw);
        assert_eq!(text, "A&E | ^ ~ \\ line\nnext\r\nend bold");
        let mut out = Vec::new();
        d.encode(&text, &mut out);
        assert_eq!(d.decode(&out), text);
        assert!(!out.contains(&b'|') && !out.contains(&b'^') && !out.contains(&b'&'));
    }
}
