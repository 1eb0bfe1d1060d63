//! The library's results against score.py's, on the fixtures in tests/data and on predictions
//! perturbed from them, in every scoring mode.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use phiguard_eval::{DocSet, OrderedMap, Report, ScoreOptions, Selection, SystemResult, markdown};

use crate::score_py::{
    PyRun, assert_markdown_agrees, corpus_files, data_dir, have_python, perturb, run_score_py,
};

/// A scoring mode: score.py's flags and the same options for the library.
struct Mode {
    flags: &'static [&'static str],
    opts: ScoreOptions,
    top_md: usize,
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn modes() -> Vec<Mode> {
    let base = ScoreOptions::default();
    vec![
        Mode {
            flags: &[],
            opts: base.clone(),
            top_md: 30,
        },
        Mode {
            flags: &["--safe-harbor"],
            opts: base.clone().with_safe_harbor(),
            top_md: 30,
        },
        Mode {
            flags: &[
                "--dont-care",
                "NAME,UNKNOWN",
                "--year-only-dont-care",
                "--top",
                "3",
                "--top-md",
                "2",
            ],
            opts: ScoreOptions {
                dont_care: set(&["NAME", "UNKNOWN"]),
                year_only_dont_care: true,
                top: 3,
                ..base.clone()
            },
            top_md: 2,
        },
        Mode {
            flags: &["--min-score", "0.5"],
            opts: ScoreOptions {
                min_score: Some(0.5),
                ..base.clone()
            },
            top_md: 30,
        },
        Mode {
            flags: &["--exclude-pred-labels", "NAME,?", "--dont-care", "DATE"],
            opts: ScoreOptions {
                exclude_pred_labels: set(&["NAME", "?"]),
                dont_care: set(&["DATE"]),
                ..base.clone()
            },
            top_md: 30,
        },
        Mode {
            flags: &[
                "--safe-harbor",
                "--min-score",
                "0.25",
                "--top",
                "0",
                "--top-md",
                "5",
            ],
            opts: ScoreOptions {
                min_score: Some(0.25),
                top: 0,
                ..base.with_safe_harbor()
            },
            top_md: 5,
        },
    ]
}

/// Scores `preds` (name, file) against `gold` with the library and with score.py (under two
/// hash seeds) and asserts they agree: the whole JSON result, and the Markdown.
fn check(what: &str, gold: &Path, preds: &[(String, PathBuf)], mode: &Mode) {
    let gold_arg = gold.to_string_lossy().into_owned();
    let mut args: Vec<OsString> = vec![gold.into()];
    for (name, path) in preds {
        args.push(format!("{name}={}", path.display()).into());
    }
    args.extend(mode.flags.iter().map(OsString::from));
    let py: [PyRun; 2] = [run_score_py(&args, 0), run_score_py(&args, 1)];

    let gold_set = DocSet::read(gold).unwrap();
    let sets: Vec<DocSet> = preds
        .iter()
        .map(|(_, p)| DocSet::read(p).unwrap())
        .collect();
    let refs: Vec<&DocSet> = sets.iter().collect();
    let selection = Selection::common(&gold_set, &refs);
    let named: Vec<(String, &DocSet)> = preds
        .iter()
        .map(|(n, _)| n.clone())
        .zip(refs.iter().copied())
        .collect();
    let results = phiguard_eval::score_all(&selection, &named, &mode.opts).unwrap();

    // The headline numbers first, for a readable failure.
    let py_report: Report = serde_json::from_str(&py[0].json).unwrap();
    for (name, want) in py_report.results.iter() {
        let got = results.get(name).unwrap();
        let headline = |r: &SystemResult| {
            (
                r.docs,
                r.tokens,
                r.tp,
                r.fp,
                r.r#fn,
                r.dont_care_tokens,
                r.precision,
                r.recall,
                r.f1,
            )
        };
        assert_eq!(
            headline(got),
            headline(want),
            "{what}: {name}: headline numbers"
        );
        assert_eq!(
            got.per_category, want.per_category,
            "{what}: {name}: per category"
        );
    }
    let report = Report {
        gold: gold_arg.clone(),
        systems: OrderedMap(
            preds
                .iter()
                .map(|(n, p)| (n.clone(), format!("{n}={}", p.display())))
                .collect(),
        ),
        results: results.clone(),
    };
    if py[0].json == py[1].json {
        assert_eq!(report, py_report, "{what}: JSON result");
        assert_eq!(report.to_json().unwrap(), py[0].json, "{what}: JSON bytes");
    } else {
        // Only a label-order tie may depend on the hash seed: compare labels as sets.
        eprintln!("{what}: score.py's JSON depends on the hash seed; comparing labels as sets");
        let sorted = |mut r: Report| {
            for (_, s) in r.results.0.iter_mut() {
                s.per_pred_label.0.sort_by(|a, b| a.0.cmp(&b.0));
            }
            r
        };
        assert_eq!(sorted(report), sorted(py_report), "{what}: JSON result");
    }
    let md = markdown(&results, &gold_arg, mode.top_md);
    assert_markdown_agrees(what, &format!("{md}\n"), &py);
}

#[test]
fn fixture_predictions_agree_in_every_mode() {
    if !have_python("fixture_predictions_agree_in_every_mode") {
        return;
    }
    let data = data_dir();
    let gold = data.join("gold.jsonl");
    let preds = vec![
        ("pred_a".to_string(), data.join("pred_a.jsonl")),
        ("b".to_string(), data.join("pred_b.jsonl")),
    ];
    for (i, mode) in modes().iter().enumerate() {
        check(&format!("fixtures, mode {i}"), &gold, &preds, mode);
        check(&format!("pred_a alone, mode {i}"), &gold, &preds[..1], mode);
    }
}

#[test]
fn perturbed_predictions_agree_in_every_mode() {
    if !have_python("perturbed_predictions_agree_in_every_mode") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gold = data_dir().join("gold.jsonl");
    let gold_text = std::fs::read_to_string(&gold).unwrap();
    let mut preds = Vec::new();
    for seed in 1..=6u64 {
        let path = tmp.path().join(format!("p{seed}.jsonl"));
        std::fs::write(&path, perturb(&gold_text, seed, 0.03)).unwrap();
        preds.push((format!("seed{seed}"), path));
    }
    for (i, mode) in modes().iter().enumerate() {
        check(
            &format!("6 perturbed systems, mode {i}"),
            &gold,
            &preds,
            mode,
        );
        let one = &preds[i % preds.len()..i % preds.len() + 1];
        check(&format!("{}, mode {i}", one[0].0), &gold, one, mode);
    }
}

/// The real dev corpora, when they sit beside the workspace (`../shared/corpora/text`, or
/// `PHIGUARD_CORPORA`): perturbed gold scored plain and in the Safe Harbor view.
#[test]
fn perturbed_corpora_agree() {
    let files = corpus_files();
    if files.is_empty() {
        eprintln!("skipping perturbed_corpora_agree: no corpora beside the workspace");
        return;
    }
    if !have_python("perturbed_corpora_agree") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let all = modes();
    for (k, gold) in files.iter().enumerate() {
        let text = std::fs::read_to_string(gold).unwrap();
        let pred = tmp.path().join(format!("c{k}.jsonl"));
        std::fs::write(&pred, perturb(&text, 100 + k as u64, 0.05)).unwrap();
        let preds = vec![("perturbed".to_string(), pred)];
        for i in [0, 1] {
            check(
                &format!("{}, mode {i}", gold.display()),
                gold,
                &preds,
                &all[i],
            );
        }
    }
}
