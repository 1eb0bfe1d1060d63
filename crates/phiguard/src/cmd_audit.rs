//! `phiguard audit`: the tamper-evident audit trail. Append records, sign checkpoints, export
//! the log, verify an export offline (or the local store), query records, print proofs, and
//! measure. The log itself lives in `phiguard-audit`; this file finds the files, parses
//! arguments and prints.

use crate::home::phiguard_home;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use phiguard_audit::note::{load_or_create_signer, load_signer};
use phiguard_audit::verify::{verify_consistency, verify_inclusion};
use phiguard_audit::{
    AuditLog, AuditStore, Durability, Entry, ExportReport, Options, Query, Signer, StoreUrl,
    StoredCheckpoint, VerifierKey, verify_export,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::output::Sink;

/// Exit code of `phiguard audit verify` when the log or export is not intact.
pub const EXIT_AUDIT_INVALID: u8 = 4;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Append records durably: one with --json, or a JSONL file in group-commit batches.
    Append(AppendArgs),
    /// Sign a checkpoint of the current tree, store it and print it (a C2SP signed note).
    Checkpoint(Common),
    /// Print the verifier key (`<name>+<hex key hash>+<base64 key>`) third parties verify with.
    PublicKey(Common),
    /// Write the log (records, leaf hashes) with its latest signed checkpoint to a file.
    Export(ExportArgs),
    /// Verify an export offline with only the public key (or, without FILE, the local store).
    Verify(VerifyArgs),
    /// Find records by user, patient reference, model, action, any field or time range.
    Query(QueryArgs),
    /// Print an inclusion or consistency proof.
    Prove(ProveArgs),
    /// Measure durable appends per second and verification speed.
    Bench(BenchArgs),
    /// Remove the payloads (never the leaf hashes) of records past their retention_until;
    /// the tree, the checkpoints and every proof stay verifiable.
    Retention(RetentionArgs),
    /// Encrypt the database file of an embedded store made before file encryption (SQLCipher
    /// pages under a page key wrapped by the local key file). Stop every gateway using the
    /// store first: it is rewritten into a new file that replaces it atomically.
    EncryptStore(EncryptStoreArgs),
}

#[derive(clap::Args)]
pub struct EncryptStoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// The local key file that wraps the page key (default: $PHIGUARD_HOME/keys/kek.json,
    /// created on first use).
    #[arg(long, value_name = "FILE")]
    pub kek: Option<PathBuf>,
}

/// Options every audit subcommand takes.
#[derive(clap::Args, Clone)]
pub struct Common {
    /// phiguard.toml. Accepted for the coming config loader; no audit setting is read from it
    /// yet (the file must exist).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The audit store's SQLite file (default: $PHIGUARD_HOME/audit/audit.db, where
    /// PHIGUARD_HOME defaults to $XDG_DATA_HOME/phiguard or ~/.local/share/phiguard).
    #[arg(long, value_name = "FILE", conflicts_with = "store")]
    pub db: Option<PathBuf>,
    /// The audit store as a URL: `sqlite:PATH`, or `postgres://USER@HOST:PORT/DATABASE` for a
    /// store shared by several instances (default: the SQLite file of --db).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The checkpoint signing key, created on first use (default:
    /// $PHIGUARD_HOME/keys/audit-signing.key).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct AppendArgs {
    #[command(flatten)]
    pub common: Common,
    /// One record, a JSON object.
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with = "jsonl",
        required_unless_present = "jsonl"
    )]
    pub json: Option<String>,
    /// A JSONL file of records (`-` for stdin). Each batch is one transaction; a line
    /// `{"index":N,...}` is printed for every record once its batch is durable.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Records per transaction with --jsonl.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
}

#[derive(clap::Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub common: Common,
    /// Prune as of this time (RFC 3339 or YYYY-MM-DD; default: now). Recorded as each
    /// record's pruned_at; the store refuses to prune a record before its retention_until.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: Common,
    /// Where to write the export (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// An export file. Without it, the local store is checked.
    pub file: Option<PathBuf>,
    /// The verifier key, or a file holding it (required with FILE; default for the local
    /// store: the local signing key's).
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
    /// An older signed checkpoint kept outside the log: the log must extend it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

#[derive(clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: Common,
    /// Records whose `user` is this.
    #[arg(long)]
    pub user: Option<String>,
    /// Records whose `patient_ref` is this.
    #[arg(long)]
    pub patient_ref: Option<String>,
    /// Records whose `model` is this.
    #[arg(long)]
    pub model: Option<String>,
    /// Records whose `action` is this.
    #[arg(long)]
    pub action: Option<String>,
    /// Records whose FIELD (a JSON path like `decision.role`) is VALUE; repeatable.
    #[arg(long = "field", value_name = "FIELD=VALUE")]
    pub fields: Vec<String>,
    /// Appended at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Appended before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub common: Common,
    /// Prove that the record at this index is in the tree.
    #[arg(long, required_unless_present = "old_size")]
    pub index: Option<u64>,
    /// Prove that the tree of this many records is a prefix of the tree.
    #[arg(long, conflicts_with = "index")]
    pub old_size: Option<u64>,
    /// The tree size to prove against (default: the latest checkpoint's, else the log's).
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Accepted like every audit subcommand; the benchmark uses its own temporary store.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Records appended with group commit, then exported and verified.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub records: u64,
    /// Records per transaction for the group-commit measurement.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
    /// Records appended with group commit to each of three stores measured side by side: in
    /// plaintext, with payloads encrypted, and the embedded default (the file encrypted too).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub encrypted_records: u64,
    /// Records appended one transaction each (one fsync each).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub single: u64,
    /// Folder for the benchmark's temporary store (default: the system temp folder). Use a
    /// folder on the disk the real store lives on: fsync cost is what is measured.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<u8> {
    match args.command {
        AuditCommand::Append(a) => append(a),
        AuditCommand::Checkpoint(c) => checkpoint(c),
        AuditCommand::PublicKey(c) => public_key(c),
        AuditCommand::Export(a) => export(a),
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Query(a) => query(a),
        AuditCommand::Prove(a) => prove(a),
        AuditCommand::Bench(a) => bench(a),
        AuditCommand::Retention(a) => retention(a),
        AuditCommand::EncryptStore(a) => encrypt_store(a),
    }
}

impl Common {
    fn check_config(&self) -> Result<()> {
        if let Some(path) = &self.config {
            std::fs::metadata(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
        }
        Ok(())
    }

    fn db_path(&self) -> Result<PathBuf> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => Ok(phiguard_home()?.join("audit").join("audit.db")),
        }
    }

    fn key_path(&self) -> Result<PathBuf> {
        match &self.key_file {
            Some(p) => Ok(p.clone()),
            None => Ok(phiguard_home()?.join("keys").join("audit-signing.key")),
        }
    }

    fn store_url(&self) -> Result<StoreUrl> {
        match (&self.store, &self.db) {
            (Some(url), None) => Ok(StoreUrl::parse(url)?),
            _ => Ok(StoreUrl::Sqlite(self.db_path()?)),
        }
    }

    fn open(&self) -> Result<AuditStore> {
        self.check_config()?;
        crate::audit_trail::open(&self.store_url()?)
    }

    fn signer(&self) -> Result<Signer> {
        let path = self.key_path()?;
        let (signer, origin) = load_or_create_signer(&path, None)?;
        if origin == phiguard_audit::KeyOrigin::Created {
            eprintln!(
                "phiguard audit: created signing key {} ({})",
                path.display(),
                signer.name()
            );
        }
        Ok(signer)
    }
}

#[derive(Serialize)]
struct Ack<'a> {
    index: u64,
    leaf_hash: String,
    appended_at: &'a str,
    tree_size: u64,
}

fn append(args: AppendArgs) -> Result<u8> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut log = args.common.open()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ack = |receipts: &[phiguard_audit::Receipt]| -> Result<()> {
        for r in receipts {
            let line = serde_json::to_string(&Ack {
                index: r.index,
                leaf_hash: hex::encode(r.leaf_hash),
                appended_at: &r.appended_at,
                tree_size: r.tree_size,
            })?;
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        Ok(())
    };
    if let Some(text) = &args.json {
        let record: Value =
            serde_json::from_str(text).map_err(|e| anyhow!("--json is not valid JSON ({e})"))?;
        let receipt = log.append(&record)?;
        ack(std::slice::from_ref(&receipt))?;
        return Ok(0);
    }
    let Some(path) = &args.jsonl else {
        bail!("give --json or --jsonl");
    };
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?,
        ))
    };
    let mut batch: Vec<Value> = Vec::with_capacity(args.batch_size);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(&line)
            .map_err(|e| anyhow!("line {} of {name} is not valid JSON ({e})", n + 1))?;
        if !record.is_object() {
            bail!("line {} of {name} is not a JSON object", n + 1);
        }
        batch.push(record);
        if batch.len() == args.batch_size {
            ack(&log.append_batch(&batch)?)?;
            batch.clear();
        }
    }
    ack(&log.append_batch(&batch)?)?;
    Ok(0)
}

fn checkpoint(common: Common) -> Result<u8> {
    let mut log = common.open()?;
    let signer = common.signer()?;
    let cp = log.sign_checkpoint(&signer)?;
    print!("{}", cp.note);
    Ok(0)
}

fn public_key(common: Common) -> Result<u8> {
    common.check_config()?;
    println!("{}", common.signer()?.verifier());
    Ok(0)
}

/// The latest checkpoint if it covers the whole log, else a new one.
fn current_checkpoint(log: &mut AuditStore, common: &Common) -> Result<StoredCheckpoint> {
    let head = log.tree_head()?;
    if let Some(cp) = log.latest_checkpoint()?
        && cp.size == head.size
        && cp.root == head.root
    {
        return Ok(cp);
    }
    let signer = common.signer()?;
    let cp = log.sign_checkpoint(&signer)?;
    eprintln!(
        "phiguard audit: signed a new checkpoint at size {}",
        cp.size
    );
    Ok(cp)
}

fn export(args: ExportArgs) -> Result<u8> {
    let mut log = args.common.open()?;
    let cp = current_checkpoint(&mut log, &args.common)?;
    let mut sink = Sink::open(Some(&args.output))?;
    let n = log
        .write_export(&mut sink, &cp)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    sink.finish()?;
    eprintln!(
        "phiguard audit: exported {n} records with the checkpoint of size {} to {}",
        cp.size,
        args.output.display()
    );
    Ok(0)
}

/// A verifier key given inline or in a file.
fn read_public_key(arg: &str) -> Result<VerifierKey> {
    match VerifierKey::parse(arg) {
        Ok(k) => Ok(k),
        Err(inline_err) => {
            let path = Path::new(arg);
            if path.is_file() {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read public key file {}", path.display()))?;
                VerifierKey::parse(text.trim())
                    .with_context(|| format!("invalid public key in {}", path.display()))
            } else {
                Err(anyhow!("invalid --public-key: {inline_err}"))
            }
        }
    }
}

fn read_checkpoint_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read checkpoint file {}", path.display()))
}

#[derive(Serialize)]
struct ProblemOut {
    kind: &'static str,
    message: String,
}

#[derive(Serialize)]
struct CheckpointOut {
    origin: String,
    size: u64,
    root: String,
}

fn checkpoint_out(c: &phiguard_audit::Checkpoint) -> CheckpointOut {
    CheckpointOut {
        origin: c.origin.clone(),
        size: c.size,
        root: B64.encode(c.root),
    }
}

#[derive(Serialize)]
struct VerifyOut {
    intact: bool,
    records: u64,
    /// Records whose payload was pruned after retention (only their leaf hash is checked).
    pruned: u64,
    checkpoint: Option<CheckpointOut>,
    older_checkpoint: Option<CheckpointOut>,
    computed_root: Option<String>,
    problems: Vec<ProblemOut>,
}

fn print_verify(out: &VerifyOut, json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(out)?);
    } else if out.intact {
        let mut line = format!("OK: {} records intact", out.records);
        if out.pruned > 0 {
            line.push_str(&format!(
                " ({} pruned after retention: leaf hash only)",
                out.pruned
            ));
        }
        if let Some(c) = &out.checkpoint {
            line.push_str(&format!(
                "; signed checkpoint {} size {} root {}",
                c.origin, c.size, c.root
            ));
        }
        if let Some(c) = &out.older_checkpoint {
            line.push_str(&format!(
                "; consistent with the older checkpoint of size {}",
                c.size
            ));
        }
        println!("{line}");
    } else {
        println!(
            "FAILED: {} problem{} found",
            out.problems.len(),
            if out.problems.len() == 1 { "" } else { "s" }
        );
        for p in &out.problems {
            println!("  - [{}] {}", p.kind, p.message);
        }
    }
    Ok(if out.intact { 0 } else { EXIT_AUDIT_INVALID })
}

fn verify(args: VerifyArgs) -> Result<u8> {
    args.common.check_config()?;
    let older = args
        .checkpoint
        .as_deref()
        .map(read_checkpoint_file)
        .transpose()?;
    let Some(file) = &args.file else {
        return verify_store(&args, older.as_deref());
    };
    let Some(key) = &args.public_key else {
        bail!(
            "--public-key is required to verify an export (the log's operator prints it with \
             `phiguard audit public-key`)"
        );
    };
    let key = read_public_key(key)?;
    let reader = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let report: ExportReport = verify_export(reader, &key, older.as_deref())
        .with_context(|| format!("cannot read {}", file.display()))?;
    let out = VerifyOut {
        intact: report.is_intact(),
        records: report.records,
        pruned: report.pruned,
        checkpoint: report.checkpoint.as_ref().map(checkpoint_out),
        older_checkpoint: report.older.as_ref().map(checkpoint_out),
        computed_root: report.computed_root.map(|r| B64.encode(r)),
        problems: report
            .problems
            .iter()
            .map(|p| ProblemOut {
                kind: p.kind(),
                message: p.to_string(),
            })
            .collect(),
    };
    print_verify(&out, args.json)
}

/// Checks the local store: every leaf hash, the root, the node cache and every stored
/// checkpoint, and consistency with an older checkpoint when given.
fn verify_store(args: &VerifyArgs, older: Option<&str>) -> Result<u8> {
    let mut log = args.common.open()?;
    let key = match &args.public_key {
        Some(k) => Some(read_public_key(k)?),
        None => {
            let path = args.common.key_path()?;
            if path.exists() {
                Some(load_signer(&path)?.verifier())
            } else {
                None
            }
        }
    };
    let check = log.check(key.as_ref())?;
    let mut problems: Vec<ProblemOut> = check
        .problems
        .iter()
        .map(|m| ProblemOut {
            kind: "store",
            message: m.clone(),
        })
        .collect();
    let head = log.tree_head()?;
    let mut older_out = None;
    if let Some(note) = older {
        let Some(key) = &key else {
            bail!("--checkpoint needs --public-key (no local signing key found)");
        };
        match key.open_checkpoint(note) {
            Err(e) => problems.push(ProblemOut {
                kind: "bad_old_checkpoint",
                message: format!("older checkpoint: {e}"),
            }),
            Ok(old) if old.size > head.size => problems.push(ProblemOut {
                kind: "rolled_back",
                message: format!(
                    "the log was rolled back: the older checkpoint covers {} records, the store only {}",
                    old.size, head.size
                ),
            }),
            Ok(old) => {
                let proof = log.consistency_proof(old.size, head.size)?;
                if verify_consistency(old.size, head.size, &old.root, &head.root, &proof).is_err()
                {
                    problems.push(ProblemOut {
                        kind: "inconsistent",
                        message: format!(
                            "the store is not consistent with the older checkpoint of {} records: \
                             records before {} were rewritten",
                            old.size, old.size
                        ),
                    });
                }
                older_out = Some(checkpoint_out(&old));
            }
        }
    }
    let latest = log.latest_checkpoint()?;
    let out = VerifyOut {
        intact: problems.is_empty(),
        records: check.records,
        pruned: check.pruned,
        checkpoint: latest.as_ref().map(|c| CheckpointOut {
            origin: key
                .as_ref()
                .map_or_else(String::new, |k| k.name().to_string()),
            size: c.size,
            root: B64.encode(c.root),
        }),
        older_checkpoint: older_out,
        computed_root: check.root.map(|r| B64.encode(r)),
        problems,
    };
    print_verify(&out, args.json)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn field_text(record: &Value, name: &str) -> String {
    match record.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

const CSV_FIELDS: [&str; 4] = ["user", "patient_ref", "model", "action"];

fn entry_json(e: &Entry) -> String {
    if let Some(pruned_at) = &e.pruned_at {
        return format!(
            "{{\"index\":{},\"appended_at\":\"{}\",\"retention_until\":\"{}\",\"leaf_hash\":\"{}\",\"pruned_at\":\"{}\",\"record\":null}}",
            e.index,
            e.appended_at,
            e.retention_until,
            hex::encode(e.leaf_hash),
            pruned_at
        );
    }
    format!(
        "{{\"index\":{},\"appended_at\":\"{}\",\"retention_until\":\"{}\",\"leaf_hash\":\"{}\",\"record\":{}}}",
        e.index,
        e.appended_at,
        e.retention_until,
        hex::encode(e.leaf_hash),
        e.record
    )
}

fn query(args: QueryArgs) -> Result<u8> {
    let mut log = args.common.open()?;
    let mut fields = Vec::new();
    for (name, value) in [
        ("user", &args.user),
        ("patient_ref", &args.patient_ref),
        ("model", &args.model),
        ("action", &args.action),
    ] {
        if let Some(v) = value {
            fields.push((name.to_string(), v.clone()));
        }
    }
    for f in &args.fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("--field takes FIELD=VALUE"))?;
        fields.push((k.to_string(), v.to_string()));
    }
    let q = Query {
        fields,
        since: args.since.clone(),
        until: args.until.clone(),
        limit: args.limit,
    };
    let mut sink = Sink::open(args.output.as_deref())?;
    match args.format {
        Format::Json => sink.write_all(b"[")?,
        Format::Csv => {
            sink.write_all(b"index,appended_at,user,patient_ref,model,action,record\n")?
        }
        Format::Ndjson => {}
    }
    let mut first = true;
    let n = log.query(&q, |e| -> Result<()> {
        match args.format {
            Format::Json => {
                sink.write_all(if first { b"\n" } else { b",\n" })?;
                sink.write_all(entry_json(e).as_bytes())?;
            }
            Format::Ndjson => {
                sink.write_all(entry_json(e).as_bytes())?;
                sink.write_all(b"\n")?;
            }
            Format::Csv if e.is_pruned() => {
                let row = [e.index.to_string(), e.appended_at.clone()];
                sink.write_all(row.join(",").as_bytes())?;
                sink.write_all(b",,,,,\n")?;
            }
            Format::Csv => {
                let record: Value = serde_json::from_str(&e.record)
                    .map_err(|_| anyhow!("record {} in the store is not JSON", e.index))?;
                let mut row = vec![e.index.to_string(), e.appended_at.clone()];
                row.extend(
                    CSV_FIELDS
                        .iter()
                        .map(|f| csv_field(&field_text(&record, f))),
                );
                row.push(csv_field(&e.record));
                sink.write_all(row.join(",").as_bytes())?;
                sink.write_all(b"\n")?;
            }
        }
        first = false;
        Ok(())
    })?;
    if let Format::Json = args.format {
        sink.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    }
    sink.finish()?;
    eprintln!("phiguard audit: {n} records matched");
    Ok(0)
}

fn prove(args: ProveArgs) -> Result<u8> {
    let mut log = args.common.open()?;
    let latest = log.latest_checkpoint()?;
    let size = match (args.size, &latest) {
        (Some(s), _) => s,
        (None, Some(cp)) => cp.size,
        (None, None) => log.tree_head()?.size,
    };
    let root = log.root_at(size)?;
    let note = latest.filter(|cp| cp.size == size).map(|cp| cp.note);
    let b64 = |hs: &[phiguard_audit::Hash]| hs.iter().map(|h| B64.encode(h)).collect::<Vec<_>>();
    let out = if let Some(index) = args.index {
        let entry = log.entry(index)?;
        let proof = log.inclusion_proof(index, size)?;
        verify_inclusion(index, size, &entry.leaf_hash, &proof, &root)
            .map_err(|e| anyhow!("the store gave a proof that does not verify: {e}"))?;
        json!({
            "tree_size": size,
            "root": B64.encode(root),
            "index": index,
            "leaf_hash": hex::encode(entry.leaf_hash),
            "inclusion_proof": b64(&proof),
            "checkpoint": note,
        })
    } else {
        let old = args.old_size.unwrap_or(0);
        let old_root = log.root_at(old.min(size))?;
        let proof = log.consistency_proof(old, size)?;
        verify_consistency(old, size, &old_root, &root, &proof)
            .map_err(|e| anyhow!("the store gave a proof that does not verify: {e}"))?;
        json!({
            "old_size": old,
            "old_root": B64.encode(old_root),
            "tree_size": size,
            "root": B64.encode(root),
            "consistency_proof": b64(&proof),
            "checkpoint": note,
        })
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

#[derive(Serialize)]
struct RetentionOut {
    store: String,
    now: String,
    pruned: u64,
    tree_size: u64,
    root: String,
}

fn retention(args: RetentionArgs) -> Result<u8> {
    let mut log = args.common.open()?;
    let now = match &args.now {
        Some(t) => phiguard_audit::store::parse_time(t)?,
        None => phiguard_audit::store::now_time(),
    };
    let pruned = log.prune_expired(&now)?;
    let head = log.tree_head()?;
    let out = RetentionOut {
        store: args.common.store_url()?.describe(),
        now,
        pruned,
        tree_size: head.size,
        root: B64.encode(head.root),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "pruned the payloads of {} records past retention as of {}; the tree of {} records \
             (root {}) is unchanged",
            out.pruned, out.now, out.tree_size, out.root
        );
    }
    Ok(0)
}

fn encrypt_store(args: EncryptStoreArgs) -> Result<u8> {
    args.common.check_config()?;
    let StoreUrl::Sqlite(db) = args.common.store_url()? else {
        bail!("encrypt-store is for the embedded SQLite store; PostgreSQL encrypts at rest itself");
    };
    if !db.exists() {
        bail!("no audit store at {}", db.display());
    }
    let kek = match args.kek {
        Some(p) => std::path::absolute(p)?,
        None => phiguard_crypto::provider::local::default_path(&phiguard_home()?),
    };
    let (provider, created) = phiguard_audit::encryption::local_key(&kek, true)
        .with_context(|| format!("cannot open key file {}", kek.display()))?;
    if created {
        eprintln!("phiguard audit: created key file {}", kek.display());
    }
    let before = AuditLog::open_with(&db, Options::default())?.tree_head()?;
    let done = phiguard_audit::file_key::encrypt_in_place(&db, provider, Some(&kek))
        .with_context(|| format!("cannot encrypt {}", db.display()))?;
    let log = AuditLog::open_with(&db, Options::default())?;
    let after = log.tree_head()?;
    if after != before || !log.is_file_encrypted() {
        bail!(
            "{} was rewritten but does not read back as the same encrypted tree",
            db.display()
        );
    }
    if done {
        println!(
            "encrypted {} (tree of {} records, root {} unchanged); its page key is wrapped \
             under {} in {}",
            db.display(),
            after.size,
            B64.encode(after.root),
            kek.display(),
            phiguard_audit::file_key::sidecar_path(&db).display()
        );
    } else {
        println!("{} is already encrypted", db.display());
    }
    Ok(0)
}

// ---- bench ---------------------------------------------------------------------------------

/// A deterministic synthetic AI-request record (no PHI: references and ids only).
fn bench_record(i: u64) -> Value {
    const ACTIONS: [&str; 4] = ["summarization", "coding", "classification", "generation"];
    json!({
        "kind": "ai_request",
        "user": format!("svc-notes-{}", i % 50),
        "role": "clinical-summarizer",
        "patient_ref": format!("pref-{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "model": "gpt-4o",
        "model_version": "2024-08-06",
        "provider": "azure-openai",
        "action": ACTIONS[(i % 4) as usize],
        "decision": "allow",
        "started_at": "2025-01-31T12:00:00.000Z",
        "completed_at": "2025-01-31T12:00:01.250Z",
        "output": format!("store://outputs/{i}"),
        "request_id": format!("req-{i:012}"),
    })
}

/// xorshift64*: reproducible probe positions without a dependency.
struct Probe(u64);

impl Probe {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

#[derive(Serialize)]
struct BenchOut {
    dir: String,
    record_bytes: usize,
    single: Rate,
    group_commit: Rate,
    batch_size: usize,
    encryption: EncryptionCost,
    tree_head_us: f64,
    inclusion_proof_us: f64,
    consistency_proof_us: f64,
    checkpoint_sign_ms: f64,
    export: Timed,
    export_bytes: u64,
    verify_export: Timed,
    verify_store: Timed,
}

/// Group-commit appends of the same records into three stores, measured in one run.
#[derive(Serialize)]
struct EncryptionCost {
    plaintext: Rate,
    payloads_encrypted: Rate,
    /// The embedded default.
    file_and_payloads_encrypted: Rate,
}

#[derive(Serialize)]
struct Rate {
    records: u64,
    seconds: f64,
    per_second: f64,
}

#[derive(Serialize)]
struct Timed {
    records: u64,
    seconds: f64,
}

fn rate(records: u64, seconds: f64) -> Rate {
    Rate {
        records,
        seconds,
        per_second: if seconds > 0.0 {
            records as f64 / seconds
        } else {
            0.0
        },
    }
}

fn bench(args: BenchArgs) -> Result<u8> {
    if let Some(path) = &args.config {
        std::fs::metadata(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
    }
    if args.batch_size == 0 || args.records == 0 {
        bail!("--records and --batch-size must be at least 1");
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)
        .with_context(|| format!("cannot create folder {}", base.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("phiguard-audit-bench.")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a folder in {}", base.display()))?;
    let say = |s: &str| {
        if !args.json {
            eprintln!("phiguard audit bench: {s}");
        }
    };

    // 1. One transaction (one fsync) per record.
    say(&format!("{} single-record transactions ...", args.single));
    let single = {
        let mut log = AuditLog::open(&dir.path().join("single.db"))?;
        let t = Instant::now();
        for i in 0..args.single {
            log.append(&bench_record(i))?;
        }
        rate(args.single, t.elapsed().as_secs_f64())
    };

    // 2. Group commit.
    say(&format!(
        "{} records in batches of {} ...",
        args.records, args.batch_size
    ));
    let db = dir.path().join("bench.db");
    let mut log = AuditLog::open_with(
        &db,
        Options {
            durability: Durability::Full,
            ..Options::default()
        },
    )?;
    let batch = args.batch_size as u64;
    let mut elapsed = 0.0;
    let mut done = 0u64;
    while done < args.records {
        let n = batch.min(args.records - done);
        let records: Vec<Value> = (done..done + n).map(bench_record).collect();
        let t = Instant::now();
        log.append_batch(&records)?;
        elapsed += t.elapsed().as_secs_f64();
        done += n;
    }
    let group = rate(args.records, elapsed);
    let record_bytes = phiguard_audit::canonical::to_canonical_string(&bench_record(0)).len();

    // 2b. What encryption costs: the same records into a plaintext store, a store with
    // encrypted payloads, and the embedded default (file and payloads encrypted), interleaved
    // batch by batch so that machine noise falls on all three alike.
    say(&format!(
        "{} records into plaintext, payload-encrypted and file-encrypted stores ...",
        args.encrypted_records
    ));
    let encryption = {
        let kek = dir.path().join("bench-kek.json");
        let plain_opts = Options::default();
        let payload_opts = Options {
            encrypt_file: false,
            ..Options::default()
        };
        let mut stores = [
            AuditLog::open_with(&dir.path().join("enc-plain.db"), plain_opts.clone())?,
            AuditLog::open_with_local_key(&dir.path().join("enc-payload.db"), payload_opts, &kek)?
                .0,
            AuditLog::open_with_local_key(&dir.path().join("enc-file.db"), plain_opts, &kek)?.0,
        ];
        if !stores[2].is_file_encrypted() || stores[1].is_file_encrypted() {
            bail!("the benchmark's stores are not encrypted as intended");
        }
        let mut secs = [0.0f64; 3];
        let mut done = 0u64;
        while done < args.encrypted_records {
            let n = batch.min(args.encrypted_records - done);
            let records: Vec<Value> = (done..done + n).map(bench_record).collect();
            for (store, s) in stores.iter_mut().zip(secs.iter_mut()) {
                let t = Instant::now();
                store.append_batch(&records)?;
                *s += t.elapsed().as_secs_f64();
            }
            done += n;
        }
        let n = args.encrypted_records;
        EncryptionCost {
            plaintext: rate(n, secs[0]),
            payloads_encrypted: rate(n, secs[1]),
            file_and_payloads_encrypted: rate(n, secs[2]),
        }
    };

    // 3. Tree head and proofs.
    let t = Instant::now();
    let head = log.tree_head()?;
    let tree_head_us = t.elapsed().as_secs_f64() * 1e6;
    let mut probe = Probe(0x5eed_1234_abcd_0001);
    let proofs = 1000u64;
    let t = Instant::now();
    for _ in 0..proofs {
        let i = probe.next(head.size);
        let entry_hash = log.entry(i)?.leaf_hash;
        let p = log.inclusion_proof(i, head.size)?;
        verify_inclusion(i, head.size, &entry_hash, &p, &head.root)
            .map_err(|e| anyhow!("inclusion proof of {i} failed: {e}"))?;
    }
    let inclusion_proof_us = t.elapsed().as_secs_f64() * 1e6 / proofs as f64;
    let t = Instant::now();
    let cproofs = 200u64;
    for _ in 0..cproofs {
        let old = 1 + probe.next(head.size);
        let p = log.consistency_proof(old, head.size)?;
        std::hint::black_box(p);
    }
    let consistency_proof_us = t.elapsed().as_secs_f64() * 1e6 / cproofs as f64;

    // 4. Checkpoint, export, offline verification, store check.
    let signer = Signer::from_seed("phiguard/audit/bench", [42; 32])?;
    let t = Instant::now();
    let cp = log.sign_checkpoint(&signer)?;
    let checkpoint_sign_ms = t.elapsed().as_secs_f64() * 1e3;
    say("export ...");
    let export_path = dir.path().join("export.jsonl");
    let t = Instant::now();
    let mut sink = Sink::open(Some(&export_path))?;
    let exported = log.write_export(&mut sink, &cp)?;
    sink.finish()?;
    let export = Timed {
        records: exported,
        seconds: t.elapsed().as_secs_f64(),
    };
    let export_bytes = std::fs::metadata(&export_path)?.len();
    say("offline verification of the export ...");
    let t = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&export_path)?);
    let report = verify_export(reader, &signer.verifier(), None)?;
    let verify_export_s = t.elapsed().as_secs_f64();
    if !report.is_intact() {
        bail!("the benchmark's own export did not verify");
    }
    say("store check ...");
    let t = Instant::now();
    let check = log.check(Some(&signer.verifier()))?;
    let verify_store_s = t.elapsed().as_secs_f64();
    if !check.is_intact() {
        bail!("the benchmark's own store did not verify");
    }

    let out = BenchOut {
        dir: base.display().to_string(),
        record_bytes,
        single,
        group_commit: group,
        batch_size: args.batch_size,
        encryption,
        tree_head_us,
        inclusion_proof_us,
        consistency_proof_us,
        checkpoint_sign_ms,
        export,
        export_bytes,
        verify_export: Timed {
            records: report.records,
            seconds: verify_export_s,
        },
        verify_store: Timed {
            records: check.records,
            seconds: verify_store_s,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", bench_table(&out));
    }
    Ok(0)
}

fn ratio(a: &Rate, b: &Rate) -> f64 {
    if b.per_second > 0.0 {
        a.per_second / b.per_second
    } else {
        0.0
    }
}

fn bench_table(o: &BenchOut) -> String {
    format!(
        "phiguard audit bench (store in {}; synchronous=FULL, WAL; records of {} bytes)\n\
         durable appends, 1 per transaction:      {:>12.0} /s  ({} in {:.2} s)\n\
         durable appends, group commit of {:<6}  {:>12.0} /s  ({} in {:.2} s)\n\
         same run, {} records each, group commit:\n\
         \x20 plaintext store:                        {:>12.0} /s\n\
         \x20 payloads encrypted:                     {:>12.0} /s  ({:.2}x plaintext)\n\
         \x20 file + payloads encrypted (default):    {:>12.0} /s  ({:.2}x plaintext)\n\
         tree head of {} records:         {:>10.1} us\n\
         inclusion proof (mean of 1000):           {:>10.1} us\n\
         consistency proof (mean of 200):          {:>10.1} us\n\
         sign checkpoint:                          {:>10.2} ms\n\
         export {} records ({:.1} MB):       {:>10.2} s\n\
         verify export offline ({} records):  {:>10.2} s\n\
         verify store ({} records):           {:>10.2} s\n",
        o.dir,
        o.record_bytes,
        o.single.per_second,
        o.single.records,
        o.single.seconds,
        o.batch_size,
        o.group_commit.per_second,
        o.group_commit.records,
        o.group_commit.seconds,
        o.encryption.plaintext.records,
        o.encryption.plaintext.per_second,
        o.encryption.payloads_encrypted.per_second,
        ratio(&o.encryption.payloads_encrypted, &o.encryption.plaintext),
        o.encryption.file_and_payloads_encrypted.per_second,
        ratio(
            &o.encryption.file_and_payloads_encrypted,
            &o.encryption.plaintext
        ),
        o.group_commit.records,
        o.tree_head_us,
        o.inclusion_proof_us,
        o.consistency_proof_us,
        o.checkpoint_sign_ms,
        o.export.records,
        o.export_bytes as f64 / 1e6,
        o.export.seconds,
        o.verify_export.records,
        o.verify_export.seconds,
        o.verify_store.records,
        o.verify_store.seconds,
    )
}
