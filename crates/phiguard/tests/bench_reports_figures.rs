//! `phiguard bench` runs end to end and reports its figures (never a wall-clock threshold:
//! performance is read from the figures, not asserted).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/tests/data")
}

#[test]
fn bench_prints_json_figures_per_corpus_and_overall() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(
        notes.join("a.txt"),
        "Seen by Dr. Ana Ruiz on 03/14/2021 in Logroño.",
    )
    .unwrap();
    std::fs::write(
        notes.join("b.txt"),
        "Kein Befund. Herr Weiß, geb. 04.04.1957.",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .arg("bench")
        .arg(data_dir().join("gold.jsonl"))
        .arg(&notes)
        .args([
            "--json",
            "--min-time",
            "0",
            "--iterations",
            "2",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["threads"], 2);
    let corpora = v["corpora"].as_array().unwrap();
    let names: Vec<&str> = corpora
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gold", "notes"]);
    assert_eq!(corpora[0]["docs"], 15);
    assert_eq!(corpora[1]["docs"], 2);
    assert_eq!(corpora[1]["chars"], 86); // code points, not bytes
    assert_eq!(corpora[1]["bytes"], 88); // ñ and ß take two bytes each
    for c in corpora.iter().chain([&v["overall"]]) {
        for rate in ["single", "multi", "baseline", "baseline_multi"] {
            assert!(c[rate]["passes"].as_f64().unwrap() >= 1.0, "{rate}: {c}");
            assert!(
                c[rate]["chars_per_s"].as_f64().unwrap() > 0.0,
                "{rate}: {c}"
            );
            assert!(c[rate]["mb_per_s"].as_f64().unwrap() > 0.0, "{rate}: {c}");
        }
        assert!(c["detector_over_baseline"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(
        v["overall"]["chars"].as_u64().unwrap(),
        corpora
            .iter()
            .map(|c| c["chars"].as_u64().unwrap())
            .sum::<u64>()
    );
    if cfg!(target_os = "linux") {
        assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn bench_prints_a_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .arg("bench")
        .arg(data_dir().join("gold.jsonl"))
        .args(["--min-time", "0", "--lang", "en"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("detector 1 thread"), "{table}");
    assert!(table.contains("\ngold "), "{table}");
    assert!(table.contains("\noverall "), "{table}");
    assert!(table.contains("peak RSS"), "{table}");
}

#[test]
fn bench_without_inputs_or_corpora_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .arg("bench")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("../shared/corpora/text/*/dev.jsonl"), "{err}");
}
