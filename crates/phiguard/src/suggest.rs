//! `phiguard deid --suggest TABLE.csv... --output FILE`: samples each table, runs the detector on
//! each column and writes one `[csv]` config section proposing a rule per column (with the reason
//! as a comment). No sampled value is written. Review it, then pass it with `--config`.

use std::fmt::Write as _;
use std::io::BufReader;

use anyhow::{Context, Result, bail};
use phiguard_rules::{Config, Engine};
use phiguard_tabular::Suggestion;

use crate::cmd_deid::Args;
use crate::structured::{Format, classify, load_config};

/// How many rows of each table are sampled.
const SAMPLE_ROWS: usize = 200;

/// Writes the proposed config for every CSV table among the inputs.
pub fn run(args: &Args) -> Result<u8> {
    let (config, _) = load_config(args.profile.as_deref(), args.config.as_deref())?;
    // The key only feeds the detector's sampling here: nothing keyed is written.
    let key = phiguard_deid::DeidKey::generate().context("cannot draw a random key")?;
    let engine = Engine::new(key, config.engine_options());
    let files = crate::input::expand(&args.inputs)?;
    let mut proposals = Vec::new();
    for (i, file) in files.iter().enumerate() {
        match classify(file)? {
            Format::Csv => {}
            other => bail!(
                "--suggest reads CSV tables; input {} is {}",
                i + 1,
                other.as_str()
            ),
        }
        let table = phiguard_tabular::table_name(file);
        let reader = BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open input {}", i + 1))?,
        );
        let parts = phiguard_tabular::suggest_parts(
            &engine,
            &config,
            table.as_deref(),
            reader,
            SAMPLE_ROWS,
        )
        .with_context(|| {
            format!(
                "input {} (table {})",
                i + 1,
                table.as_deref().unwrap_or("?")
            )
        })?;
        proposals.push((table, parts));
    }
    let out = merge(&config, &proposals);
    // Validate what we propose: it must load as a config.
    Config::from_toml(&format!("profile = \"{}\"\n{out}", config.profile.as_str()))
        .context("the proposed config does not validate (a bug: please report it)")?;
    let mut sink = crate::output::Sink::open(if args.output.as_os_str() == "-" {
        None
    } else {
        Some(args.output.as_path())
    })?;
    std::io::Write::write_all(&mut sink, out.as_bytes())?;
    sink.finish()?;
    if args.output.as_os_str() != "-" {
        eprintln!(
            "phiguard deid: proposed rules for {} table(s) written to {}; review every rule, then run with --config",
            proposals.len(),
            args.output.display()
        );
    }
    Ok(0)
}

fn merge(config: &Config, proposals: &[(Option<String>, Suggestion)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Proposed by `phiguard deid --suggest` for the {} profile from {} table(s). Review every rule before use.",
        config.profile.as_str(),
        proposals.len()
    );
    for (table, p) in proposals {
        let _ = writeln!(out, "# table {}:", table.as_deref().unwrap_or("?"));
        for n in &p.notes {
            let _ = writeln!(out, "# {n}");
        }
        if p.patient.is_none() && !p.rules.is_empty() {
            out.push_str("# no patient column found: dates shift by the dataset-wide offset\n");
        }
    }
    out.push_str("[csv]\n");
    let mut patient_written = false;
    for (_, p) in proposals {
        if let Some(line) = &p.patient {
            if patient_written {
                let _ = writeln!(
                    out,
                    "# also a patient key (found by its name): {}",
                    line.trim_start()
                );
            } else {
                let _ = writeln!(out, "{line}");
                patient_written = true;
            }
        }
    }
    if proposals.iter().all(|(_, p)| p.no_header) && !proposals.is_empty() {
        out.push_str("options = [\"no-header\"]\n");
    } else if proposals.iter().any(|(_, p)| p.no_header) {
        out.push_str("# some tables have no header row: split them into their own run with options = [\"no-header\"]\n");
    }
    out.push_str("rules = [\n");
    for (_, p) in proposals {
        for r in &p.rules {
            let _ = writeln!(out, "{r}");
        }
    }
    out.push_str("]\n");
    out
}
