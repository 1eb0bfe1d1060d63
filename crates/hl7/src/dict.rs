//! The message dictionary: identifying values found in a message's typed fields, looked up
//! again in kept values and inside free text. One arena and two hash indexes, cleared per
//! message, so a message costs no allocation once the buffers have grown.

use std::hash::{BuildHasher, Hasher};

use rustc_hash::{FxBuildHasher, FxHashMap, FxHasher};

use crate::types::Role;

struct Entry {
    start: usize,
    end: usize,
    role: Role,
    /// The next entry with the same first word.
    next: Option<usize>,
}

#[derive(Default)]
pub(crate) struct Dict {
    arena: String,
    entries: Vec<Entry>,
    /// Hash of the exact value → entry.
    exact: FxHashMap<u64, usize>,
    /// Hash of the lower-cased first word → the latest entry starting with it.
    first: FxHashMap<u64, usize>,
}

fn lower_word_hash(word: &str) -> u64 {
    let mut h = FxHasher::default();
    if word.is_ascii() {
        // The same hash as below, without decoding characters.
        for b in word.bytes() {
            h.write_u32(u32::from(b.to_ascii_lowercase()));
        }
        return h.finish();
    }
    for c in word.chars().flat_map(char::to_lowercase) {
        h.write_u32(c as u32);
    }
    h.finish()
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
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn text(&self, i: usize) -> &str {
        let e = &self.entries[i];
        &self.arena[e.start..e.end]
    }

    /// True if `v` is one of the values.
    pub fn contains(&self, v: &str) -> bool {
        self.exact
            .get(&FxBuildHasher.hash_one(v))
            .is_some_and(|&i| self.text(i) == v)
    }

    /// Adds `v` (already trimmed) unless present.
    pub fn insert(&mut self, v: &str, role: Role) {
        let h = FxBuildHasher.hash_one(v);
        if self.exact.contains_key(&h) {
            return;
        }
        let Some(first) = v.split(|c: char| !is_word(c)).find(|w| !w.is_empty()) else {
            return;
        };
        let start = self.arena.len();
        self.arena.push_str(v);
        let i = self.entries.len();
        let fh = lower_word_hash(first);
        let next = self.first.insert(fh, i);
        self.entries.push(Entry {
            start,
            end: self.arena.len(),
            role,
            next,
        });
        self.exact.insert(h, i);
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
                    && text[i..e].eq_ignore_ascii_case(v)
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
        d.insert("DUCK", Role::Name);
        d.insert("111 DUCK ST", Role::Street);
        d.insert("Fowl", Role::City);
        assert!(d.contains("DUCK") && !d.contains("duck"));
        assert_eq!(
            d.scrub("Duck lives at 111 duck st in FOWL; Ducky is not DUCK.")
                .as_deref(),
            Some("[NAME] lives at [LOCATION] in [LOCATION]; Ducky is not [NAME].")
        );
        assert_eq!(d.scrub("nothing here"), None);
        d.clear();
        assert!(d.is_empty() && d.scrub("DUCK").is_none());
    }
}
