//! `phiguard scan`: find PHI and write JSONL `{"id","text","spans":[...]}` records.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use phiguard_detect::{CharIndex, Detector, Lang, Span};

use crate::input::{self, InputOptions};
use crate::output::Sink;

#[derive(clap::Args)]
pub struct Args {
    /// Text files, folders (read recursively) or JSONL files (`.jsonl`, one record a line).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the JSONL result (default: stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The JSONL field that holds the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Language of the documents: en, es or de (default: detected per document).
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// Exit with code 3 when any PHI is found (to gate a "de-identified" dataset in CI).
    #[arg(long)]
    pub fail_on_phi: bool,
    /// Skip (and count) malformed JSONL lines and files that are not UTF-8 instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Omit the text from the output records (spans only).
    #[arg(long)]
    pub no_text: bool,
}

pub fn parse_lang(s: &str) -> std::result::Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language {s:?} (expected en, es or de)"))
}

/// One span as written in JSONL: code-point offsets, end exclusive.
#[derive(serde::Serialize)]
pub struct JsonSpan {
    pub start: usize,
    pub end: usize,
    pub category: &'static str,
    pub confidence: f32,
    pub recognizer: &'static str,
}

/// Converts byte-offset spans to JSONL spans.
pub fn json_spans(text: &str, spans: &[Span]) -> Vec<JsonSpan> {
    let idx = CharIndex::new(text);
    spans
        .iter()
        .map(|s| JsonSpan {
            start: idx.char_offset(s.start),
            end: idx.char_offset(s.end),
            category: s.category.as_str(),
            confidence: (s.confidence * 100.0).round() / 100.0,
            recognizer: s.recognizer,
        })
        .collect()
}

pub fn run(args: Args) -> Result<u8> {
    let files = input::expand(&args.inputs)?;
    let opts = InputOptions {
        text_field: args.text_field.clone(),
        skip_invalid: args.skip_invalid,
    };
    let detector = Detector::new();
    let mut sink = Sink::open(args.output.as_deref())?;
    let progress = crate::cmd_bench::Progress::new("scan", files.len() as u64);
    let mut found = 0u64;
    let mut current = None::<PathBuf>;
    let stats = input::for_each_record(&files, &opts, |rec| {
        if current.as_ref() != Some(&rec.source) {
            if current.is_some() {
                progress.inc_file();
            }
            current = Some(rec.source.clone());
        }
        let spans = detector.detect_lang(&rec.text, args.lang);
        found += spans.len() as u64;
        let out = serde_json::json!({
            "id": rec.id,
            "text": if args.no_text { serde_json::Value::Null } else { serde_json::Value::String(rec.text.clone()) },
            "spans": json_spans(&rec.text, &spans),
        });
        let mut out = out;
        if args.no_text
            && let Some(m) = out.as_object_mut()
        {
            m.remove("text");
        }
        serde_json::to_writer(&mut sink, &out)?;
        sink.write_all(b"\n")?;
        progress.inc_record(rec.text.len() as u64);
        Ok(())
    })?;
    sink.finish()?;
    progress.finish();
    eprintln!(
        "phiguard scan: {} records, {} characters, {} spans found, {} skipped",
        stats.records, stats.chars, found, stats.skipped
    );
    if args.fail_on_phi && found > 0 {
        return Ok(crate::EXIT_PHI_FOUND);
    }
    Ok(0)
}
