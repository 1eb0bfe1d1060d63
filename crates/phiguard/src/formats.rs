//! One adapter per format crate: how the structured pipeline hands a file to it.

use std::io::{BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use phiguard_dicom::DicomDeid;
use phiguard_fhir::FhirDeid;
use phiguard_hl7::Hl7Deid;
use phiguard_rules::{Config, Engine, Tally};
use phiguard_tabular::TabularDeid;

use crate::structured::Format;

/// The compiled rules of every format for one run (all `Send + Sync`, shared by the workers).
pub struct Formats {
    fhir: FhirDeid,
    hl7: Hl7Deid,
    dicom: DicomDeid,
    tabular: TabularDeid,
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).context("cannot open the input file")
}

impl Formats {
    /// Compiles every format's rules; an error names the section and rule at fault.
    pub fn new(config: &Config) -> Result<Formats> {
        Ok(Formats {
            fhir: FhirDeid::new(config).context("in [fhir]")?,
            hl7: Hl7Deid::new(config).context("in [hl7]")?,
            dicom: DicomDeid::new(config).context("in [dicom]")?,
            tabular: TabularDeid::new(config).context("in [csv]")?,
        })
    }

    /// De-identifies the file at `path` into `out`, FHIR NDJSON lines and HL7 messages on up
    /// to `threads` threads. Returns why the output needs a human look (burned-in text in DICOM pixels...),
    /// if it does. On error the caller discards `out`.
    pub fn deidentify(
        &self,
        engine: &Engine,
        format: Format,
        path: &Path,
        out: &mut (dyn Write + Send),
        tally: &mut Tally,
        threads: usize,
    ) -> Result<Option<String>> {
        let mut review = None;
        match format {
            Format::Fhir => {
                // A big Bundle document is streamed (read twice, one entry at a time).
                self.fhir
                    .deidentify_seekable(engine, open(path)?, out, tally, threads)?;
            }
            Format::Hl7 => {
                // Message by message; a batch file's messages on up to `threads` threads.
                self.hl7.deidentify_with_threads(
                    engine,
                    BufReader::new(open(path)?),
                    out,
                    tally,
                    threads,
                )?;
            }
            Format::Dicom => {
                // Streamed: the pixel data is copied through in chunks, never held whole.
                let flag = self
                    .dicom
                    .deidentify_stream(engine, open(path)?, &mut *out, tally)?;
                review = flag.map(|r| format!("DICOM pixels may show burned-in text: {r}"));
            }
            Format::Csv => {
                let table = phiguard_tabular::table_name(path);
                self.tabular.deidentify_table(
                    engine,
                    table.as_deref(),
                    BufReader::new(open(path)?),
                    out,
                    tally,
                )?;
            }
            Format::Parquet => {
                let table = phiguard_tabular::table_name(path);
                self.tabular.deidentify_parquet(
                    engine,
                    table.as_deref(),
                    open(path)?,
                    out,
                    tally,
                )?;
            }
            Format::Text => {
                let bytes = std::fs::read(path).context("cannot read the input file")?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    )
                })?;
                let (new, counts) = engine.text(&text, None)?;
                for (c, n) in counts {
                    tally.category(c, n);
                }
                out.write_all(new.as_deref().unwrap_or(&text).as_bytes())?;
                tally.files += 1;
                tally.records += 1;
            }
        }
        Ok(review)
    }
}
