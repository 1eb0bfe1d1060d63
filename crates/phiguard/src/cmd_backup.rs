//! `phiguard backup` and `phiguard restore`: an encrypted, verifiable snapshot of the embedded
//! SQLite stores under PHIGUARD_HOME.
//!
//! A backup is one phiguard-crypto envelope (context `{"purpose":"backup"}`, under the local
//! key file) around an archive: a one-line JSON manifest (every file's path, size and SHA-256,
//! the key files' public metadata, the audit tree head), then the files' bytes in manifest
//! order. Each SQLite store is copied with `VACUUM INTO`, a consistent snapshot taken while
//! gateways keep writing. Key files are never put in a backup: their public metadata is, so a
//! restore can say which keys the data needs (keep the key file, sealed, somewhere else).
//!
//! `restore` decrypts (every frame authenticated, the context checked), checks the manifest
//! and every file's SHA-256, writes the files to a staging folder beside the target, checks
//! the restored audit store's tree, and only then swaps the staging folder in. A corrupted or
//! truncated backup, or one under another key, is refused with nothing touched.

use crate::home::phiguard_home;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use phiguard_audit::{AuditLog, Options, file_key};
use phiguard_crypto::provider::local;
use phiguard_crypto::{EncryptionContext, KeyProvider, LocalKeyFile, SealParams, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::output::Sink;

/// The manifest's `format` value.
const FORMAT: &str = "phiguard-backup";
/// The manifest's version.
const VERSION: u32 = 1;
/// The environment variable that holds the key-file passphrase (as `phiguard keys`).
const PASSPHRASE_ENV: &str = "PHIGUARD_KEY_PASSPHRASE";
/// The audit store inside a home, which a restore checks.
const AUDIT_DB: &str = "audit/audit.db";

/// Options that find the key file the backup is encrypted under.
#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// The local key file (default: $PHIGUARD_HOME/keys/kek.json; `backup` creates it on first
    /// use). Keep a copy apart from the backups: a backup cannot be restored without it.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Read the key-file passphrase from this file (its first line); else from
    /// PHIGUARD_KEY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where to write the encrypted backup (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Print the manifest summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Restore into this folder (default: $PHIGUARD_HOME). It must be new or empty unless
    /// --force is given.
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Replace the data of an existing home. The old home is kept beside it as
    /// `<home>.pre-restore-<unix time>`; its keys folder is carried over to the restored home.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct FileEntry {
    /// Relative to the home, `/`-separated.
    path: String,
    kind: String,
    size: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct KeyEntry {
    path: String,
    kind: String,
    /// Public metadata only: ids, versions, fingerprints, verifier keys. Never key bytes.
    metadata: serde_json::Value,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct AuditHead {
    tree_size: u64,
    root: String,
    latest_checkpoint_size: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Manifest {
    format: String,
    version: u32,
    created_at_unix: u64,
    files: Vec<FileEntry>,
    keys: Vec<KeyEntry>,
    audit: Option<AuditHead>,
    /// Files under the home that are not in the backup (neither stores nor key files).
    skipped: Vec<String>,
}

fn backup_context() -> Result<EncryptionContext> {
    Ok(EncryptionContext::from_pairs([("purpose", "backup")])?)
}

impl KeyArgs {
    fn passphrase(&self) -> Result<Option<SecretString>> {
        if let Some(path) = &self.passphrase_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
            let line = text.lines().next().unwrap_or("");
            if line.is_empty() {
                bail!("passphrase file {} is empty", path.display());
            }
            return Ok(Some(SecretString::from(line.to_string())));
        }
        match std::env::var(PASSPHRASE_ENV) {
            Ok(v) if !v.is_empty() => Ok(Some(SecretString::from(v))),
            _ => Ok(None),
        }
    }

    fn path(&self, home: &Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| local::default_path(home))
    }

    fn open(&self, home: &Path, create: bool) -> Result<LocalKeyFile> {
        let path = self.path(home);
        if !path.exists() && !create {
            bail!(
                "no key file at {}: pass --key-file with the key file the backup was made \
                 under",
                path.display()
            );
        }
        let st = if path.exists() {
            Some(local::status(&path)?)
        } else {
            None
        };
        let pass = match &st {
            Some(st) if st.sealed => Some(self.passphrase()?.ok_or_else(|| {
                anyhow!(
                    "key file {} is sealed: set {PASSPHRASE_ENV} or pass --passphrase-file",
                    path.display()
                )
            })?),
            Some(_) => None,
            None => self.passphrase()?,
        };
        let (kf, origin) = LocalKeyFile::open_or_create(&path, pass.as_ref(), &SealParams::DEFAULT)
            .with_context(|| format!("cannot open key file {}", path.display()))?;
        if origin == phiguard_crypto::KeyOrigin::Created {
            eprintln!(
                "phiguard backup: created key file {} (id {}){}; keep a copy apart from the \
                 backups, or they cannot be restored",
                path.display(),
                kf.id(),
                if kf.is_sealed() {
                    ""
                } else {
                    ", NOT sealed: seal it with `phiguard keys seal`"
                }
            );
        }
        Ok(kf)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Regular files under `dir`, relative, sorted; symlinks are not followed.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read folder {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ty = e.file_type()?;
        let path = e.path();
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

fn rel_text(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Public metadata of a key file: what is needed to tell which key is which, no key bytes.
fn key_metadata(home: &Path, rel: &Path) -> KeyEntry {
    let path = home.join(rel);
    let name = rel_text(rel);
    if let Ok(st) = local::status(&path) {
        let versions: Vec<_> = st
            .versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "fingerprint": v.fingerprint,
                    "current": v.current,
                    "revoked": v.revoked,
                })
            })
            .collect();
        return KeyEntry {
            path: name,
            kind: "kek".into(),
            metadata: serde_json::json!({
                "id": st.id,
                "current": st.current,
                "sealed": st.sealed,
                "versions": versions,
            }),
        };
    }
    if let Ok(signer) = phiguard_audit::note::load_signer(&path) {
        return KeyEntry {
            path: name,
            kind: "audit-signing".into(),
            metadata: serde_json::json!({ "verifier_key": signer.verifier().to_string() }),
        };
    }
    KeyEntry {
        path: name,
        kind: "other".into(),
        metadata: serde_json::json!({}),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Serialize)]
struct BackupOut<'a> {
    output: String,
    files: &'a [FileEntry],
    keys: Vec<&'a str>,
    audit: Option<&'a AuditHead>,
    skipped: &'a [String],
    bytes: u64,
}

pub fn backup(args: BackupArgs) -> Result<u8> {
    let home = phiguard_home()?;
    if !home.is_dir() {
        bail!("no phiguard home at {}: nothing to back up", home.display());
    }
    let mut rels = Vec::new();
    walk(&home, &home, &mut rels)?;
    let staging = tempfile::tempdir().context("cannot create a temporary folder")?;
    let kf: Arc<dyn KeyProvider> = Arc::new(args.keys.open(&home, true)?);
    let mut files = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    let mut snapshots: Vec<(String, PathBuf)> = Vec::new();
    for rel in &rels {
        let src = home.join(rel);
        let name = rel_text(rel);
        if rel.starts_with("keys") {
            keys.push(key_metadata(&home, rel));
            continue;
        }
        let encrypted = !file_key::is_plain_sqlite(&src)
            && !name.ends_with(file_key::SIDECAR_SUFFIX)
            && file_key::sidecar_path(&src).exists();
        if !encrypted && !file_key::is_plain_sqlite(&src) {
            // WAL and shared-memory files are folded into the snapshot, and page-key files
            // go with their database; lock files and the like are not data.
            if !(name.ends_with(file_key::SIDECAR_SUFFIX)
                && home
                    .join(name.trim_end_matches(file_key::SIDECAR_SUFFIX))
                    .exists())
            {
                skipped.push(name);
            }
            continue;
        }
        let dest = staging.path().join(format!("{}.db", snapshots.len()));
        // A page key wrapped under another local key file is unwrapped with that file.
        let provider = match file_key::Sidecar::read(&src)? {
            Some(sc) if sc.key_file.as_deref().is_some_and(Path::exists) => None,
            _ => Some(kf.clone()),
        };
        phiguard_audit::store::snapshot_sqlite(&src, &dest, provider)
            .with_context(|| format!("cannot snapshot {}", src.display()))?;
        let mut add = |path: String, kind: &str, file: &Path| -> Result<()> {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            files.push(FileEntry {
                path,
                kind: kind.into(),
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            });
            blobs.push(bytes);
            Ok(())
        };
        add(name.clone(), "sqlite", &dest)?;
        if encrypted {
            add(
                format!("{name}{}", file_key::SIDECAR_SUFFIX),
                "sqlite-page-key",
                &file_key::sidecar_path(&dest),
            )?;
        }
        snapshots.push((name, dest));
    }
    let audit = match snapshots.iter().find(|(name, _)| name == AUDIT_DB) {
        Some((_, snap)) => {
            let log = AuditLog::open_encrypted(snap, Options::default(), kf.clone())
                .or_else(|_| AuditLog::open_with(snap, Options::default()))?;
            let head = log.tree_head()?;
            Some(AuditHead {
                tree_size: head.size,
                root: B64.encode(head.root),
                latest_checkpoint_size: log.latest_checkpoint()?.map(|c| c.size),
            })
        }
        None => None,
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at_unix: unix_now(),
        files,
        keys,
        audit,
        skipped,
    };
    let mut plain = serde_json::to_vec(&manifest)?;
    plain.push(b'\n');
    for b in &blobs {
        plain.extend_from_slice(b);
    }
    drop(blobs);
    let sealed = phiguard_crypto::encrypt(&*kf, &plain, &backup_context()?)?;
    let mut sink = Sink::open(Some(&args.output))?;
    sink.write_all(&sealed)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    sink.finish()?;
    let out = BackupOut {
        output: args.output.display().to_string(),
        files: &manifest.files,
        keys: manifest.keys.iter().map(|k| k.path.as_str()).collect(),
        audit: manifest.audit.as_ref(),
        skipped: &manifest.skipped,
        bytes: sealed.len() as u64,
    };
    let stores = out.files.iter().filter(|f| f.kind == "sqlite").count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "backed up {} store{} ({} bytes encrypted) to {}{}",
            stores,
            if stores == 1 { "" } else { "s" },
            out.bytes,
            out.output,
            out.audit.map_or_else(String::new, |a| format!(
                "; audit tree size {}",
                a.tree_size
            ))
        );
        println!(
            "key files NOT included (public metadata only): {}",
            out.keys.join(", ")
        );
    }
    Ok(0)
}

/// Splits and checks a decrypted archive: the manifest and each file's size and SHA-256.
fn open_archive(plain: &[u8]) -> Result<(Manifest, Vec<&[u8]>)> {
    let nl = plain
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| anyhow!("the backup has no manifest"))?;
    let manifest: Manifest = serde_json::from_slice(&plain[..nl])
        .map_err(|e| anyhow!("the backup's manifest is not valid ({e})"))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        bail!(
            "not a phiguard backup this version reads (format {:?}, version {})",
            manifest.format,
            manifest.version
        );
    }
    let mut rest = &plain[nl + 1..];
    let mut blobs = Vec::new();
    for f in &manifest.files {
        let rel = Path::new(&f.path);
        if f.path.is_empty()
            || rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            || rel.starts_with("keys")
        {
            bail!("the backup's manifest names an unsafe path {:?}", f.path);
        }
        let size = usize::try_from(f.size).map_err(|_| anyhow!("{}: size too large", f.path))?;
        if rest.len() < size {
            bail!("the backup is truncated: {} is incomplete", f.path);
        }
        let (blob, tail) = rest.split_at(size);
        if sha256_hex(blob) != f.sha256 {
            bail!("{} does not match its SHA-256 in the manifest", f.path);
        }
        blobs.push(blob);
        rest = tail;
    }
    if !rest.is_empty() {
        bail!(
            "the backup holds {} bytes the manifest does not list",
            rest.len()
        );
    }
    Ok((manifest, blobs))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn is_empty_dir(path: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(path)
        .with_context(|| format!("cannot read folder {}", path.display()))?
        .next()
        .is_none())
}

pub fn restore(args: RestoreArgs) -> Result<u8> {
    let target = match &args.home {
        Some(h) => h.clone(),
        None => phiguard_home()?,
    };
    let exists = target.exists();
    if exists && !target.is_dir() {
        bail!("{} exists and is not a folder", target.display());
    }
    let occupied = exists && !is_empty_dir(&target)?;
    if occupied && !args.force {
        bail!(
            "{} already holds data: restore into a new folder (--home DIR) or pass --force \
             (the current data is then kept beside it as {}.pre-restore-<time>)",
            target.display(),
            target.display()
        );
    }
    // 1. Decrypt: every frame authenticated, the context must be {"purpose":"backup"}.
    let sealed = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let key_home = if target.is_dir() {
        target.clone()
    } else {
        phiguard_home().unwrap_or_else(|_| target.clone())
    };
    let kf: Arc<dyn KeyProvider> = Arc::new(args.keys.open(&key_home, false)?);
    let plain = phiguard_crypto::decrypt(&*kf, &sealed, &backup_context()?).map_err(|e| {
        anyhow!(
            "refusing {}: it cannot be decrypted and authenticated ({e}); it is corrupted, \
             truncated, or encrypted under another key. Nothing was changed",
            args.file.display()
        )
    })?;
    // 2. The manifest and every file's SHA-256.
    let (manifest, blobs) = open_archive(&plain).map_err(|e| {
        anyhow!(
            "refusing {}: {e:#}. Nothing was changed",
            args.file.display()
        )
    })?;
    // 3. Stage beside the target (same file system, so the final swap is a rename).
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create folder {}", parent.display()))?;
    let base = target
        .file_name()
        .map_or_else(|| "home".into(), |n| n.to_string_lossy().into_owned());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{base}.restore-"))
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a staging folder in {}", parent.display()))?;
    for (f, blob) in manifest.files.iter().zip(&blobs) {
        write_private(&staging.path().join(&f.path), blob)?;
    }
    // 4. The restored audit tree must check out and match the manifest's head.
    if let Some(head) = &manifest.audit {
        let db = staging.path().join(AUDIT_DB);
        let log = if file_key::sidecar_path(&db).exists() {
            // Encrypted: its page key must open with the key the backup was made under (or
            // the key file its page-key file names).
            AuditLog::open_encrypted(&db, Options::default(), kf.clone())
                .or_else(|_| AuditLog::open_with(&db, Options::default()))
        } else {
            AuditLog::open_with(&db, Options::default())
        }
        .context("the restored audit store does not open")?;
        let check = log.check(None)?;
        let now = log.tree_head()?;
        if !check.is_intact() || now.size != head.tree_size || B64.encode(now.root) != head.root {
            bail!(
                "refusing {}: the restored audit store does not verify ({} problems, size {} \
                 of {}). Nothing was changed",
                args.file.display(),
                check.problems.len(),
                now.size,
                head.tree_size
            );
        }
    }
    // 5. Swap in.
    let staged = staging.keep();
    let mut kept = None;
    if occupied {
        let aside = parent.join(format!("{base}.pre-restore-{}", unix_now()));
        std::fs::rename(&target, &aside).with_context(|| {
            format!(
                "cannot move {} aside to {}; nothing was changed (the staged restore is in {})",
                target.display(),
                aside.display(),
                staged.display()
            )
        })?;
        kept = Some(aside);
    } else if exists {
        std::fs::remove_dir(&target)
            .with_context(|| format!("cannot replace the empty folder {}", target.display()))?;
    }
    std::fs::rename(&staged, &target).with_context(|| {
        format!(
            "cannot move the restored data from {} to {}",
            staged.display(),
            target.display()
        )
    })?;
    if let Some(aside) = &kept {
        let old_keys = aside.join("keys");
        if old_keys.is_dir() {
            std::fs::rename(&old_keys, target.join("keys")).with_context(|| {
                format!(
                    "restored, but cannot carry the keys folder over: move {} to {} by hand",
                    old_keys.display(),
                    target.join("keys").display()
                )
            })?;
        }
    }
    let stores = manifest.files.iter().filter(|f| f.kind == "sqlite").count();
    println!(
        "restored {} store{} into {}{}",
        stores,
        if stores == 1 { "" } else { "s" },
        target.display(),
        manifest
            .audit
            .as_ref()
            .map_or_else(String::new, |a| format!(
                "; audit tree size {} verified",
                a.tree_size
            ))
    );
    if let Some(aside) = kept {
        println!(
            "the previous data is kept in {} (its keys folder was carried over)",
            aside.display()
        );
    }
    if !manifest.keys.is_empty() {
        println!("the backup was taken with these key files (not included; put them in place):");
        for k in &manifest.keys {
            println!("  {} ({}) {}", k.path, k.kind, k.metadata);
        }
    }
    Ok(0)
}
