//! LIVE comparison with pycanon (PyPI): the same table, quasi-identifiers, sensitive column and
//! generalisation must give the same k, classes, l-diversity, entropy l-diversity, t-closeness
//! and re-identification risks. Skips with a note when pycanon is not importable, unless
//! PHIGUARD_REQUIRE_PYCANON=1 (set by .ci/setup.d/40-pycanon.sh), then it fails. The Python
//! interpreter is PHIGUARD_PYCANON_PYTHON (the setup script's virtual environment) or python3.

use std::path::Path;
use std::process::Command;

use phiguard_risk::{RiskConfig, assess};

use crate::adult::{QIS, adult_cfg};
use crate::{arx_corpus, close, data};

/// The interpreter that has pycanon.
fn python() -> String {
    std::env::var("PHIGUARD_PYCANON_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn pycanon_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pycanon"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("PHIGUARD_REQUIRE_PYCANON").as_deref() == Ok("1") {
            panic!(
                "PHIGUARD_REQUIRE_PYCANON=1 but {} cannot import pycanon",
                python()
            );
        }
        eprintln!("note: pycanon not importable, skipping the pycanon comparison");
    }
    ok
}

/// Runs the reference script: table with QIs generalised to `levels` (hierarchy files from
/// `cfg`), rows of classes below `suppress_below` dropped.
fn reference(
    cfg: &RiskConfig,
    levels: &[usize],
    suppress_below: Option<usize>,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/pycanon_ref.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(&cfg.input)
        .arg(";")
        .arg(cfg.quasi_identifiers.join(","))
        .arg(cfg.sensitive.as_deref().unwrap());
    for (q, &l) in cfg.quasi_identifiers.iter().zip(levels) {
        if l > 0 {
            let (_, h) = cfg.hierarchies.iter().find(|(c, _)| c == q).unwrap();
            cmd.arg(format!("{q}={}:{l}", h.display()));
        }
    }
    if let Some(k) = suppress_below {
        cmd.arg("--suppress-below").arg(k.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pycanon_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn compare(label: &str, cfg: &RiskConfig, levels: &[usize], suppress_below: Option<usize>) {
    let mut ours_cfg = cfg.clone();
    ours_cfg.levels = cfg
        .quasi_identifiers
        .iter()
        .cloned()
        .zip(levels.iter().copied())
        .collect();
    if let Some(k) = suppress_below {
        ours_cfg.target_k = Some(k);
        ours_cfg.max_suppression = 1.0; // levels are all fixed: the search is this one node
    }
    let r = assess(&ours_cfg).unwrap();
    let py = reference(cfg, levels, suppress_below);
    let m = &r.measures;
    let s = m.sensitive.as_ref().unwrap();
    eprintln!(
        "{label}: ours k={} classes={} l={} entropy_l={} (real {:.6}) t={} avg_rir={} max_rir={} records={}\n{label}: pycanon {py}",
        m.k,
        m.equivalence_classes,
        s.l_diversity,
        s.entropy_l_pycanon,
        s.entropy_l,
        s.t_closeness,
        m.mean_class_risk,
        m.prosecutor.highest,
        m.records
    );
    assert_eq!(
        m.records as u64,
        py["records"].as_u64().unwrap(),
        "{label}: records"
    );
    assert_eq!(m.k as u64, py["k"].as_u64().unwrap(), "{label}: k");
    assert_eq!(
        m.equivalence_classes as u64,
        py["equivalence_classes"].as_u64().unwrap(),
        "{label}: classes"
    );
    assert_eq!(
        s.l_diversity as u64,
        py["l_diversity"].as_u64().unwrap(),
        "{label}: l"
    );
    assert_eq!(
        s.entropy_l_pycanon as u64,
        py["entropy_l"].as_u64().unwrap(),
        "{label}: entropy l"
    );
    // t-closeness and the real entropy l must be the same bits (same summation order); the
    // mean over classes is summed in another order (pandas sorts the classes), so within 1e-12.
    let f = |k: &str| -> f64 { py[k].as_str().unwrap().parse().unwrap() };
    let t = f("t_closeness");
    assert_eq!(
        s.t_closeness.to_bits(),
        t.to_bits(),
        "{label}: t {} vs {t}",
        s.t_closeness
    );
    let e = f("entropy_l_real");
    assert_eq!(
        s.entropy_l.to_bits(),
        e.to_bits(),
        "{label}: entropy l {} vs {e}",
        s.entropy_l
    );
    let avg = f("average_rir");
    assert!(
        close(m.mean_class_risk, avg),
        "{label}: average_rir {} vs {avg}",
        m.mean_class_risk
    );
    assert_eq!(m.prosecutor.highest, f("max_rir"), "{label}: max_rir");
}

#[test]
fn adult_matches_pycanon_raw_generalised_and_suppressed() {
    let Some(dir) = arx_corpus() else { return };
    if !pycanon_available() {
        return;
    }
    let cfg = adult_cfg(&dir);
    assert_eq!(cfg.quasi_identifiers, QIS);
    compare("adult raw", &cfg, &[0, 0, 0, 0, 0], None);
    // A fixed generalisation: 10-year age bands, spouse present/absent, continents.
    compare(
        "adult age=2,marital=1,country=1",
        &cfg,
        &[0, 2, 0, 1, 1],
        None,
    );
    // The same plus the classes below k = 5 suppressed, as the search does.
    compare(
        "adult same, suppressed below 5",
        &cfg,
        &[0, 2, 0, 1, 1],
        Some(5),
    );
    // The node the search picks for k = 5 without suppression.
    let mut search = cfg.clone();
    search.target_k = Some(5);
    let chosen = assess(&search)
        .unwrap()
        .search
        .unwrap()
        .chosen_levels
        .unwrap();
    compare("adult k=5 node", &cfg, &chosen, None);
    // A numerical sensitive attribute (ordered distance over 72 ages) on the big table.
    let mut num = RiskConfig::new(
        &cfg.input,
        &["sex", "race", "marital-status", "native-country"],
    );
    num.sensitive = Some("age".into());
    num.hierarchies = cfg
        .hierarchies
        .iter()
        .filter(|(c, _)| c != "age")
        .cloned()
        .collect();
    compare("adult age as sensitive", &num, &[0, 0, 1, 1], None);
}

#[test]
fn textbook_table_matches_pycanon_numerical_and_categorical() {
    if !pycanon_available() {
        return;
    }
    for sensitive in ["Salary", "Disease"] {
        let mut cfg = RiskConfig::new(&data("test2.csv"), &["ZIPCode", "Age"]);
        cfg.hierarchies = vec![
            ("ZIPCode".into(), data("test2_hierarchy_ZIPCode.csv")),
            ("Age".into(), data("test2_hierarchy_Age.csv")),
        ];
        cfg.sensitive = Some(sensitive.into());
        for levels in [[0, 0], [2, 1], [1, 1], [3, 0], [5, 2]] {
            compare(
                &format!("test2 {sensitive} {levels:?}"),
                &cfg,
                &levels,
                None,
            );
        }
    }
}
