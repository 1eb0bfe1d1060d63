//! The audit journal: the gateway's short path to a durable audit record.
//!
//! A record the gateway appends through [`JournaledLog`] is written to an append-only journal
//! file beside the store (sealed under the store's payload key when the store is encrypted),
//! and made durable by one `fdatasync` of that file, shared by every record written since the
//! last one. A thread of its own then takes the records into the store in large batches (one
//! SQLite transaction and one WAL sync for hundreds of records under load), in journal order,
//! where they get their leaf index, leaf hash and place in the Merkle tree. The transaction
//! that takes records in also stores how far the journal has been taken in (a `meta` row per
//! journal), so no record is taken in twice.
//!
//! What each point survives, as with the store alone:
//! - [`JournaledLog::append_batch`] returns once the records are written to the journal file
//!   (in the page cache): they survive a crash of the process.
//! - [`JournalSyncer::sync`] returns once every record appended before it is on the disk: they
//!   survive a power loss.
//! - Whoever opens the store next ([`AuditLog`]'s open functions, so any phiguard command, or
//!   the gateway restarting) takes in the records of a journal whose writer is gone, before
//!   anything reads the store. A journal whose writer is still running (it holds a lock on it)
//!   is left alone.
//!
//! The store's tamper evidence starts when a record is taken in: until then the journal frame
//! is protected by its seal (an encrypted store: the frame is bound to its journal and place
//! and cannot be altered or moved) or a checksum (a plaintext store). Recovery drops a torn
//! last frame of the newest segment (a write that never reached the disk, so was never
//! acknowledged as durable); a damaged frame anywhere else stops the store from opening, with
//! the file and offset named, rather than losing records silently.
//!
//! Layout: `<store>.journal/<journal id>/` holds `lock` and segments `seg-<first seq>.pgj`. A
//! segment is a 32-byte header (`PGAJNL01`, the 16-byte journal id, the first frame's sequence
//! number) and frames: body length (u32 LE), sequence number (u64 LE), the first 8 bytes of
//! SHA-256 over those two and the body, and the body (the sealed or canonical record).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::encryption::{PayloadCipher, is_sealed};
use crate::error::AuditError;
use crate::store::{AuditLog, Durability, WalSyncer, canonical_payloads, create_private_dir};

const MAGIC: &[u8; 8] = b"PGAJNL01";
const HEADER_LEN: usize = 32;
const FRAME_HEAD: usize = 20;
const LOCK_FILE: &str = "lock";
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".pgj";
/// Records taken in per store transaction when recovering a journal.
const RECOVERY_CHUNK: usize = 4096;

/// The folder holding the journals of the store at `db`: `<db>.journal`.
pub fn root_for(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// How a [`JournaledLog`] batches and bounds its work.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// How long the oldest record not yet in the store waits for others to join its batch
    /// (records are durable in the journal meanwhile). Longer: fewer, larger store
    /// transactions under load; shorter: `audit query` sees records sooner.
    pub ingest_delay: Duration,
    /// The most records taken in per store transaction.
    pub max_ingest_batch: usize,
    /// The most records waiting to be taken in; appends fail beyond it (the store is not
    /// keeping up, or failing).
    pub max_backlog: usize,
    /// A segment file is closed, and a new one started, past this size. Closing syncs it and
    /// creates the next file while appends wait (a few disk waits), so segments are large:
    /// 64 MiB is about half a minute of records at 1,000 requests/s.
    pub segment_bytes: u64,
    /// Run the ingest thread at the lowest CPU priority (Linux `SCHED_IDLE`): its store
    /// transactions, a few milliseconds of CPU every `ingest_delay` under load, then never
    /// preempt the threads answering requests. A thread at normal priority takes over while
    /// records wait longer than `catch_up_after` (the CPU is saturated), so the store cannot
    /// fall behind for good.
    pub idle_priority: bool,
    /// How long the journal may stay non-empty before the normal-priority thread takes
    /// records in (it goes on until the journal is empty); at least twice `ingest_delay`.
    pub catch_up_after: Duration,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            ingest_delay: Duration::from_millis(20),
            max_ingest_batch: 2048,
            max_backlog: 100_000,
            segment_bytes: 64 << 20,
            idle_priority: true,
            catch_up_after: Duration::from_secs(1),
        }
    }
}

/// The checksum of a frame.
fn frame_check(len: u32, seq: u64, body: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    h.update(seq.to_le_bytes());
    h.update(body);
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn segment_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}")
}

fn is_journal_id(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn io_at(path: &Path, e: std::io::Error) -> AuditError {
    AuditError::Corrupt(format!("audit journal {}: {e}", path.display()))
}

/// Opens (creating if needed) a journal's lock file.
fn open_lock(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_at(path, e))
}

/// Syncs a folder, so that files created or removed in it stay so after a power loss.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segment files of a journal folder, oldest first.
fn segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_at(dir, e))? {
        let entry = entry.map_err(|e| io_at(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(SEGMENT_PREFIX) && name.ends_with(SEGMENT_SUFFIX) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The frames of one segment: (sequence number, body). `expected` is the sequence number the
/// first frame must have (the previous segment's last + 1), if known. In the `newest` segment a
/// torn frame ends the journal; anywhere else it is an error naming the file and offset.
fn read_segment(
    path: &Path,
    id: &str,
    expected: Option<u64>,
    newest: bool,
) -> Result<Vec<(u64, Vec<u8>)>, AuditError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_at(path, e))?;
    let corrupt =
        |what: String| AuditError::Corrupt(format!("audit journal {}: {what}", path.display()));
    let Some(header) = bytes.get(..HEADER_LEN) else {
        // A segment created but never given its header (the header is synced before any frame
        // is written to it) holds nothing.
        if newest {
            return Ok(Vec::new());
        }
        return Err(corrupt("the segment header is cut short".into()));
    };
    if &header[..8] != MAGIC {
        return Err(corrupt("not an audit journal segment".into()));
    }
    if hex::encode(&header[8..24]) != id {
        return Err(corrupt("the segment belongs to another journal".into()));
    }
    let mut seq = u64::from_le_bytes(header[24..32].try_into().unwrap_or([0; 8]));
    if let Some(e) = expected
        && e != seq
    {
        return Err(corrupt(format!(
            "the segment starts at record {seq}, expected {e} (a segment is missing)"
        )));
    }
    let mut frames = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let frame = bytes.get(at..at + FRAME_HEAD).and_then(|head| {
            let len = u32::from_le_bytes(head[..4].try_into().ok()?);
            let fseq = u64::from_le_bytes(head[4..12].try_into().ok()?);
            let body_at = at + FRAME_HEAD;
            let body = bytes.get(body_at..body_at.checked_add(usize::try_from(len).ok()?)?)?;
            (head[12..20] == frame_check(len, fseq, body) && fseq == seq).then_some(body)
        });
        match frame {
            Some(body) => {
                frames.push((seq, body.to_vec()));
                at += FRAME_HEAD + body.len();
                seq += 1;
            }
            // The tail a crash cut short: never synced, so never acknowledged as durable.
            None if newest => break,
            None => {
                return Err(corrupt(format!(
                    "record {seq} at byte {at} is damaged (a segment other than the newest)"
                )));
            }
        }
    }
    Ok(frames)
}

/// Takes into `log` the records of every journal beside it whose writer is gone, then removes
/// those journals. Called when the store is opened. A journal whose records are sealed is
/// left for an opener that has the key when this one has not.
pub(crate) fn recover(log: &mut AuditLog) -> Result<(), AuditError> {
    let root = root_for(log.path());
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(&root, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_at(&root, e))?;
        if let Some(name) = entry.file_name().to_str()
            && is_journal_id(name)
            && entry.path().is_dir()
        {
            dirs.push((name.to_string(), entry.path()));
        }
    }
    dirs.sort();
    for (id, dir) in dirs {
        let lock_path = dir.join(LOCK_FILE);
        let lock = open_lock(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            // Its gateway is running and takes its records in itself.
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => return Err(io_at(&lock_path, e)),
        }
        if !recover_one(log, &id, &dir)? {
            continue;
        }
        for seg in segments(&dir)? {
            std::fs::remove_file(&seg).map_err(|e| io_at(&seg, e))?;
        }
        std::fs::remove_file(&lock_path).map_err(|e| io_at(&lock_path, e))?;
        drop(lock);
        std::fs::remove_dir(&dir).map_err(|e| io_at(&dir, e))?;
        sync_dir(&root).map_err(|e| io_at(&root, e))?;
        // Only once the journal is gone: a mark without its journal is harmless, a journal
        // without its mark would be taken in twice.
        log.clear_journal_mark(&id)?;
    }
    Ok(())
}

/// Takes in one journal's records past its mark. False when they are sealed and this opener
/// has no key (the journal stays).
fn recover_one(log: &mut AuditLog, id: &str, dir: &Path) -> Result<bool, AuditError> {
    let mark = log.journal_mark(id)?;
    let segs = segments(dir)?;
    let mut expected = None;
    let mut taken = false;
    for (i, seg) in segs.iter().enumerate() {
        let frames = read_segment(seg, id, expected, i + 1 == segs.len())?;
        if let Some((last, _)) = frames.last() {
            expected = Some(last + 1);
        }
        let mut texts = Vec::new();
        let mut seqs = Vec::new();
        for (seq, body) in frames {
            if mark.is_some_and(|m| seq <= m) {
                continue;
            }
            let body = String::from_utf8(body).map_err(|_| {
                AuditError::Corrupt(format!("record {seq} of audit journal {id} is not UTF-8"))
            })?;
            let text = if is_sealed(&body) {
                match log.cipher() {
                    Some(c) => c.open_journal(id, seq, &body)?,
                    None => return Ok(false),
                }
            } else {
                if log.is_encrypted() {
                    return Err(AuditError::Corrupt(format!(
                        "record {seq} of audit journal {id} is not sealed, in an encrypted store"
                    )));
                }
                body
            };
            if !serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object()) {
                return Err(AuditError::Corrupt(format!(
                    "record {seq} of audit journal {id} is not a JSON object"
                )));
            }
            texts.push(text);
            seqs.push(seq);
        }
        for (chunk, seq_chunk) in texts
            .chunks(RECOVERY_CHUNK)
            .zip(seqs.chunks(RECOVERY_CHUNK))
        {
            let last = seq_chunk.last().copied().unwrap_or_default();
            log.append_canonical(chunk, Some((id, last)))?;
            taken = true;
        }
    }
    if taken
        && log.options().durability == Durability::Normal
        && let Some(w) = log.wal_syncer()
    {
        w.sync()?;
    }
    Ok(true)
}

/// The journal file being written, and where the next record goes.
struct Writer {
    dir: PathBuf,
    id: String,
    id_bytes: [u8; 16],
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
    /// Held while the journal is written: tells openers of the store to leave it alone.
    _lock: File,
}

impl Writer {
    /// A new journal with a random id under `root`, locked, with its first segment.
    fn create(root: &Path, segment_bytes: u64) -> Result<Writer, AuditError> {
        create_private_dir(root).map_err(|e| io_at(root, e))?;
        let mut id_bytes = [0u8; 16];
        getrandom::getrandom(&mut id_bytes)
            .map_err(|_| AuditError::Corrupt("no randomness for the audit journal id".into()))?;
        let id = hex::encode(id_bytes);
        let dir = root.join(&id);
        create_private_dir(&dir).map_err(|e| io_at(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = open_lock(&lock_path)?;
        lock.try_lock().map_err(|e| {
            AuditError::Corrupt(format!(
                "audit journal {}: cannot lock it: {e}",
                dir.display()
            ))
        })?;
        let (file, path) = new_segment(&dir, &id_bytes, 1)?;
        sync_dir(root).map_err(|e| io_at(root, e))?;
        Ok(Writer {
            dir,
            id,
            id_bytes,
            file: Arc::new(file),
            path,
            len: HEADER_LEN as u64,
            next_seq: 1,
            segment_bytes,
            buf: Vec::new(),
            _lock: lock,
        })
    }

    /// Writes `bodies` as the next frames in one write. On error nothing is appended (a
    /// partial write is cut off again); if even that fails, the writer must not be used again.
    fn write(&mut self, bodies: &[String]) -> Result<(), WriteError> {
        self.buf.clear();
        for (k, body) in bodies.iter().enumerate() {
            let len = u32::try_from(body.len())
                .map_err(|_| WriteError::Refused(AuditError::Corrupt("record too large".into())))?;
            let seq = self.next_seq + k as u64;
            self.buf.extend_from_slice(&len.to_le_bytes());
            self.buf.extend_from_slice(&seq.to_le_bytes());
            self.buf
                .extend_from_slice(&frame_check(len, seq, body.as_bytes()));
            self.buf.extend_from_slice(body.as_bytes());
        }
        if let Err(e) = (&*self.file).write_all(&self.buf) {
            // Nothing after a torn frame would be read back: cut the file to what it held.
            return match self.file.set_len(self.len) {
                Ok(()) => Err(WriteError::Refused(io_at(&self.path, e))),
                Err(_) => Err(WriteError::Broken(io_at(&self.path, e))),
            };
        }
        self.len += self.buf.len() as u64;
        self.next_seq += bodies.len() as u64;
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next. Returns the closed segment's
    /// path and last sequence number.
    fn rotate(&mut self) -> Result<(PathBuf, u64), AuditError> {
        self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        let (file, path) = new_segment(&self.dir, &self.id_bytes, self.next_seq)?;
        let closed = std::mem::replace(&mut self.path, path);
        self.file = Arc::new(file);
        self.len = HEADER_LEN as u64;
        Ok((closed, self.next_seq - 1))
    }
}

/// Creates segment `first_seq` in `dir` with its header, synced with its folder entry.
fn new_segment(dir: &Path, id: &[u8; 16], first_seq: u64) -> Result<(File, PathBuf), AuditError> {
    let path = dir.join(segment_name(first_seq));
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(|e| io_at(&path, e))?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(id);
    header.extend_from_slice(&first_seq.to_le_bytes());
    file.write_all(&header).map_err(|e| io_at(&path, e))?;
    file.sync_all().map_err(|e| io_at(&path, e))?;
    sync_dir(dir).map_err(|e| io_at(dir, e))?;
    Ok((file, path))
}

enum WriteError {
    /// Nothing was appended; the journal can go on.
    Refused(AuditError),
    /// The file may hold a torn frame: no more appends.
    Broken(AuditError),
}

/// What the appending side and the ingest threads share.
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the ingest thread (records arrived, or closing).
    wake: Condvar,
    /// Wakes the catch-up thread (closing).
    wake_catch_up: Condvar,
    /// The segment being written, for [`JournalSyncer`].
    current: Mutex<Arc<File>>,
}

#[derive(Default)]
struct Queue {
    /// Records journaled and not yet in the store, in journal order.
    records: VecDeque<(u64, String)>,
    /// When the oldest of `records` arrived (reset after a partial batch: the rest waits
    /// `ingest_delay` for more).
    first_at: Option<Instant>,
    /// Since when `records` has not been empty (for the catch-up thread).
    waiting_since: Option<Instant>,
    /// Until when the catch-up thread, not the idle-priority one, takes records in.
    catch_up_until: Option<Instant>,
    /// The catch-up thread has ended: on close, after taking in what was left.
    catch_up_done: bool,
    /// The ingest thread, when it runs at idle priority (for the catch-up thread's boost).
    ingest_thread: Option<thread_priority::unix::ThreadId>,
    /// The catch-up thread raised the ingest thread to normal priority, to finish a round it
    /// held the store in; it lowers itself again after the round.
    ingest_boosted: bool,
    /// Closed segments and their last sequence numbers, removed once taken in.
    closed: VecDeque<(PathBuf, u64)>,
    /// When the last store transaction failed, if it did.
    failed_at: Option<Instant>,
    /// Set by [`JournaledLog`]'s drop: take in what is left and stop.
    closing: bool,
    /// Set when the ingest thread has ended.
    stopped: bool,
    /// Tests: the ingest thread takes nothing in while set (as when the CPU is saturated
    /// and it runs at idle priority).
    #[cfg(test)]
    stall_ingest: bool,
    /// Tests: the ingest thread's Linux thread id.
    #[cfg(test)]
    ingest_tid: Option<String>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes every record journaled so far survive a power loss, from any thread.
#[derive(Clone)]
pub struct JournalSyncer(Arc<Shared>);

impl std::fmt::Debug for JournalSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalSyncer")
    }
}

impl JournalSyncer {
    /// An `fdatasync` of the segment being written (a segment is synced when it is closed).
    pub fn sync(&self) -> std::io::Result<()> {
        let file = self
            .0
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        file.sync_data()
    }
}

/// How long a failed store transaction keeps [`JournaledLog::health`] down unless a later one
/// succeeds.
const FAILED_HOLD: Duration = Duration::from_secs(30);

/// The embedded store with a journal in front (see the module documentation).
pub struct JournaledLog {
    shared: Arc<Shared>,
    /// `None` once a write could not be undone: every later append fails.
    writer: Mutex<Option<Writer>>,
    ingester: Option<std::thread::JoinHandle<()>>,
    catch_up: Option<std::thread::JoinHandle<()>>,
    cipher: Option<PayloadCipher>,
    max_record_bytes: usize,
    options: JournalOptions,
}

impl std::fmt::Debug for JournaledLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournaledLog")
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

impl JournaledLog {
    /// Starts a new journal beside `log` and the thread that takes its records into `log`.
    /// An encrypted store must have been opened with its key.
    pub fn start(log: AuditLog, options: JournalOptions) -> Result<JournaledLog, AuditError> {
        let cipher = match log.cipher() {
            Some(c) => Some(PayloadCipher::new(c.provider())?),
            None if log.is_encrypted() => return Err(AuditError::Sealed),
            None => None,
        };
        let writer = Writer::create(&root_for(log.path()), options.segment_bytes)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            wake_catch_up: Condvar::new(),
            current: Mutex::new(writer.file.clone()),
        });
        let wal = match log.options().durability {
            Durability::Normal => log.wal_syncer(),
            Durability::Full => None,
        };
        let max_record_bytes = log.options().max_record_bytes;
        let ingest = Arc::new(Ingest {
            store: Mutex::new(Some(Store {
                log,
                wal,
                id: writer.id.clone(),
                dir: writer.dir.clone(),
            })),
            shared: shared.clone(),
            options: options.clone(),
        });
        let catch_up = {
            let ingest = ingest.clone();
            std::thread::Builder::new()
                .name("audit-catch-up".into())
                .spawn(move || ingest.catch_up())?
        };
        let ingester = match std::thread::Builder::new()
            .name("audit-ingest".into())
            .spawn(move || ingest.run())
        {
            Ok(t) => t,
            Err(e) => {
                lock(&shared).closing = true;
                shared.wake_catch_up.notify_all();
                let _ = catch_up.join();
                return Err(e.into());
            }
        };
        Ok(JournaledLog {
            shared,
            writer: Mutex::new(Some(writer)),
            ingester: Some(ingester),
            catch_up: Some(catch_up),
            cipher,
            max_record_bytes,
            options,
        })
    }

    /// Writes `records` (JSON objects) to the journal in one write: when this returns `Ok`
    /// they survive a crash of the process, and a power loss once a [`JournalSyncer::sync`]
    /// started after it has returned. All or none.
    pub fn append_batch(&self, records: &[Value]) -> Result<(), AuditError> {
        let texts = canonical_payloads(records, self.max_record_bytes)?;
        {
            let q = lock(&self.shared);
            if q.stopped {
                return Err(AuditError::Corrupt(
                    "the audit journal's ingest thread is not running".into(),
                ));
            }
            if q.records.len() + texts.len() > self.options.max_backlog {
                return Err(AuditError::Corrupt(
                    "the audit journal's backlog is full: the store is not taking records in"
                        .into(),
                ));
            }
        }
        let mut guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let writer = guard.as_mut().ok_or_else(|| {
            AuditError::Corrupt("the audit journal stopped after a failed write".into())
        })?;
        if writer.len >= writer.segment_bytes {
            let closed = writer.rotate()?;
            *self
                .shared
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = writer.file.clone();
            lock(&self.shared).closed.push_back(closed);
        }
        let first = writer.next_seq;
        let sealed = match &self.cipher {
            Some(c) => Some(
                texts
                    .iter()
                    .enumerate()
                    .map(|(k, t)| c.seal_journal(&writer.id, first + k as u64, t))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        // A plaintext store's journal holds the canonical text itself.
        match writer.write(sealed.as_deref().unwrap_or(&texts)) {
            Ok(()) => {}
            Err(WriteError::Refused(e)) => return Err(e),
            Err(WriteError::Broken(e)) => {
                *guard = None;
                return Err(e);
            }
        }
        // Queued in journal order, under the writer's lock.
        let mut q = lock(&self.shared);
        let was_empty = q.records.is_empty();
        q.records.extend(
            texts
                .into_iter()
                .enumerate()
                .map(|(k, t)| (first + k as u64, t)),
        );
        if was_empty {
            q.first_at = Some(Instant::now());
            q.waiting_since = q.first_at;
        }
        if was_empty || q.records.len() >= self.options.max_ingest_batch {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// What makes journaled records durable, usable from another thread.
    pub fn syncer(&self) -> JournalSyncer {
        JournalSyncer(self.shared.clone())
    }

    /// Whether appends can succeed: the ingest thread runs, the last store transaction did not
    /// fail (within the last 30 s), and the journal can be written.
    pub fn health(&self) -> Result<(), AuditError> {
        let q = lock(&self.shared);
        if q.stopped {
            return Err(AuditError::Corrupt(
                "the audit journal's ingest thread is not running".into(),
            ));
        }
        if q.failed_at.is_some_and(|t| t.elapsed() < FAILED_HOLD) {
            return Err(AuditError::Corrupt(
                "the audit store failed to take in journaled records".into(),
            ));
        }
        drop(q);
        if self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
        {
            return Err(AuditError::Corrupt(
                "the audit journal stopped after a failed write".into(),
            ));
        }
        Ok(())
    }

    /// How many journaled records are not yet in the store.
    pub fn backlog(&self) -> usize {
        lock(&self.shared).records.len()
    }
}

impl Drop for JournaledLog {
    /// Syncs the journal, lets the catch-up thread take in every record left and waits for it;
    /// it removes the journal once all is in the store (otherwise the next opener recovers it)
    /// and closes the store.
    fn drop(&mut self) {
        if let Some(w) = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            let _ = w.file.sync_data();
        }
        lock(&self.shared).closing = true;
        self.shared.wake.notify_all();
        self.shared.wake_catch_up.notify_all();
        if let Some(handle) = self.catch_up.take() {
            let _ = handle.join();
        }
        // The ingest thread, at idle priority, could get no CPU for seconds on a busy machine
        // (and a process does not end before its threads): raised to normal priority first
        // where that is allowed.
        {
            let mut q = lock(&self.shared);
            if let Some(thread) = q.ingest_thread
                && !q.ingest_boosted
                && raise_priority(thread)
            {
                q.ingest_boosted = true;
            }
        }
        if let Some(handle) = self.ingester.take() {
            let _ = handle.join();
        }
    }
}

/// What both ingest threads share: the store, taken by one round at a time.
struct Ingest {
    /// `None` once the catch-up thread has closed it (on close).
    store: Mutex<Option<Store>>,
    shared: Arc<Shared>,
    options: JournalOptions,
}

/// The store side of the ingest.
struct Store {
    log: AuditLog,
    wal: Option<WalSyncer>,
    id: String,
    dir: PathBuf,
}

/// Marks the ingest thread stopped however it ends.
struct StoppedGuard(Arc<Shared>);

impl Drop for StoppedGuard {
    fn drop(&mut self) {
        lock(&self.0).stopped = true;
        // The catch-up thread stops with it.
        self.0.wake_catch_up.notify_all();
    }
}

/// Failed transactions tried again while closing before the journal is left for recovery.
const CLOSING_TRIES: u32 = 3;
/// How often the catch-up thread looks at the queue.
const CATCH_UP_CHECK: Duration = Duration::from_millis(100);
/// Once the catch-up thread takes over, it keeps the ingest this long (renewed while records
/// keep waiting), so that the idle-priority thread does not take the store and stall in a
/// round while the CPU is still saturated.
const CATCH_UP_HOLD: Duration = Duration::from_secs(10);
/// The most records the idle-priority thread takes in per round: a round it is starved in
/// holds the store, so it is kept short.
const IDLE_ROUND_MAX: usize = 256;

/// What one round did.
enum Round {
    /// Nothing was waiting.
    Empty,
    /// A batch is in the store.
    Done,
    /// The store transaction failed; the batch is back at the front of the queue.
    Failed,
}

impl Ingest {
    fn store(&self) -> MutexGuard<'_, Option<Store>> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store for the catch-up thread. If the ingest thread holds it, in a round it may get
    /// no CPU to finish at idle priority, it is raised to normal priority first (it lowers
    /// itself after the round). Raising a thread's priority needs `CAP_SYS_NICE` (or an
    /// `RLIMIT_NICE` of 20); without it the catch-up thread waits for the round.
    fn store_for_catch_up(&self) -> MutexGuard<'_, Option<Store>> {
        match self.store.try_lock() {
            Ok(g) => return g,
            Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        {
            let mut q = lock(&self.shared);
            if let Some(thread) = q.ingest_thread
                && !q.ingest_boosted
                && raise_priority(thread)
            {
                q.ingest_boosted = true;
            }
        }
        self.store()
    }

    /// Takes the batch at the front of the queue into the store. The caller holds the store,
    /// so rounds run one at a time, in journal order.
    fn round(&self, store: &mut Store, max: usize) -> Round {
        let (seqs, texts): (Vec<u64>, Vec<String>) = {
            let mut q = lock(&self.shared);
            if q.records.is_empty() {
                return Round::Empty;
            }
            let n = q.records.len().min(max);
            let batch = q.records.drain(..n).unzip();
            q.first_at = (!q.records.is_empty()).then(Instant::now);
            if q.records.is_empty() {
                q.waiting_since = None;
            }
            batch
        };
        let last = seqs.last().copied().unwrap_or_default();
        let result = store
            .log
            .append_canonical(&texts, Some((&store.id, last)))
            .and_then(|_| match &store.wal {
                Some(w) => w.sync().map_err(AuditError::from),
                None => Ok(()),
            });
        let mut q = lock(&self.shared);
        match result {
            Ok(_) => {
                q.failed_at = None;
                while q.closed.front().is_some_and(|(_, l)| *l <= last) {
                    if let Some((path, _)) = q.closed.pop_front() {
                        // A leftover segment is skipped by its mark on recovery.
                        let _ = std::fs::remove_file(path);
                    }
                }
                Round::Done
            }
            Err(_) => {
                q.failed_at = Some(Instant::now());
                for record in seqs.into_iter().zip(texts).rev() {
                    q.records.push_front(record);
                }
                q.first_at = Some(Instant::now());
                q.waiting_since.get_or_insert_with(Instant::now);
                Round::Failed
            }
        }
    }

    /// Waits until a batch is due (full, `ingest_delay` old, or closing) for the thread that
    /// takes records in now: the catch-up thread (`catching_up`) while its hold lasts, the
    /// ingest thread otherwise. `None`: closing with nothing left, or (catch-up thread) no
    /// longer holding the ingest.
    fn wait_for_batch(&self, catching_up: bool, max: usize) -> Option<()> {
        let mut q = lock(&self.shared);
        loop {
            let now = Instant::now();
            let held = q.catch_up_until.is_some_and(|t| now < t);
            if catching_up && (!held || q.closing || q.stopped) {
                return None;
            }
            #[cfg(test)]
            if !catching_up && q.stall_ingest && !q.closing {
                q = self
                    .shared
                    .wake
                    .wait_timeout(q, Duration::from_millis(5))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                continue;
            }
            // While the catch-up thread holds the ingest, the ingest thread waits; on close it
            // waits for the catch-up thread's drain, then finishes.
            let mut wait = match q.catch_up_until {
                _ if !catching_up && q.closing && !q.catch_up_done => Some(CATCH_UP_CHECK),
                Some(t) if !catching_up && held && !q.closing => Some(t - now),
                _ => None,
            };
            if wait.is_none() {
                if q.records.is_empty() {
                    if q.closing {
                        return None;
                    }
                } else if q.closing || q.records.len() >= max {
                    return Some(());
                } else {
                    let age = q.first_at.map_or(Duration::ZERO, |t| t.elapsed());
                    if age >= self.options.ingest_delay {
                        return Some(());
                    }
                    wait = Some(self.options.ingest_delay - age);
                }
            }
            if catching_up {
                // Not woken by appends: it looks again at least every CATCH_UP_CHECK.
                let w = wait.unwrap_or(CATCH_UP_CHECK).min(CATCH_UP_CHECK);
                q = self
                    .shared
                    .wake_catch_up
                    .wait_timeout(q, w)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            } else {
                q = match wait {
                    Some(w) => {
                        self.shared
                            .wake
                            .wait_timeout(q, w)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0
                    }
                    None => self
                        .shared
                        .wake
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                };
            }
        }
    }

    /// The ingest thread (at idle priority when `idle_priority`): takes each batch in when it
    /// is due, and at the end removes the journal once everything is in the store.
    fn run(self: Arc<Self>) {
        let _stopped = StoppedGuard(self.shared.clone());
        let max = if self.options.idle_priority {
            if lower_priority() {
                lock(&self.shared).ingest_thread = Some(thread_priority::unix::thread_native_id());
            }
            self.options.max_ingest_batch.min(IDLE_ROUND_MAX)
        } else {
            self.options.max_ingest_batch
        };
        #[cfg(test)]
        {
            lock(&self.shared).ingest_tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
        let mut backoff = Duration::from_millis(20);
        loop {
            let _ = self.wait_for_batch(false, max);
            {
                let q = lock(&self.shared);
                if q.closing && q.catch_up_done {
                    // The catch-up thread took the rest in and removed the journal, or left
                    // it for the next opener of the store.
                    return;
                }
            }
            let mut guard = self.store();
            let Some(store) = guard.as_mut() else {
                return;
            };
            let round = self.round(store, max);
            drop(guard);
            let boosted = std::mem::take(&mut lock(&self.shared).ingest_boosted);
            if boosted {
                lower_priority();
            }
            match round {
                Round::Done => backoff = Duration::from_millis(20),
                Round::Empty => {}
                Round::Failed => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The catch-up thread, at normal priority: when the journal has not been empty for
    /// `catch_up_after` (the ingest thread, at idle priority, gets no CPU), it takes the ingest
    /// over for [`CATCH_UP_HOLD`], renewed while records keep waiting that long.
    fn catch_up(self: Arc<Self>) {
        let after = self
            .options
            .catch_up_after
            .max(self.options.ingest_delay.saturating_mul(2));
        let max = self.options.max_ingest_batch;
        let mut backoff = Duration::from_millis(20);
        let _done = CatchUpDone(self.shared.clone());
        loop {
            {
                let mut q = lock(&self.shared);
                if q.stopped {
                    return;
                }
                if q.closing {
                    drop(q);
                    self.drain_on_close();
                    return;
                }
                if q.waiting_since.is_some_and(|t| t.elapsed() >= after) {
                    q.catch_up_until = Some(Instant::now() + CATCH_UP_HOLD);
                }
                if q.catch_up_until.is_none_or(|t| Instant::now() >= t) {
                    let _ = self
                        .shared
                        .wake_catch_up
                        .wait_timeout(q, CATCH_UP_CHECK)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    continue;
                }
            }
            if self.wait_for_batch(true, max).is_none() {
                continue;
            }
            let mut guard = self.store_for_catch_up();
            let Some(store) = guard.as_mut() else {
                return;
            };
            match self.round(store, max) {
                Round::Done => backoff = Duration::from_millis(20),
                Round::Empty => {}
                Round::Failed => {
                    drop(guard);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// On close, at normal priority (a saturated CPU must not hold up a shutdown): takes in
    /// every record left, trying a failing transaction [`CLOSING_TRIES`] times, then removes
    /// the journal (everything is in the store and synced), or leaves it for the next opener.
    fn drain_on_close(&self) {
        let mut guard = self.store_for_catch_up();
        if let Some(store) = guard.as_mut() {
            let mut failures = 0;
            let mut backoff = Duration::from_millis(20);
            loop {
                match self.round(store, self.options.max_ingest_batch) {
                    Round::Done => {}
                    Round::Empty => {
                        remove_journal(store);
                        break;
                    }
                    Round::Failed => {
                        failures += 1;
                        if failures >= CLOSING_TRIES {
                            break;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
        // Closed here, at normal priority, rather than by the ingest thread.
        drop(guard.take());
    }
}

/// Tells the ingest thread the catch-up thread has ended (its close-time drain is over),
/// however it ends.
struct CatchUpDone(Arc<Shared>);

impl Drop for CatchUpDone {
    fn drop(&mut self) {
        lock(&self.0).catch_up_done = true;
        self.0.wake.notify_all();
    }
}

/// Puts the calling thread at the lowest CPU priority: Linux `SCHED_IDLE` (it runs when no
/// other thread wants the CPU; its nice value stays 0), else the highest nice value. Best
/// effort: a refusal leaves it at normal priority. `true` when it runs at `SCHED_IDLE`.
fn lower_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        // `Min` is the only value `SCHED_IDLE` takes; the nice value is set to 0.
        let idle = thread_priority::unix::set_thread_priority_and_policy(
            thread_priority::unix::thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if idle.is_ok() {
            return true;
        }
    }
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
    false
}

/// Puts `thread` (at `SCHED_IDLE`) back at normal priority (`SCHED_OTHER`, nice 0). `false`
/// when refused (no `CAP_SYS_NICE`).
fn raise_priority(thread: thread_priority::unix::ThreadId) -> bool {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
    };
    // Nice 0 (`Os` 0): the library also sets the calling thread's nice value to it, which is
    // the catch-up thread's own.
    thread_priority::unix::set_thread_priority_and_policy(
        thread,
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
    )
    .is_ok()
}

/// Removes the journal's files and its mark in the store (everything is in the store).
fn remove_journal(store: &mut Store) {
    let Ok(segs) = segments(&store.dir) else {
        return;
    };
    for seg in segs {
        if std::fs::remove_file(&seg).is_err() {
            return;
        }
    }
    if std::fs::remove_file(store.dir.join(LOCK_FILE)).is_err()
        || std::fs::remove_dir(&store.dir).is_err()
    {
        return;
    }
    if let Some(root) = store.dir.parent() {
        let _ = sync_dir(root);
    }
    let _ = store.log.clear_journal_mark(&store.id);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn records(log: &AuditLog) -> Vec<Value> {
        let size = log.tree_head().unwrap().size;
        let mut out = Vec::new();
        log.for_each_entry::<AuditError>(0..size, |e| {
            out.push(serde_json::from_str(&e.record).unwrap());
            Ok(())
        })
        .unwrap();
        out
    }

    fn encrypted(path: &Path, key: &Path) -> AuditLog {
        AuditLog::open_with_local_key(path, crate::Options::default(), key)
            .unwrap()
            .0
    }

    fn journal_dirs(db: &Path) -> usize {
        std::fs::read_dir(root_for(db))
            .map(|d| d.filter_map(Result::ok).count())
            .unwrap_or(0)
    }

    #[test]
    fn journaled_records_reach_the_store_in_order_and_the_journal_goes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let key = dir.path().join("key");
        let log = encrypted(&db, &key);
        let options = JournalOptions {
            segment_bytes: 2_000,
            ..JournalOptions::default()
        };
        let journal = JournaledLog::start(log, options).unwrap();
        let syncer = journal.syncer();
        for i in 0..300 {
            journal
                .append_batch(&[json!({"i": i, "phase": "dispatch"}), json!({"i": i})])
                .unwrap();
            if i % 7 == 0 {
                syncer.sync().unwrap();
            }
        }
        assert!(journal.health().is_ok());
        // Bad records are refused before anything is written.
        assert!(matches!(
            journal.append_batch(&[json!({"ok": 1}), json!([1])]),
            Err(AuditError::NotAnObject { position: 1 })
        ));
        // Several segments were closed along the way; those taken in are removed while the
        // journal runs.
        let mut waited = 0;
        while journal.backlog() > 0 && waited < 500 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        drop(journal);
        assert_eq!(journal_dirs(&db), 0, "the journal was not removed");
        let log = encrypted(&db, &key);
        let got = records(&log);
        assert_eq!(got.len(), 600);
        for (k, r) in got.iter().enumerate() {
            assert_eq!(r["i"], json!(k / 2), "out of order at {k}");
        }
        assert!(log.check(None).unwrap().is_intact());
        // The journal's mark is gone with it.
        let n: i64 = log
            .conn_for_tests()
            .query_row(
                "SELECT count(*) FROM meta WHERE key LIKE 'journal:%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    /// A journal left as a crash leaves it: its writer gone, records past the store's mark.
    fn write_frames(db: &Path, cipher: Option<&PayloadCipher>, n: u64) -> (String, PathBuf) {
        let mut w = Writer::create(&root_for(db), 1 << 20).unwrap();
        let id = w.id.clone();
        for i in 1..=n {
            let text = crate::canonical::to_canonical_string(&json!({"n": i}));
            let body = match cipher {
                Some(c) => c.seal_journal(&id, i, &text).unwrap(),
                None => text,
            };
            assert!(w.write(&[body]).is_ok());
        }
        (id, w.path.clone())
    }

    #[test]
    fn a_journal_whose_writer_is_gone_is_taken_in_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let key = dir.path().join("key");
        // Payloads sealed, file pages not, so the store opens (tree only) without the key.
        let options = crate::Options {
            encrypt_file: false,
            ..crate::Options::default()
        };
        let encrypted = |db: &Path, key: &Path| {
            AuditLog::open_with_local_key(db, options.clone(), key)
                .unwrap()
                .0
        };
        let log = encrypted(&db, &key);
        let cipher = PayloadCipher::new(log.cipher().unwrap().provider()).unwrap();
        drop(log);
        let (_, seg) = write_frames(&db, Some(&cipher), 5);
        // Sealed frames do not show their records.
        let bytes = std::fs::read(&seg).unwrap();
        assert!(!bytes.windows(4).any(|w| w == b"\"n\":"));
        // Opened without the key (the key file moved away), the store leaves the journal.
        std::fs::rename(&key, dir.path().join("elsewhere")).unwrap();
        let sealed = AuditLog::open(&db).unwrap();
        assert_eq!(sealed.tree_head().unwrap().size, 0);
        assert_eq!(journal_dirs(&db), 1);
        drop(sealed);
        std::fs::rename(dir.path().join("elsewhere"), &key).unwrap();
        let log = encrypted(&db, &key);
        let got = records(&log);
        assert_eq!(got, (1..=5).map(|n| json!({"n": n})).collect::<Vec<_>>());
        assert_eq!(journal_dirs(&db), 0);
        drop(log);
        // Opening again takes nothing in twice.
        assert_eq!(encrypted(&db, &key).tree_head().unwrap().size, 5);
    }

    #[test]
    fn records_already_taken_in_are_not_taken_in_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let mut log = AuditLog::open(&db).unwrap();
        let (id, _) = write_frames(&db, None, 6);
        // As if the gateway took in records 1..=4 and died before removing its journal.
        let first: Vec<String> = (1..=4)
            .map(|n| crate::canonical::to_canonical_string(&json!({"n": n})))
            .collect();
        log.append_canonical(&first, Some((&id, 4))).unwrap();
        drop(log);
        let log = AuditLog::open(&db).unwrap();
        let got = records(&log);
        assert_eq!(got, (1..=6).map(|n| json!({"n": n})).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_last_frame_is_dropped_and_damage_elsewhere_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        drop(AuditLog::open(&db).unwrap());
        let (_, seg) = write_frames(&db, None, 3);
        // A crash in the middle of writing the fourth frame.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[40, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 2])
            .unwrap();
        drop(f);
        let log = AuditLog::open(&db).unwrap();
        assert_eq!(records(&log).len(), 3);
        drop(log);

        // A damaged frame in a segment that is not the newest: the store does not open, and
        // says where.
        let db2 = dir.path().join("audit2.db");
        drop(AuditLog::open(&db2).unwrap());
        let mut w = Writer::create(&root_for(&db2), 1 << 20).unwrap();
        for n in 1..=3 {
            let text = crate::canonical::to_canonical_string(&json!({"n": n}));
            assert!(w.write(&[text]).is_ok());
        }
        let (closed, last) = w.rotate().unwrap();
        assert_eq!(last, 3);
        let text = crate::canonical::to_canonical_string(&json!({"n": 4}));
        assert!(w.write(&[text]).is_ok());
        drop(w);
        let mut bytes = std::fs::read(&closed).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x20;
        std::fs::write(&closed, bytes).unwrap();
        let err = AuditLog::open(&db2).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("seg-"), "{err}");
        assert!(!err.contains("\"n\""), "{err}");
    }

    /// A journal over a new plaintext store at `db` that takes records in only when closed,
    /// holding at most `max_backlog` of them.
    fn held(db: &Path, max_backlog: usize) -> JournaledLog {
        let options = JournalOptions {
            ingest_delay: Duration::from_secs(3600),
            max_ingest_batch: 1_000_000,
            max_backlog,
            ..JournalOptions::default()
        };
        JournaledLog::start(AuditLog::open(db).unwrap(), options).unwrap()
    }

    /// The scheduling policy of the ingest thread (`/proc/…/stat` field 41; 5 is
    /// `SCHED_IDLE`, 0 `SCHED_OTHER`).
    fn ingest_policy(journal: &JournaledLog) -> u32 {
        let mut tid = None;
        for _ in 0..1000 {
            tid = lock(&journal.shared).ingest_tid.clone();
            if tid.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        policy_of(&tid.unwrap())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_ingest_thread_runs_at_idle_priority_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let journal = JournaledLog::start(
            AuditLog::open(&dir.path().join("a.db")).unwrap(),
            JournalOptions::default(),
        )
        .unwrap();
        assert_eq!(ingest_policy(&journal), 5);
        let options = JournalOptions {
            idle_priority: false,
            ..JournalOptions::default()
        };
        let journal =
            JournaledLog::start(AuditLog::open(&dir.path().join("b.db")).unwrap(), options)
                .unwrap();
        assert_eq!(ingest_policy(&journal), 0);
    }

    /// `/proc/self/task/{tid}/stat` field 41, the scheduling policy.
    fn policy_of(tid: &str) -> u32 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        after_name
            .split_whitespace()
            .nth(38)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_at_idle_priority_can_be_raised_by_another() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let idle = lower_priority();
            let tid = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = tid.file_name().unwrap().to_string_lossy().into_owned();
            tx.send((idle, thread_priority::unix::thread_native_id(), tid))
                .unwrap();
            let _ = stop_rx.recv();
        });
        let (idle, native, tid) = rx.recv().unwrap();
        assert!(idle);
        assert_eq!(policy_of(&tid), 5);
        // As root (CI, this machine) the raise is allowed.
        assert!(raise_priority(native));
        assert_eq!(policy_of(&tid), 0);
        stop_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_starved_ingest_thread_is_caught_up_at_normal_priority() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let options = JournalOptions {
            catch_up_after: Duration::from_millis(100),
            ..JournalOptions::default()
        };
        let key = dir.path().join("key");
        let journal = JournaledLog::start(encrypted(&db, &key), options).unwrap();
        // The ingest thread takes nothing in, as when it gets no CPU at idle priority.
        lock(&journal.shared).stall_ingest = true;
        for i in 0..5000 {
            journal.append_batch(&[json!({"n": i})]).unwrap();
        }
        let mut waited = 0;
        while journal.backlog() > 0 && waited < 3000 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        assert_eq!(journal.backlog(), 0, "the catch-up thread took nothing in");
        let log = encrypted(&db, &key);
        let got: Vec<i64> = records(&log)
            .iter()
            .map(|r| r["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, (0..5000).collect::<Vec<i64>>());
        drop(log);
        // Still stalled: closing drains what arrives later, and removes the journal.
        journal.append_batch(&[json!({"n": 5000})]).unwrap();
        drop(journal);
        assert_eq!(encrypted(&db, &key).tree_head().unwrap().size, 5001);
        assert_eq!(journal_dirs(&db), 0);
    }

    #[test]
    fn a_running_journal_is_left_to_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let journal = held(&db, JournalOptions::default().max_backlog);
        journal.append_batch(&[json!({"n": 1})]).unwrap();
        journal.syncer().sync().unwrap();
        // Another opener (a CLI command) neither takes in nor removes a live journal.
        let other = AuditLog::open(&db).unwrap();
        assert_eq!(other.tree_head().unwrap().size, 0);
        assert_eq!(journal_dirs(&db), 1);
        drop(other);
        // Closing takes the record in at once.
        drop(journal);
        let log = AuditLog::open(&db).unwrap();
        assert_eq!(records(&log), vec![json!({"n": 1})]);
    }

    #[test]
    fn appends_fail_closed_when_the_backlog_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let journal = held(&db, 3);
        journal
            .append_batch(&[json!({"n": 1}), json!({"n": 2})])
            .unwrap();
        let err = journal
            .append_batch(&[json!({"n": 3}), json!({"n": 4})])
            .unwrap_err();
        assert!(err.to_string().contains("backlog"), "{err}");
        drop(journal);
        assert_eq!(AuditLog::open(&db).unwrap().tree_head().unwrap().size, 2);
    }
}
