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
