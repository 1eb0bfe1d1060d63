//! Test support shared by the phiguard-eval and phiguard integration tests (included with
//! `#[path]`): running the reference score.py, building perturbed predictions from gold, and
//! comparing Markdown reports modulo the one thing score.py leaves to chance.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder with score.py and the fixtures.
pub fn data_dir() -> PathBuf {
    // this file is crates/eval/tests/common/score_py.rs
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("eval/tests/data")
}

/// The project's dev corpora (`../shared/corpora/text` beside the workspace), if present.
pub fn corpora_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("PHIGUARD_CORPORA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/text"),
    };
    dir.is_dir().then_some(dir)
}

/// The dev.jsonl files of the corpora, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let Some(dir) = corpora_dir() else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("dev.jsonl"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// True when `python3` runs; otherwise prints why the calling test is skipped.
pub fn have_python(test: &str) -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping {test}: python3 not found");
    }
    ok
}

/// One run of score.py.
#[derive(Debug, Clone, PartialEq)]
pub struct PyRun {
    pub stdout: String,
    pub stderr: String,
    pub json: String,
}

/// Runs score.py with `args` (and `--json` to a temporary file) under a fixed PYTHONHASHSEED.
pub fn run_score_py(args: &[OsString], hash_seed: u32) -> PyRun {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("py.json");
    let out = Command::new("python3")
        .arg(data_dir().join("score.py"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("PYTHONHASHSEED", hash_seed.to_string())
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "score.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PyRun {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        json: std::fs::read_to_string(json).unwrap(),
    }
}

/// score.py orders categories with equal token counts in Python's set order, which changes with
/// the hash seed. This puts the category table rows and the per-category missed-span entries in
/// the order phiguard uses (most tokens first, ties by name), leaving everything else alone.
pub fn normalise_markdown(md: &str) -> String {
    let lines: Vec<&str> = md.split('\n').collect();
    let Some(head) = lines.iter().position(|l| l.starts_with("| category |")) else {
        return md.to_string();
    };
    let first = head + 2;
    let mut last = first;
    while last < lines.len() && lines[last].starts_with("| ") {
        last += 1;
    }
    let cols = |l: &str| -> (String, u64) {
        let parts: Vec<&str> = l.trim_matches('|').split(" | ").collect();
        (
            parts[0].trim().to_string(),
            parts[2].trim().parse().unwrap(),
        )
    };
    let mut rows: Vec<&str> = lines[first..last].to_vec();
    rows.sort_by(|a, b| {
        let (ca, ta) = cols(a);
        let (cb, tb) = cols(b);
        tb.cmp(&ta).then(ca.cmp(&cb))
    });
    let rank: Vec<String> = rows.iter().map(|r| cols(r).0).collect();
    let rank_of = |unit: &[&str]| -> usize {
        let cat = unit[0]
            .strip_prefix("- **")
            .and_then(|r| r.split("** (").next())
            .unwrap();
        rank.iter().position(|c| c == cat).unwrap()
    };
    let mut out: Vec<&str> = lines[..first].to_vec();
    out.extend(rows);
    let mut i = last;
    while i < lines.len() {
        if lines[i].starts_with("- **") {
            let mut units: Vec<Vec<&str>> = Vec::new();
            while i < lines.len() && (lines[i].starts_with("- **") || lines[i].starts_with("  - "))
            {
                if lines[i].starts_with("- **") {
                    units.push(vec![lines[i]]);
                } else {
                    units.last_mut().unwrap().push(lines[i]);
                }
                i += 1;
            }
            units.sort_by_key(|u| rank_of(u));
            out.extend(units.into_iter().flatten());
        } else {
            out.push(lines[i]);
            i += 1;
        }
    }
    out.join("\n")
}

/// Also sorts the items of the "predicted labels" lines by count then name: needed only when
/// two labels tie and were first seen on the same token, whose order score.py leaves to Python's
/// set order.
pub fn normalise_labels(md: &str) -> String {
    md.split('\n')
        .map(
            |l| match l.split_once(": predicted labels (tokens, precision %): ") {
                Some((name, items)) if !items.is_empty() => {
                    let mut items: Vec<&str> = items.split(", ").collect();
                    let count = |s: &str| -> u64 {
                        let w: Vec<&str> = s.rsplitn(3, ' ').collect();
                        w[1].parse().unwrap()
                    };
                    items.sort_by(|a, b| count(b).cmp(&count(a)).then(a.cmp(b)));
                    format!(
                        "{name}: predicted labels (tokens, precision %): {}",
                        items.join(", ")
                    )
                }
                _ => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `rust_md` is score.py's Markdown. `py` holds score.py's output under two hash
/// seeds: where they agree after [`normalise_markdown`], the comparison is exact; where they still
/// differ (a label-order tie), label lines are compared as sorted lists.
pub fn assert_markdown_agrees(what: &str, rust_md: &str, py: &[PyRun; 2]) {
    assert_eq!(
        normalise_markdown(rust_md),
        rust_md,
        "{what}: phiguard's category order is not (tokens desc, name)"
    );
    let (a, b) = (
        normalise_markdown(&py[0].stdout),
        normalise_markdown(&py[1].stdout),
    );
    if a == b {
        assert_eq!(rust_md, a, "{what}: Markdown differs from score.py");
    } else {
        eprintln!(
            "{what}: score.py's label order depends on the hash seed; comparing label lines as sets"
        );
        assert_eq!(
            normalise_labels(rust_md),
            normalise_labels(&a),
            "{what}: Markdown differs from score.py"
        );
        assert_eq!(normalise_labels(&a), normalise_labels(&b));
    }
}

/// A small deterministic generator (xorshift64*), so predictions are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Predictions made from gold JSONL by perturbation: documents dropped (rate `drop_doc`) or with
/// no `spans` key, gold spans dropped, shifted (also past the text ends), relabelled or
/// unlabelled; false spans added (also empty and reversed); scores as numbers, `null`, booleans
/// or absent; the text absent, equal, different or `null`; plus a document not in gold.
pub fn perturb(gold_jsonl: &str, seed: u64, drop_doc: f64) -> String {
    use serde_json::{Value, json};
    const LABELS: &[&str] = &["NAME", "DATE", "LOCATION", "ID", "ORGANIZATION", "PHONE"];
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for line in gold_jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let g: Value = serde_json::from_str(line).unwrap();
        if rng.f() < drop_doc {
            continue;
        }
        let text = g["text"].as_str().unwrap_or("");
        let n = text.chars().count() as i64;
        let mut spans = Vec::new();
        for sp in g["spans"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let r = rng.f();
            if r < 0.15 {
                continue;
            }
            let (mut s, mut e) = (sp["start"].as_i64().unwrap(), sp["end"].as_i64().unwrap());
            if r < 0.35 {
                s += rng.range(-3, 3);
                e += rng.range(-3, 3);
            }
            let mut p = json!({"start": s, "end": e});
            let c = rng.f();
            if c < 0.8 {
                if let Some(cat) = sp.get("category") {
                    p["category"] = cat.clone();
                }
            } else if c < 0.95 {
                p["category"] = json!(rng.pick(LABELS));
            } // else: no category (label "?")
            add_score(&mut rng, &mut p);
            spans.push(p);
        }
        for _ in 0..rng.range(0, 3) {
            let s = rng.range(0, n + 1);
            let e = if rng.f() < 0.1 {
                s - 1
            } else {
                s + rng.range(0, 12)
            };
            let mut p = json!({"start": s, "end": e, "category": rng.pick(LABELS)});
            add_score(&mut rng, &mut p);
            spans.push(p);
        }
        let mut rec = json!({"id": g["id"].clone()});
        if rng.f() < 0.95 {
            rec["spans"] = Value::Array(spans);
        }
        let t = rng.f();
        if t < 0.35 {
            rec["text"] = json!(text);
        } else if t < 0.45 {
            rec["text"] = json!(text.to_uppercase());
        } else if t < 0.5 {
            rec["text"] = Value::Null;
        }
        out.push_str(&serde_json::to_string(&rec).unwrap());
        out.push('\n');
    }
    out.push_str("{\"id\": \"not-in-gold\", \"spans\": []}\n");
    out
}

fn add_score(rng: &mut Rng, p: &mut serde_json::Value) {
    let r = rng.f();
    if r < 0.6 {
        p["score"] = serde_json::json!((rng.f() * 100.0).floor() / 100.0);
    } else if r < 0.7 {
        p["score"] = serde_json::Value::Null;
    } else if r < 0.75 {
        p["score"] = serde_json::json!(rng.f() < 0.5);
    }
}
