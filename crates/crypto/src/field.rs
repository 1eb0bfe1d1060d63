//! Field-level encryption for the most sensitive stored values (stored AI outputs,
//! tokenization vault entries, TOTP secrets): one value, one envelope, one string column.
//!
//! [`FieldCipher::encrypt`] seals a value with the envelope ([`crate::encrypt`]) under an
//! encryption context that names the table, the column and the row id (plus any base pairs
//! the caller fixes, such as a tenant), so a ciphertext copied to another row or column does
//! not decrypt there. The output is `pgf1.` followed by the envelope ciphertext in unpadded
//! base64url: ASCII, safe in SQL text columns, JSON and URLs, and versioned by its prefix.
//!
//! Context values are stored in clear in the envelope header: row ids must be opaque keys,
//! never PHI (no MRNs, no names).
//!
//! ```
//! use phiguard_crypto::field::{FieldCipher, FieldRef};
//! use phiguard_crypto::{EncryptionContext, LocalKeyFile, SealParams};
//!
//! # fn main() -> Result<(), phiguard_crypto::CryptoError> {
//! # let dir = tempfile::tempdir().map_err(phiguard_crypto::CryptoError::io("tempdir"))?;
//! let keys = LocalKeyFile::create(&dir.path().join("kek.json"), None, &SealParams::DEFAULT)?;
//! let fields = FieldCipher::new(&keys, EncryptionContext::from_pairs([("tenant", "t1")])?)?;
//! let row = FieldRef::new("mfa", "totp_secret", "user-42");
//! let stored = fields.encrypt(&row, b"JBSWY3DPEHPK3PXP")?;
//! assert!(stored.starts_with("pgf1."));
//! assert_eq!(&fields.decrypt(&row, &stored)?[..], b"JBSWY3DPEHPK3PXP");
//! let other_row = FieldRef::new("mfa", "totp_secret", "user-43");
//! assert!(fields.decrypt(&other_row, &stored).is_err());
//! # Ok(())
//! # }
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use zeroize::Zeroizing;

use crate::envelope::{self, RewrapOutcome};
use crate::provider::KeyProvider;
use crate::{CryptoError, EncryptionContext, Header};

/// The version prefix of every encrypted field.
pub const FIELD_PREFIX: &str = "pgf1.";
/// The context keys a [`FieldCipher`] adds; base contexts may not use them.
pub const CONTEXT_TABLE: &str = "field.table";
pub const CONTEXT_COLUMN: &str = "field.column";
pub const CONTEXT_ROW: &str = "field.row";

/// Where a value is stored: its table, column and row id. None of them may be PHI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl<'a> FieldRef<'a> {
    pub fn new(table: &'a str, column: &'a str, row_id: &'a str) -> FieldRef<'a> {
        FieldRef {
            table,
            column,
            row_id,
        }
    }
}

/// Encrypts and decrypts single stored values with a key provider.
pub struct FieldCipher<P: KeyProvider> {
    provider: P,
    base: EncryptionContext,
}

impl<P: KeyProvider> std::fmt::Debug for FieldCipher<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("provider", &self.provider.name())
            .field("base", &self.base)
            .finish()
    }
}

impl<P: KeyProvider> FieldCipher<P> {
    /// A cipher over `provider` whose every context also holds the `base` pairs (e.g. the
    /// tenant or purpose). `base` may not use the `field.*` keys.
    pub fn new(provider: P, base: EncryptionContext) -> Result<FieldCipher<P>, CryptoError> {
        if let Some((k, _)) = base
            .iter()
            .find(|(k, _)| [CONTEXT_TABLE, CONTEXT_COLUMN, CONTEXT_ROW].contains(k))
        {
            return Err(CryptoError::InvalidContext(format!(
                "key `{k}` is reserved for field encryption"
            )));
        }
        base.validate()?;
        Ok(FieldCipher { provider, base })
    }

    /// The key provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The encryption context of one field: the base pairs plus table, column and row.
    pub fn context(&self, field: &FieldRef<'_>) -> Result<EncryptionContext, CryptoError> {
        for (name, value) in [("table", field.table), ("column", field.column)] {
            if value.is_empty() {
                return Err(CryptoError::InvalidContext(format!(
                    "the field's {name} is empty"
                )));
            }
        }
        let mut ctx = self.base.clone();
        ctx.insert(CONTEXT_TABLE, field.table);
        ctx.insert(CONTEXT_COLUMN, field.column);
        ctx.insert(CONTEXT_ROW, field.row_id);
        ctx.validate()?;
        Ok(ctx)
    }

    /// Encrypts one value for `field`: `pgf1.` ‖ base64url(envelope ciphertext).
    pub fn encrypt(&self, field: &FieldRef<'_>, plaintext: &[u8]) -> Result<String, CryptoError> {
        let ctx = self.context(field)?;
        let sealed = envelope::encrypt(&self.provider, plaintext, &ctx)?;
        Ok(encode(&sealed))
    }

    /// Decrypts a value stored in `field`. Fails with [`CryptoError::ContextMismatch`] when
    /// it was encrypted for another table, column or row (or base context).
    pub fn decrypt(
        &self,
        field: &FieldRef<'_>,
        stored: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let ctx = self.context(field)?;
        let sealed = decode(stored)?;
        Ok(Zeroizing::new(envelope::decrypt(
            &self.provider,
            &sealed,
            &ctx,
        )?))
    }

    /// True when `stored` is already wrapped under the provider's current KEK.
    pub fn is_current(&self, stored: &str) -> Result<bool, CryptoError> {
        let sealed = decode(stored)?;
        let parsed = Header::parse(&sealed)?;
        self.provider.is_current(&parsed.header.wrapped)
    }

    /// Moves a stored value to the provider's current KEK version (only the data key is
    /// unwrapped and wrapped again). Checks first that it belongs to `field`. Returns what
    /// happened and the string to store (the input itself when it was already current).
    pub fn rewrap_field(
        &self,
        field: &FieldRef<'_>,
        stored: &str,
    ) -> Result<(RewrapOutcome, String), CryptoError> {
        let ctx = self.context(field)?;
        let sealed = decode(stored)?;
        let parsed = Header::parse(&sealed)?;
        if parsed.header.context != ctx {
            let keys: Vec<&str> = ctx
                .iter()
                .map(|(k, _)| k)
                .chain(parsed.header.context.iter().map(|(k, _)| k))
                .filter(|k| ctx.get(k) != parsed.header.context.get(k))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(CryptoError::ContextMismatch {
                keys: keys.join(", "),
            });
        }
        let (outcome, rewritten) = envelope::rewrap(&self.provider, &sealed)?;
        let out = match rewritten {
            Some(bytes) => encode(&bytes),
            None => stored.to_string(),
        };
        Ok((outcome, out))
    }
}

fn encode(sealed: &[u8]) -> String {
    let mut out = String::with_capacity(FIELD_PREFIX.len() + sealed.len().div_ceil(3) * 4);
    out.push_str(FIELD_PREFIX);
    B64URL.encode_string(sealed, &mut out);
    out
}

/// The KEK (id and version) a stored encrypted field is wrapped under, read from its header
/// without any key: what revoking a KEK version would make unreadable.
pub fn field_kek(stored: &str) -> Result<crate::KekRef, CryptoError> {
    let sealed = decode(stored)?;
    Ok(Header::parse(&sealed)?.header.wrapped.kek)
}

fn decode(stored: &str) -> Result<Vec<u8>, CryptoError> {
    let body = stored
        .strip_prefix(FIELD_PREFIX)
        .ok_or(CryptoError::Malformed(
            "not an encrypted field (no pgf1. prefix)",
        ))?;
    B64URL
        .decode(body.as_bytes())
        .map_err(|_| CryptoError::Malformed("the encrypted field is not base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_foreign_strings() {
        assert!(matches!(decode("abc"), Err(CryptoError::Malformed(_))));
        assert!(matches!(decode("pgf1.@@"), Err(CryptoError::Malformed(_))));
        assert_eq!(decode(&encode(b"xyz")).unwrap(), b"xyz");
    }
}
