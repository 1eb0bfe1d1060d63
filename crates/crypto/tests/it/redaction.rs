//! Key types never show key bytes in `Debug` or `Display`, and neither do errors or status.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use phiguard_crypto::provider::local;
use phiguard_crypto::{DataKey, KekMaterial, LocalKeyFile, SealParams, SecretString};

use crate::support::Keys;

fn shows_no_bytes(shown: &str, key: &[u8; 32]) {
    assert!(!shown.contains(&hex::encode(key)), "{shown}");
    assert!(!shown.contains(&B64.encode(key)), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &key[..4]).trim_end_matches(']').to_string()),
        "{shown}"
    );
}

#[test]
fn debug_and_display_of_key_types_never_show_key_bytes() {
    let raw = [0x5cu8; 32];
    let dk = DataKey::from_bytes(raw);
    let kek = KekMaterial::from_bytes(raw);
    for shown in [
        format!("{dk:?}"),
        format!("{dk:#?}"),
        format!("{dk}"),
        format!("{kek:?}"),
        format!("{kek}"),
    ] {
        assert!(shown.contains("REDACTED"), "{shown}");
        shows_no_bytes(&shown, &raw);
    }
    let pass = SecretString::from("hunter2-passphrase".to_string());
    assert!(!format!("{pass:?}").contains("hunter2"));
}

#[test]
fn provider_status_and_errors_never_show_key_bytes() {
    let keys = Keys::new();
    let text = std::fs::read_to_string(keys.path()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let key_b64 = v["keys"][0]["key"].as_str().unwrap().to_string();
    let raw: [u8; 32] = B64.decode(&key_b64).unwrap().try_into().unwrap();
    let shown = [
        format!("{:?}", keys.file),
        format!("{:?}", keys.file.status()),
        serde_json::to_string(&local::status(&keys.path()).unwrap()).unwrap(),
    ];
    for s in &shown {
        assert!(!s.contains(&key_b64), "{s}");
        shows_no_bytes(s, &raw);
    }
    let wrong = LocalKeyFile::create(
        &keys.dir.path().join("sealed.json"),
        Some(&SecretString::from("right-one".to_string())),
        &SealParams::MINIMUM,
    )
    .unwrap();
    drop(wrong);
    let err = LocalKeyFile::open(
        &keys.dir.path().join("sealed.json"),
        Some(&SecretString::from("the-wrong-one".to_string())),
    )
    .unwrap_err();
    let s = format!("{err} {err:?}");
    assert!(
        !s.contains("the-wrong-one") && !s.contains("right-one"),
        "{s}"
    );
}
