//! The PKCS#11 key provider: KEKs are AES-256 secret-key objects inside an HSM token (SoftHSM2
//! in tests), and never leave it.
//!
//! - **KEK versions** are separate key objects labelled `<key label>-v<N>`; the highest `N`
//!   on the token is current, and [`Pkcs11Provider::rotate`] generates `N+1` inside the token
//!   (`C_GenerateKey`, `CKM_AES_KEY_GEN`, 32 bytes, `CKA_TOKEN`, `CKA_PRIVATE`,
//!   `CKA_SENSITIVE`, `CKA_EXTRACTABLE=false`).
//! - **Wrapping** is `C_Encrypt`/`C_Decrypt` with `CKM_AES_GCM` (96-bit IV drawn from the OS
//!   random generator for every wrap, 128-bit tag), with associated data
//!   `"phiguard pkcs11 kek wrap v1"` ‖ u8 len ‖ KEK id ‖ be32 version ‖ canonical context. We
//!   use AES-GCM rather than `CKM_AES_KEY_WRAP_PAD` (RFC 5649) because key wrap takes no
//!   associated data: GCM binds the encryption context, KEK id and version to the wrapped key,
//!   as the trait asks, and every HSM we target (SoftHSM2 included) implements it. The blob is
//!   IV (12) ‖ ciphertext (32) ‖ tag (16).
//! - **The user PIN** comes from the caller (see [`pin_from_env_or_file`]: `PHIGUARD_PKCS11_PIN`
//!   or a file); it lives in a [`SecretString`] and is never logged or put in an error.
//!
//! One PKCS#11 module is initialized once per process (`C_Initialize` is process-wide) and
//! shared by every provider that names the same module path; it is never finalized.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::provider::{KekRef, KeyProvider, MAX_KEK_ID, WrappedKey};
use crate::secret::{KEY_LEN, random_bytes};
use crate::{CryptoError, DataKey, EncryptionContext};

/// The provider name stored in ciphertext headers.
pub const PROVIDER_NAME: &str = "pkcs11";
/// The environment variable that holds the token's user PIN.
pub const PIN_ENV: &str = "PHIGUARD_PKCS11_PIN";
/// Debian's SoftHSM2 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

const WRAP_LABEL: &[u8] = b"phiguard pkcs11 kek wrap v1";
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// Where the provider finds its token and KEK.
#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g. [`SOFTHSM2_MODULE`].
    pub module: PathBuf,
    /// The label of the token that holds the KEK.
    pub token_label: String,
    /// The KEK's label; version `N` is the object labelled `<key_label>-v<N>`.
    pub key_label: String,
    /// The token's user PIN (`Debug` prints `[REDACTED]`).
    pub pin: SecretString,
    /// Generate `<key_label>-v1` in the token when no version exists.
    pub create_if_missing: bool,
}

/// The PIN from `file` (its first line) when given, else from `PHIGUARD_PKCS11_PIN`.
pub fn pin_from_env_or_file(file: Option<&Path>) -> Result<SecretString, CryptoError> {
    if let Some(path) = file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(CryptoError::io(
            format!("cannot read PKCS#11 PIN file {}", path.display()),
        ))?);
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(CryptoError::KeyFileState(format!(
                "PKCS#11 PIN file {} is empty",
                path.display()
            )));
        }
        return Ok(SecretString::from(line.to_string()));
    }
    match std::env::var(PIN_ENV) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(CryptoError::KeyFileState(format!(
            "no PKCS#11 PIN: set {PIN_ENV} or give a PIN file"
        ))),
    }
}

/// A KEK held in a PKCS#11 token. See the module documentation.
pub struct Pkcs11Provider {
    _ctx: Pkcs11,
    session: Mutex<Session>,
    module: PathBuf,
    token_label: String,
    key_label: String,
    kek_id: String,
    versions: BTreeMap<u32, ObjectHandle>,
}

impl std::fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("module", &self.module)
            .field("token", &self.token_label)
            .field("key", &self.key_label)
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .field("pin", &"[REDACTED]")
            .finish()
    }
}

/// A PKCS#11 failure as a [`CryptoError`]: what was being done, the module, and the return
/// value's name (never a PIN or key bytes).
fn p11_err(kind: std::io::ErrorKind, what: String) -> CryptoError {
    CryptoError::Io {
        what: "PKCS#11".to_string(),
        source: std::io::Error::new(kind, what),
    }
}

fn rv(e: &P11Error) -> Option<RvError> {
    match e {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

fn call_err(what: &str, e: P11Error) -> CryptoError {
    p11_err(std::io::ErrorKind::Other, format!("{what} failed: {e}"))
}

/// The process-wide initialized module for `path` (PKCS#11 modules are initialized once).
fn module(path: &Path) -> Result<Pkcs11, CryptoError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let modules = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = modules
        .lock()
        .map_err(|_| p11_err(std::io::ErrorKind::Other, "module registry poisoned".into()))?;
    if let Some(ctx) = map.get(path) {
        return Ok(ctx.clone());
    }
    if !path.is_file() {
        return Err(p11_err(
            std::io::ErrorKind::NotFound,
            format!(
                "PKCS#11 module {} does not exist (for SoftHSM2 install the `softhsm2` package; \
                 its module is {SOFTHSM2_MODULE})",
                path.display()
            ),
        ));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        p11_err(
            std::io::ErrorKind::InvalidInput,
            format!(
                "cannot load PKCS#11 module {} (not a PKCS#11 library?): {e}",
                path.display()
            ),
        )
    })?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) => {}
        Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
        Err(e) => {
            return Err(call_err(&format!("C_Initialize of {}", path.display()), e));
        }
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, module: &Path, token_label: &str) -> Result<Slot, CryptoError> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| call_err("C_GetSlotList", e))?;
    let mut seen = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| call_err("C_GetTokenInfo", e))?;
        let label = info.label().trim_end().to_string();
        if label == token_label {
            return Ok(slot);
        }
        seen.push(label);
    }
    Err(p11_err(
        std::io::ErrorKind::NotFound,
        format!(
            "no initialized token labelled `{token_label}` in PKCS#11 module {} (tokens: {})",
            module.display(),
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ),
    ))
}

impl Pkcs11Provider {
    /// Loads the module, logs in to the token with the PIN, and finds the KEK versions
    /// (generating v1 when there is none and `create_if_missing` is set).
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Provider, CryptoError> {
        if config.key_label.is_empty() || config.token_label.is_empty() {
            return Err(CryptoError::KeyFileState(
                "PKCS#11 token and key labels must not be empty".into(),
            ));
        }
        let kek_id = format!("{}/{}", config.token_label, config.key_label);
        if kek_id.len() > MAX_KEK_ID {
            return Err(CryptoError::KeyFileState(format!(
                "PKCS#11 token label + key label are longer than {MAX_KEK_ID} bytes"
            )));
        }
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, &config.module, &config.token_label)?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| call_err("C_OpenSession", e))?;
        let pin = AuthPin::new(config.pin.expose_secret().to_string());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) if matches!(rv(&e), Some(RvError::PinIncorrect | RvError::PinLenRange)) => {
                return Err(p11_err(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "wrong PIN for PKCS#11 token `{}` (C_Login: {})",
                        config.token_label,
                        rv(&e).map(|r| format!("{r:?}")).unwrap_or_default()
                    ),
                ));
            }
            Err(e) if rv(&e) == Some(RvError::PinLocked) => {
                return Err(p11_err(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "the PIN of PKCS#11 token `{}` is locked",
                        config.token_label
                    ),
                ));
            }
            Err(e) => return Err(call_err("C_Login", e)),
        }
        let mut p = Pkcs11Provider {
            _ctx: ctx,
            session: Mutex::new(session),
            module: config.module.clone(),
            token_label: config.token_label.clone(),
            key_label: config.key_label.clone(),
            kek_id,
            versions: BTreeMap::new(),
        };
        p.reload()?;
        if p.versions.is_empty() {
            if !config.create_if_missing {
                return Err(p11_err(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "no KEK labelled `{}-v<N>` on PKCS#11 token `{}` (create one with \
                         `phiguard keys rotate --provider pkcs11`)",
                        p.key_label, p.token_label
                    ),
                ));
            }
            p.generate(1)?;
        }
        Ok(p)
    }

    /// Re-reads which KEK versions the token holds (sees rotations by other processes).
    pub fn reload(&mut self) -> Result<(), CryptoError> {
        let session = self.lock()?;
        let handles = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ])
            .map_err(|e| call_err("C_FindObjects", e))?;
        let prefix = format!("{}-v", self.key_label);
        let mut versions = BTreeMap::new();
        for h in handles {
            let attrs = session
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| call_err("C_GetAttributeValue", e))?;
            for a in attrs {
                if let Attribute::Label(bytes) = a {
                    let Ok(label) = std::str::from_utf8(&bytes) else {
                        continue;
                    };
                    if let Some(v) = label
                        .strip_prefix(&prefix)
                        .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|n| n.parse::<u32>().ok())
                    {
                        versions.insert(v, h);
                    }
                }
            }
        }
        drop(session);
        self.versions = versions;
        Ok(())
    }

    /// Generates KEK version (current + 1) inside the token and makes it current.
    pub fn rotate(&mut self) -> Result<KekRef, CryptoError> {
        self.reload()?;
        let next = self
            .versions
            .keys()
            .next_back()
            .map_or(Some(1), |v| v.checked_add(1))
            .ok_or_else(|| CryptoError::KeyFileState("KEK version overflow".into()))?;
        self.generate(next)?;
        Ok(self.kek_ref(next))
    }

    /// The KEK versions the token holds, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.versions.keys().copied().collect()
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    fn generate(&mut self, version: u32) -> Result<(), CryptoError> {
        let label = format!("{}-v{version}", self.key_label);
        let template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::ValueLen(Ulong::from(32) /* KEY_LEN */),
            Attribute::Label(label.into_bytes()),
        ];
        let handle = self
            .lock()?
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| call_err("C_GenerateKey (AES-256 KEK)", e))?;
        self.versions.insert(version, handle);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Session>, CryptoError> {
        self.session
            .lock()
            .map_err(|_| p11_err(std::io::ErrorKind::Other, "session lock poisoned".into()))
    }

    fn kek_ref(&self, version: u32) -> KekRef {
        KekRef {
            id: self.kek_id.clone(),
            version,
        }
    }

    fn aad(&self, version: u32, context: &EncryptionContext) -> Result<Vec<u8>, CryptoError> {
        let ctx = context.canonical_bytes()?;
        let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 1 + self.kek_id.len() + 4 + ctx.len());
        aad.extend_from_slice(WRAP_LABEL);
        aad.push(
            u8::try_from(self.kek_id.len())
                .map_err(|_| CryptoError::Malformed("KEK id too long"))?,
        );
        aad.extend_from_slice(self.kek_id.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad.extend_from_slice(&ctx);
        Ok(aad)
    }
}

impl KeyProvider for Pkcs11Provider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn current(&self) -> Result<KekRef, CryptoError> {
        self.versions
            .keys()
            .next_back()
            .map(|v| self.kek_ref(*v))
            .ok_or_else(|| CryptoError::KeyFileState("the PKCS#11 token holds no KEK".into()))
    }

    fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError> {
        let kek = self.current()?;
        let handle = *self
            .versions
            .get(&kek.version)
            .ok_or_else(|| CryptoError::KeyFileState("the current KEK has no handle".into()))?;
        let aad = self.aad(kek.version, context)?;
        let mut iv = [0u8; NONCE_LEN];
        random_bytes(&mut iv)?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, &aad, Ulong::from(128))
            .map_err(|e| call_err("CKM_AES_GCM parameters", e))?;
        let sealed = self
            .lock()?
            .encrypt(&Mechanism::AesGcm(params), handle, data_key.expose_secret())
            .map_err(|e| call_err("C_Encrypt (CKM_AES_GCM wrap)", e))?;
        if sealed.len() != KEY_LEN + TAG_LEN {
            return Err(p11_err(
                std::io::ErrorKind::InvalidData,
                format!("C_Encrypt returned {} bytes, not 48", sealed.len()),
            ));
        }
        let mut blob = Vec::with_capacity(WRAPPED_LEN);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&sealed);
        Ok(WrappedKey {
            provider: PROVIDER_NAME.to_string(),
            kek,
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
            provider: format!("PKCS#11 token `{}`", self.token_label),
        };
        if wrapped.kek.id != self.kek_id {
            return Err(unknown());
        }
        let handle = *self
            .versions
            .get(&wrapped.kek.version)
            .ok_or_else(unknown)?;
        if wrapped.blob.len() != WRAPPED_LEN {
            return Err(CryptoError::Authentication(
                "the wrapped data key has the wrong length",
            ));
        }
        let (iv, sealed) = wrapped.blob.split_at(NONCE_LEN);
        let mut iv_param = [0u8; NONCE_LEN];
        iv_param.copy_from_slice(iv);
        let aad = self.aad(wrapped.kek.version, context)?;
        let params = GcmParams::new(&mut iv_param, &aad, Ulong::from(128))
            .map_err(|e| call_err("CKM_AES_GCM parameters", e))?;
        let plain = self
            .lock()?
            .decrypt(&Mechanism::AesGcm(params), handle, sealed)
            .map_err(|e| match rv(&e) {
                Some(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                ) => CryptoError::Authentication(
                    "the wrapped data key does not verify under its PKCS#11 KEK (altered key \
                     section, or a different encryption context)",
                ),
                _ => call_err("C_Decrypt (CKM_AES_GCM unwrap)", e),
            })?;
        let plain = Zeroizing::new(plain);
        DataKey::from_slice(&plain).ok_or(CryptoError::Authentication(
            "the unwrapped data key has the wrong length",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_module_is_a_clear_error() {
        let e = module(Path::new("/nonexistent/libpkcs11.so")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("does not exist") && s.contains("/nonexistent"),
            "{s}"
        );
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let c = Pkcs11Config {
            module: SOFTHSM2_MODULE.into(),
            token_label: "t".into(),
            key_label: "k".into(),
            pin: SecretString::from("123456".to_string()),
            create_if_missing: false,
        };
        let s = format!("{c:?}");
        assert!(!s.contains("123456"), "{s}");
    }
}
