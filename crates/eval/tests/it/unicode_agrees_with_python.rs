//! The tokenizer and whitespace rules against Python itself: every code point, and the token
//! offsets of the fixture texts and (when present) the dev corpora.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::score_py::{corpus_files, data_dir, have_python};

fn python(script: &str, stdin: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(data.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every code point Python has assigned: `[^\W_]` as Python's `re` sees it, and `str.isspace`.
/// (Code points Python's Unicode version leaves unassigned are left out: the two sides may
/// differ there only because their Unicode versions do.)
#[test]
fn every_code_point_agrees_with_python() {
    if !have_python("every_code_point_agrees_with_python") {
        return;
    }
    let script = r#"
import re, sys, unicodedata
R = re.compile(r"[^\W_]")
out = []
for c in range(0x110000):
    ch = chr(c)
    if unicodedata.category(ch) == "Cn" or 0xD800 <= c <= 0xDFFF:
        continue
    out.append(f"{c} {1 if R.match(ch) else 0} {1 if ch.isspace() else 0}")
sys.stdout.write("\n".join(out))
"#;
    let out = python(script, "");
    let mut checked = 0;
    let mut bad = Vec::new();
    for line in out.lines() {
        let mut f = line.split(' ');
        let c = char::from_u32(f.next().unwrap().parse().unwrap()).unwrap();
        let word = f.next().unwrap() == "1";
        let space = f.next().unwrap() == "1";
        if phiguard_eval::is_token_char(c) != word || phiguard_eval::python::is_space(c) != space {
            bad.push(format!("U+{:04X}", c as u32));
        }
        checked += 1;
    }
    assert!(checked > 140_000, "only {checked} code points checked");
    assert!(
        bad.is_empty(),
        "{} code points differ: {:?}",
        bad.len(),
        &bad[..bad.len().min(20)]
    );
}

/// Token offsets (code points) of each document's text, as Python's `re.finditer`, one line per
/// document, compared with [`phiguard_eval::tokens`].
fn check_token_offsets(file: &std::path::Path) -> usize {
    let content = std::fs::read_to_string(file).unwrap();
    let script = r#"
import json, re, sys
R = re.compile(r"[^\W_]+")
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    t = json.loads(line)["text"]
    print(" ".join(f"{m.start()} {m.end()}" for m in R.finditer(t)))
"#;
    let out = python(script, &content);
    let mut py_lines = out.lines();
    let mut docs = 0;
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap();
        let ours: Vec<String> = phiguard_eval::tokens(text)
            .iter()
            .map(|t| format!("{} {}", t.start, t.end))
            .collect();
        assert_eq!(
            ours.join(" "),
            py_lines.next().unwrap(),
            "{}: document {docs}",
            file.display()
        );
        docs += 1;
    }
    docs
}

#[test]
fn fixture_token_offsets_agree_with_python() {
    if !have_python("fixture_token_offsets_agree_with_python") {
        return;
    }
    assert!(check_token_offsets(&data_dir().join("gold.jsonl")) > 10);
}

#[test]
fn corpora_token_offsets_agree_with_python() {
    let files = corpus_files();
    if files.is_empty() {
        eprintln!(
            "skipping corpora_token_offsets_agree_with_python: no corpora beside the workspace"
        );
        return;
    }
    if !have_python("corpora_token_offsets_agree_with_python") {
        return;
    }
    for f in files {
        assert!(check_token_offsets(&f) > 0, "{}", f.display());
    }
}
