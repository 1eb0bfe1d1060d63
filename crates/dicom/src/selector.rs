//! Rule selectors for DICOM: `(0010,0010)`, `0010,0010`, `00100010`, a keyword (`PatientName`),
//! a group or repeating-group mask with `x` wildcards (`(0009,xxxx)`, `(60xx,3000)`), or
//! `private` (every odd-group attribute).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use phiguard_rules::Selector;

use crate::profile::Pattern;

/// Which attributes a rule applies to, at any depth (inside sequences too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DicomSelector(pub Pattern);

impl DicomSelector {
    /// True if the rule applies to `tag`.
    pub fn matches(&self, tag: u32) -> bool {
        match self.0 {
            Pattern::Mask { mask, value } => tag & mask == value,
            p => p.matches(tag),
        }
    }
}

impl Selector for DicomSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("private") {
            return Ok(DicomSelector(Pattern::Private));
        }
        let looks_like_tag = t.starts_with('(')
            || (t.len() >= 8
                && t.chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, 'x' | 'X' | ',')));
        if looks_like_tag {
            return Pattern::parse(t).map(DicomSelector).ok_or_else(|| {
                "expected a tag like (0010,0010), 00100010 or (0009,xxxx)".to_string()
            });
        }
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()) {
            if let Some(e) = StandardDataDictionary.by_name(t) {
                let tag = e.tag();
                return Ok(DicomSelector(Pattern::Tag(
                    (u32::from(tag.group()) << 16) | u32::from(tag.element()),
                )));
            }
            return Err(format!("unknown DICOM keyword {t:?}"));
        }
        Err(
            "expected a tag like (0010,0010), a keyword like PatientName, (0009,xxxx) or private"
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_forms() {
        let p = |s: &str| DicomSelector::parse(s);
        assert_eq!(
            p("(0010,0010)"),
            Ok(DicomSelector(Pattern::Tag(0x0010_0010)))
        );
        assert_eq!(p("00100010"), Ok(DicomSelector(Pattern::Tag(0x0010_0010))));
        assert_eq!(p("0010,0010"), Ok(DicomSelector(Pattern::Tag(0x0010_0010))));
        assert_eq!(
            p("PatientName"),
            Ok(DicomSelector(Pattern::Tag(0x0010_0010)))
        );
        let g = p("(0009,xxxx)").unwrap_or(DicomSelector(Pattern::Private));
        assert!(g.matches(0x0009_1001) && !g.matches(0x0011_1001));
        assert!(p("private").is_ok_and(|s| s.matches(0x0029_1010) && !s.matches(0x0028_0010)));
        assert!(p("NoSuchKeyword").is_err());
        assert!(p("(0010,001)").is_err());
        assert!(p("").is_err());
    }
}
