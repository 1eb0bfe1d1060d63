//! Parquet via arrow-rs: record batches are read, de-identified column by column and written
//! batch by batch with the same schema, except that a column whose action produces text its
//! type cannot hold (a date generalised to a year, an integer identifier pseudonymised, a ZIP
//! generalised to ZIP3, an age turned into `90+`) becomes a UTF-8 string column, and a removed
//! value becomes null (so removed columns become nullable). Key-value and field metadata are
//! dropped (they may hold anything).

use std::io::Write;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow_cast::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use phiguard_rules::{Action, Engine, Kind, Outcome, Tally};

use crate::plan::{ColumnPlan, patient_column};
use crate::profile::Class;
use crate::{TabularDeid, TabularError};

const BATCH: usize = 8192;

fn perr(e: impl std::fmt::Display) -> TabularError {
    // Parquet and arrow reader errors describe structure (footer, page, encoding), not values.
    let mut m = e.to_string();
    m.truncate(300);
    TabularError::Parquet(m)
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

fn is_temporal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    )
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Boolean)
}

/// Types whose values can be seen as text and written back.
fn textual(dt: &DataType) -> bool {
    (is_string(dt) || is_temporal(dt) || is_numeric(dt))
        && can_cast_types(dt, &DataType::Utf8)
        && can_cast_types(&DataType::Utf8, dt)
}

/// How one column is carried out.
enum Mode {
    /// Leave the array as it is.
    Keep,
    /// Replace with nulls.
    Null,
    /// Through text, then back to `out` type.
    Values { out: DataType },
}

fn mode(dt: &DataType, plan: &ColumnPlan) -> Mode {
    let a = plan.action;
    if a == Action::Keep {
        return Mode::Keep;
    }
    if a == Action::Remove || !textual(dt) {
        // Nested and binary columns cannot be inspected: anything but `keep` nulls them.
        return Mode::Null;
    }
    if is_numeric(dt) && !matches!(dt, DataType::Boolean) && a == Action::Text && !plan.covered {
        // A numeric column no rule covers: measurements, unless sampling made it an identifier.
        return Mode::Keep;
    }
    if matches!(dt, DataType::Boolean) && !plan.covered {
        return Mode::Keep;
    }
    let keeps_type = is_string(dt)
        || (is_temporal(dt)
            && matches!(plan.kind, Kind::Date(_) | Kind::BirthDate(_))
            && matches!(a, Action::DateShift | Action::Pseudonym | Action::Surrogate));
    Mode::Values {
        out: if keeps_type {
            dt.clone()
        } else {
            DataType::Utf8
        },
    }
}

fn as_strings(array: &ArrayRef) -> Result<StringArray, TabularError> {
    let s = cast_with_options(array, &DataType::Utf8, &CastOptions::default()).map_err(perr)?;
    s.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| TabularError::Parquet("string cast gave no string array".into()))
}

/// Checks the byte range of every column chunk against the file before any is read: the
/// parquet crate asserts (panics) on a negative offset or length from a damaged footer.
pub(crate) fn check_chunk_ranges(
    meta: &parquet::file::metadata::ParquetMetaData,
    file_len: u64,
) -> Result<(), String> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let end = start.checked_add(len);
            let fits = start >= 0
                && len >= 0
                && end.is_some_and(|e| u64::try_from(e).is_ok_and(|e| e <= file_len));
            if !fits {
                return Err(format!(
                    "row group {g}, column chunk {c}: byte range (offset {start}, length {len}) \
                     lies outside the {file_len}-byte file"
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn run<R: ChunkReader + 'static, W: Write + Send>(
    deid: &TabularDeid,
    engine: &Engine,
    table: Option<&str>,
    input: R,
    out: W,
    tally: &mut Tally,
) -> Result<(), TabularError> {
    // Any other assertion in the parquet or arrow readers on a damaged file is turned into an
    // error for this file too (the caller discards its output), not a crash of the run.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_inner(deid, engine, table, input, out, tally)
    }))
    .unwrap_or_else(|_| {
        Err(TabularError::Parquet(
            "the Parquet reader failed on this file's structure (damaged file?)".into(),
        ))
    })
}

fn run_inner<R: ChunkReader + 'static, W: Write + Send>(
    deid: &TabularDeid,
    engine: &Engine,
    table: Option<&str>,
    input: R,
    out: W,
    tally: &mut Tally,
) -> Result<(), TabularError> {
    let file_len = input.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(perr)?;
    check_chunk_ranges(builder.metadata(), file_len).map_err(TabularError::Parquet)?;
    let builder = builder.with_batch_size(BATCH);
    let schema: SchemaRef = builder.schema().clone();
    let mut reader = builder.build().map_err(perr)?;
    tally.files += 1;
    let first = reader.next().transpose().map_err(perr)?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();

    // Plan from the first batch.
    let mut plans: Vec<ColumnPlan> = Vec::with_capacity(names.len());
    for (i, field) in schema.fields().iter().enumerate() {
        let sample: Vec<String> = match &first {
            Some(b) if textual(field.data_type()) => {
                let s = as_strings(b.column(i))?;
                s.iter()
                    .flatten()
                    .take(deid.sample_rows)
                    .map(str::to_string)
                    .collect()
            }
            _ => Vec::new(),
        };
        plans.push(deid.rules.plan(engine, table, field.name(), &names, || {
            sample.iter().map(String::as_str)
        }));
    }
    for (plan, field) in plans.iter_mut().zip(schema.fields().iter()) {
        // A typed date or timestamp is a date, whatever its values look like as text.
        if !plan.covered && is_temporal(field.data_type()) {
            plan.class = Some(Class::Date);
            plan.action = Class::Date.action(deid.rules.profile);
            plan.kind = Class::Date.kind();
            plan.label = format!("column {} (date or timestamp type: date)", plan.name);
        }
    }
    let modes: Vec<Mode> = schema
        .fields()
        .iter()
        .zip(&plans)
        .map(|(f, p)| mode(f.data_type(), p))
        .collect();
    let out_fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&modes)
        .map(|(f, m)| match m {
            Mode::Keep => Field::new(f.name(), f.data_type().clone(), f.is_nullable()),
            Mode::Null => Field::new(f.name(), f.data_type().clone(), true),
            Mode::Values { out } => Field::new(f.name(), out.clone(), true),
        })
        .collect();
    let out_schema = Arc::new(Schema::new(out_fields));
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, out_schema.clone(), Some(props)).map_err(perr)?;
    let patient = patient_column(deid.patient.as_ref(), table, &names);

    let mut row0: u64 = 0;
    let mut next = first;
    while let Some(batch) = next {
        let n = batch.num_rows();
        let patients: Option<StringArray> = match patient {
            Some(i) if textual(schema.field(i).data_type()) => Some(as_strings(batch.column(i))?),
            _ => None,
        };
        let refs: Vec<Option<phiguard_rules::PatientRef>> = (0..n)
            .map(|r| {
                patients
                    .as_ref()
                    .filter(|p| p.is_valid(r))
                    .map(|p| p.value(r))
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| engine.patient(v))
            })
            .collect();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(plans.len());
        for (i, (plan, m)) in plans.iter_mut().zip(&modes).enumerate() {
            let col = batch.column(i);
            let new: ArrayRef = match m {
                Mode::Keep => {
                    for _ in 0..col.len() - col.null_count() {
                        tally.count(&plan.label, plan.covered, Action::Keep, false, false);
                    }
                    col.clone()
                }
                Mode::Null => {
                    for _ in 0..col.len() - col.null_count() {
                        tally.count(&plan.label, plan.covered, plan.action, true, true);
                    }
                    new_null_array(col.data_type(), col.len())
                }
                Mode::Values { out } => {
                    let strings = as_strings(col)?;
                    let zip_int = plan.kind == Kind::Zip && col.data_type().is_integer();
                    let mut values: Vec<Option<String>> = Vec::with_capacity(n);
                    for (r, patient) in refs.iter().enumerate() {
                        if !strings.is_valid(r) {
                            values.push(None);
                            continue;
                        }
                        let v = strings.value(r);
                        let padded;
                        let v = if zip_int && v.len() < 5 && !v.starts_with('-') {
                            padded = format!("{v:0>5}");
                            padded.as_str()
                        } else {
                            v
                        };
                        let outcome =
                            plan.apply(engine, tally, v, patient.as_ref())
                                .map_err(|e| TabularError::Action {
                                    line: row0 + r as u64 + 1,
                                    column: plan.name.clone(),
                                    message: e.to_string(),
                                })?;
                        values.push(match outcome {
                            Outcome::Keep => Some(v.to_string()),
                            Outcome::Remove => None,
                            Outcome::Replace(s) if s.is_empty() && !is_string(out) => None,
                            Outcome::Replace(s) => Some(s),
                        });
                    }
                    let text: ArrayRef = Arc::new(StringArray::from(values));
                    if *out == DataType::Utf8 {
                        text
                    } else {
                        let opts = CastOptions {
                            safe: false,
                            ..CastOptions::default()
                        };
                        cast_with_options(&text, out, &opts).map_err(|_| {
                            TabularError::Parquet(format!(
                                "rows {}..{}, column {}: a de-identified value does not fit \
                                 the column type {out}",
                                row0 + 1,
                                row0 + n as u64,
                                plan.name
                            ))
                        })?
                    }
                }
            };
            columns.push(new);
        }
        let out_batch = RecordBatch::try_new(out_schema.clone(), columns).map_err(perr)?;
        writer.write(&out_batch).map_err(perr)?;
        tally.records += n as u64;
        row0 += n as u64;
        next = reader.next().transpose().map_err(perr)?;
    }
    writer.close().map_err(perr)?;
    Ok(())
}
