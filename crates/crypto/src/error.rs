//! The crate's one error type. Every message names files, key ids, versions and sizes, never
//! key bytes, passphrases or plaintext.

use std::path::PathBuf;

use crate::provider::KekRef;

/// Everything that can go wrong encrypting, decrypting or managing keys. Decryption fails
/// closed: any doubt about a ciphertext is one of these, never a panic and never partial
/// plaintext returned as if it were whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The input does not start with the phiguard ciphertext magic.
    #[error("not a phiguard ciphertext (the file does not start with the PGEN magic)")]
    NotCiphertext,
    /// The header names a format version this build cannot read.
    #[error(
        "unsupported ciphertext format version {0} (this build reads version {supported})",
        supported = crate::header::FORMAT_VERSION
    )]
    UnknownVersion(u8),
    /// The header names an algorithm this build does not implement.
    #[error("unsupported ciphertext algorithm id 0x{0:04x}")]
    UnknownAlgorithm(u16),
    /// The input ended early.
    #[error("ciphertext is truncated: {0}")]
    Truncated(&'static str),
    /// A header field is out of range or not canonical.
    #[error("malformed ciphertext header: {0}")]
    Malformed(&'static str),
    /// The caller expected a different encryption context than the one the ciphertext was
    /// made with. Context values are not secret; only the differing keys are named.
    #[error("encryption context does not match (keys that differ: {keys})")]
    ContextMismatch { keys: String },
    /// The encryption context given to encrypt is not valid.
    #[error("invalid encryption context: {0}")]
    InvalidContext(String),
    /// The data key does not match the key commitment in the header: the header was
    /// tampered with, or the ciphertext was built to decrypt under more than one key.
    #[error(
        "key commitment mismatch: the data key does not belong to this ciphertext \
         (tampered header, or a ciphertext made to decrypt under two keys)"
    )]
    CommitmentMismatch,
    /// AES-GCM authentication failed on a frame or on a wrapped key.
    #[error("authentication failed: {0}")]
    Authentication(&'static str),
    /// The KEK version the ciphertext is wrapped under has been revoked.
    #[error("{kek} is revoked: data wrapped under it can no longer be decrypted")]
    Revoked { kek: KekRef },
    /// The ciphertext was wrapped by a different key provider.
    #[error("the data key was wrapped by key provider `{found}`, not `{expected}`")]
    WrongProvider { found: String, expected: String },
    /// The ciphertext names a KEK this provider does not hold.
    #[error("wrong key: the data key is wrapped under {found}, which {provider} does not hold")]
    UnknownKek { found: KekRef, provider: String },
    /// A plaintext too long for the framing (2^32 frames).
    #[error("message too long for the ciphertext format")]
    TooLong,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Reading or writing a stream or file failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The key file is malformed.
    #[error("key file {path} is malformed: {reason}")]
    KeyFileMalformed { path: PathBuf, reason: String },
    /// The key file does not exist.
    #[error("no key file at {path}")]
    KeyFileMissing { path: PathBuf },
    /// The key file is sealed and no passphrase was given.
    #[error("key file {path} is sealed with a passphrase, and none was given")]
    PassphraseRequired { path: PathBuf },
    /// The passphrase does not open the key file.
    #[error("wrong passphrase for key file {path}")]
    WrongPassphrase { path: PathBuf },
    /// A key-file operation that does not apply in the file's state (e.g. sealing twice).
    #[error("{0}")]
    KeyFileState(String),
    /// Argon2id parameters out of the accepted range.
    #[error("invalid Argon2id parameters: {0}")]
    SealParams(String),
}

impl CryptoError {
    /// A stable machine-readable code for JSON output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::NotCiphertext => "not_ciphertext",
            CryptoError::UnknownVersion(_) => "unknown_version",
            CryptoError::UnknownAlgorithm(_) => "unknown_algorithm",
            CryptoError::Truncated(_) => "truncated",
            CryptoError::Malformed(_) => "malformed",
            CryptoError::ContextMismatch { .. } => "context_mismatch",
            CryptoError::InvalidContext(_) => "invalid_context",
            CryptoError::CommitmentMismatch => "commitment_mismatch",
            CryptoError::Authentication(_) => "authentication_failed",
            CryptoError::Revoked { .. } => "kek_revoked",
            CryptoError::WrongProvider { .. } => "wrong_provider",
            CryptoError::UnknownKek { .. } => "wrong_key",
            CryptoError::TooLong => "too_long",
            CryptoError::Random => "random_failed",
            CryptoError::Io { .. } => "io",
            CryptoError::KeyFileMalformed { .. } => "key_file_malformed",
            CryptoError::KeyFileMissing { .. } => "key_file_missing",
            CryptoError::PassphraseRequired { .. } => "passphrase_required",
            CryptoError::WrongPassphrase { .. } => "wrong_passphrase",
            CryptoError::KeyFileState(_) => "key_file_state",
            CryptoError::SealParams(_) => "seal_params",
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CryptoError {
        let what = what.into();
        move |source| CryptoError::Io { what, source }
    }
}
