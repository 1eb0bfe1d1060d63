//! Counts for the run report: per rule, per path no rule covered, per detected category, and
//! notes (dates that could not be read, birth dates over 89, ...). Paths and counts only.

use std::collections::BTreeMap;

use phiguard_detect::Category;
use serde::Serialize;

use crate::action::Action;

/// What one rule (or one uncovered path's default) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The action, in config spelling.
    pub action: &'static str,
    /// Values the rule matched.
    pub values: u64,
    /// Values it changed (replaced or removed).
    pub changed: u64,
    /// Values it removed.
    pub removed: u64,
}

/// Counts for one run (or one file; merge them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Per rule id.
    pub rules: BTreeMap<String, RuleCount>,
    /// Paths no rule covered, with the safe default applied to them.
    pub uncovered: BTreeMap<String, RuleCount>,
    /// Detections inside free text (`text` action), per category.
    pub categories: BTreeMap<String, u64>,
    /// Special handling, per note.
    pub notes: BTreeMap<String, u64>,
    /// Files and records (resources, messages, rows, DICOM files) processed.
    pub files: u64,
    pub records: u64,
    /// A uniform random sample of changed values for the human review sheet.
    pub review: ReviewSample,
}

/// One changed value picked for review: where (output file, rule or path), what was done, and
/// what was written. Never the original value: the reviewer opens the input to compare.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReviewItem {
    /// The output file (set by the caller per file).
    pub file: Option<String>,
    /// The rule id, or the path for an uncovered value.
    pub rule: String,
    pub action: &'static str,
    /// `replaced` or `removed`.
    pub outcome: &'static str,
    /// What was written (de-identified; at most 120 characters), `None` when removed.
    pub replacement: Option<String>,
    #[serde(skip)]
    priority: u64,
}

impl std::fmt::Debug for ReviewItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewItem")
            .field("rule", &self.rule)
            .field("action", &self.action)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// Bottom-k sampling: every changed value gets a pseudo-random priority from a seed and its
/// position, the k lowest are kept. Samples of several files merge into a uniform sample of the
/// union, and the same seeds and inputs give the same sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ReviewSample {
    pub items: Vec<ReviewItem>,
    #[serde(skip)]
    capacity: usize,
    #[serde(skip)]
    seed: u64,
    #[serde(skip)]
    seen: u64,
    /// The highest kept priority once the sample is full (`u64::MAX` until then).
    #[serde(skip)]
    bar: u64,
}

/// Default size of the review sample.
pub const REVIEW_SAMPLE: usize = 20;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Default for ReviewSample {
    /// No sample (capacity 0): changes are counted, none kept.
    fn default() -> ReviewSample {
        ReviewSample::new(0, 0)
    }
}

impl ReviewSample {
    /// A sample of `capacity` items whose priorities derive from `seed` (use one seed per
    /// file, e.g. from the run seed and the file's position).
    pub fn new(capacity: usize, seed: u64) -> ReviewSample {
        ReviewSample {
            items: Vec::new(),
            capacity,
            seed,
            seen: 0,
            bar: u64::MAX,
        }
    }

    fn offer(&mut self, make: impl FnOnce() -> ReviewItem) {
        self.seen += 1;
        if self.capacity == 0 {
            return;
        }
        let priority = splitmix64(self.seed ^ splitmix64(self.seen));
        if self.items.len() >= self.capacity && priority >= self.bar {
            return;
        }
        let mut item = make();
        item.priority = priority;
        self.items.push(item);
        self.settle();
    }

    /// Keeps the `capacity` lowest priorities and updates the bar.
    fn settle(&mut self) {
        if self.items.len() > self.capacity {
            self.items.sort_by_key(|i| i.priority);
            self.items.truncate(self.capacity);
        }
        self.bar = if self.items.len() >= self.capacity {
            self.items
                .iter()
                .map(|i| i.priority)
                .max()
                .unwrap_or(u64::MAX)
        } else {
            u64::MAX
        };
    }

    /// Adds another sample's items: the lowest priorities of both are kept.
    pub fn merge(&mut self, other: ReviewSample) {
        self.capacity = self.capacity.max(other.capacity);
        self.seen += other.seen;
        self.items.extend(other.items);
        self.items.sort_by_key(|i| i.priority);
        self.settle();
    }

    /// True when the next offered change would be kept: lets a caller build an expensive
    /// rule label only then (and call [`ReviewSample::skip`] otherwise).
    pub fn wants_next(&self) -> bool {
        self.capacity > 0
            && (self.items.len() < self.capacity
                || splitmix64(self.seed ^ splitmix64(self.seen + 1)) < self.bar)
    }

    /// Counts a changed value that is not offered (see [`ReviewSample::wants_next`]).
    pub fn skip(&mut self) {
        self.seen += 1;
    }

    /// Names the output file of every item that has none yet.
    pub fn set_file(&mut self, file: &str) {
        for i in &mut self.items {
            if i.file.is_none() {
                i.file = Some(file.to_string());
            }
        }
    }

    /// An empty sample of the same size for part `part` of this one's input (a worker's share
    /// of one file): its priorities come from a seed of its own, so the parts merged back
    /// ([`Tally::merge`]) are a uniform sample of all of them.
    pub fn fork(&self, part: u64) -> ReviewSample {
        ReviewSample::new(
            self.capacity,
            splitmix64(self.seed ^ splitmix64(part.wrapping_add(0x5EED))),
        )
    }

    /// Changed values offered to the sample.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

impl Tally {
    /// Counts one value handled by `rule` (`covered`) or by the default for path `rule`.
    pub fn count(
        &mut self,
        rule: &str,
        covered: bool,
        action: Action,
        changed: bool,
        removed: bool,
    ) {
        let map = if covered {
            &mut self.rules
        } else {
            &mut self.uncovered
        };
        let e = match map.get_mut(rule) {
            Some(e) => e,
            None => map.entry(rule.to_string()).or_insert_with(|| RuleCount {
                action: action.as_str(),
                ..RuleCount::default()
            }),
        };
        e.values += 1;
        e.changed += u64::from(changed);
        e.removed += u64::from(removed);
    }

    /// Counts detections of `category` inside free text.
    pub fn category(&mut self, category: Category, n: u64) {
        *self
            .categories
            .entry(category.as_str().to_string())
            .or_default() += n;
    }

    /// Counts one note.
    pub fn note(&mut self, note: &str) {
        match self.notes.get_mut(note) {
            Some(n) => *n += 1,
            None => {
                self.notes.insert(note.to_string(), 1);
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: Tally) {
        for (map, theirs) in [
            (&mut self.rules, other.rules),
            (&mut self.uncovered, other.uncovered),
        ] {
            for (k, v) in theirs {
                let e = map.entry(k).or_insert_with(|| RuleCount {
                    action: v.action,
                    ..RuleCount::default()
                });
                e.values += v.values;
                e.changed += v.changed;
                e.removed += v.removed;
            }
        }
        for (k, v) in other.categories {
            *self.categories.entry(k).or_default() += v;
        }
        for (k, v) in other.notes {
            *self.notes.entry(k).or_default() += v;
        }
        self.files += other.files;
        self.records += other.records;
        self.review.merge(other.review);
    }

    /// Offers a changed value to the review sample (a no-op unless the caller gave the tally a
    /// sample with [`ReviewSample::new`]).
    pub fn sample_change(&mut self, rule: &str, action: Action, replacement: Option<&str>) {
        self.review.offer(|| ReviewItem {
            file: None,
            rule: rule.to_string(),
            action: action.as_str(),
            outcome: if replacement.is_some() {
                "replaced"
            } else {
                "removed"
            },
            replacement: replacement.map(|r| {
                let mut s: String = r.chars().take(120).collect();
                if s.len() < r.len() {
                    s.push('…');
                }
                s
            }),
            priority: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_up() {
        let mut a = Tally::default();
        a.count("r1", true, Action::Remove, true, true);
        a.count("PID-99", false, Action::Remove, true, true);
        let mut b = Tally::default();
        b.count("r1", true, Action::Remove, true, true);
        b.note("x");
        b.records = 2;
        a.merge(b);
        assert_eq!(a.rules["r1"].values, 2);
        assert_eq!(a.uncovered["PID-99"].removed, 1);
        assert_eq!(a.notes["x"], 1);
        assert_eq!(a.records, 2);
    }

    #[test]
    fn review_sample_is_bottom_k_and_merges_uniformly() {
        // Two files of 1,000 changes each, 10 kept: merged, the sample holds items of both,
        // and the same seeds give the same sample.
        let run = || {
            let mut total = Tally::default();
            for f in 0..2u64 {
                let mut t = Tally {
                    review: ReviewSample::new(10, 1000 + f),
                    ..Tally::default()
                };
                for i in 0..1000 {
                    t.sample_change(&format!("r{f}"), Action::Pseudonym, Some(&format!("v{i}")));
                }
                t.review.set_file(&format!("f{f}"));
                total.merge(t);
            }
            total
        };
        let a = run();
        assert_eq!(a.review.items.len(), 10);
        assert_eq!(a.review.seen(), 2000);
        assert!(
            a.review
                .items
                .iter()
                .any(|i| i.file.as_deref() == Some("f0"))
        );
        assert!(
            a.review
                .items
                .iter()
                .any(|i| i.file.as_deref() == Some("f1"))
        );
        assert_eq!(a.review.items, run().review.items);
        // Not just the first changes of each file.
        assert!(a.review.items.iter().any(|i| {
            i.replacement
                .as_deref()
                .and_then(|v| v[1..].parse::<u32>().ok())
                .is_some_and(|n| n >= 100)
        }));
        // A tally without a sample keeps nothing.
        let mut t = Tally::default();
        t.sample_change("r", Action::Remove, None);
        assert!(t.review.items.is_empty());
        // Long replacements are cut; Debug shows no value.
        let mut t = Tally {
            review: ReviewSample::new(1, 1),
            ..Tally::default()
        };
        t.sample_change("r", Action::Text, Some(&"x".repeat(500)));
        assert_eq!(
            t.review.items[0]
                .replacement
                .as_ref()
                .map(|r| r.chars().count()),
            Some(121)
        );
        assert!(!format!("{:?}", t.review.items[0]).contains("xxx"));
    }
}
