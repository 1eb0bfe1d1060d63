#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `phiguard risk`: exit codes, JSON and Markdown reports, errors without values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../risk/tests/data")
        .join(name)
}

fn risk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .arg("risk")
        .args(args)
        .output()
        .unwrap()
}

fn test_args(qi: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        data("test.csv").display().to_string(),
        "--qi".into(),
        qi.into(),
        "--hierarchy".into(),
        format!("age={}", data("test_hierarchy_age.csv").display()),
        "--hierarchy".into(),
        format!("gender={}", data("test_hierarchy_gender.csv").display()),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(extra: &[&str]) -> Output {
    run_qi("age,gender,zipcode", extra)
}

fn run_qi(qi: &str, extra: &[&str]) -> Output {
    let args = test_args(qi, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    risk(&refs)
}

#[test]
fn json_report_with_search() {
    let out = run(&["--k", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["measures"]["k"], 3);
    assert_eq!(v["measures"]["equivalence_classes"], 2);
    assert_eq!(v["search"]["chosen_levels"], serde_json::json!([2, 0, 1]));
    assert_eq!(v["journalist_basis"]["basis"], "prosecutor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("81931") && !text.contains("\"male\""));
}

#[test]
fn fixed_levels_and_suppression() {
    let out = run(&[
        "--levels",
        "age=1,gender=0,zipcode=1",
        "--k",
        "2",
        "--max-suppression",
        "0.15",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["suppressed_records"], 1);
    assert_eq!(v["measures"]["k"], 2);
    assert_eq!(v["search"]["nodes_evaluated"], 1);
}

#[test]
fn unreachable_target_exits_4_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("risk.md");
    let out = run(&[
        "--k",
        "8",
        "--markdown",
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no generalisation reaches"));
    let md = std::fs::read_to_string(&out_path).unwrap();
    assert!(md.contains("**Target not reached.**"), "{md}");
    assert!(md.contains("| k-anonymity (smallest class) | 1 |"), "{md}");
}

#[test]
fn show_classes_lists_generalised_values() {
    let out = run_qi(
        "age,gender",
        &["--levels", "age=1", "--show-classes", "--markdown"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("| >=50 | female | 1 |"), "{md}");
}

#[test]
fn errors_name_the_line_never_the_value() {
    let out = risk(&[
        data("test_dirty.csv").to_str().unwrap(),
        "--qi",
        "age,gender",
        "--hierarchy",
        &format!("age={}", data("test_hierarchy_age.csv").display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("column 'age'"),
        "{err}"
    );
    assert!(!err.contains("4e") && !err.contains("7f"), "{err}");
    let out = run(&["--levels", "age"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["--levels", "age=9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("level 9"));
}

#[test]
fn adult_reaches_k5() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/structured/csv/arx");
    if !dir.join("adult.csv").is_file() {
        eprintln!("note: {} absent, skipping", dir.display());
        return;
    }
    let mut args = vec![
        dir.join("adult.csv").display().to_string(),
        "--qi".into(),
        "sex,age,race,marital-status,native-country".into(),
        "--sensitive".into(),
        "salary-class".into(),
        "--k".into(),
        "5".into(),
        "--max-suppression".into(),
        "0.01".into(),
    ];
    for q in ["sex", "age", "race", "marital-status", "native-country"] {
        args.push("--hierarchy".into());
        args.push(format!(
            "{q}={}",
            dir.join(format!("adult_hierarchy_{q}.csv")).display()
        ));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = risk(&refs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["measures"]["k"].as_u64().unwrap() >= 5);
    assert!(v["suppressed_records"].as_u64().unwrap() <= 301);
}

#[test]
fn fhir_patients() {
    let out = risk(&[
        data("patients.ndjson").to_str().unwrap(),
        "--qi",
        "gender,birthYear,zip3",
        "--k",
        "2",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records_read"], 7);
    assert!(v["measures"]["k"].as_u64().unwrap() >= 2);
}

#[test]
fn builtin_hierarchies_on_fhir() {
    // gender × birth year × ZIP3 with built-in bands: the two 1975 males (ZIP 100) and the
    // 1980 pairs already form classes of 2; the lone woman without a birth date needs suppression
    // or '*'.
    let out = risk(&[
        data("patients.ndjson").to_str().unwrap(),
        "--qi",
        "gender,birthYear,zip3",
        "--hierarchy",
        "birthYear=builtin:year",
        "--hierarchy",
        "zip3=builtin:zip",
        "--k",
        "2",
        "--max-suppression",
        "0.15",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["search"]["chosen_levels"], serde_json::json!([0, 0, 0]));
    assert_eq!(v["suppressed_records"], 1);
    assert_eq!(v["measures"]["k"], 2);
    let out = risk(&[
        data("test.csv").to_str().unwrap(),
        "--qi",
        "gender",
        "--hierarchy",
        "gender=builtin:zip",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && !err.contains("male"), "{err}");
}

/// Writes `test.csv` (every column as text, with an integer `age`) as Parquet at `path`.
fn test_parquet(path: &Path) {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    let text = std::fs::read_to_string(data("test.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(';').collect())
        .collect();
    let age: ArrayRef = Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r[0].parse::<i64>().unwrap()),
    ));
    let gender: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[1])));
    let zip: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[2])));
    let batch =
        RecordBatch::try_from_iter([("age", age), ("gender", gender), ("zipcode", zip)]).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_input_gives_the_csv_report() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("test.parquet");
    test_parquet(&pq);
    let mut args = test_args("age,gender,zipcode", &["--k", "2"]);
    let csv_out = risk(&args.iter().map(String::as_str).collect::<Vec<_>>());
    args[0] = pq.display().to_string();
    let out = risk(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut w: serde_json::Value = serde_json::from_slice(&csv_out.stdout).unwrap();
    assert_eq!(v["input"], pq.display().to_string());
    v.as_object_mut().unwrap().remove("input");
    w.as_object_mut().unwrap().remove("input");
    assert_eq!(v, w);
    assert_eq!(v["measures"]["k"], 3);
    assert_eq!(v["records_read"], 7);
}

#[test]
fn parquet_missing_column_names_file_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("test.parquet");
    test_parquet(&pq);
    let out = risk(&[pq.to_str().unwrap(), "--qi", "age,zip"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("test.parquet"), "{err}");
    assert!(
        err.contains("no column named 'zip' in the header (columns: age, gender, zipcode)"),
        "{err}"
    );
    assert!(!err.contains("81667") && !err.contains("male"), "{err}");
}
