#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bounded memory: a 16 MiB Bundle document, generated as it is read (`it/synth.rs`), is
//! de-identified by `deidentify_seekable` while the process's peak resident set (VmHWM, reset
//! through /proc/self/clear_refs) grows by far less than the Bundle, and its output is written
//! while the input is still being read. Reading the Bundle whole, as the in-memory path does,
//! would add its size several times over (the bytes, then the tree). The output must be the
//! in-memory path's, byte for byte. The same for the Bundle written compactly on one line (what
//! FHIR servers return), which must not be mistaken for one NDJSON line and read whole: it is
//! written back compact on one line, as the in-memory path writes it. Its own test binary, so
//! no other test runs alongside; both Bundles are streamed before either is read whole, as
//! memory the allocator keeps after a whole read would hide a streamed run's growth. The memory
//! half is Linux only (skipped with a note elsewhere, or where clear_refs cannot be written).

#[path = "it/synth.rs"]
#[allow(dead_code)]
mod synth;

use std::cell::Cell;
use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use phiguard_deid::DeidKey;
use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

const SIZE: u64 = 16 << 20;

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Hashes the output, counts its lines and notes how much input had been read at its first
/// and last write.
struct Sink {
    h: std::hash::DefaultHasher,
    n: u64,
    lines: u64,
    read: Rc<Cell<u64>>,
    read_at_first: Option<u64>,
    read_at_last: u64,
}

impl Sink {
    fn new(read: Rc<Cell<u64>>) -> Sink {
        Sink {
            h: std::hash::DefaultHasher::new(),
            n: 0,
            lines: 0,
            read,
            read_at_first: None,
            read_at_last: 0,
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.h.write(buf);
        self.n += buf.len() as u64;
        self.lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.read_at_first.get_or_insert(self.read.get());
        self.read_at_last = self.read.get();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Generates a Bundle of about the size given.
type Make = fn(u64) -> synth::Bundle;

#[test]
fn a_16_mib_bundle_streams_in_bounded_memory_pretty_or_on_one_line() {
    const { assert!(SIZE >= phiguard_fhir::STREAM_THRESHOLD) };
    let config = Config::builtin(ProfileName::SafeHarbor);
    let fhir = FhirDeid::new(&config).unwrap();
    let e = Engine::new(DeidKey::from_bytes([9; 32]), EngineOptions::default());
    let memory = status_kib("VmHWM:").is_some() && reset_peak();
    if !memory {
        eprintln!("note: no /proc/self peak RSS here, the memory half is skipped");
    }
    let kinds: [(&str, Make); 2] = [
        ("pretty", synth::Bundle::of_size),
        ("one line", synth::Bundle::compact_of_size),
    ];
    let streamed: Vec<(Sink, Tally)> = kinds
        .iter()
        .map(|&(kind, make)| streams(kind, make, &fhir, &e, memory))
        .collect();
    let (pretty, line) = (&streamed[0].0, &streamed[1].0);
    assert!(pretty.lines > 1000, "a pretty Bundle is written pretty");
    assert_eq!(line.lines, 1, "a Bundle on one line is written on one line");

    // The in-memory path gives the same bytes and tally (memory no longer matters here), and
    // the measure sees it read the Bundle whole.
    for (&(kind, make), (sink, tally)) in kinds.iter().zip(&streamed) {
        assert!(!memory || reset_peak());
        let before = status_kib("VmRSS:").unwrap_or(0);
        let read = Rc::new(Cell::new(0));
        let mut want = Sink::new(read.clone());
        let mut t2 = Tally::default();
        fhir.deidentify(
            &e,
            Counting {
                inner: make(SIZE),
                read,
            },
            &mut want,
            &mut t2,
        )
        .unwrap();
        let len = make(SIZE).len();
        if memory {
            let whole_mib = status_kib("VmHWM:").unwrap().saturating_sub(before) as f64 / 1024.0;
            eprintln!("{kind}: the in-memory path: +{whole_mib:.1} MiB");
            assert!(
                whole_mib >= 15.0,
                "{kind}: the measure missed a {} MiB Bundle read whole ({whole_mib:.1})",
                len >> 20
            );
        }
        assert_eq!(
            want.read_at_first,
            Some(len),
            "{kind}: the in-memory path read it whole"
        );
        assert!(
            want.n == sink.n && want.h.finish() == sink.h.finish(),
            "{kind}: streamed output differs from the in-memory one"
        );
        assert_eq!(&t2, tally, "{kind}");
    }
}

/// Streams the Bundle `make(SIZE)`, checking memory and when the output is written.
fn streams(kind: &str, make: Make, fhir: &FhirDeid, e: &Engine, memory: bool) -> (Sink, Tally) {
    let input = make(SIZE);
    let len = input.len();
    assert!(len > 15 << 20);
    assert!(!memory || reset_peak());
    let before = status_kib("VmRSS:").unwrap_or(0);
    let read = Rc::new(Cell::new(0));
    let mut sink = Sink::new(read.clone());
    let mut tally = Tally::default();
    fhir.deidentify_seekable(e, Counting { inner: input, read }, &mut sink, &mut tally, 1)
        .unwrap();
    if memory {
        let peak = status_kib("VmHWM:").unwrap();
        let grew_mib = peak.saturating_sub(before) as f64 / 1024.0;
        eprintln!("{kind}: RSS before {before} KiB, peak during {peak} KiB: +{grew_mib:.1} MiB");
        assert!(
            grew_mib < 8.0,
            "{kind}: peak RSS grew by {grew_mib:.1} MiB while streaming a {} MiB Bundle",
            len >> 20
        );
    }
    // Output is written during the last pass, not after it: between the first and the last
    // write most of the input was read again.
    let first = sink.read_at_first.unwrap();
    eprintln!(
        "{kind}: input {len} bytes; read before the first write {first}, before the last {}",
        sink.read_at_last
    );
    assert!(
        sink.read_at_last - first > len / 2,
        "{kind}: the output was written after the input was read"
    );
    assert_eq!(tally.files, 1);
    assert_eq!(tally.records, make(SIZE).entries());
    (sink, tally)
}
