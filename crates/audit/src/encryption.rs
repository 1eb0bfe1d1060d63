//! Encryption of the SQLite store's record payloads with phiguard-crypto's field-level
//! envelope encryption ([`FieldCipher`]), under any [`KeyProvider`] (the local key file by
//! default).
//!
//! Each payload is sealed on its own, bound to `leaves`/`payload`/its leaf index (and the
//! base context `purpose=phiguard-audit`), so a ciphertext moved to another row does not
//! decrypt. Leaf hashes stay over the plaintext leaf, so roots, proofs, checkpoints and
//! exports are unchanged, and the tree verifies from the stored leaf hashes without the key.
//! A stored payload that starts with [`FIELD_PREFIX`] is encrypted; canonical JSON (which
//! starts with `{`) is a plaintext record of a store created before encryption.

use std::path::Path;
use std::sync::Arc;

use phiguard_crypto::field::FIELD_PREFIX;
use phiguard_crypto::{
    CryptoError, DataKey, EncryptionContext, FieldCipher, FieldRef, KekRef, KeyProvider,
    LocalKeyFile, SealParams, SecretString, WrappedKey,
};

use crate::error::AuditError;

/// The `meta` key that marks a store whose new records are encrypted (value [`SCHEME`]).
pub const META_ENCRYPTION: &str = "payload_encryption";
/// The `meta` key holding a sealed known value, to tell a wrong key from a tampered record.
pub const META_KEY_CHECK: &str = "payload_key_check";
/// The `meta` key naming the local key file that seals the payloads, so that any phiguard
/// command opening the store without a key (a `deid` run's audit record, a backup check)
/// finds it. The path is not secret.
pub const META_KEY_FILE: &str = "payload_key_file";
/// The environment variable holding the passphrase of a sealed local key file.
pub const PASSPHRASE_ENV: &str = "PHIGUARD_KEY_PASSPHRASE";
/// The encryption scheme of payloads: field envelopes (`pgf1.`).
pub const SCHEME: &str = "pgf1";

const KEY_CHECK_PLAINTEXT: &[u8] = b"phiguard-audit payload key check v1";

/// A key provider shared by the store (a newtype so that `FieldCipher` can own it).
#[derive(Clone)]
pub(crate) struct Shared(pub(crate) Arc<dyn KeyProvider>);

impl KeyProvider for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn current(&self) -> Result<KekRef, CryptoError> {
        self.0.current()
    }
    fn wrap(&self, k: &DataKey, c: &EncryptionContext) -> Result<WrappedKey, CryptoError> {
        self.0.wrap(k, c)
    }
    fn unwrap(&self, w: &WrappedKey, c: &EncryptionContext) -> Result<DataKey, CryptoError> {
        self.0.unwrap(w, c)
    }
    fn generate_data_key(
        &self,
        c: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        self.0.generate_data_key(c)
    }
    fn is_current(&self, w: &WrappedKey) -> Result<bool, CryptoError> {
        self.0.is_current(w)
    }
}

/// Seals and opens record payloads. `Debug` names the provider only.
pub struct PayloadCipher {
    fields: FieldCipher<Shared>,
}

impl std::fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadCipher")
            .field("provider", &self.fields.provider().name())
            .finish()
    }
}

/// True when a stored payload is encrypted.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(FIELD_PREFIX)
}

impl PayloadCipher {
    /// A cipher over `provider`.
    pub fn new(provider: Arc<dyn KeyProvider>) -> Result<PayloadCipher, AuditError> {
        let base = EncryptionContext::from_pairs([("purpose", "phiguard-audit")])?;
        Ok(PayloadCipher {
            fields: FieldCipher::new(Shared(provider), base)?,
        })
    }

    /// Encrypts the canonical record stored at leaf `index`.
    pub fn seal(&self, index: u64, record: &str) -> Result<String, AuditError> {
        let row = index.to_string();
        Ok(self
            .fields
            .encrypt(&FieldRef::new("leaves", "payload", &row), record.as_bytes())?)
    }

    /// Encrypts a canonical record held in frame `seq` of audit journal `journal` (see
    /// [`crate::journal`]): bound to that journal and position.
    pub fn seal_journal(
        &self,
        journal: &str,
        seq: u64,
        record: &str,
    ) -> Result<String, AuditError> {
        let row = seq.to_string();
        Ok(self
            .fields
            .encrypt(&FieldRef::new("journal", journal, &row), record.as_bytes())?)
    }

    /// Decrypts frame `seq` of audit journal `journal`.
    pub fn open_journal(
        &self,
        journal: &str,
        seq: u64,
        stored: &str,
    ) -> Result<String, AuditError> {
        let row = seq.to_string();
        let plain = self
            .fields
            .decrypt(&FieldRef::new("journal", journal, &row), stored)
            .map_err(|_| {
                AuditError::Corrupt(format!(
                    "record {seq} of audit journal {journal} does not decrypt (wrong key or altered)"
                ))
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| {
            AuditError::Corrupt(format!(
                "record {seq} of audit journal {journal} is not UTF-8"
            ))
        })
    }

    /// Decrypts the payload stored at leaf `index`.
    pub fn open(&self, index: u64, stored: &str) -> Result<String, AuditError> {
        let row = index.to_string();
        let plain = self
            .fields
            .decrypt(&FieldRef::new("leaves", "payload", &row), stored)
            .map_err(|source| AuditError::Decrypt { index, source })?;
        String::from_utf8(plain.to_vec()).map_err(|_| {
            AuditError::Corrupt(format!("record {index} does not decrypt to UTF-8 text"))
        })
    }

    /// Moves the payload stored at leaf `index` to the provider's current KEK version (the
    /// data key is unwrapped and wrapped again; the ciphertext is unchanged). Returns the new
    /// stored string, or `None` when it was already current.
    pub fn rewrap(&self, index: u64, stored: &str) -> Result<Option<String>, AuditError> {
        let row = index.to_string();
        self.rewrap_at(&FieldRef::new("leaves", "payload", &row), stored)
            .map_err(|source| AuditError::Decrypt { index, source })
    }

    /// As [`PayloadCipher::rewrap`], for the stored key check.
    pub fn rewrap_key_check(&self, stored: &str) -> Result<Option<String>, AuditError> {
        Ok(self.rewrap_at(&FieldRef::new("meta", META_KEY_CHECK, "0"), stored)?)
    }

    fn rewrap_at(&self, field: &FieldRef<'_>, stored: &str) -> Result<Option<String>, CryptoError> {
        if self.fields.is_current(stored)? {
            return Ok(None);
        }
        let (_, new) = self.fields.rewrap_field(field, stored)?;
        Ok(Some(new))
    }

    /// The key provider.
    pub fn provider(&self) -> Arc<dyn KeyProvider> {
        self.fields.provider().0.clone()
    }

    /// The provider's current KEK (id and version).
    pub fn current_kek(&self) -> Result<phiguard_crypto::KekRef, AuditError> {
        Ok(self.fields.provider().current()?)
    }

    /// A sealed known value, stored once in `meta`.
    pub fn key_check(&self) -> Result<String, AuditError> {
        Ok(self.fields.encrypt(
            &FieldRef::new("meta", META_KEY_CHECK, "0"),
            KEY_CHECK_PLAINTEXT,
        )?)
    }

    /// True when `stored` (from [`PayloadCipher::key_check`]) opens under this key.
    pub fn matches(&self, stored: &str) -> bool {
        self.fields
            .decrypt(&FieldRef::new("meta", META_KEY_CHECK, "0"), stored)
            .is_ok_and(|p| &p[..] == KEY_CHECK_PLAINTEXT)
    }
}

/// Opens the local key file at `path` (sealed files take their passphrase from
/// [`PASSPHRASE_ENV`]); with `create`, creates it (unsealed, or sealed with that passphrase)
/// when it does not exist. Returns the provider and whether the file was created.
pub fn local_key(path: &Path, create: bool) -> Result<(Arc<dyn KeyProvider>, bool), AuditError> {
    let pass = std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretString::from);
    if create {
        let (kf, origin) = LocalKeyFile::open_or_create(path, pass.as_ref(), &SealParams::DEFAULT)?;
        Ok((Arc::new(kf), origin == phiguard_crypto::KeyOrigin::Created))
    } else {
        Ok((Arc::new(LocalKeyFile::open(path, pass.as_ref())?), false))
    }
}
