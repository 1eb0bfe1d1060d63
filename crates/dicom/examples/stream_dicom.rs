//! One large DICOM file, in memory or streamed: throughput and peak RSS (VmHWM from
//! /proc/self/status, the whole process; one run per process):
//!
//! ```text
//! cargo run --release -p phiguard-dicom --example stream_dicom -- make big.dcm 1024  # MiB of pixels
//! cargo run --release -p phiguard-dicom --example stream_dicom -- make big-be.dcm 1024 big-endian
//! cargo run --release -p phiguard-dicom --example stream_dicom -- make big-dfl.dcm 1024 deflated
//! cargo run --release -p phiguard-dicom --example stream_dicom -- bytes big.dcm out.dcm
//! cargo run --release -p phiguard-dicom --example stream_dicom -- stream big.dcm out.dcm
//! ```
//!
//! `make` writes explicit VR little endian (default), explicit VR big endian or deflated
//! explicit VR little endian (pixel data repeating every 4 KiB, so it compresses well).
//! `bytes` is what `deidentify` did before streaming: read the file whole, `deidentify_bytes`,
//! write. `stream` is `deidentify_stream` from a `File` to a `BufWriter<File>`. Throughput is
//! given over the file's size and, for a deflated file, over its inflated data set (measured
//! by a streaming inflate before the timed run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};
use synth::Coding;

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The inflated size of a deflated file's data set (None if the file is not deflated).
fn inflated_size(path: &str) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut head = [0u8; 144];
    f.read_exact(&mut head)?;
    let meta_len = u32::from_le_bytes(head[140..144].try_into()?) as usize;
    let mut meta = vec![0u8; meta_len];
    f.read_exact(&mut meta)?;
    if !meta
        .windows(synth::TS_DEFLATED.len())
        .any(|w| w == synth::TS_DEFLATED.as_bytes())
    {
        return Ok(None);
    }
    let n = std::io::copy(
        &mut flate2::bufread::DeflateDecoder::new(f),
        &mut std::io::sink(),
    )?;
    Ok(Some(n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, input, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: stream_dicom make FILE MIB [explicit|big-endian|deflated] | bytes IN OUT | stream IN OUT"
                .into(),
        );
    };
    if mode == "make" {
        let mib: u32 = rest.first().ok_or("MiB of pixel data")?.parse()?;
        let len = mib.checked_mul(1 << 20).ok_or("under 4096 MiB")?;
        let (coding, byte): (Coding, fn(u64) -> u8) = match rest.get(1).map(String::as_str) {
            None | Some("explicit") => (Coding::Explicit, synth::pixel_byte),
            Some("big-endian") => (Coding::BigEndian, synth::pixel_byte),
            Some("deflated") => (Coding::Deflated, synth::periodic_byte),
            Some(other) => return Err(format!("unknown coding {other}").into()),
        };
        synth::write_coded(
            BufWriter::new(std::fs::File::create(input)?),
            coding,
            len,
            true,
            byte,
        );
        return Ok(());
    }
    let output = rest.first().ok_or("output file")?;
    let deid = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor))?;
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), EngineOptions::default());
    let mut tally = Tally::default();
    let size = std::fs::metadata(input)?.len();
    let inflated = inflated_size(input)?;
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
    let data = match inflated {
        Some(n) => format!(
            ", inflated data set {:.1} MB: {:.0} MB/s",
            n as f64 / 1e6,
            n as f64 / 1e6 / secs
        ),
        None => String::new(),
    };
    println!(
        "{mode}: file {:.1} MB in {secs:.2} s, {:.0} MB/s{data}; peak RSS {} KiB",
        size as f64 / 1e6,
        size as f64 / 1e6 / secs,
        peak_rss_kib().map_or("(unknown)".into(), |k| k.to_string()),
    );
    Ok(())
}
