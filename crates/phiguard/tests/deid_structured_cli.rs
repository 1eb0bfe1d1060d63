//! `phiguard deid` on structured inputs, end to end through the binary: a mixed folder leaks
//! none of its identifying values into outputs, output names, the report or stderr, while codes
//! and measurements survive; a malformed file fails the whole run with an error naming the input
//! and the position, and leaves nothing behind; `--suggest` proposes a config that validates
//! and drives a run. Fixtures: tests/data/cross and crates/dicom/tests/data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cross() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cross")
}

fn phiguard(work: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", work.join("home"))
        .output()
        .unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// Every file under `dir` (relative name, bytes).
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

/// The identifying values of the fixture's patient, read from its CSV (not typed in here).
fn identifying() -> Vec<String> {
    let text = std::fs::read_to_string(cross().join("patients.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = Vec::new();
    for line in lines {
        for (h, v) in header.iter().zip(line.split(',')) {
            if [
                "BIRTHDATE",
                "SSN",
                "FIRST",
                "LAST",
                "ADDRESS",
                "CITY",
                "ZIP",
                "Id",
            ]
            .contains(h)
            {
                out.push(v.to_string());
                // The HL7 copy is upper case, its dates compact.
                out.push(v.to_uppercase());
                out.push(v.replace('-', ""));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_mixed_folder_leaks_nothing_anywhere_and_keeps_codes() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let key = work.path().join("k.key");
    let res = phiguard(
        work.path(),
        &[
            os("deid"),
            os("--profile"),
            os("safe-harbor"),
            os("--no-audit"),
            os("--key-file"),
            key.as_os_str(),
            cross().as_os_str(),
            os("--output"),
            out.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{stderr}");
    let mut all = Vec::new();
    files(&out, &mut all);
    // Every format made it through: FHIR, HL7, two CSV tables, the README, the report pair.
    assert!(
        all.len() >= 7,
        "{:?}",
        all.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    let mut haystack = stderr.clone();
    haystack.push_str(&String::from_utf8_lossy(&res.stdout));
    for (name, bytes) in &all {
        haystack.push_str(name);
        haystack.push('\n');
        haystack.push_str(&String::from_utf8_lossy(bytes));
    }
    let secrets = identifying();
    assert!(secrets.len() >= 8);
    for s in &secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "an identifying value of the fixture survived"
        );
    }
    // The HL7 phone number and the encounter's full timestamp.
    assert!(!haystack.contains("3014477"));
    assert!(!haystack.contains("20200314093000"));
    // Codes and measurements survive: LOINC 718-7 and its value, the SNOMED encounter code.
    let get = |suffix: &str| {
        let (_, b) = all.iter().find(|(n, _)| n.ends_with(suffix)).unwrap();
        String::from_utf8_lossy(b).into_owned()
    };
    assert!(get(".hl7").contains("718-7^Hemoglobin^LN"));
    assert!(get(".hl7").contains("|13.2|g/dL|"));
    assert!(get("bundle.json").contains("\"718-7\""));
    assert!(get("bundle.json").contains("13.2"));
    assert!(get("encounters.csv").contains("185349003"));
    // The report says what ran.
    let report: serde_json::Value = serde_json::from_str(&get("deid-report.json")).unwrap();
    assert_eq!(report["profile"], "safe-harbor");
    let by_format = &report["files_by_format"];
    for f in ["fhir", "hl7", "csv"] {
        assert!(by_format[f].as_u64().unwrap_or(0) >= 1, "{by_format}");
    }
}

#[test]
fn a_truncated_dicom_fails_the_run_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(cross().join("patients.csv"), input.join("patients.csv")).unwrap();
    let dcm = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dicom/tests/data/MR_small.dcm"),
    )
    .unwrap();
    std::fs::write(input.join("zz-study.dcm"), &dcm[..dcm.len() / 3]).unwrap();
    let out = work.path().join("out");
    let key = work.path().join("k.key");
    let res = phiguard(
        work.path(),
        &[
            os("deid"),
            os("--profile"),
            os("safe-harbor"),
            os("--no-audit"),
            os("--jobs"),
            os("1"),
            os("--key-file"),
            key.as_os_str(),
            input.as_os_str(),
            os("--output"),
            out.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(!res.status.success());
    assert!(stderr.contains("input 2"), "{stderr}");
    assert!(stderr.contains("dicom"), "{stderr}");
    assert!(
        stderr.contains("offset") || stderr.contains("byte"),
        "the error names a position: {stderr}"
    );
    // Nothing half-written: no output file, no report (an empty folder at most).
    let mut left = Vec::new();
    if out.exists() {
        files(&out, &mut left);
    }
    assert!(
        left.is_empty(),
        "{:?}",
        left.iter().map(|l| &l.0).collect::<Vec<_>>()
    );
    for s in identifying() {
        assert!(!stderr.contains(s.as_str()));
    }
}

#[test]
fn suggest_proposes_a_config_that_validates_and_runs() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("proposed.toml");
    let res = phiguard(
        work.path(),
        &[
            os("deid"),
            os("--suggest"),
            cross().join("patients.csv").as_os_str(),
            cross().join("encounters.csv").as_os_str(),
            os("--output"),
            cfg.as_os_str(),
        ],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    // One rule per column of each table, table-qualified.
    for (table, header) in [
        (
            "patients",
            "Id,BIRTHDATE,SSN,FIRST,LAST,GENDER,ADDRESS,CITY,STATE,ZIP",
        ),
        ("encounters", "Id,START,STOP,PATIENT,CODE,DESCRIPTION"),
    ] {
        for col in header.split(',') {
            assert!(
                text.contains(&format!("select = \"{table}.{col}\"")),
                "no rule for {table}.{col}"
            );
        }
    }
    assert!(text.contains("{ select = \"patients.SSN\", action = \"remove\" }"));
    assert!(text.contains("{ select = \"encounters.CODE\", action = \"keep\" }"));
    for s in identifying() {
        assert!(!text.contains(s.as_str()), "a sampled value was written");
    }
    // It drives a run.
    let out = work.path().join("out");
    let key = work.path().join("k.key");
    let res = phiguard(
        work.path(),
        &[
            os("deid"),
            os("--config"),
            cfg.as_os_str(),
            os("--no-audit"),
            os("--key-file"),
            key.as_os_str(),
            cross().join("patients.csv").as_os_str(),
            os("--output"),
            out.as_os_str(),
        ],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let csv = std::fs::read_to_string(out.join("patients.csv")).unwrap();
    assert!(!csv.contains("999-41-5522"));
    // A non-CSV input is refused.
    let res = phiguard(
        work.path(),
        &[
            os("deid"),
            os("--suggest"),
            cross().join("adt.hl7").as_os_str(),
            os("--output"),
            os("-"),
        ],
    );
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("hl7"));
}

#[test]
fn the_review_sample_spans_formats_and_a_seed_reproduces_it() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("k.key");
    let run = |name: &str, seed: &str| -> serde_json::Value {
        let out = work.path().join(name);
        let res = phiguard(
            work.path(),
            &[
                os("deid"),
                os("--profile"),
                os("safe-harbor"),
                os("--no-audit"),
                os("--review-sample"),
                os("8"),
                os("--review-seed"),
                os(seed),
                os("--key-file"),
                key.as_os_str(),
                cross().as_os_str(),
                os("--output"),
                out.as_os_str(),
            ],
        );
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let md = std::fs::read_to_string(out.join("deid-report.md")).unwrap();
        assert!(md.contains("## Review sample"), "{md}");
        serde_json::from_str(&std::fs::read_to_string(out.join("deid-report.json")).unwrap())
            .unwrap()
    };
    let a = run("a", "42");
    let b = run("b", "42");
    let items = a["tally"]["review"].as_array().unwrap();
    assert_eq!(items.len(), 8);
    assert_eq!(a["review_seed"], 42);
    assert_eq!(
        a["tally"]["review"], b["tally"]["review"],
        "same seed, same sample"
    );
    for i in items {
        assert!(i["file"].as_str().is_some_and(|f| !f.is_empty()), "{i}");
        assert!(i["rule"].as_str().is_some_and(|r| !r.is_empty()), "{i}");
        assert!(
            i["outcome"] == "replaced" || i["outcome"] == "removed",
            "{i}"
        );
    }
    // Over a few seeds, the sample draws from more than one file.
    let mut files = std::collections::BTreeSet::new();
    for seed in ["1", "2", "3", "4"] {
        let r = run(&format!("s{seed}"), seed);
        for i in r["tally"]["review"].as_array().unwrap() {
            files.insert(i["file"].as_str().unwrap().to_string());
        }
    }
    assert!(files.len() >= 2, "{files:?}");
}

/// One NDJSON export, or one HL7 batch file, and two cores: its records are shared out between
/// threads, and the output and the review sample are the same as on one thread.
#[test]
fn one_big_file_uses_the_spare_threads_and_writes_the_same() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("k.key");
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cross().join("bundle.json")).unwrap()).unwrap();
    let mut nd = String::new();
    for _ in 0..40 {
        for e in bundle["entry"].as_array().unwrap() {
            nd.push_str(&serde_json::to_string(&e["resource"]).unwrap());
            nd.push('\n');
        }
    }
    let mut hl7 = Vec::new();
    let adt = std::fs::read(cross().join("adt.hl7")).unwrap();
    // Enough messages for several chunks (`phiguard_hl7::CHUNK_MESSAGES` each).
    for _ in 0..3 * 256 + 10 {
        hl7.extend_from_slice(&adt);
        if !adt.ends_with(b"\r") && !adt.ends_with(b"\n") {
            hl7.push(b'\r');
        }
    }
    let folders = [("export.ndjson", nd.into_bytes()), ("feed.hl7", hl7)];
    for (name, bytes) in &folders {
        let input = work.path().join(format!("in-{name}"));
        std::fs::create_dir_all(&input).unwrap();
        std::fs::write(input.join(name), bytes).unwrap();
    }
    let run = |name: &str, file: &str, jobs: &str| -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
        let input = work.path().join(format!("in-{file}"));
        let out = work.path().join(name);
        let res = phiguard(
            work.path(),
            &[
                os("deid"),
                os("--profile"),
                os("shifted"),
                os("--no-audit"),
                os("--review-sample"),
                os("8"),
                os("--review-seed"),
                os("5"),
                os("--jobs"),
                os(jobs),
                os("--key-file"),
                key.as_os_str(),
                input.as_os_str(),
                os("--output"),
                out.as_os_str(),
            ],
        );
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("deid-report.json")).unwrap())
                .unwrap();
        let mut outputs = Vec::new();
        files(&out, &mut outputs);
        outputs.retain(|(p, _)| p.ends_with(".ndjson") || p.ends_with(".hl7"));
        let outputs = outputs
            .into_iter()
            .map(|(p, b)| (p.rsplit('/').next().unwrap_or_default().to_string(), b))
            .collect();
        (outputs, report)
    };
    for (file, _) in &folders {
        let (one, r1) = run(&format!("one-{file}"), file, "1");
        let (two, r2) = run(&format!("two-{file}"), file, "2");
        assert_eq!(one.len(), 1, "{file}");
        assert_eq!(one, two, "{file}: the same output on one thread and on two");
        assert_eq!(r1["tally"]["review"].as_array().unwrap().len(), 8, "{file}");
        assert_eq!(
            r1["tally"], r2["tally"],
            "{file}: the same counts and review sample"
        );
    }
}
