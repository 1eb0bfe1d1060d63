//! `phiguard audit` end to end: the real binary appends, signs, exports, verifies, queries and
//! proves; exported files are tampered with in every way the verifier must name (modified,
//! deleted, inserted, reordered, truncated tail, bad signature), and a lying server signs a
//! checkpoint its records do not match.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use phiguard_audit::note::load_signer;
use phiguard_audit::verify::{verify_consistency, verify_inclusion};
use phiguard_audit::{Checkpoint, VerifierKey, leaf_hash};
use serde_json::{Value, json};

/// The exit code of a failed verification.
const INVALID: i32 = 4;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// Runs `phiguard audit ARGS` with PHIGUARD_HOME inside the fixture.
    fn audit(&self, args: &[&str]) -> Output {
        self.audit_stdin(args, None)
    }

    fn audit_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phiguard"));
        cmd.arg("audit")
            .args(args)
            .current_dir(self.dir.path())
            .env("PHIGUARD_HOME", self.home())
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.audit(args);
        assert!(
            out.status.success(),
            "phiguard audit {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Appends `n` records `{"user":"u<i>","patient_ref":"p<i>",...}` in one batch.
    fn append_records(&self, n: usize) {
        let lines: String = (0..n)
            .map(|i| {
                json!({
                    "user": format!("u{i}"),
                    "patient_ref": format!("p{i}"),
                    "model": if i % 2 == 0 { "gpt-4o" } else { "llama-3" },
                    "action": if i % 3 == 0 { "coding" } else { "summarization" },
                })
                .to_string()
                    + "\n"
            })
            .collect();
        let file = self.path("records.jsonl");
        std::fs::write(&file, lines).unwrap();
        let out = self.ok(&["append", "--jsonl", file.to_str().unwrap()]);
        assert_eq!(out.lines().count(), n);
    }

    fn public_key(&self) -> String {
        self.ok(&["public-key"]).trim().to_string()
    }

    /// Exports the log and returns its lines.
    fn export(&self) -> Vec<String> {
        let file = self.path("export.jsonl");
        self.ok(&["export", "--output", file.to_str().unwrap()]);
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Writes `lines` as an export and verifies it: (exit code, stdout).
    fn verify_lines(&self, lines: &[String], extra: &[&str]) -> (i32, String) {
        let file = self.path("tampered.jsonl");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let key = self.public_key();
        let mut args = vec![
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            key.as_str(),
        ];
        args.extend_from_slice(extra);
        let out = self.audit(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    }
}

/// The `[kind]` tags of a failed verification's problem lines.
fn kinds(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ["))
        .filter_map(|l| l.split(']').next())
        .map(str::to_string)
        .collect()
}

fn line_of(lines: &[String], index: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v.get("index").and_then(Value::as_u64))
                == Some(index)
        })
        .unwrap()
}

#[test]
fn intact_export_verifies_offline_and_files_live_under_phiguard_home() {
    let f = Fixture::new();
    f.append_records(10);
    let lines = f.export();
    assert_eq!(lines.len(), 11);
    let (code, out) = f.verify_lines(&lines, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 10 records intact"), "{out}");

    let db = f.home().join("audit/audit.db");
    let key = f.home().join("keys/audit-signing.key");
    assert!(db.is_file() && key.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&db), 0o600);
    }
    // The export was written atomically: nothing else is left beside it.
    let names: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");

    // JSON output of the verifier
    let file = f.path("ok.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let key = f.public_key();
    let out = f.ok(&[
        "verify",
        file.to_str().unwrap(),
        "--public-key",
        &key,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["records"], 10);
    assert_eq!(v["checkpoint"]["size"], 10);
}

#[test]
fn every_kind_of_tampering_is_detected_with_its_own_message() {
    let f = Fixture::new();
    f.append_records(10);
    let lines = f.export();
    let mut first_messages = Vec::new();

    // modified record: the message names its index
    let mut modified = lines.clone();
    let at = line_of(&lines, 3);
    modified[at] = modified[at].replace("\"u3\"", "\"u9\"");
    let (code, out) = f.verify_lines(&modified, &[]);
    assert_eq!(code, INVALID, "{out}");
    assert_eq!(kinds(&out)[0], "modified", "{out}");
    assert!(out.contains("record 3 (line 5) was modified"), "{out}");
    first_messages.push(kinds(&out)[0].clone());

    // deleted record
    let mut deleted = lines.clone();
    deleted.remove(line_of(&lines, 5));
    let (code, out) = f.verify_lines(&deleted, &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["deleted"], "{out}");
    assert!(out.contains("record 5 is missing"), "{out}");
    first_messages.push(kinds(&out)[0].clone());

    // inserted record: a forged line with a correct leaf hash, claiming index 4
    let forged_leaf = r#"{"appended_at":"2025-01-01T00:00:00.000000Z","record":{"action":"coding","user":"mallory"}}"#;
    let forged = format!(
        r#"{{"index":4,"leaf_hash":"{}","leaf":{forged_leaf}}}"#,
        hex::encode(leaf_hash(forged_leaf.as_bytes()))
    );
    let mut inserted = lines.clone();
    inserted.insert(line_of(&lines, 4), forged);
    let (code, out) = f.verify_lines(&inserted, &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out)[0], "inserted", "{out}");
    assert!(out.contains("record 4 appears more than once"), "{out}");
    first_messages.push(kinds(&out)[0].clone());

    // reordered records
    let mut reordered = lines.clone();
    reordered.swap(line_of(&lines, 6), line_of(&lines, 7));
    let (code, out) = f.verify_lines(&reordered, &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out)[0], "reordered", "{out}");
    assert!(out.contains("record 6 comes after record 7"), "{out}");
    first_messages.push(kinds(&out)[0].clone());

    // truncated tail: the root no longer matches the signed size
    let truncated = lines[..8].to_vec();
    let (code, out) = f.verify_lines(&truncated, &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["truncated"], "{out}");
    assert!(
        out.contains("ends after 7 records but the signed checkpoint covers 10"),
        "{out}"
    );
    first_messages.push(kinds(&out)[0].clone());

    // bad signature: one character of the signature changed
    let mut bad_sig = lines.clone();
    let header: Value = serde_json::from_str(&lines[0]).unwrap();
    let note = header["checkpoint"].as_str().unwrap();
    let sig_start = note.rfind(' ').unwrap() + 1;
    let mut chars: Vec<char> = note.chars().collect();
    let pos = note[..sig_start].chars().count() + 20;
    chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
    let bad_note: String = chars.into_iter().collect();
    bad_sig[0] = json!({"format": "phiguard-audit-export", "version": 1, "checkpoint": bad_note})
        .to_string();
    let (code, out) = f.verify_lines(&bad_sig, &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["bad_signature"], "{out}");
    assert!(out.contains("not valid"), "{out}");
    first_messages.push(kinds(&out)[0].clone());

    let mut distinct = first_messages.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), first_messages.len(), "{first_messages:?}");
}

#[test]
fn a_different_public_key_is_a_bad_signature() {
    let f = Fixture::new();
    f.append_records(3);
    let lines = f.export();
    let other = Fixture::new();
    let other_key = other.public_key();
    let file = f.path("e.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = f.audit(&["verify", file.to_str().unwrap(), "--public-key", &other_key]);
    assert_eq!(out.status.code(), Some(INVALID));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(kinds(&stdout), ["bad_signature"], "{stdout}");
    assert!(stdout.contains("no signature by key"), "{stdout}");

    // and the key can be given as a file
    let key_file = f.path("key.pub");
    std::fs::write(&key_file, f.public_key() + "\n").unwrap();
    let out = f.audit(&[
        "verify",
        file.to_str().unwrap(),
        "--public-key",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

/// The log's operator holds the signing key and signs checkpoints its export does not back.
#[test]
fn lying_server_is_caught() {
    let f = Fixture::new();
    f.append_records(10);
    let lines = f.export();
    let signer = load_signer(&f.home().join("keys/audit-signing.key")).unwrap();
    let header: Value = serde_json::from_str(&lines[0]).unwrap();
    let honest = signer
        .verifier()
        .open_checkpoint(header["checkpoint"].as_str().unwrap())
        .unwrap();
    let with_checkpoint = |c: &Checkpoint| {
        let mut out = lines.clone();
        let note = signer.sign(&c.to_text()).unwrap();
        out[0] = json!({"format": "phiguard-audit-export", "version": 1, "checkpoint": note})
            .to_string();
        out
    };

    // The claimed root is not the root of the records.
    let mut wrong_root = honest.clone();
    wrong_root.root[0] ^= 1;
    let (code, out) = f.verify_lines(&with_checkpoint(&wrong_root), &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["root_mismatch"], "{out}");

    // The claimed size is larger than the records it serves.
    let mut bigger = honest.clone();
    bigger.size = 12;
    let (code, out) = f.verify_lines(&with_checkpoint(&bigger), &[]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["truncated"], "{out}");

    // The claimed size is smaller: records beyond it are not covered by any signature.
    let mut smaller = honest.clone();
    smaller.size = 8;
    let (code, out) = f.verify_lines(&with_checkpoint(&smaller), &[]);
    assert_eq!(code, INVALID);
    assert!(kinds(&out).iter().all(|k| k == "inserted"), "{out}");
    assert!(out.contains("beyond the 8 records"), "{out}");

    // Records rewritten with fresh leaf hashes and a fresh signed root: only an older
    // checkpoint kept outside the log catches this.
    let old_cp = f.path("old.cp");
    std::fs::write(&old_cp, header["checkpoint"].as_str().unwrap()).unwrap();
    let mut rewritten = lines.clone();
    let mut hashes = Vec::new();
    for (i, line) in rewritten.iter_mut().enumerate().skip(1) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if i == 3 {
            v["leaf"]["record"]["user"] = json!("mallory");
        }
        let leaf = phiguard_audit::canonical::to_canonical_string(&v["leaf"]);
        let h = leaf_hash(leaf.as_bytes());
        hashes.push(h);
        *line = format!(
            r#"{{"index":{},"leaf_hash":"{}","leaf":{leaf}}}"#,
            v["index"],
            hex::encode(h)
        );
    }
    let forged = Checkpoint {
        root: phiguard_audit::tree::reference_root(&hashes),
        ..honest.clone()
    };
    let rewritten = {
        let mut r = rewritten;
        r[0] = with_checkpoint(&forged)[0].clone();
        r
    };
    let (code, out) = f.verify_lines(&rewritten, &[]);
    assert_eq!(
        code, 0,
        "a consistent forgery passes without history: {out}"
    );
    let (code, out) = f.verify_lines(&rewritten, &["--checkpoint", old_cp.to_str().unwrap()]);
    assert_eq!(code, INVALID);
    assert_eq!(kinds(&out), ["inconsistent"], "{out}");
}

#[test]
fn older_checkpoint_catches_a_rewritten_or_truncated_database() {
    let f = Fixture::new();
    f.append_records(6);
    let old_cp = f.path("old.cp");
    std::fs::write(&old_cp, f.ok(&["checkpoint"])).unwrap();
    f.append_records(2);
    let lines = f.export();
    let (code, out) = f.verify_lines(&lines, &["--checkpoint", old_cp.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("consistent with the older checkpoint of size 6"),
        "{out}"
    );

    // The local store verifies against it too.
    let out = f.ok(&["verify", "--checkpoint", old_cp.to_str().unwrap()]);
    assert!(out.starts_with("OK: 8 records intact"), "{out}");

    // A rewritten database (same key, another history) and a truncated one.
    let key = f.home().join("keys/audit-signing.key");
    for (name, n, kind) in [
        ("rewritten.db", 9, "inconsistent"),
        ("short.db", 4, "rolled_back"),
    ] {
        let db = f.path(name);
        let records: String = (0..n).map(|i| format!("{{\"user\":\"x{i}\"}}\n")).collect();
        let args = [
            "--db",
            db.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ];
        let out = f.audit_stdin(
            &[&["append", "--jsonl", "-"][..], &args[..]].concat(),
            Some(&records),
        );
        assert!(out.status.success());
        let export = f.path(&format!("{name}.export"));
        f.ok(&[
            &["export", "--output", export.to_str().unwrap()][..],
            &args[..],
        ]
        .concat());
        let lines: Vec<String> = std::fs::read_to_string(&export)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let (code, out) = f.verify_lines(&lines, &["--checkpoint", old_cp.to_str().unwrap()]);
        assert_eq!(code, INVALID, "{name}: {out}");
        assert_eq!(kinds(&out), [kind], "{name}: {out}");
        // the store check says the same
        let out = f.audit(
            &[
                &["verify", "--checkpoint", old_cp.to_str().unwrap()][..],
                &args[..],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(INVALID), "{name}");
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains(&format!("[{kind}]"))
        );
    }
}

#[test]
fn checkpoint_and_proofs_verify_with_the_public_key() {
    let f = Fixture::new();
    f.append_records(13);
    let note = f.ok(&["checkpoint"]);
    let key = VerifierKey::parse(&f.public_key()).unwrap();
    let cp = key.open_checkpoint(&note).unwrap();
    assert_eq!(cp.size, 13);
    assert!(note.contains("\n\n\u{2014} phiguard/audit/"), "{note}");

    let out: Value = serde_json::from_str(&f.ok(&["prove", "--index", "5"])).unwrap();
    let b64 = |s: &Value| -> [u8; 32] {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let proof: Vec<[u8; 32]> = out["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    let leaf: [u8; 32] = hex::decode(out["leaf_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(out["tree_size"], 13);
    assert_eq!(b64(&out["root"]), cp.root);
    verify_inclusion(5, 13, &leaf, &proof, &cp.root).unwrap();

    let out: Value = serde_json::from_str(&f.ok(&["prove", "--old-size", "6"])).unwrap();
    let proof: Vec<[u8; 32]> = out["consistency_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    verify_consistency(6, 13, &b64(&out["old_root"]), &cp.root, &proof).unwrap();
}

#[test]
fn query_by_field_and_time_as_json_ndjson_and_csv() {
    let f = Fixture::new();
    f.append_records(12);
    let out: Value = serde_json::from_str(&f.ok(&["query", "--user", "u4"])).unwrap();
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["index"], 4);
    assert_eq!(rows[0]["record"]["patient_ref"], "p4");

    let out = f.ok(&[
        "query", "--model", "gpt-4o", "--action", "coding", "--format", "ndjson",
    ]);
    let idx: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(idx, [0, 6]);

    let out = f.ok(&["query", "--patient-ref", "p7", "--format", "csv"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("index,appended_at,user,patient_ref,model,action,record")
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("7,"), "{row}");
    assert!(row.contains(",u7,p7,llama-3,summarization,\"{"), "{row}");
    assert_eq!(lines.next(), None);

    let out: Value = serde_json::from_str(&f.ok(&["query", "--since", "2999-01-01"])).unwrap();
    assert_eq!(out.as_array().unwrap().len(), 0);
    let out: Value = serde_json::from_str(&f.ok(&[
        "query",
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2999-01-01",
        "--field",
        "action=summarization",
        "--limit",
        "3",
    ]))
    .unwrap();
    assert_eq!(out.as_array().unwrap().len(), 3);

    let file = f.path("q.csv");
    f.ok(&[
        "query",
        "--format",
        "csv",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(file).unwrap().lines().count(), 13);
}

#[test]
fn config_is_accepted_and_bad_input_never_echoes_record_content() {
    let f = Fixture::new();
    let config = f.path("phiguard.toml");
    std::fs::write(&config, "# no audit settings yet\n").unwrap();
    f.ok(&[
        "append",
        "--json",
        r#"{"user":"a"}"#,
        "--config",
        config.to_str().unwrap(),
    ]);
    let out = f.audit(&["checkpoint", "--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(1));

    let out = f.audit(&["append", "--json", r#"{"note":"John Smith has"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(!err.contains("John"), "{err}");

    let out = f.audit(&["append", "--json", r#"["John Smith"]"#]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!err.contains("John"), "{err}");

    let out = f.audit_stdin(
        &["append", "--jsonl", "-"],
        Some("{\"user\":\"b\"}\n\"Jane Roe 555-0199\"\n"),
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("Jane"), "{err}");

    // verifying an export needs the public key
    let out = f.audit(&["verify", "whatever.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    // a file that is not an export
    let junk = f.path("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let key = f.public_key();
    let out = f.audit(&["verify", junk.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(out.status.code(), Some(INVALID));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("[not_an_export]")
    );
}

#[test]
fn bench_prints_figures() {
    let f = Fixture::new();
    let dir = f.path("bench");
    let out = f.ok(&[
        "bench",
        "--records",
        "3000",
        "--batch-size",
        "500",
        "--single",
        "20",
        "--encrypted-records",
        "1000",
        "--json",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["group_commit"]["records"], 3000);
    assert!(v["group_commit"]["per_second"].as_f64().unwrap() > 0.0);
    assert!(v["single"]["per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["verify_export"]["records"], 3000);
    assert_eq!(v["verify_store"]["records"], 3000);
    assert!(v["inclusion_proof_us"].as_f64().unwrap() > 0.0);
    for store in [
        "plaintext",
        "payloads_encrypted",
        "file_and_payloads_encrypted",
    ] {
        assert_eq!(v["encryption"][store]["records"], 1000, "{v}");
        assert!(v["encryption"][store]["per_second"].as_f64().unwrap() > 0.0);
    }
    // the temporary store is removed afterwards
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_store_made_before_file_encryption_is_encrypted_in_place() {
    let f = Fixture::new();
    let db = f.home().join("audit/audit.db");
    // A plaintext store, as phiguard wrote them before file encryption.
    {
        let mut log = phiguard_audit::AuditLog::open(&db).unwrap();
        for i in 0..30 {
            log.append(&json!({"user": "u-legacy", "patient_ref": format!("legacy-ref-{i}")}))
                .unwrap();
        }
    }
    let grep = |needle: &str| {
        let mut bytes = std::fs::read(&db).unwrap();
        if let Ok(w) = std::fs::read(f.home().join("audit/audit.db-wal")) {
            bytes.extend(w);
        }
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(grep("legacy-ref-17"));
    let before = f.ok(&["verify", "--json"]);
    let out = f.ok(&["encrypt-store"]);
    assert!(out.contains("tree of 30 records"), "{out}");
    assert!(!grep("legacy-ref-17") && !grep("SQLite format 3"));
    assert!(f.home().join("audit/audit.db.pgkey").exists());
    let again = f.ok(&["encrypt-store"]);
    assert!(again.contains("already encrypted"), "{again}");
    // Same tree, records still readable, appends go on.
    let after = f.ok(&["verify", "--json"]);
    let (b, a): (Value, Value) = (
        serde_json::from_str(&before).unwrap(),
        serde_json::from_str(&after).unwrap(),
    );
    assert_eq!(
        (a["intact"].clone(), a["records"].clone()),
        (json!(true), json!(30))
    );
    assert!(a["computed_root"].is_string(), "{a}");
    assert_eq!(a["computed_root"], b["computed_root"], "{a}");
    let q = f.ok(&["query", "--patient-ref", "legacy-ref-17"]);
    assert!(q.contains("u-legacy"), "{q}");
    f.append_records(2);
    assert!(!grep("legacy-ref-17"));
}
