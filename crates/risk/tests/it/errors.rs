//! Bad input: clear errors naming file, line and column, never a value.

use phiguard_risk::{RiskConfig, assess};

use crate::data;

#[test]
fn value_missing_from_hierarchy_names_line_not_value() {
    // test_dirty.csv has "4e" on line 3 and "7f" on line 7.
    let mut cfg = RiskConfig::new(&data("test_dirty.csv"), &["age", "gender"]);
    cfg.hierarchies = vec![("age".into(), data("test_hierarchy_age.csv"))];
    let e = assess(&cfg).unwrap_err().to_string();
    assert!(e.contains("column 'age'"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("2 distinct values missing"), "{e}");
    assert!(!e.contains("4e") && !e.contains("7f"), "{e}");
}

#[test]
fn ragged_row_and_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.csv");
    std::fs::write(&p, "a,b,c\n1,2,3\n4,\"5,6\"\n7,8,9\n").unwrap();
    let e = assess(&RiskConfig::new(&p, &["a"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("r.csv: line 3: 2 fields where the header has 3 (no value for column 'c')"),
        "{e}"
    );
    std::fs::write(&p, "a,b\n1,2\n3,4,SECRET,x\n").unwrap();
    let e = assess(&RiskConfig::new(&p, &["a"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 3: 4 fields where the header has 2 (2 fields after the last column 'b')"),
        "{e}"
    );
    assert!(!e.contains("SECRET"), "{e}");
    let e = assess(&RiskConfig::new(&data("test.csv"), &["zip"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no column named 'zip'") && e.contains("age, gender, zipcode"),
        "{e}"
    );
}

#[test]
fn bad_options() {
    let mut cfg = RiskConfig::new(&data("test.csv"), &["age", "gender"]);
    cfg.levels = vec![("age".into(), 5)];
    cfg.hierarchies = vec![("age".into(), data("test_hierarchy_age.csv"))];
    let e = assess(&cfg).unwrap_err().to_string();
    assert!(e.contains("level 5") && e.contains("0 to 2"), "{e}");
    let mut cfg = RiskConfig::new(&data("test.csv"), &["age"]);
    cfg.sensitive = Some("age".into());
    assert!(assess(&cfg).is_err());
    let mut cfg = RiskConfig::new(&data("test.csv"), &["age"]);
    cfg.max_suppression = 1.5;
    assert!(assess(&cfg).is_err());
    let mut cfg = RiskConfig::new(&data("test.csv"), &["age"]);
    cfg.sensitive = Some("gender".into());
    cfg.sensitive_kind = Some(phiguard_risk::SensitiveKind::Numerical);
    let e = assess(&cfg).unwrap_err().to_string();
    assert!(e.contains("line 2") && !e.contains("male"), "{e}");
}

#[test]
fn header_only_table_gives_zero_figures() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.csv");
    std::fs::write(&p, "a,b,s\n").unwrap();
    let mut cfg = RiskConfig::new(&p, &["a", "b"]);
    cfg.sensitive = Some("s".into());
    cfg.target_k = Some(3);
    let r = assess(&cfg).unwrap();
    assert_eq!(r.records_read, 0);
    assert_eq!(r.measures.k, 0);
    assert_eq!(r.measures.equivalence_classes, 0);
    assert_eq!(r.measures.sensitive.unwrap().l_diversity, 0);
}
