//! `phiguard eval`: token scoring identical to the reference score.py, over `phiguard-eval`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use phiguard_eval::{DocSet, OrderedMap, Report, ScoreOptions, Selection, markdown};

use crate::output::Sink;

/// Score predicted spans against gold spans, token level, exactly as score.py: binary token
/// precision/recall/F1 (micro), per-category recall, missed spans, false-positive tokens.
/// Prints the Markdown report; only gold documents present in every prediction file are scored.
#[derive(clap::Args)]
pub struct Args {
    /// Gold JSONL: {"id", "text", "spans": [{"start", "end", "category", ...}]}, offsets in code
    /// points.
    #[arg(long)]
    pub gold: PathBuf,
    /// Prediction JSONL files, each `PRED.jsonl` (named after the file) or `NAME=PRED.jsonl`.
    #[arg(required = true, value_name = "[NAME=]PRED.jsonl")]
    pub predictions: Vec<String>,
    /// The Safe Harbor view: --dont-care ORGANIZATION,PROFESSION,OTHER --year-only-dont-care.
    #[arg(long)]
    pub safe_harbor: bool,
    /// Comma-separated gold categories whose tokens are left out of P/R/F1 (they still get a
    /// per-category line).
    #[arg(long, value_name = "CATS")]
    pub dont_care: Option<String>,
    /// Also leave out gold spans flagged year_only (years) or country (allowed by Safe Harbor).
    #[arg(long)]
    pub year_only_dont_care: bool,
    /// Ignore predicted spans whose "score" is below this (spans without a score are kept).
    #[arg(long, value_name = "X")]
    pub min_score: Option<f64>,
    /// Comma-separated predicted labels to ignore.
    #[arg(long, value_name = "LABELS")]
    pub exclude_pred_labels: Option<String>,
    /// Also write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Write the JSON result here (the layout of score.py --json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Report title (default: the gold path).
    #[arg(long)]
    pub title: Option<String>,
    /// Length of the missed / false-positive lists in the JSON.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub top: usize,
    /// Length of the missed / false-positive lists in the Markdown.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub top_md: usize,
    /// A splits file (id<TAB>split lines) restricting the scored documents, with --split.
    #[arg(long, value_name = "FILE", requires = "split")]
    pub split_file: Option<PathBuf>,
    /// The split to keep, with --split-file.
    #[arg(long, requires = "split_file")]
    pub split: Option<String>,
}

/// Splits a `[NAME=]PATH` argument as score.py does: a prefix before `=` is a name unless it
/// contains `/` or ends with `.jsonl`; otherwise the name is the file name without `.jsonl`.
fn system_name(arg: &str) -> (String, String) {
    if let Some((head, path)) = arg.split_once('=')
        && !head.contains('/')
        && !head.ends_with(".jsonl")
    {
        return (head.to_string(), path.to_string());
    }
    let base = arg.rsplit('/').next().unwrap_or(arg);
    let name = base.strip_suffix(".jsonl").unwrap_or(base);
    (name.to_string(), arg.to_string())
}

fn comma_list(s: Option<&str>) -> BTreeSet<String> {
    s.unwrap_or_default()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let mut sink = Sink::open(Some(path))?;
    sink.write_all(content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    sink.finish()
}

pub fn run(args: Args) -> Result<u8> {
    let systems: Vec<(String, String)> = args.predictions.iter().map(|a| system_name(a)).collect();
    for (i, (name, _)) in systems.iter().enumerate() {
        if systems[..i].iter().any(|(n, _)| n == name) {
            bail!("two prediction files are named {name:?}; give them distinct NAME= prefixes");
        }
    }
    let gold = DocSet::read(&args.gold)?;
    let preds = systems
        .iter()
        .map(|(_, path)| DocSet::read(Path::new(path)))
        .collect::<Result<Vec<_>, _>>()?;
    let pred_refs: Vec<&DocSet> = preds.iter().collect();

    let mut selection = Selection::common(&gold, &pred_refs);
    if selection.len() < gold.lines() {
        eprintln!(
            "note: {} of {} gold docs are present in every prediction file; only those are scored",
            selection.len(),
            gold.lines()
        );
    }
    if let (Some(file), Some(split)) = (&args.split_file, &args.split) {
        let keep = phiguard_eval::read_split_ids(file, split)?;
        selection.retain_ids(&keep);
        eprintln!(
            "note: split {}: {} docs scored",
            phiguard_eval::python::str_repr(split),
            selection.len()
        );
    }
    let extra: usize = preds
        .iter()
        .map(|p| phiguard_eval::ids_not_in_gold(&gold, p))
        .sum();
    if extra > 0 {
        eprintln!("warning: {extra} predicted doc ids not in gold (ignored)");
    }

    let mut opts = ScoreOptions {
        min_score: args.min_score,
        exclude_pred_labels: comma_list(args.exclude_pred_labels.as_deref()),
        top: args.top,
        dont_care: comma_list(args.dont_care.as_deref()),
        year_only_dont_care: args.year_only_dont_care,
    };
    if args.safe_harbor {
        opts = opts.with_safe_harbor();
    }
    let named: Vec<(String, &DocSet)> = systems
        .iter()
        .map(|(n, _)| n.clone())
        .zip(pred_refs.iter().copied())
        .collect();
    let results = phiguard_eval::score_all(&selection, &named, &opts)?;

    let gold_arg = args.gold.to_string_lossy().into_owned();
    let title = match args.title.as_deref() {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => gold_arg.clone(),
    };
    let md = markdown(&results, &title, args.top_md);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{md}").context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    if let Some(path) = &args.md {
        write_atomic(path, &md)?;
    }
    if let Some(path) = &args.json {
        let report = Report {
            gold: gold_arg,
            systems: OrderedMap(
                systems
                    .iter()
                    .zip(&args.predictions)
                    .map(|((n, _), arg)| (n.clone(), arg.clone()))
                    .collect(),
            ),
            results,
        };
        write_atomic(path, &report.to_json()?)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_follow_score_py() {
        let cases = [
            ("preds/a.jsonl", ("a", "preds/a.jsonl")),
            ("a.jsonl", ("a", "a.jsonl")),
            ("mine=preds/a.jsonl", ("mine", "preds/a.jsonl")),
            ("dir/x=y.jsonl", ("x=y", "dir/x=y.jsonl")),
            ("x.jsonl=y.jsonl", ("x.jsonl=y", "x.jsonl=y.jsonl")),
            ("plain", ("plain", "plain")),
        ];
        for (arg, (name, path)) in cases {
            assert_eq!(
                system_name(arg),
                (name.to_string(), path.to_string()),
                "{arg}"
            );
        }
    }
}
