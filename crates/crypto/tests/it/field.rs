//! Field-level encryption: one value per string, bound to table, column and row.

use phiguard_crypto::field::{FIELD_PREFIX, FieldCipher, FieldRef};
use phiguard_crypto::{EncryptionContext, RewrapOutcome};
use proptest::prelude::*;

use crate::support::{Keys, ctx, vault};

#[test]
fn round_trip_and_format() {
    let keys = Keys::new();
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    let row = FieldRef::new("mfa", "totp_secret", "user-42");
    let stored = fields.encrypt(&row, b"JBSWY3DPEHPK3PXP").unwrap();
    assert!(stored.starts_with(FIELD_PREFIX), "{stored}");
    let body = &stored[FIELD_PREFIX.len()..];
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{stored}"
    );
    assert!(!stored.contains("JBSWY3DPEHPK3PXP"));
    assert_eq!(
        &fields.decrypt(&row, &stored).unwrap()[..],
        b"JBSWY3DPEHPK3PXP"
    );
    // Two encryptions of one value differ (fresh data key and nonce).
    assert_ne!(stored, fields.encrypt(&row, b"JBSWY3DPEHPK3PXP").unwrap());
    // The empty value round-trips too.
    let empty = fields.encrypt(&row, b"").unwrap();
    assert!(fields.decrypt(&row, &empty).unwrap().is_empty());
}

#[test]
fn moved_ciphertext_fails() {
    let keys = Keys::new();
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    let row = FieldRef::new("vault_entries", "value", "17");
    let stored = fields.encrypt(&row, b"MRN-000123").unwrap();
    for (moved, differing) in [
        (FieldRef::new("vault_entries", "value", "18"), "field.row"),
        (
            FieldRef::new("vault_entries", "token", "17"),
            "field.column",
        ),
        (FieldRef::new("ai_outputs", "value", "17"), "field.table"),
    ] {
        let e = fields.decrypt(&moved, &stored).unwrap_err();
        assert_eq!(e.code(), "context_mismatch", "{e}");
        assert!(e.to_string().contains(differing), "{e}");
        assert!(!e.to_string().contains("MRN"), "{e}");
        assert_eq!(
            fields.rewrap_field(&moved, &stored).unwrap_err().code(),
            "context_mismatch"
        );
    }
    // Another tenant's cipher (other base context) cannot read it either.
    let other =
        FieldCipher::new(&keys.file, ctx(&[("purpose", "vault"), ("tenant", "t2")])).unwrap();
    assert_eq!(
        other.decrypt(&row, &stored).unwrap_err().code(),
        "context_mismatch"
    );
}

#[test]
fn tampered_and_foreign_strings_fail() {
    let keys = Keys::new();
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    let row = FieldRef::new("t", "c", "1");
    let stored = fields.encrypt(&row, b"secret value").unwrap();
    assert_eq!(
        fields.decrypt(&row, "plain text").unwrap_err().code(),
        "malformed"
    );
    assert_eq!(
        fields.decrypt(&row, "pgf1.***").unwrap_err().code(),
        "malformed"
    );
    assert!(fields.decrypt(&row, &stored[..stored.len() - 4]).is_err());
    assert!(fields.decrypt(&row, "pgf1.").is_err());
    // Flip one character in the middle of the body.
    let mut chars: Vec<char> = stored.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    assert!(fields.decrypt(&row, &flipped).is_err());
}

#[test]
fn reserved_context_keys_are_refused() {
    let keys = Keys::new();
    let base = EncryptionContext::from_pairs([("field.row", "x")]).unwrap();
    assert_eq!(
        FieldCipher::new(&keys.file, base).unwrap_err().code(),
        "invalid_context"
    );
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    assert!(fields.encrypt(&FieldRef::new("", "c", "1"), b"x").is_err());
}

#[test]
fn rotation_and_rewrap_field() {
    let mut keys = Keys::new();
    let row = FieldRef::new("ai_outputs", "completion", "9f2c");
    let v1 = {
        let fields = FieldCipher::new(&keys.file, vault()).unwrap();
        fields.encrypt(&row, b"stored completion").unwrap()
    };
    let v2 = keys.file.rotate().unwrap();
    assert_eq!(v2.version, 2);
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    assert!(!fields.is_current(&v1).unwrap());
    assert_eq!(
        &fields.decrypt(&row, &v1).unwrap()[..],
        b"stored completion"
    );
    let (outcome, moved) = fields.rewrap_field(&row, &v1).unwrap();
    assert!(
        matches!(outcome, RewrapOutcome::Rewrapped { ref to, .. } if to.version == 2),
        "{outcome:?}"
    );
    assert_ne!(moved, v1);
    assert!(fields.is_current(&moved).unwrap());
    assert_eq!(
        &fields.decrypt(&row, &moved).unwrap()[..],
        b"stored completion"
    );
    // Rewrapping again changes nothing.
    let (again, same) = fields.rewrap_field(&row, &moved).unwrap();
    assert!(matches!(again, RewrapOutcome::AlreadyCurrent { .. }));
    assert_eq!(same, moved);
    // After revoking v1, only the rewrapped value still opens.
    drop(fields);
    keys.file.revoke_version(1).unwrap();
    let fields = FieldCipher::new(&keys.file, vault()).unwrap();
    assert_eq!(fields.decrypt(&row, &v1).unwrap_err().code(), "kek_revoked");
    assert_eq!(
        &fields.decrypt(&row, &moved).unwrap()[..],
        b"stored completion"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_value_round_trips(value in proptest::collection::vec(any::<u8>(), 0..512), row in "[a-z0-9-]{0,16}") {
        let keys = Keys::new();
        let fields = FieldCipher::new(&keys.file, vault()).unwrap();
        let at = FieldRef::new("t", "c", &row);
        let stored = fields.encrypt(&at, &value).unwrap();
        prop_assert_eq!(&fields.decrypt(&at, &stored).unwrap()[..], &value[..]);
    }
}
