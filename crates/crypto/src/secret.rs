//! Secret key material. Each type keeps its bytes in a [`secrecy::SecretBox`] (zeroed on
//! drop), and its `Debug` and `Display` print `[REDACTED]`, never the bytes.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

use crate::CryptoError;

/// Length of every symmetric key here: 256 bits.
pub const KEY_LEN: usize = 32;

/// Fills `buf` from the operating system's random number generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::getrandom(buf).map_err(|_| CryptoError::Random)
}

fn random_key() -> Result<SecretBox<[u8; KEY_LEN]>, CryptoError> {
    let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
    random_bytes(secrecy::ExposeSecretMut::expose_secret_mut(&mut key))?;
    Ok(key)
}

/// A per-message data key: 32 random bytes, used once, then wrapped by a KEK.
pub struct DataKey(SecretBox<[u8; KEY_LEN]>);

impl DataKey {
    /// Draws a fresh data key from the operating system's random number generator.
    pub fn generate() -> Result<DataKey, CryptoError> {
        Ok(DataKey(random_key()?))
    }

    /// Wraps raw bytes (for providers that receive a data key from a KMS or HSM).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> DataKey {
        DataKey(SecretBox::new(Box::new(bytes)))
    }

    /// Takes 32 bytes from a slice; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(DataKey::from_bytes(arr))
    }

    /// The key bytes, for a key provider to wrap. Do not log, print or store them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// One key-encryption key (KEK) version: 32 bytes held by a key provider.
pub struct KekMaterial {
    bytes: SecretBox<[u8; KEY_LEN]>,
}

impl KekMaterial {
    /// Draws a fresh KEK from the operating system's random number generator.
    pub fn generate() -> Result<KekMaterial, CryptoError> {
        Ok(KekMaterial {
            bytes: random_key()?,
        })
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> KekMaterial {
        KekMaterial {
            bytes: SecretBox::new(Box::new(bytes)),
        }
    }

    /// The key bytes. Do not log, print or store them outside a key file.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        self.bytes.expose_secret()
    }

    /// The KEK's fingerprint: the first 16 hex digits of
    /// SHA-256("phiguard kek fingerprint v1" ‖ key). It names the key without revealing it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose_secret())
    }
}

pub(crate) fn fingerprint(key: &[u8; KEY_LEN]) -> String {
    let mut h = Sha256::new();
    h.update(b"phiguard kek fingerprint v1");
    h.update(key);
    hex::encode(&h.finalize()[..8])
}

impl fmt::Debug for KekMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KekMaterial([REDACTED])")
    }
}

impl fmt::Display for KekMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print_their_bytes() {
        let dk = DataKey::from_bytes([0xab; KEY_LEN]);
        let kek = KekMaterial::from_bytes([0xcd; KEY_LEN]);
        for shown in [
            format!("{dk:?}"),
            format!("{dk}"),
            format!("{kek:?}"),
            format!("{kek}"),
            format!("{dk:#?}"),
        ] {
            assert!(shown.contains("REDACTED"), "{shown}");
            assert!(!shown.contains("ab") && !shown.contains("cd"), "{shown}");
            assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
        }
    }

    #[test]
    fn fingerprints_differ_per_key_and_are_stable() {
        let a = KekMaterial::from_bytes([1; KEY_LEN]);
        let b = KekMaterial::from_bytes([2; KEY_LEN]);
        assert_eq!(a.fingerprint().len(), 16);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            KekMaterial::from_bytes([1; KEY_LEN]).fingerprint()
        );
    }

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
