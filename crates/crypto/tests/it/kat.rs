//! Known-answer tests for the AES-256-GCM layer, from NIST CAVP (gcmEncryptExtIV256,
//! gcmDecrypt256) and Project Wycheproof; negative vectors must be rejected.

use phiguard_crypto::aead::{Cipher, NONCE_LEN};
use serde_json::Value;

use crate::support::{data_file, hex};

fn cipher(key: &str) -> Cipher {
    Cipher::new(&hex(key).try_into().unwrap())
}

fn nonce(iv: &str) -> [u8; NONCE_LEN] {
    hex(iv).try_into().unwrap()
}

#[test]
fn nist_cavp_encrypt_vectors_match() {
    let root: Value = serde_json::from_str(&data_file("nist_cavp_aes256_gcm.json")).unwrap();
    let vectors = root["encrypt"].as_array().unwrap();
    assert_eq!(vectors.len(), 9);
    for (i, v) in vectors.iter().enumerate() {
        let s = |k: &str| v[k].as_str().unwrap();
        let c = cipher(s("Key"));
        let sealed = c
            .seal(&nonce(s("IV")), &hex(s("AAD")), &hex(s("PT")))
            .unwrap();
        let want = [hex(s("CT")), hex(s("Tag"))].concat();
        assert_eq!(sealed, want, "gcmEncryptExtIV256 record {i}");
        assert_eq!(
            c.open(&nonce(s("IV")), &hex(s("AAD")), &want).unwrap(),
            hex(s("PT")),
            "record {i} does not decrypt back"
        );
    }
}

#[test]
fn nist_cavp_decrypt_vectors_pass_and_fail() {
    let root: Value = serde_json::from_str(&data_file("nist_cavp_aes256_gcm.json")).unwrap();
    let vectors = root["decrypt"].as_array().unwrap();
    let (mut pass, mut fail) = (0, 0);
    for (i, v) in vectors.iter().enumerate() {
        let s = |k: &str| v[k].as_str().unwrap();
        let sealed = [hex(s("CT")), hex(s("Tag"))].concat();
        let got = cipher(s("Key")).open(&nonce(s("IV")), &hex(s("AAD")), &sealed);
        if v.get("fail").is_some() {
            assert!(got.is_err(), "gcmDecrypt256 FAIL record {i} was accepted");
            fail += 1;
        } else {
            assert_eq!(got.unwrap(), hex(s("PT")), "gcmDecrypt256 record {i}");
            pass += 1;
        }
    }
    assert_eq!((pass, fail), (5, 6));
}

#[test]
fn wycheproof_vectors() {
    let root: Value = serde_json::from_str(&data_file("wycheproof_aes_gcm_256.json")).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in root["testGroups"].as_array().unwrap() {
        assert_eq!(group["keySize"], 256);
        assert_eq!(group["ivSize"], 96);
        for t in group["tests"].as_array().unwrap() {
            let s = |k: &str| t[k].as_str().unwrap();
            let id = &t["tcId"];
            let c = cipher(s("key"));
            let n = nonce(s("iv"));
            let sealed = [hex(s("ct")), hex(s("tag"))].concat();
            match s("result") {
                "valid" => {
                    assert_eq!(
                        c.seal(&n, &hex(s("aad")), &hex(s("msg"))).unwrap(),
                        sealed,
                        "tcId {id}"
                    );
                    assert_eq!(
                        c.open(&n, &hex(s("aad")), &sealed).unwrap(),
                        hex(s("msg")),
                        "tcId {id}"
                    );
                    valid += 1;
                }
                "invalid" => {
                    assert!(
                        c.open(&n, &hex(s("aad")), &sealed).is_err(),
                        "tcId {id} was accepted"
                    );
                    // The ciphertext part is right; only the tag was modified.
                    let ours = c.seal(&n, &hex(s("aad")), &hex(s("msg"))).unwrap();
                    assert_eq!(
                        &ours[..ours.len() - 16],
                        hex(s("ct")).as_slice(),
                        "tcId {id}"
                    );
                    invalid += 1;
                }
                other => panic!("unexpected result {other}"),
            }
        }
    }
    assert_eq!((valid, invalid), (17, 27));
}

#[test]
fn a_wrong_aad_or_nonce_fails() {
    let c = Cipher::new(&[7; 32]);
    let sealed = c.seal(&[1; NONCE_LEN], b"aad", b"hello").unwrap();
    assert!(c.open(&[1; NONCE_LEN], b"aad", &sealed).is_ok());
    assert!(c.open(&[1; NONCE_LEN], b"aae", &sealed).is_err());
    assert!(c.open(&[2; NONCE_LEN], b"aad", &sealed).is_err());
    assert!(c.open(&[1; NONCE_LEN], b"aad", &sealed[..10]).is_err());
    assert!(c.open(&[1; NONCE_LEN], b"aad", &[]).is_err());
}
