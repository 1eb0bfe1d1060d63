//! The local key file: sealing, permissions, rotation, rewrap of files, concurrency.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use phiguard_crypto::files::{
    collect_ciphertext_files, read_file_header, rewrap_file, rewrap_files,
};
use phiguard_crypto::header::Header;
use phiguard_crypto::provider::local::{self, KeyOrigin};
use phiguard_crypto::{
    CryptoError, LocalKeyFile, RewrapOutcome, SealParams, SecretString, decrypt, encrypt,
};

use crate::support::{Keys, bytes, vault};

fn pass(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn key_file_and_folder_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/keys/kek.json");
    let (mut kf, origin) = LocalKeyFile::open_or_create(&path, None, &SealParams::DEFAULT).unwrap();
    assert_eq!(origin, KeyOrigin::Created);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    kf.rotate().unwrap();
    assert_eq!(mode(&path), 0o600, "after rotate");
    kf.seal(&pass("correct horse"), &SealParams::MINIMUM)
        .unwrap();
    assert_eq!(mode(&path), 0o600, "after seal");
    LocalKeyFile::revoke(&path, 1).unwrap();
    assert_eq!(mode(&path), 0o600, "after revoke");
    assert!(local::status(&path).unwrap().private);
    let (_, origin) =
        LocalKeyFile::open_or_create(&path, Some(&pass("correct horse")), &SealParams::DEFAULT)
            .unwrap();
    assert_eq!(origin, KeyOrigin::Loaded);
}

#[test]
fn sealed_key_file_needs_the_right_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.json");
    let kf = LocalKeyFile::create(
        &path,
        Some(&pass("s3cret passphrase")),
        &SealParams::MINIMUM,
    )
    .unwrap();
    assert!(kf.is_sealed());
    let ct = encrypt(&kf, b"hello", &vault()).unwrap();
    drop(kf);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("argon2id"));
    assert!(text.contains("sealed_key"));
    assert!(
        !text.contains("\"key\""),
        "a sealed file holds no plain keys"
    );

    let err = LocalKeyFile::open(&path, None).unwrap_err();
    assert!(
        matches!(err, CryptoError::PassphraseRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sealed"), "{err}");

    let err = LocalKeyFile::open(&path, Some(&pass("wrong passphrase"))).unwrap_err();
    assert!(matches!(err, CryptoError::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert!(err.to_string().contains("kek.json"), "{err}");
    assert!(
        !err.to_string()
            .contains("wrong passphrase for key file wrong"),
        "{err}"
    );

    let kf = LocalKeyFile::open(&path, Some(&pass("s3cret passphrase"))).unwrap();
    assert_eq!(decrypt(&kf, &ct, &vault()).unwrap(), b"hello");
    // Status and revoke work without the passphrase.
    let st = local::status(&path).unwrap();
    assert!(st.sealed);
    assert_eq!(st.seal, Some(SealParams::MINIMUM));
}

#[test]
fn seal_and_unseal_keep_the_keys() {
    let mut keys = Keys::new();
    let before = encrypt(&keys.file, b"before", &vault()).unwrap();
    let fp = keys.file.status().versions[0].fingerprint.clone();
    keys.file.seal(&pass("pw-1"), &SealParams::MINIMUM).unwrap();
    assert!(
        keys.file.seal(&pass("pw-2"), &SealParams::MINIMUM).is_err(),
        "sealing twice"
    );
    let rotated = keys.file.rotate().unwrap(); // a new version is sealed too
    let sealed = LocalKeyFile::open(&keys.path(), Some(&pass("pw-1"))).unwrap();
    assert_eq!(sealed.status().versions.len(), 2);
    assert_eq!(sealed.status().versions[0].fingerprint, fp);
    assert_eq!(decrypt(&sealed, &before, &vault()).unwrap(), b"before");
    assert_eq!(sealed.current().unwrap(), rotated);
    keys.file.unseal().unwrap();
    assert!(keys.file.unseal().is_err(), "unsealing twice");
    let plain = LocalKeyFile::open(&keys.path(), None).unwrap();
    assert!(!plain.is_sealed());
    assert_eq!(decrypt(&plain, &before, &vault()).unwrap(), b"before");
    assert!(
        SealParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1
        }
        .validate_new()
        .is_err()
    );
}

use phiguard_crypto::KeyProvider;

/// Writes `n` ciphertext files (two in a subfolder) and returns them with their plaintexts.
fn write_files(keys: &Keys, n: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = keys.data_dir();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    (0..n)
        .map(|i| {
            let p = bytes(i * 997 + 1, i as u64);
            let path = if i < 2 {
                dir.join("sub").join(format!("f{i}.pgenc"))
            } else {
                dir.join(format!("f{i}.pgenc"))
            };
            std::fs::write(&path, encrypt(&keys.file, &p, &vault()).unwrap()).unwrap();
            (path, p)
        })
        .collect()
}

#[test]
fn rotate_then_rewrap_moves_every_file_and_keeps_it_decryptable() {
    let mut keys = Keys::new();
    let files = write_files(&keys, 8);
    std::fs::write(keys.data_dir().join("notes.txt"), b"not a ciphertext").unwrap();
    let frames_before: Vec<Vec<u8>> = files
        .iter()
        .map(|(p, _)| {
            let ct = std::fs::read(p).unwrap();
            ct[Header::parse(&ct).unwrap().len..].to_vec()
        })
        .collect();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&files[3].0, std::fs::Permissions::from_mode(0o640)).unwrap();
    let modes: Vec<u32> = files.iter().map(|(p, _)| mode(p)).collect();
    let v2 = keys.file.rotate().unwrap();
    assert_eq!(keys.file.current().unwrap(), v2);

    let targets = collect_ciphertext_files(&[keys.data_dir()]).unwrap();
    assert_eq!(targets.len(), 8, "only *.pgenc files, subfolders included");
    let report = rewrap_files(&keys.file, &targets, |_, _| {});
    assert_eq!(report.rewrapped.len(), 8);
    assert!(report.failed.is_empty());

    for (((path, plain), frames), m) in files.iter().zip(&frames_before).zip(&modes) {
        let ct = std::fs::read(path).unwrap();
        let parsed = Header::parse(&ct).unwrap();
        assert_eq!(parsed.header.wrapped.kek, v2, "{}", path.display());
        assert_eq!(
            &ct[parsed.len..],
            frames.as_slice(),
            "the payload is untouched"
        );
        assert_eq!(&decrypt(&keys.file, &ct, &vault()).unwrap(), plain);
        assert_eq!(mode(path), *m, "permissions kept");
    }
    // After rewrap the old version can be revoked and everything still decrypts.
    keys.file.revoke_version(1).unwrap();
    for (path, plain) in &files {
        let ct = std::fs::read(path).unwrap();
        assert_eq!(&decrypt(&keys.file, &ct, &vault()).unwrap(), plain);
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk_all(&keys.data_dir())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".tmp"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk_all(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_all(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_interrupted_rewrap_resumes() {
    let mut keys = Keys::new();
    let files = write_files(&keys, 10);
    keys.file.rotate().unwrap();
    // "Interrupted" after 4 files: rewrap only a subset.
    let subset: Vec<PathBuf> = files.iter().take(4).map(|(p, _)| p.clone()).collect();
    let first = rewrap_files(&keys.file, &subset, |_, _| {});
    assert_eq!(first.rewrapped.len(), 4);
    let modified: Vec<_> = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    // Resume over the whole folder: the 4 done files are skipped without being written.
    let all = collect_ciphertext_files(&[keys.data_dir()]).unwrap();
    let second = rewrap_files(&keys.file, &all, |_, _| {});
    assert_eq!(second.rewrapped.len(), 6);
    assert_eq!(second.already_current.len(), 4);
    for (i, (p, _)) in files.iter().take(4).enumerate() {
        assert_eq!(
            std::fs::metadata(p).unwrap().modified().unwrap(),
            modified[i]
        );
        assert!(second.already_current.contains(p));
    }
    let third = rewrap_files(&keys.file, &all, |_, _| {});
    assert_eq!(third.already_current.len(), 10);
    for (path, plain) in &files {
        assert_eq!(read_file_header(path).unwrap().wrapped.kek.version, 2);
        assert_eq!(
            &decrypt(&keys.file, &std::fs::read(path).unwrap(), &vault()).unwrap(),
            plain
        );
    }
}

#[test]
fn rewrap_of_a_revoked_or_foreign_file_fails_and_leaves_it_alone() {
    let mut keys = Keys::new();
    let files = write_files(&keys, 3);
    keys.file.rotate().unwrap();
    keys.file.revoke_version(1).unwrap();
    let before = std::fs::read(&files[2].0).unwrap();
    let err = rewrap_file(&keys.file, &files[2].0).unwrap_err();
    assert!(matches!(err, CryptoError::Revoked { .. }), "{err}");
    assert_eq!(std::fs::read(&files[2].0).unwrap(), before);

    let garbage = keys.data_dir().join("junk.pgenc");
    std::fs::write(&garbage, b"PGEN\x07garbage").unwrap();
    let report = rewrap_files(&keys.file, std::slice::from_ref(&garbage), |_, _| {});
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(report.failed[0].1, CryptoError::UnknownVersion(7)));
}

#[test]
fn readers_see_whole_files_while_a_rewrap_runs() {
    let mut keys = Keys::new();
    let files = Arc::new(write_files(&keys, 6));
    keys.file.rotate().unwrap();
    let mut reader_keys = LocalKeyFile::open(&keys.path(), None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let files = Arc::clone(&files);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !done.load(Ordering::SeqCst) || reads < 20 {
                for (path, plain) in files.iter() {
                    let ct = std::fs::read(path).unwrap();
                    let got = match decrypt(&reader_keys, &ct, &vault()) {
                        // A long-running reader picks up rotations made by others on reload.
                        Err(CryptoError::UnknownKek { .. }) => {
                            reader_keys.reload().unwrap();
                            decrypt(&reader_keys, &ct, &vault())
                        }
                        other => other,
                    };
                    assert_eq!(&got.unwrap(), plain);
                    reads += 1;
                }
                if reads > 5000 {
                    break;
                }
            }
            reads
        })
    };
    for _ in 0..3 {
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let r = rewrap_files(&keys.file, &paths, |_, _| {});
        assert!(r.failed.is_empty());
        keys.file.rotate().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() >= 20);
}

#[test]
fn concurrent_rotations_lose_no_version() {
    let keys = Keys::new();
    let path = keys.path();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut kf = LocalKeyFile::open(&path, None).unwrap();
                for _ in 0..4 {
                    kf.rotate().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let st = local::status(&path).unwrap();
    let versions: Vec<u32> = st.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=13).collect::<Vec<_>>());
    assert_eq!(st.current, 13);
    // Every version still opens (the file is consistent).
    let kf = LocalKeyFile::open(&path, None).unwrap();
    assert_eq!(kf.status().versions.len(), 13);
}

#[test]
fn reload_sees_other_processes_changes() {
    let mut a = Keys::new();
    let old = encrypt(&a.file, b"old", &vault()).unwrap();
    let mut b = LocalKeyFile::open(&a.path(), None).unwrap();
    b.rotate().unwrap();
    assert_eq!(a.file.current().unwrap().version, 1);
    a.file.reload().unwrap();
    assert_eq!(a.file.current().unwrap().version, 2);
    LocalKeyFile::revoke(&a.path(), 1).unwrap();
    assert!(decrypt(&a.file, &old, &vault()).is_ok(), "not yet reloaded");
    a.file.reload().unwrap();
    assert!(matches!(
        decrypt(&a.file, &old, &vault()),
        Err(CryptoError::Revoked { .. })
    ));
    let outcome =
        phiguard_crypto::rewrap(&a.file, &encrypt(&a.file, b"n", &vault()).unwrap()).unwrap();
    assert!(matches!(outcome.0, RewrapOutcome::AlreadyCurrent { .. }));
}

#[test]
fn malformed_key_files_are_clear_errors_without_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.json");
    std::fs::write(&path, "{\"format\": \"phiguard-keyfile/1\", \"id\": \"kf-1\", \"current\": 1, \"keys\": [{\"version\": 1, \"created\": \"x\", \"fingerprint\": \"00\", \"key\": \"c2VjcmV0LWtleS1ieXRlcw==\"}]}").unwrap();
    let err = LocalKeyFile::open(&path, None).unwrap_err().to_string();
    assert!(err.contains("malformed"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "{err}");
    std::fs::write(&path, "secret-not-json").unwrap();
    let err = LocalKeyFile::open(&path, None).unwrap_err().to_string();
    assert!(
        err.contains("malformed") && !err.contains("secret"),
        "{err}"
    );
    let err = LocalKeyFile::open(&dir.path().join("none.json"), None).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFileMissing { .. }));
}
