//! Envelope encryption. Each message gets a fresh random 256-bit data key, wrapped by the key
//! provider's current KEK. From the data key and the header's random 32-byte salt, HKDF-SHA256
//! derives two values (as the AWS Encryption SDK's committing suites do):
//!
//! - the payload key: `HKDF-SHA256(salt, data key, "phiguard envelope v1 DERIVEKEY" ‖ alg id)`
//! - the key commitment: `HKDF-SHA256(salt, data key, "phiguard envelope v1 COMMITKEY" ‖ alg id)`
//!
//! The commitment is stored in the header. Decryption recomputes it from the unwrapped data
//! key and compares in constant time *before* any frame is decrypted, so a ciphertext made to
//! decrypt under two different keys ("invisible salamanders") is rejected.
//!
//! The payload is split into frames of `frame_len` bytes (the last may be shorter, or empty
//! for an empty message). Frame *i* is AES-256-GCM under the payload key with nonce
//! `base_nonce XOR (0^7 ‖ be32(i) ‖ last)` and the header's authenticated bytes (which
//! include the canonical encryption context) as associated data. The `last` bit in the nonce
//! makes truncation at a frame boundary and appended frames fail authentication; the counter
//! makes reordering fail. Every frame is authenticated before its plaintext is released.

use std::io::{Read, Write};

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::{Cipher, NONCE_LEN, TAG_LEN};
use crate::header::{
    Algorithm, COMMITMENT_LEN, DEFAULT_FRAME_LEN, Header, MAX_FRAME_LEN, MIN_FRAME_LEN,
    ParsedHeader, SALT_LEN, key_section,
};
use crate::provider::{KekRef, KeyProvider};
use crate::secret::{DataKey, KEY_LEN, random_bytes};
use crate::{CryptoError, EncryptionContext};

const LABEL_DERIVE: &[u8] = b"phiguard envelope v1 DERIVEKEY";
const LABEL_COMMIT: &[u8] = b"phiguard envelope v1 COMMITKEY";

/// Options for encryption.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    /// Plaintext bytes per frame, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`].
    pub frame_len: u32,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        EncryptOptions {
            frame_len: DEFAULT_FRAME_LEN,
        }
    }
}

/// What an encryption did.
#[derive(Clone, Debug)]
pub struct EncryptInfo {
    /// The KEK the data key was wrapped under.
    pub kek: KekRef,
    pub plaintext_len: u64,
    pub ciphertext_len: u64,
}

/// What a decryption found.
#[derive(Clone, Debug)]
pub struct DecryptInfo {
    pub header: Header,
    pub plaintext_len: u64,
}

/// The outcome of a rewrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewrapOutcome {
    /// The data key was already wrapped under the current KEK: nothing was written.
    AlreadyCurrent { kek: KekRef },
    /// The data key was unwrapped and wrapped again under the current KEK.
    Rewrapped { from: KekRef, to: KekRef },
}

/// The keys of one message.
pub(crate) struct MessageKeys {
    cipher: Cipher,
    commitment: [u8; COMMITMENT_LEN],
}

/// Derives the payload key and the key commitment from a data key and a salt.
pub(crate) fn derive(
    data_key: &DataKey,
    salt: &[u8; SALT_LEN],
    algorithm: Algorithm,
) -> Result<MessageKeys, CryptoError> {
    let hk = Hkdf::<Sha256>::new(Some(salt), data_key.expose_secret());
    let alg = algorithm.id().to_be_bytes();
    let mut payload_key = Zeroizing::new([0u8; KEY_LEN]);
    hk.expand_multi_info(&[LABEL_DERIVE, &alg], payload_key.as_mut())
        .map_err(|_| CryptoError::Malformed("HKDF output length"))?;
    let mut commitment = [0u8; COMMITMENT_LEN];
    hk.expand_multi_info(&[LABEL_COMMIT, &alg], &mut commitment)
        .map_err(|_| CryptoError::Malformed("HKDF output length"))?;
    Ok(MessageKeys {
        cipher: Cipher::new(&payload_key),
        commitment,
    })
}

/// The key commitment of `data_key` under `salt`: what a header must hold for that key. For
/// tests and tools that build headers by hand.
pub fn commitment_of(
    data_key: &DataKey,
    salt: &[u8; SALT_LEN],
) -> Result<[u8; COMMITMENT_LEN], CryptoError> {
    Ok(derive(data_key, salt, Algorithm::Aes256GcmHkdfSha256Committed)?.commitment)
}

fn frame_nonce(base: &[u8; NONCE_LEN], counter: u32, last: bool) -> [u8; NONCE_LEN] {
    let mut n = *base;
    for (b, c) in n[7..11].iter_mut().zip(counter.to_be_bytes()) {
        *b ^= c;
    }
    if last {
        n[11] ^= 1;
    }
    n
}

/// Unwraps the data key named by `header` and checks it against the key commitment, in that
/// order, before anything is decrypted.
pub(crate) fn open_keys(
    provider: &dyn KeyProvider,
    header: &Header,
) -> Result<(DataKey, MessageKeys), CryptoError> {
    if header.wrapped.provider != provider.name() {
        return Err(CryptoError::WrongProvider {
            found: header.wrapped.provider.clone(),
            expected: provider.name().to_string(),
        });
    }
    let data_key = provider.unwrap(&header.wrapped, &header.context)?;
    let keys = derive(&data_key, &header.salt, header.algorithm)?;
    if !bool::from(keys.commitment.ct_eq(&header.commitment)) {
        return Err(CryptoError::CommitmentMismatch);
    }
    Ok((data_key, keys))
}

/// Encrypts `plaintext` under a fresh data key wrapped by `provider`, binding `context`.
pub fn encrypt(
    provider: &dyn KeyProvider,
    plaintext: &[u8],
    context: &EncryptionContext,
) -> Result<Vec<u8>, CryptoError> {
    encrypt_with(provider, plaintext, context, &EncryptOptions::default())
}

/// [`encrypt`] with options.
pub fn encrypt_with(
    provider: &dyn KeyProvider,
    plaintext: &[u8],
    context: &EncryptionContext,
    options: &EncryptOptions,
) -> Result<Vec<u8>, CryptoError> {
    let frames = plaintext.len() / options.frame_len.max(1) as usize + 1;
    let mut out = Vec::with_capacity(plaintext.len() + frames * TAG_LEN + 256);
    // A plaintext shorter than a frame needs a buffer of its own size, not a whole (zeroed,
    // then zeroized) frame: a 600-byte audit record would otherwise cost 64 KiB twice over.
    let buf_len = (options.frame_len as usize).min(plaintext.len() + 1);
    encrypt_frames(provider, context, options, plaintext, &mut out, buf_len)?;
    Ok(out)
}

/// Encrypts everything `reader` yields into `writer`, frame by frame (memory use is one
/// frame). A failed call may have written part of a ciphertext: write to a temporary file and
/// rename it into place only on success.
pub fn encrypt_stream<R: Read, W: Write>(
    provider: &dyn KeyProvider,
    context: &EncryptionContext,
    options: &EncryptOptions,
    reader: R,
    writer: W,
) -> Result<EncryptInfo, CryptoError> {
    let buf_len = options.frame_len as usize;
    encrypt_frames(provider, context, options, reader, writer, buf_len)
}

/// [`encrypt_stream`] reading through a buffer of `buf_len` bytes (at most a frame): a smaller
/// one only when the whole plaintext is known to be shorter than `buf_len`, so that the first
/// short read is the last frame, exactly as with a full-frame buffer.
fn encrypt_frames<R: Read, W: Write>(
    provider: &dyn KeyProvider,
    context: &EncryptionContext,
    options: &EncryptOptions,
    reader: R,
    mut writer: W,
    buf_len: usize,
) -> Result<EncryptInfo, CryptoError> {
    if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&options.frame_len) {
        return Err(CryptoError::Malformed("frame length out of range"));
    }
    context.validate()?;
    let (data_key, wrapped) = provider.generate_data_key(context)?;
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt)?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let algorithm = Algorithm::Aes256GcmHkdfSha256Committed;
    let keys = derive(&data_key, &salt, algorithm)?;
    drop(data_key);
    let header = Header {
        algorithm,
        frame_len: options.frame_len,
        salt,
        nonce,
        commitment: keys.commitment,
        context: context.clone(),
        wrapped,
    };
    let aad = header.authenticated_bytes()?;
    let key_bytes = header.key_section_bytes()?;
    let write_err = CryptoError::io("cannot write the ciphertext");
    let mut written = (aad.len() + key_bytes.len()) as u64;
    writer
        .write_all(&aad)
        .and_then(|()| writer.write_all(&key_bytes))
        .map_err(write_err)?;

    let mut input = Lookahead::new(reader);
    let mut buf = Zeroizing::new(vec![0u8; buf_len.clamp(1, options.frame_len as usize)]);
    let mut counter: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let n = input
            .fill(&mut buf)
            .map_err(CryptoError::io("cannot read the plaintext"))?;
        let last = n < buf.len()
            || input
                .at_eof()
                .map_err(CryptoError::io("cannot read the plaintext"))?;
        let tag = keys.cipher.seal_in_place(
            &frame_nonce(&header.nonce, counter, last),
            &aad,
            &mut buf[..n],
        )?;
        writer
            .write_all(&buf[..n])
            .and_then(|()| writer.write_all(&tag))
            .map_err(CryptoError::io("cannot write the ciphertext"))?;
        total += n as u64;
        written += (n + TAG_LEN) as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(CryptoError::TooLong)?;
    }
    writer
        .flush()
        .map_err(CryptoError::io("cannot write the ciphertext"))?;
    Ok(EncryptInfo {
        kek: header.wrapped.kek,
        plaintext_len: total,
        ciphertext_len: written,
    })
}

/// Decrypts a whole ciphertext held in memory. The stored encryption context must equal
/// `expected` exactly. Returns the plaintext only if every frame verified.
pub fn decrypt(
    provider: &dyn KeyProvider,
    ciphertext: &[u8],
    expected: &EncryptionContext,
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    // The body is shorter than the whole ciphertext: a buffer of that size is enough (see
    // `encrypt_with`).
    decrypt_frames(
        provider,
        ciphertext,
        &mut *out,
        Some(expected),
        ciphertext.len() + 1,
    )?;
    Ok(std::mem::take(&mut *out))
}

/// Decrypts from `reader` into `writer`, frame by frame. With `expected`, the stored context
/// must equal it; with `None` the caller accepts whatever context is stored and should check
/// [`DecryptInfo::header`]. Each frame is authenticated before it is written, but a truncated
/// ciphertext is only detected at its end: when this returns an error, discard whatever was
/// written.
pub fn decrypt_stream<R: Read, W: Write>(
    provider: &dyn KeyProvider,
    reader: R,
    writer: W,
    expected: Option<&EncryptionContext>,
) -> Result<DecryptInfo, CryptoError> {
    decrypt_frames(provider, reader, writer, expected, usize::MAX)
}

/// [`decrypt_stream`] with a frame buffer of at most `max_buf` bytes, for a caller that knows
/// the whole ciphertext is shorter than `max_buf`.
fn decrypt_frames<R: Read, W: Write>(
    provider: &dyn KeyProvider,
    mut reader: R,
    mut writer: W,
    expected: Option<&EncryptionContext>,
    max_buf: usize,
) -> Result<DecryptInfo, CryptoError> {
    let ParsedHeader {
        header,
        authenticated: aad,
        ..
    } = Header::read_from(&mut reader)?;
    if let Some(expected) = expected
        && expected != &header.context
    {
        return Err(CryptoError::ContextMismatch {
            keys: expected.differing_keys(&header.context),
        });
    }
    let (data_key, keys) = open_keys(provider, &header)?;
    drop(data_key);

    let mut input = Lookahead::new(reader);
    let full = header.frame_len as usize + TAG_LEN;
    let mut buf = Zeroizing::new(vec![0u8; full.min(max_buf).max(TAG_LEN + 1)]);
    let mut counter: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let n = input
            .fill(&mut buf)
            .map_err(CryptoError::io("cannot read the ciphertext"))?;
        if n < TAG_LEN {
            return Err(CryptoError::Truncated("the final frame is missing"));
        }
        let last = n < buf.len()
            || input
                .at_eof()
                .map_err(CryptoError::io("cannot read the ciphertext"))?;
        let (ct, tag) = buf[..n].split_at_mut(n - TAG_LEN);
        let tag: [u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| CryptoError::Truncated("the final frame is missing"))?;
        keys.cipher
            .open_in_place(&frame_nonce(&header.nonce, counter, last), &aad, ct, &tag)
            .map_err(|_| {
                CryptoError::Authentication(
                    "a frame does not verify: the ciphertext was modified, truncated or extended",
                )
            })?;
        writer
            .write_all(ct)
            .map_err(CryptoError::io("cannot write the plaintext"))?;
        total += ct.len() as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(CryptoError::TooLong)?;
    }
    writer
        .flush()
        .map_err(CryptoError::io("cannot write the plaintext"))?;
    Ok(DecryptInfo {
        header,
        plaintext_len: total,
    })
}

/// The new header for moving a ciphertext to the provider's current KEK, or `None` when it is
/// already there. Only the data key is unwrapped (and checked against the key commitment) and
/// wrapped again; the authenticated part of the header and the frames stay as they are.
pub fn rewrap_header(
    provider: &dyn KeyProvider,
    parsed: &ParsedHeader,
) -> Result<(RewrapOutcome, Option<Vec<u8>>), CryptoError> {
    let header = &parsed.header;
    if provider.is_current(&header.wrapped)? {
        return Ok((
            RewrapOutcome::AlreadyCurrent {
                kek: header.wrapped.kek.clone(),
            },
            None,
        ));
    }
    let (data_key, _keys) = open_keys(provider, header)?;
    let wrapped = provider.wrap(&data_key, &header.context)?;
    let mut out = parsed.authenticated.clone();
    out.extend_from_slice(&key_section(&wrapped)?);
    Ok((
        RewrapOutcome::Rewrapped {
            from: header.wrapped.kek.clone(),
            to: wrapped.kek,
        },
        Some(out),
    ))
}

/// Rewraps a ciphertext read from `reader` into `writer`. Writes nothing when it is already
/// under the current KEK.
pub fn rewrap_stream<R: Read, W: Write>(
    provider: &dyn KeyProvider,
    mut reader: R,
    mut writer: W,
) -> Result<RewrapOutcome, CryptoError> {
    let parsed = Header::read_from(&mut reader)?;
    let (outcome, new_header) = rewrap_header(provider, &parsed)?;
    if let Some(h) = new_header {
        writer
            .write_all(&h)
            .map_err(CryptoError::io("cannot write the ciphertext"))?;
        std::io::copy(&mut reader, &mut writer)
            .map_err(CryptoError::io("cannot copy the ciphertext frames"))?;
        writer
            .flush()
            .map_err(CryptoError::io("cannot write the ciphertext"))?;
    }
    Ok(outcome)
}

/// [`rewrap_stream`] in memory: `None` when already current.
pub fn rewrap(
    provider: &dyn KeyProvider,
    ciphertext: &[u8],
) -> Result<(RewrapOutcome, Option<Vec<u8>>), CryptoError> {
    let mut out = Vec::with_capacity(ciphertext.len() + 64);
    let outcome = rewrap_stream(provider, ciphertext, &mut out)?;
    let out = match outcome {
        RewrapOutcome::AlreadyCurrent { .. } => None,
        RewrapOutcome::Rewrapped { .. } => Some(out),
    };
    Ok((outcome, out))
}

/// A reader that can tell whether it is at its end without losing a byte.
struct Lookahead<R> {
    inner: R,
    stash: Option<u8>,
}

impl<R: Read> Lookahead<R> {
    fn new(inner: R) -> Self {
        Lookahead { inner, stash: None }
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        if !buf.is_empty()
            && let Some(b) = self.stash.take()
        {
            buf[0] = b;
            n = 1;
        }
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn at_eof(&mut self) -> std::io::Result<bool> {
        if self.stash.is_some() {
            return Ok(false);
        }
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(true),
                Ok(_) => {
                    self.stash = Some(b[0]);
                    return Ok(false);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The in-memory calls (buffers sized to the message) and the streaming ones (full-frame
    /// buffers) frame every length alike, and each reads what the other wrote.
    #[test]
    fn in_memory_and_streaming_frame_alike_around_frame_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let keys = crate::LocalKeyFile::create(
            &dir.path().join("k.json"),
            None,
            &crate::SealParams::DEFAULT,
        )
        .unwrap();
        let ctx = EncryptionContext::from_pairs([("purpose", "t")]).unwrap();
        let f = 64usize;
        let opts = EncryptOptions { frame_len: 64 };
        for len in [
            0,
            1,
            f - 1,
            f,
            f + 1,
            2 * f - 1,
            2 * f,
            2 * f + 1,
            5 * f + 3,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mem = encrypt_with(&keys, &plain, &ctx, &opts).unwrap();
            let mut streamed = Vec::new();
            encrypt_stream(&keys, &ctx, &opts, &plain[..], &mut streamed).unwrap();
            assert_eq!(mem.len(), streamed.len(), "length {len}");
            for ct in [&mem, &streamed] {
                assert_eq!(decrypt(&keys, ct, &ctx).unwrap(), plain, "length {len}");
                let mut out = Vec::new();
                decrypt_stream(&keys, &ct[..], &mut out, Some(&ctx)).unwrap();
                assert_eq!(out, plain, "length {len}");
                // Cut anywhere in the body: refused both ways.
                let cut = &ct[..ct.len() - 1];
                assert!(decrypt(&keys, cut, &ctx).is_err(), "length {len}");
                assert!(decrypt_stream(&keys, cut, &mut Vec::new(), Some(&ctx)).is_err());
            }
        }
    }

    #[test]
    fn frame_nonces_are_distinct_for_counter_and_last_flag() {
        let base = [0x5a; NONCE_LEN];
        let mut seen = std::collections::HashSet::new();
        for counter in [0u32, 1, 2, 255, 256, u32::MAX] {
            for last in [false, true] {
                assert!(seen.insert(frame_nonce(&base, counter, last)));
            }
        }
        assert_eq!(frame_nonce(&base, 0, false), base);
    }

    #[test]
    fn derivation_is_deterministic_and_separates_labels() {
        let dk = DataKey::from_bytes([7; KEY_LEN]);
        let a = commitment_of(&dk, &[1; SALT_LEN]).unwrap();
        let b = commitment_of(&dk, &[1; SALT_LEN]).unwrap();
        let c = commitment_of(&dk, &[2; SALT_LEN]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let other = commitment_of(&DataKey::from_bytes([8; KEY_LEN]), &[1; SALT_LEN]).unwrap();
        assert_ne!(a, other);
    }
}
