//! The Safe Harbor ZIP rule (45 CFR 164.514(b)(2)(i)(B)): a ZIP code keeps its first three
//! digits only where that three-digit area holds more than 20,000 people; otherwise it becomes
//! `000`. Written back as the three-digit area: `02139` → `021`, `03601` → `000`.
//!
//! A ZIP3 is restricted when it is on the HRSA 2020-census list or the HHS 2000-census list, has
//! no counted residents in ACS 2022, or is not on the ACS 2022 allow-list of prefixes with more
//! than 20,000 people (so never-assigned prefixes become `000` too). Tables: `data/README.md`.

use std::collections::HashSet;
use std::sync::OnceLock;

/// One line describing the rule, for the report.
pub const RULE: &str = "ZIP3 + \"00\"; \"00000\" where the ZIP3 area is restricted \
(HRSA 2020 and HHS 2000 lists, ACS 2022 prefixes with 20,000 people or fewer, and prefixes \
not on the ACS 2022 allow-list)";

const RESTRICTED_JSON: &str = include_str!("../data/hipaa_restricted_zip3.json");
const POPULATION_CSV: &str = include_str!("../data/zip3_population_acs2022.csv");

struct Zip3Table {
    restricted: HashSet<String>,
    allowed: HashSet<String>,
}

fn table() -> Option<&'static Zip3Table> {
    static TABLE: OnceLock<Option<Zip3Table>> = OnceLock::new();
    TABLE.get_or_init(load_table).as_ref()
}

fn load_table() -> Option<Zip3Table> {
    let json: serde_json::Value = serde_json::from_str(RESTRICTED_JSON).ok()?;
    let mut restricted = HashSet::new();
    for list in [
        "recommended_default_zip3_restricted",
        "census2020_hrsa_uds_plus",
        "hhs_2012_guidance_census2000",
        "zip3_with_zero_or_no_zcta_population_in_acs2022",
    ] {
        for z in json.get(list)?.get("zip3")?.as_array()? {
            restricted.insert(z.as_str()?.to_string());
        }
    }
    let mut allowed = HashSet::new();
    let mut lines = POPULATION_CSV.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let z3_col = header.iter().position(|h| *h == "z3")?;
    let out_col = header.iter().position(|h| *h == "safe_harbor_zip3")?;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split(',').collect();
        let z3 = cols.get(z3_col)?;
        let out = cols.get(out_col)?;
        if out != &"000" && out == z3 {
            allowed.insert(z3.to_string());
        }
    }
    if allowed.is_empty() {
        return None;
    }
    Some(Zip3Table {
        restricted,
        allowed,
    })
}

/// True when the three-digit area `zip3` must be written as `000`. Fails closed: if the
/// embedded tables could not be read, every area is restricted.
pub fn is_restricted(zip3: &str) -> bool {
    match table() {
        Some(t) => t.restricted.contains(zip3) || !t.allowed.contains(zip3),
        None => true,
    }
}

/// True when `text` (ignoring surrounding whitespace) is a ZIP code: 5 digits or ZIP+4, or a
/// three-digit ZIP3 area already generalised.
pub fn is_zip(text: &str) -> bool {
    let t = text.trim().as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match t.len() {
        3 | 5 => digits(t),
        10 => digits(&t[..5]) && t[5] == b'-' && digits(&t[6..]),
        _ => false,
    }
}

/// Generalizes a ZIP code by the ZIP3 rule to its three-digit area, keeping surrounding
/// whitespace; `None` when `text` is not a ZIP code. `02139` → `021`, a restricted area → `000`.
/// Idempotent: `021` → `021`. (Three digits, not `02100`: a five-digit number would be taken for
/// an identifier by the detector on a second pass.)
pub fn generalize(text: &str) -> Option<String> {
    if !is_zip(text) {
        return None;
    }
    let trimmed = text.trim();
    let lead = &text[..text.len() - text.trim_start().len()];
    let trail = &text[text.trim_end().len()..];
    let zip3 = &trimmed[..3];
    let out = if zip3 == "000" || is_restricted(zip3) {
        "000".to_string()
    } else {
        zip3.to_string()
    };
    Some(format!("{lead}{out}{trail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_load() {
        let t = table().expect("embedded ZIP3 tables parse");
        assert!(t.allowed.len() > 800, "{}", t.allowed.len());
        assert!(t.restricted.len() >= 18);
    }

    #[test]
    fn hrsa_2020_and_hhs_2000_lists_are_restricted() {
        for z in [
            "036", "059", "102", "202", "203", "204", "205", "369", "556", "692", "753", "772",
            "821", "823", "878", "879", "884", "893", // HRSA 2020
            "063", "790", "830", "831", "890", // HHS 2000 only
        ] {
            assert!(is_restricted(z), "{z}");
        }
    }

    #[test]
    fn populous_and_unassigned_prefixes() {
        assert!(!is_restricted("021")); // Boston
        assert!(!is_restricted("100")); // Manhattan
        assert!(is_restricted("000")); // never assigned
        assert!(is_restricted("090")); // APO/FPO
    }

    #[test]
    fn generalizes_zip_and_zip4() {
        assert_eq!(generalize("02139").as_deref(), Some("021"));
        assert_eq!(generalize("02139-4307").as_deref(), Some("021"));
        assert_eq!(generalize("03601").as_deref(), Some("000"));
        assert_eq!(generalize("20301").as_deref(), Some("000"));
        assert_eq!(generalize(" 10001 ").as_deref(), Some(" 100 "));
        assert_eq!(generalize("021").as_deref(), Some("021"));
        assert_eq!(generalize("Boston"), None);
        assert_eq!(generalize("0213"), None);
        assert_eq!(generalize("02139-43"), None);
    }

    #[test]
    fn generalize_is_idempotent() {
        for z in ["02139", "03601", "99999", "00501", "10001-1234"] {
            let once = generalize(z).unwrap();
            assert_eq!(generalize(&once).as_deref(), Some(once.as_str()));
        }
    }
}
