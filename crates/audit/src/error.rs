//! The crate's error type. Messages carry file names, indices, sizes and counts, never record
//! contents or key material.

use std::path::PathBuf;

use crate::note::NoteError;
use crate::tree::TreeError;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open audit store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit store error: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("PostgreSQL audit store error: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("invalid audit store URL: {0}")]
    Url(String),
    #[error("the audit store is inconsistent: {0}")]
    Corrupt(String),
    #[error("the audit store has schema version {found}, this phiguard knows version {expected}")]
    SchemaVersion { found: String, expected: u32 },
    #[error("record {position} of the batch is not a JSON object")]
    NotAnObject { position: usize },
    #[error("record {position} of the batch is {bytes} bytes, over the {limit}-byte limit")]
    TooLarge {
        position: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("record {index} is not in the log of {size} records")]
    NoSuchRecord { index: u64, size: u64 },
    #[error("tree size {requested} is larger than the log ({size} records)")]
    SizeBeyondLog { requested: u64, size: u64 },
    #[error("invalid query: {0}")]
    Query(String),
    #[error("invalid time {0:?}: expected RFC 3339 (2025-01-31T12:00:00Z) or a date (2025-01-31)")]
    Time(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("audit store encryption: {0}")]
    Crypto(#[from] phiguard_crypto::CryptoError),
    #[error("record {index} cannot be decrypted: {source}")]
    Decrypt {
        index: u64,
        source: phiguard_crypto::CryptoError,
    },
    #[error(
        "the audit store's records are encrypted and were opened without their key \
         (the tree, proofs and leaf hashes remain readable)"
    )]
    Sealed,
    #[error("the audit store {path} is encrypted and cannot be opened: {reason}")]
    FileKey { path: PathBuf, reason: String },
    #[error("the key given does not open the audit store's encrypted records (wrong key)")]
    WrongKey,
}

/// A PostgreSQL error's SQLSTATE and primary message, or the client error and its cause. The
/// server's DETAIL and the query are left out: they can quote the values of a statement.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
