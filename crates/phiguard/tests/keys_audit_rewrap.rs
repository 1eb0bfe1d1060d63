//! Key rotation and the embedded audit store: revoking the KEK version the store's records are
//! wrapped under is refused until `keys rewrap --audit` has moved them; after that the old
//! version is revoked, every record still reads, new records append, and the export verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .env_remove("PHIGUARD_KEY_PASSPHRASE")
        .output()
        .unwrap()
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn revoke_waits_for_the_audit_store_to_be_rewrapped() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    for i in 0..3 {
        ok(
            home,
            &[
                "audit",
                "append",
                "--json",
                &format!(r#"{{"user":"u{i}","action":"a"}}"#),
            ],
        );
    }
    ok(home, &["keys", "rotate"]);
    ok(
        home,
        &["audit", "append", "--json", r#"{"user":"u9","action":"b"}"#],
    );

    // Refused: three records, the record of the rotation itself (written before it), the
    // store's key check and its database file's page key are still under v1.
    let out = run(home, &["keys", "revoke", "v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("6 encrypted items") && err.contains("rewrap --audit"),
        "{err}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&ok(home, &["keys", "status", "--json"])).unwrap();
    assert!(
        status["versions"][0]["revoked"].is_null(),
        "v1 must not be revoked: {status}"
    );

    // Rewrap moves them (the records appended after rotation — an audit record and the
    // rewrap's own — were already current).
    let out: serde_json::Value =
        serde_json::from_str(&ok(home, &["keys", "rewrap", "--audit", "--json"])).unwrap();
    assert_eq!(out["audit"]["rewrapped"], 4, "{out}");
    assert_eq!(out["audit"]["already_current"], 2, "{out}");
    // Resumable: a second run finds nothing to do.
    let again: serde_json::Value =
        serde_json::from_str(&ok(home, &["keys", "rewrap", "--audit", "--json"])).unwrap();
    assert_eq!(again["audit"]["rewrapped"], 0, "{again}");
    assert_eq!(again["audit"]["already_current"], 7, "{again}");

    ok(home, &["keys", "revoke", "v1"]);
    // Every record reads, new ones append, the export verifies.
    ok(
        home,
        &["audit", "append", "--json", r#"{"user":"u5","action":"c"}"#],
    );
    let q = ok(home, &["audit", "query", "--user", "u0"]);
    assert!(q.contains(r#""user":"u0""#), "{q}");
    let export = home.join("e.jsonl");
    ok(
        home,
        &["audit", "export", "--output", export.to_str().unwrap()],
    );
    let key = ok(home, &["audit", "public-key"]);
    ok(
        home,
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--public-key",
            key.trim(),
        ],
    );
}

#[test]
fn forcing_a_revoke_locks_the_store_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok(
        home,
        &["audit", "append", "--json", r#"{"user":"u1","action":"a"}"#],
    );
    ok(home, &["keys", "rotate"]);
    ok(home, &["keys", "revoke", "v1", "--force"]);
    let out = run(
        home,
        &["audit", "append", "--json", r#"{"user":"u1","action":"b"}"#],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is encrypted and cannot be opened") && err.contains("revoked"),
        "{err}"
    );
}

#[test]
fn key_use_is_recorded_before_it_happens_without_names_and_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Exports are often named after the patient: the name must not reach the trail.
    let plain = dir.path().join("Quentin_Marlowe_MRN_4471902.txt");
    std::fs::write(&plain, b"lab results").unwrap();
    let sealed = dir.path().join("out.pgenc");
    let back = dir.path().join("back.txt");
    ok(
        &home,
        &[
            "keys",
            "encrypt",
            "--context",
            "purpose=export",
            plain.to_str().unwrap(),
            sealed.to_str().unwrap(),
        ],
    );
    ok(
        &home,
        &[
            "keys",
            "decrypt",
            sealed.to_str().unwrap(),
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&back).unwrap(), b"lab results");

    let out = ok(&home, &["audit", "query", "--field", "type=keys.use"]);
    let uses: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(uses.len(), 2, "{out}");
    let ops: Vec<&str> = uses
        .iter()
        .map(|u| u["record"]["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ops, ["encrypt", "decrypt"], "{out}");
    for u in &uses {
        let r = &u["record"];
        assert_eq!(r["kek_version"], 1, "{u}");
        assert!(r["kek_id"].is_string(), "{u}");
        assert!(r["input"].as_str().unwrap().starts_with("sha256:"), "{u}");
        assert_eq!(r["context_keys"], serde_json::json!(["purpose"]), "{u}");
    }
    assert!(
        !out.contains("Quentin") && !out.contains("4471902"),
        "{out}"
    );

    // The trail cannot be written: nothing is decrypted.
    let page_key = home.join("audit/audit.db.pgkey");
    let saved = std::fs::read(&page_key).unwrap();
    std::fs::write(&page_key, b"{}").unwrap();
    let again = dir.path().join("again.txt");
    let out = run(
        &home,
        &[
            "keys",
            "decrypt",
            sealed.to_str().unwrap(),
            again.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        !again.exists(),
        "decrypted although the key use was not recorded"
    );
    std::fs::write(&page_key, saved).unwrap();
}
