#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bounded memory: a file with 64 MiB of pixel data is de-identified from a File to a File
//! while the process's peak resident set (VmHWM, reset through /proc/self/clear_refs) grows by
//! far less than the pixel data. Reading the file whole, or holding the output in memory, would
//! add at least 64 MiB. Its own test binary, so no other test runs alongside. Linux only
//! (skipped with a note elsewhere, or where clear_refs cannot be written).

#[path = "it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::io::{BufWriter, Read};

use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

const PIXELS: u32 = 64 << 20;

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[test]
fn sixty_four_mib_of_pixels_stream_in_bounded_memory() {
    if status_kib("VmHWM:").is_none() || !reset_peak() {
        eprintln!("note: no /proc/self peak RSS here, bounded-memory test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.dcm");
    let output = dir.path().join("big.deid.dcm");
    synth::write_native(
        BufWriter::new(std::fs::File::create(&input).unwrap()),
        PIXELS,
        true,
    );
    let d = DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor)).unwrap();
    let e = Engine::new(DeidKey::from_bytes([9; 32]), EngineOptions::default());
    let mut tally = Tally::default();

    assert!(reset_peak());
    let before = status_kib("VmRSS:").unwrap();
    let flag = d
        .deidentify_stream(
            &e,
            std::fs::File::open(&input).unwrap(),
            BufWriter::new(std::fs::File::create(&output).unwrap()),
            &mut tally,
        )
        .unwrap();
    let peak = status_kib("VmHWM:").unwrap();
    let grew_mib = peak.saturating_sub(before) as f64 / 1024.0;
    eprintln!("RSS before {before} KiB, peak during {peak} KiB: +{grew_mib:.1} MiB");
    assert!(
        grew_mib < 16.0,
        "peak RSS grew by {grew_mib:.1} MiB while streaming 64 MiB of pixel data"
    );
    assert_eq!(tally.files, 1);

    // The output is what the in-memory path gives (memory no longer matters here). Reading
    // the input whole also shows the measure sees it: the peak grows by the file's size.
    assert!(reset_peak());
    let before = status_kib("VmRSS:").unwrap();
    let mut inb = Vec::new();
    std::fs::File::open(&input)
        .unwrap()
        .read_to_end(&mut inb)
        .unwrap();
    let whole_mib = status_kib("VmHWM:").unwrap().saturating_sub(before) as f64 / 1024.0;
    eprintln!("reading the file whole: +{whole_mib:.1} MiB");
    assert!(
        whole_mib >= 60.0,
        "the measure missed a 64 MiB read ({whole_mib:.1})"
    );
    let outb = std::fs::read(&output).unwrap();
    let mut t2 = Tally::default();
    let want = d.deidentify_bytes(&e, &inb, &mut t2).unwrap();
    assert!(
        want.bytes == outb,
        "streamed output differs from the in-memory one"
    );
    assert_eq!(t2, tally);
    assert_eq!(want.pixel_flag, flag);
    assert!(outb.len() > PIXELS as usize);
}
