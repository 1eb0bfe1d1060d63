//! The versioned binary ciphertext header. Byte layout (all integers big-endian; documented
//! with the same offsets in docs/encryption.md):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "PGEN"
//!      4     1  format version (1)
//!      5     2  algorithm id (0x0001: AES-256-GCM, HKDF-SHA256, key commitment, framed)
//!      7     4  frame length F (plaintext bytes per frame)
//!     11    32  HKDF salt (random per message)
//!     43    12  base nonce (random per message)
//!     55    32  key commitment
//!     87     2  context length N
//!     89     N  encryption context, canonical form
//!   ---------- end of the authenticated part: bytes [0, 89+N) are the AAD of every frame
//!              1  provider name length P, then P bytes of name ("local", …)
//!              1  KEK id length I, then I bytes of id
//!              4  KEK version
//!              2  wrapped data key length W, then W bytes of wrapped key
//!   ---------- end of header; frames follow
//! ```
//!
//! The key section sits after the authenticated part, so a rewrap replaces it and copies the
//! rest of the file untouched. It is still bound to the message: the key commitment ties the
//! data key to the authenticated part, and the provider binds the KEK id, version and context
//! when it wraps.

use std::io::Read;

use crate::CryptoError;
use crate::aead::NONCE_LEN;
use crate::context::{EncryptionContext, MAX_CONTEXT_BYTES};
use crate::provider::{KekRef, MAX_KEK_ID, MAX_PROVIDER_NAME, MAX_WRAPPED_KEY, WrappedKey};

/// The first four bytes of every ciphertext.
pub const MAGIC: [u8; 4] = *b"PGEN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// HKDF salt length.
pub const SALT_LEN: usize = 32;
/// Key commitment length.
pub const COMMITMENT_LEN: usize = 32;
/// Frame length used unless the caller picks another.
pub const DEFAULT_FRAME_LEN: u32 = 64 * 1024;
/// Smallest and largest frame lengths accepted (a header cannot make a reader allocate more
/// than 16 MiB).
pub const MIN_FRAME_LEN: u32 = 64;
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;
/// Length of the fixed part before the context.
pub const FIXED_LEN: usize = 4 + 1 + 2 + 4 + SALT_LEN + NONCE_LEN + COMMITMENT_LEN + 2;

/// The algorithm suite of a ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// AES-256-GCM frames under a key derived from the data key with HKDF-SHA256, with a
    /// 256-bit HKDF-SHA256 key commitment in the header.
    Aes256GcmHkdfSha256Committed,
}

impl Algorithm {
    /// The id stored in the header.
    pub fn id(self) -> u16 {
        match self {
            Algorithm::Aes256GcmHkdfSha256Committed => 0x0001,
        }
    }

    /// The algorithm for an id.
    pub fn from_id(id: u16) -> Result<Algorithm, CryptoError> {
        match id {
            0x0001 => Ok(Algorithm::Aes256GcmHkdfSha256Committed),
            other => Err(CryptoError::UnknownAlgorithm(other)),
        }
    }
}

/// A parsed ciphertext header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub algorithm: Algorithm,
    pub frame_len: u32,
    pub salt: [u8; SALT_LEN],
    pub nonce: [u8; NONCE_LEN],
    pub commitment: [u8; COMMITMENT_LEN],
    pub context: EncryptionContext,
    pub wrapped: WrappedKey,
}

impl Header {
    /// The authenticated part: magic through context. It is the AAD of every frame.
    pub fn authenticated_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&self.frame_len) {
            return Err(CryptoError::Malformed("frame length out of range"));
        }
        let ctx = self.context.canonical_bytes()?;
        let mut out = Vec::with_capacity(FIXED_LEN + ctx.len());
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.algorithm.id().to_be_bytes());
        out.extend_from_slice(&self.frame_len.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.commitment);
        let n = u16::try_from(ctx.len())
            .map_err(|_| CryptoError::InvalidContext("too large".into()))?;
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&ctx);
        Ok(out)
    }

    /// The key section: provider, KEK id and version, wrapped data key.
    pub fn key_section_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        key_section(&self.wrapped)
    }

    /// The whole header.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        let mut out = self.authenticated_bytes()?;
        out.extend_from_slice(&self.key_section_bytes()?);
        Ok(out)
    }

    /// Parses a header from the start of `bytes`; returns it, its authenticated bytes and
    /// the header's total length.
    pub fn parse(bytes: &[u8]) -> Result<ParsedHeader, CryptoError> {
        let mut cursor = bytes;
        Header::read_from(&mut cursor)
    }

    /// Reads a header from `r`, leaving `r` at the first frame.
    pub fn read_from<R: Read + ?Sized>(r: &mut R) -> Result<ParsedHeader, CryptoError> {
        let mut raw = vec![0u8; 5];
        read_exact(r, &mut raw, "no complete header")?;
        if raw[..4] != MAGIC {
            return Err(CryptoError::NotCiphertext);
        }
        if raw[4] != FORMAT_VERSION {
            return Err(CryptoError::UnknownVersion(raw[4]));
        }
        raw.resize(FIXED_LEN, 0);
        read_exact(r, &mut raw[5..], "no complete header")?;
        let mut f = Fields(&raw[5..]);
        let algorithm = Algorithm::from_id(u16::from_be_bytes(f.array()?))?;
        let frame_len = u32::from_be_bytes(f.array()?);
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame_len) {
            return Err(CryptoError::Malformed("frame length out of range"));
        }
        let salt: [u8; SALT_LEN] = f.array()?;
        let nonce: [u8; NONCE_LEN] = f.array()?;
        let commitment: [u8; COMMITMENT_LEN] = f.array()?;
        let ctx_len = u16::from_be_bytes(f.array()?) as usize;
        if ctx_len > MAX_CONTEXT_BYTES {
            return Err(CryptoError::Malformed("context too large"));
        }
        raw.resize(FIXED_LEN + ctx_len, 0);
        read_exact(r, &mut raw[FIXED_LEN..], "header ends inside the context")?;
        let context = EncryptionContext::from_canonical_bytes(&raw[FIXED_LEN..])?;

        let provider = read_short_string(r, MAX_PROVIDER_NAME, "provider name")?;
        let kek_id = read_short_string(r, MAX_KEK_ID, "KEK id")?;
        let mut v = [0u8; 4];
        read_exact(r, &mut v, "header ends inside the key section")?;
        let mut w = [0u8; 2];
        read_exact(r, &mut w, "header ends inside the key section")?;
        let wlen = u16::from_be_bytes(w) as usize;
        if wlen == 0 || wlen > MAX_WRAPPED_KEY {
            return Err(CryptoError::Malformed("wrapped key length out of range"));
        }
        let mut blob = vec![0u8; wlen];
        read_exact(r, &mut blob, "header ends inside the wrapped key")?;
        let header = Header {
            algorithm,
            frame_len,
            salt,
            nonce,
            commitment,
            context,
            wrapped: WrappedKey {
                provider,
                kek: KekRef {
                    id: kek_id,
                    version: u32::from_be_bytes(v),
                },
                blob,
            },
        };
        let len = raw.len()
            + 1
            + header.wrapped.provider.len()
            + 1
            + header.wrapped.kek.id.len()
            + 4
            + 2
            + wlen;
        Ok(ParsedHeader {
            header,
            authenticated: raw,
            len,
        })
    }
}

/// A header as read: the parsed fields, the exact authenticated bytes that were read, and
/// the header's length in bytes.
#[derive(Debug)]
pub struct ParsedHeader {
    pub header: Header,
    pub authenticated: Vec<u8>,
    pub len: usize,
}

pub(crate) fn key_section(w: &WrappedKey) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(8 + w.provider.len() + w.kek.id.len() + w.blob.len());
    push_short_string(&mut out, &w.provider, MAX_PROVIDER_NAME, "provider name")?;
    push_short_string(&mut out, &w.kek.id, MAX_KEK_ID, "KEK id")?;
    out.extend_from_slice(&w.kek.version.to_be_bytes());
    if w.blob.is_empty() || w.blob.len() > MAX_WRAPPED_KEY {
        return Err(CryptoError::Malformed("wrapped key length out of range"));
    }
    out.extend_from_slice(&(w.blob.len() as u16).to_be_bytes());
    out.extend_from_slice(&w.blob);
    Ok(out)
}

fn push_short_string(
    out: &mut Vec<u8>,
    s: &str,
    max: usize,
    what: &'static str,
) -> Result<(), CryptoError> {
    if s.is_empty() || s.len() > max {
        return Err(CryptoError::Malformed(match what {
            "provider name" => "provider name empty or too long",
            _ => "KEK id empty or too long",
        }));
    }
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn read_short_string<R: Read + ?Sized>(
    r: &mut R,
    max: usize,
    what: &'static str,
) -> Result<String, CryptoError> {
    let mut n = [0u8; 1];
    read_exact(r, &mut n, "header ends inside the key section")?;
    let n = n[0] as usize;
    if n == 0 || n > max {
        return Err(CryptoError::Malformed(match what {
            "provider name" => "provider name empty or too long",
            _ => "KEK id empty or too long",
        }));
    }
    let mut buf = vec![0u8; n];
    read_exact(r, &mut buf, "header ends inside the key section")?;
    String::from_utf8(buf).map_err(|_| {
        CryptoError::Malformed(match what {
            "provider name" => "provider name is not UTF-8",
            _ => "KEK id is not UTF-8",
        })
    })
}

/// `read_exact` that reports a short input as [`CryptoError::Truncated`].
pub(crate) fn read_exact<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), CryptoError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CryptoError::Truncated(what)
        } else {
            CryptoError::io("cannot read the ciphertext")(e)
        }
    })
}

struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CryptoError> {
        match self.0.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.0 = tail;
                Ok(*head)
            }
            None => Err(CryptoError::Truncated("no complete header")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            algorithm: Algorithm::Aes256GcmHkdfSha256Committed,
            frame_len: DEFAULT_FRAME_LEN,
            salt: [1; SALT_LEN],
            nonce: [2; NONCE_LEN],
            commitment: [3; COMMITMENT_LEN],
            context: EncryptionContext::from_pairs([("purpose", "vault")]).unwrap(),
            wrapped: WrappedKey {
                provider: "local".into(),
                kek: KekRef {
                    id: "kf-0011223344556677".into(),
                    version: 7,
                },
                blob: vec![9; 60],
            },
        }
    }

    #[test]
    fn header_round_trips_with_documented_offsets() {
        let h = sample();
        let bytes = h.to_bytes().unwrap();
        assert_eq!(&bytes[0..4], b"PGEN");
        assert_eq!(bytes[4], 1);
        assert_eq!(&bytes[5..7], &[0, 1]);
        assert_eq!(&bytes[7..11], &DEFAULT_FRAME_LEN.to_be_bytes());
        assert_eq!(&bytes[11..43], &[1; 32]);
        assert_eq!(&bytes[43..55], &[2; 12]);
        assert_eq!(&bytes[55..87], &[3; 32]);
        let n = u16::from_be_bytes([bytes[87], bytes[88]]) as usize;
        let auth = 89 + n;
        assert_eq!(bytes[auth], 5);
        assert_eq!(&bytes[auth + 1..auth + 6], b"local");
        let parsed = Header::parse(&bytes).unwrap();
        assert_eq!(parsed.header, h);
        assert_eq!(parsed.len, bytes.len());
        assert_eq!(parsed.authenticated, bytes[..auth].to_vec());
        assert_eq!(parsed.authenticated, h.authenticated_bytes().unwrap());
    }

    #[test]
    fn version_and_magic_are_checked_first() {
        let mut bytes = sample().to_bytes().unwrap();
        bytes[4] = 2;
        assert!(matches!(
            Header::parse(&bytes),
            Err(CryptoError::UnknownVersion(2))
        ));
        bytes[0] = b'X';
        assert!(matches!(
            Header::parse(&bytes),
            Err(CryptoError::NotCiphertext)
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(Header::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
