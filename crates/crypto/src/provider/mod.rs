//! Key providers: whatever holds the key-encryption keys (KEKs) and wraps and unwraps data
//! keys with them. One provider per module: [`local`] (the key file under
//! `$PHIGUARD_HOME/keys/`), [`pkcs11`] (HSMs), [`aws_kms`], [`azure_kv`] and [`gcp_kms`], each
//! behind the same [`KeyProvider`] trait (see docs/encryption.md for how each maps).

pub mod aws_kms;
pub mod azure_kv;
pub mod gcp_kms;
pub(crate) mod http;
pub mod local;
pub mod pkcs11;

use std::fmt;

use crate::{CryptoError, DataKey, EncryptionContext};

/// Most bytes of a provider name, a KEK id, or a wrapped key in a header.
pub const MAX_PROVIDER_NAME: usize = 255;
pub const MAX_KEK_ID: usize = 255;
pub const MAX_WRAPPED_KEY: usize = 4096;

/// Names one version of one KEK: `id` is the provider's key name (a key-file id, a PKCS#11
/// label, a KMS key ARN or resource name) and `version` its version number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekRef {
    pub id: String,
    pub version: u32,
}

impl fmt::Display for KekRef {
    /// `KEK kf-0123abcd v2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KEK {} v{}", self.id, self.version)
    }
}

/// A data key wrapped (encrypted) under a KEK, as stored in a ciphertext header. The blob is
/// provider-specific and opaque; it is not secret without the KEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// The provider's [`KeyProvider::name`] (`local`, `pkcs11`, `aws-kms`, …).
    pub provider: String,
    pub kek: KekRef,
    pub blob: Vec<u8>,
}

/// Holds KEKs and wraps and unwraps data keys with them.
///
/// Contract for implementations:
/// - `wrap` uses the provider's current KEK version, and the returned [`WrappedKey`] names it.
/// - `wrap` and `unwrap` bind `context` where the backend can (as associated data or a KMS
///   encryption context), so a wrapped key moved to a ciphertext with another context fails.
/// - `unwrap` fails with [`CryptoError::Revoked`] for a revoked version, with
///   [`CryptoError::WrongProvider`] or [`CryptoError::UnknownKek`] for a key it does not hold,
///   and with an error (never a wrong key) when the blob was altered.
/// - Errors never include key bytes.
pub trait KeyProvider: Send + Sync {
    /// The short name stored in ciphertext headers: `local`, `pkcs11`, `aws-kms`, ….
    fn name(&self) -> &str;

    /// The KEK version that new data keys are wrapped under.
    fn current(&self) -> Result<KekRef, CryptoError>;

    /// Wraps `data_key` under the current KEK version.
    fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey, CryptoError>;

    /// Unwraps a data key wrapped by this provider.
    fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, CryptoError>;

    /// A fresh data key and its wrapped form. The default draws 32 random bytes and calls
    /// [`wrap`](Self::wrap); a KMS provider overrides it with one `GenerateDataKey` call.
    fn generate_data_key(
        &self,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        let key = DataKey::generate()?;
        let wrapped = self.wrap(&key, context)?;
        Ok((key, wrapped))
    }

    /// True when data wrapped as `wrapped` is already under this provider's current KEK (a
    /// rewrap would change nothing).
    fn is_current(&self, wrapped: &WrappedKey) -> Result<bool, CryptoError> {
        Ok(wrapped.provider == self.name() && wrapped.kek == self.current()?)
    }
}

impl<P: KeyProvider + ?Sized> KeyProvider for &P {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn current(&self) -> Result<KekRef, CryptoError> {
        (**self).current()
    }
    fn wrap(&self, k: &DataKey, c: &EncryptionContext) -> Result<WrappedKey, CryptoError> {
        (**self).wrap(k, c)
    }
    fn unwrap(&self, w: &WrappedKey, c: &EncryptionContext) -> Result<DataKey, CryptoError> {
        (**self).unwrap(w, c)
    }
    fn generate_data_key(
        &self,
        c: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        (**self).generate_data_key(c)
    }
    fn is_current(&self, w: &WrappedKey) -> Result<bool, CryptoError> {
        (**self).is_current(w)
    }
}
