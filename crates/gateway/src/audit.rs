//! The audit sink: where the gateway writes one record per request. The binary wires the
//! tamper-evident store of `phiguard-audit`; the library only needs [`AuditSink`].
//!
//! Two records per forwarded request share a `request_id`: `phase = "dispatch"` is written
//! before anything goes upstream (if it cannot be written, nothing is sent), and
//! `phase = "complete"` before the response completes (if it cannot be written, the caller gets
//! an error instead of the answer). Refused requests get only the `complete` record. Records
//! hold ids, names from the config, counts and times — never request or answer text.

use std::sync::Mutex;

use serde_json::Value;

/// An audit append failed (the message names no record content).
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit append failed: {0}")]
pub struct AuditSinkError(pub String);

/// Appends audit records durably. Called from a blocking thread.
pub trait AuditSink: Send + Sync {
    /// Appends `record`; `Ok` means it is durable.
    fn append(&self, record: &Value) -> Result<(), AuditSinkError>;

    /// Appends several records; `Ok` means all are durable. Stores with group commit override
    /// this to make one durable write for the batch; the default appends one by one.
    fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
        records.iter().try_for_each(|r| self.append(r))
    }
}

type Pending = (
    Value,
    std::sync::mpsc::SyncSender<Result<(), AuditSinkError>>,
);

/// Group commit in front of another sink: appends from concurrent requests that arrive while a
/// write is in progress are written together in one `append_batch` (one fsync), and each caller
/// waits until its own record is durable. A failed batch fails every request in it.
pub struct GroupCommit {
    tx: Mutex<std::sync::mpsc::Sender<Pending>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    /// Starts the writer thread over `inner`; at most `max_batch` records per write.
    pub fn new(inner: std::sync::Arc<dyn AuditSink>, max_batch: usize) -> GroupCommit {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let max_batch = max_batch.max(1);
        // If the thread cannot be started, the receiver is dropped and every append fails
        // (fail closed).
        let _spawned = std::thread::Builder::new()
            .name("phiguard-audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    let (records, replies): (Vec<Value>, Vec<_>) = batch.into_iter().unzip();
                    let result = inner.append_batch(&records);
                    for r in replies {
                        let _ = r.send(result.clone());
                    }
                }
            });
        GroupCommit { tx: Mutex::new(tx) }
    }
}

impl AuditSink for GroupCommit {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        let (reply, wait) = std::sync::mpsc::sync_channel(1);
        self.tx
            .lock()
            .map_err(|_| AuditSinkError("lock poisoned".into()))?
            .send((record.clone(), reply))
            .map_err(|_| AuditSinkError("the audit writer is not running".into()))?;
        wait.recv()
            .map_err(|_| AuditSinkError("the audit writer stopped".into()))?
    }
}

/// An in-memory sink (for tests and demos): keeps every record.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<Value>>,
    fail: std::sync::atomic::AtomicBool,
}

impl MemorySink {
    /// Every record appended so far.
    pub fn records(&self) -> Vec<Value> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Makes every following append fail (to test failing closed).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }
}

impl AuditSink for MemorySink {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditSinkError("the store refused the append".into()));
        }
        self.records
            .lock()
            .map_err(|_| AuditSinkError("lock poisoned".into()))?
            .push(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn group_commit_appends_everything_and_fails_closed() {
        let inner = Arc::new(MemorySink::default());
        let gc = Arc::new(GroupCommit::new(inner.clone(), 64));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let gc = gc.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        gc.append(&serde_json::json!({"t": t, "i": i})).unwrap();
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(inner.records().len(), 400);
        inner.set_failing(true);
        assert!(gc.append(&serde_json::json!({"x": 1})).is_err());
    }
}
