//! `phiguard keys` end to end: the real binary, with PHIGUARD_HOME in a temporary folder,
//! through status, encrypt, decrypt, rotate, rewrap (whole and resumed), revoke, seal and
//! unseal, and bench.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn key_file(&self) -> PathBuf {
        self.path("home/keys/kek.json")
    }

    /// Runs `phiguard keys ARGS` with PHIGUARD_HOME inside the fixture, no passphrase in the
    /// environment and stdin not a terminal.
    fn keys(&self, args: &[&str]) -> Output {
        self.keys_env(args, &[])
    }

    fn keys_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phiguard"));
        cmd.arg("keys")
            .args(args)
            .current_dir(self.dir.path())
            .env("PHIGUARD_HOME", self.path("home"))
            .env_remove("XDG_DATA_HOME")
            .env_remove("PHIGUARD_KEY_PASSPHRASE")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.keys(args);
        assert!(
            out.status.success(),
            "keys {args:?} failed: {}",
            stderr(&out)
        );
        out
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.ok(&["status", "--json"]).stdout).unwrap()
    }

    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    fn inspect(&self, file: &Path) -> Value {
        serde_json::from_slice(&self.ok(&["inspect", "--json", s(file)]).stdout).unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn plaintext(i: usize) -> Vec<u8> {
    (0..i * 1000 + 17).map(|j| (j * 7 + i) as u8).collect()
}

const CTX: [&str; 4] = ["--context", "purpose=vault", "--context", "tenant=t1"];

#[test]
fn status_rotate_encrypt_decrypt_rewrap_revoke() {
    let f = Fixture::new();
    let st = f.status();
    assert_eq!(st["exists"], false);

    // First use creates an unsealed key file and says so plainly.
    let input = f.write("in/note0.txt", &plaintext(0));
    let out = f.ok(&[
        &["encrypt"][..],
        &CTX,
        &["in/note0.txt", "data/note0.pgenc"],
    ]
    .concat());
    let err = stderr(&out);
    assert!(err.contains("created key file"), "{err}");
    assert!(
        err.contains("NOT sealed") && err.contains("phiguard keys seal"),
        "{err}"
    );
    let mode = std::fs::metadata(f.key_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(f.key_file().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    let st = f.status();
    assert_eq!(st["exists"], true);
    assert_eq!(st["current"], 1);
    assert_eq!(st["sealed"], false);
    assert_eq!(st["versions"][0]["fingerprint"].as_str().unwrap().len(), 16);
    // Status never shows key bytes.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(f.key_file()).unwrap()).unwrap();
    let key_b64 = file["keys"][0]["key"].as_str().unwrap();
    let text_status = String::from_utf8(f.ok(&["status"]).stdout).unwrap();
    assert!(
        !f.ok(&["status", "--json"])
            .stdout
            .windows(key_b64.len())
            .any(|w| w == key_b64.as_bytes())
    );
    assert!(!text_status.contains(key_b64));
    assert!(
        text_status.contains("v1") && text_status.contains("current"),
        "{text_status}"
    );

    for i in 1..5 {
        f.write(&format!("in/note{i}.txt"), &plaintext(i));
        f.ok(&[
            &["encrypt"][..],
            &CTX,
            &[&format!("in/note{i}.txt"), &format!("data/note{i}.pgenc")],
        ]
        .concat());
    }
    // Round trip, with and without the expected context.
    f.ok(&[
        &["decrypt"][..],
        &CTX,
        &["data/note0.pgenc", "out/note0.txt"],
    ]
    .concat());
    assert_eq!(
        std::fs::read(f.path("out/note0.txt")).unwrap(),
        std::fs::read(&input).unwrap()
    );
    f.ok(&["decrypt", "data/note1.pgenc", "out/note1.txt"]);
    assert_eq!(
        std::fs::read(f.path("out/note1.txt")).unwrap(),
        plaintext(1)
    );

    // The wrong context fails closed and leaves no output file.
    let out = f.keys(&[
        "decrypt",
        "--context",
        "purpose=vault",
        "--context",
        "tenant=t2",
        "data/note1.pgenc",
        "out/wrong.txt",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("context does not match"),
        "{}",
        stderr(&out)
    );
    assert!(!f.path("out/wrong.txt").exists());

    // Keep a copy under v1 outside the folder that will be rewrapped.
    std::fs::copy(f.path("data/note2.pgenc"), f.path("old-v1.pgenc")).unwrap();

    // Rotate: v2 is current at once; new data goes under it.
    let out = f.ok(&["rotate"]);
    assert!(stderr(&out).contains("v2"), "{}", stderr(&out));
    assert_eq!(f.status()["current"], 2);
    f.write("in/new.txt", b"written after rotation");
    f.ok(&[&["encrypt"][..], &CTX, &["in/new.txt", "data/new.pgenc"]].concat());
    assert_eq!(f.inspect(&f.path("data/new.pgenc"))["kek_version"], 2);
    assert_eq!(f.inspect(&f.path("data/note3.pgenc"))["kek_version"], 1);

    // Rewrap the folder: the 5 old files move, the new one is already current.
    let out = f.ok(&["rewrap", "--json", "data"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            r["files"].as_u64(),
            r["rewrapped"].as_u64(),
            r["already_current"].as_u64()
        ),
        (Some(6), Some(5), Some(1))
    );
    for i in 0..5 {
        let p = f.path(&format!("data/note{i}.pgenc"));
        assert_eq!(f.inspect(&p)["kek_version"], 2);
        assert_eq!(f.inspect(&p)["context"]["tenant"], "t1");
    }

    // Revoke v1: rewrapped files still decrypt, the old copy fails clearly.
    let out = f.ok(&["revoke", "v1"]);
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    let st = f.status();
    assert!(st["versions"][0]["revoked"].is_string());
    for i in 0..5 {
        f.ok(&[
            "decrypt",
            &format!("data/note{i}.pgenc"),
            &format!("out/after{i}.txt"),
        ]);
        assert_eq!(
            std::fs::read(f.path(&format!("out/after{i}.txt"))).unwrap(),
            plaintext(i)
        );
    }
    let out = f.keys(&["decrypt", "old-v1.pgenc", "out/old.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("v1 is revoked"), "{}", stderr(&out));
    assert!(!f.path("out/old.txt").exists());
    // Rewrap of the revoked copy fails and leaves it unchanged.
    let before = std::fs::read(f.path("old-v1.pgenc")).unwrap();
    let out = f.keys(&["rewrap", "old-v1.pgenc"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(f.path("old-v1.pgenc")).unwrap(), before);

    // The current version cannot be revoked.
    let out = f.keys(&["revoke", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rotate"), "{}", stderr(&out));

    // stdin to stdout.
    let mut child = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(["keys", "decrypt", "-", "-"])
        .env("PHIGUARD_HOME", f.path("home"))
        .stdin(std::fs::File::open(f.path("data/new.pgenc")).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut plain).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(plain, b"written after rotation");
}

#[test]
fn an_interrupted_rewrap_is_resumed() {
    let f = Fixture::new();
    for i in 0..5 {
        f.write(&format!("in/{i}.txt"), &plaintext(i));
        f.ok(&[
            "encrypt",
            &format!("in/{i}.txt"),
            &format!("data/{i}.pgenc"),
        ]);
    }
    f.ok(&["rotate"]);
    // "Interrupted" after two files.
    f.ok(&["rewrap", "data/0.pgenc", "data/1.pgenc"]);
    let r: Value = serde_json::from_slice(&f.ok(&["rewrap", "--json", "data"]).stdout).unwrap();
    assert_eq!(r["rewrapped"], 3);
    assert_eq!(r["already_current"], 2);
    let r: Value = serde_json::from_slice(&f.ok(&["rewrap", "--json", "data"]).stdout).unwrap();
    assert_eq!(r["rewrapped"], 0);
    assert_eq!(r["already_current"], 5);
    f.ok(&["revoke", "1"]);
    for i in 0..5 {
        f.ok(&[
            "decrypt",
            &format!("data/{i}.pgenc"),
            &format!("out/{i}.txt"),
        ]);
        assert_eq!(
            std::fs::read(f.path(&format!("out/{i}.txt"))).unwrap(),
            plaintext(i)
        );
    }
}

const CHEAP: [&str; 4] = ["--argon2-memory-kib", "7168", "--argon2-passes", "5"];

#[test]
fn a_sealed_key_file_needs_the_passphrase() {
    let f = Fixture::new();
    f.write("in/a.txt", b"sealed data");
    f.ok(&["encrypt", "in/a.txt", "a.pgenc"]);

    // Sealing needs a passphrase; without a terminal none can be prompted for.
    let out = f.keys(&[&["seal"][..], &CHEAP].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("PHIGUARD_KEY_PASSPHRASE"),
        "{}",
        stderr(&out)
    );

    let good = [("PHIGUARD_KEY_PASSPHRASE", "correct horse battery")];
    let out = f.keys_env(&[&["seal"][..], &CHEAP].concat(), &good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.status()["sealed"], true);
    let text = std::fs::read_to_string(f.key_file()).unwrap();
    assert!(!text.contains("\"key\""), "no plain key in a sealed file");
    assert_eq!(
        std::fs::metadata(f.key_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // No passphrase: a clear error naming the ways to give one.
    let out = f.keys(&["decrypt", "a.pgenc", "out.txt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("sealed")
            && err.contains("PHIGUARD_KEY_PASSPHRASE")
            && err.contains("--passphrase-file"),
        "{err}"
    );

    // A wrong passphrase fails clearly and never echoes it.
    let out = f.keys_env(
        &["decrypt", "a.pgenc", "out.txt"],
        &[("PHIGUARD_KEY_PASSPHRASE", "tr0ub4dor&3")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("tr0ub4dor"), "{err}");
    assert!(!f.path("out.txt").exists());

    // The right one, by environment or by file.
    let out = f.keys_env(&["decrypt", "a.pgenc", "out.txt"], &good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(f.path("out.txt")).unwrap(), b"sealed data");
    f.write("pass.txt", b"correct horse battery\n");
    f.ok(&["--passphrase-file", "pass.txt", "rotate"]);
    f.ok(&[
        "decrypt",
        "--passphrase-file",
        "pass.txt",
        "a.pgenc",
        "out2.txt",
    ]);

    // Status and revoke work without the passphrase.
    assert_eq!(f.status()["current"], 2);
    let out = f.keys_env(&[&["seal"][..], &CHEAP].concat(), &good);
    assert_eq!(out.status.code(), Some(1), "sealing twice is refused");

    // Unseal needs the passphrase; afterwards none is needed.
    assert_eq!(f.keys(&["unseal"]).status.code(), Some(1));
    let out = f.keys_env(&["unseal"], &good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNSEALED"));
    f.ok(&["decrypt", "a.pgenc", "out3.txt"]);

    // Too-cheap Argon2id parameters are refused.
    let out = f.keys_env(
        &[
            "seal",
            "--argon2-memory-kib",
            "1024",
            "--argon2-passes",
            "1",
        ],
        &good,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Argon2id"), "{}", stderr(&out));
}

#[test]
fn config_is_accepted_and_keys_create_is_reserved() {
    let f = Fixture::new();
    f.write("phiguard.toml", b"# empty\n");
    f.ok(&["--config", "phiguard.toml", "status"]);
    f.ok(&["status", "--config", "phiguard.toml"]);
    let out = f.keys(&["status", "--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml"));
    // `keys create` belongs to gateway API keys (another command); it is not ours.
    let out = f.keys(&["create"]);
    assert_eq!(out.status.code(), Some(2));
    // A key file elsewhere.
    f.ok(&["--key-file", "elsewhere/kek.json", "rotate"]);
    assert!(f.path("elsewhere/kek.json").exists());
    assert!(!f.key_file().exists());
}

#[test]
fn bench_prints_figures() {
    let f = Fixture::new();
    let out = f.ok(&["bench", "--seconds", "0.05", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["message_bytes"], 1024);
    assert_eq!(rows[1]["message_bytes"], 1 << 20);
    for r in rows {
        assert!(r["encrypt_mb_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["decrypt_mb_per_s"].as_f64().unwrap() > 0.0);
    }
    assert!(
        !f.key_file().exists(),
        "the benchmark does not touch the real key file"
    );
    let text = String::from_utf8(f.ok(&["bench", "--seconds", "0.02"]).stdout).unwrap();
    assert!(
        text.contains("1 KiB") && text.contains("1 MiB") && text.contains("MB/s"),
        "{text}"
    );
}
