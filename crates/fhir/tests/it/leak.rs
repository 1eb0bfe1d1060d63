//! No identifying value of the input survives safe-harbor de-identification; codes,
//! measurements and terminology text do. The values are collected from the input's structure,
//! never listed, so the same test runs on held-out files.

use std::collections::BTreeSet;

use base64::Engine as _;
use phiguard_rules::ProfileName;
use serde_json::Value;

use super::{inputs, parse_all, run_profile};

#[derive(Default, Debug)]
struct Secrets {
    words: BTreeSet<String>,
    /// Dates finer than the year: must not appear even inside a longer string.
    dates: BTreeSet<String>,
    /// States and countries: Safe Harbor keeps them.
    kept: BTreeSet<String>,
    exact: BTreeSet<String>,
    old_patients: usize,
}

fn is_date_with_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn collect(v: &Value, key: &str, s: &mut Secrets) {
    match v {
        Value::Object(m) => {
            if m.contains_key("resourceType")
                && let Some(id) = m.get("id").and_then(Value::as_str)
                && id.len() >= 8
            {
                s.exact.insert(id.to_string());
            }
            if m.get("resourceType").and_then(Value::as_str) == Some("Patient")
                && let Some(b) = m.get("birthDate").and_then(Value::as_str)
                && b.len() >= 4
                && b[..4].parse::<i32>().is_ok_and(|y| 2026 - y >= 90)
            {
                s.old_patients += 1;
            }
            let person_name = m.contains_key("family") || m.contains_key("given");
            if person_name {
                for k in ["family", "given"] {
                    for n in m.get(k).map(strings).unwrap_or_default() {
                        if n.chars().count() >= 3 {
                            s.words.insert(n.to_string());
                        }
                    }
                }
            }
            let address =
                m.contains_key("line") || m.contains_key("city") || m.contains_key("postalCode");
            if address && !person_name {
                for k in ["state", "country"] {
                    for n in m.get(k).map(strings).unwrap_or_default() {
                        s.kept.insert(n.to_string());
                    }
                }
                for k in ["line", "city", "district"] {
                    for n in m.get(k).map(strings).unwrap_or_default() {
                        if n.chars().count() >= 3 {
                            s.words.insert(n.to_string());
                        }
                    }
                }
                if let Some(z) = m.get("postalCode").and_then(Value::as_str)
                    && z.chars().filter(char::is_ascii_digit).count() >= 5
                {
                    s.exact.insert(z.to_string());
                }
            }
            if key == "telecom"
                && let Some(t) = m.get("value").and_then(Value::as_str)
            {
                s.exact.insert(t.to_string());
            }
            if key == "identifier"
                && let Some(t) = m.get("value").and_then(Value::as_str)
                && t.len() >= 4
                && !(t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()))
            {
                s.exact.insert(t.to_string());
            }
            if m.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.ends_with("mothersMaidenName"))
            {
                for n in m.get("valueString").map(strings).unwrap_or_default() {
                    s.words.insert(n.to_string());
                }
            }
            if let Some(u) = m.get("fullUrl").and_then(Value::as_str)
                && let Some(id) = u.strip_prefix("urn:uuid:")
            {
                s.exact.insert(id.to_string());
            }
            for (k, x) in m {
                if k == "text" || k == "div" || k == "data" {
                    continue; // free text: what the detector must find is not known by structure
                }
                collect(x, k, s);
            }
        }
        Value::Array(a) => {
            for x in a {
                collect(x, key, s);
            }
        }
        Value::String(t) if is_date_with_day(t) && key != "div" => {
            s.dates.insert(t[..10].to_string());
        }
        _ => {}
    }
}

/// Every string of the output, with base64 `data` decoded.
fn haystack(v: &Value, key: &str, out: &mut String) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                haystack(x, k, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                haystack(x, key, out);
            }
        }
        Value::String(s) => {
            if key == "data"
                && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s)
            {
                out.push_str(&String::from_utf8_lossy(&b));
            } else {
                out.push_str(s);
            }
            out.push('\n');
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        _ => {}
    }
}

fn contains_word(hay: &str, needle: &str) -> bool {
    let hay_l = hay.to_lowercase();
    let n = needle.to_lowercase();
    let mut from = 0;
    while let Some(i) = hay_l[from..].find(&n) {
        let s = from + i;
        let e = s + n.len();
        let before = hay_l[..s].chars().next_back();
        let after = hay_l[e..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        from = s + n.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// `needle` not inside a longer token: the characters around it are not letters, digits or
/// `-` (so an identifier `1234` is not found inside the LOINC code `1234-5`).
fn contains_token(hay: &str, needle: &str) -> bool {
    let edge = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '-');
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let s = from + i;
        let e = s + needle.len();
        if edge(hay[..s].chars().next_back()) && edge(hay[e..].chars().next()) {
            return true;
        }
        from = s + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn codes(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(c)), Some(Value::String(_))) =
                (m.get("code"), m.get("system"))
            {
                out.push(c.clone());
            }
            for x in m.values() {
                codes(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| codes(x, out)),
        _ => {}
    }
}

fn quantities(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(q) = m.get("valueQuantity").and_then(|q| q.get("value")) {
                out.push(q.to_string());
            }
            for x in m.values() {
                quantities(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| quantities(x, out)),
        _ => {}
    }
}

fn old_patients_with_birth_date(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            let here = usize::from(
                m.get("resourceType").and_then(Value::as_str) == Some("Patient")
                    && m.get("birthDate").is_some_and(|b| {
                        b.as_str()
                            .and_then(|s| s.get(..4))
                            .and_then(|y| y.parse::<i32>().ok())
                            .is_some_and(|y| 2026 - y >= 90)
                    }),
            );
            here + m.values().map(old_patients_with_birth_date).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(old_patients_with_birth_date).sum(),
        _ => 0,
    }
}

/// A number of 90 or more followed by "year" (`92 year-old`, `95 years`).
fn age_over_89(hay: &str) -> bool {
    let b = hay.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let n: u64 = hay[i..j].parse().unwrap_or(0);
            let rest = hay[j..].trim_start_matches([' ', '-']);
            if (90..=130).contains(&n)
                && (rest.starts_with("year") || rest.starts_with("yo ") || rest.starts_with("y/o"))
            {
                return true;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    false
}

#[test]
fn safe_harbor_leaves_no_identifier_and_keeps_codes() {
    let files = inputs();
    assert!(!files.is_empty());
    let mut checked = 0;
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let before = parse_all(&input);
        let out = run_profile(ProfileName::SafeHarbor, 1, &input);
        let after = parse_all(&out);
        assert_eq!(before.len(), after.len(), "{name}: record count");
        let mut secrets = Secrets::default();
        let mut hay = String::new();
        for v in &before {
            collect(v, "", &mut secrets);
        }
        for v in &after {
            haystack(v, "", &mut hay);
        }
        for w in secrets.words.difference(&secrets.kept) {
            assert!(
                !contains_word(&hay, w),
                "{name}: a name/address word survived (len {})",
                w.len()
            );
        }
        for x in &secrets.exact {
            assert!(
                !contains_token(&hay, x),
                "{name}: an identifier survived: {x}"
            );
        }
        for x in &secrets.dates {
            assert!(
                !hay.contains(x.as_str()),
                "{name}: a date finer than the year survived: {x}"
            );
        }
        assert!(!age_over_89(&hay), "{name}: an age over 89 survived");
        let old_after: usize = after.iter().map(old_patients_with_birth_date).sum();
        assert_eq!(
            old_after, 0,
            "{name}: a birth date revealing an age over 89 survived"
        );
        let (mut c_in, mut c_out) = (Vec::new(), Vec::new());
        before.iter().for_each(|v| codes(v, &mut c_in));
        after.iter().for_each(|v| codes(v, &mut c_out));
        assert_eq!(c_in, c_out, "{name}: codes changed");
        let (mut q_in, mut q_out) = (Vec::new(), Vec::new());
        before.iter().for_each(|v| quantities(v, &mut q_in));
        after.iter().for_each(|v| quantities(v, &mut q_out));
        assert_eq!(q_in, q_out, "{name}: measurements changed");
        checked += 1;
    }
    eprintln!("leak test: {checked} files");
}

#[test]
fn notes_lose_the_patient_name_but_keep_clinical_text() {
    let input =
        std::fs::read(super::data_dir().join("ms-samples/synthea-bundle-with-notes.json")).unwrap();
    let out = run_profile(ProfileName::SafeHarbor, 1, &input);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let mut hay = String::new();
    haystack(&v, "", &mut hay);
    assert!(hay.contains("[NAME]"), "note names not tagged");
    assert!(hay.contains("Chief Complaint") && hay.contains("Body Height"));
}
