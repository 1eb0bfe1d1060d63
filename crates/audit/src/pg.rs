//! The log's PostgreSQL store, shared by several gateway instances: the same tables and
//! semantics as the SQLite store ([`crate::store`]) — leaves, the persisted frontier, the
//! sparse interior-node cache, signed checkpoints, append-only triggers and retention.
//!
//! Concurrency: every append runs in one transaction that first takes the transaction-level
//! advisory lock [`APPEND_LOCK`] (`pg_advisory_xact_lock`), then reads the frontier. Under
//! READ COMMITTED each statement sees everything committed before it, so the frontier read
//! after the lock is the latest one: appends from any number of processes and hosts are
//! serialised into one consistent tree, and a crash or a dropped connection releases the lock
//! with the rolled-back transaction. Readers (proofs, exports, checks) use REPEATABLE READ
//! snapshots and never block appends.
//!
//! Transport: [`PgAuditLog::connect`] reads `sslmode`/`sslrootcert` from the URL
//! ([`crate::pg_tls`]): TLS 1.2+ over rustls with the server certificate verified for any
//! host but loopback; no OpenSSL is linked.

use std::cell::RefCell;
use std::io::Write;
use std::ops::Range;

use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, Row, Transaction};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::AuditError;
use crate::hash::{Hash, empty_root, leaf_hash, node_hash};
use crate::note::{Checkpoint, Signer, VerifierKey};
use crate::store::{
    Checker, Entry, ExportWriter, NODE_STRIDE, Options, Query, Receipt, SCHEMA_VERSION, StoreCheck,
    StoredCheckpoint, TreeHead, add_years, format_time, json_path, leaf_text, parse_time, to_hash,
    to_i64, to_u64,
};
use crate::tree::{self, Frontier, Subtrees, TreeError};

/// The advisory lock key appends (and migrations) hold for their transaction:
/// `pg_advisory_xact_lock(APPEND_LOCK)`. ASCII "phigaudt".
pub const APPEND_LOCK: i64 = 0x7068_6967_6175_6474;

const PG_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    idx             BIGINT PRIMARY KEY,
    appended_at     TEXT NOT NULL,
    payload         TEXT NOT NULL,
    leaf_hash       BYTEA NOT NULL,
    retention_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_appended_at ON leaves (appended_at);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS tree_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     BIGINT NOT NULL,
    frontier BYTEA NOT NULL,
    root     BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id         BIGSERIAL PRIMARY KEY,
    size       BIGINT NOT NULL,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION phiguard_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER leaves_append_only_update BEFORE UPDATE ON leaves
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER leaves_append_only_delete BEFORE DELETE ON leaves
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER leaves_append_only_truncate BEFORE TRUNCATE ON leaves
    FOR EACH STATEMENT EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER nodes_append_only_update BEFORE UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER nodes_append_only_delete BEFORE DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER nodes_append_only_truncate BEFORE TRUNCATE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_append_only();
CREATE TRIGGER checkpoints_append_only_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION phiguard_audit_append_only();
";

const PG_V2: &str = "
ALTER TABLE leaves ADD COLUMN pruned_at TEXT;
CREATE OR REPLACE FUNCTION phiguard_audit_leaves_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.pruned_at IS NULL AND NEW.pruned_at IS NOT NULL AND NEW.payload = ''
       AND NEW.idx = OLD.idx AND NEW.appended_at = OLD.appended_at
       AND NEW.leaf_hash = OLD.leaf_hash AND NEW.retention_until = OLD.retention_until
       AND NEW.pruned_at >= OLD.retention_until THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: only the payload of a record past its retention_until may be pruned';
END $$;
CREATE OR REPLACE FUNCTION phiguard_audit_leaves_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: records are never deleted; past retention_until only their payloads are pruned';
END $$;
DROP TRIGGER leaves_append_only_update ON leaves;
DROP TRIGGER leaves_append_only_delete ON leaves;
CREATE TRIGGER leaves_append_only_update BEFORE UPDATE ON leaves
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_leaves_update();
CREATE TRIGGER leaves_append_only_delete BEFORE DELETE ON leaves
    FOR EACH ROW EXECUTE FUNCTION phiguard_audit_leaves_delete();
";

/// The PostgreSQL migrations, applied in order at open (under [`APPEND_LOCK`], so several
/// instances starting at once apply each exactly once) and recorded in `schema_migrations`.
pub const PG_MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "base schema", PG_V1),
    (2, "retention: payload pruning", PG_V2),
];

const ENTRY_COLUMNS: &str = "idx, appended_at, payload, leaf_hash, retention_until, pruned_at";

/// The append-only audit log over a PostgreSQL database.
pub struct PgAuditLog {
    client: Client,
    options: Options,
}

impl std::fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("PgAuditLog").finish_non_exhaustive()
    }
}

fn read_entry(row: &Row) -> Result<Entry, AuditError> {
    Ok(Entry {
        index: to_u64(row.try_get(0)?)?,
        appended_at: row.try_get(1)?,
        record: row.try_get(2)?,
        leaf_hash: to_hash(row.try_get(3)?, "a leaf hash")?,
        retention_until: row.try_get(4)?,
        pruned_at: row.try_get(5)?,
    })
}

fn level_i32(level: u32) -> Result<i32, AuditError> {
    i32::try_from(level).map_err(|_| AuditError::Corrupt(format!("level {level} out of range")))
}

fn load_frontier(tx: &mut Transaction<'_>) -> Result<Frontier, AuditError> {
    let row = tx.query_one("SELECT size, frontier FROM tree_state WHERE id = 1", &[])?;
    let bytes: Vec<u8> = row.try_get(1)?;
    Ok(Frontier::from_bytes(to_u64(row.try_get(0)?)?, &bytes)?)
}

fn head_of(tx: &mut Transaction<'_>) -> Result<TreeHead, AuditError> {
    let row = tx.query_one("SELECT size, root FROM tree_state WHERE id = 1", &[])?;
    Ok(TreeHead {
        size: to_u64(row.try_get(0)?)?,
        root: to_hash(row.try_get(1)?, "the stored root")?,
    })
}

impl PgAuditLog {
    /// Connects to `url` (`postgres://user@host:port/db[?sslmode=...&sslrootcert=...]`) and
    /// applies any pending migration. Loopback and Unix sockets may go without TLS; any other
    /// host gets TLS over rustls with the certificate verified (see [`crate::pg_tls`]).
    pub fn connect(url: &str, options: Options) -> Result<PgAuditLog, AuditError> {
        let target = crate::pg_tls::parse(url)?;
        let client = crate::pg_tls::connect(&target)?;
        PgAuditLog::from_client(client, options)
    }

    /// Uses an already connected client (for TLS, connect it with a rustls connector), and
    /// applies any pending migration.
    pub fn from_client(client: Client, options: Options) -> Result<PgAuditLog, AuditError> {
        let mut log = PgAuditLog { client, options };
        log.migrate()?;
        Ok(log)
    }

    fn migrate(&mut self) -> Result<(), AuditError> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TEXT NOT NULL
             );",
        )?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM schema_migrations", &[])?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if let Some(max) = applied.iter().max()
            && i64::from(*max) > i64::from(SCHEMA_VERSION)
        {
            return Err(AuditError::SchemaVersion {
                found: max.to_string(),
                expected: SCHEMA_VERSION,
            });
        }
        let now = format_time(OffsetDateTime::now_utc());
        for (number, name, sql) in PG_MIGRATIONS {
            let number = i32::try_from(*number)
                .map_err(|_| AuditError::Corrupt("migration number out of range".into()))?;
            if applied.contains(&number) {
                continue;
            }
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&number, name, &now],
            )?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&SCHEMA_VERSION.to_string()],
        )?;
        tx.execute(
            "INSERT INTO tree_state (id, size, frontier, root) VALUES (1, 0, ''::bytea, $1) \
             ON CONFLICT (id) DO NOTHING",
            &[&&empty_root()[..]],
        )?;
        let state = load_frontier(&mut tx)?;
        let stored: i64 = tx
            .query_one("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves", &[])?
            .try_get(0)?;
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

    /// The versions recorded in `schema_migrations`, in order.
    pub fn applied_migrations(&mut self) -> Result<Vec<u32>, AuditError> {
        self.client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )?
            .iter()
            .map(|r| {
                let v: i32 = r.try_get(0)?;
                u32::try_from(v).map_err(|_| AuditError::Corrupt(format!("migration {v}")))
            })
            .collect()
    }

    /// Runs `sql` (administration and tests: the append-only triggers still apply).
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), AuditError> {
        Ok(self.client.batch_execute(sql)?)
    }

    /// Appends one record (a JSON object) durably.
    pub fn append(&mut self, record: &Value) -> Result<Receipt, AuditError> {
        let mut r = self.append_batch(std::slice::from_ref(record))?;
        r.pop()
            .ok_or_else(|| AuditError::Corrupt("an append returned no receipt".into()))
    }

    /// Appends many records in one transaction, serialised with every other writer by the
    /// advisory lock. When this returns `Ok`, the batch is committed; on `Err`, none of it is.
    pub fn append_batch(&mut self, records: &[Value]) -> Result<Vec<Receipt>, AuditError> {
        let payloads = crate::store::canonical_payloads(records, self.options.max_record_bytes)?;
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let years = self.options.retention_years;
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
        // Read after the lock: this statement's snapshot includes every earlier append.
        let mut frontier = load_frontier(&mut tx)?;
        let insert_leaf = tx.prepare(
            "INSERT INTO leaves (idx, appended_at, payload, leaf_hash, retention_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )?;
        let insert_node = tx.prepare("INSERT INTO nodes (level, idx, hash) VALUES ($1, $2, $3)")?;
        let mut receipts = Vec::with_capacity(payloads.len());
        let mut completed: Vec<(u32, u64, Hash)> = Vec::new();
        for payload in &payloads {
            let now = OffsetDateTime::now_utc();
            let appended_at = format_time(now);
            let retention_until = format_time(add_years(now, years));
            let hash = leaf_hash(leaf_text(&appended_at, payload).as_bytes());
            let index = frontier.size();
            tx.execute(
                &insert_leaf,
                &[
                    &to_i64(index)?,
                    &appended_at,
                    payload,
                    &&hash[..],
                    &retention_until,
                ],
            )?;
            frontier.push(hash, |level, idx, node| {
                if level % NODE_STRIDE == 0 {
                    completed.push((level, idx, *node));
                }
            });
            for (level, idx, node) in completed.drain(..) {
                tx.execute(
                    &insert_node,
                    &[&level_i32(level)?, &to_i64(idx)?, &&node[..]],
                )?;
            }
            receipts.push(Receipt {
                index,
                leaf_hash: hash,
                appended_at,
                tree_size: 0,
            });
        }
        let root = frontier.root();
        tx.execute(
            "UPDATE tree_state SET size = $1, frontier = $2, root = $3 WHERE id = 1",
            &[&to_i64(frontier.size())?, &frontier.to_bytes(), &&root[..]],
        )?;
        tx.commit()?;
        for r in &mut receipts {
            r.tree_size = frontier.size();
        }
        Ok(receipts)
    }

    /// The current tree size and root, as persisted.
    pub fn tree_head(&mut self) -> Result<TreeHead, AuditError> {
        let mut tx = self.client.transaction()?;
        let head = head_of(&mut tx)?;
        tx.commit()?;
        Ok(head)
    }

    fn snapshot(&mut self) -> Result<Transaction<'_>, AuditError> {
        Ok(self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?)
    }

    fn with_snapshot<T>(
        &mut self,
        size: u64,
        f: impl FnOnce(&PgTree<'_, '_>) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut tx = self.snapshot()?;
        let head = head_of(&mut tx)?;
        if size > head.size {
            return Err(AuditError::SizeBeyondLog {
                requested: size,
                size: head.size,
            });
        }
        let out = {
            let tree = PgTree {
                tx: RefCell::new(&mut tx),
            };
            f(&tree)?
        };
        tx.commit()?;
        Ok(out)
    }

    /// The root of the first `size` records.
    pub fn root_at(&mut self, size: u64) -> Result<Hash, AuditError> {
        self.with_snapshot(size, |t| tree::root_at(t, size))
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        if index >= size {
            return Err(AuditError::NoSuchRecord { index, size });
        }
        self.with_snapshot(size, |t| tree::inclusion_proof(t, index, size))
    }

    /// The consistency proof between the trees of `old` and `new` records.
    pub fn consistency_proof(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        self.with_snapshot(new, |t| tree::consistency_proof(t, old, new))
    }

    /// One record.
    pub fn entry(&mut self, index: u64) -> Result<Entry, AuditError> {
        let size = self.tree_head()?.size;
        let row = self.client.query_opt(
            &format!("SELECT {ENTRY_COLUMNS} FROM leaves WHERE idx = $1"),
            &[&to_i64(index)?],
        )?;
        match row {
            Some(row) => read_entry(&row),
            None => Err(AuditError::NoSuchRecord { index, size }),
        }
    }

    /// Calls `f` on each record with an index in `range`, in order, reading in pages.
    pub fn for_each_entry<E: From<AuditError>>(
        &mut self,
        range: Range<u64>,
        mut f: impl FnMut(&Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut tx = self.snapshot()?;
        for_each_in(&mut tx, range, &mut f)?;
        tx.commit().map_err(AuditError::from)?;
        Ok(())
    }

    /// Signs a checkpoint of the current tree with `signer`, stores it and returns it.
    pub fn sign_checkpoint(&mut self, signer: &Signer) -> Result<StoredCheckpoint, AuditError> {
        let mut tx = self.client.transaction()?;
        // Under the append lock, so the checkpoint ids are in tree-size order.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
        let head = head_of(&mut tx)?;
        let checkpoint = Checkpoint {
            origin: signer.name().to_string(),
            size: head.size,
            root: head.root,
            extensions: Vec::new(),
        };
        let note = signer.sign(&checkpoint.to_text())?;
        let created_at = format_time(OffsetDateTime::now_utc());
        tx.execute(
            "INSERT INTO checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)",
            &[&to_i64(head.size)?, &&head.root[..], &note, &created_at],
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
    pub fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, AuditError> {
        Ok(self.checkpoints(Some(1))?.pop())
    }

    /// Stored checkpoints, newest first (`limit` of them, or all).
    pub fn checkpoints(&mut self, limit: Option<u64>) -> Result<Vec<StoredCheckpoint>, AuditError> {
        let limit: Option<i64> = limit.map(to_i64).transpose()?;
        let rows = self.client.query(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY id DESC LIMIT $1",
            &[&limit],
        )?;
        rows.iter().map(read_checkpoint).collect()
    }

    /// Calls `f` on each record matching `query`, in index order; returns how many matched.
    pub fn query<E: From<AuditError>>(
        &mut self,
        query: &Query,
        mut f: impl FnMut(&Entry) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM leaves WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        if !query.fields.is_empty() {
            sql.push_str(" AND pruned_at IS NULL");
        }
        for (field, value) in &query.fields {
            json_path(field)?;
            let path: Vec<String> = field.split('.').map(str::to_string).collect();
            args.push(Box::new(path));
            args.push(Box::new(value.clone()));
            sql.push_str(&format!(
                " AND (payload::jsonb #>> ${}::text[]) = ${}",
                args.len() - 1,
                args.len()
            ));
        }
        if let Some(since) = &query.since {
            args.push(Box::new(parse_time(since)?));
            sql.push_str(&format!(" AND appended_at >= ${}", args.len()));
        }
        if let Some(until) = &query.until {
            args.push(Box::new(parse_time(until)?));
            sql.push_str(&format!(" AND appended_at < ${}", args.len()));
        }
        sql.push_str(" ORDER BY idx");
        if let Some(limit) = query.limit {
            args.push(Box::new(to_i64(limit)?));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.client.query(&sql, &params).map_err(AuditError::from)?;
        let mut n = 0;
        for row in &rows {
            f(&read_entry(row)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes the export file (the format of [`crate::store::AuditLog::write_export`]).
    pub fn write_export<W: Write>(
        &mut self,
        out: &mut W,
        checkpoint: &StoredCheckpoint,
    ) -> Result<u64, AuditError> {
        let mut writer = ExportWriter::start(out, checkpoint)?;
        self.for_each_entry(0..checkpoint.size, |e| writer.entry(e))?;
        writer.finish()
    }

    /// Removes the payloads (not the leaf hashes) of records whose `retention_until` is at or
    /// before `now`; returns how many were pruned.
    pub fn prune_expired(&mut self, now: &str) -> Result<u64, AuditError> {
        let now = parse_time(now)?;
        let n = self.client.execute(
            "UPDATE leaves SET payload = '', pruned_at = $1 \
             WHERE pruned_at IS NULL AND retention_until <= $1",
            &[&now],
        )?;
        Ok(n)
    }

    /// Recomputes every leaf hash and the root from one snapshot of the records and compares
    /// them with the stored leaf hashes, tree head, node cache and checkpoints.
    pub fn check(&mut self, key: Option<&VerifierKey>) -> Result<StoreCheck, AuditError> {
        let mut tx = self.snapshot()?;
        let rows = tx.query(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY id DESC",
            &[],
        )?;
        let checkpoints = rows
            .iter()
            .map(read_checkpoint)
            .collect::<Result<Vec<_>, _>>()?;
        let mut checker = Checker::new(key, checkpoints);
        let mut broken = false;
        for_each_in(
            &mut tx,
            0..u64::MAX,
            &mut |e: &Entry| -> Result<(), AuditError> {
                if !broken && !checker.entry(e) {
                    broken = true;
                }
                Ok(())
            },
        )?;
        let head = tx.query_one("SELECT size, root FROM tree_state WHERE id = 1", &[])?;
        let root: Vec<u8> = head.try_get(1)?;
        checker.head(to_u64(head.try_get(0)?)?, &root);
        for row in tx.query(
            "SELECT level, idx, hash FROM nodes ORDER BY level, idx",
            &[],
        )? {
            let level: i32 = row.try_get(0)?;
            let hash: Vec<u8> = row.try_get(2)?;
            let level = u32::try_from(level)
                .map_err(|_| AuditError::Corrupt(format!("node level {level}")))?;
            checker.node(level, to_u64(row.try_get(1)?)?, &hash);
        }
        tx.commit()?;
        Ok(checker.finish())
    }
}

fn read_checkpoint(r: &Row) -> Result<StoredCheckpoint, AuditError> {
    Ok(StoredCheckpoint {
        size: to_u64(r.try_get(0)?)?,
        root: to_hash(r.try_get(1)?, "a checkpoint root")?,
        note: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

/// Reads the records of `range` in pages of this many.
const PAGE: i64 = 10_000;

fn for_each_in<E: From<AuditError>>(
    tx: &mut Transaction<'_>,
    range: Range<u64>,
    f: &mut impl FnMut(&Entry) -> Result<(), E>,
) -> Result<(), E> {
    let stmt = tx
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3"
        ))
        .map_err(AuditError::from)?;
    let mut start = to_i64(range.start.min(i64::MAX as u64))?;
    let end = to_i64(range.end.min(i64::MAX as u64))?;
    loop {
        let rows = tx
            .query(&stmt, &[&start, &end, &PAGE])
            .map_err(AuditError::from)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let last: i64 = last.try_get(0).map_err(AuditError::from)?;
        for row in &rows {
            f(&read_entry(row)?)?;
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
        start = last + 1;
    }
}

/// Perfect-subtree hashes read from one snapshot transaction.
struct PgTree<'a, 't> {
    tx: RefCell<&'a mut Transaction<'t>>,
}

impl Subtrees for PgTree<'_, '_> {
    type Error = AuditError;

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        let base = level - level % NODE_STRIDE;
        let span = level - base;
        let count = 1u64 << span;
        let first = index << span;
        let missing = || TreeError::MissingNode { level, index };
        let mut tx = self.tx.borrow_mut();
        let rows = if base == 0 {
            tx.query(
                "SELECT leaf_hash FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&to_i64(first)?, &to_i64(first + count)?],
            )?
        } else {
            tx.query(
                "SELECT hash FROM nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                &[&level_i32(base)?, &to_i64(first)?, &to_i64(first + count)?],
            )?
        };
        let mut hashes: Vec<Hash> = rows
            .iter()
            .map(|r| to_hash(r.try_get(0)?, "a stored hash"))
            .collect::<Result<_, _>>()?;
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
