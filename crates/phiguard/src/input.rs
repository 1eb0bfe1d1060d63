//! Reading inputs shared by `scan`, `deid` and `bench`: files, folders (recursively, sorted),
//! and JSONL (one record a line, streamed). Errors name the file and line, never the text.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One document to process.
pub struct Record {
    /// The record id: the JSONL `id` field (a string or number), or the file path.
    pub id: String,
    pub text: String,
    /// The whole JSONL object the text came from (to keep other fields), or `None` for a text file.
    pub json: Option<serde_json::Map<String, serde_json::Value>>,
    /// Where it came from: the file and, for JSONL, the 1-based line.
    pub source: PathBuf,
    pub line: Option<usize>,
}

/// How to read inputs.
#[derive(Clone)]
pub struct InputOptions {
    pub text_field: String,
    pub skip_invalid: bool,
}

/// Expands positional inputs into the list of files to read (folders recursively, sorted by
/// path so runs are reproducible).
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .with_context(|| format!("cannot read input {}", input.display()))?;
        if meta.is_dir() {
            walk(input, &mut files)?;
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        bail!("no input files found");
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read folder {}", dir.display()))?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// True when `path` is read as JSONL records.
pub fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl") | Some("ndjson")
    )
}

/// Counts of what was read.
#[derive(Default, Debug, Clone, Copy)]
pub struct ReadStats {
    pub records: u64,
    pub skipped: u64,
    pub chars: u64,
}

/// Streams every record of every file to `f`, in order. A malformed line or invalid UTF-8 is an
/// error naming file and line, or, with `skip_invalid`, a counted skip.
pub fn for_each_record(
    files: &[PathBuf],
    opts: &InputOptions,
    mut f: impl FnMut(Record) -> Result<()>,
) -> Result<ReadStats> {
    let mut stats = ReadStats::default();
    for path in files {
        if is_jsonl(path) {
            read_jsonl(path, opts, &mut stats, &mut f)?;
        } else {
            let mut bytes = Vec::new();
            File::open(path)
                .and_then(|mut h| h.read_to_end(&mut bytes))
                .with_context(|| format!("cannot read {}", path.display()))?;
            match String::from_utf8(bytes) {
                Ok(text) => {
                    stats.records += 1;
                    stats.chars += text.chars().count() as u64;
                    f(Record {
                        id: path.display().to_string(),
                        text,
                        json: None,
                        source: path.clone(),
                        line: None,
                    })?;
                }
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    if opts.skip_invalid {
                        stats.skipped += 1;
                        eprintln!(
                            "phiguard: skipped {}: invalid UTF-8 at byte {at}",
                            path.display()
                        );
                    } else {
                        bail!("{}: invalid UTF-8 at byte {at}", path.display());
                    }
                }
            }
        }
    }
    Ok(stats)
}

fn read_jsonl(
    path: &Path,
    opts: &InputOptions,
    stats: &mut ReadStats,
    f: &mut impl FnMut(Record) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        match parse_line(&buf, &opts.text_field) {
            Ok(None) => continue,
            Ok(Some((id, text, json))) => {
                stats.records += 1;
                stats.chars += text.chars().count() as u64;
                let id = id.unwrap_or_else(|| format!("{}:{line_no}", path.display()));
                f(Record {
                    id,
                    text,
                    json: Some(json),
                    source: path.to_path_buf(),
                    line: Some(line_no),
                })?;
            }
            Err(why) => {
                if opts.skip_invalid {
                    stats.skipped += 1;
                    eprintln!("phiguard: skipped {}:{line_no}: {why}", path.display());
                } else {
                    bail!("{}:{line_no}: {why}", path.display());
                }
            }
        }
    }
    Ok(())
}

type Parsed = (
    Option<String>,
    String,
    serde_json::Map<String, serde_json::Value>,
);

/// Parses one JSONL line. The error strings never quote the line (it may hold PHI).
fn parse_line(raw: &[u8], text_field: &str) -> std::result::Result<Option<Parsed>, String> {
    let line = std::str::from_utf8(raw)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "invalid JSON at column {} ({})",
            e.column(),
            e.classify_name()
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err("expected a JSON object".to_string());
    };
    let text = match map.get(text_field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("field \"{text_field}\" is not a string")),
        None => return Err(format!("missing field \"{text_field}\"")),
    };
    let id = match map.get("id") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(Some((id, text, map)))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end of line",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_errors_do_not_quote_text() {
        let err = parse_line(br#"{"id": "a", "text": "John Smith"#, "text").unwrap_err();
        assert!(!err.contains("John"), "{err}");
        let err = parse_line(br#"{"id": "a"}"#, "text").unwrap_err();
        assert!(err.contains("missing field"));
        assert!(parse_line(b"   \n", "text").unwrap().is_none());
        let (id, text, _) = parse_line(br#"{"id": 7, "text": "x"}"#, "text")
            .unwrap()
            .unwrap();
        assert_eq!(id.as_deref(), Some("7"));
        assert_eq!(text, "x");
    }

    #[test]
    fn invalid_utf8_is_reported_with_byte() {
        let err = parse_line(b"{\"text\": \"\xff\"}", "text").unwrap_err();
        assert!(err.contains("invalid UTF-8"));
    }
}
