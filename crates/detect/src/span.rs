//! The detector's output: categorised spans over the input text.

use serde::{Deserialize, Serialize};

/// What kind of identifier a span holds. The first nineteen are the HIPAA Safe Harbor
/// identifiers (45 CFR 164.514(b)(2)); the last three are labelled by corpora but are not
/// Safe Harbor identifiers on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Name,
    Location,
    Date,
    AgeOver89,
    Phone,
    Fax,
    Email,
    Ssn,
    Mrn,
    HealthPlan,
    Account,
    License,
    Vehicle,
    Device,
    Url,
    Ip,
    Biometric,
    Photo,
    OtherId,
    Organization,
    Profession,
    Other,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 22] = [
        Category::Name,
        Category::Location,
        Category::Date,
        Category::AgeOver89,
        Category::Phone,
        Category::Fax,
        Category::Email,
        Category::Ssn,
        Category::Mrn,
        Category::HealthPlan,
        Category::Account,
        Category::License,
        Category::Vehicle,
        Category::Device,
        Category::Url,
        Category::Ip,
        Category::Biometric,
        Category::Photo,
        Category::OtherId,
        Category::Organization,
        Category::Profession,
        Category::Other,
    ];

    /// The label used in JSONL (`"NAME"`, `"AGE_OVER_89"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Name => "NAME",
            Category::Location => "LOCATION",
            Category::Date => "DATE",
            Category::AgeOver89 => "AGE_OVER_89",
            Category::Phone => "PHONE",
            Category::Fax => "FAX",
            Category::Email => "EMAIL",
            Category::Ssn => "SSN",
            Category::Mrn => "MRN",
            Category::HealthPlan => "HEALTH_PLAN",
            Category::Account => "ACCOUNT",
            Category::License => "LICENSE",
            Category::Vehicle => "VEHICLE",
            Category::Device => "DEVICE",
            Category::Url => "URL",
            Category::Ip => "IP",
            Category::Biometric => "BIOMETRIC",
            Category::Photo => "PHOTO",
            Category::OtherId => "OTHER_ID",
            Category::Organization => "ORGANIZATION",
            Category::Profession => "PROFESSION",
            Category::Other => "OTHER",
        }
    }

    /// Parses a JSONL label; `None` for an unknown one.
    pub fn parse(label: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == label)
    }

    /// True for the 18 Safe Harbor identifier kinds (ORGANIZATION, PROFESSION and OTHER are not).
    pub fn is_safe_harbor(self) -> bool {
        !matches!(
            self,
            Category::Organization | Category::Profession | Category::Other
        )
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detected identifier. `start`/`end` are **byte** offsets into the text the detector was
/// given (end exclusive, always on `char` boundaries); use [`CharIndex`](crate::CharIndex) to turn
/// them into Unicode code-point offsets for JSONL output.
#[derive(Clone, PartialEq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub category: Category,
    /// 0.0..=1.0: how sure the recognizer is.
    pub confidence: f32,
    /// Which recognizer fired (a stable, PHI-free name such as `"date.numeric"`).
    pub recognizer: &'static str,
}

/// Spans never print the text they cover, so `Debug` is safe to log.
impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Span({}..{} {} {:.2} {})",
            self.start, self.end, self.category, self.confidence, self.recognizer
        )
    }
}

/// Converts byte offsets of one text into code-point offsets, in O(log n) per lookup.
pub struct CharIndex {
    /// (byte offset after, char offset after) for each non-ASCII char: between marks the two
    /// offsets advance together, so ASCII-only texts need no marks at all.
    marks: Vec<(usize, usize)>,
}

impl CharIndex {
    /// Builds the index for `text`.
    pub fn new(text: &str) -> Self {
        let mut marks = Vec::new();
        if !text.is_ascii() {
            for (ci, (bi, ch)) in text.char_indices().enumerate() {
                if !ch.is_ascii() {
                    // after this char, byte offset runs ahead of char offset by len-1 more
                    marks.push((bi + ch.len_utf8(), ci + 1));
                }
            }
        }
        CharIndex { marks }
    }

    /// The code-point offset of byte offset `byte` (which must be on a char boundary).
    pub fn char_offset(&self, byte: usize) -> usize {
        match self.marks.partition_point(|&(b, _)| b <= byte) {
            0 => byte,
            i => {
                let (b, c) = self.marks[i - 1];
                c + (byte - b)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_index_matches_char_indices() {
        let text = "Sánchez ü 東京 Müller a\u{1F600}b";
        let idx = CharIndex::new(text);
        for (ci, (bi, _)) in text.char_indices().enumerate() {
            assert_eq!(idx.char_offset(bi), ci);
        }
        assert_eq!(idx.char_offset(text.len()), text.chars().count());
    }

    #[test]
    fn category_labels_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("NOPE"), None);
    }
}
