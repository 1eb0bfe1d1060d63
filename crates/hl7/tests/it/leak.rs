//! The leak test: identifying values are collected from the INPUT by structure (where the
//! standard puts names, addresses, phones, SSNs, record numbers and dates), with a list written
//! here independently of the crate's table, and none may appear in the safe-harbor output.
//! Codes and measurements must survive.

use std::collections::BTreeSet;

use phiguard_hl7::{Segment, parse_segments};
use phiguard_rules::ProfileName;

use crate::{all_files, run};

/// (segment, field, components holding identifying values; empty = every component).
const NAMES: &[(&str, usize)] = &[
    ("PID", 5),
    ("PID", 6),
    ("PID", 9),
    ("NK1", 2),
    ("NK1", 30),
    ("GT1", 3),
    ("GT1", 4),
    ("IN1", 16),
    ("IN2", 7),
    ("MRG", 7),
    ("PRD", 2),
    ("CTD", 2),
    ("CON", 24),
    ("CON", 30),
    ("IN2", 49),
    ("IN2", 52),
    ("GT1", 45),
];
const PROVIDERS: &[(&str, usize)] = &[
    ("PV1", 7),
    ("PV1", 8),
    ("PV1", 9),
    ("PV1", 17),
    ("ORC", 10),
    ("ORC", 11),
    ("ORC", 12),
    ("OBR", 16),
    ("OBR", 28),
    ("OBX", 16),
    ("AIP", 3),
    ("RXA", 10),
    ("PR1", 11),
    ("PR1", 12),
    ("ROL", 4),
    ("PRT", 5),
    ("EVN", 5),
    ("FT1", 20),
    ("FT1", 21),
    ("FT1", 24),
    ("NTE", 5),
    ("DG1", 16),
    ("PD1", 4),
    ("TXA", 9),
    ("TXA", 10),
    ("TXA", 11),
];
const ADDRESSES: &[(&str, usize)] = &[
    ("PID", 11),
    ("NK1", 4),
    ("GT1", 5),
    ("IN1", 19),
    ("ROL", 11),
    ("PRT", 14),
    ("CTD", 3),
    ("PRD", 3),
    ("NK1", 32),
];
const PHONES: &[(&str, usize)] = &[
    ("PID", 13),
    ("PID", 14),
    ("NK1", 5),
    ("NK1", 6),
    ("GT1", 6),
    ("GT1", 7),
    ("ROL", 12),
    ("PRT", 15),
    ("CTD", 5),
    ("PRD", 5),
    ("NK1", 31),
    ("PID", 40),
];
const SSNS: &[(&str, usize)] = &[("PID", 19), ("GT1", 12), ("IN2", 2)];
const IDS: &[(&str, usize)] = &[
    ("PID", 2),
    ("PID", 3),
    ("PID", 4),
    ("PID", 18),
    ("MRG", 1),
    ("PV1", 19),
    ("ORC", 2),
    ("ORC", 3),
    ("OBR", 2),
    ("OBR", 3),
    ("GT1", 2),
    ("NK1", 12),
    ("PV1", 50),
];
const DATES: &[(&str, usize)] = &[
    ("PID", 7),
    ("PID", 29),
    ("EVN", 2),
    ("EVN", 6),
    ("MSH", 7),
    ("PV1", 44),
    ("PV1", 45),
    ("OBR", 7),
    ("OBR", 22),
    ("OBX", 14),
    ("NK1", 16),
    ("GT1", 8),
    ("IN1", 18),
    ("RXA", 3),
    ("TXA", 4),
    ("DG1", 5),
    ("PR1", 5),
    ("AL1", 6),
    ("SPM", 17),
    ("ORC", 9),
    ("NK1", 8),
];

fn leaves<'a>(
    segs: &'a [Segment],
    seg: &str,
    field: usize,
) -> impl Iterator<Item = ((u16, u16, u16), String)> + 'a {
    let id = seg.as_bytes().to_vec();
    segs.iter()
        .filter(move |s| s.id.as_slice() == id.as_slice())
        .flat_map(move |s| s.leaves(field))
}

/// Identifying values of `segs`, by structure.
fn identifying(segs: &[Segment]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut values = BTreeSet::new();
    let mut dates = BTreeSet::new();
    let mut add = |v: &str| {
        let v = v.trim();
        // Numbers of four digits or fewer are not checked: they collide with codes (an
        // equipment code equal to a visit number) and identify no one alone.
        let short_number = v.len() <= 4 && v.bytes().all(|b| b.is_ascii_digit());
        if v.chars().count() >= 3 && v.chars().any(char::is_alphanumeric) && !short_number {
            values.insert(v.to_string());
        }
    };
    for &(s, f) in NAMES {
        for ((_, c, _), v) in leaves(segs, s, f) {
            if c <= 3 {
                add(&v);
            }
        }
    }
    for &(s, f) in PROVIDERS {
        for ((_, c, _), v) in leaves(segs, s, f) {
            if (2..=3).contains(&c) {
                add(&v);
            }
        }
    }
    for &(s, f) in ADDRESSES {
        for ((_, c, _), v) in leaves(segs, s, f) {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            match c {
                1 | 3 => add(&v),
                5 if digits.len() >= 5 => add(&v),
                _ => {}
            }
        }
    }
    for &(s, f) in PHONES {
        for ((_, c, _), v) in leaves(segs, s, f) {
            let digits = v.chars().filter(char::is_ascii_digit).count();
            if (c == 1 || c == 7 || c == 12) && digits >= 7 || c == 4 && v.contains('@') {
                add(&v);
            }
        }
    }
    for &(s, f) in SSNS.iter().chain(IDS) {
        for ((_, c, _), v) in leaves(segs, s, f) {
            if c == 1 {
                add(&v);
            }
        }
    }
    for &(s, f) in DATES {
        for ((_, c, sub), v) in leaves(segs, s, f) {
            let d: String = v.chars().take_while(char::is_ascii_digit).collect();
            if c == 1 && sub == 1 && d.len() >= 8 {
                dates.insert(d[..8].to_string());
            }
        }
    }
    (values, dates)
}

/// Everything in the output, decoded, one leaf per line.
fn output_text(segs: &[Segment]) -> String {
    let mut t = String::new();
    for s in segs {
        for f in 1..s.fields.len() {
            for (_, v) in s.leaves(f) {
                t.push_str(&v);
                t.push('\n');
            }
        }
    }
    t
}

fn contains_word(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let s = from + i;
        let e = s + needle.len();
        let before = hay[..s]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = hay[e..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        if before && after {
            return true;
        }
        from = s + needle.len().max(1);
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[test]
fn no_identifier_survives_safe_harbor_and_codes_do() {
    let mut checked = 0;
    for path in all_files() {
        let input = std::fs::read(&path).unwrap();
        let segs = parse_segments(input.as_slice()).unwrap();
        let (values, dates) = identifying(&segs);
        let (out, _) = run(ProfileName::SafeHarbor, 9, &input);
        let out_segs = parse_segments(out.as_slice()).unwrap();
        let text = output_text(&out_segs);
        let leaves: BTreeSet<&str> = text.lines().map(str::trim).collect();
        let raw = String::from_utf8_lossy(&out);
        for v in &values {
            // Short values (3-4 characters) collide with codes: they must not survive as a
            // whole value; longer ones must not survive anywhere, even inside a longer value.
            let leaked =
                leaves.contains(v.as_str()) || v.chars().count() >= 5 && contains_word(&text, v);
            if std::env::var_os("HL7_LEAK_DEBUG").is_some() && leaked {
                eprintln!("{}: {v:?}", path.display());
                continue;
            }
            assert!(
                !leaked,
                "{}: identifying value survived ({} chars)",
                path.display(),
                v.len()
            );
            checked += 1;
        }
        for d in &dates {
            if std::env::var_os("HL7_LEAK_DEBUG").is_some() && raw.contains(d.as_str()) {
                eprintln!("{}: date {d:?}", path.display());
                continue;
            }
            assert!(
                !raw.contains(d.as_str()),
                "{}: a full date survived",
                path.display()
            );
            checked += 1;
        }
        // Birth dates revealing an age over 89 lose the year too.
        for (i, s) in segs.iter().enumerate().filter(|(_, s)| &s.id == b"PID") {
            let born = s.leaves(7).first().map(|l| l.1.clone()).unwrap_or_default();
            if let Ok(y) = born.get(..4).unwrap_or("").parse::<i32>()
                && 2026 - y >= 90
                && born.len() >= 8
            {
                assert!(
                    out_segs[i].leaves(7).is_empty(),
                    "{}: birth year over 89 kept",
                    path.display()
                );
            }
        }
        // Codes and measurements survive.
        for (i, s) in segs.iter().enumerate().filter(|(_, s)| &s.id == b"OBX") {
            let o = &out_segs[i];
            assert_eq!(
                s.field(3),
                o.field(3),
                "{}: OBX-3 code changed",
                path.display()
            );
            assert_eq!(
                s.field(6),
                o.field(6),
                "{}: OBX-6 units changed",
                path.display()
            );
            if matches!(s.field(2), Some(b"NM" | b"CWE" | b"CE" | b"SN")) {
                assert_eq!(
                    s.field(5),
                    o.field(5),
                    "{}: OBX-5 value changed",
                    path.display()
                );
            }
        }
        for (i, s) in segs
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(&s.id, b"DG1" | b"AL1" | b"PR1"))
        {
            assert_eq!(
                s.field(3),
                out_segs[i].field(3),
                "{}: code changed",
                path.display()
            );
        }
    }
    assert!(checked > 100, "too few values checked: {checked}");
}

#[test]
fn limited_data_set_keeps_dates_and_places_but_not_names() {
    let input = b"MSH|^~\\&|A|B|C|D|20200101||ADT^A01|1|P|2.5\rPID|1||M1^^^H||DOE^JANE||19800214|F|||1 Main St^^Springfield^IL^62704||555-123-4567\r";
    let (out, _) = run(ProfileName::LimitedDataSet, 1, input);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("19800214") && out.contains("Springfield^IL^62704"),
        "{out}"
    );
    assert!(
        !out.contains("DOE") && !out.contains("Main St") && !out.contains("4567"),
        "{out}"
    );
}

#[test]
fn misplaced_people_in_coded_fields_are_removed() {
    // The HL7 v2.4 normative ORU example puts the providers in OBR-15 and OBR-30 (coded fields).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/python-hl7/ORU-R01_normative_sample.hl7");
    let input = std::fs::read(path).unwrap();
    let (out, tally) = run(ProfileName::SafeHarbor, 1, &input);
    let out = String::from_utf8_lossy(&out);
    for s in [
        "HIPPOCRATES",
        "PATRICIA",
        "444-44-4444",
        "555-55-5555",
        "EVERYWOMAN",
        "FERNWOOD",
    ] {
        assert!(!out.contains(s), "{s}");
    }
    assert!(out.contains("1554-5^GLUCOSE"));
    assert_eq!(tally.notes["hl7_code_field_not_coded_removed"], 2);
}
