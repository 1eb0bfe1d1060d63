//! The message dictionary: identifying values found in a message's typed fields, looked up
//! again in kept values and inside free text. One arena and two hash indexes, cleared per
//! message, so a message costs no allocation once the buffers have grown.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};
use std::collections::hash_map::Entry as Slot;

use crate::types::Role;

struct Entry {
    start: usize,
    end: usize,
    role: Role,
    /// The next entry with the same first word.
    next: Option<usize>,
    /// The next entry whose exact value has the same hash (a collision: both are kept).
    same: Option<usize>,
}

pub(crate) struct Dict {
    /// The values' bytes (each one UTF-8), one after the other.
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Hash of the exact value → the latest entry with that hash.
    exact: FxHashMap<u64, usize>,
    /// Hash of the lower-cased first word → the latest entry starting with it.
    first: FxHashMap<u64, usize>,
    /// A bit set of the values' shapes (length, first and last byte; see `shape_bit`): a value
    /// whose shape bit is clear is not in the dictionary, which most kept values show without
    /// being hashed.
    shapes: Box<[u64; SHAPE_WORDS]>,
}

impl Default for Dict {
    fn default() -> Self {
        Dict {
            arena: Vec::new(),
            entries: Vec::new(),
            exact: FxHashMap::default(),
            first: FxHashMap::default(),
            shapes: Box::new([0; SHAPE_WORDS]),
        }
    }
}

/// 4,096 bits: a message's few dozen values leave about 1% of them set.
const SHAPE_WORDS: usize = 64;

/// The word and bit of `v`'s shape: its length (up to 255), first and last byte, mixed by a
/// multiplication whose top twelve bits pick the bit. `v` is not empty.
fn shape_bit(v: &[u8]) -> (usize, u64) {
    let (first, last) = (v[0], v[v.len() - 1]);
    let key = (v.len().min(255) as u64) << 16 | u64::from(first) << 8 | u64::from(last);
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52;
    ((h >> 6) as usize, 1 << (h & 63))
}

fn lower_word_hash(word: &str) -> u64 {
    if word.is_ascii() {
        return lower_ascii_hash(word.as_bytes());
    }
    let mut h = FxHasher::default();
    for c in word.chars().flat_map(char::to_lowercase) {
        h.write_u32(c as u32);
    }
    h.finish()
}

/// The hash `lower_word_hash` gives the first word of `v` (a run of letters and digits, as
/// `is_word` reads them), or `None` when `v` has none. When the word and what precedes it are
/// ASCII, in one pass over those bytes; otherwise by decoding `v`.
fn first_word_hash(v: &[u8]) -> Option<u64> {
    let start = v
        .iter()
        .position(|b| b.is_ascii_alphanumeric() || *b >= 0x80)?;
    if v[start] < 0x80 {
        let len = v[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(v.len() - start);
        let end = start + len;
        // A non-ASCII letter may continue the word: decode then.
        if v.get(end).is_none_or(|&b| b < 0x80) {
            return Some(lower_ascii_hash(&v[start..end]));
        }
    }
    String::from_utf8_lossy(v)
        .split(|c: char| !is_word(c))
        .find(|w| !w.is_empty())
        .map(lower_word_hash)
}

/// The same hash as `lower_word_hash` for an ASCII word, without decoding characters.
fn lower_ascii_hash(word: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    for b in word {
        h.write_u32(u32::from(b.to_ascii_lowercase()));
    }
    h.finish()
}

/// The hash of a value's exact bytes.
#[cfg(not(test))]
fn value_hash(v: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(v);
    h.finish()
}

/// In unit tests, the length alone: values of one length collide, so the collision chains are
/// exercised on every insert and lookup.
#[cfg(test)]
fn value_hash(v: &[u8]) -> u64 {
    v.len() as u64
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

impl Dict {
    pub fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.exact.clear();
        self.first.clear();
        *self.shapes = [0; SHAPE_WORDS];
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn text(&self, i: usize) -> &[u8] {
        let e = &self.entries[i];
        &self.arena[e.start..e.end]
    }

    /// True if `v` (a value's UTF-8 bytes) is one of the values.
    pub fn contains(&self, v: &[u8]) -> bool {
        if v.is_empty() {
            return false;
        }
        let (w, bit) = shape_bit(v);
        if self.shapes[w] & bit == 0 {
            return false;
        }
        let mut cur = self.exact.get(&value_hash(v)).copied();
        while let Some(i) = cur {
            if self.text(i) == v {
                return true;
            }
            cur = self.entries[i].same;
        }
        false
    }

    /// Adds `v` (a value's UTF-8 bytes, already trimmed) unless present or without a word.
    pub fn insert(&mut self, v: &[u8], role: Role) {
        // The hash of the value's first word, lower-cased.
        let Some(fh) = first_word_hash(v) else {
            return;
        };
        let i = self.entries.len();
        let same = match self.exact.entry(value_hash(v)) {
            Slot::Occupied(mut o) => {
                let mut cur = Some(*o.get());
                while let Some(k) = cur {
                    let e = &self.entries[k];
                    if &self.arena[e.start..e.end] == v {
                        return;
                    }
                    cur = e.same;
                }
                Some(o.insert(i))
            }
            Slot::Vacant(slot) => {
                slot.insert(i);
                None
            }
        };
        let (w, bit) = shape_bit(v);
        self.shapes[w] |= bit;
        let start = self.arena.len();
        self.arena.extend_from_slice(v);
        let next = self.first.insert(fh, i);
        self.entries.push(Entry {
            start,
            end: self.arena.len(),
            role,
            next,
            same,
        });
    }

    /// `text` with every whole-word occurrence of a value (ASCII case ignored) replaced by a
    /// tag for its kind; `None` when there is none. Each word of the text is looked up by its
    /// first word; the longest value that matches there wins.
    pub fn scrub(&self, text: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut out = String::new();
        let mut last = 0;
        let mut i = 0;
        while i < text.len() {
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            if !is_word(c) {
                i += c.len_utf8();
                continue;
            }
            let end = text[i..]
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(text.len(), |(k, _)| i + k);
            let mut next = end;
            let mut best: Option<usize> = None;
            let mut cur = self.first.get(&lower_word_hash(&text[i..end])).copied();
            while let Some(k) = cur {
                let v = self.text(k);
                let e = i + v.len();
                let hit = e <= text.len()
                    && text.is_char_boundary(e)
                    && text.as_bytes()[i..e].eq_ignore_ascii_case(v)
                    && text[e..].chars().next().is_none_or(|c| !is_word(c));
                if hit && best.is_none_or(|b| self.text(b).len() < v.len()) {
                    best = Some(k);
                }
                cur = self.entries[k].next;
            }
            if let Some(k) = best {
                let tag = match self.entries[k].role {
                    Role::Name => "[NAME]",
                    Role::Street | Role::City | Role::County | Role::Zip => "[LOCATION]",
                    Role::Phone => "[PHONE]",
                    Role::Email => "[EMAIL]",
                    _ => "[ID]",
                };
                out.push_str(&text[last..i]);
                out.push_str(tag);
                last = i + self.text(k).len();
                next = last;
            }
            i = next;
        }
        if last == 0 {
            return None;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_words_and_the_longest_value() {
        let mut d = Dict::default();
        d.insert(b"DUCK", Role::Name);
        d.insert(b"111 DUCK ST", Role::Street);
        d.insert(b"Fowl", Role::City);
        assert!(d.contains(b"DUCK") && !d.contains(b"duck"));
        assert_eq!(
            d.scrub("Duck lives at 111 duck st in FOWL; Ducky is not DUCK.")
                .as_deref(),
            Some("[NAME] lives at [LOCATION] in [LOCATION]; Ducky is not [NAME].")
        );
        assert_eq!(d.scrub("nothing here"), None);
        d.insert(b"DUCK", Role::Name);
        assert_eq!(
            d.entries.len(),
            3,
            "a value already present is not added again"
        );
        d.clear();
        assert!(d.is_empty() && d.scrub("DUCK").is_none());
    }

    #[test]
    fn the_shape_set_never_hides_a_value() {
        let mut d = Dict::default();
        let long = "A".repeat(300);
        d.insert(long.as_bytes(), Role::Name);
        d.insert(b"\xC3\x89mile", Role::Name);
        d.insert(b"~7X", Role::Id);
        assert!(
            d.contains(long.as_bytes()),
            "lengths past 255 share one shape"
        );
        assert!(!d.contains("A".repeat(299).as_bytes()));
        assert!(d.contains("Émile".as_bytes()) && d.contains(b"~7X"));
        assert!(!d.contains(b"Emile") && !d.contains(b"") && !d.contains(b"~7Y"));
        d.clear();
        assert!(!d.contains(b"~7X"));
    }

    #[test]
    fn values_whose_hashes_collide_are_both_kept() {
        // Same length, so the same hash here.
        let mut d = Dict::default();
        d.insert(b"SMITH", Role::Name);
        d.insert(b"JONES", Role::Name);
        assert_eq!(value_hash(b"SMITH"), value_hash(b"JONES"));
        assert!(d.contains(b"SMITH") && d.contains(b"JONES") && !d.contains(b"BROWN"));
        d.insert(b"SMITH", Role::Name);
        d.insert(b"JONES", Role::Name);
        assert_eq!(d.entries.len(), 2);
        assert_eq!(
            d.scrub("jones met smith").as_deref(),
            Some("[NAME] met [NAME]")
        );
    }

    /// The one-pass first-word hash is the decoding one on ASCII, non-ASCII and mixed values
    /// (every string of up to four characters drawn from a mixed alphabet).
    #[test]
    fn first_word_hash_is_the_decoding_one() {
        let slow = |v: &[u8]| {
            String::from_utf8_lossy(v)
                .split(|c: char| !is_word(c))
                .find(|w| !w.is_empty())
                .map(lower_word_hash)
        };
        let alphabet = [
            "a", "Z", "7", " ", "-", "é", "Ö", "\u{212A}", "·", "\u{2003}",
        ];
        let mut checked = 0;
        for n in 0..=4u32 {
            for mut k in 0..alphabet.len().pow(n) {
                let mut v = String::new();
                for _ in 0..n {
                    v.push_str(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                assert_eq!(first_word_hash(v.as_bytes()), slow(v.as_bytes()), "{v:?}");
                checked += 1;
            }
        }
        assert!(checked > 10_000);
        assert_eq!(
            first_word_hash(b"  Smith, John"),
            Some(lower_ascii_hash(b"smith"))
        );
        assert_eq!(first_word_hash(b" ,;"), None);
    }

    #[test]
    fn shapes_tell_apart_lengths_and_end_bytes() {
        let mut d = Dict::default();
        d.insert(b"HANS", Role::Name);
        // about 1% of random other shapes collide; these differ in length or an end byte and
        // must be answered right whether their bit is set or not
        for v in [&b"HANSI"[..], b"HAN", b"XANS", b"HANX", b"hans"] {
            assert!(!d.contains(v));
        }
        assert!(d.contains(b"HANS"));
    }
}
