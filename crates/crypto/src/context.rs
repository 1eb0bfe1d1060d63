//! The encryption context: a map of non-secret strings (`{"purpose": "vault", "tenant": "t1"}`)
//! bound to a ciphertext as associated data. Decrypting with a different context fails.

use std::collections::BTreeMap;
use std::fmt;

use crate::CryptoError;

/// Most pairs a context may hold.
pub const MAX_PAIRS: usize = 256;
/// Most bytes a context may take in its canonical form (it is stored in the header).
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// A map of non-secret strings bound to a ciphertext. Keys are unique and sorted by their
/// UTF-8 bytes; neither keys nor values may hold secrets or PHI, because the context is stored
/// in clear in the header (it names *what* the data is for, e.g. a tenant or a purpose).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// The empty context.
    pub fn new() -> EncryptionContext {
        EncryptionContext(BTreeMap::new())
    }

    /// Builds a context from pairs; a key given twice is an error.
    pub fn from_pairs<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<EncryptionContext, CryptoError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut ctx = EncryptionContext::new();
        for (k, v) in pairs {
            let k = k.into();
            if ctx.0.contains_key(&k) {
                return Err(CryptoError::InvalidContext(format!(
                    "key `{k}` is given twice"
                )));
            }
            ctx.0.insert(k, v.into());
        }
        ctx.validate()?;
        Ok(ctx)
    }

    /// Adds or replaces one pair.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the limits: non-empty keys, at most [`MAX_PAIRS`] pairs and
    /// [`MAX_CONTEXT_BYTES`] canonical bytes.
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.0.len() > MAX_PAIRS {
            return Err(CryptoError::InvalidContext(format!(
                "more than {MAX_PAIRS} pairs"
            )));
        }
        if self.0.keys().any(String::is_empty) {
            return Err(CryptoError::InvalidContext("a key is empty".into()));
        }
        if self.canonical_len() > MAX_CONTEXT_BYTES {
            return Err(CryptoError::InvalidContext(format!(
                "larger than {MAX_CONTEXT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn canonical_len(&self) -> usize {
        2 + self
            .0
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>()
    }

    /// The canonical serialisation bound as associated data: a u16 pair count, then for each
    /// pair in key order a u16 key length, the key's UTF-8 bytes, a u16 value length and the
    /// value's UTF-8 bytes (all integers big-endian). Call [`validate`](Self::validate)
    /// first; lengths beyond u16 are not representable.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.canonical_len());
        out.extend_from_slice(&u16_len(self.0.len())?.to_be_bytes());
        for (k, v) in &self.0 {
            out.extend_from_slice(&u16_len(k.len())?.to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&u16_len(v.len())?.to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        Ok(out)
    }

    /// Parses the canonical form, rejecting anything that is not exactly canonical (keys out
    /// of order or repeated, invalid UTF-8, trailing bytes), so one context has one encoding.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<EncryptionContext, CryptoError> {
        let mut rest = bytes;
        let count = take_u16(&mut rest)? as usize;
        if count > MAX_PAIRS {
            return Err(CryptoError::Malformed("too many context pairs"));
        }
        let mut map = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..count {
            let k = take_str(&mut rest)?;
            let v = take_str(&mut rest)?;
            if k.is_empty() {
                return Err(CryptoError::Malformed("empty context key"));
            }
            if let Some(prev) = &last
                && prev.as_bytes() >= k.as_bytes()
            {
                return Err(CryptoError::Malformed(
                    "context keys are not in canonical order",
                ));
            }
            last = Some(k.clone());
            map.insert(k, v);
        }
        if !rest.is_empty() {
            return Err(CryptoError::Malformed("trailing bytes after the context"));
        }
        Ok(EncryptionContext(map))
    }

    /// The keys whose values differ between `self` and `other` (present in one only, or with
    /// different values), comma-separated; for error messages.
    pub fn differing_keys(&self, other: &EncryptionContext) -> String {
        let mut keys: Vec<&str> = Vec::new();
        for (k, v) in &self.0 {
            if other.0.get(k) != Some(v) {
                keys.push(k);
            }
        }
        for k in other.0.keys() {
            if !self.0.contains_key(k) {
                keys.push(k);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys.join(", ")
    }
}

fn u16_len(n: usize) -> Result<u16, CryptoError> {
    u16::try_from(n).map_err(|_| CryptoError::InvalidContext("a key or value is too long".into()))
}

fn take_u16(rest: &mut &[u8]) -> Result<u16, CryptoError> {
    match rest.split_first_chunk::<2>() {
        Some((n, tail)) => {
            *rest = tail;
            Ok(u16::from_be_bytes(*n))
        }
        None => Err(CryptoError::Malformed("context ends early")),
    }
}

fn take_str(rest: &mut &[u8]) -> Result<String, CryptoError> {
    let n = take_u16(rest)? as usize;
    if rest.len() < n {
        return Err(CryptoError::Malformed("context ends early"));
    }
    let (s, tail) = rest.split_at(n);
    *rest = tail;
    String::from_utf8(s.to_vec()).map_err(|_| CryptoError::Malformed("context is not UTF-8"))
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl fmt::Display for EncryptionContext {
    /// `{purpose=vault, tenant=t1}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        EncryptionContext::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn canonical_form_is_sorted_and_length_prefixed() {
        let c = ctx(&[("tenant", "t1"), ("purpose", "vault")]);
        let b = c.canonical_bytes().unwrap();
        let mut want = vec![0, 2];
        for (k, v) in [("purpose", "vault"), ("tenant", "t1")] {
            want.extend_from_slice(&(k.len() as u16).to_be_bytes());
            want.extend_from_slice(k.as_bytes());
            want.extend_from_slice(&(v.len() as u16).to_be_bytes());
            want.extend_from_slice(v.as_bytes());
        }
        assert_eq!(b, want);
        assert_eq!(EncryptionContext::from_canonical_bytes(&b).unwrap(), c);
        assert_eq!(
            EncryptionContext::new().canonical_bytes().unwrap(),
            vec![0, 0]
        );
    }

    #[test]
    fn non_canonical_encodings_are_rejected() {
        let c = ctx(&[("a", "1"), ("b", "2")]);
        let mut b = c.canonical_bytes().unwrap();
        // swap the two pairs: a valid encoding of the same map, but not the canonical one
        let swapped = [&[0u8, 2][..], &b[2 + 6..], &b[2..2 + 6]].concat();
        assert!(EncryptionContext::from_canonical_bytes(&swapped).is_err());
        b.push(0);
        assert!(EncryptionContext::from_canonical_bytes(&b).is_err());
        let dup = [
            &[0u8, 2][..],
            &[0, 1, b'a', 0, 1, b'1'],
            &[0, 1, b'a', 0, 1, b'2'],
        ]
        .concat();
        assert!(EncryptionContext::from_canonical_bytes(&dup).is_err());
    }

    #[test]
    fn invalid_contexts_are_rejected() {
        assert!(EncryptionContext::from_pairs([("", "x")]).is_err());
        assert!(EncryptionContext::from_pairs([("k", "x".repeat(MAX_CONTEXT_BYTES))]).is_err());
        let many = (0..=MAX_PAIRS).map(|i| (format!("k{i}"), String::new()));
        assert!(EncryptionContext::from_pairs(many).is_err());
    }

    #[test]
    fn differing_keys_names_keys_only() {
        let a = ctx(&[("purpose", "vault"), ("tenant", "t1")]);
        let b = ctx(&[("purpose", "vault"), ("tenant", "t2"), ("x", "y")]);
        assert_eq!(a.differing_keys(&b), "tenant, x");
        assert_eq!(a.to_string(), "{purpose=vault, tenant=t1}");
    }
}
