//! `phiguard eval` against the reference score.py (run with python3, skipped with a message when
//! python3 is missing): same Markdown on stdout, same notes on stderr, byte-identical `--json`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../eval/tests/common/score_py.rs"]
mod score_py;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use score_py::{PyRun, assert_markdown_agrees, data_dir, have_python, perturb, run_score_py};

fn phiguard(args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .arg("eval")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `phiguard eval --gold GOLD PREDS... FLAGS --json --md` and score.py on the same
/// arguments, and compares everything they print and write.
fn check(what: &str, gold: &Path, preds: &[String], flags: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (json, md) = (tmp.path().join("out.json"), tmp.path().join("out.md"));
    let mut py_args: Vec<OsString> = vec![gold.into()];
    py_args.extend(preds.iter().map(OsString::from));
    py_args.extend(flags.iter().map(OsString::from));
    let py: [PyRun; 2] = [run_score_py(&py_args, 0), run_score_py(&py_args, 1)];

    let mut args: Vec<OsString> = vec!["--gold".into(), gold.into()];
    args.extend(preds.iter().map(OsString::from));
    args.extend(flags.iter().map(OsString::from));
    args.extend([
        "--json".into(),
        json.clone().into(),
        "--md".into(),
        md.clone().into(),
    ]);
    let out = phiguard(&args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "{what}: phiguard eval failed: {stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();

    assert_eq!(stderr, py[0].stderr, "{what}: notes on stderr");
    assert_markdown_agrees(what, &stdout, &py);
    assert_eq!(
        format!("{}\n", std::fs::read_to_string(&md).unwrap()),
        stdout,
        "{what}: --md file is the printed report"
    );
    let ours = std::fs::read_to_string(&json).unwrap();
    if py[0].json == py[1].json {
        assert_eq!(ours, py[0].json, "{what}: --json differs from score.py's");
    } else {
        eprintln!("{what}: score.py's JSON depends on the hash seed; compared its numbers only");
        let strip = |s: &str| {
            let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
            for r in v["results"].as_object_mut().unwrap().values_mut() {
                r.as_object_mut().unwrap().remove("per_pred_label");
            }
            v
        };
        assert_eq!(strip(&ours), strip(&py[0].json), "{what}: --json numbers");
    }
}

#[test]
fn eval_agrees_with_score_py_on_fixtures() {
    if !have_python("eval_agrees_with_score_py_on_fixtures") {
        return;
    }
    let data = data_dir();
    let gold = data.join("gold.jsonl");
    let a = data.join("pred_a.jsonl").display().to_string();
    let b = format!("b={}", data.join("pred_b.jsonl").display());
    let two = [a.clone(), b];
    check("plain", &gold, &two, &[]);
    check("safe harbor", &gold, &two, &["--safe-harbor"]);
    check(
        "one system, safe harbor",
        &gold,
        &two[..1],
        &["--safe-harbor"],
    );
    check(
        "min score, dont-care, top",
        &gold,
        &two,
        &[
            "--min-score",
            "0.5",
            "--dont-care",
            "NAME",
            "--top",
            "4",
            "--top-md",
            "2",
        ],
    );
    check(
        "year-only, excluded labels, title",
        &gold,
        &two,
        &[
            "--year-only-dont-care",
            "--exclude-pred-labels",
            "ID",
            "--title",
            "Fixture ñ",
        ],
    );
}

#[test]
fn eval_agrees_with_score_py_on_perturbed_predictions_and_splits() {
    if !have_python("eval_agrees_with_score_py_on_perturbed_predictions_and_splits") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gold = data_dir().join("gold.jsonl");
    let gold_text = std::fs::read_to_string(&gold).unwrap();
    let mut preds = Vec::new();
    for seed in [11u64, 12, 13] {
        let p = tmp.path().join(format!("run{seed}.jsonl"));
        std::fs::write(&p, perturb(&gold_text, seed, 0.05)).unwrap();
        preds.push(p.display().to_string());
    }
    let split = tmp.path().join("splits.tsv");
    std::fs::write(
        &split,
        "en-1\tdev\nes-1\tdev\nde-1\ttest\nmixed-1\tdev\nws-1\tdev\r\n42\tdev\n",
    )
    .unwrap();
    let split = split.display().to_string();
    check("three perturbed systems", &gold, &preds, &["--safe-harbor"]);
    check(
        "split",
        &gold,
        &preds[..1],
        &["--split-file", &split, "--split", "dev"],
    );
}

#[test]
fn bad_input_is_an_error_naming_file_and_line_without_text() {
    let tmp = tempfile::tempdir().unwrap();
    let gold = tmp.path().join("gold.jsonl");
    std::fs::write(
        &gold,
        "{\"id\": \"a\", \"text\": \"Jane Roe\", \"spans\": []}\n{\"id\": \"b\", \"text\": \"Jane Roe\", \"spans\": [{\"start\": \"Jane\", \"end\": 4}]}\n",
    )
    .unwrap();
    let pred = tmp.path().join("pred.jsonl");
    std::fs::write(&pred, "{\"id\": \"a\", \"spans\": []}\n").unwrap();
    let out = phiguard(&["--gold".into(), gold.clone().into(), pred.clone().into()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("gold.jsonl:2: field spans[0].start: expected an integer"),
        "{err}"
    );
    assert!(!err.contains("Jane"), "{err}");

    let out = phiguard(&[
        "--gold".into(),
        gold.into(),
        format!("x={}", pred.display()).into(),
        format!("x={}", pred.display()).into(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("named \"x\"")
    );
}
