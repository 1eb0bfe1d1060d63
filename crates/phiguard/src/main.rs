//! The `phiguard` binary: argument parsing, exit codes and wiring over the library crates.

mod audit_trail;
mod cmd_audit;
mod cmd_backup;
mod cmd_bench;
mod cmd_deid;
mod cmd_eval;
mod cmd_keys;
mod cmd_risk;
mod cmd_scan;
mod cmd_serve;
mod formats;
mod home;
mod input;
mod output;
mod structured;
mod structured_run;
mod suggest;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: de-identification and the gateway allocate many
/// small short-lived strings, and glibc's malloc was 9-14% of their CPU profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// phiguard: de-identify healthcare data before AI touches it, and prove it.
#[derive(Parser)]
#[command(name = "phiguard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find PHI in text files, folders or JSONL and write JSONL spans.
    Scan(cmd_scan::Args),
    /// Write de-identified copies of text files, folders or JSONL, with a run report.
    Deid(cmd_deid::Args),
    /// Score predicted spans against gold spans (token precision/recall/F1, as score.py).
    Eval(cmd_eval::Args),
    /// Measure detector throughput (characters per second) and peak memory.
    Bench(cmd_bench::Args),
    /// Tamper-evident audit trail: append, checkpoint, export, verify, query, prove.
    Audit(cmd_audit::Args),
    /// Write an encrypted, verifiable snapshot of the stores under PHIGUARD_HOME.
    Backup(cmd_backup::BackupArgs),
    /// Restore a backup (verified before anything is replaced) into a new home or, with
    /// --force, over the current one.
    Restore(cmd_backup::RestoreArgs),
    /// Encryption keys: status, rotate, revoke, rewrap, seal/unseal, encrypt/decrypt, bench.
    Keys(cmd_keys::Args),
    /// Re-identification risk of a table: k-anonymity, l-diversity, t-closeness, prosecutor/
    /// journalist/marketer risk; --k searches generalisations (exit 4 if not reachable).
    Risk(cmd_risk::Args),
    /// The AI gateway: an OpenAI-compatible API with PHI guards, BAA routing and audit.
    Serve(cmd_serve::Args),
}

/// Exit codes: 0 success, 1 error, 2 usage (clap), 3 PHI found with `--fail-on-phi`.
pub const EXIT_PHI_FOUND: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => cmd_scan::run(a),
        Command::Deid(a) => cmd_deid::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Bench(a) => cmd_bench::run(a),
        Command::Audit(a) => cmd_audit::run(a),
        Command::Keys(a) => cmd_keys::run(a),
        Command::Risk(a) => cmd_risk::run(a),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Backup(a) => cmd_backup::backup(a),
        Command::Restore(a) => cmd_backup::restore(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Errors are built to carry file names, line numbers and counts, never record text.
            eprintln!("phiguard: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
