//! Reading gold and prediction JSONL: one document a line,
//! `{"id", "text", "spans": [{"start", "end", "category", "text", "year_only", "country", "score"}]}`.
//!
//! Lines are read as score.py reads them: universal newlines, surrounding whitespace stripped,
//! blank lines skipped, and a repeated id replaces the earlier record while still counting once
//! more in the gold order. Errors name the file, line and field, never a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::EvalError;
use crate::python;

/// A document id: JSON string or number (`"7"` and `7` are different ids, as in Python).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DocId {
    /// A string id.
    Str(String),
    /// A numeric id, as serde_json prints the number.
    Num(String),
}

/// A `"text"` field: absent, a string, or present with another type (which never equals a
/// string, as in Python).
#[derive(Debug, Clone, PartialEq)]
pub enum TextField {
    /// No such key.
    Absent,
    /// A string value.
    Str(String),
    /// A value that is not a string (such as `null`).
    Other,
}

impl TextField {
    fn from_value(v: Option<Value>) -> Self {
        match v {
            None => TextField::Absent,
            Some(Value::String(s)) => TextField::Str(s),
            Some(_) => TextField::Other,
        }
    }

    /// True when the key is present and its value is not the string `s` (score.py's
    /// `"text" in x and x["text"] != s`).
    pub fn present_and_differs(&self, s: &str) -> bool {
        match self {
            TextField::Absent => false,
            TextField::Str(t) => t != s,
            TextField::Other => true,
        }
    }
}

/// A span's `"score"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    /// Absent or `null`: the span is always kept.
    None,
    /// A number (`true`/`false` count as 1/0, as in Python).
    Num(f64),
    /// Another type: an error only when `--min-score` is used, as in Python.
    Invalid,
}

/// One gold or predicted span. Offsets are code points, end exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// Start offset (may be out of range or negative; handled as score.py does).
    pub start: i64,
    /// End offset, exclusive.
    pub end: i64,
    /// The `"category"` label, `None` when absent.
    pub category: Option<String>,
    /// The span's `"text"`, checked against the document text for gold spans.
    pub text: TextField,
    /// Python truthiness of `"year_only"`.
    pub year_only: bool,
    /// Python truthiness of `"country"`.
    pub country: bool,
    /// The `"score"`.
    pub score: Score,
}

/// One JSONL record.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// The `"id"`.
    pub id: DocId,
    /// The 1-based line it was read from.
    pub line: usize,
    /// The `"text"`.
    pub text: TextField,
    /// The `"spans"` (empty when absent).
    pub spans: Vec<SpanRecord>,
}

/// The records of one JSONL file.
#[derive(Debug, Clone)]
pub struct DocSet {
    path: PathBuf,
    docs: Vec<Doc>,
    by_id: HashMap<DocId, usize>,
    order: Vec<usize>,
}

impl DocSet {
    /// Reads a JSONL file.
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses JSONL content; `path` is used in errors only.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, EvalError> {
        let content = std::str::from_utf8(bytes).map_err(|e| {
            let before = bytes.get(..e.valid_up_to()).unwrap_or_default();
            EvalError::Utf8 {
                path: path.to_path_buf(),
                // the line the bad byte is on: complete lines before it, plus one
                line: universal_lines(&format!("{}x", String::from_utf8_lossy(before))).count(),
            }
        })?;
        let mut set = DocSet {
            path: path.to_path_buf(),
            docs: Vec::new(),
            by_id: HashMap::new(),
            order: Vec::new(),
        };
        for (i, raw) in universal_lines(content).enumerate() {
            let line = i + 1;
            let raw = python::strip(raw);
            if raw.is_empty() {
                continue;
            }
            let doc = parse_record(path, line, raw)?;
            match set.by_id.get(&doc.id) {
                Some(&k) => {
                    if let Some(slot) = set.docs.get_mut(k) {
                        *slot = doc;
                    }
                    set.order.push(k);
                }
                None => {
                    let k = set.docs.len();
                    set.by_id.insert(doc.id.clone(), k);
                    set.docs.push(doc);
                    set.order.push(k);
                }
            }
        }
        Ok(set)
    }

    /// The file this set was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record with this id (the last one, if the id repeats).
    pub fn get(&self, id: &DocId) -> Option<&Doc> {
        self.by_id.get(id).and_then(|&k| self.docs.get(k))
    }

    /// True when a record has this id.
    pub fn contains(&self, id: &DocId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The distinct records, in order of first appearance.
    pub fn docs(&self) -> &[Doc] {
        &self.docs
    }

    /// Every line's record in file order (a repeated id appears again, holding its last record),
    /// as score.py's `order` list resolved through its dict.
    pub fn in_order(&self) -> impl Iterator<Item = &Doc> {
        self.order.iter().filter_map(|&k| self.docs.get(k))
    }

    /// The number of records read (lines that held a record).
    pub fn lines(&self) -> usize {
        self.order.len()
    }
}

/// Splits on `\n`, `\r\n` and `\r`, as Python's text mode does.
fn universal_lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.find(['\n', '\r']) {
            None => {
                rest = None;
                if r.is_empty() { None } else { Some(r) }
            }
            Some(i) => {
                let skip = if r[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&r[i + skip..]);
                Some(&r[..i])
            }
        }
    })
}

fn parse_record(path: &Path, line: usize, raw: &str) -> Result<Doc, EvalError> {
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        let msg = e.to_string();
        // serde_json's syntax messages never quote input; drop its " at line 1 column N".
        let reason = msg
            .rfind(" at line ")
            .map_or(msg.as_str(), |i| &msg[..i])
            .to_string();
        EvalError::Json {
            path: path.to_path_buf(),
            line,
            column: e.column(),
            reason,
        }
    })?;
    let Value::Object(mut map) = value else {
        return Err(EvalError::field(
            path,
            line,
            "(record)",
            "expected a JSON object",
        ));
    };
    let id = match map.remove("id") {
        Some(Value::String(s)) => DocId::Str(s),
        Some(Value::Number(n)) => DocId::Num(n.to_string()),
        Some(_) => {
            return Err(EvalError::field(
                path,
                line,
                "id",
                "expected a string or number",
            ));
        }
        None => return Err(EvalError::field(path, line, "id", "missing")),
    };
    let text = TextField::from_value(map.remove("text"));
    let spans = match map.remove("spans") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_span(path, line, i, v))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(EvalError::field(path, line, "spans", "expected a list")),
    };
    Ok(Doc {
        id,
        line,
        text,
        spans,
    })
}

fn parse_span(path: &Path, line: usize, i: usize, v: Value) -> Result<SpanRecord, EvalError> {
    let Value::Object(mut m) = v else {
        return Err(EvalError::field(
            path,
            line,
            format!("spans[{i}]"),
            "expected an object",
        ));
    };
    let offset = |m: &mut Map<String, Value>, key: &str| {
        let problem = match m.remove(key) {
            Some(Value::Number(n)) => match n.as_i64() {
                Some(x) => return Ok(x),
                None => "expected an integer",
            },
            Some(_) => "expected an integer",
            None => "missing",
        };
        Err(EvalError::field(
            path,
            line,
            format!("spans[{i}].{key}"),
            problem,
        ))
    };
    let start = offset(&mut m, "start")?;
    let end = offset(&mut m, "end")?;
    let category = match m.remove("category") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(EvalError::field(
                path,
                line,
                format!("spans[{i}].category"),
                "expected a string",
            ));
        }
    };
    let score = match m.get("score") {
        None | Some(Value::Null) => Score::None,
        Some(Value::Number(n)) => n.as_f64().map_or(Score::Invalid, Score::Num),
        Some(Value::Bool(b)) => Score::Num(if *b { 1.0 } else { 0.0 }),
        Some(_) => Score::Invalid,
    };
    Ok(SpanRecord {
        start,
        end,
        category,
        text: TextField::from_value(m.remove("text")),
        year_only: m.get("year_only").is_some_and(python::truthy),
        country: m.get("country").is_some_and(python::truthy),
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DocSet, EvalError> {
        DocSet::parse(Path::new("t.jsonl"), s.as_bytes())
    }

    #[test]
    fn reads_records_blank_lines_and_universal_newlines() {
        let set = parse(
            "{\"id\": \"a\", \"text\": \"x\"}\r\n\n  \r{\"id\": 7, \"text\": \"y\", \"spans\": [{\"start\": 0, \"end\": 1, \"category\": \"NAME\", \"year_only\": 1, \"score\": 0.5}]}\u{a0}\n",
        )
        .unwrap();
        assert_eq!(set.docs().len(), 2);
        let d = set.get(&DocId::Num("7".into())).unwrap();
        assert_eq!(d.line, 4);
        assert!(d.spans[0].year_only && !d.spans[0].country);
        assert_eq!(d.spans[0].score, Score::Num(0.5));
        assert!(set.get(&DocId::Str("7".into())).is_none());
    }

    #[test]
    fn repeated_id_keeps_last_record_and_counts_twice() {
        let set = parse(
            "{\"id\": \"a\", \"text\": \"one\"}\n{\"id\": \"b\", \"text\": \"two\"}\n{\"id\": \"a\", \"text\": \"three\"}\n",
        )
        .unwrap();
        let texts: Vec<_> = set.in_order().map(|d| d.text.clone()).collect();
        assert_eq!(
            texts,
            [
                TextField::Str("three".into()),
                TextField::Str("two".into()),
                TextField::Str("three".into())
            ]
        );
        assert_eq!(set.lines(), 3);
    }

    #[test]
    fn errors_name_line_and_field_but_not_the_text() {
        let secret = "John Smith";
        let cases = [
            format!("{{\"id\": \"a\", \"text\": \"{secret}\"\n"),
            format!("{{\"text\": \"{secret}\"}}"),
            format!(
                "{{\"id\": \"a\", \"text\": \"{secret}\", \"spans\": [{{\"start\": \"{secret}\", \"end\": 2}}]}}"
            ),
            format!(
                "{{\"id\": \"a\", \"text\": \"{secret}\", \"spans\": [{{\"start\": 0, \"end\": 1.5}}]}}"
            ),
            format!(
                "{{\"id\": \"a\", \"text\": \"x\", \"spans\": [{{\"start\": 0, \"end\": 1, \"category\": [\"{secret}\"]}}]}}"
            ),
            format!("[\"{secret}\"]"),
            format!("{{\"id\": [\"{secret}\"]}}"),
        ];
        for (i, case) in cases.iter().enumerate() {
            let err = parse(&format!("\n{case}")).unwrap_err().to_string();
            assert!(!err.contains("John"), "case {i}: {err}");
            assert!(err.starts_with("t.jsonl:2: "), "case {i}: {err}");
        }
        let err = parse("{\"id\": \"a\", \"spans\": [{\"start\": 0}]}")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t.jsonl:1: field spans[0].end: missing");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = DocSet::parse(
            Path::new("t.jsonl"),
            b"{\"id\": \"a\"}\n{\"id\": \"\xff\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "t.jsonl:2: invalid UTF-8");
    }
}
