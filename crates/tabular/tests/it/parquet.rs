//! Parquet: a Parquet copy of Synthea tables (typed columns: dates, timestamps, integers,
//! floats) de-identified batch by batch; same schema except where an action needs strings;
//! the same pseudonyms and shifts as the CSV path.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Date32Array, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampSecondArray,
};
use arrow_cast::cast::cast;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use phiguard_rules::{Config, ProfileName, Tally};
use phiguard_tabular::{TabularDeid, TabularError};
use proptest::prelude::*;

use crate::{Table, config, data_dir, engine_for, run};

fn strings(t: &Table, name: &str) -> ArrayRef {
    let v: Vec<Option<&str>> = t
        .column(name)
        .into_iter()
        .map(|s| (!s.is_empty()).then_some(s))
        .collect();
    Arc::new(StringArray::from(v))
}

/// patients.csv as Parquet: Id, FIRST, LAST, CITY (strings), BIRTHDATE (Date32), ZIP (Int32,
/// leading zeros lost as in real exports), LAT and HEALTHCARE_EXPENSES (Float64). Written in
/// batches of 10 rows so several batches and row groups are exercised.
pub fn patients_parquet() -> (Table, Vec<u8>) {
    let text = std::fs::read_to_string(data_dir().join("synthea/patients.csv")).unwrap();
    let t = Table::parse(&text);
    let birth = cast(&strings(&t, "BIRTHDATE"), &DataType::Date32).unwrap();
    let zip: Int32Array = t
        .column("ZIP")
        .iter()
        .map(|z| z.parse::<i32>().ok())
        .collect();
    let f = |name: &str| -> Float64Array {
        t.column(name)
            .iter()
            .map(|z| z.parse::<f64>().ok())
            .collect()
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("BIRTHDATE", DataType::Date32, true),
        Field::new("FIRST", DataType::Utf8, true),
        Field::new("LAST", DataType::Utf8, true),
        Field::new("CITY", DataType::Utf8, true),
        Field::new("ZIP", DataType::Int32, true),
        Field::new("LAT", DataType::Float64, true),
        Field::new("HEALTHCARE_EXPENSES", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            strings(&t, "Id"),
            birth,
            strings(&t, "FIRST"),
            strings(&t, "LAST"),
            strings(&t, "CITY"),
            Arc::new(zip),
            Arc::new(f("LAT")),
            Arc::new(f("HEALTHCARE_EXPENSES")),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(10))
        .build();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).unwrap();
    for start in (0..batch.num_rows()).step_by(10) {
        let len = 10.min(batch.num_rows() - start);
        w.write(&batch.slice(start, len)).unwrap();
    }
    w.close().unwrap();
    (t, buf)
}

/// encounters.csv as Parquet with START/STOP as timestamps (seconds, UTC).
fn encounters_parquet() -> (Table, Vec<u8>) {
    let text = std::fs::read_to_string(data_dir().join("synthea/encounters.csv")).unwrap();
    let t = Table::parse(&text);
    let ts = DataType::Timestamp(TimeUnit::Second, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("START", ts.clone(), true),
        Field::new("PATIENT", DataType::Utf8, false),
        Field::new("CODE", DataType::Utf8, true),
        Field::new("DESCRIPTION", DataType::Utf8, true),
        // No name rule covers it: a typed timestamp is still a date.
        Field::new("SEEN", ts.clone(), true),
    ]));
    let start = cast(&strings(&t, "START"), &ts).unwrap();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            strings(&t, "Id"),
            start.clone(),
            strings(&t, "PATIENT"),
            strings(&t, "CODE"),
            strings(&t, "DESCRIPTION"),
            start,
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    (t, buf)
}

pub fn deid_parquet(
    cfg: &Config,
    key: u8,
    table: &str,
    bytes: Vec<u8>,
) -> Result<(Vec<RecordBatch>, Tally), TabularError> {
    let deid = TabularDeid::new(cfg).unwrap();
    let engine = engine_for(key, cfg);
    let mut out = Vec::new();
    let mut tally = Tally::default();
    deid.deidentify_parquet(
        &engine,
        Some(table),
        Bytes::from(bytes),
        &mut out,
        &mut tally,
    )?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out))
        .unwrap()
        .build()
        .unwrap();
    Ok((reader.map(|b| b.unwrap()).collect(), tally))
}

fn column<T: Array + Clone + 'static>(batches: &[RecordBatch], name: &str) -> Vec<T> {
    batches
        .iter()
        .map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<T>()
                .unwrap()
                .clone()
        })
        .collect()
}

fn string_values(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    column::<StringArray>(batches, name)
        .iter()
        .flat_map(|a| a.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>())
        .collect()
}

#[test]
fn safe_harbor_parquet_matches_the_csv_path() {
    let (t, bytes) = patients_parquet();
    let (batches, tally) =
        deid_parquet(&config(ProfileName::SafeHarbor), 4, "patients", bytes).unwrap();
    assert_eq!(tally.records as usize, t.rows.len());
    let schema = batches[0].schema();
    let types: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("Id", &DataType::Utf8),
            ("BIRTHDATE", &DataType::Utf8), // year only: a string now
            ("FIRST", &DataType::Utf8),
            ("LAST", &DataType::Utf8),
            ("CITY", &DataType::Utf8),
            ("ZIP", &DataType::Utf8), // ZIP3 with its leading zero
            ("LAT", &DataType::Float64),
            ("HEALTHCARE_EXPENSES", &DataType::Float64),
        ]
    );
    // The same pseudonyms as the CSV path gives with the same key.
    let csv = std::fs::read(data_dir().join("synthea/patients.csv")).unwrap();
    let (csv_out, _) = run(&config(ProfileName::SafeHarbor), 4, Some("patients"), &csv).unwrap();
    let csv_out = Table::parse(&csv_out);
    let ids = string_values(&batches, "Id");
    for (a, b) in ids.iter().zip(csv_out.column("Id")) {
        assert_eq!(a.as_deref(), Some(b));
    }
    for (a, b) in string_values(&batches, "BIRTHDATE")
        .iter()
        .zip(csv_out.column("BIRTHDATE"))
    {
        assert_eq!(a.as_deref().unwrap_or(""), b);
    }
    for (a, b) in string_values(&batches, "ZIP").iter().zip(t.column("ZIP")) {
        match a {
            Some(z) => assert!(z.len() == 3 && b.starts_with(z.as_str()), "{z}"),
            None => assert!(b.is_empty()),
        }
    }
    assert!(string_values(&batches, "FIRST").iter().all(Option::is_none));
    assert!(string_values(&batches, "CITY").iter().all(Option::is_none));
    let lat = column::<Float64Array>(&batches, "LAT");
    assert!(lat.iter().all(|a| a.null_count() == a.len()));
    let exp: Vec<f64> = column::<Float64Array>(&batches, "HEALTHCARE_EXPENSES")
        .iter()
        .flat_map(|a| a.values().to_vec())
        .collect();
    let exp_in: Vec<f64> = t
        .column("HEALTHCARE_EXPENSES")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(exp, exp_in, "measurements survive");
}

#[test]
fn shifted_parquet_keeps_date_types_and_csv_offsets() {
    let (t, bytes) = patients_parquet();
    let (batches, _) = deid_parquet(&config(ProfileName::Shifted), 6, "patients", bytes).unwrap();
    assert_eq!(
        batches[0]
            .schema()
            .field_with_name("BIRTHDATE")
            .unwrap()
            .data_type(),
        &DataType::Date32
    );
    let csv = std::fs::read(data_dir().join("synthea/patients.csv")).unwrap();
    let (csv_out, _) = run(&config(ProfileName::Shifted), 6, Some("patients"), &csv).unwrap();
    let csv_out = Table::parse(&csv_out);
    let births = column::<Date32Array>(&batches, "BIRTHDATE");
    let as_text: Vec<String> = births
        .iter()
        .flat_map(|a| {
            let s = cast(a, &DataType::Utf8).unwrap();
            let s = s.as_any().downcast_ref::<StringArray>().unwrap().clone();
            s.iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(as_text, csv_out.column("BIRTHDATE"));
    assert_ne!(as_text, t.column("BIRTHDATE"));

    let (et, ebytes) = encounters_parquet();
    let (eb, _) = deid_parquet(&config(ProfileName::Shifted), 6, "encounters", ebytes).unwrap();
    let ts = DataType::Timestamp(TimeUnit::Second, Some("+00:00".into()));
    assert_eq!(
        eb[0].schema().field_with_name("START").unwrap().data_type(),
        &ts
    );
    let csv = std::fs::read(data_dir().join("synthea/encounters.csv")).unwrap();
    let (csv_out, _) = run(&config(ProfileName::Shifted), 6, Some("encounters"), &csv).unwrap();
    let csv_out = Table::parse(&csv_out);
    let starts: Vec<i64> = column::<TimestampSecondArray>(&eb, "START")
        .iter()
        .flat_map(|a| a.values().to_vec())
        .collect();
    let expected_text: ArrayRef = Arc::new(StringArray::from(csv_out.column("START")));
    let expected = cast(&expected_text, &ts).unwrap();
    let expected = expected
        .as_any()
        .downcast_ref::<TimestampSecondArray>()
        .unwrap();
    assert_eq!(
        starts,
        expected.values().to_vec(),
        "same shift as the CSV path"
    );
    assert_eq!(starts.len(), et.rows.len());
    let seen: Vec<i64> = column::<TimestampSecondArray>(&eb, "SEEN")
        .iter()
        .flat_map(|a| a.values().to_vec())
        .collect();
    assert_eq!(
        seen, starts,
        "an uncovered timestamp column is shifted like START"
    );
    let descriptions = string_values(&eb, "DESCRIPTION");
    let same = descriptions
        .iter()
        .zip(et.column("DESCRIPTION"))
        .filter(|(a, b)| a.as_deref() == Some(*b))
        .count();
    assert_eq!(same, et.rows.len(), "display texts of codes survive");
}

#[test]
fn garbage_and_truncated_parquet_are_errors() {
    let (_, bytes) = patients_parquet();
    let cfg = config(ProfileName::SafeHarbor);
    for cut in [0, 3, 8, bytes.len() / 2, bytes.len() - 1] {
        let r = deid_parquet(&cfg, 1, "patients", bytes[..cut].to_vec());
        assert!(matches!(r, Err(TabularError::Parquet(_))), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_parquet_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let (_, mut bytes) = patients_parquet();
        let n = bytes.len();
        for (i, v) in flips {
            bytes[i % n] = v;
        }
        let _ = deid_parquet(&config(ProfileName::SafeHarbor), 1, "patients", bytes);
    }
}

#[test]
fn several_record_batches_stream_through() {
    // 400 copies of the patients table: 10,800 rows, more than one 8,192-row batch.
    let (t, one) = patients_parquet();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(one))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    for _ in 0..400 {
        for b in &batches {
            w.write(b).unwrap();
        }
    }
    w.close().unwrap();
    let (out, tally) = deid_parquet(&config(ProfileName::SafeHarbor), 4, "patients", buf).unwrap();
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 400 * t.rows.len());
    assert_eq!(tally.records as usize, rows);
    let ids = string_values(&out, "Id");
    let first: Vec<Option<String>> = ids[..t.rows.len()].to_vec();
    let last: Vec<Option<String>> = ids[ids.len() - t.rows.len()..].to_vec();
    assert_eq!(first, last, "the last batch is treated as the first");
    assert!(string_values(&out, "FIRST").iter().all(Option::is_none));
}
