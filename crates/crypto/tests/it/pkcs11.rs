//! The PKCS#11 provider against SoftHSM2.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialized, once per process, and this
//! crate forbids `unsafe` (so no `std::env::set_var`). Each test therefore makes its own
//! SoftHSM2 configuration and tokens in a temporary folder, then runs the matching `inner_*`
//! test (ignored by default) in a child process of this test binary with `SOFTHSM2_CONF` set.
//! Nothing global is touched.
//!
//! SoftHSM2 must be installed (`.ci/setup.d/20-softhsm.sh`); without it these tests fail,
//! unless `PHIGUARD_SKIP_HSM=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use phiguard_crypto::provider::pkcs11::SOFTHSM2_MODULE;
use phiguard_crypto::{
    CryptoError, DataKey, KeyProvider, Pkcs11Config, Pkcs11Provider, SecretString, decrypt, encrypt,
};

use crate::support::{ctx, vault};

const TOKEN: &str = "phiguard-test";
const PIN_TOKEN: &str = "phiguard-pin";
const PIN: &str = "4711-user";
const SO_PIN: &str = "4711-so";
const INNER_ENV: &str = "PHIGUARD_TEST_HSM_INNER";

/// True when SoftHSM2 is there; false when it is missing and PHIGUARD_SKIP_HSM=1; panics
/// with how to install it otherwise.
fn softhsm_ready() -> bool {
    let util = Command::new("softhsm2-util").arg("--version").output();
    if Path::new(SOFTHSM2_MODULE).is_file() && util.is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var("PHIGUARD_SKIP_HSM").as_deref() == Ok("1") {
        eprintln!("SKIPPED: SoftHSM2 is not installed and PHIGUARD_SKIP_HSM=1");
        return false;
    }
    panic!(
        "SoftHSM2 is not installed ({SOFTHSM2_MODULE} or softhsm2-util missing): run \
         `bash .ci/setup.d/20-softhsm.sh` (CI runs it), or set PHIGUARD_SKIP_HSM=1 to skip"
    );
}

/// Writes a SoftHSM2 config in `dir` and initializes the two test tokens.
fn make_tokens(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    for label in [TOKEN, PIN_TOKEN] {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    conf
}

/// Runs `pkcs11::inner_<name>` in a child process with its own SoftHSM2 tokens.
fn run_inner(name: &str) {
    if !softhsm_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = make_tokens(dir.path());
    let test = format!("pkcs11::inner_{name}");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--ignored", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(INNER_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its child process:\n{stdout}\n{stderr}"
    );
}

/// In the child process: true. Run directly (e.g. `cargo test -- --ignored`): false, and
/// the inner test does nothing (the outer test of the same name runs it properly).
fn inner() -> bool {
    std::env::var_os(INNER_ENV).is_some()
}

fn config(key_label: &str, create: bool) -> Pkcs11Config {
    Pkcs11Config {
        module: SOFTHSM2_MODULE.into(),
        token_label: TOKEN.into(),
        key_label: key_label.into(),
        pin: SecretString::from(PIN.to_string()),
        create_if_missing: create,
    }
}

#[test]
fn wrap_unwrap_round_trip() {
    run_inner("wrap_unwrap_round_trip");
}

#[test]
#[ignore = "run in a child process by wrap_unwrap_round_trip"]
fn inner_wrap_unwrap_round_trip() {
    if !inner() {
        return;
    }
    let p = Pkcs11Provider::open(&config("kek", true)).unwrap();
    assert_eq!(p.name(), "pkcs11");
    assert_eq!(p.versions(), vec![1]);
    let cur = p.current().unwrap();
    assert_eq!(cur.id, "phiguard-test/kek");
    assert_eq!(cur.version, 1);

    let key = DataKey::generate().unwrap();
    let w = p.wrap(&key, &vault()).unwrap();
    assert_eq!(w.provider, "pkcs11");
    assert_eq!(w.blob.len(), 12 + 32 + 16);
    let back = p.unwrap(&w, &vault()).unwrap();
    assert_eq!(back.expose_secret(), key.expose_secret());
    // Two wraps of one key differ (fresh IV).
    assert_ne!(p.wrap(&key, &vault()).unwrap().blob, w.blob);

    // Another context, an altered blob, another version: errors, never a key.
    let other = ctx(&[("purpose", "vault"), ("tenant", "t2")]);
    assert!(matches!(
        p.unwrap(&w, &other),
        Err(CryptoError::Authentication(_))
    ));
    let mut bad = w.clone();
    bad.blob[20] ^= 1;
    assert!(matches!(
        p.unwrap(&bad, &vault()),
        Err(CryptoError::Authentication(_))
    ));
    let mut v9 = w.clone();
    v9.kek.version = 9;
    assert!(matches!(
        p.unwrap(&v9, &vault()),
        Err(CryptoError::UnknownKek { .. })
    ));
    let mut other_provider = w.clone();
    other_provider.provider = "local".into();
    assert!(matches!(
        p.unwrap(&other_provider, &vault()),
        Err(CryptoError::WrongProvider { .. })
    ));

    // The KEK is sensitive and not extractable; Debug shows no PIN.
    let shown = format!("{p:?}");
    assert!(!shown.contains(PIN), "{shown}");
    // A second provider in the same process shares the initialized module.
    let again = Pkcs11Provider::open(&config("kek", false)).unwrap();
    assert_eq!(
        again.unwrap(&w, &vault()).unwrap().expose_secret(),
        key.expose_secret()
    );
}

#[test]
fn envelope_round_trip() {
    run_inner("envelope_round_trip");
}

#[test]
#[ignore = "run in a child process by envelope_round_trip"]
fn inner_envelope_round_trip() {
    if !inner() {
        return;
    }
    let p = Pkcs11Provider::open(&config("env", true)).unwrap();
    let msg = crate::support::bytes(200_000, 7);
    let sealed = encrypt(&p, &msg, &vault()).unwrap();
    assert_eq!(decrypt(&p, &sealed, &vault()).unwrap(), msg);
    let other = ctx(&[("purpose", "vault"), ("tenant", "t2")]);
    assert!(decrypt(&p, &sealed, &other).is_err());
}

#[test]
fn rotation_keeps_old_versions() {
    run_inner("rotation_keeps_old_versions");
}

#[test]
#[ignore = "run in a child process by rotation_keeps_old_versions"]
fn inner_rotation_keeps_old_versions() {
    if !inner() {
        return;
    }
    let mut p = Pkcs11Provider::open(&config("rot", true)).unwrap();
    let v1 = encrypt(&p, b"under v1", &vault()).unwrap();
    let k2 = p.rotate().unwrap();
    assert_eq!(k2.version, 2);
    assert_eq!(p.current().unwrap().version, 2);
    let v2 = encrypt(&p, b"under v2", &vault()).unwrap();
    // A fresh provider finds both versions on the token, v2 current.
    let fresh = Pkcs11Provider::open(&config("rot", false)).unwrap();
    assert_eq!(fresh.versions(), vec![1, 2]);
    assert_eq!(fresh.current().unwrap().version, 2);
    assert_eq!(decrypt(&fresh, &v1, &vault()).unwrap(), b"under v1");
    assert_eq!(decrypt(&fresh, &v2, &vault()).unwrap(), b"under v2");
    let h1 = phiguard_crypto::Header::parse(&v1).unwrap().header;
    assert_eq!(h1.wrapped.kek.version, 1);
    assert!(!fresh.is_current(&h1.wrapped).unwrap());
    // Another key label on the same token is another KEK.
    let other = Pkcs11Provider::open(&config("rot-other", true)).unwrap();
    assert!(matches!(
        decrypt(&other, &v1, &vault()),
        Err(CryptoError::UnknownKek { .. })
    ));
}

#[test]
fn wrong_pin_fails_clearly() {
    run_inner("wrong_pin_fails_clearly");
}

#[test]
#[ignore = "run in a child process by wrong_pin_fails_clearly"]
fn inner_wrong_pin_fails_clearly() {
    if !inner() {
        return;
    }
    let mut c = config("kek", true);
    c.token_label = PIN_TOKEN.into();
    c.pin = SecretString::from("not-the-pin-0000".to_string());
    let e = Pkcs11Provider::open(&c).unwrap_err().to_string();
    assert!(e.contains("wrong PIN") && e.contains(PIN_TOKEN), "{e}");
    assert!(!e.contains("not-the-pin-0000"), "{e}");

    // A token that does not exist, and a KEK that does not exist, are named.
    let mut c = config("kek", false);
    c.token_label = "no-such-token".into();
    let e = Pkcs11Provider::open(&c).unwrap_err().to_string();
    assert!(e.contains("no-such-token"), "{e}");
    let e = Pkcs11Provider::open(&config("absent", false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent-v<N>"), "{e}");
}

#[test]
fn missing_module_fails_clearly() {
    let mut c = config("kek", true);
    c.module = "/nonexistent/lib/libsofthsm2.so".into();
    let e = Pkcs11Provider::open(&c).unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/lib/libsofthsm2.so") && e.contains("does not exist"),
        "{e}"
    );
    // A file that is not a PKCS#11 library.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not a library").unwrap();
    c.module = fake;
    let e = Pkcs11Provider::open(&c).unwrap_err().to_string();
    assert!(e.contains("cannot load PKCS#11 module"), "{e}");
}
