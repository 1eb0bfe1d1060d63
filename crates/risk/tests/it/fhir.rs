//! FHIR Patient resources flattened into a table.

use phiguard_risk::{RiskConfig, assess};

use crate::data;

#[test]
fn ndjson_patients_by_gender_birth_year_zip3() {
    // (female,1980,021) ×2, (male,1980,021) ×2, (male,1975,100) ×2 (one inside a Bundle),
    // (female,no birth date,100) ×1; the Observation and Encounter are skipped.
    let cfg = RiskConfig::new(&data("patients.ndjson"), &["gender", "birthYear", "zip3"]);
    let r = assess(&cfg).unwrap();
    assert_eq!(r.records_read, 7);
    assert_eq!(r.measures.equivalence_classes, 4);
    assert_eq!(r.measures.k, 1);
    assert_eq!(r.measures.sample_uniques, 1);
    // Full birth date and ZIP: all 7 are unique.
    let cfg = RiskConfig::new(&data("patients.ndjson"), &["birthDate", "postalCode"]);
    assert_eq!(assess(&cfg).unwrap().measures.sample_uniques, 7);
}

#[test]
fn invalid_json_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.ndjson");
    std::fs::write(
        &p,
        "{\"resourceType\":\"Patient\",\"gender\":\"male\"}\n{\"resourceType\": SECRET\n",
    )
    .unwrap();
    let e = assess(&RiskConfig::new(&p, &["gender"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && !e.contains("SECRET"), "{e}");
}

#[test]
fn synthea_bundles_folder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/structured/fhir/synthea-r4-smart");
    if !dir.is_dir() {
        eprintln!("note: {} absent, skipping", dir.display());
        return;
    }
    let mut cfg = RiskConfig::new(&dir, &["gender", "birthYear", "zip3"]);
    cfg.hierarchies = vec![
        ("birthYear".into(), "builtin:year".into()),
        ("zip3".into(), "builtin:zip".into()),
    ];
    cfg.target_k = Some(2);
    cfg.max_suppression = 0.05;
    let r = assess(&cfg).unwrap();
    // As many records as Patient entries in the bundles, counted independently.
    let mut patients = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        patients += v["entry"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["resource"]["resourceType"] == "Patient")
                    .count()
            })
            .unwrap_or(0);
    }
    assert!(patients > 0);
    assert_eq!(r.records_read, patients);
    assert!(r.search.as_ref().unwrap().reached);
    eprintln!(
        "synthea: levels {:?}, k {}, classes {}, suppressed {}",
        r.search.unwrap().chosen_levels,
        r.measures.k,
        r.measures.equivalence_classes,
        r.suppressed_records
    );
}
