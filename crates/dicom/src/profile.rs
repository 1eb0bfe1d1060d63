//! The PS3.15 Annex E Basic Application Level Confidentiality Profile and its options, read from
//! the machine-readable Table E.1-1 (Innolitics' `confidentiality_profile_attributes.json`,
//! DICOM 2024b, MIT; `data/`), resolved into one [`Code`] per attribute for a given set of options.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// Table E.1-1 as published (one row per attribute).
const TABLE_JSON: &str =
    include_str!("../data/innolitics_confidentiality_profile_attributes_rev2024b.json");

/// A resolved Annex E action code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// D: replace with a non-zero-length dummy value consistent with the VR.
    Dummy,
    /// Z: replace with a zero-length value (an empty sequence for SQ).
    Zero,
    /// X: remove.
    Remove,
    /// K: keep (sequences: kept whole).
    Keep,
    /// C: clean (text run through the detector, dates shifted, sequences recursed).
    Clean,
    /// U: replace the UID with a consistent keyed one (sequences: recursed, UIDs inside replaced).
    Uid,
}

/// The Annex E options (PS3.15 E.3), with their config spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnnexOption {
    RetainSafePrivate,
    RetainUids,
    RetainDeviceIdentity,
    RetainInstitutionIdentity,
    RetainPatientCharacteristics,
    RetainLongFullDates,
    RetainLongModifiedDates,
    CleanDescriptors,
    CleanStructuredContent,
    CleanGraphics,
}

impl AnnexOption {
    /// Every option, in table column order.
    pub const ALL: [AnnexOption; 10] = [
        AnnexOption::RetainSafePrivate,
        AnnexOption::RetainUids,
        AnnexOption::RetainDeviceIdentity,
        AnnexOption::RetainInstitutionIdentity,
        AnnexOption::RetainPatientCharacteristics,
        AnnexOption::RetainLongFullDates,
        AnnexOption::RetainLongModifiedDates,
        AnnexOption::CleanDescriptors,
        AnnexOption::CleanStructuredContent,
        AnnexOption::CleanGraphics,
    ];

    /// Parses the config spelling (`retain-safe-private`, ...; the long forms of the standard's
    /// option names and `_` for `-` are accepted too).
    pub fn parse(s: &str) -> Option<AnnexOption> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = s.strip_suffix("-option").unwrap_or(&s);
        Some(match s {
            "retain-safe-private" | "retain-safe-private-attributes" => {
                AnnexOption::RetainSafePrivate
            }
            "retain-uids" | "retain-uid" => AnnexOption::RetainUids,
            "retain-device-identity" | "retain-device-id" => AnnexOption::RetainDeviceIdentity,
            "retain-institution-identity" | "retain-institution-id" => {
                AnnexOption::RetainInstitutionIdentity
            }
            "retain-patient-characteristics" => AnnexOption::RetainPatientCharacteristics,
            "retain-long-full-dates" | "retain-longitudinal-full-dates" => {
                AnnexOption::RetainLongFullDates
            }
            "retain-long-modified-dates" | "retain-longitudinal-modified-dates" => {
                AnnexOption::RetainLongModifiedDates
            }
            "clean-descriptors" => AnnexOption::CleanDescriptors,
            "clean-structured-content" => AnnexOption::CleanStructuredContent,
            "clean-graphics" => AnnexOption::CleanGraphics,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnexOption::RetainSafePrivate => "retain-safe-private",
            AnnexOption::RetainUids => "retain-uids",
            AnnexOption::RetainDeviceIdentity => "retain-device-identity",
            AnnexOption::RetainInstitutionIdentity => "retain-institution-identity",
            AnnexOption::RetainPatientCharacteristics => "retain-patient-characteristics",
            AnnexOption::RetainLongFullDates => "retain-long-full-dates",
            AnnexOption::RetainLongModifiedDates => "retain-long-modified-dates",
            AnnexOption::CleanDescriptors => "clean-descriptors",
            AnnexOption::CleanStructuredContent => "clean-structured-content",
            AnnexOption::CleanGraphics => "clean-graphics",
        }
    }

    /// The CID 7050 code (DCM) written into DeidentificationMethodCodeSequence.
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            AnnexOption::CleanGraphics => ("113103", "Clean Graphics Option"),
            AnnexOption::CleanStructuredContent => ("113104", "Clean Structured Content Option"),
            AnnexOption::CleanDescriptors => ("113105", "Clean Descriptors Option"),
            AnnexOption::RetainLongFullDates => (
                "113106",
                "Retain Longitudinal Temporal Information Full Dates Option",
            ),
            AnnexOption::RetainLongModifiedDates => (
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ),
            AnnexOption::RetainPatientCharacteristics => {
                ("113108", "Retain Patient Characteristics Option")
            }
            AnnexOption::RetainDeviceIdentity => ("113109", "Retain Device Identity Option"),
            AnnexOption::RetainUids => ("113110", "Retain UIDs Option"),
            AnnexOption::RetainSafePrivate => ("113111", "Retain Safe Private Option"),
            AnnexOption::RetainInstitutionIdentity => {
                ("113112", "Retain Institution Identity Option")
            }
        }
    }

    fn column(self, row: &Row) -> Option<&str> {
        match self {
            AnnexOption::RetainSafePrivate => row.rtn_safe_priv_opt.as_deref(),
            AnnexOption::RetainUids => row.rtn_uids_opt.as_deref(),
            AnnexOption::RetainDeviceIdentity => row.rtn_dev_id_opt.as_deref(),
            AnnexOption::RetainInstitutionIdentity => row.rtn_inst_id_opt.as_deref(),
            AnnexOption::RetainPatientCharacteristics => row.rtn_pat_chars_opt.as_deref(),
            AnnexOption::RetainLongFullDates => row.rtn_long_full_dates_opt.as_deref(),
            AnnexOption::RetainLongModifiedDates => row.rtn_long_modif_dates_opt.as_deref(),
            AnnexOption::CleanDescriptors => row.clean_desc_opt.as_deref(),
            AnnexOption::CleanStructuredContent => row.clean_struct_cont_opt.as_deref(),
            AnnexOption::CleanGraphics => row.clean_graph_opt.as_deref(),
        }
    }
}

/// One row of Table E.1-1 as Innolitics publishes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: String,
    tag: String,
    #[serde(rename = "stdCompIOD")]
    std_comp_iod: String,
    basic_profile: String,
    rtn_safe_priv_opt: Option<String>,
    #[serde(rename = "rtnUIDsOpt")]
    rtn_uids_opt: Option<String>,
    rtn_dev_id_opt: Option<String>,
    rtn_inst_id_opt: Option<String>,
    rtn_pat_chars_opt: Option<String>,
    rtn_long_full_dates_opt: Option<String>,
    rtn_long_modif_dates_opt: Option<String>,
    clean_desc_opt: Option<String>,
    clean_struct_cont_opt: Option<String>,
    clean_graph_opt: Option<String>,
}

/// Which tags a row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// One tag, `(gggg,eeee)` as a `u32`.
    Tag(u32),
    /// Tags with `tag & mask == value` (repeating groups: `(50xx,xxxx)`, `(60xx,3000)`).
    Mask { mask: u32, value: u32 },
    /// Every private attribute (odd group).
    Private,
}

impl Pattern {
    /// Parses `(gggg,eeee)` with `x`/`X` wildcards, `gggg,eeee`, `ggggeeee`.
    pub fn parse(s: &str) -> Option<Pattern> {
        let t = s.trim();
        if t.to_ascii_uppercase().contains("GGGG IS ODD") {
            return Some(Pattern::Private);
        }
        let hex: String = t
            .chars()
            .filter(|c| !matches!(c, '(' | ')' | ',' | ' '))
            .collect();
        if hex.len() != 8 || !t.is_ascii() {
            return None;
        }
        let (mut mask, mut value) = (0u32, 0u32);
        for c in hex.chars() {
            mask <<= 4;
            value <<= 4;
            if c == 'x' || c == 'X' {
                continue;
            }
            mask |= 0xF;
            value |= c.to_digit(16)?;
        }
        Some(if mask == u32::MAX {
            Pattern::Tag(value)
        } else {
            Pattern::Mask { mask, value }
        })
    }

    /// True if `tag` is covered.
    pub fn matches(self, tag: u32) -> bool {
        match self {
            Pattern::Tag(t) => t == tag,
            // Repeating groups (50xx, 60xx) are even groups only.
            Pattern::Mask { mask, value } => tag & mask == value && (tag >> 16) & 1 == 0,
            Pattern::Private => (tag >> 16) & 1 == 1,
        }
    }
}

/// One attribute of the table, resolved for a set of options.
#[derive(Debug, Clone)]
pub struct Entry {
    pub pattern: Pattern,
    /// The attribute's name in the table (for rule ids).
    pub name: String,
    /// The Basic Profile action as written (`X/Z/D`, ...).
    pub basic: String,
    /// The resolved code.
    pub code: Code,
    /// True when the row has a column for the longitudinal temporal options (a date/time
    /// attribute the standard lets a profile keep or shift).
    pub temporal: bool,
}

struct Table {
    rows: Vec<Row>,
}

fn table() -> Result<&'static Table, String> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            serde_json::from_str::<Vec<Row>>(TABLE_JSON)
                .map(|rows| Table { rows })
                .map_err(|e| format!("embedded Annex E table does not parse: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Resolves a Basic Profile action with alternatives (`X/Z`, `X/D`, `Z/D`, `X/Z/D`, `X/Z/U*`).
///
/// PS3.15 picks the alternative by the attribute's type in the IOD of the object (Type 3 may be
/// removed, Type 2 must stay present, Type 1 needs a value). Without the IOD module tables the
/// table's "in a standard composite IOD" column decides: an attribute that no standard IOD uses
/// is removed (X, or the first listed action); one that some IOD uses gets the alternative that
/// keeps every IOD conformant (D over Z over X, and U* keeps the sequence and replaces the UIDs
/// inside it).
pub fn resolve_basic(basic: &str, in_std_iod: bool) -> Option<Code> {
    let parts: Vec<&str> = basic.split('/').map(str::trim).collect();
    let code = |p: &str| -> Option<Code> {
        Some(match p.trim_end_matches('*') {
            "D" => Code::Dummy,
            "Z" => Code::Zero,
            "X" => Code::Remove,
            "K" => Code::Keep,
            "C" => Code::Clean,
            "U" => Code::Uid,
            _ => return None,
        })
    };
    let codes: Vec<Code> = parts.iter().map(|p| code(p)).collect::<Option<_>>()?;
    if codes.len() == 1 || !in_std_iod {
        return codes.first().copied();
    }
    for pref in [Code::Uid, Code::Dummy, Code::Zero, Code::Remove] {
        if codes.contains(&pref) {
            return Some(pref);
        }
    }
    codes.first().copied()
}

/// The table resolved for `options`: the options' K and C override the Basic Profile; where two
/// selected options disagree the one that retains (K) wins over clean (C).
pub fn entries(options: &[AnnexOption]) -> Result<Vec<Entry>, String> {
    let t = table()?;
    let mut out = Vec::with_capacity(t.rows.len());
    for row in &t.rows {
        let pattern = Pattern::parse(&row.tag)
            .ok_or_else(|| format!("embedded Annex E table: bad tag {:?}", row.tag))?;
        let in_iod = row.std_comp_iod.trim().eq_ignore_ascii_case("Y");
        let mut code = resolve_basic(&row.basic_profile, in_iod).ok_or_else(|| {
            format!(
                "embedded Annex E table: bad action {:?} for {}",
                row.basic_profile, row.tag
            )
        })?;
        let mut by_option: Option<Code> = None;
        for o in options {
            match o.column(row).map(str::trim) {
                Some("K") => by_option = Some(Code::Keep),
                Some("C") if by_option != Some(Code::Keep) => by_option = Some(Code::Clean),
                _ => {}
            }
        }
        if let Some(c) = by_option {
            code = c;
        }
        out.push(Entry {
            pattern,
            name: row.name.clone(),
            basic: row.basic_profile.clone(),
            code,
            temporal: row.rtn_long_full_dates_opt.is_some()
                || row.rtn_long_modif_dates_opt.is_some(),
        });
    }
    Ok(out)
}

/// Exact-tag entries indexed by tag, and the pattern entries in table order.
pub struct Index {
    pub exact: HashMap<u32, Entry>,
    pub patterns: Vec<Entry>,
}

impl Index {
    pub fn new(entries: Vec<Entry>) -> Index {
        let mut exact = HashMap::with_capacity(entries.len());
        let mut patterns = Vec::new();
        for e in entries {
            match e.pattern {
                Pattern::Tag(t) => {
                    exact.insert(t, e);
                }
                _ => patterns.push(e),
            }
        }
        Index { exact, patterns }
    }

    /// The entry covering `tag` (private attributes included).
    pub fn get(&self, tag: u32) -> Option<&Entry> {
        self.exact
            .get(&tag)
            .or_else(|| self.patterns.iter().find(|e| e.pattern.matches(tag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_resolves() {
        let e = entries(&[]).unwrap_or_default();
        assert!(e.len() > 600, "{}", e.len());
        let idx = Index::new(e);
        let get = |t: u32| idx.get(t).map(|e| e.code);
        assert_eq!(get(0x0010_0010), Some(Code::Zero));
        assert_eq!(get(0x0010_0020), Some(Code::Dummy)); // Z/D, in a standard IOD
        assert_eq!(get(0x0008_0018), Some(Code::Uid));
        assert_eq!(get(0x0008_1140), Some(Code::Uid)); // X/Z/U*
        assert_eq!(get(0x6002_3000), Some(Code::Remove));
        assert_eq!(get(0x6001_3000), Some(Code::Remove)); // odd group: private rule
        assert_eq!(get(0x0009_1001), Some(Code::Remove));
        assert_eq!(get(0x0018_0050), None);
        let opts = entries(&[
            AnnexOption::RetainLongModifiedDates,
            AnnexOption::RetainPatientCharacteristics,
        ])
        .unwrap_or_default();
        let idx = Index::new(opts);
        assert_eq!(idx.get(0x0008_0020).map(|e| e.code), Some(Code::Clean));
        assert_eq!(idx.get(0x0010_1010).map(|e| e.code), Some(Code::Keep));
    }

    #[test]
    fn composite_actions() {
        assert_eq!(resolve_basic("X/Z", true), Some(Code::Zero));
        assert_eq!(resolve_basic("X/Z", false), Some(Code::Remove));
        assert_eq!(resolve_basic("X/Z/D", true), Some(Code::Dummy));
        assert_eq!(resolve_basic("Z/D", false), Some(Code::Zero));
        assert_eq!(resolve_basic("X/Z/U*", true), Some(Code::Uid));
        assert_eq!(resolve_basic("Q", true), None);
        assert_eq!(
            AnnexOption::parse("Retain_Long_Modified_Dates_Option"),
            Some(AnnexOption::RetainLongModifiedDates)
        );
        assert_eq!(
            Pattern::parse("(60XX,3000)"),
            Some(Pattern::Mask {
                mask: 0xFF00_FFFF,
                value: 0x6000_3000
            })
        );
    }
}
