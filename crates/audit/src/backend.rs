//! Choosing the store by URL: `sqlite:PATH` (or a bare path) for the embedded SQLite file,
//! `postgres://…` (or `postgresql://…`) for a PostgreSQL database shared by several gateway
//! instances. [`AuditStore`] offers the same operations over either.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use phiguard_crypto::KeyProvider;

use serde_json::Value;

use crate::error::AuditError;
use crate::hash::Hash;
use crate::note::{Signer, VerifierKey};
use crate::pg::PgAuditLog;
use crate::store::{
    AuditLog, Entry, Options, Query, Receipt, StoreCheck, StoredCheckpoint, TreeHead,
};

/// Where the log lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may hold a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreUrl {
    /// Parses `sqlite:PATH`, `sqlite://PATH`, `postgres://…`, `postgresql://…`, or a bare path
    /// (a SQLite file).
    pub fn parse(url: &str) -> Result<StoreUrl, AuditError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || (path.contains("://") && !url.starts_with("sqlite")) {
            return Err(AuditError::Url(
                "expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE".into(),
            ));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(path)))
    }

    /// A printable description without any password.
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreUrl::Postgres(url) => {
                // postgres://user:password@host/db → postgres://user@host/db
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let rest = match rest.split_once('@') {
                    Some((user, host)) => {
                        let user = user.split_once(':').map_or(user, |(u, _)| u);
                        format!("{user}@{host}")
                    }
                    None => rest.to_string(),
                };
                format!("{scheme}://{rest}")
            }
        }
    }
}

/// The audit log over either back end.
#[derive(Debug)]
pub enum AuditStore {
    /// The embedded SQLite store.
    Sqlite(AuditLog),
    /// A shared PostgreSQL store.
    Postgres(PgAuditLog),
}

macro_rules! dispatch {
    ($self:ident, $log:ident => $e:expr) => {
        match $self {
            AuditStore::Sqlite($log) => $e,
            AuditStore::Postgres($log) => $e,
        }
    };
}

impl AuditStore {
    /// Opens (creating and migrating if needed) the store at `url`.
    pub fn open(url: &StoreUrl, options: Options) -> Result<AuditStore, AuditError> {
        match url {
            StoreUrl::Sqlite(path) => Ok(AuditStore::Sqlite(AuditLog::open_with(path, options)?)),
            StoreUrl::Postgres(url) => Ok(AuditStore::Postgres(PgAuditLog::connect(url, options)?)),
        }
    }

    /// Opens the store at `url`; the SQLite store encrypts new records under the local key
    /// file `key_file`, created on first use ([`AuditLog::open_with_local_key`]). Returns the
    /// store and whether the key file was created. PostgreSQL stores ignore the key for now.
    pub fn open_with_local_key(
        url: &StoreUrl,
        options: Options,
        key_file: &std::path::Path,
    ) -> Result<(AuditStore, bool), AuditError> {
        match url {
            StoreUrl::Sqlite(path) => {
                let (log, created) = AuditLog::open_with_local_key(path, options, key_file)?;
                Ok((AuditStore::Sqlite(log), created))
            }
            StoreUrl::Postgres(url) => Ok((
                AuditStore::Postgres(PgAuditLog::connect(url, options)?),
                false,
            )),
        }
    }

    /// Opens the store at `url` with a payload key: the SQLite store encrypts every new
    /// record's payload under `provider` ([`AuditLog::open_encrypted`]). PostgreSQL stores
    /// ignore the key for now (their payloads rely on the database's own encryption at rest).
    pub fn open_encrypted(
        url: &StoreUrl,
        options: Options,
        provider: Arc<dyn KeyProvider>,
    ) -> Result<AuditStore, AuditError> {
        match url {
            StoreUrl::Sqlite(path) => Ok(AuditStore::Sqlite(AuditLog::open_encrypted(
                path, options, provider,
            )?)),
            StoreUrl::Postgres(url) => Ok(AuditStore::Postgres(PgAuditLog::connect(url, options)?)),
        }
    }

    /// A handle that makes commits power-loss durable from another thread: `Some` only for a
    /// SQLite store opened with [`crate::Durability::Normal`] (PostgreSQL commits are durable
    /// when they return).
    pub fn wal_syncer(&self) -> Option<crate::WalSyncer> {
        match self {
            AuditStore::Sqlite(l) => l.wal_syncer(),
            AuditStore::Postgres(_) => None,
        }
    }

    /// Appends one record durably.
    pub fn append(&mut self, record: &Value) -> Result<Receipt, AuditError> {
        dispatch!(self, l => l.append(record))
    }

    /// Appends a batch in one transaction.
    pub fn append_batch(&mut self, records: &[Value]) -> Result<Vec<Receipt>, AuditError> {
        dispatch!(self, l => l.append_batch(records))
    }

    /// The persisted tree size and root.
    pub fn tree_head(&mut self) -> Result<TreeHead, AuditError> {
        dispatch!(self, l => l.tree_head())
    }

    /// The root of the first `size` records.
    pub fn root_at(&mut self, size: u64) -> Result<Hash, AuditError> {
        dispatch!(self, l => l.root_at(size))
    }

    /// An inclusion proof.
    pub fn inclusion_proof(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        dispatch!(self, l => l.inclusion_proof(index, size))
    }

    /// A consistency proof.
    pub fn consistency_proof(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        dispatch!(self, l => l.consistency_proof(old, new))
    }

    /// One record.
    pub fn entry(&mut self, index: u64) -> Result<Entry, AuditError> {
        dispatch!(self, l => l.entry(index))
    }

    /// Signs and stores a checkpoint of the current tree.
    pub fn sign_checkpoint(&mut self, signer: &Signer) -> Result<StoredCheckpoint, AuditError> {
        dispatch!(self, l => l.sign_checkpoint(signer))
    }

    /// The newest checkpoint.
    pub fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, AuditError> {
        dispatch!(self, l => l.latest_checkpoint())
    }

    /// Records matching `query`.
    pub fn query<E: From<AuditError>>(
        &mut self,
        query: &Query,
        f: impl FnMut(&Entry) -> Result<(), E>,
    ) -> Result<u64, E> {
        dispatch!(self, l => l.query(query, f))
    }

    /// Writes the export of `checkpoint`'s tree.
    pub fn write_export<W: Write>(
        &mut self,
        out: &mut W,
        checkpoint: &StoredCheckpoint,
    ) -> Result<u64, AuditError> {
        dispatch!(self, l => l.write_export(out, checkpoint))
    }

    /// Prunes the payloads of records past retention at `now`.
    pub fn prune_expired(&mut self, now: &str) -> Result<u64, AuditError> {
        dispatch!(self, l => l.prune_expired(now))
    }

    /// Checks the whole store.
    pub fn check(&mut self, key: Option<&VerifierKey>) -> Result<StoreCheck, AuditError> {
        dispatch!(self, l => l.check(key))
    }

    /// Encrypted payloads per KEK `(id, version)`, read without a key (empty for PostgreSQL).
    pub fn payload_keks(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, u32), u64>, AuditError> {
        match self {
            AuditStore::Sqlite(l) => l.payload_keks(),
            AuditStore::Postgres(_) => Ok(Default::default()),
        }
    }

    /// Re-wraps encrypted payloads under the current KEK version: (re-wrapped, already current).
    pub fn rewrap_payloads(&mut self) -> Result<(u64, u64), AuditError> {
        match self {
            AuditStore::Sqlite(l) => l.rewrap_payloads(),
            AuditStore::Postgres(_) => Ok((0, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_describes_urls() {
        assert_eq!(
            StoreUrl::parse("sqlite:/tmp/a.db").unwrap(),
            StoreUrl::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            StoreUrl::parse("a/b.db").unwrap(),
            StoreUrl::Sqlite("a/b.db".into())
        );
        let pg = StoreUrl::parse("postgres://u:secret@127.0.0.1:5432/db").unwrap();
        assert_eq!(pg.describe(), "postgres://u@127.0.0.1:5432/db");
        assert!(!format!("{pg:?}").contains("secret"));
        assert!(StoreUrl::parse("mysql://x").is_err());
        assert!(StoreUrl::parse("sqlite:").is_err());
    }
}
