//! `phiguard keys`: the encryption keys behind data at rest. Status, rotation, revocation,
//! rewrap of ciphertext files, sealing the local key file with a passphrase, encrypt/decrypt
//! for admins and tests, and a benchmark. The envelope format and the key file live in
//! `phiguard-crypto`; this file finds the key file and the passphrase, parses arguments and
//! prints. (`keys create` is reserved for gateway API keys.)

use crate::home::phiguard_home;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use phiguard_crypto::files::{collect_ciphertext_files, read_file_header, rewrap_files};
use phiguard_crypto::provider::local::{self, KeyFileStatus};
use phiguard_crypto::{
    AwsKmsProvider, EncryptOptions, EncryptionContext, KeyOrigin, KeyProvider, KmsClient,
    KmsClientConfig, LocalKeyFile, Pkcs11Config, Pkcs11Provider, SealParams, SecretString, decrypt,
    decrypt_stream, encrypt, encrypt_stream,
};
use serde::Serialize;
use serde_json::json;

use crate::output::Sink;

/// The environment variable that holds the key-file passphrase.
pub const PASSPHRASE_ENV: &str = "PHIGUARD_KEY_PASSPHRASE";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Options every keys subcommand takes (before or after the subcommand name).
#[derive(clap::Args, Clone)]
pub struct Common {
    /// phiguard.toml. Accepted for the coming config loader; no keys setting is read from it
    /// yet (the file must exist).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The local key file (default: $PHIGUARD_HOME/keys/kek.json, where PHIGUARD_HOME
    /// defaults to $XDG_DATA_HOME/phiguard or ~/.local/share/phiguard).
    #[arg(long, value_name = "FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// Read the key-file passphrase from this file (its first line). Without it the
    /// passphrase comes from PHIGUARD_KEY_PASSPHRASE, else from a prompt when stdin is a
    /// terminal.
    #[arg(long, value_name = "FILE", global = true)]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Which key provider holds the KEK, and the options each needs.
#[derive(clap::Args, Clone)]
pub struct ProviderArgs {
    /// The key provider: the local key file, a PKCS#11 HSM token, or AWS KMS. `encrypt`,
    /// `decrypt` and `rewrap` work with each; `rotate` with local and pkcs11; `status`,
    /// `revoke`, `seal` and `unseal` with the local key file only.
    #[arg(long, value_enum, default_value_t = ProviderKind::Local, global = true)]
    pub provider: ProviderKind,
    /// PKCS#11: the module (shared library).
    #[arg(long, value_name = "FILE", global = true, default_value = phiguard_crypto::provider::pkcs11::SOFTHSM2_MODULE)]
    pub pkcs11_module: PathBuf,
    /// PKCS#11: the token label.
    #[arg(long, value_name = "LABEL", global = true)]
    pub pkcs11_token: Option<String>,
    /// PKCS#11: the KEK label (versions are objects labelled LABEL-v1, LABEL-v2, …).
    #[arg(
        long,
        value_name = "LABEL",
        global = true,
        default_value = "phiguard-kek"
    )]
    pub pkcs11_key_label: String,
    /// PKCS#11: read the user PIN from this file (first line); else from PHIGUARD_PKCS11_PIN.
    #[arg(long, value_name = "FILE", global = true)]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// AWS KMS: the key ARN, key id or alias/NAME.
    #[arg(long, value_name = "ARN", global = true)]
    pub aws_kms_key_id: Option<String>,
    /// AWS KMS: the region (default: AWS_REGION, else AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION", global = true)]
    pub aws_region: Option<String>,
    /// AWS KMS: the endpoint URL (default https://kms.REGION.amazonaws.com/).
    #[arg(long, value_name = "URL", global = true)]
    pub aws_kms_endpoint: Option<String>,
    /// AWS KMS: seconds allowed for each call.
    #[arg(long, value_name = "SECS", global = true, default_value_t = 30)]
    pub aws_timeout_secs: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProviderKind {
    Local,
    Pkcs11,
    AwsKms,
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Show KEK versions, which is current, whether the key file is sealed, fingerprints.
    Status(JsonFlag),
    /// Add a KEK version and make it current at once (new data is wrapped under it).
    Rotate(JsonFlag),
    /// Mark a KEK version revoked: decryption under it fails from now on.
    Revoke(RevokeArgs),
    /// Move ciphertext files (*.pgenc in folders, or files given) to the current KEK by
    /// re-wrapping only their data keys. Resumable: files already current are skipped.
    Rewrap(RewrapArgs),
    /// Seal the key file with a passphrase (Argon2id).
    Seal(SealArgs),
    /// Store the key file unsealed (anyone who can read it can use the keys).
    Unseal,
    /// Encrypt a file (`-` for stdin/stdout) under a fresh data key.
    Encrypt(EncryptArgs),
    /// Decrypt a file (`-` for stdin/stdout).
    Decrypt(DecryptArgs),
    /// Print a ciphertext file's header: format, KEK, context (no secrets).
    Inspect(InspectArgs),
    /// Measure encrypt/decrypt MB/s for 1 KiB and 1 MiB messages.
    Bench(BenchArgs),
    /// Create a gateway service API key for a role of --config FILE. The key (pg_ID_SECRET)
    /// is printed once, as the last line; only a hash of its secret is stored.
    Create(CreateArgs),
    /// List the gateway service API keys of --config FILE: id, role, scopes, created,
    /// expires, revoked (never a secret or its hash).
    ListApiKeys(JsonFlag),
    /// Revoke a gateway service API key of --config FILE by its id (the 16 hex digits after
    /// `pg_`). The running gateway refuses it from its next request on (keys are not cached).
    RevokeApiKey(RevokeApiKeyArgs),
}

#[derive(clap::Args)]
pub struct RevokeApiKeyArgs {
    /// The key id (`0123456789abcdef`, or `pg_0123456789abcdef`).
    #[arg(value_name = "KEY_ID")]
    pub key_id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The role (a [roles.NAME] section of the config).
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Actions the key may perform (repeatable; default: whatever the role allows).
    #[arg(long = "scope", value_name = "ACTION")]
    pub scopes: Vec<String>,
    /// Days until the key expires (default: never).
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<u32>,
    /// Bind the key to this client certificate (PEM; the first certificate in the file): the
    /// gateway then accepts the key only over mutual TLS from a connection that presented it.
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct JsonFlag {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RevokeArgs {
    /// The KEK version to revoke (`3` or `v3`).
    #[arg(value_parser = parse_version)]
    pub version: u32,
    /// The audit store whose records are checked first (default: the embedded store under
    /// PHIGUARD_HOME). Revoking a version its records are still wrapped under is refused.
    #[arg(long, value_name = "URL")]
    pub audit_store: Option<String>,
    /// Revoke even though audit records are still wrapped under this version (they become
    /// unreadable, and so does the store).
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct RewrapArgs {
    /// Folders (searched recursively for *.pgenc) and files.
    #[arg(required_unless_present = "audit")]
    pub paths: Vec<PathBuf>,
    /// Also re-wrap the encrypted records of the audit store (the embedded store under
    /// PHIGUARD_HOME, or --audit-store): only their data keys; the tree and proofs are
    /// unchanged. Resumable. Implied for the embedded store when the key file is the default
    /// one (the store is sealed under it).
    #[arg(long)]
    pub audit: bool,
    /// The audit store for --audit.
    #[arg(long, value_name = "URL", requires = "audit")]
    pub audit_store: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct SealArgs {
    /// Argon2id memory in KiB (at least 7168; memory × passes at least 35840).
    #[arg(long, value_name = "KIB", default_value_t = SealParams::DEFAULT.m_cost_kib)]
    pub argon2_memory_kib: u32,
    /// Argon2id passes.
    #[arg(long, value_name = "N", default_value_t = SealParams::DEFAULT.t_cost)]
    pub argon2_passes: u32,
    /// Argon2id lanes.
    #[arg(long, value_name = "N", default_value_t = SealParams::DEFAULT.p_cost)]
    pub argon2_lanes: u32,
}

#[derive(clap::Args)]
pub struct EncryptArgs {
    /// A context pair bound to the ciphertext (non-secret, e.g. purpose=vault); repeatable.
    /// Decrypting with `--context` must give exactly the same pairs.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Plaintext bytes per frame.
    #[arg(long, value_name = "BYTES", default_value_t = phiguard_crypto::header::DEFAULT_FRAME_LEN)]
    pub frame_size: u32,
    /// The file to encrypt, or `-` for stdin.
    pub input: PathBuf,
    /// Where to write the ciphertext (atomically), or `-` for stdout. Use the .pgenc
    /// extension so `rewrap` finds it.
    pub output: PathBuf,
}

#[derive(clap::Args)]
pub struct DecryptArgs {
    /// The expected context (KEY=VALUE, repeatable): the stored context must be exactly
    /// these pairs. Without it, any context is accepted and printed.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// The ciphertext, or `-` for stdin.
    pub input: PathBuf,
    /// Where to write the plaintext (atomically, only when every frame verified), or `-`
    /// for stdout (streamed frame by frame; a truncated input is detected at its end and
    /// exits with an error).
    pub output: PathBuf,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A ciphertext file.
    pub file: PathBuf,
    /// Print the header as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub seconds: f64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_version(s: &str) -> Result<u32, String> {
    s.trim_start_matches(['v', 'V'])
        .parse::<u32>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is not a KEK version (a number from 1, like 3 or v3)"))
}

pub fn run(args: Args) -> Result<u8> {
    let c = &args.common;
    if let Some(path) = &c.config {
        std::fs::metadata(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
    }
    match args.command {
        KeysCommand::Status(a) => {
            c.require_local("status")?;
            status(c, a.json)
        }
        KeysCommand::Rotate(a) if c.provider.provider == ProviderKind::Pkcs11 => {
            rotate_pkcs11(c, a.json)
        }
        KeysCommand::Rotate(a) => {
            c.require_local("rotate")?;
            rotate(c, a.json)
        }
        KeysCommand::Revoke(a) => {
            c.require_local("revoke")?;
            revoke(c, a)
        }
        KeysCommand::Rewrap(a) => rewrap(c, a),
        KeysCommand::Seal(a) => {
            c.require_local("seal")?;
            seal(c, a)
        }
        KeysCommand::Unseal => {
            c.require_local("unseal")?;
            unseal(c)
        }
        KeysCommand::Encrypt(a) => encrypt_cmd(c, a),
        KeysCommand::Decrypt(a) => decrypt_cmd(c, a),
        KeysCommand::Inspect(a) => inspect(a),
        KeysCommand::Bench(a) => bench(a),
        KeysCommand::Create(a) => create_api_key(c, a),
        KeysCommand::ListApiKeys(a) => list_api_keys(c, a.json),
        KeysCommand::RevokeApiKey(a) => revoke_api_key(c, a),
    }
}

/// The gateway config's API key store, for `keys create`, `list-api-keys`, `revoke-api-key`.
/// Also returns the config's audit store (`audit.store`), where API key events are recorded.
fn api_key_store(
    c: &Common,
    cmd: &str,
) -> Result<(phiguard_gateway::KeyStore, PathBuf, Option<String>)> {
    let path = c
        .config
        .as_ref()
        .ok_or_else(|| anyhow!("keys {cmd} needs --config FILE (the gateway's phiguard.toml)"))?;
    let config = crate::cmd_serve::load_config(path)?;
    let store_path = crate::cmd_serve::key_store_path(&config)?;
    let store = phiguard_gateway::KeyStore::open(&store_path).map_err(|e| anyhow!("{e}"))?;
    Ok((store, store_path, config.audit.store))
}

/// `keys list-api-keys`: ids, roles, scopes and dates.
fn list_api_keys(c: &Common, as_json: bool) -> Result<u8> {
    let (store, store_path, _) = api_key_store(c, "list-api-keys")?;
    let keys = store.list().map_err(|e| anyhow!("{e}"))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(0);
    }
    if keys.is_empty() {
        println!("no API keys in {}", store_path.display());
        return Ok(0);
    }
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    println!(
        "{:<16}  {:<14}  {:<20}  {:<25}  {:<25}  {:<25}  CLIENT CERT (SHA-256)",
        "ID", "ROLE", "SCOPES", "CREATED", "EXPIRES", "REVOKED"
    );
    for k in &keys {
        let scopes = if k.scopes.is_empty() {
            "(role's)".to_string()
        } else {
            k.scopes.join(",")
        };
        println!(
            "{:<16}  {:<14}  {:<20}  {:<25}  {:<25}  {:<25}  {}",
            k.id,
            k.role,
            scopes,
            k.created_at,
            dash(&k.expires_at),
            dash(&k.revoked_at),
            dash(&k.client_cert_sha256)
        );
    }
    Ok(0)
}

/// `keys revoke-api-key KEY_ID`. Accepts the id, `pg_ID`, or (without echoing the secret) a
/// whole key.
fn revoke_api_key(c: &Common, a: RevokeApiKeyArgs) -> Result<u8> {
    let raw = a.key_id.trim();
    let id = raw.strip_prefix("pg_").unwrap_or(raw);
    let id = id.split('_').next().unwrap_or("");
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not an API key id: expected the 16 hex digits after pg_ (see `keys list-api-keys`)");
    }
    let id = id.to_ascii_lowercase();
    let (store, store_path, audit_store) = api_key_store(c, "revoke-api-key")?;
    let keys = store.list().map_err(|e| anyhow!("{e}"))?;
    match keys.iter().find(|k| k.id == id) {
        None => bail!("no API key with id {id} in {}", store_path.display()),
        Some(k) if k.revoked_at.is_some() => bail!(
            "API key {id} is already revoked (at {})",
            k.revoked_at.as_deref().unwrap_or("?")
        ),
        Some(_) => {}
    }
    record_admin(
        c,
        "revoke-api-key",
        json!({"api_key_id": id}),
        audit_store.as_deref(),
    )?;
    store.revoke(&id).map_err(|e| anyhow!("{e}"))?;
    if a.json {
        println!("{}", json!({"id": id, "revoked": true}));
    } else {
        println!(
            "revoked API key {id} in {}: it is refused from its next request on",
            store_path.display()
        );
    }
    Ok(0)
}

/// `keys create`: a gateway service API key, printed once as the last line.
fn create_api_key(c: &Common, a: CreateArgs) -> Result<u8> {
    let path = c
        .config
        .as_ref()
        .ok_or_else(|| anyhow!("keys create needs --config FILE (the gateway's phiguard.toml)"))?;
    let config = crate::cmd_serve::load_config(path)?;
    if a.scopes.iter().any(|s| s.contains(',')) {
        bail!("--scope takes one action; repeat it for several");
    }
    if !config.roles.contains_key(&a.role) {
        bail!(
            "{}: no role {} (defined: {})",
            path.display(),
            a.role,
            config.roles.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let store_path = crate::cmd_serve::key_store_path(&config)?;
    let store = phiguard_gateway::KeyStore::open(&store_path).map_err(|e| anyhow!("{e}"))?;
    let client_cert = match &a.client_cert {
        None => None,
        Some(path) => Some(
            phiguard_gateway::tls::cert_file_sha256("--client-cert", path)
                .map_err(|e| anyhow!("{e}"))?,
        ),
    };
    if client_cert.is_some()
        && config
            .server
            .tls
            .as_ref()
            .is_none_or(|t| t.client_ca.is_none())
    {
        eprintln!(
            "note: the key is bound to a client certificate, but the config sets no \
             server.tls.client_ca: the gateway will refuse the key until mutual TLS is on"
        );
    }
    record_admin(
        c,
        "create-api-key",
        json!({"role": a.role, "scopes": a.scopes, "expires_in_days": a.expires_in_days,
               "client_cert_sha256": client_cert.map(hex::encode)}),
        config.audit.store.as_deref(),
    )?;
    let expires = a
        .expires_in_days
        .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
    let key = store
        .create_bound(&a.role, &a.scopes, expires, client_cert)
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "created API key {} for role {} in {} (shown once; only its hash is stored):",
        key.key_id,
        a.role,
        store_path.display()
    );
    println!("{}", key.token);
    Ok(0)
}

// ---- key administration in the audit trail ---------------------------------------------------

/// Records a key-administration action in the audit trail *before* it is taken, so an action
/// that cannot be recorded is not taken. The record holds the action, who asked, and ids and
/// counts (never key material, passphrases or file names). `store`: the audit store (default:
/// the embedded store). When that store is sealed under this very key file and the file is
/// sealed with a passphrase, the key opened with this command's passphrase is used.
fn record_admin(
    c: &Common,
    action: &str,
    detail: serde_json::Value,
    store: Option<&str>,
) -> Result<()> {
    record_key_event(c, "keys.admin", action, detail, store)
}

/// Records a use of a KEK to encrypt or decrypt data (`keys encrypt`, `keys decrypt`) before
/// it happens: the operation, the provider, the KEK when known, and fingerprints of the file
/// and of the encryption context (never a file name, which can name a patient, nor a context
/// value). When the record cannot be written, nothing is encrypted or decrypted.
fn record_key_use(
    c: &Common,
    operation: &str,
    input: &Path,
    kek: Option<&phiguard_crypto::KekRef>,
    context: Option<&EncryptionContext>,
) -> Result<()> {
    let input_ref = if input == Path::new("-") {
        "stdin".to_string()
    } else {
        let abs = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
        fingerprint(abs.as_os_str().as_encoded_bytes())
    };
    let mut detail = json!({
        "input": input_ref,
        "context_fingerprint": context.map(|ctx| fingerprint(ctx.to_string().as_bytes())),
        "context_keys": context.map(|ctx| ctx.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()),
    });
    if let (Some(kek), Some(obj)) = (kek, detail.as_object_mut()) {
        obj.insert("kek_id".into(), json!(kek.id));
        obj.insert("kek_version".into(), json!(kek.version));
    }
    record_key_event(c, "keys.use", operation, detail, None)
}

/// `sha256:` and the first 16 bytes of the SHA-256 of `bytes`, in hex.
fn fingerprint(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(&Sha256::digest(bytes)[..16]))
}

fn record_key_event(
    c: &Common,
    kind: &str,
    action: &str,
    detail: serde_json::Value,
    store: Option<&str>,
) -> Result<()> {
    let url = audit_url(store)?;
    let mut record = json!({
        "type": kind,
        "action": action,
        "actor": crate::audit_trail::actor(),
        "provider": match c.provider.provider {
            ProviderKind::Local => "local",
            ProviderKind::Pkcs11 => "pkcs11",
            ProviderKind::AwsKms => "aws-kms",
        },
        "requested_at": phiguard_deid::report::now_utc_rfc3339(),
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (record.as_object_mut(), detail) {
        obj.extend(extra);
    }
    let key_path = c.key_path()?;
    let own_sealed_file = matches!(url, phiguard_audit::StoreUrl::Sqlite(_))
        && key_path == local::default_path(&phiguard_home()?)
        && key_path.exists()
        && local::status(&key_path)?.sealed;
    let mut audit = if own_sealed_file {
        let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(c.open(false)?);
        phiguard_audit::AuditStore::open_encrypted(
            &url,
            phiguard_audit::Options::default(),
            provider,
        )
        .with_context(|| format!("cannot open the audit store {}", url.describe()))?
    } else {
        crate::audit_trail::open(&url)?
    };
    audit.append(&record).with_context(|| {
        format!(
            "the {action} could not be recorded in the audit store {}, so it was not done",
            url.describe()
        )
    })?;
    Ok(())
}

// ---- finding the key file and the passphrase -----------------------------------------------

impl Common {
    fn key_path(&self) -> Result<PathBuf> {
        match &self.key_file {
            Some(p) => Ok(p.clone()),
            None => Ok(local::default_path(&phiguard_home()?)),
        }
    }

    /// The passphrase from --passphrase-file or PHIGUARD_KEY_PASSPHRASE, if given.
    fn passphrase_given(&self) -> Result<Option<SecretString>> {
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

    /// The passphrase to open a sealed key file: given, else prompted on a terminal.
    fn passphrase_to_open(&self, path: &Path) -> Result<SecretString> {
        if let Some(p) = self.passphrase_given()? {
            return Ok(p);
        }
        if std::io::stdin().is_terminal() {
            let p =
                rpassword::prompt_password(format!("Passphrase for key file {}: ", path.display()))
                    .context("cannot read the passphrase from the terminal")?;
            if !p.is_empty() {
                return Ok(SecretString::from(p));
            }
        }
        bail!(
            "key file {} is sealed with a passphrase: set {PASSPHRASE_ENV}, pass \
             --passphrase-file FILE, or run in a terminal to be prompted",
            path.display()
        )
    }

    /// A new passphrase for sealing: given, else prompted twice on a terminal.
    fn new_passphrase(&self) -> Result<SecretString> {
        if let Some(p) = self.passphrase_given()? {
            return Ok(p);
        }
        if std::io::stdin().is_terminal() {
            let a = rpassword::prompt_password("New key-file passphrase: ")
                .context("cannot read the passphrase from the terminal")?;
            let b = rpassword::prompt_password("Repeat it: ")
                .context("cannot read the passphrase from the terminal")?;
            if a.is_empty() {
                bail!("the passphrase is empty");
            }
            if a != b {
                bail!("the two passphrases differ");
            }
            return Ok(SecretString::from(a));
        }
        bail!(
            "no passphrase to seal with: set {PASSPHRASE_ENV}, pass --passphrase-file FILE, or \
             run in a terminal to be prompted"
        )
    }

    /// Opens the key file; with `create`, creates it on first use (sealed when a passphrase
    /// is given, else unsealed with a notice on stderr).
    fn open(&self, create: bool) -> Result<LocalKeyFile> {
        let path = self.key_path()?;
        if !path.exists() {
            if !create {
                bail!(
                    "no key file at {}: it is created on first use by `phiguard keys encrypt` \
                     or `phiguard keys rotate` (or pass --key-file)",
                    path.display()
                );
            }
            let pass = self.passphrase_given()?;
            let (kf, origin) =
                LocalKeyFile::open_or_create(&path, pass.as_ref(), &SealParams::DEFAULT)?;
            if origin == KeyOrigin::Created {
                announce_created(&kf);
            }
            return Ok(kf);
        }
        let st = local::status(&path)?;
        if !st.private {
            eprintln!(
                "phiguard keys: warning: key file {} can be read by other users; run \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
        let pass = if st.sealed {
            Some(self.passphrase_to_open(&path)?)
        } else {
            None
        };
        Ok(LocalKeyFile::open(&path, pass.as_ref())?)
    }
}

impl Common {
    /// The configured key provider. `create`: make the local key file or the PKCS#11 KEK on
    /// first use.
    fn provider(&self, create: bool) -> Result<Box<dyn KeyProvider>> {
        let p = &self.provider;
        match p.provider {
            ProviderKind::Local => Ok(Box::new(self.open(create)?)),
            ProviderKind::Pkcs11 => Ok(Box::new(self.pkcs11(create)?)),
            ProviderKind::AwsKms => {
                let key = p
                    .aws_kms_key_id
                    .clone()
                    .ok_or_else(|| anyhow!("--provider aws-kms needs --aws-kms-key-id ARN"))?;
                let region = p
                    .aws_region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
                    .or_else(|| {
                        std::env::var("AWS_DEFAULT_REGION")
                            .ok()
                            .filter(|r| !r.is_empty())
                    })
                    .ok_or_else(|| {
                        anyhow!("--provider aws-kms needs --aws-region or AWS_REGION")
                    })?;
                let mut cfg = KmsClientConfig::new(region);
                cfg.endpoint = p.aws_kms_endpoint.clone();
                cfg.timeout = Duration::from_secs(p.aws_timeout_secs.max(1));
                let creds = phiguard_crypto::sigv4::Credentials::from_env()
                    .context("AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")?;
                let client = KmsClient::new(&cfg, creds)?;
                Ok(Box::new(AwsKmsProvider::new(client, key)?))
            }
        }
    }

    fn pkcs11(&self, create: bool) -> Result<Pkcs11Provider> {
        let p = &self.provider;
        let token = p
            .pkcs11_token
            .clone()
            .ok_or_else(|| anyhow!("--provider pkcs11 needs --pkcs11-token LABEL"))?;
        let pin =
            phiguard_crypto::provider::pkcs11::pin_from_env_or_file(p.pkcs11_pin_file.as_deref())?;
        Ok(Pkcs11Provider::open(&Pkcs11Config {
            module: p.pkcs11_module.clone(),
            token_label: token,
            key_label: p.pkcs11_key_label.clone(),
            pin,
            create_if_missing: create,
        })?)
    }

    fn require_local(&self, what: &str) -> Result<()> {
        if self.provider.provider != ProviderKind::Local {
            bail!("`phiguard keys {what}` applies to the local key file only (--provider local)");
        }
        Ok(())
    }
}

fn announce_created(kf: &LocalKeyFile) {
    let st = kf.status();
    let fp = st
        .versions
        .first()
        .map(|v| v.fingerprint.as_str())
        .unwrap_or("");
    eprintln!(
        "phiguard keys: created key file {} (id {}, KEK v1, fingerprint {fp})",
        st.path.display(),
        st.id
    );
    if !st.sealed {
        eprintln!(
            "phiguard keys: the key file is NOT sealed: anyone who can read it can decrypt \
             everything encrypted under it. Seal it with a passphrase: `phiguard keys seal` \
             (the passphrase comes from {PASSPHRASE_ENV}, --passphrase-file FILE, or a prompt)."
        );
    }
}

// ---- status, rotate, revoke, seal, unseal --------------------------------------------------

#[derive(Serialize)]
struct StatusOut {
    exists: bool,
    #[serde(flatten)]
    status: Option<KeyFileStatus>,
}

fn status(c: &Common, as_json: bool) -> Result<u8> {
    let path = c.key_path()?;
    if !path.exists() {
        if as_json {
            println!(
                "{}",
                json!({"exists": false, "path": path.display().to_string()})
            );
        } else {
            println!(
                "no key file at {} yet: it is created on first use (`phiguard keys encrypt` or \
                 `phiguard keys rotate`)",
                path.display()
            );
        }
        return Ok(0);
    }
    let st = local::status(&path)?;
    if as_json {
        let out = StatusOut {
            exists: true,
            status: Some(st),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    print!("{}", status_text(&st));
    Ok(0)
}

fn status_text(st: &KeyFileStatus) -> String {
    let mut s = String::new();
    s.push_str(&format!("key file   {}\n", st.path.display()));
    s.push_str(&format!("id         {}\n", st.id));
    match &st.seal {
        Some(p) => s.push_str(&format!(
            "sealed     yes (Argon2id, {} KiB, {} passes, {} lanes)\n",
            p.m_cost_kib, p.t_cost, p.p_cost
        )),
        None => s.push_str("sealed     NO: anyone who can read the file can use the keys (seal it: `phiguard keys seal`)\n"),
    }
    s.push_str(if st.private {
        "mode       private to its owner\n"
    } else {
        "mode       WARNING: readable by other users (chmod 600)\n"
    });
    s.push_str(&format!("current    v{}\n\n", st.current));
    s.push_str("version  state     created               fingerprint\n");
    for v in &st.versions {
        let state = if v.current {
            "current"
        } else if v.revoked.is_some() {
            "revoked"
        } else {
            "active"
        };
        s.push_str(&format!(
            "v{:<7} {:<9} {:<21} {}{}\n",
            v.version,
            state,
            v.created,
            v.fingerprint,
            v.revoked
                .as_ref()
                .map(|r| format!("  (revoked {r})"))
                .unwrap_or_default()
        ));
    }
    s
}

fn rotate(c: &Common, as_json: bool) -> Result<u8> {
    let path = c.key_path()?;
    let existed = path.exists();
    if existed {
        record_admin(
            c,
            "rotate",
            json!({"key_file_id": local::status(&path)?.id}),
            None,
        )?;
    }
    let mut kf = c.open(true)?;
    let kek = if existed {
        let kek = kf.rotate()?;
        let fp = kf
            .status()
            .versions
            .iter()
            .find(|v| v.version == kek.version)
            .map(|v| v.fingerprint.clone())
            .unwrap_or_default();
        eprintln!(
            "phiguard keys: KEK v{} (fingerprint {fp}) is now current; new data is wrapped \
             under it. Move existing files with `phiguard keys rewrap PATH...`, then revoke \
             the old version with `phiguard keys revoke v{}`.",
            kek.version,
            kek.version.saturating_sub(1)
        );
        kek
    } else {
        kf.current()?
    };
    if as_json {
        println!(
            "{}",
            json!({"id": kek.id, "current": kek.version, "created_file": !existed})
        );
    }
    Ok(0)
}

fn rotate_pkcs11(c: &Common, as_json: bool) -> Result<u8> {
    record_admin(c, "rotate", json!({}), None)?;
    // The first rotate creates v1; later ones add a version.
    let (p, kek) = match c.pkcs11(false) {
        Ok(mut p) => {
            let kek = p.rotate()?;
            (p, kek)
        }
        Err(_) => {
            let p = c.pkcs11(true)?;
            let kek = p.current()?;
            (p, kek)
        }
    };
    eprintln!(
        "phiguard keys: PKCS#11 KEK {} v{} is now current on token `{}`; move existing files \
         with `phiguard keys rewrap --provider pkcs11 PATH...`",
        kek.id,
        kek.version,
        p.token_label()
    );
    if as_json {
        println!("{}", json!({"id": kek.id, "current": kek.version}));
    }
    Ok(0)
}

fn audit_url(store: Option<&str>) -> Result<phiguard_audit::StoreUrl> {
    match store {
        Some(u) => Ok(phiguard_audit::StoreUrl::parse(u)?),
        None => crate::audit_trail::default_url(),
    }
}

fn revoke(c: &Common, a: RevokeArgs) -> Result<u8> {
    let version = a.version;
    let path = c.key_path()?;
    if !path.exists() {
        bail!("no key file at {}", path.display());
    }
    if local::status(&path)?.current == version {
        bail!(
            "KEK v{version} is the current version and cannot be revoked: rotate first \
             (`phiguard keys rotate`), then revoke v{version}"
        );
    }
    // The audit store's records, read without the key: revoking the version they are wrapped
    // under would lock the store for good.
    let url = audit_url(a.audit_store.as_deref())?;
    let exists = match &url {
        phiguard_audit::StoreUrl::Sqlite(p) => p.exists(),
        phiguard_audit::StoreUrl::Postgres(_) => false,
    };
    if exists && !a.force {
        let id = local::status(&path)?.id;
        let store = phiguard_audit::AuditStore::open(&url, phiguard_audit::Options::default())
            .with_context(|| format!("cannot open the audit store {}", url.describe()))?;
        let n: u64 = store
            .payload_keks()?
            .iter()
            .filter(|((kek, v), _)| *kek == id && *v == version)
            .map(|(_, n)| n)
            .sum();
        if n > 0 {
            bail!(
                "{n} encrypted items of the audit store {} (records, its key check and its \
                 database file's page key) are wrapped under KEK v{version}: \
                 revoking it would make the store unreadable. Move them first with `phiguard \
                 keys rewrap --audit`, then revoke (or pass --force)",
                url.describe()
            );
        }
    }
    record_admin(
        c,
        "revoke",
        json!({"key_file_id": local::status(&path)?.id, "version": version, "force": a.force}),
        a.audit_store.as_deref(),
    )?;
    if LocalKeyFile::revoke(&path, version)? {
        eprintln!(
            "phiguard keys: KEK v{version} is revoked: data wrapped under it can no longer be \
             decrypted (processes that hold the key file open see it after they reload)"
        );
    } else {
        eprintln!("phiguard keys: KEK v{version} was already revoked");
    }
    Ok(0)
}

fn seal(c: &Common, a: SealArgs) -> Result<u8> {
    let params = SealParams {
        m_cost_kib: a.argon2_memory_kib,
        t_cost: a.argon2_passes,
        p_cost: a.argon2_lanes,
    };
    params.validate_new()?;
    let path = c.key_path()?;
    if path.exists() && local::status(&path)?.sealed {
        bail!(
            "key file {} is already sealed; to change the passphrase, run `phiguard keys \
             unseal` and then `phiguard keys seal`",
            path.display()
        );
    }
    let pass = c.new_passphrase()?;
    if !path.exists() {
        let kf = LocalKeyFile::create(&path, Some(&pass), &params)?;
        announce_created(&kf);
        return Ok(0);
    }
    record_admin(
        c,
        "seal",
        json!({"key_file_id": local::status(&path)?.id}),
        None,
    )?;
    let mut kf = LocalKeyFile::open(&path, None)?;
    kf.seal(&pass, &params)?;
    eprintln!(
        "phiguard keys: key file {} is sealed (Argon2id, {} KiB, {} passes); commands that \
         use the keys now need the passphrase ({PASSPHRASE_ENV}, --passphrase-file, or a prompt)",
        path.display(),
        params.m_cost_kib,
        params.t_cost
    );
    Ok(0)
}

fn unseal(c: &Common) -> Result<u8> {
    let mut kf = c.open(false)?;
    if !kf.is_sealed() {
        bail!("key file {} is not sealed", kf.path().display());
    }
    record_admin(c, "unseal", json!({"key_file_id": kf.status().id}), None)?;
    kf.unseal()?;
    eprintln!(
        "phiguard keys: key file {} is now UNSEALED: anyone who can read it can use the keys",
        kf.path().display()
    );
    Ok(0)
}

// ---- rewrap --------------------------------------------------------------------------------

#[derive(Serialize)]
struct RewrapOut {
    current: String,
    files: usize,
    rewrapped: usize,
    already_current: usize,
    failed: Vec<FailedOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<AuditRewrapOut>,
}

#[derive(Serialize)]
struct AuditRewrapOut {
    store: String,
    rewrapped: u64,
    already_current: u64,
}

#[derive(Serialize)]
struct FailedOut {
    path: String,
    code: &'static str,
    error: String,
}

fn rewrap(c: &Common, a: RewrapArgs) -> Result<u8> {
    record_admin(
        c,
        "rewrap",
        json!({"paths": a.paths.len(), "audit_store": a.audit}),
        None,
    )?;
    let kf: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::from(c.provider(false)?);
    let current = kf.current()?;
    // The embedded audit store is sealed under the default key file: rewrapping that file's
    // data moves the store's records too (or revoking the old version would lock it).
    let embedded = c.provider.provider == ProviderKind::Local
        && a.audit_store.is_none()
        && c.key_path()? == local::default_path(&phiguard_home()?)
        && matches!(audit_url(None)?, phiguard_audit::StoreUrl::Sqlite(ref p) if p.exists());
    let audit = if a.audit || embedded {
        let url = audit_url(a.audit_store.as_deref())?;
        let mut store = phiguard_audit::AuditStore::open_encrypted(
            &url,
            phiguard_audit::Options::default(),
            kf.clone(),
        )
        .with_context(|| format!("cannot open the audit store {}", url.describe()))?;
        let (moved, already) = store
            .rewrap_payloads()
            .with_context(|| format!("re-wrapping the records of {}", url.describe()))?;
        Some(AuditRewrapOut {
            store: url.describe(),
            rewrapped: moved,
            already_current: already,
        })
    } else {
        None
    };
    let kf = kf.as_ref();
    let files = collect_ciphertext_files(&a.paths)?;
    let report = rewrap_files(kf, &files, |path, result| {
        if let Err(e) = result {
            eprintln!("phiguard keys: {}: {e}", path.display());
        }
    });
    let out = RewrapOut {
        current: format!("{} v{}", current.id, current.version),
        files: files.len(),
        rewrapped: report.rewrapped.len(),
        already_current: report.already_current.len(),
        failed: report
            .failed
            .iter()
            .map(|(p, e)| FailedOut {
                path: p.display().to_string(),
                code: e.code(),
                error: e.to_string(),
            })
            .collect(),
        audit,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(a) = &out.audit {
            eprintln!(
                "phiguard keys: audit store {}: {} records rewrapped to KEK v{}, {} already current",
                a.store, a.rewrapped, current.version, a.already_current
            );
        }
        eprintln!(
            "phiguard keys: {} files: {} rewrapped to KEK v{}, {} already current, {} failed",
            out.files,
            out.rewrapped,
            current.version,
            out.already_current,
            out.failed.len()
        );
    }
    if !out.failed.is_empty() {
        bail!(
            "{} of {} files could not be rewrapped (they are unchanged); fix them and run \
             the same command again: done files are skipped",
            out.failed.len(),
            out.files
        );
    }
    Ok(0)
}

// ---- encrypt, decrypt, inspect -------------------------------------------------------------

fn parse_context(pairs: &[String]) -> Result<EncryptionContext> {
    let mut parsed = Vec::with_capacity(pairs.len());
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--context takes KEY=VALUE, got `{p}`"))?;
        parsed.push((k.to_string(), v.to_string()));
    }
    Ok(EncryptionContext::from_pairs(parsed)?)
}

fn open_input(path: &Path) -> Result<Box<dyn Read>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, f)))
}

fn encrypt_cmd(c: &Common, a: EncryptArgs) -> Result<u8> {
    let context = parse_context(&a.context)?;
    let kf = c.provider(true)?;
    let kf = kf.as_ref();
    let input = open_input(&a.input)?;
    record_key_use(c, "encrypt", &a.input, Some(&kf.current()?), Some(&context))?;
    let mut sink = Sink::open(Some(&a.output))?;
    let info = encrypt_stream(
        kf,
        &context,
        &EncryptOptions {
            frame_len: a.frame_size,
        },
        input,
        &mut sink,
    )
    .with_context(|| format!("cannot encrypt {}", a.input.display()))?;
    sink.finish()?;
    eprintln!(
        "phiguard keys: encrypted {} bytes into {} ({} bytes) under KEK {} v{}, context {}",
        info.plaintext_len,
        a.output.display(),
        info.ciphertext_len,
        info.kek.id,
        info.kek.version,
        context
    );
    Ok(0)
}

fn decrypt_cmd(c: &Common, a: DecryptArgs) -> Result<u8> {
    let expected = if a.context.is_empty() {
        None
    } else {
        Some(parse_context(&a.context)?)
    };
    let kf = c.provider(false)?;
    let input = open_input(&a.input)?;
    let header = if a.input == Path::new("-") {
        None
    } else {
        read_file_header(&a.input).ok()
    };
    record_key_use(
        c,
        "decrypt",
        &a.input,
        header.as_ref().map(|h| &h.wrapped.kek),
        header.as_ref().map(|h| &h.context).or(expected.as_ref()),
    )?;
    let mut sink = Sink::open(Some(&a.output))?;
    let info = decrypt_stream(kf.as_ref(), input, &mut sink, expected.as_ref())
        .with_context(|| format!("cannot decrypt {}", a.input.display()))?;
    sink.finish()?;
    eprintln!(
        "phiguard keys: decrypted {} bytes from {} (KEK {} v{}, context {})",
        info.plaintext_len,
        a.input.display(),
        info.header.wrapped.kek.id,
        info.header.wrapped.kek.version,
        info.header.context
    );
    Ok(0)
}

fn inspect(a: InspectArgs) -> Result<u8> {
    let h =
        read_file_header(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let context: serde_json::Map<String, serde_json::Value> = h
        .context
        .iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let out = json!({
        "format_version": phiguard_crypto::header::FORMAT_VERSION,
        "algorithm": format!("0x{:04x} AES-256-GCM, HKDF-SHA256, key commitment", h.algorithm.id()),
        "frame_size": h.frame_len,
        "provider": h.wrapped.provider,
        "kek_id": h.wrapped.kek.id,
        "kek_version": h.wrapped.kek.version,
        "wrapped_key_bytes": h.wrapped.blob.len(),
        "context": context,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{}: phiguard ciphertext v{}, AES-256-GCM + HKDF-SHA256 + key commitment, \
             frames of {} bytes\nKEK: {} {} v{}\ncontext: {}",
            a.file.display(),
            phiguard_crypto::header::FORMAT_VERSION,
            h.frame_len,
            h.wrapped.provider,
            h.wrapped.kek.id,
            h.wrapped.kek.version,
            h.context
        );
    }
    Ok(0)
}

// ---- bench ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct BenchRow {
    message_bytes: usize,
    encrypt_mb_per_s: f64,
    encrypt_messages_per_s: f64,
    decrypt_mb_per_s: f64,
    decrypt_messages_per_s: f64,
}

/// Runs `f` repeatedly for at least `min` and returns calls per second.
fn per_second(min: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min || n < 3 {
        f()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn bench(a: BenchArgs) -> Result<u8> {
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    let min = Duration::from_secs_f64(a.seconds);
    // A throwaway key file: the benchmark never touches the real one.
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let kf = LocalKeyFile::create(&dir.path().join("kek.json"), None, &SealParams::DEFAULT)?;
    let ctx = EncryptionContext::from_pairs([("purpose", "bench"), ("tenant", "t1")])?;
    let mut rows = Vec::new();
    for size in [1024usize, 1 << 20] {
        let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let enc = per_second(min, || {
            std::hint::black_box(encrypt(&kf, &plain, &ctx)?);
            Ok(())
        })?;
        let ct = encrypt(&kf, &plain, &ctx)?;
        let dec = per_second(min, || {
            std::hint::black_box(decrypt(&kf, &ct, &ctx)?);
            Ok(())
        })?;
        if decrypt(&kf, &ct, &ctx)? != plain {
            bail!("the benchmark's own round trip failed");
        }
        let mb = size as f64 / 1e6;
        rows.push(BenchRow {
            message_bytes: size,
            encrypt_mb_per_s: enc * mb,
            encrypt_messages_per_s: enc,
            decrypt_mb_per_s: dec * mb,
            decrypt_messages_per_s: dec,
        });
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "provider": kf.name(),
                "algorithm": "AES-256-GCM, HKDF-SHA256, key commitment, 64 KiB frames",
                "per_message": "fresh data key, wrap under the local KEK, HKDF, frames",
                "results": rows,
            }))?
        );
    } else {
        println!(
            "phiguard keys bench (local key file; each message: fresh data key, wrap, HKDF, \
             AES-256-GCM frames of 64 KiB)"
        );
        println!("message    encrypt MB/s  msgs/s      decrypt MB/s  msgs/s");
        for r in &rows {
            let label = if r.message_bytes >= 1 << 20 {
                format!("{} MiB", r.message_bytes >> 20)
            } else {
                format!("{} KiB", r.message_bytes >> 10)
            };
            println!(
                "{label:<10} {:>12.1}  {:>10.0}  {:>12.1}  {:>10.0}",
                r.encrypt_mb_per_s,
                r.encrypt_messages_per_s,
                r.decrypt_mb_per_s,
                r.decrypt_messages_per_s
            );
        }
    }
    Ok(0)
}
