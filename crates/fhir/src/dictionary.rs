//! The record's own identifiers, used to scrub its free text.
//!
//! The detector finds names and places from dictionaries and context; a record's structured
//! fields say exactly which names, streets, cities, phone numbers and identifier values belong
//! to this patient (and to the practitioners of the same Bundle). Every text the `text` action
//! produces is searched for those values (whole words, ASCII case folded) and they are
//! replaced by their category's tag, so a note that says `Carolee951 is a 34 year-old...`
//! loses the name even when the detector does not know it.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use phiguard_detect::Category;

/// Values collected from one record (a resource, a Bundle, an NDJSON line).
#[derive(Default)]
pub struct Dictionary {
    values: Vec<(String, Category)>,
    matcher: Option<AhoCorasick>,
    /// `values` is sorted and deduplicated when it grows past this (a Bundle repeats the
    /// same names and identifier values in many entries; a streamed one has no other bound).
    compact_at: usize,
}

/// Identifier values shorter than this are not searched for (too many false hits).
const MIN_ID_LEN: usize = 4;

impl Dictionary {
    /// Adds a value of `category` (names also add each word).
    pub fn add(&mut self, value: &str, category: Category) {
        let v = value.trim();
        let min = match category {
            Category::Name => 2,
            Category::Location => 3,
            _ => MIN_ID_LEN,
        };
        if v.chars().count() < min {
            return;
        }
        if category == Category::Name {
            for w in v.split(|c: char| c.is_whitespace() || c == ',') {
                let w = w.trim_matches(|c: char| !c.is_alphanumeric());
                if w.chars().count() >= 2 && w != v {
                    self.values.push((w.to_string(), category));
                }
            }
        }
        self.values.push((v.to_string(), category));
        if self.values.len() > self.compact_at.max(1 << 12) {
            self.compact();
            self.compact_at = self.values.len() * 2;
        }
    }

    /// Sorts and deduplicates the values: a value added under several categories keeps the
    /// least, whenever this runs, so compacting early never changes what `build` makes.
    fn compact(&mut self) {
        self.values.sort();
        self.values.dedup_by(|a, b| a.0 == b.0);
    }

    /// Builds the matcher; call once after the last `add`.
    pub fn build(&mut self) {
        self.compact();
        if self.values.is_empty() {
            return;
        }
        self.matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            // Built once per record: a DFA costs more to build than it saves on a few texts.
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(self.values.iter().map(|(v, _)| v.as_str()))
            .ok();
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every whole-word occurrence replaced by its tag, and the number of
    /// replacements per category; `None` when nothing was found.
    pub fn scrub(&self, text: &str) -> Option<(String, Vec<(Category, u64)>)> {
        let m = self.matcher.as_ref()?;
        let mut out = String::new();
        let mut last = 0;
        let mut counts: Vec<(Category, u64)> = Vec::new();
        for hit in m.find_iter(text) {
            let (s, e) = (hit.start(), hit.end());
            let before = text[..s].chars().next_back();
            let after = text[e..].chars().next();
            if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let Some((_, cat)) = self.values.get(hit.pattern().as_usize()) else {
                continue;
            };
            out.push_str(&text[last..s]);
            out.push_str(&phiguard_deid::tag(*cat));
            last = e;
            match counts.iter_mut().find(|(c, _)| c == cat) {
                Some((_, n)) => *n += 1,
                None => counts.push((*cat, 1)),
            }
        }
        if last == 0 {
            return None;
        }
        out.push_str(&text[last..]);
        Some((out, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_case_folded() {
        let mut d = Dictionary::default();
        d.add("Carolee951", Category::Name);
        d.add("Mary Ann", Category::Name);
        d.add("12 Main St", Category::Location);
        d.add("ab", Category::OtherId);
        d.build();
        let (s, c) = d
            .scrub("carolee951 lives at 12 Main St; Maryann and ANN. tab")
            .unwrap();
        assert_eq!(s, "[NAME] lives at [LOCATION]; Maryann and [NAME]. tab");
        assert_eq!(c.len(), 2);
        assert!(d.scrub("nothing here").is_none());
    }
}
