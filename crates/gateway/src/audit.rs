//! The audit sink: where the gateway writes one record per request. The binary wires the
//! tamper-evident store of `phiguard-audit`; the library only needs [`AuditSink`].
//!
//! Two records per forwarded request share a `request_id`: `phase = "dispatch"` is committed
//! before anything goes upstream (if it cannot be written, nothing is sent), and
//! `phase = "complete"` is made durable before the response completes (if it cannot be written,
//! the caller gets an error instead of the answer). Refused requests get only the `complete`
//! record. Records hold ids, names from the config, counts and times — never request or answer
//! text.
//!
//! How long each append waits is its [`Wait`]: a dispatch record is *committed* (it survives a
//! crash of the gateway) before the upstream call, and the durable wait of the completion record
//! makes both survive a power loss before the caller sees the answer. `[audit] sync_dispatch`
//! makes the dispatch record wait for the disk too. With `[audit] durability = "background"`
//! both records wait for their commit only ([`Wait::Background`]): the sync that makes them
//! survive a power loss runs right after, without the request waiting for it.

use std::sync::Mutex;

use serde_json::Value;

/// An audit append failed (the message names no record content).
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit append failed: {0}")]
pub struct AuditSinkError(pub String);

/// How long an append waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until the record is committed to the store: it survives a crash of the gateway, and a
    /// power loss once a later [`Wait::Durable`] append to the same sink has returned.
    Committed,
    /// Until the record survives a power loss.
    Durable,
    /// Until the record is committed, like [`Wait::Committed`]; the sink's sync thread then
    /// makes it survive a power loss without the caller waiting, in a sync that starts at most
    /// [`BACKGROUND_SYNC_EVERY`] after the one before (records of a few milliseconds share
    /// one fsync). The
    /// caller has its answer by then, so a failed sync cannot fail its request: it fails every
    /// later append instead, until the gateway restarts (the records may be lost; a retried
    /// fsync cannot tell). At most [`MAX_UNSYNCED`] records wait for a sync this way; beyond
    /// that an append waits for the disk as [`Wait::Durable`] does.
    Background,
}

/// How many [`Wait::Background`] records may be committed and not yet synced: what a power
/// loss can take at most. When the disk falls behind by more, appends wait for it.
pub const MAX_UNSYNCED: u64 = 1024;

/// How long [`Wait::Background`] records wait for others to join their sync, counted from the
/// start of the sync before: at most this many milliseconds of records (and at most
/// [`MAX_UNSYNCED`]) are committed and not yet on disk, and a steady stream of records costs
/// one fsync per interval instead of one per record or two.
pub const BACKGROUND_SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// Makes every record a sink has committed so far survive a power loss (an fsync), from any
/// thread (see [`AuditSink::syncer`]).
pub type Syncer = Box<dyn Fn() -> Result<(), AuditSinkError> + Send>;

/// Appends audit records durably. Called from a blocking thread.
pub trait AuditSink: Send + Sync {
    /// Appends `record`; `Ok` means it is durable.
    fn append(&self, record: &Value) -> Result<(), AuditSinkError>;

    /// Appends several records; `Ok` means all are committed, and durable unless the sink has
    /// a [`AuditSink::syncer`]. Stores with group commit override this to make one write for
    /// the batch; the default appends one by one.
    fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
        records.iter().try_for_each(|r| self.append(r))
    }

    /// For a sink whose [`AuditSink::append_batch`] commits without waiting for the disk: what
    /// makes its commits durable, run by [`GroupCommit`] on a thread of its own so that batches
    /// go on being committed while the disk syncs. `None` (the default): every commit is
    /// durable when it returns.
    fn syncer(&self) -> Option<Syncer> {
        None
    }

    /// True when [`AuditSink::append_batch`] is cheap enough to run on the caller's own
    /// thread (a write to a journal file, no wait for the disk): [`GroupCommit`] then appends
    /// each record where it is submitted, and only the syncs go through a thread of its own.
    /// The default says no.
    fn appends_inline(&self) -> bool {
        false
    }

    /// Records accepted (and durable where they wait) but not yet in their final store, such
    /// as a journal's backlog, for the `phiguard_gateway_audit_backlog` gauge. `None` (the
    /// default): the sink has no such stage.
    fn backlog(&self) -> Option<u64> {
        None
    }

    /// Records committed with [`Wait::Background`] and not yet synced, for the
    /// `phiguard_gateway_audit_unsynced` gauge. `None` (the default): the sink does not count
    /// them.
    fn unsynced(&self) -> Option<u64> {
        None
    }

    /// Whether appends can succeed right now, for readiness (`GET /ready`). Cheap; writes
    /// nothing. The default says yes.
    fn health(&self) -> Result<(), AuditSinkError> {
        Ok(())
    }

    /// Starts an append without blocking the calling thread, for sinks that write on a thread
    /// of their own ([`GroupCommit`]): the returned future resolves once the record is
    /// committed or durable, as `wait` asks (or the write failed). `Err` gives the record back
    /// (the default): the sink only appends synchronously, and the caller runs
    /// [`AuditSink::append`] (durable) on a blocking thread.
    fn submit(&self, record: Value, wait: Wait) -> Result<Submitted, Value> {
        let _ = wait;
        Err(record)
    }
}

/// An append in progress (see [`AuditSink::submit`]).
pub type Submitted =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AuditSinkError>> + Send>>;

/// Where the writer thread reports one record's outcome: a blocked thread or an async task,
/// or nobody (a [`Wait::Background`] record handed to the syncer after its caller was
/// answered).
enum Reply {
    Sync(std::sync::mpsc::SyncSender<Result<(), AuditSinkError>>),
    Async(tokio::sync::oneshot::Sender<Result<(), AuditSinkError>>),
    Background,
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
            Reply::Background => {}
        }
    }
}

/// What the writer thread receives.
enum Msg {
    Append(Value, Reply, Wait),
    /// The syncer finished a sync that answered this many handed-over replies.
    Synced(usize),
    /// Stop after what is queued (sent on drop).
    Shutdown,
}

/// Group commit in front of another sink: appends from concurrent requests that arrive while a
/// write is in progress are written together in one `append_batch`, and each caller waits until
/// its own record is committed or durable, as it asked. A failed batch fails every request in
/// it.
///
/// When the inner sink has a [`AuditSink::syncer`], the disk is synced on a second thread: the
/// writer commits a batch, answers the callers that wait for the commit only, and hands the
/// others to the syncer, whose next sync (started after that commit) makes them durable; the
/// syncs of many batches are shared, and commits go on during a sync. A batch in which every
/// record waits for the disk is held while a sync is in flight (it would wait for the next sync
/// anyway), so such records are committed together when it ends, as many per commit as
/// without the sync thread.
///
/// A sink whose appends are cheap ([`AuditSink::appends_inline`]) gets no writer thread: each
/// record is appended on the caller's thread, and only the records that wait for the disk go
/// to the sync thread, whose next sync (started after their append) answers them all.
pub struct GroupCommit {
    tx: Mutex<std::sync::mpsc::Sender<Msg>>,
    state: std::sync::Arc<WriterState>,
    inner: std::sync::Arc<dyn AuditSink>,
    /// The writer thread, joined on drop.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// For a sink that appends inline: its sync thread (`None` inside when the sink has no
    /// syncer, so every append is durable when it returns).
    inline: Option<Mutex<Option<SyncerHandle>>>,
    /// The inner sink has a syncer (so [`Wait::Background`] records can wait for a sync).
    syncs: bool,
}

impl Drop for GroupCommit {
    /// Closes the queue and waits for the writer thread to finish its last batch and drop the
    /// store: a process that exits right after (`phiguard serve` on SIGTERM) must not tear down
    /// the store's libraries (SQLCipher, OpenSSL) while the thread still closes it.
    fn drop(&mut self) {
        // The writer and its syncer hold senders of their own (for the syncer's notes), so the
        // writer stops on this message rather than on the queue closing.
        let mut tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = tx.send(Msg::Shutdown);
        *tx = std::sync::mpsc::channel().0;
        drop(tx);
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
        if let Some(syncer) = self
            .inline
            .as_ref()
            .and_then(|s| s.lock().ok().and_then(|mut s| s.take()))
        {
            syncer.finish();
        }
    }
}

/// How long a failed batch keeps readiness down unless a later batch succeeds (after that,
/// readiness relies on the inner sink's own check, so an idle gateway can become ready again).
const FAILED_BATCH_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// What the writer thread reports about itself.
#[derive(Default)]
struct WriterState {
    /// Set while the writer thread (and its syncer) run; cleared when either ends, even by a
    /// panic.
    alive: std::sync::atomic::AtomicBool,
    /// When the last batch failed, if the last batch failed.
    failed_at: Mutex<Option<std::time::Instant>>,
    /// A sync of [`Wait::Background`] records failed: every later append fails.
    poisoned: std::sync::atomic::AtomicBool,
    /// [`Wait::Background`] records committed and not yet synced.
    unsynced: std::sync::atomic::AtomicU64,
    /// A sync for [`Wait::Background`] records is scheduled: its token is in the syncer's
    /// queue, or the syncer holds it and has not started the sync yet.
    background_pending: std::sync::atomic::AtomicBool,
}

impl WriterState {
    /// `Err` once a background sync has failed.
    fn check_poisoned(&self) -> Result<(), AuditSinkError> {
        if self.poisoned.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditSinkError(
                "an earlier audit sync failed, so records of answered requests may not be on \
                 disk; restart the gateway (it recovers what the disk holds)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Counts a [`Wait::Background`] record in, or says it must wait for the disk because
    /// [`MAX_UNSYNCED`] already wait.
    fn reserve_unsynced(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.unsynced
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_UNSYNCED).then_some(n + 1)
            })
            .is_ok()
    }

    /// `n` counted [`Wait::Background`] records were synced (or their sync failed).
    fn unsynced_done(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .unsynced
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// After a [`Wait::Background`] record was counted in: makes sure a sync will cover it,
    /// with at most one token in the syncer's queue at a time. `Ok(true)`: a token was handed
    /// over; `Ok(false)`: one already was; `Err`: the syncer is gone.
    fn schedule_background(&self, syncer: &SyncerHandle) -> Result<bool, ()> {
        use std::sync::atomic::Ordering;
        if self.background_pending.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        match syncer.hand_over(Reply::Background) {
            Ok(()) => Ok(true),
            Err(_) => {
                self.background_pending.store(false, Ordering::SeqCst);
                Err(())
            }
        }
    }

    /// A background sync failed, or could not be started: every later append fails.
    fn poison(&self) {
        self.poisoned
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
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
    /// Starts the writer thread over `inner`; at most `max_batch` records per write. For a
    /// sink that appends inline, only its sync thread.
    pub fn new(inner: std::sync::Arc<dyn AuditSink>, max_batch: usize) -> GroupCommit {
        if inner.appends_inline() {
            return GroupCommit::new_inline(inner);
        }
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        // For the syncer's `Synced` notes: the writer holds a sender of its own, so it stops on
        // `Msg::Shutdown` rather than on the queue closing.
        let notes = tx.clone();
        let max_batch = max_batch.max(1);
        let state = std::sync::Arc::new(WriterState::default());
        state.alive.store(true, std::sync::atomic::Ordering::SeqCst);
        let thread_state = state.clone();
        let writer = inner.clone();
        let sync = writer.syncer();
        let syncs = sync.is_some();
        // If the thread cannot be started, the receiver is dropped and every append fails
        // (fail closed).
        let spawned = std::thread::Builder::new()
            .name("phiguard-audit-writer".into())
            .spawn(move || {
                let _alive = AliveGuard(thread_state.clone());
                // Started by the writer and joined by it, so the syncer's last syncs are done
                // when the writer thread has ended.
                let syncer = sync.map(|sync| spawn_syncer(sync, thread_state.clone(), notes));
                let mut batch = Batch::default();
                while batch.open {
                    // Take what is queued, then block while there is nothing to commit:
                    // nothing at all, or only records that wait for the disk while a sync is
                    // in flight (they will be in the next sync whenever they are committed).
                    loop {
                        while batch.open && batch.records.len() < max_batch {
                            match rx.try_recv() {
                                Ok(msg) => batch.take(msg),
                                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                                    batch.open = false;
                                }
                            }
                        }
                        if !batch.open || batch.records.len() >= max_batch || batch.due() {
                            break;
                        }
                        match rx.recv() {
                            Ok(msg) => batch.take(msg),
                            Err(_) => batch.open = false,
                        }
                    }
                    if batch.records.is_empty() {
                        continue;
                    }
                    let result = writer.append_batch(&batch.records);
                    batch.records.clear();
                    batch.any_committed = false;
                    note_result(&thread_state, result.is_ok());
                    for (reply, wait) in batch.replies.drain(..) {
                        match (&result, wait, &syncer) {
                            (Ok(()), Wait::Durable, Some(s)) => match s.hand_over(reply) {
                                Ok(()) => batch.in_sync += 1,
                                Err(reply) => reply.send(Err(AuditSinkError(
                                    "the audit syncer is not running".into(),
                                ))),
                            },
                            (Ok(()), Wait::Background, Some(s)) => {
                                // Counted before the caller is answered, so the gauge never
                                // reads 0 while an answered record waits for the disk.
                                thread_state
                                    .unsynced
                                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                reply.send(Ok(()));
                                match thread_state.schedule_background(s) {
                                    Ok(true) => batch.in_sync += 1,
                                    Ok(false) => {}
                                    Err(()) => thread_state.poison(),
                                }
                            }
                            _ => reply.send(result.clone()),
                        }
                    }
                }
                if let Some(s) = syncer {
                    s.finish();
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
            inline: None,
            syncs,
        }
    }

    fn new_inline(inner: std::sync::Arc<dyn AuditSink>) -> GroupCommit {
        let state = std::sync::Arc::new(WriterState::default());
        state.alive.store(true, std::sync::atomic::Ordering::SeqCst);
        // Nobody reads the syncer's notes: there is no writer to hold batches back.
        let (notes, _) = std::sync::mpsc::channel();
        let syncer = inner
            .syncer()
            .map(|sync| spawn_syncer(sync, state.clone(), notes));
        GroupCommit {
            tx: Mutex::new(std::sync::mpsc::channel().0),
            state,
            inner,
            writer: Mutex::new(None),
            syncs: syncer.is_some(),
            inline: Some(Mutex::new(syncer)),
        }
    }

    /// Appends on the caller's thread (a sink that appends inline), then hands `reply` to the
    /// sync thread if `wait` asks for the disk. `Ok(None)`: the sync thread has the reply and
    /// will answer it; `Ok(Some(reply))`: the record is already where `wait` asks; `Err`: the
    /// append failed (the reply comes back unanswered).
    fn append_inline(
        &self,
        syncer: &Mutex<Option<SyncerHandle>>,
        record: &Value,
        reply: Reply,
        wait: Wait,
    ) -> Result<Option<Reply>, (Reply, AuditSinkError)> {
        if !self.state.alive.load(std::sync::atomic::Ordering::SeqCst) {
            return Err((
                reply,
                AuditSinkError("the audit syncer is not running".into()),
            ));
        }
        if let Err(e) = self.state.check_poisoned() {
            return Err((reply, e));
        }
        let result = self.inner.append_batch(std::slice::from_ref(record));
        note_result(&self.state, result.is_ok());
        if let Err(e) = result {
            return Err((reply, e));
        }
        if wait == Wait::Committed {
            return Ok(Some(reply));
        }
        let guard = match syncer.lock() {
            Ok(g) => g,
            Err(_) => return Err((reply, AuditSinkError("lock poisoned".into()))),
        };
        let Some(s) = guard.as_ref() else {
            // No syncer: the append was durable when it returned.
            return Ok(Some(reply));
        };
        if wait == Wait::Background && self.state.reserve_unsynced() {
            return match self.state.schedule_background(s) {
                Ok(_) => Ok(Some(reply)),
                Err(()) => {
                    self.state.unsynced_done(1);
                    Err((
                        reply,
                        AuditSinkError("the audit syncer is not running".into()),
                    ))
                }
            };
        }
        match s.hand_over(reply) {
            Ok(()) => Ok(None),
            Err(reply) => Err((
                reply,
                AuditSinkError("the audit syncer is not running".into()),
            )),
        }
    }
}

/// Records whether the last write or sync succeeded (for readiness).
fn note_result(state: &WriterState, ok: bool) {
    if let Ok(mut f) = state.failed_at.lock() {
        *f = (!ok).then(std::time::Instant::now);
    }
}

/// What the writer thread is gathering for its next commit.
struct Batch {
    records: Vec<Value>,
    replies: Vec<(Reply, Wait)>,
    /// Some reply in `replies` waits for the commit only.
    any_committed: bool,
    /// Replies handed to the syncer and not yet answered.
    in_sync: usize,
    /// False once the writer is told to stop (it commits what it holds first).
    open: bool,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            records: Vec::new(),
            replies: Vec::new(),
            any_committed: false,
            in_sync: 0,
            open: true,
        }
    }
}

impl Batch {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Append(record, reply, wait) => {
                self.records.push(record);
                self.replies.push((reply, wait));
                self.any_committed |= wait != Wait::Durable;
            }
            Msg::Synced(n) => self.in_sync = self.in_sync.saturating_sub(n),
            Msg::Shutdown => self.open = false,
        }
    }

    /// Whether to commit now: someone waits for the commit alone, or nothing is being synced
    /// (so records that wait for the disk gain nothing by waiting for more).
    fn due(&self) -> bool {
        self.any_committed || !self.replies.is_empty() && self.in_sync == 0
    }
}

/// The syncer thread, from the writer's side.
struct SyncerHandle {
    tx: Option<std::sync::mpsc::Sender<Reply>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyncerHandle {
    /// Passes the reply of a committed record to the syncer; gives it back if the syncer is
    /// gone.
    fn hand_over(&self, reply: Reply) -> Result<(), Reply> {
        match &self.tx {
            Some(tx) => tx.send(reply).map_err(|e| e.0),
            None => Err(reply),
        }
    }

    /// Closes the queue and waits for the last sync.
    fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the thread that syncs committed records: each round takes every reply waiting, syncs
/// once, answers them all and tells the writer through `notes`. A round for
/// [`Wait::Background`] records alone starts [`BACKGROUND_SYNC_EVERY`] after the round before
/// (a caller waiting for the disk cuts the wait short). If the thread cannot be started,
/// durable appends fail.
fn spawn_syncer(
    sync: Syncer,
    state: std::sync::Arc<WriterState>,
    notes: std::sync::mpsc::Sender<Msg>,
) -> SyncerHandle {
    let (tx, rx) = std::sync::mpsc::channel::<Reply>();
    let thread_state = state.clone();
    let thread = std::thread::Builder::new()
        .name("phiguard-audit-sync".into())
        .spawn(move || {
            let state = thread_state;
            let _alive = AliveGuard(state.clone());
            use std::sync::atomic::Ordering;
            let mut last_start: Option<std::time::Instant> = None;
            while let Ok(first) = rx.recv() {
                let mut waiting = vec![first];
                waiting.extend(rx.try_iter());
                if let Some(last) = last_start {
                    let due = last + BACKGROUND_SYNC_EVERY;
                    while waiting.iter().all(|r| matches!(r, Reply::Background)) {
                        let left = due.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(left) {
                            Ok(r) => {
                                waiting.push(r);
                                waiting.extend(rx.try_iter());
                            }
                            // Due, or closed (shutdown): sync what is counted.
                            Err(_) => break,
                        }
                    }
                }
                if waiting.iter().any(|r| matches!(r, Reply::Background)) {
                    state.background_pending.store(false, Ordering::SeqCst);
                }
                // Every record counted here was written before it was counted, so the sync
                // that starts next covers it.
                let covered = state.unsynced.load(Ordering::SeqCst);
                let only_background = waiting.iter().all(|r| matches!(r, Reply::Background));
                let result = if covered == 0 && only_background {
                    // An earlier sync already covered what this token was for.
                    Ok(())
                } else {
                    last_start = Some(std::time::Instant::now());
                    sync()
                };
                note_result(&state, result.is_ok());
                if covered > 0 {
                    if result.is_err() {
                        state.poison();
                    }
                    state.unsynced_done(covered);
                }
                let n = waiting.len();
                for r in waiting {
                    r.send(result.clone());
                }
                let _ = notes.send(Msg::Synced(n));
            }
        });
    match thread {
        Ok(t) => SyncerHandle {
            tx: Some(tx),
            thread: Some(t),
        },
        Err(_) => {
            state
                .alive
                .store(false, std::sync::atomic::Ordering::SeqCst);
            SyncerHandle {
                tx: None,
                thread: None,
            }
        }
    }
}

impl GroupCommit {
    fn enqueue(&self, record: Value, reply: Reply, wait: Wait) -> Result<(), AuditSinkError> {
        self.state.check_poisoned()?;
        // The writer thread's `Background` records are not counted against `MAX_UNSYNCED`:
        // its batches wait for the syncer whenever it is behind.
        self.tx
            .lock()
            .map_err(|_| AuditSinkError("lock poisoned".into()))?
            .send(Msg::Append(record, reply, wait))
            .map_err(|_| AuditSinkError("the audit writer is not running".into()))
    }
}

impl AuditSink for GroupCommit {
    fn append(&self, record: &Value) -> Result<(), AuditSinkError> {
        let (reply, wait) = std::sync::mpsc::sync_channel(1);
        if let Some(syncer) = &self.inline {
            match self.append_inline(syncer, record, Reply::Sync(reply), Wait::Durable) {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err((_, e)) => return Err(e),
            }
        } else {
            self.enqueue(record.clone(), Reply::Sync(reply), Wait::Durable)?;
        }
        wait.recv()
            .map_err(|_| AuditSinkError("the audit writer stopped".into()))?
    }

    /// Queues the record for the writer thread and resolves when it is committed or durable,
    /// as `wait` asks: no thread of the caller's is held while the write and its fsync happen.
    /// A sink that appends inline is written here, and only a durable wait is queued (for the
    /// sync thread).
    fn submit(&self, record: Value, wait: Wait) -> Result<Submitted, Value> {
        let (reply, done) = tokio::sync::oneshot::channel();
        if let Some(syncer) = &self.inline {
            let outcome = self.append_inline(syncer, &record, Reply::Async(reply), wait);
            return Ok(Box::pin(async move {
                match outcome {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => done
                        .await
                        .map_err(|_| AuditSinkError("the audit syncer stopped".into()))?,
                    Err((_, e)) => Err(e),
                }
            }));
        }
        let queued = self.enqueue(record, Reply::Async(reply), wait);
        Ok(Box::pin(async move {
            queued?;
            done.await
                .map_err(|_| AuditSinkError("the audit writer stopped".into()))?
        }))
    }

    fn backlog(&self) -> Option<u64> {
        self.inner.backlog()
    }

    fn unsynced(&self) -> Option<u64> {
        self.syncs.then(|| {
            self.state
                .unsynced
                .load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Down when the writer thread is not running, or the last batch failed (for
    /// `FAILED_BATCH_HOLD`, or until a batch succeeds); otherwise the inner sink's check.
    fn health(&self) -> Result<(), AuditSinkError> {
        if !self.state.alive.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditSinkError("the audit writer is not running".into()));
        }
        self.state.check_poisoned()?;
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
            .map(
                |i| match gc.submit(serde_json::json!({"i": i}), Wait::Durable) {
                    Ok(p) => p,
                    Err(_) => panic!("group commit submits without blocking"),
                },
            )
            .collect();
        for p in pending {
            p.await.unwrap();
        }
        assert_eq!(inner.records().len(), 100);
        inner.set_failing(true);
        let Ok(p) = gc.submit(serde_json::json!({"x": 1}), Wait::Committed) else {
            panic!("submit")
        };
        assert!(p.await.is_err());
        // A sink without a writer thread of its own gives the record back.
        let memory = MemorySink::default();
        assert!(
            memory
                .submit(serde_json::json!({"y": 1}), Wait::Durable)
                .is_err()
        );
    }

    /// A store whose commits reach a volatile list, and whose syncer moves them to the durable
    /// list once its gate is open (or fails, when told to).
    #[derive(Default, Clone)]
    struct Disk {
        volatile: Arc<Mutex<Vec<Value>>>,
        durable: Arc<Mutex<Vec<Value>>>,
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
        fail_sync: Arc<std::sync::atomic::AtomicBool>,
        /// For [`InlineDisk`]: its writes fail.
        fail_writes: Arc<std::sync::atomic::AtomicBool>,
        /// Syncs run so far.
        syncs: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Disk {
        fn open_gate(&self, open: bool) {
            *self
                .gate
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = open;
            self.gate.1.notify_all();
        }

        /// Opens the gate when dropped: declared after the sink, so that a failed assertion
        /// does not leave the sink's drop joining a syncer stuck at the gate.
        fn opens_on_drop(&self) -> impl Drop {
            struct Opener(Disk);
            impl Drop for Opener {
                fn drop(&mut self) {
                    self.0.open_gate(true);
                }
            }
            Opener(self.clone())
        }
    }

    impl AuditSink for Disk {
        fn append(&self, _: &Value) -> Result<(), AuditSinkError> {
            unreachable!("group commit writes batches")
        }
        fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
            self.volatile.lock().unwrap().extend_from_slice(records);
            Ok(())
        }
        fn syncer(&self) -> Option<Syncer> {
            let disk = self.clone();
            Some(Box::new(move || {
                let (lock, cv) = &*disk.gate;
                let mut open = lock.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                disk.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if disk.fail_sync.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(AuditSinkError("fsync failed".into()));
                }
                let mut v = disk.volatile.lock().unwrap();
                disk.durable.lock().unwrap().extend(v.drain(..));
                Ok(())
            }))
        }
    }

    #[tokio::test]
    async fn committed_waits_skip_the_sync_and_durable_ones_wait_for_it() {
        let disk = Disk::default();
        let gc = GroupCommit::new(Arc::new(disk.clone()), 64);
        let submit = |v: Value, w: Wait| match gc.submit(v, w) {
            Ok(p) => p,
            Err(_) => panic!("group commit submits without blocking"),
        };
        // The disk is stuck: a durable append waits, a committed one does not.
        let mut durable = submit(serde_json::json!({"phase": "complete"}), Wait::Durable);
        let committed = submit(serde_json::json!({"phase": "dispatch"}), Wait::Committed);
        tokio::time::timeout(std::time::Duration::from_secs(30), committed)
            .await
            .expect("a committed append waited for the stuck disk")
            .unwrap();
        let stuck = tokio::time::timeout(std::time::Duration::from_millis(50), &mut durable);
        assert!(
            stuck.await.is_err(),
            "a durable append returned before the sync"
        );
        assert!(disk.durable.lock().unwrap().is_empty());
        // Once the sync runs, the durable append returns, and its record is on the disk.
        disk.open_gate(true);
        durable.await.unwrap();
        let on_disk = disk.durable.lock().unwrap().clone();
        assert!(on_disk.contains(&serde_json::json!({"phase": "complete"})));
        assert!(gc.health().is_ok());
        // A failed sync fails the durable appends waiting for it (fail closed) and readiness;
        // commits still work.
        disk.fail_sync
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = submit(serde_json::json!({"x": 1}), Wait::Durable).await;
        assert!(failed.is_err());
        assert!(gc.health().is_err());
        submit(serde_json::json!({"x": 2}), Wait::Committed)
            .await
            .unwrap();
        // Blocking appends are durable appends.
        disk.fail_sync
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let gc = Arc::new(gc);
        let g = gc.clone();
        tokio::task::spawn_blocking(move || g.append(&serde_json::json!({"x": 3})))
            .await
            .unwrap()
            .unwrap();
        assert!(
            disk.durable
                .lock()
                .unwrap()
                .contains(&serde_json::json!({"x": 3}))
        );
    }

    /// The same disk, appended to on the caller's thread.
    struct InlineDisk(Disk, Arc<Mutex<Vec<std::thread::ThreadId>>>);
    impl AuditSink for InlineDisk {
        fn append(&self, _: &Value) -> Result<(), AuditSinkError> {
            unreachable!("group commit writes batches")
        }
        fn append_batch(&self, records: &[Value]) -> Result<(), AuditSinkError> {
            self.1.lock().unwrap().push(std::thread::current().id());
            if self.0.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(AuditSinkError("the journal refused the write".into()));
            }
            self.0.append_batch(records)
        }
        fn syncer(&self) -> Option<Syncer> {
            self.0.syncer()
        }
        fn appends_inline(&self) -> bool {
            true
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn inline_appends_happen_on_the_callers_thread_and_durable_ones_wait_for_the_sync() {
        let disk = Disk::default();
        let threads = Arc::new(Mutex::new(Vec::new()));
        let gc = GroupCommit::new(Arc::new(InlineDisk(disk.clone(), threads.clone())), 64);
        let submit = |v: Value, w: Wait| match gc.submit(v, w) {
            Ok(p) => p,
            Err(_) => panic!("group commit submits without blocking"),
        };
        // Written at submission, on this thread, before anything is awaited.
        let mut durable = submit(serde_json::json!({"phase": "complete"}), Wait::Durable);
        assert_eq!(*threads.lock().unwrap(), vec![std::thread::current().id()]);
        assert_eq!(disk.volatile.lock().unwrap().len(), 1);
        submit(serde_json::json!({"phase": "dispatch"}), Wait::Committed)
            .await
            .unwrap();
        let stuck = tokio::time::timeout(std::time::Duration::from_millis(50), &mut durable);
        assert!(
            stuck.await.is_err(),
            "a durable append returned before the sync"
        );
        disk.open_gate(true);
        durable.await.unwrap();
        assert_eq!(disk.durable.lock().unwrap().len(), 2);
        // A failed write fails at once, and readiness with it.
        disk.fail_writes
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            submit(serde_json::json!({"x": 1}), Wait::Committed)
                .await
                .is_err()
        );
        assert!(gc.health().is_err());
        disk.fail_writes
            .store(false, std::sync::atomic::Ordering::SeqCst);
        // Blocking appends are durable appends.
        gc.append(&serde_json::json!({"x": 2})).unwrap();
        assert!(
            disk.durable
                .lock()
                .unwrap()
                .contains(&serde_json::json!({"x": 2}))
        );
        assert!(gc.health().is_ok());
    }

    /// Polls `cond` for up to 30 s.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..3000 {
            if cond() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test]
    async fn background_appends_are_answered_before_the_sync_and_a_failed_sync_fails_closed() {
        for inline in [true, false] {
            let disk = Disk::default();
            let sink: Arc<dyn AuditSink> = if inline {
                Arc::new(InlineDisk(disk.clone(), Arc::default()))
            } else {
                Arc::new(disk.clone())
            };
            let gc = GroupCommit::new(sink, 64);
            let _open = disk.opens_on_drop();
            let submit = |v: Value, w: Wait| match gc.submit(v, w) {
                Ok(p) => p,
                Err(_) => panic!("group commit submits without blocking"),
            };
            // The disk is stuck: the append is answered once written, and waits for a sync.
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                submit(serde_json::json!({"n": 1}), Wait::Background),
            )
            .await
            .expect("a background append waited for the stuck disk")
            .unwrap();
            assert_eq!(gc.unsynced(), Some(1), "inline {inline}");
            assert!(disk.durable.lock().unwrap().is_empty());
            // The sync runs without anyone waiting for it.
            disk.open_gate(true);
            eventually("the record is synced", || {
                disk.durable.lock().unwrap().len() == 1
            })
            .await;
            eventually("the gauge is back to 0", || gc.unsynced() == Some(0)).await;
            assert!(gc.health().is_ok());
            // A failed sync cannot fail the request it was for (already answered): it fails
            // every later one, whatever it waits for, and readiness, for good.
            disk.fail_sync
                .store(true, std::sync::atomic::Ordering::SeqCst);
            submit(serde_json::json!({"n": 2}), Wait::Background)
                .await
                .unwrap();
            eventually("the failed sync poisons the sink", || gc.health().is_err()).await;
            disk.fail_sync
                .store(false, std::sync::atomic::Ordering::SeqCst);
            let later = submit(serde_json::json!({"n": 3}), Wait::Committed).await;
            let e = later.expect_err("an append after a failed background sync succeeded");
            assert!(e.0.contains("restart"), "{e}");
            assert!(gc.append(&serde_json::json!({"n": 4})).is_err());
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(gc.health().is_err(), "the sink recovered by itself");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stream_of_background_appends_shares_one_sync_per_interval() {
        let disk = Disk::default();
        disk.open_gate(true);
        let gc = GroupCommit::new(Arc::new(InlineDisk(disk.clone(), Arc::default())), 64);
        let start = std::time::Instant::now();
        let records = 400;
        for i in 0..records {
            let Ok(p) = gc.submit(serde_json::json!({"i": i}), Wait::Background) else {
                panic!("group commit submits without blocking")
            };
            p.await.unwrap();
            if i % 4 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(250));
            }
        }
        eventually("every record is synced", || gc.unsynced() == Some(0)).await;
        let elapsed = start.elapsed();
        assert_eq!(disk.durable.lock().unwrap().len(), records);
        // Each sync for background records alone starts BACKGROUND_SYNC_EVERY after the one
        // before: a bound that holds however slow the machine is.
        let syncs = disk.syncs.load(std::sync::atomic::Ordering::SeqCst);
        let bound = (elapsed.as_micros() / BACKGROUND_SYNC_EVERY.as_micros()) as usize + 1;
        assert!(
            (1..=bound).contains(&syncs),
            "{syncs} syncs for {records} records in {elapsed:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn background_appends_wait_for_the_disk_once_too_many_are_unsynced() {
        let disk = Disk::default();
        let gc = GroupCommit::new(Arc::new(InlineDisk(disk.clone(), Arc::default())), 64);
        let _open = disk.opens_on_drop();
        let submit = |v: Value| match gc.submit(v, Wait::Background) {
            Ok(p) => p,
            Err(_) => panic!("group commit submits without blocking"),
        };
        for i in 0..MAX_UNSYNCED {
            submit(serde_json::json!({"i": i})).await.unwrap();
        }
        assert_eq!(gc.unsynced(), Some(MAX_UNSYNCED));
        let mut next = submit(serde_json::json!({"i": "one too many"}));
        let stuck = tokio::time::timeout(std::time::Duration::from_millis(50), &mut next);
        assert!(
            stuck.await.is_err(),
            "an append past the bound returned before the disk caught up"
        );
        disk.open_gate(true);
        next.await.unwrap();
        assert!(
            disk.durable
                .lock()
                .unwrap()
                .contains(&serde_json::json!({"i": "one too many"}))
        );
        eventually("every record is synced", || gc.unsynced() == Some(0)).await;
        assert_eq!(disk.durable.lock().unwrap().len() as u64, MAX_UNSYNCED + 1);
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
