//! Parquet input: only the quasi-identifier and sensitive columns are read (a projection on the
//! file's top-level columns), batch by batch, and each cell is turned into the text the CSV
//! path would see: arrow's cast to UTF-8 (numbers, dates and timestamps as their display
//! strings), arrow's display for types without such a cast, and nulls as the empty string.
//! Errors name the file, the row and the column, never a value; a row's "line" is its 1-based
//! record number.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use arrow_array::{Array, ArrayRef, StringArray};
use arrow_cast::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Result, RiskError};
use crate::table::Table;

const BATCH: usize = 8192;

/// Whether the file at `path` is Parquet by content: the magic `PAR1` at its start and end.
/// False for anything that cannot be opened or read (the CSV reader then reports it).
pub fn is_parquet(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    f.read_exact(&mut head).is_ok()
        && &head == b"PAR1"
        && f.seek(SeekFrom::End(-4)).is_ok()
        && f.read_exact(&mut tail).is_ok()
        && &tail == b"PAR1"
}

fn perr(path: &Path, e: impl std::fmt::Display) -> RiskError {
    // Parquet and arrow reader errors describe structure (footer, page, encoding), not values.
    let mut detail = e.to_string();
    detail.truncate(300);
    RiskError::Parquet {
        file: path.to_path_buf(),
        detail,
    }
}

/// Reads the Parquet file `path`, keeping `columns` (top-level column names, exact match).
pub fn read_parquet(path: &Path, columns: &[&str]) -> Result<Table> {
    let file = File::open(path).map_err(|source| RiskError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| perr(path, e))?;
    // The parquet crate asserts (panics) on a negative chunk offset or length from a damaged
    // footer: check every chunk's byte range against the file first.
    for (g, rg) in builder.metadata().row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let fits = start >= 0
                && len >= 0
                && start
                    .checked_add(len)
                    .is_some_and(|e| u64::try_from(e).is_ok_and(|e| e <= file_len));
            if !fits {
                return Err(perr(
                    path,
                    format!("row group {g}, column chunk {c}: byte range outside the file"),
                ));
            }
        }
    }
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut roots = Vec::with_capacity(columns.len());
    for &c in columns {
        let hits: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.as_str() == c)
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [] => {
                return Err(RiskError::MissingColumn {
                    file: path.to_path_buf(),
                    column: c.to_string(),
                    available: header.join(", "),
                });
            }
            [i] => roots.push(*i),
            _ => {
                return Err(RiskError::DuplicateColumn {
                    file: path.to_path_buf(),
                    column: c.to_string(),
                    count: hits.len(),
                });
            }
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| perr(path, e))?;
    let mut table = Table::builder(path, header, columns);
    let mut done = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| perr(path, e))?;
        let n = batch.num_rows();
        for (j, &c) in columns.iter().enumerate() {
            let array = batch
                .column_by_name(c)
                .ok_or_else(|| perr(path, format!("column '{c}' missing from a batch")))?;
            let text = as_text(path, c, array)?;
            for i in 0..n {
                let v = if text.is_null(i) { "" } else { text.value(i) };
                table.push(j, done + i as u64 + 1, v)?;
            }
        }
        table.add_rows(n);
        done += n as u64;
    }
    Ok(table.finish())
}

/// The column as UTF-8 strings (nulls kept as nulls).
fn as_text(path: &Path, column: &str, array: &ArrayRef) -> Result<StringArray> {
    let dt = array.data_type();
    if can_cast_types(dt, &DataType::Utf8) {
        // Cast errors (for example binary that is not UTF-8) could quote bytes: not passed on.
        let s =
            cast_with_options(array, &DataType::Utf8, &CastOptions::default()).map_err(|_| {
                RiskError::Utf8 {
                    file: path.to_path_buf(),
                    line: 0,
                    column: column.to_string(),
                }
            })?;
        return s
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| {
                perr(
                    path,
                    format!("column '{column}': no string array from cast"),
                )
            });
    }
    let fmt = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).map_err(|_| {
        perr(
            path,
            format!("column '{column}': type {dt} cannot be shown as text"),
        )
    })?;
    let mut out = Vec::with_capacity(array.len());
    for i in 0..array.len() {
        out.push(if array.is_null(i) {
            None
        } else {
            Some(fmt.value(i).to_string())
        });
    }
    Ok(StringArray::from(out))
}
