//! `phiguard scan` driven as a user would: JSONL in and out, text files and folders, the
//! `--fail-on-phi` gate, and bad input named by file and line without quoting it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn phiguard(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .output()
        .expect("run phiguard")
}

const NOTE: &str = "Seen by Dr. Alan Whitcombe on 03/14/2024, MRN 4839201, phone 617-555-0142.";

#[test]
fn jsonl_in_jsonl_out_with_code_point_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.jsonl");
    let text = "Paciente José Núñez, nació el 03/03/1946 en Málaga.";
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n",
            serde_json::json!({"id": "a", "text": NOTE}),
            serde_json::json!({"id": 7, "text": text, "other": 1})
        ),
    )
    .unwrap();
    let out = dir.path().join("spans.jsonl");
    let o = phiguard(
        &[
            "scan",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[1]["id"], "7");
    // offsets are code points: slicing the text by chars gives the date
    let t: Vec<char> = text.chars().collect();
    let spans = lines[1]["spans"].as_array().unwrap();
    let texts: Vec<String> = spans
        .iter()
        .map(|s| {
            let (a, b) = (
                s["start"].as_u64().unwrap() as usize,
                s["end"].as_u64().unwrap() as usize,
            );
            t[a..b].iter().collect()
        })
        .collect();
    assert!(texts.iter().any(|s| s == "03/03/1946"), "{texts:?}");
    assert!(texts.iter().any(|s| s.contains("Núñez")), "{texts:?}");
    for s in spans {
        assert!(
            s["category"].is_string() && s["recognizer"].is_string() && s["confidence"].is_number()
        );
    }
}

#[test]
fn fail_on_phi_gates_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "Continue metformin 500 mg twice daily; HbA1c 7.2%.").unwrap();
    let o = phiguard(
        &["scan", clean.to_str().unwrap(), "--fail-on-phi"],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dirty = dir.path().join("dirty.txt");
    std::fs::write(&dirty, NOTE).unwrap();
    let o = phiguard(
        &["scan", dirty.to_str().unwrap(), "--fail-on-phi"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn folders_are_read_recursively_with_the_path_as_id() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("in/sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("b.txt"), NOTE).unwrap();
    std::fs::write(dir.path().join("in/a.txt"), "no identifiers here").unwrap();
    let o = phiguard(
        &["scan", dir.path().join("in").to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids[0].ends_with("a.txt") && ids[1].ends_with("b.txt"),
        "{ids:?}"
    );
}

#[test]
fn a_malformed_line_is_named_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n{{\"id\": \"b\", \"text\": \"John Smith\n",
            serde_json::json!({"id": "a", "text": NOTE})
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let o = phiguard(
        &[
            "scan",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert!(!err.contains("John") && !err.contains("Whitcombe"), "{err}");
    assert!(!out.exists(), "a failed run must not leave an output file");
    // --skip-invalid counts the line and goes on
    let o = phiguard(
        &[
            "scan",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--skip-invalid",
        ],
        dir.path(),
    );
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 skipped"));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);
}

#[test]
fn invalid_utf8_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("latin1.txt");
    std::fs::write(&input, b"Patient Mu\xf1oz seen today").unwrap();
    let o = phiguard(&["scan", input.to_str().unwrap()], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("latin1.txt") && err.contains("invalid UTF-8"),
        "{err}"
    );
    // The file's text never appears (the random temporary path may contain any letters, so it
    // is taken out before looking).
    let without_path = err.replace(input.to_str().unwrap(), "");
    assert!(
        !without_path.contains("Mu") && !without_path.contains("seen today"),
        "{err}"
    );
}

#[test]
fn stderr_of_a_scan_holds_no_phi() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("n.jsonl");
    std::fs::write(
        &input,
        format!("{}\n", serde_json::json!({"id": "a", "text": NOTE})),
    )
    .unwrap();
    let o = phiguard(
        &["scan", input.to_str().unwrap(), "--output", "-"],
        dir.path(),
    );
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    // the detector itself finds nothing identifying in what phiguard printed on stderr
    let spans = phiguard_detect::Detector::new().detect(&err);
    let leaked: Vec<&str> = spans
        .iter()
        .filter(|s| {
            !matches!(s.category, phiguard_detect::Category::Date) || err[s.start..s.end].len() > 4
        })
        .map(|s| &err[s.start..s.end])
        .collect();
    assert!(leaked.is_empty(), "stderr: {err}\nflagged: {leaked:?}");
    for needle in ["Whitcombe", "4839201", "617-555-0142", "03/14/2024"] {
        assert!(!err.contains(needle), "{err}");
    }
}
