//! phiguard-crypto: envelope encryption for data at rest.
//!
//! - [`envelope`]: AES-256-GCM under a key derived with HKDF-SHA256 from a fresh random data
//!   key per message, with the encryption context bound as associated data and a key
//!   commitment (as in the AWS Encryption SDK's committing suites) checked before decryption.
//! - [`header`]: the versioned binary ciphertext header (layout in docs/encryption.md).
//! - [`provider`]: the [`KeyProvider`] trait that wraps data keys under key-encryption keys,
//!   and the local key file provider ([`LocalKeyFile`]).
//! - [`files`]: rewrapping `*.pgenc` files in place, atomically and resumably.
//!
//! ```
//! use phiguard_crypto::{EncryptionContext, LocalKeyFile, SealParams, decrypt, encrypt};
//!
//! # fn main() -> Result<(), phiguard_crypto::CryptoError> {
//! # let dir = tempfile::tempdir().map_err(phiguard_crypto::CryptoError::io("tempdir"))?;
//! let keys = LocalKeyFile::create(&dir.path().join("kek.json"), None, &SealParams::DEFAULT)?;
//! let ctx = EncryptionContext::from_pairs([("purpose", "vault"), ("tenant", "t1")])?;
//! let sealed = encrypt(&keys, b"note 1", &ctx)?;
//! assert_eq!(decrypt(&keys, &sealed, &ctx)?, b"note 1");
//! let other = EncryptionContext::from_pairs([("purpose", "vault"), ("tenant", "t2")])?;
//! assert!(decrypt(&keys, &sealed, &other).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here logs. Errors name files, key ids and versions, never key bytes or plaintext,
//! and every key type prints `[REDACTED]` for `Debug` and `Display`.

pub mod aead;
pub mod context;
pub mod envelope;
mod error;
pub mod field;
pub mod files;
pub mod header;
pub mod provider;
pub mod secret;
pub mod sigv4;

pub use context::EncryptionContext;
pub use envelope::{
    DecryptInfo, EncryptInfo, EncryptOptions, RewrapOutcome, decrypt, decrypt_stream, encrypt,
    encrypt_stream, encrypt_with, rewrap, rewrap_stream,
};
pub use error::CryptoError;
pub use field::{FieldCipher, FieldRef};
pub use header::Header;
pub use provider::aws_kms::{AwsKmsProvider, KmsClient, KmsClientConfig};
pub use provider::local::{KeyFileStatus, KeyOrigin, LocalKeyFile, SealParams};
pub use provider::pkcs11::{Pkcs11Config, Pkcs11Provider};
pub use provider::{KekRef, KeyProvider, WrappedKey};
/// Passphrases are [`secrecy::SecretString`]s.
pub use secrecy::SecretString;
pub use secret::{DataKey, KekMaterial};
