//! Every `phiguard deid` run leaves an audit record that holds fingerprints and counts, never
//! PHI; when the record cannot be written the run fails and leaves no output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn phiguard(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .env("PHIGUARD_ACTOR", "analyst-7")
        .output()
        .expect("run phiguard")
}

const NOTES: [&str; 2] = [
    "Patient Margaret Hollis (MRN 4839201, DOB 02/11/1951) seen by Dr. Alan Whitcombe on 03/14/2024; call 617-555-0142.",
    "Paciente Julián Ferrer Montalbán, NHC 776120, ingresa el 5 de marzo de 2022. Domicilio: Calle Río Tajo 14, 28901 Getafe.",
];

#[test]
fn a_run_is_recorded_without_phi_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // the file name itself carries PHI, as exports often do
    let input = dir.path().join("Margaret_Hollis_4839201.jsonl");
    let lines: Vec<String> = NOTES
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("n{i}"), "text": t}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = phiguard(
        &[
            "deid",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        &home,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("recorded in the audit trail"));

    let export = dir.path().join("audit.jsonl");
    let o = phiguard(
        &["audit", "export", "--output", export.to_str().unwrap()],
        &home,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = phiguard(&["audit", "public-key"], &home);
    let key = String::from_utf8(key.stdout).unwrap();
    let o = phiguard(
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--public-key",
            key.trim(),
        ],
        &home,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    let trail = std::fs::read_to_string(&export).unwrap();
    assert!(
        trail.contains("\"deid.run\"") && trail.contains("analyst-7"),
        "{trail}"
    );
    // the input's fingerprint is there, its name and content are not
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&input).unwrap()))
    };
    assert!(trail.contains(&digest));
    for needle in [
        "Margaret",
        "Hollis",
        "4839201",
        "Whitcombe",
        "617-555-0142",
        "03/14/2024",
        "Julián",
        "Montalbán",
        "776120",
        "Getafe",
        "28901",
        "Río Tajo",
    ] {
        assert!(!trail.contains(needle), "audit trail holds {needle:?}");
    }
    // and phiguard's own detector finds no identifier in any record
    let detector = phiguard_detect::Detector::new();
    for line in trail.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(record) = v.get("record") else {
            continue;
        };
        let mut strings = Vec::new();
        collect_strings(record, &mut strings);
        for s in strings {
            let found: Vec<_> = detector
                .detect(&s)
                .into_iter()
                .filter(|sp| sp.category != phiguard_detect::Category::Date)
                .collect();
            assert!(
                found.is_empty(),
                "the detector flags {:?} in an audit record",
                &s
            );
        }
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[test]
fn no_output_without_its_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let input = dir.path().join("notes.jsonl");
    std::fs::write(
        &input,
        serde_json::json!({"id": "a", "text": NOTES[0]}).to_string() + "\n",
    )
    .unwrap();
    // an audit store that cannot be opened: its folder is a file
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let store = format!("sqlite:{}", blocker.join("audit.db").display());
    let out = dir.path().join("out.jsonl");
    let o = phiguard(
        &[
            "deid",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--audit-store",
            &store,
        ],
        &home,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("audit trail"), "{err}");
    assert!(!err.contains("Hollis") && !err.contains("4839201"), "{err}");
    assert!(!out.exists(), "output left behind without its audit record");
    assert!(!dir.path().join("out.jsonl.report.json").exists());
}
