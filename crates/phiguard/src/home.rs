//! `$PHIGUARD_HOME`: where phiguard keeps its keys and stores (default `$XDG_DATA_HOME/phiguard`
//! or `~/.local/share/phiguard`), resolved once for every subcommand.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};

/// The phiguard home folder.
pub fn phiguard_home() -> Result<PathBuf> {
    let deid_key = phiguard_deid::key::default_key_path(|k| std::env::var_os(k))
        .ok_or_else(|| anyhow!("no home folder found: set PHIGUARD_HOME"))?;
    deid_key
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("no home folder found: set PHIGUARD_HOME"))
}
