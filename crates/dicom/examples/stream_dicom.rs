//! One large DICOM file, in memory or streamed (for `/usr/bin/time -v` peak RSS):
//!
//! ```text
//! cargo run --release -p phiguard-dicom --example stream_dicom -- make big.dcm 1024  # MiB of pixels
//! cargo run --release -p phiguard-dicom --example stream_dicom -- bytes big.dcm out.dcm
//! cargo run --release -p phiguard-dicom --example stream_dicom -- stream big.dcm out.dcm
//! ```
//!
//! `bytes` is what `deidentify` did before streaming: read the file whole, `deidentify_bytes`,
//! write. `stream` is `deidentify_stream` from a `File` to a `BufWriter<File>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::io::{BufWriter, Write};
use std::time::Instant;

use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, input, rest @ ..] = args.as_slice() else {
        return Err("usage: stream_dicom make FILE MIB | bytes IN OUT | stream IN OUT".into());
    };
    if mode == "make" {
        let mib: u32 = rest.first().ok_or("MiB of pixel data")?.parse()?;
        let len = mib.checked_mul(1 << 20).ok_or("under 4096 MiB")?;
        synth::write_native(BufWriter::new(std::fs::File::create(input)?), len, true);
        return Ok(());
    }
    let output = rest.first().ok_or("output file")?;
    let deid = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor))?;
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), EngineOptions::default());
    let mut tally = Tally::default();
    let size = std::fs::metadata(input)?.len();
    let start = Instant::now();
    match mode.as_str() {
        "bytes" => {
            let bytes = std::fs::read(input)?;
            let d = deid.deidentify_bytes(&engine, &bytes, &mut tally)?;
            let mut w = BufWriter::new(std::fs::File::create(output)?);
            w.write_all(&d.bytes)?;
            w.flush()?;
        }
        "stream" => {
            deid.deidentify_stream(
                &engine,
                std::fs::File::open(input)?,
                BufWriter::new(std::fs::File::create(output)?),
                &mut tally,
            )?;
        }
        _ => return Err(format!("unknown mode {mode}").into()),
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {:.1} MB in {secs:.2} s, {:.0} MB/s",
        size as f64 / 1e6,
        size as f64 / 1e6 / secs
    );
    Ok(())
}
