//! `phiguard bench`: detector throughput and peak memory. (Owned by the bench work.)

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Files, folders or JSONL to measure on (default: ../shared/corpora/text).
    pub inputs: Vec<PathBuf>,
}

pub fn run(_args: Args) -> Result<u8> {
    anyhow::bail!("bench is not built yet")
}

/// Progress reporting: a bar on a terminal, plain counts otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(what: &str, files: u64) -> Self {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(files);
            b.set_message(what.to_string());
            Some(b)
        } else {
            None
        };
        Progress { bar }
    }
    pub fn inc_file(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
    pub fn inc_record(&self, _bytes: u64) {}
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
