#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bounded memory: files with 64 MiB of pixel data (explicit VR little endian, explicit VR big
//! endian) and 256 MiB of pixel data (deflated: it inflates to that much, from a few MiB) are
//! de-identified from a File to a File while the process's peak resident set (VmHWM, reset
//! through /proc/self/clear_refs) grows by far less than the pixel data. Reading the file (or
//! the inflated data set) whole, or holding the output in memory, would add at least the pixel
//! data. One test running the cases in turn, in its own test binary, so nothing runs alongside.
//! Linux only (skipped with a note elsewhere, or where clear_refs cannot be written).

#[path = "it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::io::{BufWriter, Read};

use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};
use synth::Coding;

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Streams one synthetic file; returns (input, output, flag, tally) after checking the peak.
fn stream_in_bounded_memory(
    dir: &std::path::Path,
    d: &DicomDeid,
    e: &Engine,
    coding: Coding,
    pixels: u32,
    byte: fn(u64) -> u8,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    Option<&'static str>,
    Tally,
) {
    let input = dir.join(format!("{coding:?}.dcm"));
    let output = dir.join(format!("{coding:?}.deid.dcm"));
    synth::write_coded(
        BufWriter::new(std::fs::File::create(&input).unwrap()),
        coding,
        pixels,
        true,
        byte,
    );
    let mut tally = Tally::default();
    assert!(reset_peak());
    let before = status_kib("VmRSS:").unwrap();
    let flag = d
        .deidentify_stream(
            e,
            std::fs::File::open(&input).unwrap(),
            BufWriter::new(std::fs::File::create(&output).unwrap()),
            &mut tally,
        )
        .unwrap();
    let peak = status_kib("VmHWM:").unwrap();
    let grew_mib = peak.saturating_sub(before) as f64 / 1024.0;
    let size = std::fs::metadata(&input).unwrap().len();
    eprintln!(
        "{coding:?}: {} MiB of pixels, file {size} bytes; RSS before {before} KiB, peak during \
         {peak} KiB: +{grew_mib:.1} MiB",
        pixels >> 20
    );
    assert!(
        grew_mib < 16.0,
        "{coding:?}: peak RSS grew by {grew_mib:.1} MiB while streaming {} MiB of pixel data",
        pixels >> 20
    );
    assert_eq!(tally.files, 1);
    (input, output, flag, tally)
}

/// The output is what the in-memory path gives (memory no longer matters here). Reading the
/// input whole also shows the measure sees it: the peak grows by the file's size.
fn same_as_in_memory(
    d: &DicomDeid,
    e: &Engine,
    input: &std::path::Path,
    output: &std::path::Path,
    flag: Option<&'static str>,
    tally: &Tally,
    pixels: u32,
) {
    assert!(reset_peak());
    let before = status_kib("VmRSS:").unwrap();
    let mut inb = Vec::new();
    std::fs::File::open(input)
        .unwrap()
        .read_to_end(&mut inb)
        .unwrap();
    let whole_mib = status_kib("VmHWM:").unwrap().saturating_sub(before) as f64 / 1024.0;
    eprintln!("reading the file whole: +{whole_mib:.1} MiB");
    assert!(
        whole_mib >= 60.0,
        "the measure missed a 64 MiB read ({whole_mib:.1})"
    );
    let outb = std::fs::read(output).unwrap();
    let mut t2 = Tally::default();
    let want = d.deidentify_bytes(e, &inb, &mut t2).unwrap();
    assert!(
        want.bytes == outb,
        "streamed output differs from the in-memory one"
    );
    assert_eq!(&t2, tally);
    assert_eq!(want.pixel_flag, flag);
    assert!(outb.len() > pixels as usize);
}

#[test]
fn large_pixel_data_streams_in_bounded_memory() {
    if status_kib("VmHWM:").is_none() || !reset_peak() {
        eprintln!("note: no /proc/self peak RSS here, bounded-memory test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor)).unwrap();
    let e = Engine::new(DeidKey::from_bytes([9; 32]), EngineOptions::default());

    for coding in [Coding::Explicit, Coding::BigEndian] {
        let pixels = 64 << 20;
        let (input, output, flag, tally) =
            stream_in_bounded_memory(dir.path(), &d, &e, coding, pixels, synth::pixel_byte);
        same_as_in_memory(&d, &e, &input, &output, flag, &tally, pixels);
        std::fs::remove_file(&input).unwrap();
        std::fs::remove_file(&output).unwrap();
    }

    // Deflated: 256 MiB of pixel data in a file of a few MiB. The in-memory path would hold
    // the inflated data set (twice); here the output is checked by inflating it in chunks:
    // a complete deflate stream holding the pixel bytes unchanged.
    let pixels = 256 << 20;
    let (input, output, _, _) = stream_in_bounded_memory(
        dir.path(),
        &d,
        &e,
        Coding::Deflated,
        pixels,
        synth::periodic_byte,
    );
    assert!(std::fs::metadata(&input).unwrap().len() < u64::from(pixels) / 16);
    let out = std::fs::read(&output).unwrap();
    let meta_len = u32::from_le_bytes(out[140..144].try_into().unwrap()) as usize;
    let mut z = flate2::read::DeflateDecoder::new(&out[144 + meta_len..]);
    let mut header = synth::native_pixel_header_in(pixels, true);
    header.extend((0..64).map(synth::periodic_byte));
    let mut chunk = vec![0u8; 1 << 20];
    let (mut total, mut found, mut hold) = (0u64, None::<u64>, Vec::new());
    loop {
        let n = z.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        if found.is_none() {
            // The pixel data element (header and first bytes) is in the first few chunks.
            // (`hold` holds the inflated bytes from the start.)
            hold.extend_from_slice(&chunk[..n]);
            if let Some(p) = hold.windows(header.len()).position(|w| w == header) {
                found = Some(p as u64 + 12);
                hold = Vec::new();
            }
        }
        if let Some(start) = found {
            // Every pixel byte in this chunk is the pattern's.
            for (i, b) in chunk[..n].iter().enumerate() {
                let at = total + i as u64;
                if at >= start && at < start + u64::from(pixels) {
                    assert_eq!(
                        *b,
                        synth::periodic_byte(at - start),
                        "pixel byte {}",
                        at - start
                    );
                }
            }
        }
        total += n as u64;
    }
    let start = found.expect("the pixel data element in the inflated output");
    assert!(total >= start + u64::from(pixels));
}
