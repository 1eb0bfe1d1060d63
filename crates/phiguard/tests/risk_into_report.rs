#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `phiguard risk --deid-report`: the risk of a de-identified table goes into the
//! de-identification report of the run that produced it (JSON `risk` array and a Markdown
//! section), replacing its own entry on a re-run, and nothing changes when the report path is
//! wrong. Fixture: tests/data/cross/patients.csv plus made-up rows (written to a temp folder).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const QI: &str = "BIRTHDATE,GENDER,ZIP";

/// Made-up patients (no real person) added to the one-patient cross-format fixture so that the
/// table has classes of several sizes after Safe Harbor (birth year, sex, ZIP3).
const EXTRA_ROWS: &str = "\
a0000000-0000-4000-8000-000000000001,1961-09-30,999-41-0001,Ada,Brook,F,1 Elm Road,Westborough,Massachusetts,01581
a0000000-0000-4000-8000-000000000002,1961-01-02,999-41-0002,Bea,Crane,F,2 Elm Road,Westborough,Massachusetts,01582
a0000000-0000-4000-8000-000000000003,1975-03-04,999-41-0003,Cal,Dane,M,3 Oak Street,Cambridge,Massachusetts,02139
a0000000-0000-4000-8000-000000000004,1975-11-12,999-41-0004,Dov,Eads,M,4 Oak Street,Cambridge,Massachusetts,02138
a0000000-0000-4000-8000-000000000005,1988-06-07,999-41-0005,Eve,Fenn,F,5 Pine Way,Cambridge,Massachusetts,02139
";

fn phiguard(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// k and the number of classes over `qis`, counted directly from the CSV (no quoted fields in
/// this table).
fn k_and_classes(csv: &Path, qis: &[&str]) -> (usize, usize) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx: Vec<usize> = qis
        .iter()
        .map(|q| header.iter().position(|h| h == q).unwrap())
        .collect();
    let mut classes: HashMap<Vec<String>, usize> = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        let key = idx.iter().map(|&i| cells[i].to_string()).collect();
        *classes.entry(key).or_default() += 1;
    }
    (*classes.values().min().unwrap(), classes.len())
}

struct Run {
    _dir: tempfile::TempDir,
    home: PathBuf,
    out: PathBuf,
    table: PathBuf,
}

/// De-identifies the fixture with `phiguard deid --profile safe-harbor` into a temp folder.
fn deid_run() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cross/patients.csv");
    let mut text = std::fs::read_to_string(&fixture).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(EXTRA_ROWS);
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("patients.csv"), text).unwrap();
    let home = dir.path().join("home");
    let key = dir.path().join("deid.key");
    let out = dir.path().join("out");
    let res = phiguard(
        &[
            "deid",
            "--profile",
            "safe-harbor",
            "--no-audit",
            "--key-file",
            key.to_str().unwrap(),
            input.join("patients.csv").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        &home,
    );
    ok(&res, "deid");
    let table = out.join("patients.csv");
    assert!(table.is_file() && out.join("deid-report.json").is_file());
    Run {
        _dir: dir,
        home,
        out,
        table,
    }
}

fn risk(run: &Run, qi: &str, extra: &[&str]) -> Output {
    let mut args = vec!["risk", run.table.to_str().unwrap(), "--qi", qi];
    args.extend_from_slice(extra);
    phiguard(&args, &run.home)
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn heading_lines(md: &str, heading: &str) -> usize {
    md.lines().filter(|l| *l == heading).count()
}

/// The files directly in `dir` (temporary files included) and their bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn risk_goes_into_the_deid_report_and_replaces_its_entry() {
    let run = deid_run();
    let json_path = run.out.join("deid-report.json");
    let md_path = run.out.join("deid-report.md");
    let json_before = std::fs::read_to_string(&json_path).unwrap();
    let md_before = std::fs::read_to_string(&md_path).unwrap();
    let (k, classes) = k_and_classes(&run.table, &["BIRTHDATE", "GENDER", "ZIP"]);
    assert!(k >= 1 && classes >= 2, "k {k}, classes {classes}");

    let res = risk(&run, QI, &["--deid-report", run.out.to_str().unwrap()]);
    ok(&res, "risk --deid-report");
    assert!(res.stdout.is_empty(), "nothing on stdout without --output");

    // The JSON: every member of the run's report as it was, plus the risk array.
    let json_after = std::fs::read_to_string(&json_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json_after).unwrap();
    let entries = v["risk"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["measures"]["k"], k);
    assert_eq!(entries[0]["measures"]["equivalence_classes"], classes);
    assert_eq!(entries[0]["records_read"], 6);
    v.as_object_mut().unwrap().remove("risk");
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(&json_before).unwrap()
    );
    let cut = json_after.find(",\n  \"risk\": [").unwrap();
    assert!(json_before.starts_with(&json_after[..cut]), "bytes kept");

    // The entry is exactly what `phiguard risk --json` prints for the same table.
    let plain = risk(&run, QI, &["--json"]);
    ok(&plain, "risk --json");
    let printed: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(entries[0], printed);
    // Counts only: no quasi-identifier value of the table, no PHI of the source.
    let entry_text = serde_json::to_string(&entries[0]).unwrap();
    for value in [
        "\"015\"",
        "\"021\"",
        "\"1961\"",
        "Massachusetts",
        "Quillfeather",
        "01581",
        "1961-04-12",
        "999-41",
    ] {
        assert!(!entry_text.contains(value), "{value} in {entry_text}");
    }

    // The Markdown: the run's report, then the section, rendered as `--markdown` renders it.
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.starts_with(md_before.trim_end()), "{md}");
    assert_eq!(heading_lines(&md, "## Re-identification risk"), 1, "{md}");
    assert!(md.contains(&format!("| k-anonymity (smallest class) | {k} |")));
    assert!(md.contains(&format!("| equivalence classes | {classes} |")));
    let plain_md = risk(&run, QI, &["--markdown"]);
    ok(&plain_md, "risk --markdown");
    let plain_md = String::from_utf8(plain_md.stdout).unwrap();
    let demoted: String = plain_md
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("##{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(md.contains(&demoted), "{md}\n---\n{demoted}");

    // Again, the same columns in another order, with a search and the JSON file as the path:
    // the entry is replaced, not added.
    let res = risk(
        &run,
        "GENDER,ZIP,BIRTHDATE",
        &[
            "--k",
            "2",
            "--max-suppression",
            "0.5",
            "--deid-report",
            json_path.to_str().unwrap(),
        ],
    );
    ok(&res, "second risk --deid-report");
    let v = read_json(&json_path);
    let entries = v["risk"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "replaced, not duplicated");
    assert_eq!(entries[0]["search"]["target"]["k"], 2);
    assert!(entries[0]["measures"]["k"].as_u64().unwrap() >= 2);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert_eq!(heading_lines(&md, "## Re-identification risk"), 1, "{md}");
    assert_eq!(
        md.matches("### Re-identification risk: ").count(),
        1,
        "{md}"
    );
    assert!(md.contains("#### Generalisation search"), "{md}");

    // Another quasi-identifier set of the same table is a second entry.
    let res = risk(
        &run,
        "GENDER",
        &["--deid-report", run.out.to_str().unwrap()],
    );
    ok(&res, "third risk --deid-report");
    let v = read_json(&json_path);
    assert_eq!(v["risk"].as_array().unwrap().len(), 2);
    let (k_gender, _) = k_and_classes(&run.table, &["GENDER"]);
    assert_eq!(v["risk"][1]["measures"]["k"], k_gender);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert_eq!(heading_lines(&md, "## Re-identification risk"), 1);
    assert_eq!(md.matches("### Re-identification risk: ").count(), 2);
    assert!(md.starts_with(md_before.trim_end()));

    // A target that cannot be reached: exit 4, and the report is still written (replacing the
    // entry of the same columns).
    let res = risk(
        &run,
        QI,
        &["--k", "99", "--deid-report", run.out.to_str().unwrap()],
    );
    assert_eq!(
        res.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = read_json(&json_path);
    assert_eq!(v["risk"].as_array().unwrap().len(), 2);
    assert_eq!(v["risk"][0]["search"]["reached"], false);
    assert!(
        std::fs::read_to_string(&md_path)
            .unwrap()
            .contains("**Target not reached.**")
    );
}

#[test]
fn a_bad_report_path_fails_and_changes_nothing() {
    let run = deid_run();
    // Set up the bad targets first, then snapshot everything.
    let work = run.out.parent().unwrap().to_path_buf();
    let plain = risk(
        &run,
        QI,
        &[
            "--json",
            "--output",
            work.join("risk.json").to_str().unwrap(),
        ],
    );
    ok(&plain, "risk --output");
    std::fs::write(work.join("risk.md"), "# not a deid report\n").unwrap();
    let other = work.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("deid-report.json"),
        "{\n  \"tool\": \"someone-else 1.0\"\n}",
    )
    .unwrap();
    std::fs::write(other.join("deid-report.md"), "# a report\n").unwrap();
    let broken = work.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("deid-report.json"), "{\"tool\": \"phiguard").unwrap();
    std::fs::write(broken.join("deid-report.md"), "# a report\n").unwrap();
    // A real report whose Markdown is missing.
    let no_md = work.join("no-md");
    std::fs::create_dir_all(&no_md).unwrap();
    std::fs::copy(
        run.out.join("deid-report.json"),
        no_md.join("deid-report.json"),
    )
    .unwrap();

    let folders = [
        run.out.clone(),
        work.clone(),
        other.clone(),
        broken.clone(),
        no_md.clone(),
    ];
    let before: Vec<_> = folders.iter().map(|f| snapshot(f)).collect();
    for (bad, expect) in [
        (work.join("missing"), "no such folder or file"),
        (work.join("in"), "cannot read the de-identification report"),
        (
            run.table.clone(),
            "expected a de-identification report folder",
        ),
        (
            work.join("risk.json"),
            "not a phiguard de-identification report",
        ),
        (other.clone(), "not a phiguard de-identification report"),
        (broken.clone(), "not a JSON object"),
        (no_md.clone(), "deid-report.md"),
        // Right report, wrong column: the assessment fails before anything is written.
        (run.out.join("deid-report.json"), ""),
    ] {
        let qi = if expect.is_empty() {
            "NO_SUCH_COLUMN"
        } else {
            QI
        };
        let res = risk(&run, qi, &["--deid-report", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{}: {err}", bad.display());
        assert!(err.contains(expect), "{}: {err}", bad.display());
        assert!(res.stdout.is_empty());
    }
    let after: Vec<_> = folders.iter().map(|f| snapshot(f)).collect();
    assert!(before == after, "a failed run changed or left files");
}
