//! Parquet input: the same table written as CSV and as Parquet gives the same report.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use phiguard_risk::{RiskConfig, SensitiveKind, assess, is_parquet};

/// (zip, age, birth as days since 1970-01-01, sex or null, dx, score, name)
type Row = (
    &'static str,
    i64,
    i32,
    Option<&'static str>,
    &'static str,
    f64,
    &'static str,
);

const ROWS: [Row; 12] = [
    ("12345", 34, 0, Some("F"), "flu", 1.5, "SECRET-A"),
    ("12345", 34, 0, Some("F"), "cold", 2.0, "SECRET-B"),
    ("12346", 45, 365, Some("M"), "flu", 3.25, "SECRET-C"),
    ("12346", 45, 365, Some("M"), "asthma", 1.5, "SECRET-D"),
    ("12347", 45, 366, None, "flu", 4.0, "SECRET-E"),
    ("12347", 66, 366, None, "flu", 2.0, "SECRET-F"),
    ("13345", 70, 18000, Some("F"), "cold", 0.5, "SECRET-G"),
    ("13345", 70, 18000, Some("F"), "cold", 0.5, "SECRET-H"),
    ("13346", 70, 18001, Some("M"), "asthma", 7.75, "SECRET-I"),
    ("13346", 91, 18001, Some("M"), "flu", 2.0, "SECRET-J"),
    ("13347", 91, 18002, Some("F"), "cold", 1.5, "SECRET-K"),
    ("13347", 91, 18002, Some("F"), "flu", 1.5, "SECRET-L"),
];

/// The text arrow shows for a Date32.
fn date(days: i32) -> String {
    let d = time::Date::from_julian_day(2_440_588 + days).unwrap();
    format!("{d}")
}

/// The text arrow shows for a Float64 (`2.0`, `3.25`).
fn float(f: f64) -> String {
    format!("{f:?}")
}

fn write_csv(path: &Path) {
    let mut s = String::from("name,zip,age,birth,sex,dx,score\n");
    for (zip, age, birth, sex, dx, score, name) in ROWS {
        s.push_str(&format!(
            "{name},{zip},{age},{},{},{dx},{}\n",
            date(birth),
            sex.unwrap_or(""),
            float(score)
        ));
    }
    std::fs::write(path, s).unwrap();
}

fn write_parquet(path: &Path, rows_per_group: usize) {
    let col = |a: ArrayRef| a;
    let batch = RecordBatch::try_from_iter([
        (
            "name",
            col(Arc::new(StringArray::from_iter_values(
                ROWS.iter().map(|r| r.6),
            ))),
        ),
        (
            "zip",
            col(Arc::new(StringArray::from_iter_values(
                ROWS.iter().map(|r| r.0),
            ))),
        ),
        (
            "age",
            col(Arc::new(Int64Array::from_iter_values(
                ROWS.iter().map(|r| r.1),
            ))),
        ),
        (
            "birth",
            col(Arc::new(Date32Array::from_iter_values(
                ROWS.iter().map(|r| r.2),
            ))),
        ),
        (
            "sex",
            col(Arc::new(StringArray::from(
                ROWS.iter().map(|r| r.3).collect::<Vec<_>>(),
            ))),
        ),
        (
            "dx",
            col(Arc::new(StringArray::from_iter_values(
                ROWS.iter().map(|r| r.4),
            ))),
        ),
        (
            "score",
            col(Arc::new(Float64Array::from_iter_values(
                ROWS.iter().map(|r| r.5),
            ))),
        ),
    ])
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    // Several batches and row groups, so the reader crosses their boundaries.
    for start in (0..ROWS.len()).step_by(5) {
        let len = 5.min(ROWS.len() - start);
        w.write(&batch.slice(start, len)).unwrap();
    }
    w.close().unwrap();
}

/// The report as JSON without the input path.
fn report(cfg: &RiskConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(assess(cfg).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("input");
    v
}

fn both(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let csv = dir.join("t.csv");
    let pq = dir.join("t.parquet");
    write_csv(&csv);
    write_parquet(&pq, 4);
    (csv, pq)
}

#[test]
fn parquet_and_csv_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, pq) = both(dir.path());
    assert!(is_parquet(&pq));
    assert!(!is_parquet(&csv));
    type Setup = fn(&mut RiskConfig);
    let setups: [(&[&str], &str, Setup); 5] = [
        (&["zip", "age", "sex"], "dx", |_| {}),
        (&["zip", "birth"], "score", |c| c.show_classes = true),
        (&["sex", "age"], "score", |c| {
            c.sensitive_kind = Some(SensitiveKind::Categorical);
            c.show_classes = true;
        }),
        (&["zip", "age"], "dx", |c| {
            c.hierarchies = vec![
                ("zip".into(), "builtin:zip".into()),
                ("age".into(), "builtin:age".into()),
            ];
            c.target_k = Some(2);
            c.target_l = Some(2);
            c.max_suppression = 0.2;
            c.show_classes = true;
        }),
        (&["birth", "sex"], "dx", |c| {
            c.hierarchies = vec![("birth".into(), "builtin:date".into())];
            c.levels = vec![("birth".into(), 1)];
        }),
    ];
    for (qis, sensitive, setup) in setups {
        let mut a = RiskConfig::new(&csv, qis);
        a.sensitive = Some(sensitive.into());
        setup(&mut a);
        let mut b = a.clone();
        b.input = pq.clone();
        let (ra, rb) = (report(&a), report(&b));
        assert_eq!(ra, rb, "{qis:?} / {sensitive}");
        assert_eq!(ra["records_read"], 12);
    }
    // Hand check of one: zip × age × sex has classes {1,2}, {3,4}, {5}, {6}, {7,8}, {9}, {10},
    // {11,12}: k = 1, 8 classes, 4 uniques; dx distinct per class 2,2,1,1,1,1,1,2 → l = 1.
    let mut cfg = RiskConfig::new(&pq, &["zip", "age", "sex"]);
    cfg.sensitive = Some("dx".into());
    let r = assess(&cfg).unwrap();
    assert_eq!(r.measures.k, 1);
    assert_eq!(r.measures.equivalence_classes, 8);
    assert_eq!(r.measures.sample_uniques, 4);
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("SECRET"));
}

#[test]
fn parquet_population() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, pq) = both(dir.path());
    let mut a = RiskConfig::new(&csv, &["sex"]);
    a.population = Some(pq.clone());
    let mut b = a.clone();
    b.population = Some(csv.clone());
    let (ra, rb) = (report(&a), report(&b));
    assert_eq!(ra["journalist"], rb["journalist"]);
    assert_eq!(ra["records_read"], 12);
}

#[test]
fn parquet_missing_column_lists_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path());
    let e = assess(&RiskConfig::new(&pq, &["zip", "postcode"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.parquet"), "{e}");
    assert!(e.contains("no column named 'postcode'"), "{e}");
    assert!(
        e.contains("columns: name, zip, age, birth, sex, dx, score"),
        "{e}"
    );
    assert!(!e.contains("SECRET") && !e.contains("12345"), "{e}");
}

#[test]
fn truncated_parquet_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pq) = both(dir.path());
    let bytes = std::fs::read(&pq).unwrap();
    // Keep the magic at both ends but lose the middle: not Parquet any more to the reader.
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    cut.extend_from_slice(&bytes[bytes.len() - 8..]);
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, cut).unwrap();
    let e = assess(&RiskConfig::new(&bad, &["zip"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.parquet"), "{e}");
    assert!(!e.contains("SECRET"), "{e}");
}
