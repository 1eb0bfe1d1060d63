//! Shared helpers.

use std::path::{Path, PathBuf};

use phiguard_crypto::{EncryptionContext, LocalKeyFile, SealParams};

/// A key file in a fresh temporary folder.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub file: LocalKeyFile,
}

impl Keys {
    pub fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let file = LocalKeyFile::create(
            &dir.path().join("keys/kek.json"),
            None,
            &SealParams::DEFAULT,
        )
        .unwrap();
        Keys { dir, file }
    }

    pub fn path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    pub fn data_dir(&self) -> PathBuf {
        let d = self.dir.path().join("data");
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

pub fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    EncryptionContext::from_pairs(pairs.iter().copied()).unwrap()
}

pub fn vault() -> EncryptionContext {
    ctx(&[("purpose", "vault"), ("tenant", "t1")])
}

/// `len` reproducible pseudo-random bytes (xorshift64*), fast enough for megabytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

pub fn data_file(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}
