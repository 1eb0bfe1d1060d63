//! The streaming path (`deidentify_stream`) against the in-memory one (`deidentify_bytes`):
//! byte-identical output, tally and flag over every corpus file and synthetic files; pixel
//! data cut short; the memory limit.

use std::io::Cursor;
use std::path::Path;

use phiguard_dicom::{DicomDeid, DicomError};
use phiguard_rules::{Engine, ProfileName, Tally};

use crate::common::{corpus, deid, engine, parse, walk};
use crate::synth;

const PROFILES: [ProfileName; 3] = [
    ProfileName::SafeHarbor,
    ProfileName::Shifted,
    ProfileName::LimitedDataSet,
];

/// Runs both paths; asserts identical results (or both failing with the same message).
fn same(d: &DicomDeid, e: &Engine, input: &[u8], what: &str) -> Option<Vec<u8>> {
    let mut t1 = Tally::default();
    let r1 = d.deidentify_bytes(e, input, &mut t1);
    let mut t2 = Tally::default();
    let mut out = Vec::new();
    // A reader that hands out a few bytes at a time, to cross every boundary.
    let r2 = d.deidentify_stream(e, Trickle(Cursor::new(input), 0), &mut out, &mut t2);
    match (r1, r2) {
        (Ok(a), Ok(flag)) => {
            assert!(a.bytes == out, "{what}: outputs differ");
            assert_eq!(a.pixel_flag, flag, "{what}");
            assert_eq!(t1, t2, "{what}: tallies differ");
            Some(out)
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}");
            None
        }
        (a, b) => panic!("{what}: in memory {:?}, streamed {:?}", a.err(), b.err()),
    }
}

/// Reads at most 1..=7 bytes per call.
struct Trickle<R>(R, usize);

impl<R: std::io::Read> std::io::Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

fn test_data() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    v.sort();
    v
}

#[test]
fn streamed_output_is_byte_identical_over_the_corpus() {
    let e = engine(3);
    let mut files = test_data();
    files.extend(corpus().unwrap_or_default());
    let mut compared = 0;
    for profile in PROFILES {
        let d = deid(profile);
        for f in &files {
            let input = std::fs::read(f).unwrap();
            let what = format!("{} ({})", f.display(), profile.as_str());
            if same(&d, &e, &input, &what).is_some() {
                compared += 1;
            }
            // And from a File, as the structured pipeline calls it.
            let mut t = Tally::default();
            let mut out = Vec::new();
            let r = d.deidentify_stream(&e, std::fs::File::open(f).unwrap(), &mut out, &mut t);
            if let Ok(a) = d.deidentify_bytes(&e, &input, &mut Tally::default()) {
                r.unwrap();
                assert!(a.bytes == out, "{what}: from a File");
            }
        }
    }
    assert!(compared >= 3 * 15, "only {compared} outputs compared");
}

#[test]
fn synthetic_native_and_encapsulated_with_elements_after_the_pixels() {
    let e = engine(5);
    for profile in PROFILES {
        let d = deid(profile);
        for with_tail in [false, true] {
            let mut native = Vec::new();
            synth::write_native(&mut native, 3 * 1024 * 1024 + 6, with_tail);
            let out = same(&d, &e, &native, &format!("native {with_tail}")).unwrap();
            let (obj, _) = parse(&out);
            let text = walk(&obj)
                .iter()
                .flat_map(|s| s.strings.clone())
                .collect::<Vec<_>>()
                .join("|");
            assert!(
                !text.contains("Doe") && !text.contains("PID12345"),
                "{text}"
            );
            let px = obj.get(dicom_core::Tag(0x7FE0, 0x0010)).unwrap();
            let bytes = px.to_bytes().unwrap();
            assert_eq!(bytes.len(), 3 * 1024 * 1024 + 6);
            assert!(
                bytes
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == synth::pixel_byte(i as u64))
            );
            // The signatures sequence is removed, as Annex E says.
            assert!(obj.get(dicom_core::Tag(0xFFFA, 0xFFFA)).is_none());

            let mut enc = synth::head(synth::TS_JPEG_BASELINE);
            let frags: Vec<Vec<u8>> = (0..5u8)
                .map(|i| vec![i; 200_000 + usize::from(i) * 2])
                .collect();
            enc.extend(synth::encapsulated_pixels(&frags));
            if with_tail {
                enc.extend(synth::tail());
            }
            same(&d, &e, &enc, &format!("encapsulated {with_tail}")).unwrap();
        }
    }
}

#[test]
fn user_rules_on_pixel_data_apply_the_same() {
    let e = engine(5);
    let mut native = Vec::new();
    synth::write_native(&mut native, 4096, true);
    let mut enc = synth::head(synth::TS_JPEG_BASELINE);
    enc.extend(synth::encapsulated_pixels(&[vec![1; 100], vec![2; 64]]));
    for action in ["remove", "blank", "keep", "redact", "pseudonym"] {
        let toml = format!(
            "profile = \"safe-harbor\"\n[dicom]\nrules = [ {{ select = \"(7FE0,0010)\", action = \"{action}\" }} ]\n"
        );
        let cfg = phiguard_rules::Config::from_toml(&toml).unwrap();
        let d = DicomDeid::new(&cfg).unwrap();
        same(&d, &e, &native, &format!("native, {action}")).unwrap();
        same(&d, &e, &enc, &format!("encapsulated, {action}")).unwrap();
    }
}

#[test]
fn pixel_data_cut_short_names_the_offset() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(5);
    let mut native = Vec::new();
    synth::write_native(&mut native, 1 << 20, false);
    let cut = native.len() - 1000;
    let mut out = Vec::new();
    let err = d
        .deidentify_stream(&e, &native[..cut], &mut out, &mut Tally::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("offset {cut}")) && msg.contains("(7FE0,0010)"),
        "{msg}"
    );
    assert!(matches!(err, DicomError::Malformed { .. }));
    assert!(!msg.contains("Doe"));
    // Encapsulated: cut inside a fragment, and before the delimiter.
    let mut enc = synth::head(synth::TS_JPEG_BASELINE);
    enc.extend(synth::encapsulated_pixels(&[vec![1; 5000], vec![2; 64]]));
    for cut in [enc.len() - 3000, enc.len() - 4] {
        let msg = d
            .deidentify_stream(&e, &enc[..cut], Vec::new(), &mut Tally::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("(7FE0,0010)") && msg.contains("truncated"),
            "{msg}"
        );
    }
}

#[test]
fn memory_limit_refuses_what_cannot_be_streamed() {
    let e = engine(5);
    let mut d = deid(ProfileName::SafeHarbor);
    d.set_memory_limit(4096);
    // Pixel data does not count: a 1 MiB image streams under a 4 KiB limit.
    let mut native = Vec::new();
    synth::write_native(&mut native, 1 << 20, true);
    let mut out = Vec::new();
    d.deidentify_stream(&e, &native[..], &mut out, &mut Tally::default())
        .unwrap();
    assert_eq!(
        out,
        deid(ProfileName::SafeHarbor)
            .deidentify_bytes(&e, &native, &mut Tally::default())
            .unwrap()
            .bytes
    );
    // A file without pixel data over the limit is refused.
    let mut big = synth::head(synth::TS_EXPLICIT);
    let mut text = vec![b'x'; 8000];
    // (0032,4000) Study Comments, LT: a long value.
    big.extend_from_slice(&[0x32, 0x00, 0x00, 0x40, b'L', b'T']);
    big.extend_from_slice(&(text.len() as u16).to_le_bytes());
    big.append(&mut text);
    let err = d
        .deidentify_stream(&e, &big[..], Vec::new(), &mut Tally::default())
        .unwrap_err();
    assert!(
        matches!(err, DicomError::TooLarge { limit: 4096, .. }),
        "{err}"
    );
    // Within the limit it goes through the in-memory path.
    d.set_memory_limit(1 << 20);
    same(&d, &e, &big, "no pixel data").unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]
    /// Damaged input: both paths succeed with the same bytes, or both fail (the messages may
    /// differ: a cut inside the pixel data is reported where the input ends when streamed).
    #[test]
    fn damaged_input_agrees(
        flips in proptest::collection::vec((0usize..20_000, proptest::prelude::any::<u8>()), 0..6),
        cut in 0usize..20_000,
        which in 0usize..3,
    ) {
        let name = ["MR_small.dcm", "MR_small_implicit.dcm", "I290.dcm"][which];
        let mut input = crate::common::data(name);
        for (at, b) in flips {
            let n = input.len();
            input[at % n] = b;
        }
        let n = input.len();
        if cut < n {
            input.truncate(cut.max(1));
        }
        let d = deid(ProfileName::SafeHarbor);
        let e = engine(5);
        let mut t1 = Tally::default();
        let r1 = d.deidentify_bytes(&e, &input, &mut t1);
        let mut t2 = Tally::default();
        let mut out = Vec::new();
        let r2 = d.deidentify_stream(&e, Trickle(Cursor::new(&input[..]), 0), &mut out, &mut t2);
        match (r1, r2) {
            (Ok(a), Ok(f)) => {
                proptest::prop_assert!(a.bytes == out);
                proptest::prop_assert_eq!(a.pixel_flag, f);
                proptest::prop_assert_eq!(t1, t2);
            }
            (Err(_), Err(_)) => {}
            (a, b) => proptest::prop_assert!(false, "in memory {:?}, streamed {:?}", a.err(), b.err()),
        }
    }
}
