//! Crash safety: a writer process appends records and prints each acknowledged index; the test
//! kills it with SIGKILL mid-stream, reopens the store and checks that every acknowledged
//! record is there, unchanged, and that the tree verifies. Twice, on the same store.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use phiguard_audit::AuditLog;
use phiguard_audit::canonical::to_canonical_string;
use serde_json::{Value, json};

const RECORDS: usize = 200_000;

/// Starts a writer over `input`, reads acknowledgements until `kill_after` of them, kills it,
/// and returns every acknowledgement it printed: index -> leaf hash.
fn run_and_kill(
    home: &std::path::Path,
    input: &std::path::Path,
    kill_after: usize,
) -> BTreeMap<u64, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(["audit", "append", "--batch-size", "25", "--jsonl"])
        .arg(input)
        .env("PHIGUARD_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut acked = BTreeMap::new();
    let mut line = String::new();
    let mut killed = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line cut by the kill has no newline: it does not count.
        if !line.ends_with('\n') {
            break;
        }
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        acked.insert(
            v["index"].as_u64().unwrap(),
            v["leaf_hash"].as_str().unwrap().to_string(),
        );
        if !killed && acked.len() >= kill_after {
            child.kill().unwrap(); // SIGKILL on Unix
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the writer finished before it could be killed");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    acked
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| json!({"user": format!("svc-{}", i % 7), "action": "summarization", "seq": i}))
        .collect();
    let input = dir.path().join("records.jsonl");
    let text: String = records.iter().map(|r| r.to_string() + "\n").collect();
    std::fs::write(&input, text).unwrap();
    let db = home.join("audit/audit.db");

    // index -> (leaf hash, position in the input) of every acknowledged record so far
    let mut all_acked: BTreeMap<u64, (String, usize)> = BTreeMap::new();
    let mut size_before = 0u64;
    for (round, kill_after) in [(0, 3000), (1, 1500)] {
        // Each round replays the input from its start, appending after what the store holds.
        let acked = run_and_kill(&home, &input, kill_after);
        assert!(acked.len() >= kill_after, "round {round}");
        for (index, hash) in acked {
            assert!(index >= size_before, "round {round}: index {index} reused");
            all_acked.insert(index, (hash, (index - size_before) as usize));
        }
        let log = AuditLog::open(&db).unwrap();
        let head = log.tree_head().unwrap();
        let max = *all_acked.keys().last().unwrap();
        assert!(
            head.size > max,
            "round {round}: size {} but {max} acknowledged",
            head.size
        );
        assert!(
            head.size < size_before + RECORDS as u64,
            "round {round}: the kill came too late"
        );
        for (index, (hash, seq)) in &all_acked {
            let entry = log.entry(*index).unwrap();
            assert_eq!(&hex::encode(entry.leaf_hash), hash, "record {index}");
            assert_eq!(
                entry.record,
                to_canonical_string(&records[*seq]),
                "record {index}"
            );
        }
        let check = log.check(None).unwrap();
        assert!(check.is_intact(), "round {round}: {:?}", check.problems);
        assert_eq!(check.records, head.size);
        size_before = head.size;
    }
}
