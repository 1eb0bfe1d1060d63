//! `phiguard eval`: token scoring identical to score.py. (Owned by the eval work.)

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Gold JSONL.
    #[arg(long)]
    pub gold: PathBuf,
    /// Predictions JSONL.
    pub predictions: Vec<PathBuf>,
}

pub fn run(_args: Args) -> Result<u8> {
    anyhow::bail!("eval is not built yet")
}
