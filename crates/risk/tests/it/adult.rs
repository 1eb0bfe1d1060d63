//! The generalisation search on ARX's adult.csv reaches k = 5.

use phiguard_risk::{RiskConfig, Target, assess, load};

use crate::arx_corpus;

pub const QIS: [&str; 5] = ["sex", "age", "race", "marital-status", "native-country"];

pub fn adult_cfg(dir: &std::path::Path) -> RiskConfig {
    let mut cfg = RiskConfig::new(&dir.join("adult.csv"), &QIS);
    cfg.sensitive = Some("salary-class".into());
    cfg.hierarchies = QIS
        .iter()
        .map(|q| (q.to_string(), dir.join(format!("adult_hierarchy_{q}.csv"))))
        .collect();
    cfg
}

#[test]
fn search_reaches_k5_with_a_minimal_node() {
    let Some(dir) = arx_corpus() else { return };
    for max_suppression in [0.0, 0.01] {
        let mut cfg = adult_cfg(&dir);
        cfg.target_k = Some(5);
        cfg.max_suppression = max_suppression;
        let r = assess(&cfg).unwrap();
        let s = r.search.as_ref().unwrap();
        assert!(s.reached);
        assert_eq!(s.nodes_evaluated, 2 * 5 * 2 * 3 * 3);
        assert_eq!(r.records_read, 30162);
        assert!(r.measures.k >= 5, "k = {}", r.measures.k);
        assert!(r.suppressed_records as f64 <= max_suppression * 30162.0);
        assert_eq!(r.measures.records + r.suppressed_records, 30162);
        assert_eq!(r.measures.prosecutor.records_at_risk, 0);
        // Lowering any one level of the chosen node breaks the target or (only possible with
        // suppression) costs at least as much loss.
        let chosen = s.chosen_levels.clone().unwrap();
        let ds = load(&cfg).unwrap();
        let target = Target {
            k: 5,
            l: None,
            max_suppression,
        };
        for i in 0..chosen.len() {
            if chosen[i] == 0 {
                continue;
            }
            let mut lower = chosen.clone();
            lower[i] -= 1;
            let (node, _, _) = ds.evaluate(&lower, &target).unwrap();
            if max_suppression == 0.0 {
                assert!(
                    !node.meets,
                    "{lower:?} also meets k = 5 with less generalisation"
                );
            } else {
                assert!(
                    !node.meets || node.loss.loss >= r.information_loss.loss,
                    "{lower:?} meets k = 5 with less loss"
                );
            }
        }
        eprintln!(
            "adult k=5 (max suppression {max_suppression}): levels {chosen:?}, {} classes, {} suppressed, loss {:.4}",
            r.measures.equivalence_classes, r.suppressed_records, r.information_loss.loss
        );
    }
}

#[test]
fn age_hierarchy_is_used_as_given() {
    // ARX's adult age hierarchy shifts every band by one (85 → 80-84, 90 → 85-89); we keep it.
    let Some(dir) = arx_corpus() else { return };
    let h = phiguard_risk::Hierarchy::read(&dir.join("adult_hierarchy_age.csv")).unwrap();
    assert_eq!(h.height(), 4);
    assert_eq!(h.generalise("90", 1), Some("85-89"));
    assert_eq!(h.generalise("85", 1), Some("80-84"));
    assert_eq!(h.generalise("90", 4), Some("*"));
}
