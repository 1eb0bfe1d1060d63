//! A plain parser: every segment of the input with its fields, for callers that want to read
//! HL7 (and for tests checking that the output is still HL7 with the same structure).

use std::io::Read;

use crate::Hl7Error;
use crate::delims::Delimiters;
use crate::reader::{Ending, SegmentReader};
use crate::selector::is_header;

/// One segment. `fields[n]` is field `n` as the standard numbers it (for MSH, FHS and BHS,
/// `fields[1]` is the field separator and `fields[2]` the encoding characters); `fields[0]` is
/// the segment id. Values are raw (escapes not decoded). `Debug` shows no values.
#[derive(Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: [u8; 3],
    pub fields: Vec<Vec<u8>>,
    pub delimiters: Delimiters,
    pub ending: Ending,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Segment({}, {} fields)",
            String::from_utf8_lossy(&self.id),
            self.fields.len().saturating_sub(1)
        )
    }
}

/// Splits `raw` on `sep` (no split when there is no such delimiter).
pub fn split(raw: &[u8], sep: Option<u8>) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let r = rest?;
        match sep.and_then(|s| find(s, r)) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The first `b` in `r`: a plain loop over the first bytes (most values are short), then a
/// vectorised search.
#[inline]
fn find(b: u8, r: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    // The first bytes eight at a time: a byte equal to `b` is a zero byte of the word XOR `b`,
    // and the test below marks the lowest zero byte of a word exactly.
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let wb = LO * u64::from(b);
    let mut i = 0;
    while i < SHORT {
        let Some(Ok(bytes)) = r.get(i..i + 8).map(<[u8; 8]>::try_from) else {
            break;
        };
        let x = u64::from_le_bytes(bytes) ^ wb;
        let hits = x.wrapping_sub(LO) & !x & HI;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < SHORT {
        // Fewer than eight bytes left.
        return r[i..].iter().position(|&c| c == b).map(|k| i + k);
    }
    memchr::memchr(b, &r[SHORT..]).map(|k| k + SHORT)
}

impl Segment {
    /// Field `n` (raw), if present.
    pub fn field(&self, n: usize) -> Option<&[u8]> {
        self.fields.get(n).map(Vec::as_slice)
    }

    /// Every non-empty leaf of field `n`: `((repetition, component, subcomponent), decoded)`,
    /// 1-based.
    pub fn leaves(&self, n: usize) -> Vec<((u16, u16, u16), String)> {
        let d = &self.delimiters;
        let mut out = Vec::new();
        let Some(raw) = self.field(n) else {
            return out;
        };
        if is_header(&self.id) && n <= 2 {
            return out;
        }
        for (r, rep) in split(raw, d.repetition).enumerate() {
            for (c, comp) in split(rep, Some(d.component)).enumerate() {
                for (s, sub) in split(comp, d.subcomponent).enumerate() {
                    if !sub.is_empty() {
                        let at = (r as u16 + 1, c as u16 + 1, s as u16 + 1);
                        out.push((at, d.decode(sub).into_owned()));
                    }
                }
            }
        }
        out
    }
}

/// Checks a segment's id and separator; returns the id.
pub(crate) fn segment_id(
    seg: &[u8],
    delims: Option<&Delimiters>,
    line: u64,
    offset: u64,
) -> Result<[u8; 3], Hl7Error> {
    let bad = |message| Hl7Error::Syntax {
        line,
        offset,
        message,
    };
    let id: [u8; 3] = match seg.get(..3).map(<[u8; 3]>::try_from) {
        Some(Ok(id))
            if id
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) =>
        {
            id
        }
        _ => return Err(bad("segment id is not three upper-case letters or digits")),
    };
    if is_header(&id) || seg.len() == 3 {
        return Ok(id);
    }
    match delims {
        Some(d) if seg[3] == d.field => Ok(id),
        Some(_) => Err(bad("segment id is not followed by the field separator")),
        None => Err(bad("segment before the first MSH, FHS or BHS")),
    }
}

/// True for a line holding only spaces or tabs (kept as it is, not a segment).
pub(crate) fn is_blank(seg: &[u8]) -> bool {
    seg.iter().all(|b| matches!(b, b' ' | b'\t'))
}

/// Parses every segment of `input` (blank lines skipped).
pub fn parse_segments<R: Read>(input: R) -> Result<Vec<Segment>, Hl7Error> {
    let mut reader = SegmentReader::new(input);
    let mut buf = Vec::new();
    let mut delims: Option<Delimiters> = None;
    let mut out = Vec::new();
    while let Some(ending) = reader.next_segment(&mut buf)? {
        if is_blank(&buf) {
            continue;
        }
        let id = segment_id(&buf, delims.as_ref(), reader.line, reader.offset)?;
        if is_header(&id) {
            delims = Some(
                Delimiters::from_header(&buf).map_err(|message| Hl7Error::Syntax {
                    line: reader.line,
                    offset: reader.offset,
                    message,
                })?,
            );
        }
        let Some(d) = delims else {
            return Err(Hl7Error::Syntax {
                line: reader.line,
                offset: reader.offset,
                message: "segment before the first MSH, FHS or BHS",
            });
        };
        let mut fields: Vec<Vec<u8>> = split(&buf, Some(d.field)).map(<[u8]>::to_vec).collect();
        if is_header(&id) {
            fields.insert(1, vec![d.field]);
        }
        out.push(Segment {
            id,
            fields,
            delimiters: d,
            ending,
        });
    }
    if out.is_empty() {
        return Err(Hl7Error::Empty);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `len` bytes drawn from `alphabet` by a xorshift generator in `seed` (for searches checked
    /// against a plain loop).
    pub(crate) fn random_bytes(seed: &mut u64, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                alphabet[(*seed % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn find_agrees_with_a_plain_search_at_every_length() {
        let alphabet = [b'a', b'|', 0x80, 0xff, 0x00, b'^'];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..=80 {
            for _ in 0..100 {
                let raw = random_bytes(&mut seed, len, &alphabet);
                for b in [b'|', 0x80, 0x00] {
                    assert_eq!(find(b, &raw), raw.iter().position(|&c| c == b), "{raw:?}");
                }
            }
        }
    }
}
