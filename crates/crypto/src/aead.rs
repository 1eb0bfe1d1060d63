//! The AES-256-GCM layer (RustCrypto `aes-gcm`: AES-NI and CLMUL where the CPU has them,
//! constant-time software otherwise). 96-bit nonces, 128-bit tags. Everything in this crate
//! that encrypts goes through [`Cipher`], and the NIST CAVP and Wycheproof known-answer tests
//! in tests/it/kat.rs run against it.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::CryptoError;
use crate::secret::KEY_LEN;

/// AES-GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length (128 bits).
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM key schedule (zeroed on drop).
pub struct Cipher(Aes256Gcm);

impl Cipher {
    /// A cipher under `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Cipher {
        Cipher(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
            .map_err(|_| CryptoError::TooLong)?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place after checking `tag` (in constant time). On failure `buf` is
    /// left as ciphertext and an error is returned.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
            .map_err(|_| CryptoError::Authentication("AES-GCM tag mismatch"))
    }

    /// `ciphertext ‖ tag` of `plaintext`.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = self.seal_in_place(nonce, aad, &mut out)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The plaintext of `ciphertext ‖ tag`, or an error if the tag does not verify.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let split = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::Truncated("shorter than an AES-GCM tag"))?;
        let (ct, tag) = sealed.split_at(split);
        let tag: &[u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| CryptoError::Truncated("shorter than an AES-GCM tag"))?;
        let mut out = ct.to_vec();
        self.open_in_place(nonce, aad, &mut out, tag)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([REDACTED])")
    }
}
