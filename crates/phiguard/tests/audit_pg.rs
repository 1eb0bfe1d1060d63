//! The PostgreSQL audit store, shared by several writers: two threads with their own
//! connections and two real `phiguard audit append` processes append interleaved batches into
//! one database; the whole tree is then checked, exported and verified offline, and every
//! acknowledged record must be there exactly once. Retention: deleting or rewriting a record
//! is refused by the database, pruning after retention keeps every proof verifiable, and a
//! modified leaf hash is still detected.
//!
//! Needs PostgreSQL: PHIGUARD_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test,
//! set by .ci/setup.d/10-postgres.sh). Each test creates and drops its own database, so the
//! tests run in parallel. They fail when the server does not answer, unless PHIGUARD_SKIP_PG=1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use phiguard_audit::tree::reference_root;
use phiguard_audit::{Options, PgAuditLog, Signer, verify_export};
use serde_json::{Value, json};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database created for one test and dropped at its end.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// `None` only when PHIGUARD_SKIP_PG=1.
    fn new(tag: &str) -> Option<TestDb> {
        if std::env::var("PHIGUARD_SKIP_PG").is_ok_and(|v| v == "1") {
            eprintln!("PHIGUARD_SKIP_PG=1: skipping the PostgreSQL test {tag}");
            return None;
        }
        let admin_url =
            std::env::var("PHIGUARD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL does not answer at {admin_url} ({e}). Run .ci/setup.d/10-postgres.sh \
                 (or set PHIGUARD_TEST_PG_URL), or set PHIGUARD_SKIP_PG=1 to skip these tests."
            )
        });
        let mut random = [0u8; 6];
        getrandom(&mut random);
        let name = format!("phiguard_t_{tag}_{}", hex::encode(random));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (prefix, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    fn open(&self) -> PgAuditLog {
        PgAuditLog::connect(&self.url, Options::default()).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn getrandom(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    // Unique enough for database names: the process id, the time and a random hasher seed.
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        );
        let bytes = h.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

fn phiguard(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(args)
        .env("PHIGUARD_HOME", home)
        .env_remove("XDG_DATA_HOME")
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

/// Reads an export: `(writer, seq)` of every record with a leaf, by index.
fn export_records(path: &Path) -> BTreeMap<u64, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let v: Value = serde_json::from_str(line).unwrap();
        let index = v["index"].as_u64().unwrap();
        assert!(out.insert(index, v).is_none(), "index {index} twice");
    }
    out
}

#[test]
fn pg_migrations_are_recorded_once_and_reopen_keeps_state() {
    let Some(db) = TestDb::new("migrate") else {
        return;
    };
    let mut log = db.open();
    assert_eq!(log.applied_migrations().unwrap(), vec![1, 2]);
    log.append_batch(&[json!({"a": 1}), json!({"a": 2})])
        .unwrap();
    let head = log.tree_head().unwrap();
    drop(log);
    // Several instances starting at once: each migration is applied exactly once.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PgAuditLog::connect(&url, Options::default()).unwrap())
        })
        .collect();
    for h in handles {
        let mut log = h.join().unwrap();
        assert_eq!(log.applied_migrations().unwrap(), vec![1, 2]);
        assert_eq!(log.tree_head().unwrap(), head);
    }
}

#[test]
fn pg_two_threads_with_separate_connections_build_one_tree() {
    let Some(db) = TestDb::new("threads") else {
        return;
    };
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                let mut log = PgAuditLog::connect(&url, Options::default()).unwrap();
                let mut receipts = Vec::new();
                let mut seq = 0u64;
                for batch in 0..25u64 {
                    let n = 1 + (batch * 3 + w) % 7;
                    let records: Vec<Value> = (0..n)
                        .map(|k| json!({"writer": w, "seq": seq + k, "action": "summarize"}))
                        .collect();
                    seq += n;
                    for r in log.append_batch(&records).unwrap() {
                        receipts.push(r);
                    }
                }
                (w, seq, receipts)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut expected = 0;
    for h in writers {
        let (_, n, receipts) = h.join().unwrap();
        assert_eq!(receipts.len() as u64, n);
        expected += n;
        all.extend(receipts);
    }
    all.sort_by_key(|r| r.index);
    let indices: Vec<u64> = all.iter().map(|r| r.index).collect();
    assert_eq!(
        indices,
        (0..expected).collect::<Vec<_>>(),
        "gaps or duplicates"
    );
    let mut log = db.open();
    let head = log.tree_head().unwrap();
    assert_eq!(head.size, expected);
    let hashes: Vec<_> = all.iter().map(|r| r.leaf_hash).collect();
    assert_eq!(head.root, reference_root(&hashes));
    let check = log.check(None).unwrap();
    assert!(check.is_intact(), "{:?}", check.problems);
    // Every acknowledged record exactly once, with the content it was acknowledged for.
    let mut seen = BTreeSet::new();
    log.for_each_entry(0..expected, |e| -> Result<(), phiguard_audit::AuditError> {
        let v: Value = serde_json::from_str(&e.record).unwrap();
        assert!(seen.insert((v["writer"].as_u64().unwrap(), v["seq"].as_u64().unwrap())));
        assert_eq!(e.leaf_hash, all[e.index as usize].leaf_hash);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.len() as u64, expected);
    // Proofs from the shared store verify.
    let proof = log.inclusion_proof(5, head.size).unwrap();
    phiguard_audit::verify::verify_inclusion(5, head.size, &hashes[5], &proof, &head.root).unwrap();
    let proof = log.consistency_proof(17, head.size).unwrap();
    phiguard_audit::verify::verify_consistency(
        17,
        head.size,
        &reference_root(&hashes[..17]),
        &head.root,
        &proof,
    )
    .unwrap();
}

#[test]
fn pg_two_phiguard_processes_append_interleaved_batches_into_one_tree() {
    let Some(db) = TestDb::new("procs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    const PER_WRITER: u64 = 300;
    for w in 0..2 {
        let mut f = std::fs::File::create(dir.path().join(format!("w{w}.jsonl"))).unwrap();
        for seq in 0..PER_WRITER {
            writeln!(
                f,
                "{}",
                json!({"writer": w, "seq": seq, "user": format!("u{w}")})
            )
            .unwrap();
        }
    }
    let children: Vec<_> = (0..2)
        .map(|w| {
            Command::new(env!("CARGO_BIN_EXE_phiguard"))
                .args(["audit", "append", "--store", &db.url, "--batch-size", "7"])
                .arg("--jsonl")
                .arg(dir.path().join(format!("w{w}.jsonl")))
                .env("PHIGUARD_HOME", &home)
                .env_remove("XDG_DATA_HOME")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acked: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut batches_per_writer = Vec::new();
    for (w, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = ok(&out);
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, PER_WRITER);
        let sizes: BTreeSet<u64> = lines
            .iter()
            .map(|a| a["tree_size"].as_u64().unwrap())
            .collect();
        batches_per_writer.push(sizes);
        for a in lines {
            let index = a["index"].as_u64().unwrap();
            let hash = a["leaf_hash"].as_str().unwrap().to_string();
            assert!(
                acked.insert(index, (w as u64, hash)).is_none(),
                "index {index} acknowledged twice"
            );
        }
    }
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (0..2 * PER_WRITER).collect::<Vec<_>>()
    );

    // Export with a signed checkpoint, verify offline with the public key only.
    let export = dir.path().join("export.jsonl");
    ok(&phiguard(
        &home,
        &[
            "audit",
            "export",
            "--store",
            &db.url,
            "-o",
            export.to_str().unwrap(),
        ],
    ));
    let key = ok(&phiguard(
        &home,
        &["audit", "public-key", "--store", &db.url],
    ));
    let out = ok(&phiguard(
        &home,
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--public-key",
            key.trim(),
            "--json",
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"], 2 * PER_WRITER);
    // Every acknowledged record is in the export exactly once, under its acknowledged hash.
    let records = export_records(&export);
    let mut seen = BTreeSet::new();
    for (index, (writer, hash)) in &acked {
        let line = &records[index];
        assert_eq!(line["leaf_hash"].as_str().unwrap(), hash);
        let rec = &line["leaf"]["record"];
        assert_eq!(rec["writer"].as_u64().unwrap(), *writer);
        assert!(seen.insert((*writer, rec["seq"].as_u64().unwrap())));
    }
    assert_eq!(seen.len() as u64, 2 * PER_WRITER);
    // The store check through the CLI agrees.
    let out = ok(&phiguard(
        &home,
        &["audit", "verify", "--store", &db.url, "--json"],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    // How interleaved the two writers were (not asserted: scheduling decides).
    let switches = acked
        .values()
        .zip(acked.values().skip(1))
        .filter(|(a, b)| a.0 != b.0)
        .count();
    eprintln!(
        "two processes: {} records in {} + {} acknowledged batches, {switches} writer switches \
         along the tree",
        2 * PER_WRITER,
        batches_per_writer[0].len(),
        batches_per_writer[1].len()
    );
}

#[test]
fn pg_retention_refuses_early_deletion_prunes_after_and_still_detects_tampering() {
    let Some(db) = TestDb::new("retention") else {
        return;
    };
    let mut log = db.open();
    let receipts = log
        .append_batch(
            &(0..12)
                .map(|i| json!({"user": "alice", "patient_ref": format!("p-{i}")}))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let signer = Signer::from_seed("test.example/audit", [9; 32]).unwrap();
    let cp = log.sign_checkpoint(&signer).unwrap();
    let head = log.tree_head().unwrap();
    // Before retention: no delete, no rewrite, no early pruning, no truncation.
    for sql in [
        "DELETE FROM leaves WHERE idx = 3",
        "UPDATE leaves SET payload = '{}' WHERE idx = 3",
        "UPDATE leaves SET payload = '', pruned_at = '2026-01-01T00:00:00.000000Z' WHERE idx = 3",
        "TRUNCATE leaves",
        "DELETE FROM checkpoints",
    ] {
        let err = log.execute_batch(sql).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(log.prune_expired("2026-01-01").unwrap(), 0);

    // After retention (6 years by default): payloads go, leaf hashes stay.
    assert_eq!(log.prune_expired("2100-01-01").unwrap(), 12);
    assert_eq!(log.prune_expired("2100-01-01").unwrap(), 0);
    assert_eq!(log.tree_head().unwrap(), head);
    let e = log.entry(4).unwrap();
    assert!(e.is_pruned() && e.record.is_empty());
    assert_eq!(e.leaf_hash, receipts[4].leaf_hash);
    let check = log.check(Some(&signer.verifier())).unwrap();
    assert!(check.is_intact(), "{:?}", check.problems);
    assert_eq!(check.pruned, 12);
    // A pruned record can be neither deleted nor changed further.
    for sql in [
        "DELETE FROM leaves WHERE idx = 3",
        "UPDATE leaves SET leaf_hash = '\\x00' WHERE idx = 3",
        "UPDATE leaves SET pruned_at = '2200-01-01T00:00:00.000000Z' WHERE idx = 3",
    ] {
        assert!(log.execute_batch(sql).is_err(), "{sql}");
    }
    let proof = log.inclusion_proof(4, head.size).unwrap();
    phiguard_audit::verify::verify_inclusion(4, head.size, &e.leaf_hash, &proof, &head.root)
        .unwrap();

    let mut export = Vec::new();
    log.write_export(&mut export, &cp).unwrap();
    let text = String::from_utf8(export).unwrap();
    assert!(!text.contains("p-4"), "a pruned payload is still exported");
    let report = verify_export(text.as_bytes(), &signer.verifier(), None).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.pruned, 12);
    // A modified leaf hash of a pruned record is still caught (through the signed root).
    let hash4 = hex::encode(receipts[4].leaf_hash);
    let tampered = text.replacen(&hash4, &hex::encode([0u8; 32]), 1);
    let report = verify_export(tampered.as_bytes(), &signer.verifier(), None).unwrap();
    assert!(
        report.problems.iter().any(|p| p.kind() == "root_mismatch"),
        "{:?}",
        report.problems
    );

    // In the database too: with the triggers dropped, a rewritten hash is found by the check.
    log.execute_batch(
        "DROP TRIGGER leaves_append_only_update ON leaves;
         UPDATE leaves SET leaf_hash = '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea WHERE idx = 4;",
    )
    .unwrap();
    let check = log.check(Some(&signer.verifier())).unwrap();
    assert!(!check.is_intact());
}

#[test]
fn pg_retention_through_the_cli() {
    let Some(db) = TestDb::new("retcli") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for i in 0..3 {
        ok(&phiguard(
            &home,
            &[
                "audit",
                "append",
                "--store",
                &db.url,
                "--json",
                &json!({"user": "bob", "n": i}).to_string(),
            ],
        ));
    }
    ok(&phiguard(
        &home,
        &["audit", "checkpoint", "--store", &db.url],
    ));
    let out = ok(&phiguard(
        &home,
        &[
            "audit",
            "retention",
            "--store",
            &db.url,
            "--now",
            "2100-01-01",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pruned"], 3);
    assert_eq!(v["tree_size"], 3);
    assert!(!v["store"].as_str().unwrap().contains("password"));
    let out = ok(&phiguard(
        &home,
        &["audit", "query", "--store", &db.url, "--format", "ndjson"],
    ));
    assert_eq!(out.lines().count(), 3);
    assert!(out.lines().all(|l| l.contains("\"record\":null")));
    let export = dir.path().join("e.jsonl");
    ok(&phiguard(
        &home,
        &[
            "audit",
            "export",
            "--store",
            &db.url,
            "-o",
            export.to_str().unwrap(),
        ],
    ));
    let key = ok(&phiguard(&home, &["audit", "public-key"]));
    let out = ok(&phiguard(
        &home,
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--public-key",
            key.trim(),
        ],
    ));
    assert!(out.contains("3 pruned"), "{out}");
}

/// TLS to PostgreSQL (.ci/setup.d/15-postgres-tls.sh makes a CA, a server certificate for
/// localhost and points the cluster at it; PHIGUARD_TEST_PG_TLS_URL carries
/// `sslmode=verify-full&sslrootcert=CA`). The connection is encrypted (the server says so in
/// pg_stat_ssl), appends work over it, and a server whose certificate the given CA did not
/// sign is refused.
#[test]
fn tls_connection_is_verified_and_encrypted() {
    let Ok(url) = std::env::var("PHIGUARD_TEST_PG_TLS_URL") else {
        eprintln!(
            "PHIGUARD_TEST_PG_TLS_URL is not set (run .ci/setup.d/15-postgres-tls.sh): skipping"
        );
        return;
    };
    let target = phiguard_audit::pg_tls::parse(&url).unwrap();
    assert_eq!(target.tls, phiguard_audit::pg_tls::TlsMode::VerifyFull);
    let mut client = phiguard_audit::pg_tls::connect(&target).unwrap();
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    let ssl: bool = row.get(0);
    let version: String = row.get(1);
    assert!(ssl, "the server says the connection is not encrypted");
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");

    // An audit store over TLS: a fresh database, two appends, a consistent tree.
    let mut random = [0u8; 6];
    getrandom(&mut random);
    let name = format!("phiguard_t_tls_{}", hex::encode(random));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let db_url = url.replacen("/test?", &format!("/{name}?"), 1);
    {
        let mut log = PgAuditLog::connect(&db_url, Options::default()).unwrap();
        log.append(&json!({"type": "test.tls", "n": 1})).unwrap();
        let r = log.append(&json!({"type": "test.tls", "n": 2})).unwrap();
        assert_eq!(r.index, 1);
    }
    client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();

    // The wrong CA: refused, with an error about the certificate.
    if let Ok(other) = std::env::var("PHIGUARD_TEST_PG_OTHER_CA") {
        let (base, _) = url.split_once("sslrootcert=").unwrap();
        let bad = format!("{base}sslrootcert={other}");
        let err = match PgAuditLog::connect(&bad, Options::default()) {
            Ok(_) => panic!("a server certificate from another CA was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.to_lowercase().contains("certificate")
                || err.contains("TLS")
                || err.contains("tls"),
            "{err}"
        );
    }
    // The certificate names both localhost and 127.0.0.1: verify-full accepts either.
    let ip_url = url.replacen("@localhost:", "@127.0.0.1:", 1);
    assert!(
        PgAuditLog::connect(&ip_url, Options::default()).is_ok(),
        "127.0.0.1 is in the certificate"
    );
}
