//! CSV (and `;`, tab, `|` separated) tables, via the `csv` crate: delimiter sniffing, quoting,
//! an optional header row, a UTF-8 byte-order mark, row-by-row streaming after a bounded sample.

use std::io::{Cursor, Read, Write};

use phiguard_rules::{Engine, Outcome, Tally};

use crate::plan::{ColumnPlan, patient_column};
use crate::profile::classify;
use crate::{TabularDeid, TabularError};

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Bytes read ahead to sniff the delimiter and line ending.
const PREFIX: usize = 64 * 1024;
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Per-line counts of each candidate delimiter outside quotes, over the complete lines of
/// `bytes` (at most 20).
fn delimiter_counts(bytes: &[u8]) -> Vec<[usize; 4]> {
    let mut lines = Vec::new();
    let mut counts = [0usize; 4];
    let mut quoted = false;
    let mut any = false;
    for &b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                if any {
                    lines.push(counts);
                }
                counts = [0; 4];
                any = false;
                if lines.len() >= 20 {
                    break;
                }
                continue;
            }
            _ if !quoted => {
                if let Some(i) = CANDIDATES.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
        if b != b'\r' {
            any = true;
        }
    }
    lines
}

/// The delimiter of a table whose first bytes are `bytes`: among `,` `;` tab `|`, the one with
/// the same non-zero count on every complete line (the highest such count), else the most
/// frequent on the first line, else `,`.
pub fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut lines = delimiter_counts(bytes);
    if lines.is_empty() {
        // One line without an ending.
        let mut c = [0usize; 4];
        for &b in bytes {
            if let Some(i) = CANDIDATES.iter().position(|x| *x == b) {
                c[i] += 1;
            }
        }
        lines.push(c);
    }
    let consistent = (0..4)
        .filter(|&i| lines[0][i] > 0 && lines.iter().all(|l| l[i] == lines[0][i]))
        .max_by_key(|&i| lines[0][i]);
    if let Some(i) = consistent {
        return CANDIDATES[i];
    }
    (0..4)
        .filter(|&i| lines[0][i] > 0)
        .max_by_key(|&i| lines[0][i])
        .map_or(b',', |i| CANDIDATES[i])
}

/// True if `first_bytes` look like a delimited table: UTF-8 text (a cut last character
/// allowed), not JSON nor HL7, at least two lines with the same non-zero number of one
/// delimiter.
pub fn sniff(first_bytes: &[u8]) -> bool {
    let b = first_bytes.strip_prefix(BOM).unwrap_or(first_bytes);
    let text = match std::str::from_utf8(b) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => match std::str::from_utf8(&b[..e.valid_up_to()]) {
            Ok(t) => t,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    let start = text.trim_start();
    if start.starts_with(['{', '[', '<'])
        || ["MSH", "FHS", "BHS"].iter().any(|s| start.starts_with(s))
        || text.contains('\0')
    {
        return false;
    }
    let lines = delimiter_counts(b);
    if lines.len() < 2 {
        return false;
    }
    (0..4).any(|i| lines[0][i] > 0 && lines.iter().all(|l| l[i] == lines[0][i]))
}

/// Reads up to `PREFIX` bytes.
fn read_prefix<R: Read>(input: &mut R) -> Result<Vec<u8>, TabularError> {
    let mut buf = vec![0u8; PREFIX];
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(TabularError::Read {
                    line: 1,
                    kind: e.kind(),
                });
            }
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn csv_error(e: csv::Error, line: u64) -> TabularError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => TabularError::Read {
            line,
            kind: io.kind(),
        },
        csv::ErrorKind::Utf8 { err, .. } => TabularError::Utf8 {
            line,
            field: err.field() + 1,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => TabularError::Ragged {
            line,
            expected: expected_len as usize,
            actual: len as usize,
        },
        _ => TabularError::Read {
            line,
            kind: std::io::ErrorKind::InvalidData,
        },
    }
}

fn write_error(e: csv::Error) -> TabularError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => TabularError::Write(io.kind()),
        _ => TabularError::Write(std::io::ErrorKind::Other),
    }
}

/// The fields of a record as text, or the position of the first non-UTF-8 field.
pub(crate) fn fields(rec: &csv::ByteRecord, line: u64) -> Result<Vec<&str>, TabularError> {
    rec.iter()
        .enumerate()
        .map(|(i, f)| std::str::from_utf8(f).map_err(|_| TabularError::Utf8 { line, field: i + 1 }))
        .collect()
}

/// Whether the first row is a header: every cell non-empty, distinct, with a letter, not a
/// number nor a date; at least one cell a known column name; no cell that is not a known
/// column name holds something the detector flags as an identifier.
pub(crate) fn looks_like_header(engine: &Engine, cells: &[&str]) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut known = 0;
    for c in cells {
        let t = c.trim();
        if t.is_empty()
            || t.len() > 64
            || !t.chars().any(char::is_alphabetic)
            || crate::plan::is_number(t)
            || phiguard_rules::dates::year(t, phiguard_rules::DateFormat::Auto).is_some()
            || !seen.insert(t.to_uppercase())
        {
            return false;
        }
        if classify(t).is_some() {
            known += 1;
        } else if engine
            .detector()
            .detect(t)
            .iter()
            .any(|s| s.category.is_safe_harbor())
        {
            return false;
        }
    }
    known > 0
}

/// The table's column names and whether the first record is a header.
pub(crate) fn header(deid: &TabularDeid, engine: &Engine, first: &[&str]) -> (Vec<String>, bool) {
    let is_header = match deid.options.header {
        Some(h) => h,
        None => looks_like_header(engine, first),
    };
    let names = if is_header {
        first.iter().map(|s| s.trim().to_string()).collect()
    } else {
        (1..=first.len()).map(|i| format!("col{i}")).collect()
    };
    (names, is_header)
}

/// A CSV reader over `input` with the sniffed settings, and what the output needs to match.
pub(crate) struct Opened<R: Read> {
    pub reader: csv::Reader<std::io::Chain<Cursor<Vec<u8>>, R>>,
    pub delimiter: u8,
    pub crlf: bool,
    pub bom: bool,
}

pub(crate) fn open<R: Read>(deid: &TabularDeid, mut input: R) -> Result<Opened<R>, TabularError> {
    let mut prefix = read_prefix(&mut input)?;
    let bom = prefix.starts_with(BOM);
    if bom {
        prefix.drain(..BOM.len());
    }
    let delimiter = deid
        .options
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(&prefix));
    let crlf = prefix
        .iter()
        .position(|b| *b == b'\n')
        .is_some_and(|i| i > 0 && prefix[i - 1] == b'\r');
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(Cursor::new(prefix).chain(input));
    Ok(Opened {
        reader,
        delimiter,
        crlf,
        bom,
    })
}

/// Reads up to `rows` records with their line numbers.
pub(crate) fn read_sample<R: Read>(
    reader: &mut csv::Reader<R>,
    rows: usize,
) -> Result<Vec<(u64, csv::ByteRecord)>, TabularError> {
    let mut out = Vec::new();
    let mut last_line = 1;
    while out.len() < rows {
        let mut rec = csv::ByteRecord::new();
        match reader.read_byte_record(&mut rec) {
            Ok(true) => {
                let line = rec.position().map_or(last_line, |p| p.line());
                last_line = line;
                out.push((line, rec));
            }
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, last_line)),
        }
    }
    Ok(out)
}

pub(crate) fn run<R: Read, W: Write>(
    deid: &TabularDeid,
    engine: &Engine,
    table: Option<&str>,
    input: R,
    mut out: W,
    tally: &mut Tally,
) -> Result<(), TabularError> {
    let Opened {
        mut reader,
        delimiter,
        crlf,
        bom,
    } = open(deid, input)?;
    tally.files += 1;
    let mut buffered = read_sample(&mut reader, deid.sample_rows + 1)?;
    if bom {
        out.write_all(BOM)
            .map_err(|e| TabularError::Write(e.kind()))?;
    }
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    if buffered.is_empty() {
        writer.flush().map_err(|e| TabularError::Write(e.kind()))?;
        return Ok(());
    }
    let (first_line, first) = &buffered[0];
    let first_fields = fields(first, *first_line)?;
    let (names, is_header) = header(deid, engine, &first_fields);
    let ncols = names.len();
    if is_header {
        writer.write_record(first).map_err(write_error)?;
        buffered.remove(0);
    }
    // Validate the sample and plan the columns from it.
    let mut sample_text: Vec<(u64, Vec<&str>)> = Vec::with_capacity(buffered.len());
    for (line, rec) in &buffered {
        if rec.len() != ncols {
            return Err(TabularError::Ragged {
                line: *line,
                expected: ncols,
                actual: rec.len(),
            });
        }
        sample_text.push((*line, fields(rec, *line)?));
    }
    let mut plans: Vec<ColumnPlan> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            deid.rules.plan(engine, table, name, &names, || {
                sample_text.iter().map(move |(_, r)| r[i])
            })
        })
        .collect();
    let patient = patient_column(deid.patient.as_ref(), table, &names);
    let mut row = RowWriter {
        out: csv::ByteRecord::new(),
    };
    for (line, cells) in &sample_text {
        row.write(
            engine,
            tally,
            &mut plans,
            patient,
            *line,
            cells,
            &mut writer,
        )?;
    }
    drop(sample_text);
    let mut last_line = buffered.last().map_or(1, |(l, _)| *l);
    drop(buffered);
    let mut rec = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, last_line)),
        }
        let line = rec.position().map_or(last_line + 1, |p| p.line());
        last_line = line;
        if rec.len() != ncols {
            return Err(TabularError::Ragged {
                line,
                expected: ncols,
                actual: rec.len(),
            });
        }
        let cells = fields(&rec, line)?;
        row.write(
            engine,
            tally,
            &mut plans,
            patient,
            line,
            &cells,
            &mut writer,
        )?;
    }
    writer.flush().map_err(|e| TabularError::Write(e.kind()))?;
    Ok(())
}

struct RowWriter {
    out: csv::ByteRecord,
}

impl RowWriter {
    #[allow(clippy::too_many_arguments)]
    fn write<W: Write>(
        &mut self,
        engine: &Engine,
        tally: &mut Tally,
        plans: &mut [ColumnPlan],
        patient: Option<usize>,
        line: u64,
        cells: &[&str],
        writer: &mut csv::Writer<W>,
    ) -> Result<(), TabularError> {
        let p = patient
            .and_then(|i| cells.get(i))
            .filter(|v| !v.trim().is_empty())
            .map(|v| engine.patient(v));
        self.out.clear();
        for (plan, cell) in plans.iter_mut().zip(cells) {
            match plan
                .apply(engine, tally, cell, p.as_ref())
                .map_err(|e| TabularError::Action {
                    line,
                    column: plan.name.clone(),
                    message: e.to_string(),
                })? {
                Outcome::Keep => self.out.push_field(cell.as_bytes()),
                Outcome::Remove => self.out.push_field(b""),
                Outcome::Replace(s) => self.out.push_field(s.as_bytes()),
            }
        }
        tally.records += 1;
        writer.write_byte_record(&self.out).map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2,5;3\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a|b\n\"x|y\"|2\n"), b'|');
        assert_eq!(sniff_delimiter(b"\xEF\xBB\xBFa;b"), b';');
        assert_eq!(sniff_delimiter(b"abc\n"), b',');
        assert!(sniff(b"a,b\n1,2\n"));
        assert!(!sniff(b"{\"a\":1,\"b\":2}\n{\"a\":1,\"b\":2}\n"));
        assert!(!sniff(b"MSH|^~\\&|A|B\rPID|1|2\r"));
        assert!(!sniff(b"just one line, of text"));
        assert!(!sniff(b"\x00\x01\x02,\n,\n"));
    }
}
