//! Encryption of the SQLite file itself: every page of the database, its WAL and its
//! snapshots is encrypted by SQLCipher 4 (AES-256-CBC per page with a random IV, HMAC-SHA512
//! per page; the bundled amalgamation of `libsqlite3-sys`, linked against the system's
//! libcrypto), so the file on disk holds no readable record, index, tree node or metadata.
//!
//! The page key is a random 256-bit key, never derived from a passphrase (SQLCipher's PBKDF2 is
//! skipped: the key is given raw). It is envelope-encrypted under the store's [`KeyProvider`]
//! (the local key file by default, or an HSM or KMS) with phiguard-crypto's field encryption,
//! bound to the context `purpose=phiguard-sqlite-page-key`, and kept beside the database in a
//! small JSON file, [`sidecar_path`] (`audit.db` → `audit.db.pgkey`). That file holds no secret:
//! without the KEK it is useless. Rotating the KEK re-wraps the page key ([`rewrap`]); the pages
//! need no rewrite. Revoking the KEK version the page key is wrapped under makes the whole
//! database unreadable, as it does the payloads.
//!
//! A database created before this existed (plain SQLite, recognised by its header) keeps
//! opening as it is; `phiguard audit encrypt-store` converts it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phiguard_crypto::{
    DataKey, EncryptionContext, FieldCipher, FieldRef, KekRef, KeyProvider, field::field_kek,
};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::encryption::Shared;
use crate::error::AuditError;

/// The suffix of the page-key file beside a database.
pub const SIDECAR_SUFFIX: &str = ".pgkey";
/// The page-key file's `format` value.
pub const FORMAT: &str = "phiguard-sqlite-page-key";
/// The page-key file's version.
pub const VERSION: u32 = 1;
/// The page cipher.
pub const CIPHER: &str = "sqlcipher4";
/// The first 16 bytes of a plaintext SQLite database.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The page-key file of the database at `db`.
pub fn sidecar_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

/// True when `path` starts with the plaintext SQLite header.
pub fn is_plain_sqlite(path: &Path) -> bool {
    let mut magic = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == SQLITE_MAGIC
}

/// The page-key file: the wrapped key and where its KEK is. No secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub format: String,
    pub version: u32,
    pub cipher: String,
    /// The local key file whose KEK wraps the page key, when it is one (not secret), so that
    /// a command given no key finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The page key, sealed (`pgf1.` field envelope).
    pub wrapped: String,
}

impl Sidecar {
    /// Reads the page-key file of the database at `db`, if there is one.
    pub fn read(db: &Path) -> Result<Option<Sidecar>, AuditError> {
        let path = sidecar_path(db);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::Io(e)),
        };
        let sc: Sidecar = serde_json::from_str(&text).map_err(|e| {
            AuditError::Corrupt(format!("{} is not a page-key file ({e})", path.display()))
        })?;
        if sc.format != FORMAT || sc.version != VERSION || sc.cipher != CIPHER {
            return Err(AuditError::Corrupt(format!(
                "{} is a page-key file this phiguard does not read (format {:?}, version {}, \
                 cipher {:?})",
                path.display(),
                sc.format,
                sc.version,
                sc.cipher
            )));
        }
        Ok(Some(sc))
    }

    /// Writes the page-key file of `db` atomically and durably (temporary file, fsync,
    /// rename, fsync of the folder).
    pub fn write(&self, db: &Path) -> Result<(), AuditError> {
        self.write_inner(db, true).map(|_| ())
    }

    /// As [`Sidecar::write`] for a new store, but never over an existing file: returns false
    /// when another process created one first (then its key is the store's).
    pub fn write_new(&self, db: &Path) -> Result<bool, AuditError> {
        self.write_inner(db, false)
    }

    fn write_inner(&self, db: &Path, replace: bool) -> Result<bool, AuditError> {
        let path = sidecar_path(db);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|e| AuditError::Corrupt(format!("cannot encode a page-key file ({e})")))?;
        text.push(b'\n');
        tmp.write_all(&text)?;
        tmp.as_file().sync_all()?;
        if replace {
            tmp.persist(&path).map_err(|e| AuditError::Io(e.error))?;
        } else {
            match tmp.persist_noclobber(&path) {
                Ok(_) => {}
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(AuditError::Io(e.error)),
            }
        }
        if let Ok(d) = std::fs::File::open(&dir) {
            // Best effort: not every platform can fsync a folder.
            let _ = d.sync_all();
        }
        Ok(true)
    }

    /// The KEK (id and version) the page key is wrapped under, read without any key.
    pub fn kek(&self) -> Result<KekRef, AuditError> {
        Ok(field_kek(&self.wrapped)?)
    }
}

/// A database's page key. `Debug` prints nothing of it.
pub struct PageKey(DataKey);

impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageKey([REDACTED])")
    }
}

fn page_cipher(provider: Arc<dyn KeyProvider>) -> Result<FieldCipher<Shared>, AuditError> {
    let base = EncryptionContext::from_pairs([("purpose", "phiguard-sqlite-page-key")])?;
    Ok(FieldCipher::new(Shared(provider), base)?)
}

fn field() -> FieldRef<'static> {
    FieldRef::new("sqlite", "page_key", "0")
}

/// A new random page key for a new database, sealed under `provider`. Returns the key and
/// the page-key file to write (before the database is created).
pub fn create(
    provider: Arc<dyn KeyProvider>,
    key_file: Option<&Path>,
) -> Result<(PageKey, Sidecar), AuditError> {
    let key = DataKey::generate()?;
    let wrapped = page_cipher(provider)?.encrypt(&field(), key.expose_secret())?;
    Ok((
        PageKey(key),
        Sidecar {
            format: FORMAT.into(),
            version: VERSION,
            cipher: CIPHER.into(),
            key_file: key_file.map(Path::to_path_buf),
            wrapped,
        },
    ))
}

/// Unwraps the page key of `sidecar` with `provider`.
pub fn unwrap(sidecar: &Sidecar, provider: Arc<dyn KeyProvider>) -> Result<PageKey, AuditError> {
    let plain = page_cipher(provider)?.decrypt(&field(), &sidecar.wrapped)?;
    let key = DataKey::from_slice(&plain)
        .ok_or_else(|| AuditError::Corrupt("the page key does not decrypt to 32 bytes".into()))?;
    Ok(PageKey(key))
}

/// Re-wraps the page key of the database at `db` under the provider's current KEK version.
/// Returns whether the file changed (false when it was already current, or there is none).
pub fn rewrap(db: &Path, provider: Arc<dyn KeyProvider>) -> Result<bool, AuditError> {
    let Some(mut sc) = Sidecar::read(db)? else {
        return Ok(false);
    };
    let cipher = page_cipher(provider)?;
    if cipher.is_current(&sc.wrapped)? {
        return Ok(false);
    }
    let (_, new) = cipher.rewrap_field(&field(), &sc.wrapped)?;
    sc.wrapped = new;
    sc.write(db)?;
    Ok(true)
}

/// `before`, the key as SQLCipher's raw-key literal `"x'HEX'"`, then `after`: one statement
/// built in a buffer that is wiped when dropped (the hex digits go straight into it).
fn with_key_literal(before: &str, key: &PageKey, after: &str) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut sql = Zeroizing::new(String::with_capacity(before.len() + 68 + after.len()));
    sql.push_str(before);
    sql.push_str("\"x'");
    for b in key.0.expose_secret() {
        sql.push(char::from(HEX[usize::from(b >> 4)]));
        sql.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    sql.push_str("'\"");
    sql.push_str(after);
    sql
}

/// Gives `conn` (just opened, nothing read yet) its page key, then reads the schema to check
/// that the key opens the file. A wrong key, or a file that is not an encrypted database,
/// fails with [`AuditError::FileKey`] naming `path`.
pub fn apply(conn: &Connection, key: &PageKey, path: &Path) -> Result<(), AuditError> {
    quiet_sqlcipher();
    let sql = with_key_literal("PRAGMA key = ", key, ";");
    conn.execute_batch(&sql)
        .map_err(|source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let version: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .ok();
    if version.is_none() {
        return Err(AuditError::Corrupt(
            "this phiguard was built without SQLCipher; it cannot open encrypted stores".into(),
        ));
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(AuditError::FileKey {
                path: path.to_path_buf(),
                reason: "the page key does not open it (another key's page-key file, or \
                         the file is damaged)"
                    .into(),
            })
        }
        Err(source) => Err(AuditError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// SQLCipher prints decryption failures to stderr by default; phiguard reports them itself.
fn quiet_sqlcipher() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(c) = Connection::open_in_memory() {
            let _ = c.execute_batch("PRAGMA cipher_log_level = NONE;");
        }
    });
}

/// Opens the database at `path` (which must exist) with its page key, read-only when
/// `read_only`: for tools that need the raw tables (snapshots, tests).
pub fn open_raw(
    path: &Path,
    key: Option<&PageKey>,
    read_only: bool,
) -> Result<Connection, AuditError> {
    let flags = if read_only {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // Wait for a concurrent writer instead of failing at once (applying the key reads).
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(key) = key {
        apply(&conn, key, path)?;
    }
    Ok(conn)
}

/// The page key of the database at `path`: none for a plaintext database, else unwrapped
/// with `provider`, or with the local key file its page-key file names when `provider` is
/// `None` (sealed files take their passphrase from `PHIGUARD_KEY_PASSPHRASE`).
pub fn key_for(
    path: &Path,
    provider: Option<Arc<dyn KeyProvider>>,
) -> Result<Option<PageKey>, AuditError> {
    let Some(sc) = Sidecar::read(path)? else {
        return Ok(None);
    };
    let provider = match provider {
        Some(p) => p,
        None => provider_named_by(&sc, path)?,
    };
    Ok(Some(unwrap(&sc, provider).map_err(|e| locked(path, e))?))
}

/// The provider of the local key file a page-key file names.
pub(crate) fn provider_named_by(
    sc: &Sidecar,
    path: &Path,
) -> Result<Arc<dyn KeyProvider>, AuditError> {
    let Some(file) = &sc.key_file else {
        return Err(AuditError::FileKey {
            path: path.to_path_buf(),
            reason: "its page key is wrapped by a key provider that is not a local key file; \
                     open it with that provider"
                .into(),
        });
    };
    if !file.exists() {
        return Err(AuditError::FileKey {
            path: path.to_path_buf(),
            reason: format!(
                "its page key is wrapped under the key file {}, which is not there",
                file.display()
            ),
        });
    }
    let (provider, _) = crate::encryption::local_key(file, false).map_err(|e| locked(path, e))?;
    Ok(provider)
}

fn locked(path: &Path, e: AuditError) -> AuditError {
    match e {
        AuditError::FileKey { .. } => e,
        other => AuditError::FileKey {
            path: path.to_path_buf(),
            reason: format!("its page key cannot be unwrapped ({other})"),
        },
    }
}

/// Converts the plaintext SQLite database at `path` into an encrypted one under a new page
/// key sealed by `provider`: `sqlcipher_export` into a new file beside it, then the page-key
/// file, then an atomic rename over the original. No other process may have the database
/// open. Returns false when it was already encrypted.
pub fn encrypt_in_place(
    path: &Path,
    provider: Arc<dyn KeyProvider>,
    key_file: Option<&Path>,
) -> Result<bool, AuditError> {
    if Sidecar::read(path)?.is_some() || !is_plain_sqlite(path) {
        return Ok(false);
    }
    let open_err = |source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    };
    let plain = Connection::open(path).map_err(open_err)?;
    // Fold the WAL into the main file first, and make sure nobody else writes.
    plain
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); BEGIN EXCLUSIVE; COMMIT;")
        .map_err(open_err)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".encrypting-")
        .suffix(".db")
        .tempfile_in(&dir)?;
    let tmp_path = tmp.path().to_path_buf();
    let (key, sidecar) = create(provider, key_file)?;
    let attach = with_key_literal("ATTACH DATABASE ?1 AS encrypted KEY ", &key, ";");
    let tmp_text = tmp_path
        .to_str()
        .ok_or_else(|| AuditError::Corrupt(format!("{} is not valid UTF-8", tmp_path.display())))?;
    quiet_sqlcipher();
    plain.execute(&attach, [tmp_text]).map_err(open_err)?;
    plain
        .execute_batch(
            "BEGIN; SELECT sqlcipher_export('encrypted'); COMMIT; DETACH DATABASE encrypted;",
        )
        .map_err(open_err)?;
    drop(plain);
    // The copy must open with its key and hold the same schema before it replaces anything.
    {
        let check = open_raw(&tmp_path, Some(&key), false)?;
        let mode: String = check
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Corrupt(format!(
                "cannot switch {} to WAL mode",
                tmp_path.display()
            )));
        }
        let ok: String = check
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(open_err)?;
        if ok != "ok" {
            return Err(AuditError::Corrupt(format!(
                "the encrypted copy fails its integrity check ({ok})"
            )));
        }
    }
    tmp.as_file().sync_all()?;
    sidecar.write(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    tmp.persist(path).map_err(|e| AuditError::Io(e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}
