//! Ed25519 signed notes in the C2SP signed-note format (<https://c2sp.org/signed-note>), the
//! checkpoints of C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>) they carry, and the
//! signing key file.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(key hash || signature)>`. The key hash is the first 4 bytes of
//! SHA-256(key name || 0x0A || 0x01 || public key), 0x01 naming Ed25519. A verifier key is
//! written `<name>+<hex key hash>+<base64(0x01 || public key)>`; the key file holds the private
//! key as `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>`, as Go's
//! `golang.org/x/mod/sumdb/note` writes it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// The signature algorithm byte of Ed25519 in key hashes and key encodings.
pub const ALG_ED25519: u8 = 0x01;

/// The start of a signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// At most this many signature lines are read from a note (as the Go implementation).
const MAX_SIGNATURES: usize = 100;

/// Errors of notes, checkpoints and keys. They name keys and files, never secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    #[error("invalid key name: {0}")]
    BadName(&'static str),
    #[error("the note has no signature by key {name}")]
    NotSigned { name: String },
    #[error("the note is signed by a different key also named {name} (key hash mismatch)")]
    OtherKey { name: String },
    #[error("the signature by key {name} is not valid: the note was altered or forged")]
    BadSignature { name: String },
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create key file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is malformed: {reason}")]
    KeyFile { path: PathBuf, reason: &'static str },
    #[error("the operating system's random number generator failed")]
    Random,
}

/// The 4-byte key hash of an Ed25519 key named `name`.
pub fn key_hash(name: &str, public_key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Checks a key name: not empty, no whitespace, no `+`.
pub fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() {
        return Err(NoteError::BadName("empty"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadName("contains whitespace"));
    }
    if name.contains('+') {
        return Err(NoteError::BadName("contains '+'"));
    }
    Ok(())
}

/// Checks note text: non-empty, ends with a newline, no control characters but newlines.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text does not end with a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "text contains control characters other than newline",
        ));
    }
    Ok(())
}

/// An Ed25519 signing key with its name. `Debug` never shows the key.
pub struct Signer {
    name: String,
    hash: [u8; 4],
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Signer {
    /// A signer from a name and a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let hash = key_hash(name, &key.verifying_key());
        Ok(Signer {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// A fresh key from the operating system's random number generator. `name` gives the key
    /// name from the new public key (for a name unique to the key), or a fixed name.
    pub fn generate(name: impl FnOnce(&VerifyingKey) -> String) -> Result<Signer, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|_| NoteError::Random)?;
        let public = SigningKey::from_bytes(&seed).verifying_key();
        let signer = Signer::from_seed(&name(&public), seed);
        seed.fill(0);
        signer
    }

    /// Reads `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>`.
    pub fn from_private_key(s: &str) -> Result<Signer, NoteError> {
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey("no PRIVATE+KEY+ prefix"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey("expected name+hash+key"));
        };
        let mut raw = B64
            .decode(b64)
            .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            raw.fill(0);
            return Err(NoteError::MalformedKey("not an Ed25519 private key"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[1..]);
        raw.fill(0);
        let signer = Signer::from_seed(name, seed);
        seed.fill(0);
        let signer = signer?;
        if hex::encode(signer.hash) != hash_hex.to_ascii_lowercase() {
            return Err(NoteError::MalformedKey(
                "key hash does not match name and key",
            ));
        }
        Ok(signer)
    }

    /// The private key in the key-file format. Secret: write it only to a private file.
    fn private_key_string(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        let s = format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.hash),
            B64.encode(&raw)
        );
        raw.fill(0);
        s
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            hash: self.hash,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` and returns the whole signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.hash);
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(&blob)
        ))
    }
}

/// A public key that verifies notes: `<name>+<hex key hash>+<base64(0x01 || public key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: [u8; 4],
    key: VerifyingKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.hash),
            B64.encode(&raw)
        )
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<VerifierKey, NoteError> {
        VerifierKey::parse(s)
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key hash.
    pub key_hash: [u8; 4],
    /// The signature bytes (64 for Ed25519).
    pub signature: Vec<u8>,
}

/// Splits a signed note into its text (with the final newline) and its signature lines,
/// checking the syntax only.
pub fn split_note(note: &str) -> Result<(&str, Vec<NoteSignature>), NoteError> {
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed("does not end with a newline"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let text = &note[..split + 1];
    check_text(text)?;
    let block = &note[split + 2..];
    let mut sigs = Vec::new();
    for line in block.split_terminator('\n') {
        if sigs.len() == MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "signature line does not start with '— '",
        ))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("signature line has no signature"))?;
        check_name(name).map_err(|_| NoteError::Malformed("invalid key name on signature line"))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        sigs.push(NoteSignature {
            name: name.to_string(),
            key_hash: [blob[0], blob[1], blob[2], blob[3]],
            signature: blob[4..].to_vec(),
        });
    }
    if sigs.is_empty() {
        return Err(NoteError::Malformed("no signature lines"));
    }
    Ok((text, sigs))
}

impl VerifierKey {
    /// Parses `<name>+<hex key hash>+<base64(0x01 || public key)>`.
    pub fn parse(s: &str) -> Result<VerifierKey, NoteError> {
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey(
                "expected <name>+<hex key hash>+<base64 key>",
            ));
        };
        check_name(name)?;
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(NoteError::MalformedKey("not an Ed25519 public key"));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&raw[1..]);
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError::MalformedKey("not a valid Ed25519 point"))?;
        let hash = key_hash(name, &key);
        if hex::encode(hash) != hash_hex.to_ascii_lowercase() {
            return Err(NoteError::MalformedKey(
                "key hash does not match the name and key",
            ));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key hash.
    pub fn key_hash(&self) -> [u8; 4] {
        self.hash
    }

    /// Checks that `note` carries a valid signature by this key and returns its text.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, sigs) = split_note(note)?;
        let mut other = false;
        for sig in &sigs {
            if sig.name != self.name {
                continue;
            }
            if sig.key_hash != self.hash {
                other = true;
                continue;
            }
            let bad = || NoteError::BadSignature {
                name: self.name.clone(),
            };
            let bytes: [u8; 64] = sig.signature.as_slice().try_into().map_err(|_| bad())?;
            let signature = Signature::from_bytes(&bytes);
            return self
                .key
                .verify_strict(text.as_bytes(), &signature)
                .map(|()| text)
                .map_err(|_| bad());
        }
        if other {
            return Err(NoteError::OtherKey {
                name: self.name.clone(),
            });
        }
        Err(NoteError::NotSigned {
            name: self.name.clone(),
        })
    }

    /// Checks the signature of a checkpoint note and parses its body.
    pub fn open_checkpoint(&self, note: &str) -> Result<Checkpoint, NoteError> {
        Checkpoint::parse(self.open(note)?)
    }
}

/// A C2SP tlog-checkpoint body: the log's origin, its size and its root hash, and any
/// extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name (the signing key's name for phiguard logs).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 tree head of those leaves.
    pub root: Hash,
    /// Extension lines after the root (none in checkpoints phiguard writes).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, decimal size and base64 root, each line ending in a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses checkpoint text (the text of a note, without signatures).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = NoteError::MalformedCheckpoint;
        if !text.ends_with('\n') {
            return Err(bad("does not end with a newline"));
        }
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(bad("no origin line"))?;
        let size = lines.next().ok_or(bad("no size line"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("size is not a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("size out of range"))?;
        let root = lines.next().ok_or(bad("no root hash line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(bad("root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// Whether a key was read from an existing file or created by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Created,
}

/// The default key name of a new log key: `phiguard/audit/` and the first 16 hex digits of
/// SHA-256 of the public key, unique to the key.
pub fn default_key_name(public: &VerifyingKey) -> String {
    let d = Sha256::digest(public.as_bytes());
    format!("phiguard/audit/{}", hex::encode(&d[..8]))
}

/// Reads the signing key file at `path`.
pub fn load_signer(path: &Path) -> Result<Signer, NoteError> {
    let text = std::fs::read_to_string(path).map_err(|source| NoteError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Signer::from_private_key(&text).map_err(|e| NoteError::KeyFile {
        path: path.to_path_buf(),
        reason: match e {
            NoteError::MalformedKey(r) => r,
            NoteError::BadName(r) => r,
            _ => "unreadable key",
        },
    })
}

/// Reads the signing key at `path`, or creates it (mode 0600, parent folders 0700) with the
/// name `name` or, when `None`, [`default_key_name`]. Creation is atomic: two processes starting
/// at once end up with the same key.
pub fn load_or_create_signer(
    path: &Path,
    name: Option<&str>,
) -> Result<(Signer, KeyOrigin), NoteError> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok((load_signer(path)?, KeyOrigin::Loaded)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(NoteError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let create_err = |source| NoteError::Create {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::store::create_private_dir(&dir).map_err(create_err)?;
    let signer = Signer::generate(|public| match name {
        Some(n) => n.to_string(),
        None => default_key_name(public),
    })?;
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit-signing.key.")
        .tempfile_in(&dir)
        .map_err(create_err)?;
    let mut text = signer.private_key_string();
    text.push('\n');
    let written = tmp.write_all(text.as_bytes());
    // Do not keep the secret text around longer than the write.
    drop(text);
    written.map_err(create_err)?;
    tmp.as_file().sync_all().map_err(create_err)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok((signer, KeyOrigin::Created)),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((load_signer(path)?, KeyOrigin::Loaded))
        }
        Err(e) => Err(create_err(e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example key and note of Go's golang.org/x/mod/sumdb/note documentation: a known
    // answer for the whole format (key hash, key encodings, signature line). Ed25519 is
    // deterministic, so signing the same text with the same key gives the same bytes.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n\
        \n\
        \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_reference_vector_signs_and_verifies_byte_for_byte() {
        let signer = Signer::from_private_key(GO_SKEY).unwrap();
        assert_eq!(signer.verifier().to_string(), GO_VKEY);
        assert_eq!(signer.private_key_string(), GO_SKEY);
        assert_eq!(signer.sign(GO_TEXT).unwrap(), GO_NOTE);
        let vkey = VerifierKey::parse(GO_VKEY).unwrap();
        assert_eq!(vkey.open(GO_NOTE).unwrap(), GO_TEXT);
    }

    #[test]
    fn c2sp_spec_example_verifier_key_parses() {
        let k = VerifierKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        assert_eq!(k.name(), "example.com/foo");
        assert_eq!(hex::encode(k.key_hash()), "530d903a");
    }

    #[test]
    fn altered_notes_fail() {
        let vkey = VerifierKey::parse(GO_VKEY).unwrap();
        let altered = GO_NOTE.replace("cryptography", "cryptographY");
        assert!(matches!(
            vkey.open(&altered),
            Err(NoteError::BadSignature { .. })
        ));
        let other = Signer::from_seed("PeterNeumann", [9; 32]).unwrap();
        assert!(matches!(
            other.verifier().open(GO_NOTE),
            Err(NoteError::OtherKey { .. })
        ));
        let stranger = Signer::from_seed("someone", [9; 32]).unwrap();
        assert!(matches!(
            stranger.verifier().open(GO_NOTE),
            Err(NoteError::NotSigned { .. })
        ));
        assert!(vkey.open(GO_TEXT).is_err());
        assert!(vkey.open(&GO_NOTE[..GO_NOTE.len() - 1]).is_err());
        // one flipped bit anywhere in the signature
        let sig_at = GO_NOTE.rfind(' ').unwrap() + 1;
        let mut bytes = GO_NOTE.as_bytes().to_vec();
        bytes[sig_at + 10] ^= 0x01;
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(vkey.open(&flipped).is_err());
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(
            VerifierKey::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(VerifierKey::parse("PeterNeumann+c74f20a3").is_err());
        assert!(VerifierKey::parse("Peter Neumann+c74f20a3+ARpc").is_err());
        assert!(Signer::from_seed("a+b", [1; 32]).is_err());
        assert!(Signer::from_seed("", [1; 32]).is_err());
        assert!(Signer::from_private_key("PRIVATE+KEY+x+00000000+AQ==").is_err());
    }

    #[test]
    fn checkpoint_text_round_trips_and_rejects_malformed() {
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 8,
            root: [7; 32],
            extensions: vec![],
        };
        let text = c.to_text();
        assert_eq!(
            text,
            "example.com/log\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        for bad in [
            "example.com/log\n08\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n8\nBwcH\n",
            "example.com/log\n8\n",
            "\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_file_is_created_private_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit-signing.key");
        let (a, origin) = load_or_create_signer(&path, None).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert!(a.name().starts_with("phiguard/audit/"));
        let (b, origin) = load_or_create_signer(&path, Some("ignored")).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(a.verifier(), b.verifier());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let shown = format!("{a:?}");
        assert!(shown.contains("REDACTED"));
        let secret = std::fs::read_to_string(&path).unwrap();
        let b64 = secret.trim().splitn(5, '+').nth(4).unwrap();
        assert!(b64.len() > 40);
        assert!(!shown.contains(b64));
    }
}
