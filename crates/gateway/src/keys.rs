//! Service API keys: `pg_<id>_<secret>`, shown once. Only the SHA-256 of the secret is kept, in
//! a SQLite file, with the role, scopes, expiry and revocation.

use std::path::Path;
use std::sync::Mutex;

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A key-store error (never shows a key or secret).
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store {path}: {message}")]
    Store { path: String, message: String },
    #[error("no API key with id {0}")]
    UnknownId(String),
}

/// Who a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The public key id (the part after `pg_`).
    pub key_id: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// The SHA-256 of the client certificate (DER) the key is bound to: the key is accepted
    /// only on a mutual-TLS connection that presented that certificate.
    pub client_cert: Option<[u8; 32]>,
}

impl Principal {
    /// The id recorded in audit records: `service:<key id>`.
    pub fn audit_id(&self) -> String {
        format!("service:{}", self.key_id)
    }
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

/// What the store keeps about a key, for listing: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The bound client certificate's SHA-256 (hex), if the key is bound to one.
    pub client_cert_sha256: Option<String>,
}

fn split_scopes(scopes: &str) -> Vec<String> {
    scopes
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A newly created key: `token` is shown once and never stored.
pub struct NewKey {
    pub key_id: String,
    pub token: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewKey({}, [REDACTED])", self.key_id)
    }
}

/// The key store.
pub struct KeyStore {
    conn: Mutex<Connection>,
    path: String,
    /// Rows `verify` has read, valid while the file's `data_version` stays the same (taken
    /// and changed only under the `conn` lock).
    cache: Mutex<RowCache>,
}

/// A stored key, as [`KeyStore::verify`] reads it.
#[derive(Clone)]
struct KeyRow {
    hash: Vec<u8>,
    role: String,
    scopes: String,
    expires: Option<String>,
    revoked: Option<String>,
    cert: Option<Vec<u8>>,
}

/// Key rows read since the store last changed. SQLite's `PRAGMA data_version` changes when
/// another connection (`phiguard keys revoke` in another process) commits; this connection's
/// own writes clear the cache. Only keys that exist are kept, so unknown ids cannot grow it.
#[derive(Default)]
struct RowCache {
    version: Option<i64>,
    rows: std::collections::HashMap<String, KeyRow>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyStore({})", self.path)
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl KeyStore {
    /// Opens (creating the file and its folder if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<KeyStore, KeyStoreError> {
        let p = path.display().to_string();
        let err = |message: String| KeyStoreError::Store {
            path: p.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create folder: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY,
                secret_sha256 BLOB NOT NULL,
                role TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT,
                revoked_at TEXT
             );",
        )
        .map_err(|e| err(e.to_string()))?;
        // Stores made before keys could be bound to a client certificate get the column.
        let bound = conn
            .prepare(
                "SELECT 1 FROM pragma_table_info('api_keys') WHERE name = 'client_cert_sha256'",
            )
            .and_then(|mut s| s.exists([]))
            .map_err(|e| err(e.to_string()))?;
        if !bound {
            conn.execute_batch("ALTER TABLE api_keys ADD COLUMN client_cert_sha256 BLOB")
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(KeyStore {
            conn: Mutex::new(conn),
            path: p,
            cache: Mutex::new(RowCache::default()),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> KeyStoreError {
        KeyStoreError::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, KeyStoreError> {
        self.conn.lock().map_err(|_| self.err("lock poisoned"))
    }

    /// The cache of key rows; taken only while the connection's lock is held.
    fn cache(&self) -> Result<std::sync::MutexGuard<'_, RowCache>, KeyStoreError> {
        self.cache.lock().map_err(|_| self.err("lock poisoned"))
    }

    /// Key `id`'s row: from the cache while no other connection has committed since it was
    /// read, else from the file.
    fn row(&self, id: &str) -> Result<Option<KeyRow>, KeyStoreError> {
        let conn = self.lock()?;
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        let mut cache = self.cache()?;
        if cache.version != Some(version) {
            cache.rows.clear();
            cache.version = Some(version);
        }
        if let Some(row) = cache.rows.get(id) {
            return Ok(Some(row.clone()));
        }
        let row = conn
            .prepare_cached(
                "SELECT secret_sha256, role, scopes, expires_at, revoked_at, client_cert_sha256
                 FROM api_keys WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![id], |r| {
                    Ok(KeyRow {
                        hash: r.get(0)?,
                        role: r.get(1)?,
                        scopes: r.get(2)?,
                        expires: r.get(3)?,
                        revoked: r.get(4)?,
                        cert: r.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        if let Some(r) = &row {
            cache.rows.insert(id.to_string(), r.clone());
        }
        Ok(row)
    }

    /// Creates a key for `role` with `scopes`, valid until `expires` (if given).
    pub fn create(
        &self,
        role: &str,
        scopes: &[String],
        expires: Option<OffsetDateTime>,
    ) -> Result<NewKey, KeyStoreError> {
        self.create_bound(role, scopes, expires, None)
    }

    /// As [`KeyStore::create`], bound to the client certificate whose DER has the SHA-256
    /// `client_cert` when given: the key is then refused on any connection that did not
    /// present that certificate (mutual TLS), so a leaked key alone is not enough.
    pub fn create_bound(
        &self,
        role: &str,
        scopes: &[String],
        expires: Option<OffsetDateTime>,
        client_cert: Option<[u8; 32]>,
    ) -> Result<NewKey, KeyStoreError> {
        let mut rng = rand::rngs::OsRng;
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let key_id = hex::encode(id);
        let secret = hex::encode(secret);
        let conn = self.lock()?;
        self.cache()?.rows.clear();
        conn.execute(
            "INSERT INTO api_keys
                (id, secret_sha256, role, scopes, created_at, expires_at, client_cert_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key_id,
                sha256(&secret).to_vec(),
                role,
                scopes.join(","),
                rfc3339(now()),
                expires.map(rfc3339),
                client_cert.map(|c| c.to_vec()),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(NewKey {
            token: format!("pg_{key_id}_{secret}"),
            key_id,
        })
    }

    /// Marks the key `key_id` revoked from now on.
    pub fn revoke(&self, key_id: &str) -> Result<(), KeyStoreError> {
        let conn = self.lock()?;
        self.cache()?.rows.clear();
        let n = conn
            .execute(
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![rfc3339(now()), key_id],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(KeyStoreError::UnknownId(key_id.to_string()));
        }
        Ok(())
    }

    /// Every key, oldest first (ids, roles, scopes and dates only).
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT id, role, scopes, created_at, expires_at, revoked_at, client_cert_sha256
                 FROM api_keys ORDER BY created_at, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KeyInfo {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    scopes: split_scopes(&r.get::<_, String>(2)?),
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                    client_cert_sha256: r.get::<_, Option<Vec<u8>>>(6)?.map(hex::encode),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A cheap read, for readiness: the store answers queries right now.
    pub fn health(&self) -> Result<(), KeyStoreError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM api_keys LIMIT 1)",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// Checks a presented token. Every call asks the store whether it changed since the key
    /// was last read (SQLite's `data_version`, cheap), so a key revoked by another process is
    /// refused from its next request on.
    pub fn verify(&self, token: &str) -> Result<Result<Principal, KeyRejection>, KeyStoreError> {
        let Some((id, secret)) = token
            .strip_prefix("pg_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Err(KeyRejection::Malformed));
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err(KeyRejection::Malformed));
        }
        let row = self.row(id)?;
        let Some(KeyRow {
            hash,
            role,
            scopes,
            expires,
            revoked,
            cert,
        }) = row
        else {
            return Ok(Err(KeyRejection::Unknown));
        };
        if !bool::from(hash.as_slice().ct_eq(&sha256(secret))) {
            return Ok(Err(KeyRejection::Unknown));
        }
        if revoked.is_some() {
            return Ok(Err(KeyRejection::Revoked));
        }
        if let Some(exp) = expires {
            let exp = OffsetDateTime::parse(&exp, &Rfc3339)
                .map_err(|_| self.err("a stored expiry is not RFC 3339"))?;
            if now() >= exp {
                return Ok(Err(KeyRejection::Expired));
            }
        }
        let client_cert = match cert {
            None => None,
            Some(c) => Some(
                <[u8; 32]>::try_from(c.as_slice())
                    .map_err(|_| self.err("a stored client-certificate hash is not 32 bytes"))?,
            ),
        };
        Ok(Ok(Principal {
            key_id: id.to_string(),
            role,
            scopes: split_scopes(&scopes),
            client_cert,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_key_revoked_through_another_connection_is_refused_at_its_next_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let gateway = KeyStore::open(&path).unwrap();
        let cli = KeyStore::open(&path).unwrap();
        let k = cli.create("clinician", &[], None).unwrap();
        let other = cli.create("analyst", &[], None).unwrap();
        // Read (and cached) by the gateway's connection.
        for _ in 0..3 {
            assert_eq!(gateway.verify(&k.token).unwrap().unwrap().role, "clinician");
        }
        assert!(gateway.verify(&other.token).unwrap().is_ok());
        cli.revoke(&k.key_id).unwrap();
        assert!(matches!(
            gateway.verify(&k.token).unwrap(),
            Err(KeyRejection::Revoked)
        ));
        assert!(gateway.verify(&other.token).unwrap().is_ok());
        // A wrong secret for a cached id is still refused.
        let forged = format!("pg_{}_{}", other.key_id, "0".repeat(64));
        assert!(matches!(
            gateway.verify(&forged).unwrap(),
            Err(KeyRejection::Unknown)
        ));
        // Revoked through the same connection.
        gateway.revoke(&other.key_id).unwrap();
        assert!(matches!(
            gateway.verify(&other.token).unwrap(),
            Err(KeyRejection::Revoked)
        ));
    }

    #[test]
    fn create_verify_revoke_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k").join("keys.db");
        let store = KeyStore::open(&path).unwrap();
        let k = store.create("clinician", &["chat".into()], None).unwrap();
        assert!(k.token.starts_with(&format!("pg_{}_", k.key_id)));
        let p = store.verify(&k.token).unwrap().unwrap();
        assert_eq!(p.role, "clinician");
        assert_eq!(p.scopes, vec!["chat".to_string()]);
        // The secret itself is not in the file.
        let secret = k.token.rsplit('_').next().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret));
        // Wrong secret, malformed.
        let wrong = format!("pg_{}_{}", k.key_id, "0".repeat(64));
        assert_eq!(store.verify(&wrong).unwrap(), Err(KeyRejection::Unknown));
        assert_eq!(
            store.verify("sk-abc").unwrap(),
            Err(KeyRejection::Malformed)
        );
        assert!(store.health().is_ok());
        store.revoke(&k.key_id).unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, k.key_id);
        assert!(listed[0].revoked_at.is_some());
        assert!(matches!(
            store.revoke(&k.key_id),
            Err(KeyStoreError::UnknownId(_))
        ));
        assert_eq!(store.verify(&k.token).unwrap(), Err(KeyRejection::Revoked));
        let old = store
            .create("analyst", &[], Some(now() - time::Duration::seconds(1)))
            .unwrap();
        assert_eq!(
            store.verify(&old.token).unwrap(),
            Err(KeyRejection::Expired)
        );
    }

    #[test]
    fn keys_bound_to_a_client_certificate_and_old_stores_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        // A store made before keys could be bound: no client_cert_sha256 column.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE api_keys (id TEXT PRIMARY KEY, secret_sha256 BLOB NOT NULL,
                 role TEXT NOT NULL, scopes TEXT NOT NULL, created_at TEXT NOT NULL,
                 expires_at TEXT, revoked_at TEXT);",
            )
            .unwrap();
        }
        let store = KeyStore::open(&path).unwrap();
        let free = store.create("clinician", &[], None).unwrap();
        let fp = [0xabu8; 32];
        let bound = store
            .create_bound("clinician", &[], None, Some(fp))
            .unwrap();
        assert_eq!(
            store.verify(&free.token).unwrap().unwrap().client_cert,
            None
        );
        assert_eq!(
            store.verify(&bound.token).unwrap().unwrap().client_cert,
            Some(fp)
        );
        let listed = store.list().unwrap();
        let row = listed.iter().find(|k| k.id == bound.key_id).unwrap();
        assert_eq!(
            row.client_cert_sha256.as_deref(),
            Some(hex::encode(fp).as_str())
        );
        // Opening again leaves the (now present) column alone.
        drop(store);
        let again = KeyStore::open(&path).unwrap();
        assert_eq!(
            again.verify(&bound.token).unwrap().unwrap().client_cert,
            Some(fp)
        );
    }
}
