//! The output parses again with the same structure: delimiter, quoting, header, BOM, line
//! endings; selectors and user rules; the report of uncovered columns.

use phiguard_rules::{Config, ProfileName};

use crate::{Table, config, data_dir, run};

#[test]
fn output_parses_again_with_the_same_shape() {
    for f in crate::csv_files(&data_dir()) {
        let input = std::fs::read(&f).unwrap();
        let stem = f.file_stem().and_then(|s| s.to_str());
        let (out, tally) = run(&config(ProfileName::SafeHarbor), 3, stem, &input).unwrap();
        let a = Table::parse(std::str::from_utf8(&input).unwrap());
        let b = Table::parse(&out);
        assert_eq!(a.header, b.header, "{}", f.display());
        assert_eq!(a.rows.len(), b.rows.len());
        assert!(b.rows.iter().all(|r| r.len() == a.header.len()));
        assert_eq!(tally.files, 1);
        // Same delimiter.
        assert_eq!(
            phiguard_tabular::sniff_delimiter(&input),
            phiguard_tabular::sniff_delimiter(out.as_bytes())
        );
        // De-identifying the output again (same key) parses and keeps the shape.
        let (again, _) = run(&config(ProfileName::SafeHarbor), 3, stem, out.as_bytes()).unwrap();
        assert_eq!(Table::parse(&again).rows.len(), a.rows.len());
    }
}

#[test]
fn bom_crlf_quotes_and_delimiter_are_kept() {
    let input = "\u{feff}Id;NOTE;CODE\r\np1;\"Seen by Dr. Maria Lopez; follow up\";\"A;1\"\r\np2;\"Line one\nline two\";B2\r\n";
    let (out, _) = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes()).unwrap();
    assert!(out.starts_with('\u{feff}'), "BOM dropped");
    assert!(out.contains("\r\n"));
    assert!(!out.contains("Lopez"));
    let t = Table::parse(&out);
    assert_eq!(t.header, ["Id", "NOTE", "CODE"]);
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[0][2], "A;1");
    assert_eq!(t.rows[1][1], "Line one\nline two");
    assert!(out.lines().next().unwrap().contains(';'));
}

#[test]
fn headerless_tables_are_processed_as_data() {
    // A first row of values is not taken for a header: it is de-identified like the rest.
    let input = "1;0-4;0-9\n2;0-4;0-9\n95;90-94;90-99\n";
    let (out, tally) = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes()).unwrap();
    assert_eq!(out, input, "codes and small numbers survive");
    assert_eq!(tally.records, 3);
    let cfg = Config::from_toml(
        "[csv]\noptions = [\"no-header\"]\nrules = [{ select = \"col1\", action = \"generalize:age\" }]\n",
    )
    .unwrap();
    let (out, _) = run(&cfg, 1, None, input.as_bytes()).unwrap();
    assert_eq!(out.lines().nth(2), Some("90+;90-94;90-99"));
}

#[test]
fn user_rules_come_first_and_table_selectors_apply_per_table() {
    let cfg = Config::from_toml(
        r#"
[csv]
rules = [
  { select = "patients.CITY", action = "keep" },
  { select = "*_NOTE", action = "redact" },
  { select = "score", action = "keep", name = "scores are safe" },
]
"#,
    )
    .unwrap();
    let input = "CITY,NURSE_NOTE,score\nSomerville,anything,12\n";
    let (out, tally) = run(&cfg, 1, Some("patients"), input.as_bytes()).unwrap();
    assert_eq!(out, "CITY,NURSE_NOTE,score\nSomerville,[REDACTED],12\n");
    assert_eq!(tally.rules["scores are safe"].values, 1);
    assert_eq!(tally.rules["csv.rules[0] patients.CITY"].values, 1);
    let (out, _) = run(&cfg, 1, Some("providers"), input.as_bytes()).unwrap();
    assert_eq!(out, "CITY,NURSE_NOTE,score\n,[REDACTED],12\n");
}

#[test]
fn uncovered_columns_are_decided_from_content_and_reported() {
    let mut input = String::from("Id,WHO,WHEN,MISC,AMT\n");
    let people = [
        "John Smith",
        "Mary Johnson",
        "Robert Brown",
        "Patricia Miller",
        "Michael Davis",
        "Linda Wilson",
    ];
    for (i, p) in people.iter().enumerate() {
        input.push_str(&format!(
            "{i},{p},2020-03-{:02},CODE-{i},{}.5\n",
            i + 10,
            i * 3
        ));
    }
    let (out, tally) = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes()).unwrap();
    for p in people {
        assert!(!out.contains(p));
    }
    let t = Table::parse(&out);
    assert!(t.column("WHEN").iter().all(|v| *v == "2020"));
    assert_eq!(t.column("AMT")[1], "3.5");
    let labels: Vec<&String> = tally.uncovered.keys().collect();
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("column WHO (mostly NAME")),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("column WHEN (ISO dates"))
    );
    assert!(labels.iter().any(|l| l.starts_with("column AMT (numbers")));
    // Labels hold column names and reasons, never values.
    for l in &labels {
        for p in people {
            assert!(!l.contains(p));
        }
    }
}

#[test]
fn configured_patient_column_keys_the_date_shift() {
    let cfg = Config::from_toml(
        "profile = \"shifted\"\n[csv]\npatient = \"visits.person\"\nrules = [{ select = \"person\", action = \"pseudonym\" }]\n",
    )
    .unwrap();
    let input = "person,VISIT_DATE\nA,2020-01-01\nA,2020-01-11\nB,2020-01-01\n";
    let (out, _) = run(&cfg, 7, Some("visits"), input.as_bytes()).unwrap();
    let t = Table::parse(&out);
    let d = t.column("VISIT_DATE");
    // Same patient: interval of ten days kept (both dates land in one month or the next).
    let diff = |a: &str, b: &str| {
        let (ya, yb) = (
            a[..4].parse::<i32>().unwrap(),
            b[..4].parse::<i32>().unwrap(),
        );
        time::Date::from_calendar_date(
            yb,
            time::Month::try_from(b[5..7].parse::<u8>().unwrap()).unwrap(),
            b[8..10].parse().unwrap(),
        )
        .unwrap()
        .to_julian_day()
            - time::Date::from_calendar_date(
                ya,
                time::Month::try_from(a[5..7].parse::<u8>().unwrap()).unwrap(),
                a[8..10].parse().unwrap(),
            )
            .unwrap()
            .to_julian_day()
    };
    assert_eq!(diff(d[0], d[1]), 10);
    // Another patient (almost surely) another offset.
    assert_ne!(d[0], d[2]);
}

#[test]
fn empty_input_gives_empty_output() {
    let (out, tally) = run(&config(ProfileName::SafeHarbor), 1, None, b"").unwrap();
    assert_eq!(out, "");
    assert_eq!(tally.records, 0);
    let (out, _) = run(&config(ProfileName::SafeHarbor), 1, None, b"Id,FIRST\n").unwrap();
    assert_eq!(out, "Id,FIRST\n");
}

#[test]
fn bad_options_are_config_errors_naming_the_option() {
    let cfg = Config::from_toml("[csv]\noptions = [\"delimiter=#\"]\n").unwrap();
    let e = phiguard_tabular::TabularDeid::new(&cfg)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("csv.options[0]"), "{e}");
}

#[test]
fn sniffing() {
    let patients = std::fs::read(data_dir().join("synthea/patients.csv")).unwrap();
    assert!(phiguard_tabular::sniff(&patients[..2048]));
    assert!(phiguard_tabular::sniff(
        &std::fs::read(data_dir().join("arx/test.csv")).unwrap()
    ));
    assert!(!phiguard_tabular::sniff(b"{\"resourceType\":\"Patient\"}"));
    assert!(!phiguard_tabular::sniff(b"MSH|^~\\&|SND|FAC\nPID|1||123\n"));
    assert!(phiguard_tabular::sniff(b"PAR1\x15\x04"));
}

#[test]
fn limited_data_set_keeps_dates_city_state_zip_and_removes_direct_identifiers() {
    let input = std::fs::read(data_dir().join("synthea/patients.csv")).unwrap();
    let (out, _) = run(
        &config(ProfileName::LimitedDataSet),
        2,
        Some("patients"),
        &input,
    )
    .unwrap();
    let a = Table::parse(std::str::from_utf8(&input).unwrap());
    let b = Table::parse(&out);
    for keep in ["BIRTHDATE", "DEATHDATE", "CITY", "STATE", "ZIP", "GENDER"] {
        assert_eq!(a.column(keep), b.column(keep), "{keep}");
    }
    for gone in [
        "SSN", "DRIVERS", "PASSPORT", "FIRST", "LAST", "ADDRESS", "LAT", "LON",
    ] {
        assert!(b.column(gone).iter().all(|v| v.is_empty()), "{gone}");
    }
    for (x, y) in a.column("Id").iter().zip(b.column("Id")) {
        assert_ne!(x, &y);
    }
}

#[test]
fn the_deidentifier_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<phiguard_tabular::TabularDeid>();
}

#[test]
fn ages_over_89_and_birth_dates_revealing_them() {
    let input = "sex;age;zipcode;BIRTHDATE\nMale;95;02155;1930-05-01\nFemale;42;03601;1980-02-03\n";
    let (out, tally) = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes()).unwrap();
    assert_eq!(
        out,
        "sex;age;zipcode;BIRTHDATE\nMale;90+;021;\nFemale;42;000;1980\n"
    );
    assert_eq!(tally.notes["birth_date_over_89_removed"], 1);
}
