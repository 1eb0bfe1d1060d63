//! The restore drill: append records and sign a checkpoint, back up, append more, restore
//! into a fresh home, and check that the audit tree verifies and holds exactly the backed-up
//! records. A corrupted, truncated or wrongly keyed backup is refused with nothing touched, and
//! an existing home is replaced only with --force (the old one kept aside, its keys carried
//! over).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn phiguard(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("PHIGUARD_KEY_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Appends `n` records starting at `from`; returns their acknowledged leaf hashes.
fn append(home: &Path, from: u64, n: u64) -> Vec<String> {
    let file = home.with_extension(format!("in-{from}.jsonl"));
    let text: String = (from..from + n)
        .map(|i| {
            format!(
                "{}\n",
                json!({"user": "svc", "patient_ref": format!("p-{i}"), "n": i})
            )
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = ok(&phiguard(
        home,
        &[
            "audit",
            "append",
            "--jsonl",
            file.to_str().unwrap(),
            "--batch-size",
            "4",
        ],
    ));
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["leaf_hash"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Every file under `dir` with its bytes, to prove a refused restore touched nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restore_drill_recovers_exactly_the_backed_up_tree_and_refuses_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let backup = dir.path().join("backups/phiguard.pgbak");

    let before = append(&home, 0, 20);
    ok(&phiguard(&home, &["audit", "checkpoint"]));
    let key = ok(&phiguard(&home, &["audit", "public-key"]));
    let key = key.trim();
    let out = ok(&phiguard(
        &home,
        &["backup", "--output", backup.to_str().unwrap(), "--json"],
    ));
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["audit"]["tree_size"], 20, "{summary}");
    assert_eq!(summary["files"][0]["path"], "audit/audit.db");
    let listed: Vec<&str> = summary["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(listed.contains(&"keys/audit-signing.key"), "{listed:?}");
    // The store's file is encrypted; its page-key file (wrapped, no secret) travels with it.
    assert_eq!(summary["files"][1]["path"], "audit/audit.db.pgkey");
    assert_eq!(summary["files"][1]["kind"], "sqlite-page-key");
    // No key bytes and no record text in the clear.
    let sealed = std::fs::read(&backup).unwrap();
    assert!(!sealed.windows(5).any(|w| w == b"p-12\""));
    assert!(!sealed.windows(15).any(|w| w == b"SQLite format 3"));
    let after = append(&home, 20, 7);
    assert_eq!(after.len(), 7);

    // Restore into a fresh home.
    let fresh = dir.path().join("fresh");
    let kek = home.join("keys/kek.json");
    let out = ok(&phiguard(
        &fresh,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--key-file",
            kek.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("audit tree size 20 verified"), "{out}");
    assert!(out.contains("restored 1 store into"), "{out}");
    let restored = std::fs::read(fresh.join("audit/audit.db")).unwrap();
    assert!(
        !restored.starts_with(b"SQLite format 3"),
        "restored encrypted"
    );
    let out = ok(&phiguard(
        &fresh,
        &["audit", "verify", "--public-key", key, "--json"],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"], 20);
    let export = dir.path().join("fresh-export.jsonl");
    ok(&phiguard(
        &fresh,
        &["audit", "export", "-o", export.to_str().unwrap()],
    ));
    let out = ok(&phiguard(
        &fresh,
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--public-key",
            key,
            "--json",
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    let hashes: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["leaf_hash"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(hashes, before, "exactly the backed-up records, in order");

    // A restore into a home that holds data needs --force.
    let err = failed(&phiguard(
        &fresh,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--key-file",
            kek.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("--force"), "{err}");

    // Corrupted (one flipped byte), truncated, or under another key: refused, nothing touched.
    let untouched = snapshot(&fresh);
    let mut corrupt = sealed.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    let corrupt_path = dir.path().join("corrupt.pgbak");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let truncated_path = dir.path().join("truncated.pgbak");
    std::fs::write(&truncated_path, &sealed[..sealed.len() - 100]).unwrap();
    for bad in [&corrupt_path, &truncated_path] {
        let err = failed(&phiguard(
            &fresh,
            &[
                "restore",
                bad.to_str().unwrap(),
                "--force",
                "--key-file",
                kek.to_str().unwrap(),
            ],
        ));
        assert!(err.contains("Nothing was changed"), "{err}");
        assert_eq!(snapshot(&fresh), untouched);
        let elsewhere = dir.path().join("never");
        let err = failed(&phiguard(
            &elsewhere,
            &[
                "restore",
                bad.to_str().unwrap(),
                "--key-file",
                kek.to_str().unwrap(),
            ],
        ));
        assert!(err.contains("refusing"), "{err}");
        assert!(!elsewhere.exists());
    }
    let other = dir.path().join("other");
    ok(&phiguard(&other, &["keys", "rotate"]));
    let err = failed(&phiguard(
        &dir.path().join("never2"),
        &[
            "restore",
            backup.to_str().unwrap(),
            "--key-file",
            other.join("keys/kek.json").to_str().unwrap(),
        ],
    ));
    assert!(err.contains("Nothing was changed"), "{err}");
    // No staging folder left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --force over the live home: back to 20 records, the 27-record home kept aside, keys kept.
    let signing_key = std::fs::read(home.join("keys/audit-signing.key")).unwrap();
    let out = ok(&phiguard(
        &home,
        &["restore", backup.to_str().unwrap(), "--force"],
    ));
    assert!(out.contains("pre-restore"), "{out}");
    assert_eq!(
        std::fs::read(home.join("keys/audit-signing.key")).unwrap(),
        signing_key
    );
    let out = ok(&phiguard(&home, &["audit", "verify", "--json"]));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"], 20);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("home.pre-restore-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let out = ok(&phiguard(
        &aside[0],
        &["audit", "verify", "--public-key", key, "--json"],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["records"], 27);

    // Disaster recovery: the original machine is gone; the backup and a copy of its key file
    // are all there is. The restored store opens under the key file put in the new home.
    let key_copy = dir.path().join("kek-copy.json");
    std::fs::copy(home.join("keys/kek.json"), &key_copy).unwrap();
    std::fs::rename(&home, dir.path().join("gone")).unwrap();
    for p in aside {
        std::fs::rename(&p, dir.path().join("gone-aside")).unwrap();
    }
    let rebuilt = dir.path().join("rebuilt");
    ok(&phiguard(
        &rebuilt,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--key-file",
            key_copy.to_str().unwrap(),
        ],
    ));
    let err = failed(&phiguard(&rebuilt, &["audit", "query", "--user", "svc"]));
    assert!(err.contains("no key file at"), "{err}");
    std::fs::create_dir_all(rebuilt.join("keys")).unwrap();
    std::fs::copy(&key_copy, rebuilt.join("keys/kek.json")).unwrap();
    let out = ok(&phiguard(
        &rebuilt,
        &["audit", "verify", "--public-key", key, "--json"],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["intact"].clone(), report["records"].clone()),
        (json!(true), json!(20))
    );
}
