//! The de-identification key: 32 random bytes kept in a local key file (hex, mode 0600), used
//! as the HMAC-SHA256 key for pseudonyms, surrogates and per-patient date shifts. The same key
//! gives the same outputs across files, runs and machines, so keep it secret and keep it safe.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Errors reading or creating a key file. They name the file, never the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
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
    #[error("key file {path} is malformed: expected 64 hexadecimal characters (32 bytes)")]
    Malformed { path: PathBuf },
    #[error("the operating system's random number generator failed")]
    Random,
}

/// A 32-byte HMAC key. Its `Debug` never shows the bytes.
pub struct DeidKey {
    bytes: [u8; 32],
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for DeidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeidKey([REDACTED])")
    }
}

impl DeidKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> DeidKey {
        // HMAC pads keys shorter than the SHA-256 block (64 bytes) with zeros, so the
        // fixed-size constructor over the padded key is the same function as
        // `new_from_slice(&bytes)`, without a fallible path.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&bytes);
        let mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        DeidKey { bytes, mac }
    }

    /// Draws a fresh key from the operating system's random number generator.
    pub fn generate() -> Result<DeidKey, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|_| KeyError::Random)?;
        Ok(DeidKey::from_bytes(bytes))
    }

    /// The key's fingerprint for reports: the first 16 hex digits of SHA-256 of the key bytes.
    /// It identifies the key without revealing it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.bytes);
        hex::encode(&digest[..8])
    }

    /// HMAC-SHA256 over `parts`, each length-prefixed so that part boundaries are unambiguous.
    /// The first part names the purpose (domain separation).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Whether a key was read from an existing file or created by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Created,
}

/// The default key file: `$PHIGUARD_HOME/keys/deid.key`, where `PHIGUARD_HOME` defaults to
/// `$XDG_DATA_HOME/phiguard` or `~/.local/share/phiguard`. `var` reads the environment (pass
/// `|k| std::env::var_os(k)`); `None` when no home folder can be found.
pub fn default_key_path(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let non_empty = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = non_empty("PHIGUARD_HOME")
        .or_else(|| non_empty("XDG_DATA_HOME").map(|d| d.join("phiguard")))
        .or_else(|| non_empty("HOME").map(|h| h.join(".local/share/phiguard")))?;
    Some(home.join("keys").join("deid.key"))
}

/// Reads the key at `path`.
pub fn load(path: &Path) -> Result<DeidKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = || KeyError::Malformed {
        path: path.to_path_buf(),
    };
    let raw = hex::decode(text.trim()).map_err(|_| malformed())?;
    let bytes: [u8; 32] = raw.try_into().map_err(|_| malformed())?;
    Ok(DeidKey::from_bytes(bytes))
}

/// Reads the key at `path`, or creates it (32 random bytes, hex, mode 0600, parent folders
/// mode 0700) when the file does not exist. Creation is atomic: two runs starting at once end up
/// with the same key.
pub fn load_or_create(path: &Path) -> Result<(DeidKey, KeyOrigin), KeyError> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok((load(path)?, KeyOrigin::Loaded)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let create_err = |source| KeyError::Create {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(create_err)?;
    let key = DeidKey::generate()?;
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".deid.key.")
        .tempfile_in(&dir)
        .map_err(create_err)?;
    let mut hex_key = hex::encode(key.bytes);
    hex_key.push('\n');
    tmp.write_all(hex_key.as_bytes()).map_err(create_err)?;
    tmp.as_file().sync_all().map_err(create_err)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok((key, KeyOrigin::Created)),
        // Another run created the key first: use theirs.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((load(path)?, KeyOrigin::Loaded))
        }
        Err(e) => Err(create_err(e.error)),
    }
}

/// True when the key file can be read only by its owner (always true off Unix).
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

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_key() {
        let key = DeidKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn fingerprint_is_first_16_hex_of_sha256() {
        let key = DeidKey::from_bytes([0u8; 32]);
        // sha256 of 32 zero bytes
        assert_eq!(key.fingerprint(), "66687aadf862bd77");
    }

    #[test]
    fn mac_matches_hmac_with_slice_key() {
        let bytes = [7u8; 32];
        let key = DeidKey::from_bytes(bytes);
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap();
        reference.update(&3u64.to_be_bytes());
        reference.update(b"abc");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(key.mac(&[b"abc"]), expected);
    }

    #[test]
    fn mac_parts_are_unambiguous() {
        let key = DeidKey::from_bytes([1u8; 32]);
        assert_ne!(key.mac(&[b"ab", b"c"]), key.mac(&[b"a", b"bc"]));
    }

    #[test]
    fn default_path_prefers_phiguard_home_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_key_path(env(&[("PHIGUARD_HOME", "/p"), ("HOME", "/h")])),
            Some(PathBuf::from("/p/keys/deid.key"))
        );
        assert_eq!(
            default_key_path(env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/phiguard/keys/deid.key"))
        );
        assert_eq!(
            default_key_path(env(&[("PHIGUARD_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/share/phiguard/keys/deid.key"))
        );
        assert_eq!(default_key_path(env(&[])), None);
    }

    #[test]
    fn creates_private_key_once_then_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/deid.key");
        let (first, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert!(is_private(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let (second, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(first.fingerprint(), second.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
    }

    #[test]
    fn malformed_key_file_is_an_error_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deid.key");
        std::fs::write(&path, "secret-not-hex").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("malformed"));
        assert!(!err.contains("secret"));
    }
}
