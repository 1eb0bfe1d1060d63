//! One patient, three formats, separate runs, one key: the patient's pseudonym and date shift
//! are the same in the FHIR bundle, the CSV tables and the HL7 message; intervals between the
//! patient's dates survive; another key gives other values. Fixture: tests/data/cross.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PATIENT: &str = "5d8e2c1a-3b4f-4a6e-9c7d-1e2f3a4b5c6d";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cross")
        .join(name)
}

/// Runs `phiguard deid --profile P INPUT --output DIR` with `key`; returns DIR.
fn deid(work: &Path, key: &Path, input: &str, profile: &str, tag: &str) -> PathBuf {
    let out = work.join(format!("out-{tag}-{input}"));
    let res = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(["deid", "--profile", profile, "--no-audit", "--key-file"])
        .arg(key)
        .arg(fixture(input))
        .arg("--output")
        .arg(&out)
        .env("PHIGUARD_HOME", work.join("home"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "deid {input} failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

fn day(s: &str) -> i64 {
    // Days since 1970-01-01 of `YYYY-MM-DD` or `YYYYMMDD` (civil-from-days inverse).
    let digits: String = s.chars().filter(char::is_ascii_digit).take(8).collect();
    assert_eq!(digits.len(), 8, "not a full date: {s}");
    let y: i64 = digits[..4].parse().unwrap();
    let m: i64 = digits[4..6].parse().unwrap();
    let d: i64 = digits[6..8].parse().unwrap();
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Seen {
    fhir_patient: String,
    fhir_ref: String,
    fhir_encounter: String,
    fhir_observation: String,
    csv_patient: String,
    csv_enc_patient: String,
    csv_encounter: String,
    hl7_patient: String,
    hl7_admit: String,
    hl7_observation: String,
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            l.split(',')
                .map(|c| c.trim_matches('"').to_string())
                .collect()
        })
        .collect()
}

fn column(rows: &[Vec<String>], name: &str) -> String {
    let i = rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows[1][i].clone()
}

fn run_all(work: &Path, key: &Path, tag: &str) -> Seen {
    let f = deid(work, key, "bundle.json", "shifted", tag);
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.join("bundle.json")).unwrap()).unwrap();
    let entry = |i: usize| &bundle["entry"][i]["resource"];
    let p = deid(work, key, "patients.csv", "shifted", tag);
    let e = deid(work, key, "encounters.csv", "shifted", tag);
    let h = deid(work, key, "adt.hl7", "shifted", tag);
    let patients = csv_rows(&p.join("patients.csv"));
    let encounters = csv_rows(&e.join("encounters.csv"));
    let hl7 = std::fs::read_to_string(h.join("adt.hl7")).unwrap();
    let seg = |name: &str| -> Vec<String> {
        hl7.split(['\r', '\n'])
            .find(|s| s.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} segment"))
            .split('|')
            .map(str::to_string)
            .collect()
    };
    let pid = seg("PID");
    let pv1 = seg("PV1");
    let obx = seg("OBX");
    Seen {
        fhir_patient: entry(0)["id"].as_str().unwrap().to_string(),
        fhir_ref: entry(1)["subject"]["reference"]
            .as_str()
            .unwrap()
            .to_string(),
        fhir_encounter: entry(1)["period"]["start"].as_str().unwrap().to_string(),
        fhir_observation: entry(2)["effectiveDateTime"].as_str().unwrap().to_string(),
        csv_patient: column(&patients, "Id"),
        csv_enc_patient: column(&encounters, "PATIENT"),
        csv_encounter: column(&encounters, "START"),
        hl7_patient: pid[3].split('^').next().unwrap().to_string(),
        hl7_admit: pv1[44].clone(),
        hl7_observation: obx[14].clone(),
    }
}

#[test]
fn one_patient_one_pseudonym_and_one_shift_across_formats() {
    let work = tempfile::tempdir().unwrap();
    let key_a = work.path().join("a.key");
    let key_b = work.path().join("b.key");
    std::fs::write(&key_a, format!("{}\n", "11".repeat(32))).unwrap();
    std::fs::write(&key_b, format!("{}\n", "22".repeat(32))).unwrap();
    #[cfg(unix)]
    for k in [&key_a, &key_b] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(k, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let a = run_all(work.path(), &key_a, "a");
    // One pseudonym, and it is not the source id.
    assert_ne!(a.fhir_patient, PATIENT);
    assert!(
        a.fhir_ref.ends_with(&a.fhir_patient),
        "reference {} vs id {}",
        a.fhir_ref,
        a.fhir_patient
    );
    assert_eq!(a.csv_patient, a.fhir_patient);
    assert_eq!(a.csv_enc_patient, a.fhir_patient);
    assert_eq!(a.hl7_patient, a.fhir_patient);
    // One date shift: the encounter day moved by the same number of days everywhere.
    let shift = day(&a.fhir_encounter) - day("2020-03-14");
    assert_ne!(shift, 0);
    assert_eq!(day(&a.csv_encounter) - day("2020-03-14"), shift);
    assert_eq!(day(&a.hl7_admit) - day("20200314"), shift);
    // Intervals kept: the observation is still 6 days after the encounter.
    assert_eq!(day(&a.fhir_observation) - day(&a.fhir_encounter), 6);
    assert_eq!(day(&a.hl7_observation) - day(&a.hl7_admit), 6);
    // Times of day are kept by a shift.
    assert!(
        a.fhir_encounter.ends_with("T09:30:00-04:00"),
        "{}",
        a.fhir_encounter
    );

    // Same key again: the same values.
    let again = run_all(work.path(), &key_a, "a2");
    assert_eq!(again.fhir_patient, a.fhir_patient);
    assert_eq!(again.hl7_admit, a.hl7_admit);

    // Another key: other values.
    let b = run_all(work.path(), &key_b, "b");
    assert_ne!(b.fhir_patient, a.fhir_patient);
    assert_eq!(b.csv_patient, b.fhir_patient);
    assert_eq!(b.hl7_patient, b.fhir_patient);
    let shift_b = day(&b.fhir_encounter) - day("2020-03-14");
    assert_ne!(
        shift_b, shift,
        "keys 11.. and 22.. happen to give the same shift"
    );
    assert_eq!(day(&b.hl7_admit) - day("20200314"), shift_b);
}
