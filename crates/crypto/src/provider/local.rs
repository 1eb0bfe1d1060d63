//! The local key file: the embedded default key provider. One JSON file (default
//! `$PHIGUARD_HOME/keys/kek.json`, mode 0600 in a 0700 folder) holds versioned KEKs of 32
//! random bytes each. Exactly one version is current (new data keys are wrapped under it);
//! older versions stay to unwrap older data until they are revoked.
//!
//! The file may be *sealed*: each KEK is then stored encrypted (AES-256-GCM) under a key
//! derived from a passphrase with Argon2id, whose parameters and salt are stored in the file.
//! Metadata (versions, which is current, revocations, fingerprints) stays readable without the
//! passphrase, so `status` and `revoke` work on a sealed file. The file's integrity rests on
//! its permissions, as for any key file: whoever can write it can also delete it.
//!
//! Every change (create, rotate, revoke, seal, unseal) happens under an exclusive lock on
//! `<file>.lock` and is written to a temporary file that is renamed over the key file, so
//! concurrent readers see the old or the new file, never a mix, and two rotations in two
//! processes never lose a version.
//!
//! A long-running process sees revocations and rotations made by others after
//! [`LocalKeyFile::reload`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::aead::{Cipher, NONCE_LEN, TAG_LEN};
use crate::provider::{KekRef, KeyProvider, WrappedKey};
use crate::secret::{KEY_LEN, KekMaterial, fingerprint, random_bytes};
use crate::{CryptoError, DataKey, EncryptionContext};

/// The provider name stored in ciphertext headers.
pub const PROVIDER_NAME: &str = "local";
/// The key file's name inside `$PHIGUARD_HOME/keys/`.
pub const KEY_FILE_NAME: &str = "kek.json";
/// The `format` field of the file.
pub const FORMAT: &str = "phiguard-keyfile/1";

const WRAP_LABEL: &[u8] = b"phiguard local kek wrap v1";
const SEAL_LABEL: &[u8] = b"phiguard local key file seal v1";
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const SEAL_SALT_LEN: usize = 16;

/// The default key file under a phiguard home folder: `HOME/keys/kek.json`.
pub fn default_path(phiguard_home: &Path) -> PathBuf {
    phiguard_home.join("keys").join(KEY_FILE_NAME)
}

/// Argon2id parameters for sealing a key file with a passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl SealParams {
    /// RFC 9106's second recommended option, on one lane: 64 MiB, 3 passes.
    pub const DEFAULT: SealParams = SealParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };
    /// The cheapest accepted for a new seal (OWASP's last Argon2id option: 7 MiB, 5 passes).
    pub const MINIMUM: SealParams = SealParams {
        m_cost_kib: 7 * 1024,
        t_cost: 5,
        p_cost: 1,
    };
    const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    const MAX_T_COST: u32 = 64;
    const MAX_P_COST: u32 = 16;

    /// Checks parameters for a new seal: at least OWASP's minimum cost (memory ≥ 7 MiB and
    /// memory × passes ≥ 35 MiB), and at most 4 GiB, 64 passes, 16 lanes.
    pub fn validate_new(&self) -> Result<(), CryptoError> {
        self.validate_bounds()?;
        let floor = SealParams::MINIMUM;
        if self.m_cost_kib < floor.m_cost_kib
            || u64::from(self.m_cost_kib) * u64::from(self.t_cost)
                < u64::from(floor.m_cost_kib) * u64::from(floor.t_cost)
        {
            return Err(CryptoError::SealParams(format!(
                "memory must be at least {} KiB and memory × passes at least {} KiB",
                floor.m_cost_kib,
                floor.m_cost_kib * floor.t_cost
            )));
        }
        Ok(())
    }

    fn validate_bounds(&self) -> Result<(), CryptoError> {
        if self.p_cost == 0 || self.p_cost > Self::MAX_P_COST {
            return Err(CryptoError::SealParams(format!(
                "lanes must be 1..={}",
                Self::MAX_P_COST
            )));
        }
        if self.t_cost == 0 || self.t_cost > Self::MAX_T_COST {
            return Err(CryptoError::SealParams(format!(
                "passes must be 1..={}",
                Self::MAX_T_COST
            )));
        }
        if self.m_cost_kib < 8 * self.p_cost || self.m_cost_kib > Self::MAX_M_COST_KIB {
            return Err(CryptoError::SealParams(format!(
                "memory must be {}..={} KiB",
                8 * self.p_cost,
                Self::MAX_M_COST_KIB
            )));
        }
        Ok(())
    }
}

impl Default for SealParams {
    fn default() -> Self {
        SealParams::DEFAULT
    }
}

/// Whether a key file was read or created by the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Created,
}

/// One KEK version as `status` shows it (no key bytes).
#[derive(Clone, Debug, Serialize)]
pub struct VersionStatus {
    pub version: u32,
    pub created: String,
    pub revoked: Option<String>,
    pub fingerprint: String,
    pub current: bool,
}

/// A key file's state as `status` shows it (no key bytes; readable without the passphrase).
#[derive(Clone, Debug, Serialize)]
pub struct KeyFileStatus {
    pub path: PathBuf,
    pub id: String,
    pub current: u32,
    pub sealed: bool,
    pub seal: Option<SealParams>,
    /// True when only the owner can read the file (mode 0600 or stricter).
    pub private: bool,
    pub versions: Vec<VersionStatus>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    format: String,
    id: String,
    current: u32,
    #[serde(default)]
    seal: Option<SealRepr>,
    keys: Vec<KeyRepr>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealRepr {
    kdf: String,
    argon2_version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRepr {
    version: u32,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked: Option<String>,
    fingerprint: String,
    /// Base64 of the 32 key bytes (unsealed files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Zeroizing<String>>,
    /// Base64 of nonce ‖ AES-256-GCM(seal key, key bytes) ‖ tag (sealed files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_key: Option<String>,
}

impl SealRepr {
    fn params(&self) -> SealParams {
        SealParams {
            m_cost_kib: self.m_cost_kib,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }
}

/// The local key file provider. Holds the unsealed KEKs in memory (zeroed on drop).
pub struct LocalKeyFile {
    path: PathBuf,
    repr: FileRepr,
    keys: BTreeMap<u32, KekMaterial>,
    /// The passphrase-derived key of a sealed file, kept to seal new versions on rotate.
    seal_key: Option<Zeroizing<[u8; KEY_LEN]>>,
}

impl std::fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyFile")
            .field("path", &self.path)
            .field("id", &self.repr.id)
            .field("current", &self.repr.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("sealed", &self.repr.seal.is_some())
            .field("keys", &"[REDACTED]")
            .finish()
    }
}

impl LocalKeyFile {
    /// Opens an existing key file. A sealed file needs `passphrase`.
    pub fn open(
        path: &Path,
        passphrase: Option<&SecretString>,
    ) -> Result<LocalKeyFile, CryptoError> {
        let repr = read_repr(path)?;
        LocalKeyFile::from_repr(path, repr, passphrase)
    }

    /// Opens the key file, or creates it with one fresh KEK version when it does not exist.
    /// A new file is sealed with `passphrase` when one is given (with `params`), and written
    /// unsealed otherwise.
    pub fn open_or_create(
        path: &Path,
        passphrase: Option<&SecretString>,
        params: &SealParams,
    ) -> Result<(LocalKeyFile, KeyOrigin), CryptoError> {
        if path.exists() {
            return Ok((LocalKeyFile::open(path, passphrase)?, KeyOrigin::Loaded));
        }
        create_private_dir(parent_dir(path))?;
        let _lock = lock(path)?;
        if path.exists() {
            return Ok((LocalKeyFile::open(path, passphrase)?, KeyOrigin::Loaded));
        }
        Ok((
            LocalKeyFile::create_locked(path, passphrase, params)?,
            KeyOrigin::Created,
        ))
    }

    /// Creates a new key file; fails if one exists.
    pub fn create(
        path: &Path,
        passphrase: Option<&SecretString>,
        params: &SealParams,
    ) -> Result<LocalKeyFile, CryptoError> {
        create_private_dir(parent_dir(path))?;
        let _lock = lock(path)?;
        if path.exists() {
            return Err(CryptoError::KeyFileState(format!(
                "key file {} already exists",
                path.display()
            )));
        }
        LocalKeyFile::create_locked(path, passphrase, params)
    }

    fn create_locked(
        path: &Path,
        passphrase: Option<&SecretString>,
        params: &SealParams,
    ) -> Result<LocalKeyFile, CryptoError> {
        let mut id_bytes = [0u8; 8];
        random_bytes(&mut id_bytes)?;
        let mut file = LocalKeyFile {
            path: path.to_path_buf(),
            repr: FileRepr {
                format: FORMAT.to_string(),
                id: format!("kf-{}", hex::encode(id_bytes)),
                current: 1,
                seal: None,
                keys: Vec::new(),
            },
            keys: BTreeMap::new(),
            seal_key: None,
        };
        if let Some(p) = passphrase {
            params.validate_new()?;
            let (seal, key) = new_seal(p, params)?;
            file.repr.seal = Some(seal);
            file.seal_key = Some(key);
        }
        file.add_version(1)?;
        write_repr(path, &file.repr)?;
        Ok(file)
    }

    fn from_repr(
        path: &Path,
        repr: FileRepr,
        passphrase: Option<&SecretString>,
    ) -> Result<LocalKeyFile, CryptoError> {
        let seal_key = match &repr.seal {
            None => None,
            Some(seal) => {
                let p = passphrase.ok_or_else(|| CryptoError::PassphraseRequired {
                    path: path.to_path_buf(),
                })?;
                Some(derive_seal_key(path, p, seal)?)
            }
        };
        let mut keys = BTreeMap::new();
        for (i, k) in repr.keys.iter().enumerate() {
            let material = match (&k.key, &k.sealed_key, &seal_key) {
                (Some(b64), None, None) => decode_plain_key(path, k.version, b64)?,
                (None, Some(sealed), Some(seal_key)) => {
                    match open_sealed_key(&repr.id, k.version, sealed, seal_key) {
                        Some(m) => m,
                        None if i == 0 => {
                            return Err(CryptoError::WrongPassphrase {
                                path: path.to_path_buf(),
                            });
                        }
                        None => {
                            return Err(malformed(
                                path,
                                format!("the sealed key of version {} does not open", k.version),
                            ));
                        }
                    }
                }
                _ => {
                    return Err(malformed(
                        path,
                        format!(
                            "version {} must have `key` when unsealed, `sealed_key` when sealed",
                            k.version
                        ),
                    ));
                }
            };
            if material.fingerprint() != k.fingerprint {
                return Err(malformed(
                    path,
                    format!("version {} does not match its fingerprint", k.version),
                ));
            }
            keys.insert(k.version, material);
        }
        Ok(LocalKeyFile {
            path: path.to_path_buf(),
            repr,
            keys,
            seal_key,
        })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key file's id (the `id` of every [`KekRef`] it issues).
    pub fn id(&self) -> &str {
        &self.repr.id
    }

    /// True when the KEKs are stored sealed with a passphrase.
    pub fn is_sealed(&self) -> bool {
        self.repr.seal.is_some()
    }

    /// The state as `status` shows it.
    pub fn status(&self) -> KeyFileStatus {
        status_of(&self.path, &self.repr)
    }

    /// Reads the file again: picks up rotations and revocations made by other processes.
    /// Needs no passphrase when the file's seal has not changed since it was opened.
    pub fn reload(&mut self) -> Result<(), CryptoError> {
        let repr = read_repr(&self.path)?;
        self.merge(repr)
    }

    /// Takes `repr` (just read from disk, under the lock or not) as the new state, decoding
    /// the versions this instance does not hold yet.
    fn merge(&mut self, repr: FileRepr) -> Result<(), CryptoError> {
        if repr.id != self.repr.id {
            return Err(CryptoError::KeyFileState(format!(
                "key file {} was replaced by another key file ({} instead of {})",
                self.path.display(),
                repr.id,
                self.repr.id
            )));
        }
        let seal_changed = match (&repr.seal, &self.repr.seal) {
            (None, None) => false,
            (Some(a), Some(b)) => a.salt != b.salt || a.params() != b.params(),
            _ => true,
        };
        if seal_changed {
            return Err(CryptoError::KeyFileState(format!(
                "key file {} was sealed or unsealed by another process; open it again",
                self.path.display()
            )));
        }
        for k in &repr.keys {
            if self.keys.contains_key(&k.version) {
                continue;
            }
            let material = match (&k.key, &k.sealed_key, &self.seal_key) {
                (Some(b64), None, None) => decode_plain_key(&self.path, k.version, b64)?,
                (None, Some(sealed), Some(seal_key)) => {
                    open_sealed_key(&repr.id, k.version, sealed, seal_key).ok_or_else(|| {
                        malformed(
                            &self.path,
                            format!("the sealed key of version {} does not open", k.version),
                        )
                    })?
                }
                _ => {
                    return Err(malformed(
                        &self.path,
                        format!("version {} has no usable key", k.version),
                    ));
                }
            };
            if material.fingerprint() != k.fingerprint {
                return Err(malformed(
                    &self.path,
                    format!("version {} does not match its fingerprint", k.version),
                ));
            }
            self.keys.insert(k.version, material);
        }
        self.repr = repr;
        Ok(())
    }

    fn add_version(&mut self, version: u32) -> Result<(), CryptoError> {
        let material = KekMaterial::generate()?;
        let (key, sealed_key) = match &self.seal_key {
            Some(seal_key) => (
                None,
                Some(seal_one(&self.repr.id, version, &material, seal_key)?),
            ),
            None => (
                Some(Zeroizing::new(B64.encode(material.expose_secret()))),
                None,
            ),
        };
        self.repr.keys.push(KeyRepr {
            version,
            created: now(),
            revoked: None,
            fingerprint: material.fingerprint(),
            key,
            sealed_key,
        });
        self.repr.current = version;
        self.keys.insert(version, material);
        Ok(())
    }

    /// Adds a new KEK version and makes it current at once: data encrypted from now on is
    /// wrapped under it. Older versions stay for decryption until revoked.
    pub fn rotate(&mut self) -> Result<KekRef, CryptoError> {
        let _lock = lock(&self.path)?;
        let repr = read_repr(&self.path)?;
        self.merge(repr)?;
        let next = self
            .repr
            .keys
            .iter()
            .map(|k| k.version)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| CryptoError::KeyFileState("no KEK versions left".into()))?;
        self.add_version(next)?;
        write_repr(&self.path, &self.repr)?;
        Ok(KekRef {
            id: self.repr.id.clone(),
            version: next,
        })
    }

    /// Marks `version` revoked: any data key wrapped under it fails to unwrap from now on
    /// (in this process at once, in others after they reload). The current version cannot be
    /// revoked: rotate first. Revoking a revoked version changes nothing. Needs no passphrase.
    /// Returns false when the version was already revoked.
    pub fn revoke(path: &Path, version: u32) -> Result<bool, CryptoError> {
        let _lock = lock(path)?;
        let mut repr = read_repr(path)?;
        if version == repr.current {
            return Err(CryptoError::KeyFileState(format!(
                "version {version} is the current KEK version: run `phiguard keys rotate` first, \
                 then rewrap the data, then revoke it"
            )));
        }
        let id = repr.id.clone();
        let entry = repr
            .keys
            .iter_mut()
            .find(|k| k.version == version)
            .ok_or_else(|| CryptoError::UnknownKek {
                found: KekRef { id, version },
                provider: format!("key file {}", path.display()),
            })?;
        if entry.revoked.is_some() {
            return Ok(false);
        }
        entry.revoked = Some(now());
        write_repr(path, &repr)?;
        Ok(true)
    }

    /// Revokes `version` in this file and in this instance (see [`LocalKeyFile::revoke`]).
    pub fn revoke_version(&mut self, version: u32) -> Result<bool, CryptoError> {
        let changed = LocalKeyFile::revoke(&self.path, version)?;
        self.reload()?;
        Ok(changed)
    }

    /// Seals the KEKs with `passphrase` (Argon2id with `params`). Fails when already sealed.
    pub fn seal(
        &mut self,
        passphrase: &SecretString,
        params: &SealParams,
    ) -> Result<(), CryptoError> {
        params.validate_new()?;
        let _lock = lock(&self.path)?;
        let repr = read_repr(&self.path)?;
        self.merge(repr)?;
        if self.repr.seal.is_some() {
            return Err(CryptoError::KeyFileState(format!(
                "key file {} is already sealed; to change the passphrase, unseal it and seal it again",
                self.path.display()
            )));
        }
        let (seal, seal_key) = new_seal(passphrase, params)?;
        let mut repr = self.repr.clone();
        repr.seal = Some(seal);
        for k in &mut repr.keys {
            let material = self.keys.get(&k.version).ok_or_else(|| {
                malformed(&self.path, format!("version {} has no key", k.version))
            })?;
            k.sealed_key = Some(seal_one(&repr.id, k.version, material, &seal_key)?);
            k.key = None;
        }
        write_repr(&self.path, &repr)?;
        self.repr = repr;
        self.seal_key = Some(seal_key);
        Ok(())
    }

    /// Stores the KEKs unsealed (anyone who can read the file can then use them). Fails when
    /// not sealed.
    pub fn unseal(&mut self) -> Result<(), CryptoError> {
        let _lock = lock(&self.path)?;
        let repr = read_repr(&self.path)?;
        self.merge(repr)?;
        if self.repr.seal.is_none() {
            return Err(CryptoError::KeyFileState(format!(
                "key file {} is not sealed",
                self.path.display()
            )));
        }
        let mut repr = self.repr.clone();
        repr.seal = None;
        for k in &mut repr.keys {
            let material = self.keys.get(&k.version).ok_or_else(|| {
                malformed(&self.path, format!("version {} has no key", k.version))
            })?;
            k.key = Some(Zeroizing::new(B64.encode(material.expose_secret())));
            k.sealed_key = None;
        }
        write_repr(&self.path, &repr)?;
        self.repr = repr;
        self.seal_key = None;
        Ok(())
    }

    fn kek_ref(&self, version: u32) -> KekRef {
        KekRef {
            id: self.repr.id.clone(),
            version,
        }
    }
}

/// The state of the key file at `path`, read without the passphrase.
pub fn status(path: &Path) -> Result<KeyFileStatus, CryptoError> {
    let repr = read_repr(path)?;
    Ok(status_of(path, &repr))
}

fn status_of(path: &Path, repr: &FileRepr) -> KeyFileStatus {
    KeyFileStatus {
        path: path.to_path_buf(),
        id: repr.id.clone(),
        current: repr.current,
        sealed: repr.seal.is_some(),
        seal: repr.seal.as_ref().map(SealRepr::params),
        private: is_private(path),
        versions: repr
            .keys
            .iter()
            .map(|k| VersionStatus {
                version: k.version,
                created: k.created.clone(),
                revoked: k.revoked.clone(),
                fingerprint: k.fingerprint.clone(),
                current: k.version == repr.current,
            })
            .collect(),
    }
}

impl KeyProvider for LocalKeyFile {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn current(&self) -> Result<KekRef, CryptoError> {
        Ok(self.kek_ref(self.repr.current))
    }

    fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError> {
        let version = self.repr.current;
        let kek = self.keys.get(&version).ok_or_else(|| {
            malformed(&self.path, format!("current version {version} has no key"))
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let aad = wrap_aad(&self.repr.id, version, context)?;
        let sealed =
            Cipher::new(kek.expose_secret()).seal(&nonce, &aad, data_key.expose_secret())?;
        let mut blob = Vec::with_capacity(WRAPPED_LEN);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(WrappedKey {
            provider: PROVIDER_NAME.to_string(),
            kek: self.kek_ref(version),
            blob,
        })
    }

    fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, CryptoError> {
        if wrapped.provider != PROVIDER_NAME {
            return Err(CryptoError::WrongProvider {
                found: wrapped.provider.clone(),
                expected: PROVIDER_NAME.to_string(),
            });
        }
        let unknown = || CryptoError::UnknownKek {
            found: wrapped.kek.clone(),
            provider: format!("key file {} ({})", self.path.display(), self.repr.id),
        };
        if wrapped.kek.id != self.repr.id {
            return Err(unknown());
        }
        let entry = self
            .repr
            .keys
            .iter()
            .find(|k| k.version == wrapped.kek.version)
            .ok_or_else(unknown)?;
        if entry.revoked.is_some() {
            return Err(CryptoError::Revoked {
                kek: wrapped.kek.clone(),
            });
        }
        let kek = self.keys.get(&wrapped.kek.version).ok_or_else(unknown)?;
        if wrapped.blob.len() != WRAPPED_LEN {
            return Err(CryptoError::Authentication(
                "the wrapped data key has the wrong length",
            ));
        }
        let (nonce, sealed) = wrapped.blob.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| {
            CryptoError::Authentication("the wrapped data key has the wrong length")
        })?;
        let aad = wrap_aad(&self.repr.id, wrapped.kek.version, context)?;
        let plain = Zeroizing::new(
            Cipher::new(kek.expose_secret())
                .open(nonce, &aad, sealed)
                .map_err(|_| {
                    CryptoError::Authentication(
                        "the wrapped data key does not verify under its KEK \
                         (altered key section, or a different encryption context)",
                    )
                })?,
        );
        DataKey::from_slice(&plain).ok_or(CryptoError::Authentication(
            "the unwrapped data key has the wrong length",
        ))
    }
}

fn wrap_aad(id: &str, version: u32, context: &EncryptionContext) -> Result<Vec<u8>, CryptoError> {
    let ctx = context.canonical_bytes()?;
    let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 1 + id.len() + 4 + ctx.len());
    aad.extend_from_slice(WRAP_LABEL);
    aad.push(u8::try_from(id.len()).map_err(|_| CryptoError::Malformed("KEK id too long"))?);
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(&ctx);
    Ok(aad)
}

fn seal_aad(id: &str, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_LABEL.len() + 1 + id.len() + 4);
    aad.extend_from_slice(SEAL_LABEL);
    aad.push(id.len().min(255) as u8);
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn seal_one(
    id: &str,
    version: u32,
    material: &KekMaterial,
    seal_key: &[u8; KEY_LEN],
) -> Result<String, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let sealed =
        Cipher::new(seal_key).seal(&nonce, &seal_aad(id, version), material.expose_secret())?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&sealed);
    Ok(B64.encode(blob))
}

fn open_sealed_key(
    id: &str,
    version: u32,
    sealed_b64: &str,
    seal_key: &[u8; KEY_LEN],
) -> Option<KekMaterial> {
    let blob = B64.decode(sealed_b64).ok()?;
    if blob.len() != WRAPPED_LEN {
        return None;
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().ok()?;
    let plain = Zeroizing::new(
        Cipher::new(seal_key)
            .open(nonce, &seal_aad(id, version), sealed)
            .ok()?,
    );
    let bytes: [u8; KEY_LEN] = plain.as_slice().try_into().ok()?;
    Some(KekMaterial::from_bytes(bytes))
}

fn decode_plain_key(path: &Path, version: u32, b64: &str) -> Result<KekMaterial, CryptoError> {
    let raw = Zeroizing::new(
        B64.decode(b64)
            .map_err(|_| malformed(path, format!("the key of version {version} is not base64")))?,
    );
    let bytes: [u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| {
        malformed(
            path,
            format!("the key of version {version} is not 32 bytes"),
        )
    })?;
    Ok(KekMaterial::from_bytes(bytes))
}

fn new_seal(
    passphrase: &SecretString,
    params: &SealParams,
) -> Result<(SealRepr, Zeroizing<[u8; KEY_LEN]>), CryptoError> {
    let mut salt = [0u8; SEAL_SALT_LEN];
    random_bytes(&mut salt)?;
    let key = argon2id(passphrase, &salt, params)?;
    Ok((
        SealRepr {
            kdf: "argon2id".to_string(),
            argon2_version: 0x13,
            m_cost_kib: params.m_cost_kib,
            t_cost: params.t_cost,
            p_cost: params.p_cost,
            salt: B64.encode(salt),
        },
        key,
    ))
}

fn derive_seal_key(
    path: &Path,
    passphrase: &SecretString,
    seal: &SealRepr,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    if seal.kdf != "argon2id" || seal.argon2_version != 0x13 {
        return Err(malformed(
            path,
            "the seal must be argon2id version 19".into(),
        ));
    }
    seal.params().validate_bounds()?;
    let salt = B64
        .decode(&seal.salt)
        .map_err(|_| malformed(path, "the seal salt is not base64".into()))?;
    if salt.len() < 8 {
        return Err(malformed(path, "the seal salt is too short".into()));
    }
    argon2id(passphrase, &salt, &seal.params())
}

fn argon2id(
    passphrase: &SecretString,
    salt: &[u8],
    params: &SealParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let pass = passphrase.expose_secret();
    if pass.is_empty() {
        return Err(CryptoError::KeyFileState("the passphrase is empty".into()));
    }
    let p = argon2::Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(KEY_LEN),
    )
    .map_err(|e| CryptoError::SealParams(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(pass.as_bytes(), salt, out.as_mut())
        .map_err(|e| CryptoError::SealParams(e.to_string()))?;
    Ok(out)
}

fn malformed(path: &Path, reason: String) -> CryptoError {
    CryptoError::KeyFileMalformed {
        path: path.to_path_buf(),
        reason,
    }
}

fn read_repr(path: &Path) -> Result<FileRepr, CryptoError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CryptoError::KeyFileMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(CryptoError::io(format!(
                "cannot read key file {}",
                path.display()
            ))(e));
        }
    };
    // serde_json's messages name a line and column, never the content.
    let repr: FileRepr = serde_json::from_str(&text).map_err(|e| {
        malformed(
            path,
            format!("not a key file (line {}, column {})", e.line(), e.column()),
        )
    })?;
    if repr.format != FORMAT {
        return Err(malformed(
            path,
            format!("unknown format (this build reads {FORMAT})"),
        ));
    }
    if repr.keys.is_empty() {
        return Err(malformed(path, "it holds no KEK versions".into()));
    }
    if repr.id.is_empty() || repr.id.len() > 255 {
        return Err(malformed(path, "its id must be 1..=255 bytes".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for k in &repr.keys {
        if k.version == 0 || !seen.insert(k.version) {
            return Err(malformed(
                path,
                format!("version {} is zero or repeated", k.version),
            ));
        }
    }
    match repr.keys.iter().find(|k| k.version == repr.current) {
        None => {
            return Err(malformed(
                path,
                format!("the current version {} is not in the file", repr.current),
            ));
        }
        Some(k) if k.revoked.is_some() => {
            return Err(malformed(
                path,
                format!("the current version {} is revoked", repr.current),
            ));
        }
        Some(_) => {}
    }
    Ok(repr)
}

fn write_repr(path: &Path, repr: &FileRepr) -> Result<(), CryptoError> {
    let err = || CryptoError::io(format!("cannot write key file {}", path.display()));
    let mut json = Zeroizing::new(serde_json::to_vec_pretty(repr).map_err(|e| {
        CryptoError::io(format!("cannot write key file {}", path.display()))(e.into())
    })?);
    json.push(b'\n');
    let dir = parent_dir(path);
    create_private_dir(dir)?;
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".kek.json.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err())?;
    tmp.write_all(&json).map_err(err())?;
    tmp.as_file().sync_all().map_err(err())?;
    tmp.persist(path).map_err(|e| err()(e.error))?;
    sync_dir(dir);
    Ok(())
}

fn lock(path: &Path) -> Result<File, CryptoError> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&lock_path).map_err(CryptoError::io(format!(
        "cannot open lock file {}",
        lock_path.display()
    )))?;
    file.lock().map_err(CryptoError::io(format!(
        "cannot lock {}",
        lock_path.display()
    )))?;
    Ok(file)
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CryptoError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(CryptoError::io(format!(
        "cannot create folder {}",
        dir.display()
    )))
}

pub(crate) fn sync_dir(dir: &Path) {
    // Makes the rename durable; best effort (not every platform can open a folder).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// True when only the owner can read or write `path` (always true off Unix).
pub fn is_private(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 == 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A fingerprint for raw bytes (tests compare it with `status`).
#[doc(hidden)]
pub fn fingerprint_of(bytes: &[u8; KEY_LEN]) -> String {
    fingerprint(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_params_floor() {
        assert!(SealParams::DEFAULT.validate_new().is_ok());
        assert!(SealParams::MINIMUM.validate_new().is_ok());
        let cheap = SealParams {
            m_cost_kib: 7 * 1024,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(cheap.validate_new().is_err());
        let huge = SealParams {
            m_cost_kib: u32::MAX,
            t_cost: 3,
            p_cost: 1,
        };
        assert!(huge.validate_new().is_err());
    }

    #[test]
    fn debug_of_the_provider_hides_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.json");
        let kf = LocalKeyFile::create(&path, None, &SealParams::DEFAULT).unwrap();
        let raw = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let key_b64 = v["keys"][0]["key"].as_str().unwrap().to_string();
        let shown = format!("{kf:?}");
        assert!(!shown.contains(&key_b64), "{shown}");
        assert!(shown.contains("REDACTED"));
    }
}
