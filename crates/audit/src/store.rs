//! The log's SQLite store: leaves, the persisted frontier, a sparse cache of interior nodes and
//! signed checkpoints.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so every committed
//! transaction's WAL frames are fsynced before `COMMIT` returns: an append acknowledged by
//! [`AuditLog::append_batch`] survives a process crash, an OS crash and a power loss.
//! (`synchronous=NORMAL` in WAL mode survives a process crash but may lose the last
//! transactions on power loss, until a [`WalSyncer`] flushes the log: see
//! [`Durability::Normal`].) Group commit is one transaction per batch, hence one fsync per batch.
//!
//! Tree state: the frontier (compact range of `[0, size)`) and the root are updated in the same
//! transaction as the leaves, so the root of size n is always there without recomputation, and
//! a crash leaves either the whole batch or none of it. Interior nodes at levels that are
//! multiples of [`NODE_STRIDE`] are cached in `nodes`; any perfect subtree is then at most
//! `2^(NODE_STRIDE-1)` cached hashes away, so proofs cost O(log² n) small range reads.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phiguard_crypto::KeyProvider;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

use crate::canonical::{to_canonical_string, write_json_string};
use crate::encryption::{self, META_ENCRYPTION, META_KEY_CHECK, META_KEY_FILE, PayloadCipher};
use crate::error::AuditError;
use crate::file_key::{self, PageKey, Sidecar};
use crate::hash::{Hash, empty_root, leaf_hash, node_hash};
use crate::note::{Checkpoint, Signer, VerifierKey};
use crate::tree::{self, Frontier, Subtrees, TreeError};

/// The store's schema version: the highest migration this phiguard knows.
pub const SCHEMA_VERSION: u32 = 3;

/// Interior nodes are cached at levels that are multiples of this.
pub const NODE_STRIDE: u32 = 4;

/// The export file's `format` value.
pub const EXPORT_FORMAT: &str = "phiguard-audit-export";

/// The export file's version.
pub const EXPORT_VERSION: u32 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    idx             INTEGER PRIMARY KEY,
    appended_at     TEXT NOT NULL,
    payload         TEXT NOT NULL,
    leaf_hash       BLOB NOT NULL,
    retention_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_appended_at ON leaves (appended_at);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    frontier BLOB NOT NULL,
    root     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id         INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS leaves_append_only_update BEFORE UPDATE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS leaves_append_only_delete BEFORE DELETE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_append_only_update BEFORE UPDATE ON nodes
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_append_only_delete BEFORE DELETE ON nodes
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Retention: a record's payload may be pruned (set to `''`, with `pruned_at`) once its
/// `retention_until` has passed; nothing else of a leaf may ever change, and leaves are never
/// deleted (the leaf hash stays, so the tree and every proof still verify).
const SCHEMA_V2: &str = "
ALTER TABLE leaves ADD COLUMN pruned_at TEXT;
DROP TRIGGER IF EXISTS leaves_append_only_update;
DROP TRIGGER IF EXISTS leaves_append_only_delete;
CREATE TRIGGER leaves_append_only_update BEFORE UPDATE ON leaves
    WHEN NOT (OLD.pruned_at IS NULL AND NEW.pruned_at IS NOT NULL AND NEW.payload = ''
              AND NEW.idx = OLD.idx AND NEW.appended_at = OLD.appended_at
              AND NEW.leaf_hash = OLD.leaf_hash AND NEW.retention_until = OLD.retention_until
              AND NEW.pruned_at >= OLD.retention_until)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: only the payload of a record past its retention_until may be pruned'); END;
CREATE TRIGGER leaves_append_only_delete BEFORE DELETE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: records are never deleted; past retention_until only their payloads are pruned'); END;
";

/// Key rotation: an encrypted payload may also be replaced by another encrypted payload (its
/// data key re-wrapped under a newer KEK version by [`AuditLog::rewrap_payloads`]); the leaf
/// hash, over the plaintext, stays, so a payload swapped for anything else no longer matches
/// it when read.
const SCHEMA_V3: &str = "
DROP TRIGGER IF EXISTS leaves_append_only_update;
CREATE TRIGGER leaves_append_only_update BEFORE UPDATE ON leaves
    WHEN NOT (
        (OLD.pruned_at IS NULL AND NEW.pruned_at IS NOT NULL AND NEW.payload = ''
              AND NEW.idx = OLD.idx AND NEW.appended_at = OLD.appended_at
              AND NEW.leaf_hash = OLD.leaf_hash AND NEW.retention_until = OLD.retention_until
              AND NEW.pruned_at >= OLD.retention_until)
        OR
        (substr(OLD.payload, 1, 5) = 'pgf1.' AND substr(NEW.payload, 1, 5) = 'pgf1.'
              AND NEW.idx = OLD.idx AND NEW.appended_at = OLD.appended_at
              AND NEW.leaf_hash = OLD.leaf_hash AND NEW.retention_until = OLD.retention_until
              AND OLD.pruned_at IS NULL AND NEW.pruned_at IS NULL))
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: only the payload of a record past its retention_until may be pruned, or an encrypted payload re-wrapped'); END;
";

/// The SQLite migrations, applied in order at open and recorded in `schema_migrations`.
/// Migration 1 is idempotent, so stores created before migrations were recorded adopt it.
pub const SQLITE_MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "base schema", SCHEMA_V1),
    (2, "retention: payload pruning", SCHEMA_V2),
    (
        3,
        "key rotation: encrypted payloads may be re-wrapped",
        SCHEMA_V3,
    ),
];

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged append survives power loss. The default.
    Full,
    /// `synchronous=NORMAL`: an acknowledged append survives a process crash, and a power loss
    /// once a [`WalSyncer`] (from [`AuditLog::wal_syncer`]) has synced after it. This lets a
    /// writer go on committing while another thread waits for the disk (the gateway's group
    /// commit); the store stays consistent either way (SQLite syncs around checkpoints).
    Normal,
}

/// Flushes a store's committed transactions to stable storage from any thread, without the
/// store's connection: an fsync of its write-ahead log, which exists while the store is open.
/// Every transaction committed before [`WalSyncer::sync`] is called survives a power loss once
/// it returns `Ok`.
#[derive(Debug, Clone)]
pub struct WalSyncer {
    db: PathBuf,
    wal: PathBuf,
    /// Set once the directory has been synced (the log file's directory entry).
    dir_synced: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WalSyncer {
    /// Syncs the log: its data, and its size when that changed. Fails (and so fails the
    /// appends waiting for it) when the log cannot be opened, e.g. once the store is closed.
    pub fn sync(&self) -> std::io::Result<()> {
        std::fs::File::open(&self.wal)?.sync_data()?;
        if !self.dir_synced.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(dir) = self.db.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            self.dir_synced
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }
}

/// Options of [`AuditLog::open_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How commits reach the disk.
    pub durability: Durability,
    /// Years each record is kept (`retention_until` = appended_at + this). HIPAA asks 6.
    pub retention_years: u16,
    /// The largest canonical record accepted, in bytes.
    pub max_record_bytes: usize,
    /// Encrypt the database file itself (SQLCipher) when a new store is created with a key.
    /// On by default; off only to measure what it costs.
    pub encrypt_file: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Full,
            retention_years: 6,
            max_record_bytes: 1 << 20,
            encrypt_file: true,
        }
    }
}

/// The acknowledgement of one durable append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The record's leaf index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// When it was appended (RFC 3339, UTC, microseconds).
    pub appended_at: String,
    /// The tree size after the batch that holds it was committed.
    pub tree_size: u64,
}

/// A tree size and its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// The number of records.
    pub size: u64,
    /// The RFC 6962 root of those records.
    pub root: Hash,
}

/// One stored record. `Debug` shows its index and time, never its content.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The leaf index.
    pub index: u64,
    /// When it was appended (RFC 3339, UTC, microseconds).
    pub appended_at: String,
    /// The record as canonical JSON.
    pub record: String,
    /// The leaf hash of [`Entry::leaf`].
    pub leaf_hash: Hash,
    /// Until when the record must be kept.
    pub retention_until: String,
    /// When its payload was pruned after retention (`record` is then empty and only the leaf
    /// hash remains).
    pub pruned_at: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("index", &self.index)
            .field("appended_at", &self.appended_at)
            .field(
                "record",
                &format_args!("[REDACTED; {} bytes]", self.record.len()),
            )
            .field("leaf_hash", &hex::encode(self.leaf_hash))
            .field("pruned_at", &self.pruned_at)
            .finish()
    }
}

impl Entry {
    /// True when the payload was pruned after retention.
    pub fn is_pruned(&self) -> bool {
        self.pruned_at.is_some()
    }

    /// The leaf bytes: the canonical JSON `{"appended_at":…,"record":…}` (meaningless for a
    /// pruned record, whose leaf hash is all that is left).
    pub fn leaf(&self) -> String {
        leaf_text(&self.appended_at, &self.record)
    }
}

/// The leaf text of a record appended at `appended_at`: canonical JSON, as the keys sort that
/// way and the timestamp needs no escaping.
pub fn leaf_text(appended_at: &str, canonical_record: &str) -> String {
    let mut s = String::with_capacity(canonical_record.len() + appended_at.len() + 32);
    s.push_str("{\"appended_at\":");
    write_json_string(&mut s, appended_at);
    s.push_str(",\"record\":");
    s.push_str(canonical_record);
    s.push('}');
    s
}

/// A signed checkpoint kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it signs.
    pub size: u64,
    /// The root it signs.
    pub root: Hash,
    /// The whole signed note.
    pub note: String,
    /// When it was signed.
    pub created_at: String,
}

/// A query over the stored records. Fields are JSON paths into the record (`user`,
/// `patient_ref`, `model.name`), compared as text; times compare with `appended_at`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `(field, value)` pairs that must all match.
    pub fields: Vec<(String, String)>,
    /// Only records appended at or after this time (RFC 3339 or a date).
    pub since: Option<String>,
    /// Only records appended before this time (RFC 3339 or a date).
    pub until: Option<String>,
    /// At most this many records.
    pub limit: Option<u64>,
}

/// What [`AuditLog::check`] found.
#[derive(Debug, Clone, Default)]
pub struct StoreCheck {
    /// Records read.
    pub records: u64,
    /// The root recomputed from the records.
    pub root: Option<Hash>,
    /// Checkpoints whose root and (with a key) signature were checked.
    pub checkpoints: u64,
    /// Records whose payload was pruned after retention (their stored leaf hash is used).
    pub pruned: u64,
    /// Records whose payload is encrypted and was not read, as the store was opened without
    /// its key (their stored leaf hash is used: the tree, root and checkpoints still verify).
    pub sealed: u64,
    /// Every problem found, PHI-free.
    pub problems: Vec<String>,
}

impl StoreCheck {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The append-only audit log over a SQLite file.
pub struct AuditLog {
    conn: Connection,
    path: PathBuf,
    options: Options,
    /// The payload key, when the store was opened with one.
    cipher: Option<PayloadCipher>,
    /// True when the store is marked encrypted: new records are sealed, and without
    /// `cipher` records cannot be read or appended.
    encrypted: bool,
    file_encrypted: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("encrypted", &self.encrypted)
            .field("cipher", &self.cipher)
            .finish()
    }
}

/// The canonical text of each record, checked as [`AuditLog::append_batch`] checks it (a JSON
/// object, at most `max` bytes).
pub(crate) fn canonical_payloads(records: &[Value], max: usize) -> Result<Vec<String>, AuditError> {
    records
        .iter()
        .enumerate()
        .map(|(position, r)| {
            if !r.is_object() {
                return Err(AuditError::NotAnObject { position });
            }
            let text = to_canonical_string(r);
            if text.len() > max {
                return Err(AuditError::TooLarge {
                    position,
                    bytes: text.len(),
                    limit: max,
                });
            }
            Ok(text)
        })
        .collect::<Result<Vec<_>, _>>()
}

/// The `meta` key of journal `id`'s mark.
fn journal_mark_key(id: &str) -> String {
    format!("journal:{id}")
}

pub(crate) fn to_i64(n: u64) -> Result<i64, AuditError> {
    i64::try_from(n).map_err(|_| AuditError::Corrupt(format!("number {n} out of range")))
}

pub(crate) fn to_u64(n: i64) -> Result<u64, AuditError> {
    u64::try_from(n).map_err(|_| AuditError::Corrupt(format!("negative number {n}")))
}

pub(crate) fn to_hash(bytes: Vec<u8>, what: &str) -> Result<Hash, AuditError> {
    bytes
        .try_into()
        .map_err(|_| AuditError::Corrupt(format!("{what} is not a 32-byte hash")))
}

/// Creates `dir` and its parents, new folders with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// RFC 3339 in UTC with microseconds: fixed width, so text order is time order.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The current time in the stored format.
pub fn now_time() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// Parses RFC 3339 (any offset) or a date (midnight UTC) into the stored time format.
pub fn parse_time(s: &str) -> Result<String, AuditError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(format_time(t));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(format_time(d.midnight().assume_utc()));
    }
    Err(AuditError::Time(s.to_string()))
}

pub(crate) fn add_years(t: OffsetDateTime, years: u16) -> OffsetDateTime {
    let y = t.year().saturating_add(i32::from(years));
    t.replace_year(y)
        .or_else(|_| t.replace_day(28).and_then(|t| t.replace_year(y)))
        .unwrap_or(t)
}

/// Checks a query field name: dot-separated identifiers.
pub(crate) fn json_path(field: &str) -> Result<String, AuditError> {
    let ok = !field.is_empty()
        && field.split('.').all(|seg| {
            let mut chars = seg.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !ok {
        return Err(AuditError::Query(format!(
            "field name {field:?} must be letters, digits and _ (dots for nesting)"
        )));
    }
    Ok(format!("$.{field}"))
}

/// Switches the connection to WAL mode and returns the mode now in force. Switching a new store
/// takes an exclusive lock without going through the busy handler (SQLite's pager does not wait
/// there), so while other processes open the same new store it can fail at once with
/// `SQLITE_BUSY`: it is retried for up to 30 s, like every other wait on the store.
fn journal_mode_wal(conn: &Connection) -> Result<String, rusqlite::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` with the default options.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(path, Options::default())
    }

    /// Opens (creating if needed) the log at `path` without a payload key: a new store keeps
    /// its records in plaintext. A store whose records are encrypted under a local key file
    /// opens with that file (named in the store; sealed files take their passphrase from
    /// `PHIGUARD_KEY_PASSPHRASE`). When that key cannot be had, only the tree (heads, proofs,
    /// checkpoints, [`AuditLog::check`] by leaf hashes) can be used; reading or appending
    /// records fails with [`AuditError::Sealed`].
    pub fn open_with(path: &Path, options: Options) -> Result<AuditLog, AuditError> {
        AuditLog::open_inner(path, options, None, None)
    }

    /// Opens (creating if needed) the log at `path`, encrypting new records under the local
    /// key file `key_file` (created on first use, as the rest of phiguard does). The store
    /// remembers the key file's path so that keyless opens ([`AuditLog::open_with`]) find it.
    /// Returns the log and whether the key file was created.
    pub fn open_with_local_key(
        path: &Path,
        options: Options,
        key_file: &Path,
    ) -> Result<(AuditLog, bool), AuditError> {
        // A store already encrypted uses the key file it names when that file is there (a
        // store restored into another home keeps its key), and never gets a new key.
        let named = stored_key_file(path);
        let key_file = match &named {
            Some(file) if file.exists() => file.clone(),
            _ => std::path::absolute(key_file)?,
        };
        let (provider, created) = encryption::local_key(&key_file, named.is_none())?;
        let log = AuditLog::open_inner(
            path,
            options,
            Some(PayloadCipher::new(provider)?),
            Some(key_file),
        )?;
        Ok((log, created))
    }

    /// Opens (creating if needed) the log at `path`, encrypting every new record's payload
    /// under `provider` (see [`crate::encryption`]). A new store is marked encrypted and keeps
    /// a sealed key-check value; opening it with another key fails with
    /// [`AuditError::WrongKey`]. A store created without encryption opens too: its earlier
    /// records stay in plaintext and every record appended from now on is encrypted.
    pub fn open_encrypted(
        path: &Path,
        options: Options,
        provider: Arc<dyn KeyProvider>,
    ) -> Result<AuditLog, AuditError> {
        AuditLog::open_inner(path, options, Some(PayloadCipher::new(provider)?), None)
    }

    fn open_inner(
        path: &Path,
        options: Options,
        cipher: Option<PayloadCipher>,
        key_file: Option<PathBuf>,
    ) -> Result<AuditLog, AuditError> {
        let open_err = |source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| AuditError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let existed = path.exists();
        let page_key = page_key_for(path, &options, cipher.as_ref(), key_file.as_deref())?;
        let conn = Connection::open(path).map_err(open_err)?;
        if !existed {
            restrict_permissions(path);
        }
        // Before anything reads the file: applying the page key reads the schema, which then
        // waits (rather than failing at once) while another opener holds a write lock.
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(open_err)?;
        if let Some(key) = &page_key {
            file_key::apply(&conn, key, path)?;
            // A store restored into another home: its page-key file names the key file it is
            // opened with now.
            if let Some(file) = &key_file
                && let Some(mut sc) = Sidecar::read(path)?
                && sc.key_file.as_deref() != Some(file.as_path())
            {
                sc.key_file = Some(file.clone());
                sc.write(path)?;
            }
        }
        let mode = journal_mode_wal(&conn).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Corrupt(format!(
                "cannot switch {} to WAL mode (got {mode})",
                path.display()
            )));
        }
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(open_err)?;
        let mut log = AuditLog {
            conn,
            path: path.to_path_buf(),
            options,
            cipher,
            encrypted: false,
            file_encrypted: page_key.is_some(),
        };
        log.init_schema()?;
        log.init_encryption(key_file)?;
        // Records a gateway journaled and had not yet taken in when it stopped (a crash, a
        // power loss) enter the store before anything reads it.
        crate::journal::recover(&mut log)?;
        Ok(log)
    }

    /// The sequence number of the last record of journal `id` taken into the store, if any.
    pub(crate) fn journal_mark(&self, id: &str) -> Result<Option<u64>, AuditError> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [journal_mark_key(id)],
                |r| r.get(0),
            )
            .optional()?;
        value
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    AuditError::Corrupt(format!("the mark of audit journal {id} is not a number"))
                })
            })
            .transpose()
    }

    /// Forgets journal `id`'s mark once the journal itself is gone.
    pub(crate) fn clear_journal_mark(&mut self, id: &str) -> Result<(), AuditError> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [journal_mark_key(id)])?;
        Ok(())
    }

    /// The connection, for tests that look at tables directly.
    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// The payload cipher, when the store was opened with its key.
    pub(crate) fn cipher(&self) -> Option<&PayloadCipher> {
        self.cipher.as_ref()
    }

    /// The store's options.
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// True when the database file itself is encrypted (SQLCipher pages under a wrapped page
    /// key, see [`crate::file_key`]).
    pub fn is_file_encrypted(&self) -> bool {
        self.file_encrypted
    }

    /// Reads (and with a key, sets) the store's encryption marks.
    fn init_encryption(&mut self, key_file: Option<PathBuf>) -> Result<(), AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let meta = |key: &str| -> Result<Option<String>, AuditError> {
            Ok(tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        };
        let scheme = meta(META_ENCRYPTION)?;
        let check = meta(META_KEY_CHECK)?;
        let stored_key_file = meta(META_KEY_FILE)?;
        if let Some(scheme) = &scheme
            && scheme != encryption::SCHEME
        {
            return Err(AuditError::Corrupt(format!(
                "unknown payload encryption scheme {scheme:?}"
            )));
        }
        match (&self.cipher, check) {
            (Some(cipher), Some(check)) => {
                if !cipher.matches(&check) {
                    return Err(AuditError::WrongKey);
                }
            }
            (Some(cipher), None) => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2), (?3, ?4) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![
                        META_ENCRYPTION,
                        encryption::SCHEME,
                        META_KEY_CHECK,
                        cipher.key_check()?
                    ],
                )?;
            }
            (None, Some(check)) => {
                // The store names its local key file: use it when it opens and matches;
                // otherwise the store stays sealed (tree only).
                if let Some(file) = stored_key_file.as_deref().map(Path::new)
                    && file.exists()
                    && let Ok((provider, _)) = encryption::local_key(file, false)
                    && let Ok(cipher) = PayloadCipher::new(provider)
                    && cipher.matches(&check)
                {
                    self.cipher = Some(cipher);
                }
            }
            (None, None) => {}
        }
        if self.cipher.is_some()
            && let Some(file) = key_file
        {
            let text = file.to_str().ok_or_else(|| {
                AuditError::Corrupt(format!("{} is not valid UTF-8", file.display()))
            })?;
            if stored_key_file.as_deref() != Some(text) {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![META_KEY_FILE, text],
                )?;
            }
        }
        self.encrypted = self.cipher.is_some() || scheme.is_some();
        tx.commit()?;
        Ok(())
    }

    /// True when the store is marked encrypted (new records' payloads are sealed).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Replaces a sealed payload of `entry` with its plaintext.
    fn reveal(&self, entry: &mut Entry) -> Result<(), AuditError> {
        if entry.is_pruned() || !encryption::is_sealed(&entry.record) {
            return Ok(());
        }
        let cipher = self.cipher.as_ref().ok_or(AuditError::Sealed)?;
        entry.record = cipher.open(entry.index, &entry.record)?;
        Ok(())
    }

    fn init_schema(&mut self) -> Result<(), AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TEXT NOT NULL
             );",
        )?;
        let version: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(v) = &version
            && v.parse::<u32>().map_or(true, |v| v > SCHEMA_VERSION)
        {
            return Err(AuditError::SchemaVersion {
                found: v.clone(),
                expected: SCHEMA_VERSION,
            });
        }
        let applied: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT version FROM schema_migrations")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if let Some(max) = applied.iter().max()
            && *max > i64::from(SCHEMA_VERSION)
        {
            return Err(AuditError::SchemaVersion {
                found: max.to_string(),
                expected: SCHEMA_VERSION,
            });
        }
        let now = format_time(OffsetDateTime::now_utc());
        for (number, name, sql) in SQLITE_MIGRATIONS {
            if applied.contains(&i64::from(*number)) {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![number, name, now],
            )?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![SCHEMA_VERSION.to_string()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO tree_state (id, size, frontier, root) VALUES (1, 0, x'', ?1)",
            params![&empty_root()[..]],
        )?;
        let state = load_frontier(&tx)?;
        let stored: i64 =
            tx.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves", [], |r| {
                r.get(0)
            })?;
        if to_u64(stored)? != state.size() {
            return Err(AuditError::Corrupt(format!(
                "the tree state says {} records but the leaves table ends at {}",
                state.size(),
                stored
            )));
        }
        tx.commit()?;
        Ok(())
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that makes this store's commits power-loss durable from another thread; `None`
    /// when every commit already is ([`Durability::Full`]).
    pub fn wal_syncer(&self) -> Option<WalSyncer> {
        if self.options.durability == Durability::Full {
            return None;
        }
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Some(WalSyncer {
            db: self.path.clone(),
            wal: PathBuf::from(wal),
            dir_synced: Default::default(),
        })
    }

    /// Appends one record (a JSON object) durably.
    pub fn append(&mut self, record: &Value) -> Result<Receipt, AuditError> {
        let mut r = self.append_batch(std::slice::from_ref(record))?;
        r.pop()
            .ok_or_else(|| AuditError::Corrupt("an append returned no receipt".into()))
    }

    /// Appends many records in one transaction (group commit: one fsync for the batch). When
    /// this returns `Ok`, every record of the batch is durable; on `Err`, none was appended.
    pub fn append_batch(&mut self, records: &[Value]) -> Result<Vec<Receipt>, AuditError> {
        let payloads = canonical_payloads(records, self.options.max_record_bytes)?;
        self.append_canonical(&payloads, None)
    }

    /// Appends canonical records in one transaction. With `mark` (a journal's id and the
    /// sequence number of its last record in `payloads`), the same transaction records how far
    /// that journal has been taken in (see [`crate::journal`]).
    pub(crate) fn append_canonical(
        &mut self,
        payloads: &[String],
        mark: Option<(&str, u64)>,
    ) -> Result<Vec<Receipt>, AuditError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        if self.encrypted && self.cipher.is_none() {
            return Err(AuditError::Sealed);
        }
        let years = self.options.retention_years;
        // IMMEDIATE takes the write lock first, so the frontier read below is the latest even
        // with several writer processes.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut frontier = load_frontier(&tx)?;
        let mut receipts = Vec::with_capacity(payloads.len());
        {
            let mut insert_leaf = tx.prepare_cached(
                "INSERT INTO leaves (idx, appended_at, payload, leaf_hash, retention_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut insert_node =
                tx.prepare_cached("INSERT INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
            let mut completed: Vec<(u32, u64, Hash)> = Vec::new();
            for payload in payloads {
                let now = OffsetDateTime::now_utc();
                let appended_at = format_time(now);
                let retention_until = format_time(add_years(now, years));
                let hash = leaf_hash(leaf_text(&appended_at, payload).as_bytes());
                let index = frontier.size();
                let stored = match &self.cipher {
                    Some(cipher) => cipher.seal(index, payload)?,
                    None => payload.clone(),
                };
                insert_leaf.execute(params![
                    to_i64(index)?,
                    appended_at,
                    stored,
                    &hash[..],
                    retention_until
                ])?;
                frontier.push(hash, |level, idx, node| {
                    if level % NODE_STRIDE == 0 {
                        completed.push((level, idx, *node));
                    }
                });
                for (level, idx, node) in completed.drain(..) {
                    insert_node.execute(params![level, to_i64(idx)?, &node[..]])?;
                }
                receipts.push(Receipt {
                    index,
                    leaf_hash: hash,
                    appended_at,
                    tree_size: 0,
                });
            }
        }
        if let Some((journal, seq)) = mark {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![journal_mark_key(journal), seq.to_string()])?;
        }
        let root = frontier.root();
        tx.prepare_cached(
            "UPDATE tree_state SET size = ?1, frontier = ?2, root = ?3 WHERE id = 1",
        )?
        .execute(params![
            to_i64(frontier.size())?,
            frontier.to_bytes(),
            &root[..]
        ])?;
        tx.commit()?;
        for r in &mut receipts {
            r.tree_size = frontier.size();
        }
        Ok(receipts)
    }

    /// The current tree size and root, as persisted (no recomputation).
    pub fn tree_head(&self) -> Result<TreeHead, AuditError> {
        let (size, root): (i64, Vec<u8>) =
            self.conn
                .query_row("SELECT size, root FROM tree_state WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        Ok(TreeHead {
            size: to_u64(size)?,
            root: to_hash(root, "the stored root")?,
        })
    }

    /// Runs `f` over a consistent snapshot of the store that holds at least `size` records.
    fn with_snapshot<T>(
        &self,
        size: u64,
        f: impl FnOnce(&SqlTree<'_>) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let tx = self.conn.unchecked_transaction()?;
        let head = {
            let (s,): (i64,) =
                tx.query_row("SELECT size FROM tree_state WHERE id = 1", [], |r| {
                    Ok((r.get(0)?,))
                })?;
            to_u64(s)?
        };
        if size > head {
            return Err(AuditError::SizeBeyondLog {
                requested: size,
                size: head,
            });
        }
        let out = f(&SqlTree { conn: &tx })?;
        tx.finish()?;
        Ok(out)
    }

    /// The root of the first `size` records.
    pub fn root_at(&self, size: u64) -> Result<Hash, AuditError> {
        self.with_snapshot(size, |t| tree::root_at(t, size))
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        if index >= size {
            return Err(AuditError::NoSuchRecord { index, size });
        }
        self.with_snapshot(size, |t| tree::inclusion_proof(t, index, size))
    }

    /// The consistency proof between the trees of `old` and `new` records.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        self.with_snapshot(new, |t| tree::consistency_proof(t, old, new))
    }

    /// One record.
    pub fn entry(&self, index: u64) -> Result<Entry, AuditError> {
        let size = self.tree_head()?.size;
        let mut entry = self
            .conn
            .query_row(
                "SELECT idx, appended_at, payload, leaf_hash, retention_until, pruned_at FROM leaves \
                 WHERE idx = ?1",
                params![to_i64(index)?],
                read_entry,
            )
            .optional()?
            .ok_or(AuditError::NoSuchRecord { index, size })??;
        self.reveal(&mut entry)?;
        Ok(entry)
    }

    /// Calls `f` on each record with an index in `range`, in order.
    pub fn for_each_entry<E: From<AuditError>>(
        &self,
        range: Range<u64>,
        mut f: impl FnMut(&Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, appended_at, payload, leaf_hash, retention_until, pruned_at FROM leaves \
                 WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .map_err(AuditError::from)?;
        let start = to_i64(range.start)?;
        let end = to_i64(range.end.min(i64::MAX as u64))?;
        let mut rows = stmt.query(params![start, end]).map_err(AuditError::from)?;
        while let Some(row) = rows.next().map_err(AuditError::from)? {
            let mut entry = read_entry(row).map_err(AuditError::from)??;
            self.reveal(&mut entry)?;
            f(&entry)?;
        }
        Ok(())
    }

    /// Signs a checkpoint of the current tree with `signer`, stores it and returns it.
    pub fn sign_checkpoint(&mut self, signer: &Signer) -> Result<StoredCheckpoint, AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (size, root): (i64, Vec<u8>) =
            tx.query_row("SELECT size, root FROM tree_state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let checkpoint = Checkpoint {
            origin: signer.name().to_string(),
            size: to_u64(size)?,
            root: to_hash(root, "the stored root")?,
            extensions: Vec::new(),
        };
        let note = signer.sign(&checkpoint.to_text())?;
        let created_at = format_time(OffsetDateTime::now_utc());
        tx.execute(
            "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![size, &checkpoint.root[..], note, created_at],
        )?;
        tx.commit()?;
        Ok(StoredCheckpoint {
            size: checkpoint.size,
            root: checkpoint.root,
            note,
            created_at,
        })
    }

    /// The most recently signed checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, AuditError> {
        Ok(self.checkpoints(Some(1))?.pop())
    }

    /// Stored checkpoints, newest first (`limit` of them, or all).
    pub fn checkpoints(&self, limit: Option<u64>) -> Result<Vec<StoredCheckpoint>, AuditError> {
        let limit = limit.map_or(Ok(-1), to_i64)?;
        let mut stmt = self.conn.prepare(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (size, root, note, created_at) = row?;
            out.push(StoredCheckpoint {
                size: to_u64(size)?,
                root: to_hash(root, "a checkpoint root")?,
                note,
                created_at,
            });
        }
        Ok(out)
    }

    /// Calls `f` on each record matching `query`, in index order; returns how many matched.
    pub fn query<E: From<AuditError>>(
        &self,
        query: &Query,
        mut f: impl FnMut(&Entry) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut sql = String::from(
            "SELECT idx, appended_at, payload, leaf_hash, retention_until, pruned_at FROM leaves WHERE 1 = 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        // Field filters run here, on the decrypted record, so they work on encrypted and
        // plaintext payloads alike (with SQLite's `CAST(json_extract(..) AS TEXT)` meaning).
        let filters = query
            .fields
            .iter()
            .map(|(field, value)| {
                json_path(field)?;
                Ok((field.split('.').collect::<Vec<_>>(), value.as_str()))
            })
            .collect::<Result<Vec<_>, AuditError>>()?;
        if !filters.is_empty() {
            // A pruned record's payload is gone: it matches no field filter.
            sql.push_str(" AND pruned_at IS NULL");
        }
        if let Some(since) = &query.since {
            args.push(parse_time(since)?.into());
            sql.push_str(&format!(" AND appended_at >= ?{}", args.len()));
        }
        if let Some(until) = &query.until {
            args.push(parse_time(until)?.into());
            sql.push_str(&format!(" AND appended_at < ?{}", args.len()));
        }
        sql.push_str(" ORDER BY idx");
        if let Some(limit) = query.limit
            && filters.is_empty()
        {
            args.push(to_i64(limit)?.into());
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(AuditError::from)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(AuditError::from)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(AuditError::from)? {
            if query.limit.is_some_and(|limit| n >= limit) {
                break;
            }
            let mut entry = read_entry(row).map_err(AuditError::from)??;
            self.reveal(&mut entry)?;
            if !filters.is_empty() {
                let record: Value = serde_json::from_str(&entry.record).map_err(|_| {
                    AuditError::Corrupt(format!("record {} is not JSON", entry.index))
                })?;
                if !filters
                    .iter()
                    .all(|(path, value)| field_text(&record, path).as_deref() == Some(*value))
                {
                    continue;
                }
            }
            f(&entry)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes the export file: a header line with `checkpoint`'s signed note, then one line per
    /// record of the checkpoint's tree (`index`, hex `leaf_hash`, and the exact `leaf` JSON, or
    /// `"pruned":true` for a record whose payload was pruned after retention).
    /// Returns the number of records written.
    pub fn write_export<W: Write>(
        &self,
        out: &mut W,
        checkpoint: &StoredCheckpoint,
    ) -> Result<u64, AuditError> {
        let mut writer = ExportWriter::start(out, checkpoint)?;
        self.for_each_entry(0..checkpoint.size, |e| writer.entry(e))?;
        writer.finish()
    }

    /// How many encrypted payloads (and the key check, and the database's page key when the
    /// file is encrypted) are wrapped under each KEK (`(id, version)`), read from their
    /// headers: no key is needed.
    pub fn payload_keks(&self) -> Result<BTreeMap<(String, u32), u64>, AuditError> {
        let mut out = BTreeMap::new();
        let mut count = |stored: &str| -> Result<(), AuditError> {
            let kek = phiguard_crypto::field::field_kek(stored)?;
            *out.entry((kek.id, kek.version)).or_insert(0) += 1;
            Ok(())
        };
        let check: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [META_KEY_CHECK],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(check) = check {
            count(&check)?;
        }
        if self.file_encrypted
            && let Some(sc) = Sidecar::read(&self.path)?
        {
            count(&sc.wrapped)?;
        }
        let mut stmt = self
            .conn
            .prepare("SELECT payload FROM leaves WHERE substr(payload, 1, 5) = 'pgf1.'")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let payload: String = row.get(0)?;
            count(&payload)?;
        }
        Ok(out)
    }

    /// Counts the encrypted payloads (and the key check and page key) not wrapped under the key's current
    /// KEK version: what revoking an older version would make unreadable. Errors when the
    /// store is encrypted and was opened without its key.
    pub fn payloads_not_current(&self) -> Result<u64, AuditError> {
        let Some(cipher) = self.cipher.as_ref() else {
            return if self.encrypted {
                Err(AuditError::Sealed)
            } else {
                Ok(0)
            };
        };
        let current = cipher.current_kek()?;
        Ok(self
            .payload_keks()?
            .into_iter()
            .filter(|((id, version), _)| *id != current.id || *version != current.version)
            .map(|(_, n)| n)
            .sum())
    }

    /// Moves every encrypted payload, the key check and the database's page key to the key's
    /// current KEK version,
    /// re-wrapping only their data keys (leaf hashes, the tree and every proof are unchanged).
    /// Runs in batches of 1,000 records, each its own transaction, so it can be interrupted
    /// and run again (what is already current is skipped). Returns (re-wrapped, already
    /// current).
    pub fn rewrap_payloads(&mut self) -> Result<(u64, u64), AuditError> {
        if self.cipher.is_none() {
            return if self.encrypted {
                Err(AuditError::Sealed)
            } else {
                Ok((0, 0))
            };
        }
        let (mut done, mut current) = (0u64, 0u64);
        let mut after: i64 = -1;
        loop {
            let batch: Vec<(i64, String)> = {
                let mut stmt = self.conn.prepare(
                    "SELECT idx, payload FROM leaves WHERE idx > ?1 \
                     AND substr(payload, 1, 5) = 'pgf1.' ORDER BY idx LIMIT 1000",
                )?;
                let rows = stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let Some(last) = batch.last() else { break };
            after = last.0;
            let cipher = self.cipher.as_ref().ok_or(AuditError::Sealed)?;
            let mut updates = Vec::new();
            for (idx, payload) in &batch {
                match cipher.rewrap(to_u64(*idx)?, payload)? {
                    Some(new) => updates.push((*idx, new)),
                    None => current += 1,
                }
            }
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (idx, new) in &updates {
                tx.execute(
                    "UPDATE leaves SET payload = ?1 WHERE idx = ?2",
                    params![new, idx],
                )?;
            }
            tx.commit()?;
            done += updates.len() as u64;
        }
        // The page key and the key check last: until every payload is moved, the old version
        // still opens the store.
        if self.file_encrypted {
            let cipher = self.cipher.as_ref().ok_or(AuditError::Sealed)?;
            file_key::rewrap(&self.path, cipher.provider())?;
        }
        let check: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [META_KEY_CHECK],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(check) = check {
            let cipher = self.cipher.as_ref().ok_or(AuditError::Sealed)?;
            if let Some(new) = cipher.rewrap_key_check(&check)? {
                self.conn.execute(
                    "UPDATE meta SET value = ?1 WHERE key = ?2",
                    params![new, META_KEY_CHECK],
                )?;
            }
        }
        Ok((done, current))
    }

    /// Removes the payloads (not the leaf hashes) of records whose `retention_until` is at or
    /// before `now` (RFC 3339 or a date); returns how many were pruned. The tree, its root
    /// and every proof stay verifiable.
    pub fn prune_expired(&mut self, now: &str) -> Result<u64, AuditError> {
        let now = parse_time(now)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE leaves SET payload = '', pruned_at = ?1 \
             WHERE pruned_at IS NULL AND retention_until <= ?1",
            params![now],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Writes a consistent snapshot of the store to `dest` (a new file), with `VACUUM INTO`.
    /// An encrypted store's snapshot is encrypted under the same page key, and its page-key
    /// file is copied beside it.
    pub fn snapshot_to(&self, dest: &Path) -> Result<(), AuditError> {
        snapshot_connection(&self.conn, dest)?;
        copy_sidecar(&self.path, dest, self.file_encrypted)
    }

    /// Recomputes every leaf hash and the root from the stored records and compares them with
    /// the stored leaf hashes, the persisted root, the node cache and every stored checkpoint
    /// (and, given `key`, checks each checkpoint's signature).
    pub fn check(&self, key: Option<&VerifierKey>) -> Result<StoreCheck, AuditError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut checker = Checker::new(key, self.checkpoints(None)?);
        {
            let mut stmt = tx.prepare(
                "SELECT idx, appended_at, payload, leaf_hash, retention_until, pruned_at FROM leaves ORDER BY idx",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let mut entry = read_entry(row)??;
                let fed = if entry.is_pruned() || !encryption::is_sealed(&entry.record) {
                    checker.entry(&entry)
                } else if let Some(cipher) = &self.cipher {
                    match cipher.open(entry.index, &entry.record) {
                        Ok(plain) => {
                            entry.record = plain;
                            checker.entry(&entry)
                        }
                        Err(_) => checker.entry_by_hash(
                            &entry,
                            Some(format!(
                                "record {} does not decrypt under the store's key: its \
                                 ciphertext was modified or moved",
                                entry.index
                            )),
                        ),
                    }
                } else {
                    checker.entry_by_hash(&entry, None)
                };
                if !fed {
                    break;
                }
            }
        }
        let (size, stored_root): (i64, Vec<u8>) =
            tx.query_row("SELECT size, root FROM tree_state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        checker.head(to_u64(size)?, &stored_root);
        {
            let mut stmt = tx.prepare("SELECT level, idx, hash FROM nodes ORDER BY level, idx")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let level: u32 = row.get(0)?;
                let idx = to_u64(row.get(1)?)?;
                let hash: Vec<u8> = row.get(2)?;
                checker.node(level, idx, &hash);
            }
        }
        tx.finish()?;
        Ok(checker.finish())
    }
}

/// `VACUUM INTO dest` on `conn`: a consistent, compacted copy of the database.
fn snapshot_connection(conn: &Connection, dest: &Path) -> Result<(), AuditError> {
    let dest_text = dest
        .to_str()
        .ok_or_else(|| AuditError::Corrupt(format!("{} is not valid UTF-8", dest.display())))?;
    conn.execute("VACUUM INTO ?1", params![dest_text])?;
    Ok(())
}

/// Writes a consistent snapshot of the SQLite database at `src` (opened read-only) to `dest`
/// (a new file) with `VACUUM INTO`, which reads one transaction's view of the database. An
/// encrypted database ([`crate::file_key`]) is opened with its page key, unwrapped with
/// `provider` (or the local key file its page-key file names); the snapshot is encrypted
/// under the same page key and the page-key file is copied beside it.
pub fn snapshot_sqlite(
    src: &Path,
    dest: &Path,
    provider: Option<Arc<dyn KeyProvider>>,
) -> Result<(), AuditError> {
    let key = if file_key::is_plain_sqlite(src) {
        None
    } else {
        file_key::key_for(src, provider)?
    };
    let conn = file_key::open_raw(src, key.as_ref(), true)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    snapshot_connection(&conn, dest)?;
    copy_sidecar(src, dest, key.is_some())
}

fn copy_sidecar(src: &Path, dest: &Path, encrypted: bool) -> Result<(), AuditError> {
    if !encrypted {
        return Ok(());
    }
    match Sidecar::read(src)? {
        Some(sc) => sc.write(dest),
        None => Err(AuditError::Corrupt(format!(
            "{} vanished during the snapshot",
            file_key::sidecar_path(src).display()
        ))),
    }
}

/// Writes an export: the header, then one line per entry. Shared by the back ends.
pub(crate) struct ExportWriter<'w, W: Write> {
    out: &'w mut W,
    size: u64,
    n: u64,
    line: String,
}

impl<'w, W: Write> ExportWriter<'w, W> {
    pub(crate) fn start(out: &'w mut W, checkpoint: &StoredCheckpoint) -> Result<Self, AuditError> {
        let mut header = String::from("{\"format\":");
        write_json_string(&mut header, EXPORT_FORMAT);
        header.push_str(&format!(",\"version\":{EXPORT_VERSION},\"checkpoint\":"));
        write_json_string(&mut header, &checkpoint.note);
        header.push_str("}\n");
        out.write_all(header.as_bytes())?;
        Ok(ExportWriter {
            out,
            size: checkpoint.size,
            n: 0,
            line: String::new(),
        })
    }

    pub(crate) fn entry(&mut self, e: &Entry) -> Result<(), AuditError> {
        let line = &mut self.line;
        line.clear();
        line.push_str(&format!(
            "{{\"index\":{},\"leaf_hash\":\"{}\",",
            e.index,
            hex::encode(e.leaf_hash)
        ));
        match &e.pruned_at {
            None => {
                line.push_str("\"leaf\":");
                line.push_str(&e.leaf());
            }
            Some(pruned_at) => {
                line.push_str("\"pruned\":true,\"appended_at\":");
                write_json_string(line, &e.appended_at);
                line.push_str(",\"pruned_at\":");
                write_json_string(line, pruned_at);
            }
        }
        line.push_str("}\n");
        self.out.write_all(line.as_bytes())?;
        self.n += 1;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<u64, AuditError> {
        if self.n != self.size {
            return Err(AuditError::Corrupt(format!(
                "the checkpoint covers {} records but the store holds {}",
                self.size, self.n
            )));
        }
        Ok(self.n)
    }
}

/// The store check shared by the back ends: fed the records in index order, the persisted
/// head and the node cache.
pub(crate) struct Checker {
    report: StoreCheck,
    checkpoints: Vec<StoredCheckpoint>,
    next_checkpoint: usize,
    frontier: Frontier,
    cache: BTreeMap<(u32, u64), Hash>,
    nodes_seen: u64,
    nodes_bad: u64,
}

impl Checker {
    pub(crate) fn new(key: Option<&VerifierKey>, mut checkpoints: Vec<StoredCheckpoint>) -> Self {
        let mut report = StoreCheck::default();
        checkpoints.sort_by_key(|c| c.size);
        for c in &checkpoints {
            match key.map(|k| k.open_checkpoint(&c.note)) {
                Some(Err(e)) => report
                    .problems
                    .push(format!("checkpoint of size {}: {e}", c.size)),
                Some(Ok(parsed)) if parsed.size != c.size || parsed.root != c.root => {
                    report.problems.push(format!(
                        "checkpoint of size {}: the signed note does not match the stored size and root",
                        c.size
                    ))
                }
                _ => {}
            }
        }
        let mut checker = Checker {
            report,
            checkpoints,
            next_checkpoint: 0,
            frontier: Frontier::new(),
            cache: BTreeMap::new(),
            nodes_seen: 0,
            nodes_bad: 0,
        };
        checker.match_checkpoints(&empty_root());
        checker
    }

    fn match_checkpoints(&mut self, root: &Hash) {
        let size = self.frontier.size();
        while let Some(c) = self.checkpoints.get(self.next_checkpoint)
            && c.size == size
        {
            self.next_checkpoint += 1;
            self.report.checkpoints += 1;
            if &c.root != root {
                self.report.problems.push(format!(
                    "the records do not match the signed checkpoint of size {size}: \
                     the log was rewritten"
                ));
            }
        }
    }

    /// Feeds the next record by its stored leaf hash only, as its encrypted payload was not
    /// read (`problem` says why when that is a fault); false when the sequence broke.
    pub(crate) fn entry_by_hash(&mut self, entry: &Entry, problem: Option<String>) -> bool {
        if !self.in_sequence(entry) {
            return false;
        }
        match problem {
            Some(p) => self.report.problems.push(p),
            None => self.report.sealed += 1,
        }
        self.push(entry.leaf_hash);
        true
    }

    fn in_sequence(&mut self, entry: &Entry) -> bool {
        let position = self.frontier.size();
        if entry.index != position {
            self.report.problems.push(format!(
                "record {position} is missing (the next stored record is {})",
                entry.index
            ));
            return false;
        }
        true
    }

    /// Feeds the next record; false when the sequence broke and reading should stop.
    pub(crate) fn entry(&mut self, entry: &Entry) -> bool {
        if !self.in_sequence(entry) {
            return false;
        }
        let position = self.frontier.size();
        let hash = if entry.is_pruned() {
            // Only the leaf hash is left; the root and the checkpoints still cover it.
            self.report.pruned += 1;
            entry.leaf_hash
        } else {
            let recomputed = leaf_hash(entry.leaf().as_bytes());
            if recomputed != entry.leaf_hash {
                self.report.problems.push(format!(
                    "record {position} was modified: its content does not match its leaf hash"
                ));
            }
            recomputed
        };
        self.push(hash);
        true
    }

    fn push(&mut self, hash: Hash) {
        let cache = &mut self.cache;
        self.frontier.push(hash, |level, idx, node| {
            if level % NODE_STRIDE == 0 {
                cache.insert((level, idx), *node);
            }
        });
        if self
            .checkpoints
            .get(self.next_checkpoint)
            .is_some_and(|c| c.size == self.frontier.size())
        {
            let root = self.frontier.root();
            self.match_checkpoints(&root);
        }
    }

    /// Feeds the persisted tree head.
    pub(crate) fn head(&mut self, size: u64, root: &[u8]) {
        let computed = self.frontier.root();
        if size != self.frontier.size() || root != &computed[..] {
            self.report.problems.push(format!(
                "the persisted tree head (size {size}) does not match the records"
            ));
        }
    }

    /// Feeds one cached interior node.
    pub(crate) fn node(&mut self, level: u32, idx: u64, hash: &[u8]) {
        self.nodes_seen += 1;
        if self.cache.get(&(level, idx)).map(|h| &h[..]) != Some(hash) {
            self.nodes_bad += 1;
        }
    }

    pub(crate) fn finish(mut self) -> StoreCheck {
        let size = self.frontier.size();
        for c in &self.checkpoints[self.next_checkpoint..] {
            self.report.problems.push(format!(
                "the log is truncated: a signed checkpoint covers {} records, the store holds {size}",
                c.size
            ));
        }
        if self.nodes_bad > 0 || self.nodes_seen != self.cache.len() as u64 {
            self.report.problems.push(format!(
                "the interior node cache is wrong ({} bad of {}, {} expected)",
                self.nodes_bad,
                self.nodes_seen,
                self.cache.len()
            ));
        }
        self.report.records = size;
        self.report.root = Some(self.frontier.root());
        self.report
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: the folder is already private.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn load_frontier(conn: &Connection) -> Result<Frontier, AuditError> {
    // Cached: every append reads it, and parsing the statement each time showed in profiles.
    let (size, bytes): (i64, Vec<u8>) = conn
        .prepare_cached("SELECT size, frontier FROM tree_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Frontier::from_bytes(to_u64(size)?, &bytes)?)
}

/// Reads an entry row; the outer error is SQLite's, the inner one a malformed value.
fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entry, AuditError>> {
    let index: i64 = row.get(0)?;
    let appended_at: String = row.get(1)?;
    let record: String = row.get(2)?;
    let hash: Vec<u8> = row.get(3)?;
    let retention_until: String = row.get(4)?;
    let pruned_at: Option<String> = row.get(5)?;
    Ok((|| {
        Ok(Entry {
            index: to_u64(index)?,
            appended_at,
            record,
            leaf_hash: to_hash(hash, "a leaf hash")?,
            retention_until,
            pruned_at,
        })
    })())
}

/// The page key of the store at `path`: the existing one (unwrapped with the caller's key,
/// or the local key file its page-key file names), a new one for a new store opened with a
/// key (its page-key file written first), or none for a plaintext store.
fn page_key_for(
    path: &Path,
    options: &Options,
    cipher: Option<&PayloadCipher>,
    key_file: Option<&Path>,
) -> Result<Option<PageKey>, AuditError> {
    let len = std::fs::metadata(path).map(|m| m.len()).ok();
    if len.is_some_and(|n| n > 0) && file_key::is_plain_sqlite(path) {
        // A plaintext store (made before file encryption, or opened without a key). A page-key
        // file beside it is left from an interrupted conversion and is not used.
        return Ok(None);
    }
    if Sidecar::read(path)?.is_some() {
        return file_key::key_for(path, cipher.map(PayloadCipher::provider));
    }
    if len.is_some_and(|n| n > 0) {
        return Err(AuditError::FileKey {
            path: path.to_path_buf(),
            reason: format!(
                "it is not a plaintext SQLite database and has no page-key file {}: if it is \
                 an encrypted store, put its page-key file back",
                file_key::sidecar_path(path).display()
            ),
        });
    }
    match cipher {
        Some(cipher) if options.encrypt_file => {
            let (key, sidecar) = file_key::create(cipher.provider(), key_file)?;
            if sidecar.write_new(path)? {
                Ok(Some(key))
            } else {
                // Another process created the store at the same moment: its key wins.
                file_key::key_for(path, Some(cipher.provider()))
            }
        }
        _ => Ok(None),
    }
}

/// The local key file named by an existing store, if any (read-only peek; any failure is
/// "none", and the real open reports it).
fn stored_key_file(path: &Path) -> Option<PathBuf> {
    if let Ok(Some(sc)) = Sidecar::read(path)
        && !file_key::is_plain_sqlite(path)
    {
        return sc.key_file;
    }
    if !path.exists() {
        return None;
    }
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(30)).ok()?;
    conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [META_KEY_FILE],
        |r| r.get::<_, String>(0),
    )
    .ok()
    .map(PathBuf::from)
}

/// A record field as SQLite's `CAST(json_extract(record, '$.a.b') AS TEXT)` gives it: strings
/// as they are, numbers as written, booleans as 1 and 0, objects and arrays as JSON, and null
/// or a missing field as nothing.
fn field_text(record: &Value, path: &[&str]) -> Option<String> {
    let mut v = record;
    for seg in path {
        v = v.as_object()?.get(*seg)?;
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(to_canonical_string(v)),
    }
}

/// Perfect-subtree hashes read from the store.
struct SqlTree<'c> {
    conn: &'c Connection,
}

impl Subtrees for SqlTree<'_> {
    type Error = AuditError;

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        let base = level - level % NODE_STRIDE;
        let span = level - base;
        let count = 1u64 << span;
        let first = index << span;
        let mut hashes: Vec<Hash> = Vec::with_capacity(count as usize);
        let missing = || TreeError::MissingNode { level, index };
        if base == 0 {
            let mut stmt = self.conn.prepare_cached(
                "SELECT leaf_hash FROM leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )?;
            let rows = stmt.query_map(params![to_i64(first)?, to_i64(first + count)?], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
            for row in rows {
                hashes.push(to_hash(row?, "a leaf hash")?);
            }
        } else {
            let mut stmt = self.conn.prepare_cached(
                "SELECT hash FROM nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
            )?;
            let rows = stmt
                .query_map(params![base, to_i64(first)?, to_i64(first + count)?], |r| {
                    r.get::<_, Vec<u8>>(0)
                })?;
            for row in rows {
                hashes.push(to_hash(row?, "a cached node")?);
            }
        }
        if hashes.len() as u64 != count {
            return Err(missing().into());
        }
        while hashes.len() > 1 {
            hashes = hashes
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        hashes.pop().ok_or_else(|| missing().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{MemoryTree, reference_root};
    use crate::verify::{verify_consistency, verify_inclusion};
    use serde_json::json;

    fn record(i: u64) -> Value {
        json!({"user": format!("u{}", i % 3), "action": "summarize", "model": "m1", "n": i})
    }

    #[test]
    fn wal_syncer_syncs_the_open_stores_log_and_fails_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let full = AuditLog::open(&path).unwrap();
        assert!(
            full.wal_syncer().is_none(),
            "FULL commits are durable already"
        );
        drop(full);
        let options = Options {
            durability: Durability::Normal,
            ..Options::default()
        };
        let mut log = AuditLog::open_with(&path, options).unwrap();
        let syncer = log.wal_syncer().unwrap();
        log.append_batch(&[record(1), record(2)]).unwrap();
        // From another thread while the store is open: the log is there and synced.
        let s = syncer.clone();
        std::thread::spawn(move || s.sync())
            .join()
            .unwrap()
            .unwrap();
        syncer.sync().unwrap();
        assert_eq!(log.tree_head().unwrap().size, 2);
        // Closed, the log is checkpointed and removed: a sync now fails rather than pretending.
        drop(log);
        assert!(syncer.sync().is_err());
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.tree_head().unwrap().size, 2);
    }

    fn open_temp() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit/audit.db")).unwrap();
        (dir, log)
    }

    #[test]
    fn appends_keep_root_and_proofs_right_across_batches() {
        let (_dir, mut log) = open_temp();
        let mut hashes = Vec::new();
        let mut n = 0u64;
        for batch in [1usize, 2, 3, 7, 16, 1, 40, 33] {
            let records: Vec<Value> = (0..batch as u64).map(|i| record(n + i)).collect();
            let receipts = log.append_batch(&records).unwrap();
            for (k, r) in receipts.iter().enumerate() {
                assert_eq!(r.index, n + k as u64);
                hashes.push(r.leaf_hash);
            }
            n += batch as u64;
            let head = log.tree_head().unwrap();
            assert_eq!(head.size, n);
            assert_eq!(head.root, reference_root(&hashes));
        }
        let mem = MemoryTree::from_leaf_hashes(hashes.iter().copied());
        for size in [1, 2, 5, 16, 17, 64, 100, n] {
            let root = log.root_at(size).unwrap();
            assert_eq!(root, reference_root(&hashes[..size as usize]));
            for index in (0..size).step_by(7) {
                let proof = log.inclusion_proof(index, size).unwrap();
                assert_eq!(proof, tree::inclusion_proof(&mem, index, size).unwrap());
                verify_inclusion(index, size, &hashes[index as usize], &proof, &root).unwrap();
            }
            for old in (0..=size).step_by(5) {
                let proof = log.consistency_proof(old, size).unwrap();
                let old_root = reference_root(&hashes[..old as usize]);
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
            }
        }
        assert!(log.inclusion_proof(0, n + 1).is_err());
        let check = log.check(None).unwrap();
        assert!(check.is_intact(), "{:?}", check.problems);
        assert_eq!(check.records, n);
    }

    #[test]
    fn leaf_is_canonical_envelope_of_record() {
        let (_dir, mut log) = open_temp();
        let r = log.append(&json!({"b": 1, "a": "x"})).unwrap();
        let e = log.entry(0).unwrap();
        assert_eq!(e.record, r#"{"a":"x","b":1}"#);
        let expected = format!(
            r#"{{"appended_at":"{}","record":{{"a":"x","b":1}}}}"#,
            r.appended_at
        );
        assert_eq!(e.leaf(), expected);
        assert_eq!(leaf_hash(expected.as_bytes()), r.leaf_hash);
        let parsed: Value = serde_json::from_str(&e.leaf()).unwrap();
        assert_eq!(to_canonical_string(&parsed), e.leaf());
        assert!(e.retention_until > e.appended_at);
        assert!(!format!("{e:?}").contains("\"x\""));
    }

    #[test]
    fn rejects_non_objects_and_oversized_records_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(
            &dir.path().join("a.db"),
            Options {
                max_record_bytes: 64,
                ..Options::default()
            },
        )
        .unwrap();
        let err = log
            .append_batch(&[json!({"a": 1}), json!([1])])
            .unwrap_err();
        assert!(matches!(err, AuditError::NotAnObject { position: 1 }));
        let big = json!({"secret-ish": "x".repeat(100)});
        let err = log.append_batch(&[big]).unwrap_err().to_string();
        assert!(!err.contains("secret-ish"), "{err}");
        assert_eq!(log.tree_head().unwrap().size, 0);
    }

    #[test]
    fn store_is_append_only_and_reopens_with_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        {
            let mut log = AuditLog::open(&path).unwrap();
            log.append_batch(&(0..20).map(record).collect::<Vec<_>>())
                .unwrap();
            let err = log
                .conn
                .execute("UPDATE leaves SET payload = '{}' WHERE idx = 3", [])
                .unwrap_err();
            assert!(err.to_string().contains("append-only"));
            assert!(log.conn.execute("DELETE FROM leaves", []).is_err());
        }
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.tree_head().unwrap().size, 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn check_finds_a_rewritten_record_and_a_truncated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let signer = Signer::from_seed("test/log", [3; 32]).unwrap();
        let mut log = AuditLog::open(&path).unwrap();
        log.append_batch(&(0..10).map(record).collect::<Vec<_>>())
            .unwrap();
        log.sign_checkpoint(&signer).unwrap();
        assert!(log.check(Some(&signer.verifier())).unwrap().is_intact());
        log.conn
            .execute_batch(
                "DROP TRIGGER leaves_append_only_update; DROP TRIGGER leaves_append_only_delete;
                 UPDATE leaves SET payload = '{\"user\":\"mallory\"}' WHERE idx = 4;",
            )
            .unwrap();
        let check = log.check(Some(&signer.verifier())).unwrap();
        assert!(
            check
                .problems
                .iter()
                .any(|p| p.contains("record 4 was modified")),
            "{:?}",
            check.problems
        );
        log.conn
            .execute_batch("DELETE FROM leaves WHERE idx >= 8; UPDATE tree_state SET size = 8")
            .unwrap();
        let check = log.check(None).unwrap();
        assert!(
            check.problems.iter().any(|p| p.contains("truncated")),
            "{:?}",
            check.problems
        );
    }

    #[test]
    fn query_by_fields_and_time() {
        let (_dir, mut log) = open_temp();
        log.append_batch(&(0..9).map(record).collect::<Vec<_>>())
            .unwrap();
        let q = Query {
            fields: vec![("user".into(), "u1".into())],
            ..Query::default()
        };
        let mut got = Vec::new();
        let n = log
            .query(&q, |e| -> Result<(), AuditError> {
                got.push(e.index);
                Ok(())
            })
            .unwrap();
        assert_eq!((n, got), (3, vec![1, 4, 7]));
        let q = Query {
            fields: vec![("n".into(), "5".into())],
            since: Some("2000-01-01".into()),
            until: Some("2999-01-01T00:00:00Z".into()),
            limit: Some(10),
        };
        assert_eq!(log.query(&q, |_| Ok::<(), AuditError>(())).unwrap(), 1);
        let q = Query {
            until: Some("2000-01-01".into()),
            ..Query::default()
        };
        assert_eq!(log.query(&q, |_| Ok::<(), AuditError>(())).unwrap(), 0);
        let bad = Query {
            fields: vec![("user') OR 1=1 --".into(), "x".into())],
            ..Query::default()
        };
        assert!(log.query(&bad, |_| Ok::<(), AuditError>(())).is_err());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(
            parse_time("2025-01-31T12:00:00+01:00").unwrap(),
            "2025-01-31T11:00:00.000000Z"
        );
    }

    #[test]
    fn retention_refuses_early_deletion_and_prunes_payloads_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let signer = Signer::from_seed("test/log", [5; 32]).unwrap();
        {
            // Five records whose retention ends at once, then five kept for six years.
            let mut short = AuditLog::open_with(
                &path,
                Options {
                    retention_years: 0,
                    ..Options::default()
                },
            )
            .unwrap();
            short
                .append_batch(&(0..5).map(record).collect::<Vec<_>>())
                .unwrap();
        }
        let mut log = AuditLog::open(&path).unwrap();
        let receipts = log
            .append_batch(&(5..10).map(record).collect::<Vec<_>>())
            .unwrap();
        let cp = log.sign_checkpoint(&signer).unwrap();
        // Deleting is refused, before retention and after.
        for idx in [1, 7] {
            let err = log
                .conn
                .execute("DELETE FROM leaves WHERE idx = ?1", params![idx])
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        // Pruning a record before its retention_until is refused by the trigger itself.
        let err = log
            .conn
            .execute(
                "UPDATE leaves SET payload = '', pruned_at = '2000-01-01T00:00:00.000000Z' \
                 WHERE idx = 7",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(log.prune_expired("2000-01-01").unwrap(), 0);

        let now = now_time();
        assert_eq!(log.prune_expired(&now).unwrap(), 5);
        assert_eq!(log.tree_head().unwrap().size, 10);
        let e = log.entry(2).unwrap();
        assert!(e.is_pruned() && e.record.is_empty());
        assert!(!log.entry(7).unwrap().is_pruned());
        // A pruned record cannot be changed any further either.
        assert!(
            log.conn
                .execute("UPDATE leaves SET leaf_hash = x'00' WHERE idx = 2", [])
                .is_err()
        );
        let check = log.check(Some(&signer.verifier())).unwrap();
        assert!(check.is_intact(), "{:?}", check.problems);
        assert_eq!(check.pruned, 5);
        let head = log.tree_head().unwrap();
        let proof = log.inclusion_proof(2, head.size).unwrap();
        verify_inclusion(2, head.size, &e.leaf_hash, &proof, &head.root).unwrap();

        let mut export = Vec::new();
        log.write_export(&mut export, &cp).unwrap();
        let text = String::from_utf8(export).unwrap();
        let report = crate::verify_export(text.as_bytes(), &signer.verifier(), None).unwrap();
        assert!(report.is_intact(), "{:?}", report.problems);
        assert_eq!(report.pruned, 5);
        // Still detected: a changed leaf hash of a pruned record, and a changed live record.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].contains("\"pruned\":true"));
        let bad_hash = text.replacen(
            &hex::encode(log.entry(2).unwrap().leaf_hash),
            &hex::encode([1u8; 32]),
            1,
        );
        let report = crate::verify_export(bad_hash.as_bytes(), &signer.verifier(), None).unwrap();
        assert!(
            report.problems.iter().any(|p| p.kind() == "root_mismatch"),
            "{:?}",
            report.problems
        );
        let bad_record = text.replacen("\"n\":8", "\"n\":80", 1);
        let report = crate::verify_export(bad_record.as_bytes(), &signer.verifier(), None).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p, crate::Problem::Modified { index: 8, .. })),
            "{:?}",
            report.problems
        );
        // A live record marked pruned keeps its hash and so still verifies; but a pruned line
        // that also carries a leaf is malformed.
        let both = lines[3].replacen("\"pruned\":true", "\"pruned\":true,\"leaf\":{}", 1);
        let report = crate::verify_export(
            text.replacen(lines[3], &both, 1).as_bytes(),
            &signer.verifier(),
            None,
        )
        .unwrap();
        assert!(!report.is_intact());
        assert_eq!(receipts.len(), 5);
    }

    #[test]
    fn migrations_upgrade_a_version_1_store_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A store as the first release wrote it: schema 1, no schema_migrations table.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '1')",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tree_state (id, size, frontier, root) VALUES (1, 0, x'', ?1)",
                params![&empty_root()[..]],
            )
            .unwrap();
        }
        let mut log = AuditLog::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        let versions: Vec<i64> = log
            .conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, vec![1, 2, 3]);
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.tree_head().unwrap().size, 1);
        log.conn
            .execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        drop(log);
        assert!(matches!(
            AuditLog::open(&path),
            Err(AuditError::SchemaVersion { .. })
        ));
    }

    #[test]
    fn snapshot_is_a_consistent_copy() {
        let (dir, mut log) = open_temp();
        log.append_batch(&(0..30).map(record).collect::<Vec<_>>())
            .unwrap();
        let dest = dir.path().join("copy.db");
        snapshot_sqlite(log.path(), &dest, None).unwrap();
        let copy = AuditLog::open(&dest).unwrap();
        assert_eq!(copy.tree_head().unwrap(), log.tree_head().unwrap());
        assert!(copy.check(None).unwrap().is_intact());
    }
}
