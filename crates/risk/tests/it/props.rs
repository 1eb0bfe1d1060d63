//! Invariants on random tables: class sizes add up, generalising never lowers k nor raises the
//! number of classes, suppression keeps exactly the classes that pass, the report is consistent.

use std::fmt::Write;

use phiguard_risk::{RiskConfig, assess};
use proptest::prelude::*;

/// A random table of `rows` rows over 3 QIs with small domains and a sensitive column, plus a
/// hierarchy for q0 (value → value/2 → *) and q1 (value → parity → *).
fn write_table(dir: &std::path::Path, rows: &[(u8, u8, u8, u8)]) -> RiskConfig {
    let mut csv = String::from("q0,q1,q2,s\n");
    for (a, b, c, s) in rows {
        let _ = writeln!(csv, "{a},{b},{c},v{s}");
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let mut h0 = String::new();
    let mut h1 = String::new();
    for v in 0..8u8 {
        let _ = writeln!(h0, "{v};{};*", v / 2);
        let _ = writeln!(h1, "{v};{};*", if v % 2 == 0 { "even" } else { "odd" });
    }
    std::fs::write(dir.join("h0.csv"), h0).unwrap();
    std::fs::write(dir.join("h1.csv"), h1).unwrap();
    let mut cfg = RiskConfig::new(&dir.join("t.csv"), &["q0", "q1", "q2"]);
    cfg.sensitive = Some("s".into());
    cfg.hierarchies = vec![
        ("q0".into(), dir.join("h0.csv")),
        ("q1".into(), dir.join("h1.csv")),
    ];
    cfg
}

fn rows() -> impl Strategy<Value = Vec<(u8, u8, u8, u8)>> {
    prop::collection::vec((0u8..8, 0u8..8, 0u8..3, 0u8..4), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn generalising_is_monotone(rows in rows(), l0 in 0usize..3, l1 in 0usize..3, l2 in 0usize..2) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = write_table(dir.path(), &rows);
        cfg.levels = vec![("q0".into(), l0), ("q1".into(), l1), ("q2".into(), l2)];
        let fine = assess(&cfg).unwrap();
        let m = &fine.measures;
        let sizes: usize = m.class_sizes.iter().map(|b| b.records).sum();
        prop_assert_eq!(sizes, rows.len());
        prop_assert_eq!(m.class_sizes.iter().map(|b| b.classes).sum::<usize>(), m.equivalence_classes);
        prop_assert!(m.k >= 1 && m.k <= m.largest_class);
        prop_assert!(m.sample_uniques <= m.equivalence_classes);
        let s = m.sensitive.as_ref().unwrap();
        prop_assert!(s.l_diversity >= 1 && s.entropy_l >= 1.0 - 1e-12);
        prop_assert!(s.entropy_l <= s.distinct_values as f64 + 1e-9);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&s.t_closeness));
        // One level up on q0 (if possible): classes merge.
        if l0 < 2 {
            cfg.levels[0].1 = l0 + 1;
            let coarse = assess(&cfg).unwrap();
            prop_assert!(coarse.measures.k >= m.k);
            prop_assert!(coarse.measures.equivalence_classes <= m.equivalence_classes);
            prop_assert!(coarse.measures.sensitive.unwrap().l_diversity >= s.l_diversity);
            prop_assert!(coarse.information_loss.loss >= fine.information_loss.loss);
        }
    }

    #[test]
    fn search_result_meets_the_target(rows in rows(), k in 1usize..6, supp in 0u8..3) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = write_table(dir.path(), &rows);
        cfg.target_k = Some(k);
        cfg.max_suppression = f64::from(supp) * 0.05;
        let r = assess(&cfg).unwrap();
        let s = r.search.as_ref().unwrap();
        prop_assert_eq!(s.nodes_evaluated, 3 * 3 * 2);
        if rows.len() >= k {
            // The top node (everything '*') is one class of all rows: always reachable.
            prop_assert!(s.reached);
        }
        if s.reached {
            prop_assert!(r.measures.k >= k || r.measures.records == 0);
            prop_assert!(r.suppressed_records as f64 <= cfg.max_suppression * rows.len() as f64 + 1e-9);
            prop_assert_eq!(r.measures.records + r.suppressed_records, rows.len());
            // Re-assessing the chosen levels without a target gives the same classes when
            // nothing was suppressed.
            if r.suppressed_records == 0 {
                let mut fixed = cfg.clone();
                fixed.target_k = None;
                fixed.levels = cfg.quasi_identifiers.iter().cloned()
                    .zip(s.chosen_levels.clone().unwrap()).collect();
                let again = assess(&fixed).unwrap();
                prop_assert_eq!(&again.measures, &r.measures);
            }
        } else {
            prop_assert!(r.target_missed());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The readers never panic on arbitrary bytes: a table, an error, nothing else.
    #[test]
    fn readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400),
                           text in "[a-c;,\"\t\r\n]{0,80}") {
        let p = std::path::Path::new("fuzz.csv");
        let _ = phiguard_risk::Table::from_reader(p, &bytes[..], &["a"]);
        let _ = phiguard_risk::Table::from_reader(p, text.as_bytes(), &["a", "b"]);
        let _ = phiguard_risk::Hierarchy::from_bytes(p, &bytes);
        let _ = phiguard_risk::Hierarchy::from_bytes(p, text.as_bytes());
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let _ = phiguard_risk::flatten_patient(&v);
        }
    }
}
