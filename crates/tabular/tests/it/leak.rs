//! Leak test: every CSV file of the corpus (and of tests/data) through the safe-harbor profile.
//! The identifying values are collected from the INPUT by structure (column names a HIPAA
//! reader would recognise, UUID-shaped identifiers, date shapes), never from a list of strings,
//! so the same test runs on tables it has not seen.

use std::path::Path;

use phiguard_rules::ProfileName;

use crate::{Table, config, corpus, csv_files, data_dir, run, today};

/// What a column holds, by its header, as a reader of a HIPAA checklist would say.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Ident {
    Name,
    Street,
    City,
    Zip,
    Phone,
    Email,
    Number,
    Geo,
    Age,
    BirthDate,
}

fn ident(header: &str) -> Option<Ident> {
    let h = header.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    Some(match h.as_str() {
        "FIRST" | "LAST" | "MAIDEN" | "NAME" => Ident::Name,
        _ if h.ends_with("NAME") => Ident::Name,
        "BIRTHPLACE" => Ident::Street,
        _ if h.contains("ADDRESS") => Ident::Street,
        "CITY" | "COUNTY" => Ident::City,
        _ if h.contains("ZIP") || h.contains("POSTAL") => Ident::Zip,
        _ if h.contains("PHONE") || h.contains("FAX") => Ident::Phone,
        _ if h.contains("EMAIL") => Ident::Email,
        "SSN" | "DRIVERS" | "PASSPORT" | "MRN" => Ident::Number,
        "LAT" | "LON" | "LATITUDE" | "LONGITUDE" => Ident::Geo,
        "AGE" => Ident::Age,
        "BIRTHDATE" | "DOB" | "BIRTH_DATE" => Ident::BirthDate,
        _ => return None,
    })
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `needle` occurs in `hay` with no letter or digit right before or after it.
fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let s = from + i;
        let e = s + needle.len();
        let before = hay[..s].chars().next_back();
        let after = hay[e..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        from = s + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// The first of `needles` found in `hay` as a whole word (see [`contains_word`]), all
/// needles searched in one pass.
fn find_word<'a>(hay: &str, needles: &'a [(Ident, String)]) -> Option<&'a (Ident, String)> {
    let ac = aho_corasick::AhoCorasick::new(needles.iter().map(|(_, s)| s.as_str())).unwrap();
    for m in ac.find_overlapping_iter(hay) {
        let before = hay[..m.start()].chars().next_back();
        let after = hay[m.end()..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return Some(&needles[m.pattern().as_usize()]);
        }
    }
    None
}

/// A date finer than the year: `YYYY-MM-DD` or `M/D/YYYY`.
fn has_fine_date(s: &str) -> bool {
    let b = s.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    for i in 0..b.len() {
        if d(i)
            && d(i + 1)
            && d(i + 2)
            && d(i + 3)
            && b.get(i + 4) == Some(&b'-')
            && d(i + 5)
            && d(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && d(i + 8)
            && d(i + 9)
            && (i == 0 || !d(i - 1))
        {
            return true;
        }
        if (i == 0 || !d(i - 1)) && d(i) {
            let rest = &s[i..];
            let parts: Vec<&str> = rest.splitn(4, '/').collect();
            if parts.len() >= 3
                && parts[0].len() <= 2
                && parts[1].len() <= 2
                && parts[0].bytes().all(|c| c.is_ascii_digit())
                && parts[1].bytes().all(|c| c.is_ascii_digit())
                && parts[2].len() >= 4
                && parts[2].as_bytes()[..4].iter().all(u8::is_ascii_digit)
            {
                return true;
            }
        }
    }
    false
}

fn check_file(path: &Path) {
    check_file_with(path, &config(ProfileName::SafeHarbor));
}

fn check_file_with(path: &Path, cfg: &phiguard_rules::Config) {
    let name = path.display().to_string();
    let input = std::fs::read(path).unwrap();
    let table = path.file_stem().and_then(|s| s.to_str());
    let (out, tally) = run(cfg, 9, table, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text_in = String::from_utf8(input).unwrap();
    let tin = Table::parse(&text_in);
    let tout = Table::parse(&out);
    if tin.header != tout.header {
        // Only a first row that is data (a cell without a letter) may change.
        assert!(
            tin.header
                .iter()
                .any(|h| !h.chars().any(char::is_alphabetic)),
            "{name}: header changed"
        );
    }
    assert_eq!(tin.header.len(), tout.header.len(), "{name}");
    assert_eq!(tin.rows.len(), tout.rows.len(), "{name}: row count changed");
    assert!(tally.records as usize >= tin.rows.len(), "{name}");

    let mut secrets: Vec<(Ident, String)> = Vec::new();
    for (c, h) in tin.header.iter().enumerate() {
        let Some(kind) = ident(h) else { continue };
        for (r, row) in tin.rows.iter().enumerate() {
            let v = row[c].trim();
            if v.is_empty() {
                continue;
            }
            match kind {
                Ident::Age => {
                    if v.parse::<f64>().is_ok_and(|a| a >= 90.0) {
                        assert_ne!(tout.rows[r][c], v, "{name}: age over 89 kept (row {r})");
                    }
                }
                Ident::BirthDate => {
                    let o = tout.rows[r][c].trim();
                    assert!(
                        o.is_empty()
                            || (o.len() == 4
                                && o.parse::<i32>().is_ok_and(|y| today().year() - y < 90)),
                        "{name}: birth date row {r} not a year under 90 years ago"
                    );
                }
                Ident::Zip => {
                    if v.len() >= 5 {
                        secrets.push((kind, v.to_string()));
                    }
                }
                _ => {
                    secrets.push((kind, v.to_string()));
                    if kind == Ident::Name {
                        for tok in v.split_whitespace() {
                            if tok.chars().any(|c| c.is_ascii_digit()) && tok.len() >= 4 {
                                secrets.push((kind, tok.to_string()));
                            }
                        }
                    }
                }
            }
        }
    }
    // Every UUID-shaped identifier anywhere in the input.
    for row in &tin.rows {
        for v in row {
            if is_uuid(v.trim()) {
                secrets.push((Ident::Number, v.trim().to_string()));
            }
        }
    }
    secrets.sort_by(|a, b| a.1.cmp(&b.1));
    secrets.dedup_by(|a, b| a.1 == b.1);
    if let Some((kind, s)) = find_word(&out, &secrets) {
        panic!(
            "{name}: a {kind:?} value of the input survives ({} chars)",
            s.len()
        );
    }
    for (r, row) in tout.rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            assert!(
                !has_fine_date(v),
                "{name}: a date finer than the year in row {r}, column {}",
                tout.header[c]
            );
        }
    }

    // What must survive: codes, measurements, clinical text that names no one.
    for (c, h) in tin.header.iter().enumerate() {
        let hu = h.to_ascii_uppercase();
        let col_in: Vec<&str> = tin.rows.iter().map(|r| r[c].as_str()).collect();
        let col_out: Vec<&str> = tout.rows.iter().map(|r| r[c].as_str()).collect();
        if hu == "CODE" || hu == "REASONCODE" || hu == "SYSTEM" || hu == "UNITS" {
            assert_eq!(col_in, col_out, "{name}: codes in {h} changed");
        }
        if hu.contains("COST") || hu.contains("EXPENSES") || hu == "VALUE" || hu == "QUANTITY" {
            for (a, b) in col_in.iter().zip(&col_out) {
                if a.parse::<f64>().is_ok() {
                    assert_eq!(a, b, "{name}: measurement in {h} changed");
                }
            }
        }
        if hu == "DESCRIPTION" || hu == "REASONDESCRIPTION" {
            let same = col_in.iter().zip(&col_out).filter(|(a, b)| a == b).count();
            assert!(
                same * 100 >= col_in.len() * 95,
                "{name}: only {same} of {} clinical descriptions in {h} survive",
                col_in.len()
            );
        }
    }
}

#[test]
fn fixtures_leak_nothing() {
    let files = csv_files(&data_dir());
    assert!(files.len() >= 15);
    for f in files {
        check_file(&f);
    }
}

#[test]
fn corpus_leaks_nothing() {
    let Some(dir) = corpus() else { return };
    let files = csv_files(&dir);
    assert!(!files.is_empty());
    for f in files {
        check_file(&f);
    }
}

#[test]
#[should_panic(expected = "survives")]
fn the_leak_check_catches_a_kept_name() {
    let cfg = phiguard_rules::Config::from_toml(
        "[csv]\nrules = [{ select = \"FIRST\", action = \"keep\" }]\n",
    )
    .unwrap();
    check_file_with(&data_dir().join("synthea/patients.csv"), &cfg);
}

#[test]
#[should_panic(expected = "finer than the year")]
fn the_leak_check_catches_a_kept_date() {
    let cfg = phiguard_rules::Config::from_toml(
        "[csv]\nrules = [{ select = \"START\", action = \"keep\" }]\n",
    )
    .unwrap();
    check_file_with(&data_dir().join("synthea/conditions.csv"), &cfg);
}

#[test]
fn helpers_find_what_they_should() {
    assert!(has_fine_date("x 2020-03-14T10:00"));
    assert!(has_fine_date("on 3/14/2020"));
    assert!(!has_fine_date("2020"));
    assert!(!has_fine_date("8302-2"));
    assert!(contains_word("a,Somerville,b", "Somerville"));
    assert!(!contains_word("Somervilles", "Somerville"));
    let n = vec![
        (Ident::City, "Somerville".to_string()),
        (Ident::Zip, "02155".to_string()),
    ];
    assert!(find_word("x,Somervilles,021550", &n).is_none());
    assert!(find_word("x,Somervilles,02155", &n).is_some());
}
