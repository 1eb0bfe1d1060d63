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

#[derive(Default)]
pub(crate) struct Dict {
    /// The values' bytes (each one UTF-8), one after the other.
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Hash of the exact value → the latest entry with that hash.
    exact: FxHashMap<u64, usize>,
    /// Hash of the lower-cased first word → the latest entry starting with it.
    first: FxHashMap<u64, usize>,
    /// The values' lengths (63 for any longer) and first bytes, as bit sets: a value whose
    /// length or first byte is not among them is not in the dictionary, which most kept values
    /// show without being hashed.
    lengths: u64,
    first_bytes: [u64; 4],
}

fn length_bit(v: &[u8]) -> u64 {
    1 << v.len().min(63)
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
        self.lengths = 0;
        self.first_bytes = [0; 4];
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
        let Some(&b) = v.first() else {
            return false;
        };
        if self.lengths & length_bit(v) == 0
            || self.first_bytes[usize::from(b >> 6)] & 1 << (b & 63) == 0
        {
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
        // The hash of the value's first word, lower-cased (ASCII values without decoding).
        let first = if v.is_ascii() {
            v.split(|b| !b.is_ascii_alphanumeric())
                .find(|w| !w.is_empty())
                .map(lower_ascii_hash)
        } else {
            String::from_utf8_lossy(v)
                .split(|c: char| !is_word(c))
                .find(|w| !w.is_empty())
                .map(lower_word_hash)
        };
        let Some(fh) = first else {
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
        self.lengths |= length_bit(v);
        if let Some(&b) = v.first() {
            self.first_bytes[usize::from(b >> 6)] |= 1 << (b & 63);
        }
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
    fn the_length_and_first_byte_sets_never_hide_a_value() {
        let mut d = Dict::default();
        let long = "A".repeat(70);
        d.insert(long.as_bytes(), Role::Name);
        d.insert(b"\xC3\x89mile", Role::Name);
        d.insert(b"~7X", Role::Id);
        assert!(d.contains(long.as_bytes()), "lengths past 63 share one bit");
        assert!(!d.contains("A".repeat(64).as_bytes()));
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
}
