//! `phiguard serve --config FILE`: the AI gateway. Parses arguments, loads the config, opens
//! the key store and the audit trail, and runs `phiguard-gateway`. Prints `listening on ADDR`
//! once `GET /health` answers; logs carry request ids, statuses and counts, never text.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use phiguard_audit::{
    AuditStore, Durability, JournalOptions, JournaledLog, Options, StoreUrl, WalSyncer,
};
use phiguard_gateway::{AuditSink, AuditSinkError, Config, Gateway, GroupCommit, KeyStore, Syncer};

use crate::audit_trail;
use crate::home::phiguard_home;

#[derive(clap::Args)]
pub struct Args {
    /// The gateway configuration (phiguard.toml; see examples/phiguard.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// How often `serve` looks at the TLS files for a renewed certificate.
const TLS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The tamper-evident audit trail as the gateway's audit sink. The embedded store commits
/// without waiting for the disk; its WAL syncer makes the commits durable, on the group
/// commit's sync thread (PostgreSQL commits are durable as they are).
struct TrailSink {
    store: Mutex<AuditStore>,
    syncer: Option<WalSyncer>,
}

fn sync_failed(_: std::io::Error) -> AuditSinkError {
    AuditSinkError("the audit store could not be synced to disk".into())
}

impl AuditSink for TrailSink {
    /// Durable: committed, then synced.
    fn append(&self, record: &serde_json::Value) -> Result<(), AuditSinkError> {
        self.append_batch(std::slice::from_ref(record))?;
        match &self.syncer {
            Some(s) => s.sync().map_err(sync_failed),
            None => Ok(()),
        }
    }

    /// One transaction for the batch; all or none.
    fn append_batch(&self, records: &[serde_json::Value]) -> Result<(), AuditSinkError> {
        let mut store = self
            .store
            .lock()
            .map_err(|_| AuditSinkError("the audit store lock is poisoned".into()))?;
        store
            .append_batch(records)
            .map(|_| ())
            .map_err(|_| AuditSinkError("the audit store refused the append".into()))
    }

    /// A cheap read of the store (its tree head). A store busy with a write is healthy: the
    /// group commit in front reports failed writes.
    fn syncer(&self) -> Option<Syncer> {
        let s = self.syncer.clone()?;
        Some(Box::new(move || s.sync().map_err(sync_failed)))
    }

    fn health(&self) -> Result<(), AuditSinkError> {
        match self.store.try_lock() {
            Ok(mut store) => store
                .tree_head()
                .map(|_| ())
                .map_err(|_| AuditSinkError("the audit store cannot be read".into())),
            Err(std::sync::TryLockError::WouldBlock) => Ok(()),
            Err(std::sync::TryLockError::Poisoned(_)) => {
                Err(AuditSinkError("the audit store lock is poisoned".into()))
            }
        }
    }
}

/// The embedded store behind its journal as the gateway's audit sink: an append is committed
/// once it is in the journal file, and durable once the group commit's sync thread has synced
/// that file; the journal's own thread takes the records into the store in large batches
/// (`phiguard_audit::journal`).
struct JournalSink(phiguard_audit::JournaledLog);

impl AuditSink for JournalSink {
    /// Durable: journaled, then synced.
    fn append(&self, record: &serde_json::Value) -> Result<(), AuditSinkError> {
        self.append_batch(std::slice::from_ref(record))?;
        self.0.syncer().sync().map_err(sync_failed)
    }

    /// One write for the batch; all or none.
    fn append_batch(&self, records: &[serde_json::Value]) -> Result<(), AuditSinkError> {
        self.0
            .append_batch(records)
            .map_err(|_| AuditSinkError("the audit journal refused the append".into()))
    }

    fn backlog(&self) -> Option<u64> {
        u64::try_from(self.0.backlog()).ok()
    }

    /// A journal write: cheap enough for the request's own thread.
    fn appends_inline(&self) -> bool {
        true
    }

    fn syncer(&self) -> Option<Syncer> {
        let s = self.0.syncer();
        Some(Box::new(move || s.sync().map_err(sync_failed)))
    }

    /// Down when the journal cannot be written or the store stopped taking records in.
    fn health(&self) -> Result<(), AuditSinkError> {
        self.0
            .health()
            .map_err(|_| AuditSinkError("the audit journal or store is failing".into()))
    }
}

/// The API key store named in the config, else `$PHIGUARD_HOME/gateway/keys.db`.
pub fn key_store_path(config: &Config) -> Result<PathBuf> {
    match &config.server.key_store {
        Some(p) => Ok(p.clone()),
        None => Ok(phiguard_home()?.join("gateway").join("keys.db")),
    }
}

/// Loads the config file (errors name the file, line and key).
pub fn load_config(path: &std::path::Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow!("{e}"))
}

/// The journal's batching, from `[audit]`.
fn journal_options(config: &Config) -> JournalOptions {
    let mut options = JournalOptions::default();
    if let Some(ms) = config.audit.journal_delay_ms {
        options.ingest_delay = std::time::Duration::from_millis(ms);
    }
    options.idle_priority =
        config.audit.ingest_priority == phiguard_gateway::config::IngestPriority::Idle;
    options
}

pub fn run(args: Args) -> Result<u8> {
    let config = load_config(&args.config)?;
    let addr = config
        .listen_addr()
        .map_err(|e| anyhow!("{}: {e}", args.config.display()))?;
    // Certificates and keys are read before anything else is opened, so a bad file fails fast.
    let tls = match &config.server.tls {
        Some(t) => Some(phiguard_gateway::tls::server_config(t).map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    let tls_files = config.server.tls.clone();
    let keys = KeyStore::open(&key_store_path(&config)?).map_err(|e| anyhow!("{e}"))?;
    let url = match &config.audit.store {
        Some(u) => StoreUrl::parse(u).context("audit.store")?,
        None => audit_trail::default_url()?,
    };
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let store = audit_trail::open_with(&url, options)?;
    // Group commit: concurrent requests share one write, and one fsync on the sync thread.
    // The embedded store gets a journal in front (one small file write and a shared fdatasync
    // per batch; the store takes the records in behind it); PostgreSQL commits are durable
    // as they are.
    let inner: Arc<dyn AuditSink> = match store {
        AuditStore::Sqlite(log) => Arc::new(JournalSink(
            JournaledLog::start(log, journal_options(&config))
                .context("cannot start the audit journal")?,
        )),
        store => {
            let syncer = store.wal_syncer();
            Arc::new(TrailSink {
                store: Mutex::new(store),
                syncer,
            })
        }
    };
    let sink = GroupCommit::new(inner, 256);
    eprintln!("phiguard serve: loading the PHI detector");
    let detector = phiguard_detect::Detector::new();
    let synced = match config.audit.durability {
        phiguard_gateway::config::Durability::Answer => "fsynced before each answer",
        phiguard_gateway::config::Durability::Background => "fsynced in the background",
    };
    let gateway = Gateway::new(config, Arc::new(detector), Arc::new(keys), Arc::new(sink))
        .map_err(|e| anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("no local address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!(
            "phiguard serve: listening on {scheme}://{local} (audit store {}, records {synced})",
            url.describe()
        );
        // Ctrl-C or SIGTERM: stop accepting, let requests in flight finish.
        let shutdown = async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term => {},
            }
            eprintln!("phiguard serve: shutting down");
        };
        match (tls, tls_files) {
            // The files were loaded once above (a bad file fails start-up); from now on a
            // renewed certificate is picked up without a restart.
            (Some(_), Some(files)) => {
                phiguard_gateway::serve_tls_reloading(
                    gateway,
                    listener,
                    files,
                    TLS_RELOAD_EVERY,
                    shutdown,
                )
                .await
            }
            _ => phiguard_gateway::serve(gateway, listener, shutdown).await,
        }
        .context("the server stopped with an error")
    })?;
    Ok(0)
}
