//! Opening the audit store the way every subcommand does (the embedded SQLite store encrypts
//! its records under the local key file; PostgreSQL stores are opened as they are), and
//! appending one record for an action phiguard took.

use anyhow::{Context, Result};
use phiguard_audit::{AuditStore, Options, StoreUrl};

use crate::home::phiguard_home;

/// The embedded default store: `$PHIGUARD_HOME/audit/audit.db`.
pub fn default_url() -> Result<StoreUrl> {
    Ok(StoreUrl::Sqlite(
        phiguard_home()?.join("audit").join("audit.db"),
    ))
}

/// Opens `url`; an embedded store is encrypted under the local key file, created on first use.
pub fn open(url: &StoreUrl) -> Result<AuditStore> {
    open_with(url, Options::default())
}

/// [`open`] with other options (`phiguard serve` commits without waiting for the disk and syncs
/// on a thread of its own: see `phiguard_audit::WalSyncer`).
pub fn open_with(url: &StoreUrl, options: Options) -> Result<AuditStore> {
    if matches!(url, StoreUrl::Postgres(_)) {
        return AuditStore::open(url, options)
            .with_context(|| format!("cannot open the audit store {}", url.describe()));
    }
    let key_file = phiguard_crypto::provider::local::default_path(&phiguard_home()?);
    let (store, created) =
        AuditStore::open_with_local_key(url, options, &key_file).with_context(|| {
            format!(
                "cannot open the audit store {} with key file {}",
                url.describe(),
                key_file.display()
            )
        })?;
    if created {
        eprintln!(
            "phiguard: created key file {} to encrypt the audit records; keep a copy apart \
             from the store, or its records cannot be read",
            key_file.display()
        );
    }
    Ok(store)
}

/// Who is acting: `PHIGUARD_ACTOR`, else the OS user.
pub fn actor() -> String {
    std::env::var("PHIGUARD_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("os-user:{u}"))
        .unwrap_or_else(|_| "os-user:unknown".to_string())
}

/// Appends one record to the store at `url` (default: the embedded store); returns its index.
pub fn record(url: Option<&str>, record: &serde_json::Value) -> Result<u64> {
    let url = match url {
        Some(u) => StoreUrl::parse(u)?,
        None => default_url()?,
    };
    let mut store = open(&url)?;
    Ok(store.append(record)?.index)
}
