//! `phiguard deid`: write de-identified copies. (Owned by the deid work.)

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Inputs.
    pub inputs: Vec<PathBuf>,
}

pub fn run(_args: Args) -> Result<u8> {
    anyhow::bail!("deid is not built yet")
}
