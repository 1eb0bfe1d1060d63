//! The offline verifier against intact, tampered and lying exports.

use phiguard_audit::{AuditLog, Checkpoint, Signer, verify_export};
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    log: AuditLog,
    signer: Signer,
}

fn fixture(n: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(&dir.path().join("audit.db")).unwrap();
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"user": format!("u{i}"), "patient_ref": format!("p{i}"), "action": "summarization"}))
        .collect();
    log.append_batch(&records).unwrap();
    let signer = Signer::from_seed("test.example/audit", [5; 32]).unwrap();
    Fixture {
        _dir: dir,
        log,
        signer,
    }
}

impl Fixture {
    fn export(&mut self) -> (Vec<String>, String) {
        let cp = self.log.sign_checkpoint(&self.signer).unwrap();
        let mut out = Vec::new();
        self.log.write_export(&mut out, &cp).unwrap();
        let text = String::from_utf8(out).unwrap();
        (text.lines().map(str::to_string).collect(), cp.note)
    }

    fn verify(&self, lines: &[String], older: Option<&str>) -> Vec<(String, String)> {
        let text = lines.join("\n") + "\n";
        let report = verify_export(text.as_bytes(), &self.signer.verifier(), older).unwrap();
        let problems: Vec<(String, String)> = report
            .problems
            .iter()
            .map(|p| (p.kind().to_string(), p.to_string()))
            .collect();
        assert_eq!(report.is_intact(), problems.is_empty(), "{problems:?}");
        problems
    }
}

fn kinds(p: &[(String, String)]) -> Vec<&str> {
    p.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn intact_export_verifies() {
    let mut f = fixture(10);
    let (lines, _) = f.export();
    assert_eq!(lines.len(), 11);
    assert!(f.verify(&lines, None).is_empty());
}

#[test]
fn empty_log_export_verifies() {
    let mut f = fixture(0);
    let (lines, _) = f.export();
    assert!(f.verify(&lines, None).is_empty());
}

#[test]
fn modified_record_is_named_by_index() {
    let mut f = fixture(10);
    let (mut lines, _) = f.export();
    lines[4] = lines[4].replace("\"u3\"", "\"u9\"");
    let p = f.verify(&lines, None);
    assert_eq!(kinds(&p)[0], "modified", "{p:?}");
    assert!(p[0].1.contains("record 3 "), "{p:?}");
}

#[test]
fn each_tampering_has_its_own_kind() {
    let mut f = fixture(10);
    let (lines, _) = f.export();

    let mut deleted = lines.clone();
    deleted.remove(5);
    assert_eq!(kinds(&f.verify(&deleted, None)), ["deleted"]);

    let mut inserted = lines.clone();
    inserted.insert(3, lines[3].clone());
    assert!(kinds(&f.verify(&inserted, None)).contains(&"inserted"));

    let mut reordered = lines.clone();
    reordered.swap(3, 4);
    let p = f.verify(&reordered, None);
    assert!(kinds(&p).contains(&"reordered"), "{p:?}");
    assert!(kinds(&p).contains(&"root_mismatch"), "{p:?}");

    let truncated = lines[..8].to_vec();
    assert_eq!(kinds(&f.verify(&truncated, None)), ["truncated"]);

    let mut bad_sig = lines.clone();
    bad_sig[0] = bad_sig[0].replace("\\n10\\n", "\\n11\\n");
    let p = f.verify(&bad_sig, None);
    assert_eq!(kinds(&p)[0], "bad_signature", "{p:?}");
}

#[test]
fn lying_server_checkpoint_is_caught() {
    let mut f = fixture(10);
    let (mut lines, _) = f.export();
    // The server signs a checkpoint for its size but a root its records do not give.
    let lie = Checkpoint {
        origin: f.signer.name().to_string(),
        size: 10,
        root: [0xaau8; 32],
        extensions: vec![],
    };
    let note = f.signer.sign(&lie.to_text()).unwrap();
    lines[0] =
        json!({"format": "phiguard-audit-export", "version": 1, "checkpoint": note}).to_string();
    assert_eq!(kinds(&f.verify(&lines, None)), ["root_mismatch"]);
}

#[test]
fn older_checkpoint_detects_a_rewritten_history() {
    let mut f = fixture(6);
    let (_, old_note) = f.export();
    f.log.append(&json!({"user": "later"})).unwrap();
    let (lines, _) = f.export();
    assert!(f.verify(&lines, Some(&old_note)).is_empty());

    // A different history of the same length, signed by the same (compromised or lying) key.
    let mut g = fixture(0);
    g.signer = Signer::from_seed("test.example/audit", [5; 32]).unwrap();
    g.log
        .append_batch(
            &(0..7)
                .map(|i| json!({"user": format!("x{i}")}))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let (rewritten, _) = g.export();
    let p = f.verify(&rewritten, Some(&old_note));
    assert_eq!(kinds(&p), ["inconsistent"], "{p:?}");

    // A log cut back below the older checkpoint.
    let mut h = fixture(3);
    h.signer = Signer::from_seed("test.example/audit", [5; 32]).unwrap();
    let (short, _) = h.export();
    assert_eq!(kinds(&f.verify(&short, Some(&old_note))), ["rolled_back"]);
}
