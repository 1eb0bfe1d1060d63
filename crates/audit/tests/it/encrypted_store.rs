//! The encrypted embedded store: the database file itself encrypted (SQLCipher pages under a
//! page key wrapped by the key provider), and record payloads sealed under the same provider,
//! so the file and its WAL hold nothing readable, while the tree, proofs and exports are
//! unchanged.

use std::path::Path;
use std::sync::Arc;

use phiguard_audit::file_key;
use phiguard_audit::verify::verify_inclusion;
use phiguard_audit::{AuditError, AuditLog, Options, Query, Signer, verify_export};
use phiguard_crypto::{KeyProvider, LocalKeyFile, SealParams};
use serde_json::{Value, json};

/// A value that appears nowhere but in the records.
const MARKER: &str = "Zebulon-Quarterfield-7731";

fn records(from: u64, n: u64) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            json!({"user": format!("u{}", i % 3), "patient_ref": format!("{MARKER}-{i}"), "n": i})
        })
        .collect()
}

fn key(dir: &Path, name: &str) -> Arc<dyn KeyProvider> {
    Arc::new(LocalKeyFile::create(&dir.join(name), None, &SealParams::DEFAULT).unwrap())
}

/// The bytes of the database file and of its WAL (when there is one).
fn raw_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let wal = db.with_extension("db-wal");
    if let Ok(w) = std::fs::read(&wal) {
        bytes.extend_from_slice(&w);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn the_file_and_wal_hold_no_record_text_and_reads_are_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut log =
        AuditLog::open_encrypted(&db, Options::default(), key(dir.path(), "kek.json")).unwrap();
    assert!(log.is_encrypted());
    let receipts = log.append_batch(&records(0, 20)).unwrap();
    // While the connection is open the records sit in the WAL; after closing, in the file.
    assert!(db.with_extension("db-wal").exists());
    assert!(!contains(&raw_bytes(&db), MARKER));

    let e = log.entry(7).unwrap();
    assert!(
        e.record.contains(&format!("{MARKER}-7")),
        "decrypted on read"
    );
    assert_eq!(e.leaf_hash, receipts[7].leaf_hash);
    let q = Query {
        fields: vec![("user".into(), "u1".into())],
        limit: Some(3),
        ..Query::default()
    };
    let mut got = Vec::new();
    log.query(&q, |e| -> Result<(), AuditError> {
        got.push(e.index);
        Ok(())
    })
    .unwrap();
    assert_eq!(got, vec![1, 4, 7]);
    let q = Query {
        fields: vec![("n".into(), "12".into())],
        ..Query::default()
    };
    assert_eq!(log.query(&q, |_| Ok::<(), AuditError>(())).unwrap(), 1);

    // The export carries plaintext leaves and verifies as before.
    let signer = Signer::from_seed("test.example/audit", [5; 32]).unwrap();
    let cp = log.sign_checkpoint(&signer).unwrap();
    let mut export = Vec::new();
    log.write_export(&mut export, &cp).unwrap();
    assert!(contains(&export, MARKER));
    let report = verify_export(&export[..], &signer.verifier(), None).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let check = log.check(Some(&signer.verifier())).unwrap();
    assert!(check.is_intact(), "{:?}", check.problems);
    assert_eq!((check.records, check.sealed), (20, 0));
    drop(log);
    assert!(!contains(&raw_bytes(&db), MARKER));
}

#[test]
fn a_plaintext_store_does_hold_the_marker() {
    // The control for the test above: the same grep finds the records when not encrypted.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut log = AuditLog::open(&db).unwrap();
    log.append_batch(&records(0, 3)).unwrap();
    assert!(!log.is_encrypted());
    assert!(contains(&raw_bytes(&db), MARKER));
}

/// Payload encryption alone (the database file in plaintext, as stores made before file
/// encryption are).
fn payloads_only() -> Options {
    Options {
        encrypt_file: false,
        ..Options::default()
    }
}

#[test]
fn with_payload_encryption_alone_a_wrong_key_reads_nothing_but_the_tree_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let right = key(dir.path(), "kek.json");
    let mut log = AuditLog::open_encrypted(&db, payloads_only(), right.clone()).unwrap();
    let receipts = log.append_batch(&records(0, 9)).unwrap();
    let head = log.tree_head().unwrap();
    drop(log);

    let wrong = key(dir.path(), "other.json");
    assert!(!file_key::sidecar_path(&db).exists());
    assert!(matches!(
        AuditLog::open_encrypted(&db, payloads_only(), wrong),
        Err(AuditError::WrongKey)
    ));

    // Without the key: no record, no append; the tree, proofs and leaf hashes are all there.
    let mut sealed = AuditLog::open(&db).unwrap();
    assert!(sealed.is_encrypted());
    assert!(matches!(sealed.entry(3), Err(AuditError::Sealed)));
    assert!(matches!(
        sealed.append(&json!({"user": "x"})),
        Err(AuditError::Sealed)
    ));
    assert_eq!(sealed.tree_head().unwrap(), head);
    let check = sealed.check(None).unwrap();
    assert!(check.is_intact(), "{:?}", check.problems);
    assert_eq!((check.records, check.sealed), (9, 9));
    assert_eq!(check.root, Some(head.root));
    let proof = sealed.inclusion_proof(4, head.size).unwrap();
    verify_inclusion(4, head.size, &receipts[4].leaf_hash, &proof, &head.root).unwrap();
    drop(sealed);

    // With the key, a ciphertext moved to another row does not decrypt, and check says so.
    {
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute_batch(
            "DROP TRIGGER leaves_append_only_update;
             UPDATE leaves SET payload = (SELECT payload FROM leaves WHERE idx = 2) WHERE idx = 5;",
        )
        .unwrap();
    }
    let log = AuditLog::open_encrypted(&db, payloads_only(), right).unwrap();
    assert!(matches!(
        log.entry(5),
        Err(AuditError::Decrypt { index: 5, .. })
    ));
    let check = log.check(None).unwrap();
    assert!(
        check
            .problems
            .iter()
            .any(|p| p.contains("record 5 does not decrypt")),
        "{:?}",
        check.problems
    );
}

#[test]
fn a_plaintext_store_keeps_opening_and_encrypts_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    {
        let mut old = AuditLog::open(&db).unwrap();
        old.append_batch(&records(0, 4)).unwrap();
    }
    let mut log =
        AuditLog::open_encrypted(&db, Options::default(), key(dir.path(), "kek.json")).unwrap();
    log.append_batch(&records(1000, 4)).unwrap();
    assert!(
        log.entry(1)
            .unwrap()
            .record
            .contains(&format!("{MARKER}-1\""))
    );
    assert!(
        log.entry(5)
            .unwrap()
            .record
            .contains(&format!("{MARKER}-1001"))
    );
    let check = log.check(None).unwrap();
    assert!(check.is_intact(), "{:?}", check.problems);
    assert_eq!(check.records, 8);
    drop(log);
    let raw = raw_bytes(&db);
    assert!(
        contains(&raw, &format!("{MARKER}-1\"")),
        "old records stay as they were"
    );
    assert!(
        !contains(&raw, &format!("{MARKER}-100")),
        "new records are sealed"
    );
}

#[test]
fn the_local_key_file_is_created_on_first_use_and_found_by_keyless_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit/audit.db");
    let kek = dir.path().join("keys/kek.json");
    let (mut log, created) = AuditLog::open_with_local_key(&db, Options::default(), &kek).unwrap();
    assert!(created && kek.exists());
    log.append_batch(&records(0, 3)).unwrap();
    drop(log);
    let (_, created) = AuditLog::open_with_local_key(&db, Options::default(), &kek).unwrap();
    assert!(!created);
    // A command that opens the store without a key (a `deid` run's record) uses that file.
    let mut log = AuditLog::open(&db).unwrap();
    log.append(&json!({"user": "deid", "patient_ref": format!("{MARKER}-x")}))
        .unwrap();
    assert!(log.entry(3).unwrap().record.contains("deid"));
    drop(log);
    assert!(!contains(&raw_bytes(&db), MARKER));
}

#[test]
fn rotation_rewrap_moves_payloads_and_the_trigger_allows_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let kek_path = dir.path().join("kek.json");
    LocalKeyFile::create(&kek_path, None, &SealParams::DEFAULT).unwrap();
    let open_key =
        || -> Arc<dyn KeyProvider> { Arc::new(LocalKeyFile::open(&kek_path, None).unwrap()) };
    {
        let mut log = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap();
        log.append_batch(&records(0, 2500)).unwrap();
    }
    let mut kf = LocalKeyFile::open(&kek_path, None).unwrap();
    kf.rotate().unwrap();
    let mut log = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap();
    log.append_batch(&records(2500, 10)).unwrap();
    let before = log.tree_head().unwrap();
    // 2,500 old payloads, the key check and the database's page key.
    assert_eq!(log.payloads_not_current().unwrap(), 2502);
    let by_kek = log.payload_keks().unwrap();
    assert_eq!(by_kek.values().sum::<u64>(), 2512);
    assert_eq!(
        by_kek.iter().find(|((_, v), _)| *v == 1).map(|(_, n)| *n),
        Some(2502)
    );

    assert_eq!(log.rewrap_payloads().unwrap(), (2500, 10));
    assert_eq!(log.payloads_not_current().unwrap(), 0);
    assert_eq!(log.rewrap_payloads().unwrap(), (0, 2510));
    assert_eq!(log.tree_head().unwrap().root, before.root);
    drop(log);

    // v1 revoked: everything still reads, under v2.
    LocalKeyFile::revoke(&kek_path, 1).unwrap();
    let log = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap();
    assert!(
        log.entry(42)
            .unwrap()
            .record
            .contains(&format!("{MARKER}-42"))
    );
    assert!(log.check(None).unwrap().is_intact());
    drop(log);

    // The trigger lets a sealed payload be replaced only by a sealed one; one moved from
    // another row does not decrypt there (it is bound to its row).
    let page_key = file_key::key_for(&db, Some(open_key())).unwrap();
    assert!(page_key.is_some());
    let conn = file_key::open_raw(&db, page_key.as_ref(), false).unwrap();
    let err = conn
        .execute("UPDATE leaves SET payload = '{\"n\":1}' WHERE idx = 5", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let other: String = conn
        .query_row("SELECT payload FROM leaves WHERE idx = 6", [], |r| r.get(0))
        .unwrap();
    conn.execute("UPDATE leaves SET payload = ?1 WHERE idx = 5", [&other])
        .unwrap();
    let err = conn
        .execute("UPDATE leaves SET leaf_hash = x'00' WHERE idx = 5", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    drop(conn);
    let log = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap();
    assert!(matches!(
        log.entry(5),
        Err(AuditError::Decrypt { index: 5, .. })
    ));
}

#[test]
fn the_database_file_itself_is_encrypted_and_opens_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let right = key(dir.path(), "kek.json");
    let mut log = AuditLog::open_encrypted(&db, Options::default(), right.clone()).unwrap();
    assert!(log.is_file_encrypted());
    let receipts = log.append_batch(&records(0, 12)).unwrap();
    let head = log.tree_head().unwrap();
    drop(log);

    // Nothing of the store is readable on disk: no SQLite header, no table name, no record,
    // no leaf hash, no root.
    let raw = raw_bytes(&db);
    assert!(!raw.starts_with(file_key::SQLITE_MAGIC));
    assert!(!contains(&raw, "SQLite format 3"));
    assert!(!contains(&raw, "leaves"));
    assert!(!contains(&raw, MARKER));
    for needle in [&receipts[3].leaf_hash[..], &head.root[..]] {
        assert!(!raw.windows(32).any(|w| w == needle));
    }
    // The page-key file holds only the wrapped key.
    let sidecar = std::fs::read_to_string(file_key::sidecar_path(&db)).unwrap();
    let sc: Value = serde_json::from_str(&sidecar).unwrap();
    assert_eq!(sc["format"], file_key::FORMAT);
    assert!(sc["wrapped"].as_str().unwrap().starts_with("pgf1."));
    assert!(sc.get("key_file").is_none(), "not a local key file: {sc}");

    // Plain SQLite cannot read it.
    let plain = rusqlite::Connection::open(&db).unwrap();
    assert!(
        plain
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
                .get::<_, i64>(0))
            .is_err()
    );
    drop(plain);

    // Another key, no key, a missing page-key file: each refused, naming the store.
    let wrong = key(dir.path(), "other.json");
    let err = AuditLog::open_encrypted(&db, Options::default(), wrong).unwrap_err();
    assert!(matches!(err, AuditError::FileKey { .. }), "{err}");
    assert!(err.to_string().contains("audit.db"), "{err}");
    let err = AuditLog::open(&db).unwrap_err();
    assert!(matches!(err, AuditError::FileKey { .. }), "{err}");
    let moved = dir.path().join("kept.pgkey");
    std::fs::rename(file_key::sidecar_path(&db), &moved).unwrap();
    let err = AuditLog::open_encrypted(&db, Options::default(), right.clone()).unwrap_err();
    assert!(err.to_string().contains("no page-key file"), "{err}");
    std::fs::rename(&moved, file_key::sidecar_path(&db)).unwrap();

    // With its key everything reads, proves and verifies as before.
    let log = AuditLog::open_encrypted(&db, Options::default(), right).unwrap();
    assert_eq!(log.tree_head().unwrap(), head);
    assert!(
        log.entry(9)
            .unwrap()
            .record
            .contains(&format!("{MARKER}-9"))
    );
    let proof = log.inclusion_proof(4, head.size).unwrap();
    verify_inclusion(4, head.size, &receipts[4].leaf_hash, &proof, &head.root).unwrap();
    assert!(log.check(None).unwrap().is_intact());

    // A snapshot is encrypted too, and opens with the same key.
    let copy = dir.path().join("copy.db");
    log.snapshot_to(&copy).unwrap();
    drop(log);
    assert!(!contains(&raw_bytes(&copy), MARKER));
    assert!(!file_key::is_plain_sqlite(&copy));
    let copy_log =
        AuditLog::open_encrypted(&copy, Options::default(), key_again(dir.path())).unwrap();
    assert_eq!(copy_log.tree_head().unwrap(), head);
}

fn key_again(dir: &Path) -> Arc<dyn KeyProvider> {
    Arc::new(LocalKeyFile::open(&dir.join("kek.json"), None).unwrap())
}

#[test]
fn revoking_the_kek_that_wraps_the_page_key_stops_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let kek = dir.path().join("kek.json");
    LocalKeyFile::create(&kek, None, &SealParams::DEFAULT).unwrap();
    let open_key = || -> Arc<dyn KeyProvider> { Arc::new(LocalKeyFile::open(&kek, None).unwrap()) };
    {
        let mut log = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap();
        log.append_batch(&records(0, 5)).unwrap();
    }
    let mut kf = LocalKeyFile::open(&kek, None).unwrap();
    kf.rotate().unwrap();
    let v1 = file_key::Sidecar::read(&db)
        .unwrap()
        .unwrap()
        .kek()
        .unwrap();
    assert_eq!(v1.version, 1);
    LocalKeyFile::revoke(&kek, 1).unwrap();
    let err = AuditLog::open_encrypted(&db, Options::default(), open_key()).unwrap_err();
    assert!(matches!(err, AuditError::FileKey { .. }), "{err}");
}

#[test]
fn a_plaintext_store_is_encrypted_in_place_with_its_tree_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let head = {
        let mut old = AuditLog::open(&db).unwrap();
        old.append_batch(&records(0, 40)).unwrap();
        old.tree_head().unwrap()
    };
    assert!(contains(&raw_bytes(&db), MARKER));
    let kek = key(dir.path(), "kek.json");
    assert!(file_key::encrypt_in_place(&db, kek.clone(), None).unwrap());
    assert!(!file_key::encrypt_in_place(&db, kek.clone(), None).unwrap());
    assert!(!contains(&raw_bytes(&db), MARKER));
    assert!(!file_key::is_plain_sqlite(&db));
    let mut log = AuditLog::open_encrypted(&db, Options::default(), kek).unwrap();
    assert!(log.is_file_encrypted());
    assert_eq!(log.tree_head().unwrap(), head);
    assert!(log.check(None).unwrap().is_intact());
    log.append(&json!({"user": "after"})).unwrap();
    assert_eq!(log.tree_head().unwrap().size, 41);
}

#[test]
fn concurrent_first_opens_agree_on_one_page_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let kek = key(dir.path(), "kek.json");
    std::thread::scope(|s| {
        for i in 0..8u64 {
            let (db, kek) = (&db, kek.clone());
            s.spawn(move || {
                let mut log = AuditLog::open_encrypted(db, Options::default(), kek).unwrap();
                log.append(&json!({"user": format!("u{i}")})).unwrap();
            });
        }
    });
    let log = AuditLog::open_encrypted(&db, Options::default(), kek).unwrap();
    assert!(log.is_file_encrypted());
    assert_eq!(log.tree_head().unwrap().size, 8);
    assert!(log.check(None).unwrap().is_intact());
}
