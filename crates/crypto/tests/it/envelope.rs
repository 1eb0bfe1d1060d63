//! The envelope format: round trips, and every way a ciphertext must fail closed.

use std::io::Read;
use std::sync::OnceLock;

use phiguard_crypto::header::{Header, MIN_FRAME_LEN};
use phiguard_crypto::{
    CryptoError, DataKey, EncryptOptions, EncryptionContext, KeyProvider, LocalKeyFile, SealParams,
    decrypt, decrypt_stream, encrypt, encrypt_stream, encrypt_with,
};
use proptest::prelude::*;

use crate::support::{Keys, bytes, ctx, vault};

/// One key file and one small two-frame ciphertext, shared by the property tests.
fn fixture() -> &'static (Keys, Vec<u8>) {
    static F: OnceLock<(Keys, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let keys = Keys::new();
        let ct = encrypt_with(
            &keys.file,
            &bytes(100, 1),
            &vault(),
            &EncryptOptions { frame_len: 64 },
        )
        .unwrap();
        (keys, ct)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// decrypt(encrypt(x, ctx)) = x for sizes from empty to over 1 MiB, across frame sizes.
    #[test]
    fn round_trip(
        len in prop_oneof![Just(0usize), 0usize..600, (1usize << 20)..(1usize << 20) + 70_000],
        seed in any::<u64>(),
        frame_len in prop_oneof![Just(MIN_FRAME_LEN), Just(1000u32), Just(65_536u32)],
        tenant in "[a-z0-9]{0,12}",
    ) {
        let (keys, _) = fixture();
        let plaintext = bytes(len, seed);
        let context = ctx(&[("purpose", "vault"), ("tenant", &tenant)]);
        let ct = encrypt_with(&keys.file, &plaintext, &context, &EncryptOptions { frame_len }).unwrap();
        prop_assert_eq!(decrypt(&keys.file, &ct, &context).unwrap(), plaintext);
    }

    /// Random bytes, truncations and corruptions of a valid ciphertext are always errors,
    /// never panics and never plaintext.
    #[test]
    fn garbage_is_always_an_error(junk in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (keys, _) = fixture();
        prop_assert!(decrypt(&keys.file, &junk, &vault()).is_err());
        let mut with_magic = b"PGEN\x01\x00\x01".to_vec();
        with_magic.extend_from_slice(&junk);
        prop_assert!(decrypt(&keys.file, &with_magic, &vault()).is_err());
    }

    #[test]
    fn truncated_ciphertexts_are_errors(cut in 0usize..10_000) {
        let (keys, ct) = fixture();
        let cut = cut % ct.len();
        prop_assert!(decrypt(&keys.file, &ct[..cut], &vault()).is_err());
    }

    #[test]
    fn corrupted_ciphertexts_are_errors(
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let (keys, ct) = fixture();
        let mut bad = ct.clone();
        for (at, x) in edits {
            let at = at % bad.len();
            bad[at] ^= x;
        }
        prop_assert!(decrypt(&keys.file, &bad, &vault()).is_err());
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let (keys, ct) = fixture();
    assert_eq!(decrypt(&keys.file, ct, &vault()).unwrap(), bytes(100, 1));
    for byte in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                decrypt(&keys.file, &bad, &vault()).is_err(),
                "flip of bit {bit} in byte {byte} was not detected"
            );
        }
    }
}

#[test]
fn appended_or_dropped_frames_are_detected() {
    let (keys, ct) = fixture();
    let header_len = Header::parse(ct).unwrap().len;
    // Two frames: 64 + 16 and 36 + 16 bytes.
    assert_eq!(ct.len() - header_len, 64 + 16 + 36 + 16);
    let first_frame_only = &ct[..header_len + 80];
    assert!(matches!(
        decrypt(&keys.file, first_frame_only, &vault()),
        Err(CryptoError::Authentication(_))
    ));
    let mut extended = ct.clone();
    extended.extend_from_slice(&ct[header_len..header_len + 80]);
    assert!(decrypt(&keys.file, &extended, &vault()).is_err());
    let mut swapped = ct[..header_len].to_vec();
    swapped.extend_from_slice(&ct[header_len + 80..]);
    swapped.extend_from_slice(&ct[header_len..header_len + 80]);
    assert!(decrypt(&keys.file, &swapped, &vault()).is_err());
}

#[test]
fn frame_boundaries_round_trip() {
    let keys = Keys::new();
    for len in [0, 1, 63, 64, 65, 127, 128, 129, 640] {
        let p = bytes(len, len as u64);
        let ct = encrypt_with(&keys.file, &p, &vault(), &EncryptOptions { frame_len: 64 }).unwrap();
        assert_eq!(
            decrypt(&keys.file, &ct, &vault()).unwrap(),
            p,
            "length {len}"
        );
    }
}

/// A reader that hands out a few bytes at a time, to exercise the framing's look-ahead.
struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streaming_with_short_reads() {
    let keys = Keys::new();
    let p = bytes(5000, 9);
    let mut ct = Vec::new();
    let info = encrypt_stream(
        &keys.file,
        &vault(),
        &EncryptOptions { frame_len: 256 },
        Dribble(&p, 0),
        &mut ct,
    )
    .unwrap();
    assert_eq!(info.plaintext_len, 5000);
    assert_eq!(info.ciphertext_len, ct.len() as u64);
    let mut out = Vec::new();
    let d = decrypt_stream(&keys.file, Dribble(&ct, 3), &mut out, Some(&vault())).unwrap();
    assert_eq!(out, p);
    assert_eq!(d.plaintext_len, 5000);
    assert_eq!(d.header.context, vault());
}

#[test]
fn context_mismatch_fails_and_names_only_keys() {
    let keys = Keys::new();
    let ct = encrypt(&keys.file, b"secret note", &vault()).unwrap();
    for other in [
        ctx(&[("purpose", "vault"), ("tenant", "t2")]),
        ctx(&[("purpose", "vault")]),
        ctx(&[("purpose", "vault"), ("tenant", "t1"), ("extra", "x")]),
        EncryptionContext::new(),
    ] {
        let err = decrypt(&keys.file, &ct, &other).unwrap_err();
        assert!(matches!(err, CryptoError::ContextMismatch { .. }), "{err}");
        assert!(!err.to_string().contains("t1"), "{err}");
    }
    // Rewriting the stored context to match a wrong expectation breaks authentication.
    let parsed = Header::parse(&ct).unwrap();
    let mut forged = parsed.header.clone();
    forged.context = ctx(&[("purpose", "vault"), ("tenant", "t2")]);
    let mut bad = forged.to_bytes().unwrap();
    bad.extend_from_slice(&ct[parsed.len..]);
    assert!(decrypt(&keys.file, &bad, &forged.context).is_err());
}

#[test]
fn a_different_key_file_cannot_decrypt() {
    let a = Keys::new();
    let b = Keys::new();
    let ct = encrypt(&a.file, b"x", &vault()).unwrap();
    let err = decrypt(&b.file, &ct, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::UnknownKek { .. }), "{err}");
    assert!(err.to_string().contains("wrong key"), "{err}");
}

#[test]
fn same_key_id_but_different_kek_bytes_fails() {
    let a = Keys::new();
    let ct = encrypt(&a.file, b"x", &vault()).unwrap();
    // A copy of the key file whose version-1 key was replaced (fingerprint updated).
    let text = std::fs::read_to_string(a.path()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let other = [0x42u8; 32];
    v["keys"][0]["key"] = base64_of(&other).into();
    v["keys"][0]["fingerprint"] = phiguard_crypto::provider::local::fingerprint_of(&other).into();
    let copy = a.dir.path().join("other.json");
    std::fs::write(&copy, serde_json::to_string(&v).unwrap()).unwrap();
    let b = LocalKeyFile::open(&copy, None).unwrap();
    assert_eq!(b.id(), a.file.id());
    let err = decrypt(&b, &ct, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::Authentication(_)), "{err}");
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn swapped_commitment_is_detected_before_decrypting() {
    let keys = Keys::new();
    let a = encrypt(&keys.file, b"message a", &vault()).unwrap();
    let b = encrypt(&keys.file, b"message b", &vault()).unwrap();
    // Offsets 55..87 hold the commitment (docs/encryption.md).
    let mut bad = a.clone();
    bad[55..87].copy_from_slice(&b[55..87]);
    let err = decrypt(&keys.file, &bad, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::CommitmentMismatch), "{err}");
}

#[test]
fn a_data_key_that_does_not_match_the_commitment_is_rejected() {
    // The shape of a "decrypts under two keys" ciphertext: a header whose key section
    // delivers a different data key than the one the commitment (and the frames) were made
    // with. Decryption must stop at the commitment, before any frame is tried, even though
    // the frames here are garbage that would fail authentication too.
    let keys = Keys::new();
    let ct = encrypt(&keys.file, &bytes(300, 5), &vault()).unwrap();
    let parsed = Header::parse(&ct).unwrap();
    let other_key = DataKey::generate().unwrap();
    let mut forged = parsed.header.clone();
    forged.wrapped = keys.file.wrap(&other_key, &vault()).unwrap();
    let mut bad = forged.to_bytes().unwrap();
    bad.extend(std::iter::repeat_n(0xEEu8, ct.len() - parsed.len));
    let err = decrypt(&keys.file, &bad, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::CommitmentMismatch), "{err}");

    // With the commitment recomputed for the other key, the header is consistent but the
    // frames (made under the first key) do not verify.
    forged.commitment = phiguard_crypto::envelope::commitment_of(&other_key, &forged.salt).unwrap();
    let mut bad = forged.to_bytes().unwrap();
    bad.extend_from_slice(&ct[parsed.len..]);
    assert!(matches!(
        decrypt(&keys.file, &bad, &vault()),
        Err(CryptoError::Authentication(_))
    ));
}

#[test]
fn unknown_version_and_algorithm_are_named() {
    let keys = Keys::new();
    let ct = encrypt(&keys.file, b"x", &vault()).unwrap();
    let mut v2 = ct.clone();
    v2[4] = 2;
    let err = decrypt(&keys.file, &v2, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::UnknownVersion(2)), "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
    let mut alg = ct.clone();
    alg[6] = 9;
    assert!(matches!(
        decrypt(&keys.file, &alg, &vault()),
        Err(CryptoError::UnknownAlgorithm(9))
    ));
    assert!(matches!(
        decrypt(&keys.file, b"hello", &vault()),
        Err(CryptoError::NotCiphertext)
    ));
    assert!(matches!(
        decrypt(&keys.file, &ct[..40], &vault()),
        Err(CryptoError::Truncated(_))
    ));
}

#[test]
fn revoked_version_fails_clearly() {
    let mut keys = Keys::new();
    let old = encrypt(&keys.file, b"old", &vault()).unwrap();
    let v2 = keys.file.rotate().unwrap();
    assert_eq!(v2.version, 2);
    let new = encrypt(&keys.file, b"new", &vault()).unwrap();
    assert_eq!(Header::parse(&new).unwrap().header.wrapped.kek.version, 2);
    assert_eq!(decrypt(&keys.file, &old, &vault()).unwrap(), b"old");
    assert!(keys.file.revoke_version(1).unwrap());
    let err = decrypt(&keys.file, &old, &vault()).unwrap_err();
    assert!(matches!(err, CryptoError::Revoked { .. }), "{err}");
    assert!(err.to_string().contains("v1 is revoked"), "{err}");
    assert_eq!(decrypt(&keys.file, &new, &vault()).unwrap(), b"new");
    // A fresh open of the file sees the revocation too.
    let reopened = LocalKeyFile::open(&keys.path(), None).unwrap();
    assert!(matches!(
        decrypt(&reopened, &old, &vault()),
        Err(CryptoError::Revoked { .. })
    ));
    // The current version cannot be revoked.
    assert!(LocalKeyFile::revoke(&keys.path(), 2).is_err());
    // Revoking twice changes nothing.
    assert!(!LocalKeyFile::revoke(&keys.path(), 1).unwrap());
    let _ = SealParams::DEFAULT;
}
