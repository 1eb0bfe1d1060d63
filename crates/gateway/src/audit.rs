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

    /// Whether appends can succeed right now, for readiness (`GET /ready`). Cheap; writes
    /// nothing. The default says yes.
    fn health(&self) -> Result<(), AuditSinkError> {
        Ok(())
    }

    /// Starts an append without blocking the calling thread, for sinks that write on a thread
    /// of their own ([`GroupCommit`]): the returned future resolves once the record is durable
    /// (or the write failed). `Err` gives the record back (the default): the sink only appends
    /// synchronously, and the caller runs [`AuditSink::append`] on a blocking thread.
    fn submit(&self, record: Value) -> Result<Submitted, Value> {
        Err(record)
    }
}

/// An append in progress (see [`AuditSink::submit`]).
pub type Submitted =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AuditSinkError>> + Send>>;

/// Where the writer thread reports one record's outcome: a blocked thread or an async task.
enum Reply {
    Sync(std::sync::mpsc::SyncSender<Result<(), AuditSinkError>>),
    Async(tokio::sync::oneshot::Sender<Result<(), AuditSinkError>>),
}

impl Reply {
    fn send(self, result: Result<(), AuditSinkError>) {
        // A caller that went away no longer waits for the answer.
        match self {
            Reply::Sync(s) => {
                let _ = s.send(result);
            }
            Reply::Async(s) => {
                let _ = s.send(result);
            }
        }
    }
}

type Pending = (Value, Reply);

/// Group commit in front of another sink: appends from concurrent requests that arrive while a
/// write is in progress are written together in one `append_batch` (one fsync), and each caller
/// waits until its own record is durable. A failed batch fails every request in it.
pub struct GroupCommit {
    tx: Mutex<std::sync::mpsc::Sender<Pending>>,
    state: std::sync::Arc<WriterState>,
    inner: std::sync::Arc<dyn AuditSink>,
    /// The writer thread, joined on drop.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for GroupCommit {
    /// Closes the queue and waits for the writer thread to finish its last batch and drop the
    /// store: a process that exits right after (`phiguard serve` on SIGTERM) must not tear down
    /// the store's libraries (SQLCipher, OpenSSL) while the thread still closes it.
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            *tx = std::sync::mpsc::channel().0;
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// How long a failed batch keeps readiness down unless a later batch succeeds (after that,
/// readiness relies on the inner sink's own check, so an idle gateway can become ready again).
const FAILED_BATCH_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// What the writer thread reports about itself.
#[derive(Default)]
struct WriterState {
    /// Set while the thread runs (cleared when it ends, even by a panic).
    alive: std::sync::atomic::AtomicBool,
    /// When the last batch failed, if the last batch failed.
    failed_at: Mutex<Option<std::time::Instant>>,
}

/// Clears `alive` when the writer thread ends, however it ends.
struct AliveGuard(std::sync::Arc<WriterState>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0
            .alive
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
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
        let state = std::sync::Arc::new(WriterState::default());
        state.alive.store(true, std::sync::atomic::Ordering::SeqCst);
        let thread_state = state.clone();
        let writer = inner.clone();
        // If the thread cannot be started, the receiver is dropped and every append fails
        // (fail closed).
        let spawned = std::thread::Builder::new()
            .name("phiguard-audit-writer".into())
            .spawn(move || {
                let _alive = AliveGuard(thread_state.clone());
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    let (records, replies): (Vec<Value>, Vec<_>) = batch.into_iter().unzip();
                    let result = writer.append_batch(&records);
                    if let Ok(mut f) = thread_state.failed_at.lock() {
                        *f = result.is_err().then(std::time::Instant::now);
                    }
                    for r in replies {
                        r.send(result.clone());
                    }
                }
            });
        if spawned.is_err() {
            state
                .alive
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        GroupCommit {
            tx: Mutex::new(tx),
            state,
            inner,
            writer: Mutex::new(spawned.ok()),
        }
    }
}

impl GroupCommit {
    fn enqueue(&self, record: Value, reply: Reply) -> Result<(), AuditSinkError> {
        self.tx
            .lock()
            .map_err(|_| AuditSinkError("lock poisoned".into()))?
            .send((record, reply))
            .map_err(|_| AuditSinkError("the audit writer is not running".into()))
    }
}

impl AuditSink for GroupCommit {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        let (reply, wait) = std::sync::mpsc::sync_channel(1);
        self.enqueue(record.clone(), Reply::Sync(reply))?;
        wait.recv()
            .map_err(|_| AuditSinkError("the audit writer stopped".into()))?
    }

    /// Queues the record for the writer thread and resolves when its batch is durable: no
    /// thread of the caller's is held while the write and its fsync happen.
    fn submit(&self, record: Value) -> Result<Submitted, Value> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        let queued = self.enqueue(record, Reply::Async(reply));
        Ok(Box::pin(async move {
            queued?;
            wait.await
                .map_err(|_| AuditSinkError("the audit writer stopped".into()))?
        }))
    }

    /// Down when the writer thread is not running, or the last batch failed (for
    /// `FAILED_BATCH_HOLD`, or until a batch succeeds); otherwise the inner sink's check.
    fn health(&self) -> Result<(), AuditSinkError> {
        if !self.state.alive.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditSinkError("the audit writer is not running".into()));
        }
        let failed_at = *self
            .state
            .failed_at
            .lock()
            .map_err(|_| AuditSinkError("lock poisoned".into()))?;
        if failed_at.is_some_and(|t| t.elapsed() < FAILED_BATCH_HOLD) {
            return Err(AuditSinkError("the last audit write failed".into()));
        }
        self.inner.health()
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

    fn health(&self) -> Result<(), AuditSinkError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditSinkError("the store refuses appends".into()));
        }
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
        assert!(gc.health().is_ok());
        inner.set_failing(true);
        assert!(gc.append(&serde_json::json!({"x": 1})).is_err());
        assert!(gc.health().is_err());
        // The store recovers: the next batch succeeds and readiness comes back.
        inner.set_failing(false);
        gc.append(&serde_json::json!({"x": 2})).unwrap();
        assert!(gc.health().is_ok());
    }

    #[tokio::test]
    async fn group_commit_submissions_resolve_when_durable_and_fail_closed() {
        let inner = Arc::new(MemorySink::default());
        let gc = Arc::new(GroupCommit::new(inner.clone(), 64));
        let pending: Vec<_> = (0..100)
            .map(|i| match gc.submit(serde_json::json!({"i": i})) {
                Ok(p) => p,
                Err(_) => panic!("group commit submits without blocking"),
            })
            .collect();
        for p in pending {
            p.await.unwrap();
        }
        assert_eq!(inner.records().len(), 100);
        inner.set_failing(true);
        let Ok(p) = gc.submit(serde_json::json!({"x": 1})) else {
            panic!("submit")
        };
        assert!(p.await.is_err());
        // A sink without a writer thread of its own gives the record back.
        let memory = MemorySink::default();
        assert!(memory.submit(serde_json::json!({"y": 1})).is_err());
    }

    /// A sink whose batches panic: the writer thread dies.
    struct Panics;
    impl AuditSink for Panics {
        fn append(&self, _: &Value) -> Result<(), AuditSinkError> {
            panic!("writer crash")
        }
    }

    #[test]
    fn group_commit_health_reports_a_dead_writer() {
        let gc = GroupCommit::new(Arc::new(Panics), 8);
        assert!(gc.health().is_ok());
        assert!(gc.append(&serde_json::json!({"x": 1})).is_err());
        // The reply channel closes while the thread unwinds; the guard runs before it is gone.
        let mut tries = 0;
        while gc.health().is_ok() && tries < 1000 {
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(1));
            tries += 1;
        }
        let e = gc.health().unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
    }
}
