//! Reading a table: CSV with a header row, the delimiter sniffed (`,`, `;` or tab), quoted fields,
//! streamed row by row. Only the columns asked for are kept, dictionary-encoded: each distinct
//! value gets a `u32` code, so equivalence classes are computed over integers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::error::{Result, RiskError};

/// One kept column: a dictionary of distinct values and one code per row.
pub struct Column {
    name: String,
    values: Vec<String>,
    first_line: Vec<u64>,
    codes: Vec<u32>,
}

impl Column {
    /// The header name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Distinct values, indexed by code, in order of first appearance.
    pub fn values(&self) -> &[String] {
        &self.values
    }
    /// The code of each row.
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }
    /// The 1-based line on which the value with this code first appears.
    pub fn first_line(&self, code: u32) -> u64 {
        self.first_line.get(code as usize).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column")
            .field("name", &self.name)
            .field("distinct_values", &self.values.len())
            .field("rows", &self.codes.len())
            .finish_non_exhaustive()
    }
}

/// A table reduced to the columns asked for.
pub struct Table {
    path: PathBuf,
    delimiter: u8,
    header: Vec<String>,
    rows: usize,
    columns: Vec<Column>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// Picks the delimiter of a header line: the most frequent of `,`, `;` and tab outside quotes
/// (`,` when none occurs).
pub fn sniff_delimiter(header_line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in header_line {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let cands = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    cands[best]
}

/// Records the byte offset of every `\n` that passes through, so that line numbers can be
/// computed from the csv crate's byte positions (its own line counter is off by one on CRLF
/// files).
struct NewlineTap<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<VecDeque<u64>>>,
}

impl<R: Read> Read for NewlineTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut q = self.newlines.borrow_mut();
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            q.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Turns record byte offsets (non-decreasing) into 1-based line numbers: the line of a record
/// is one more than the newlines at or before its offset (the csv crate places a CRLF record's
/// start on the `\n` of the previous line ending).
pub(crate) struct LineCounter {
    newlines: Rc<RefCell<VecDeque<u64>>>,
    seen: u64,
}

impl LineCounter {
    pub(crate) fn line_at(&mut self, byte: u64) -> u64 {
        let mut q = self.newlines.borrow_mut();
        while q.front().is_some_and(|&nl| nl <= byte) {
            q.pop_front();
            self.seen += 1;
        }
        self.seen + 1
    }
}

/// Wraps a reader so that [`LineCounter::line_at`] can number its records.
pub(crate) fn tap_lines<R: Read>(inner: R) -> (impl Read, LineCounter) {
    let newlines = Rc::new(RefCell::new(VecDeque::new()));
    (
        NewlineTap {
            inner,
            offset: 0,
            newlines: Rc::clone(&newlines),
        },
        LineCounter { newlines, seen: 0 },
    )
}

impl Table {
    /// Reads `path`, keeping `columns` (header names, exact match). The delimiter is sniffed from
    /// the header line.
    pub fn read_csv(path: &Path, columns: &[&str]) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|source| RiskError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Table::from_reader(path, file, columns)
    }

    /// Reads a table from any reader; `path` is used in error messages only.
    pub fn from_reader<R: Read>(path: &Path, reader: R, columns: &[&str]) -> Result<Table> {
        let (reader, mut lines) = tap_lines(reader);
        let mut buf = BufReader::with_capacity(1 << 16, reader);
        let head = buf.fill_buf().map_err(|source| RiskError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        if head.is_empty() {
            return Err(RiskError::Empty {
                file: path.to_path_buf(),
            });
        }
        let delimiter = sniff_delimiter(head);
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(buf);
        let header_rec = rdr
            .byte_headers()
            .map_err(|e| csv_error(path, 1, &e))?
            .clone();
        let mut header = Vec::with_capacity(header_rec.len());
        for (i, h) in header_rec.iter().enumerate() {
            let s = std::str::from_utf8(h).map_err(|_| RiskError::Utf8 {
                file: path.to_path_buf(),
                line: 1,
                column: format!("#{}", i + 1),
            })?;
            header.push(s.to_string());
        }
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(RiskError::Empty {
                file: path.to_path_buf(),
            });
        }
        let mut idx = Vec::with_capacity(columns.len());
        for &c in columns {
            let hits: Vec<usize> = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.as_str() == c)
                .map(|(i, _)| i)
                .collect();
            match hits.len() {
                0 => {
                    return Err(RiskError::MissingColumn {
                        file: path.to_path_buf(),
                        column: c.to_string(),
                        available: header.join(", "),
                    });
                }
                1 => idx.push(hits[0]),
                n => {
                    return Err(RiskError::DuplicateColumn {
                        file: path.to_path_buf(),
                        column: c.to_string(),
                        count: n,
                    });
                }
            }
        }
        let mut cols: Vec<Column> = columns
            .iter()
            .map(|c| Column {
                name: (*c).to_string(),
                values: Vec::new(),
                first_line: Vec::new(),
                codes: Vec::new(),
            })
            .collect();
        let mut lookup: Vec<FxHashMap<Box<[u8]>, u32>> = vec![FxHashMap::default(); columns.len()];
        let mut rec = csv::ByteRecord::new();
        let mut rows = 0usize;
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| lines.line_at(p.byte())).unwrap_or(0);
                    return Err(csv_error(path, line, &e));
                }
            }
            let line = rec.position().map(|p| lines.line_at(p.byte())).unwrap_or(0);
            if rec.len() != header.len() {
                return Err(RiskError::RaggedRow {
                    file: path.to_path_buf(),
                    line,
                    expected: header.len(),
                    found: rec.len(),
                    detail: crate::error::ragged_detail(&header, rec.len()),
                });
            }
            for (j, &i) in idx.iter().enumerate() {
                let field = rec.get(i).unwrap_or_default();
                let col = &mut cols[j];
                let code = match lookup[j].get(field) {
                    Some(&c) => c,
                    None => {
                        let s = std::str::from_utf8(field).map_err(|_| RiskError::Utf8 {
                            file: path.to_path_buf(),
                            line,
                            column: col.name.clone(),
                        })?;
                        let c = u32::try_from(col.values.len()).map_err(|_| {
                            RiskError::Config(format!(
                                "column '{}': more than 2^32 distinct values",
                                col.name
                            ))
                        })?;
                        col.values.push(s.to_string());
                        col.first_line.push(line);
                        lookup[j].insert(field.into(), c);
                        c
                    }
                };
                col.codes.push(code);
            }
            rows += 1;
        }
        Ok(Table {
            path: path.to_path_buf(),
            delimiter,
            header,
            rows,
            columns: cols,
        })
    }

    /// Builds a table from records already split into fields (`header` order), each with the
    /// line or record number errors should name. Used for flattened FHIR resources.
    pub fn from_rows(
        path: &Path,
        header: Vec<String>,
        records: Vec<(u64, Vec<String>)>,
        columns: &[&str],
    ) -> Result<Table> {
        let mut idx = Vec::with_capacity(columns.len());
        for &c in columns {
            match header.iter().position(|h| h == c) {
                Some(i) => idx.push(i),
                None => {
                    return Err(RiskError::MissingColumn {
                        file: path.to_path_buf(),
                        column: c.to_string(),
                        available: header.join(", "),
                    });
                }
            }
        }
        let mut cols: Vec<Column> = columns
            .iter()
            .map(|c| Column {
                name: (*c).to_string(),
                values: Vec::new(),
                first_line: Vec::new(),
                codes: Vec::with_capacity(records.len()),
            })
            .collect();
        let mut lookup: Vec<FxHashMap<String, u32>> = vec![FxHashMap::default(); columns.len()];
        for (line, rec) in &records {
            if rec.len() != header.len() {
                return Err(RiskError::RaggedRow {
                    file: path.to_path_buf(),
                    line: *line,
                    expected: header.len(),
                    found: rec.len(),
                    detail: crate::error::ragged_detail(&header, rec.len()),
                });
            }
            for (j, &i) in idx.iter().enumerate() {
                let col = &mut cols[j];
                let code = match lookup[j].get(&rec[i]) {
                    Some(&c) => c,
                    None => {
                        let c = col.values.len() as u32;
                        col.values.push(rec[i].clone());
                        col.first_line.push(*line);
                        lookup[j].insert(rec[i].clone(), c);
                        c
                    }
                };
                col.codes.push(code);
            }
        }
        Ok(Table {
            path: path.to_path_buf(),
            delimiter: b',',
            header,
            rows: records.len(),
            columns: cols,
        })
    }

    /// Starts a table that is filled column by column (Parquet batches): `header` is every
    /// column name of the file, `columns` the kept ones (already checked to be in `header`).
    pub(crate) fn builder(path: &Path, header: Vec<String>, columns: &[&str]) -> TableBuilder {
        TableBuilder {
            table: Table {
                path: path.to_path_buf(),
                delimiter: b',',
                header,
                rows: 0,
                columns: columns
                    .iter()
                    .map(|c| Column {
                        name: (*c).to_string(),
                        values: Vec::new(),
                        first_line: Vec::new(),
                        codes: Vec::new(),
                    })
                    .collect(),
            },
            lookup: vec![FxHashMap::default(); columns.len()],
        }
    }

    /// The file the table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The sniffed delimiter.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }
    /// Every header name (kept or not).
    pub fn header(&self) -> &[String] {
        &self.header
    }
    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// The kept columns, in the order asked for.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
    /// A kept column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A [`Table`] being filled batch by batch: every kept column receives the same rows, in order.
pub(crate) struct TableBuilder {
    table: Table,
    lookup: Vec<FxHashMap<String, u32>>,
}

impl TableBuilder {
    /// Appends the value of kept column `j` for the next row of that column; `line` is the
    /// record number errors and hierarchies name.
    pub(crate) fn push(&mut self, j: usize, line: u64, value: &str) -> Result<()> {
        let (Some(col), Some(lookup)) = (self.table.columns.get_mut(j), self.lookup.get_mut(j))
        else {
            return Err(RiskError::Config(format!("no kept column #{j}")));
        };
        let code = match lookup.get(value) {
            Some(&c) => c,
            None => {
                let c = u32::try_from(col.values.len()).map_err(|_| {
                    RiskError::Config(format!(
                        "column '{}': more than 2^32 distinct values",
                        col.name
                    ))
                })?;
                col.values.push(value.to_string());
                col.first_line.push(line);
                lookup.insert(value.to_string(), c);
                c
            }
        };
        col.codes.push(code);
        Ok(())
    }

    /// Counts `n` more rows (after every kept column received them).
    pub(crate) fn add_rows(&mut self, n: usize) {
        self.table.rows += n;
    }

    /// The finished table.
    pub(crate) fn finish(self) -> Table {
        self.table
    }
}

/// Maps a csv error to ours without its message (which, for some kinds, could quote data).
fn csv_error(path: &Path, line: u64, e: &csv::Error) -> RiskError {
    match e.kind() {
        csv::ErrorKind::Io(io) => RiskError::Io {
            file: path.to_path_buf(),
            source: std::io::Error::new(io.kind(), "I/O error while reading"),
        },
        csv::ErrorKind::Utf8 { err, .. } => RiskError::Utf8 {
            file: path.to_path_buf(),
            line,
            column: format!("#{}", err.field() + 1),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => RiskError::RaggedRow {
            file: path.to_path_buf(),
            line,
            expected: *expected_len as usize,
            found: *len as usize,
            detail: "unequal record lengths".to_string(),
        },
        _ => RiskError::Csv {
            file: path.to_path_buf(),
            line,
            kind: "parse error".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2;3"), b';');
        assert_eq!(sniff_delimiter(b"a,b,c"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a;b\",c,d"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
    }

    #[test]
    fn reads_quoted_and_codes() {
        let data = "x,\"y,z\",w\n1,\"a,b\",q\n2,\"a,b\",q\n1,c,q\n";
        let t = Table::from_reader(Path::new("mem.csv"), data.as_bytes(), &["x", "y,z"]).unwrap();
        assert_eq!(t.rows(), 3);
        assert_eq!(
            t.columns()[1].values(),
            &["a,b".to_string(), "c".to_string()]
        );
        assert_eq!(t.columns()[0].codes(), &[0, 1, 0]);
        assert_eq!(t.columns()[1].first_line(1), 4);
    }

    #[test]
    fn line_numbers_with_crlf_and_quoted_newlines() {
        for data in [
            "h;x\r\na;1\r\nb;2\r\nc\r\n",
            "h;x\na;1\nb;2\nc\n",
            "h;x\na;\"1\n2\"\nb;2\nc\n",
        ] {
            let e = Table::from_reader(Path::new("t.csv"), data.as_bytes(), &["h"]).unwrap_err();
            let want = if data.contains('"') {
                "line 5:"
            } else {
                "line 4:"
            };
            assert!(e.to_string().contains(want), "{data:?}: {e}");
            let t = Table::from_reader(
                Path::new("t.csv"),
                data.rsplit_once('c').unwrap().0.as_bytes(),
                &["h"],
            )
            .unwrap();
            assert_eq!(t.columns()[0].first_line(0), 2);
            assert_eq!(
                t.columns()[0].first_line(1),
                if data.contains('"') { 4 } else { 3 }
            );
        }
    }

    #[test]
    fn utf8_bom_is_not_part_of_the_first_column_name() {
        let data = "\u{feff}age;sex\n1;F\n";
        let t = Table::from_reader(Path::new("b.csv"), data.as_bytes(), &["age", "sex"]).unwrap();
        assert_eq!(t.header()[0], "age");
        assert_eq!(t.rows(), 1);
    }

    #[test]
    fn ragged_row_names_line_not_value() {
        let data = "a;b;c\n1;2;3\n4;SECRET\n";
        let e = Table::from_reader(Path::new("t.csv"), data.as_bytes(), &["a"]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("t.csv: line 3: 2 fields where the header has 3"),
            "{msg}"
        );
        assert!(!msg.contains("SECRET"));
    }

    #[test]
    fn missing_and_duplicate_columns() {
        let e =
            Table::from_reader(Path::new("t.csv"), "a,b\n1,2\n".as_bytes(), &["c"]).unwrap_err();
        assert!(e.to_string().contains("no column named 'c'"));
        let e =
            Table::from_reader(Path::new("t.csv"), "a,a\n1,2\n".as_bytes(), &["a"]).unwrap_err();
        assert!(e.to_string().contains("appears 2 times"));
        let e = Table::from_reader(Path::new("t.csv"), "".as_bytes(), &["a"]).unwrap_err();
        assert!(e.to_string().contains("empty"));
    }

    #[test]
    fn invalid_utf8_names_column() {
        let mut data = b"a,b\n1,".to_vec();
        data.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let e = Table::from_reader(Path::new("t.csv"), &data[..], &["b"]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("line 2") && msg.contains("not valid UTF-8"),
            "{msg}"
        );
    }
}
