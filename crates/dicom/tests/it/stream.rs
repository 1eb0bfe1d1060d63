//! The streaming path (`deidentify_stream`) against the in-memory one (`deidentify_bytes`):
//! byte-identical output, tally and flag over every corpus file and synthetic files; pixel
//! data cut short; the memory limit; big-endian and deflated files (re-encoded from the
//! fixtures with dicom-rs, or written by `synth`), and damaged deflate streams.

use std::io::Cursor;
use std::path::Path;

use phiguard_dicom::{DicomDeid, DicomError};
use phiguard_rules::{Engine, ProfileName, Tally};

use crate::common::{corpus, data, deid, engine, parse, walk};
use crate::synth::{self, Coding};

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

/// Every string value of `obj`, nested ones included, joined by `|`.
fn strings(obj: &dicom_object::InMemDicomObject) -> String {
    walk(obj)
        .iter()
        .flat_map(|s| s.strings.clone())
        .collect::<Vec<_>>()
        .join("|")
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
            let text = strings(&obj);
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
        which in 0usize..5,
    ) {
        let mut input = match which {
            0 => data("MR_small.dcm"),
            1 => data("MR_small_implicit.dcm"),
            2 => data("I290.dcm"),
            3 => reencode(&data("MR_small.dcm"), synth::TS_BIG_ENDIAN),
            _ => reencode(&data("MR_small.dcm"), synth::TS_DEFLATED),
        };
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

/// A file re-encoded by dicom-rs in another transfer syntax (explicit VR big endian, deflated
/// explicit VR little endian): the same data set, written as dicom-rs writes that syntax.
fn reencode(input: &[u8], ts: &str) -> Vec<u8> {
    let (obj, meta) = parse(input);
    let mut meta = meta.unwrap();
    meta.transfer_syntax = if ts.len() % 2 == 1 {
        format!("{ts}\0")
    } else {
        ts.to_string()
    };
    meta.update_information_group_length();
    let mut out = Vec::new();
    obj.with_exact_meta(meta).write_all(&mut out).unwrap();
    out
}

fn transfer_syntax(file: &[u8]) -> String {
    let (_, meta) = parse(file);
    meta.unwrap().transfer_syntax().to_string()
}

/// Inflates the data set of a deflated file (after its meta group) with flate2, requiring a
/// complete deflate stream.
fn inflate_data_set(file: &[u8]) -> Vec<u8> {
    let meta_len = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    let mut v = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::DeflateDecoder::new(&file[144 + meta_len..]),
        &mut v,
    )
    .unwrap();
    v
}

/// Synthetic files in `coding`: native pixel data (over three 1 MiB chunks) and encapsulated
/// fragments, each with and without elements after the pixel data.
fn synthetic(coding: Coding) -> Vec<(String, Vec<u8>)> {
    let little = coding != Coding::BigEndian;
    let mut out = Vec::new();
    for with_tail in [false, true] {
        let mut native = Vec::new();
        synth::write_coded(
            &mut native,
            coding,
            3 * 1024 * 1024 + 6,
            with_tail,
            synth::pixel_byte,
        );
        out.push((format!("{coding:?} native, tail {with_tail}"), native));
        let frags: Vec<Vec<u8>> = (0..4u8)
            .map(|i| vec![i; 300_000 + usize::from(i) * 2])
            .collect();
        let enc = synth::file(
            coding,
            &synth::encapsulated_pixels_in(&frags, little),
            with_tail,
        );
        out.push((format!("{coding:?} encapsulated, tail {with_tail}"), enc));
    }
    out
}

#[test]
fn big_endian_and_deflated_stream_byte_identical_under_every_profile() {
    let e = engine(7);
    let fixtures = [
        "MR_small.dcm",
        "I290.dcm",
        "ctbrain1.dcm",
        "test-SR.dcm",
        "nested_priv_SQ.dcm",
        "dicomdirtests_98892003_MR1_4919.dcm",
    ];
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for ts in [synth::TS_BIG_ENDIAN, synth::TS_DEFLATED] {
        for name in fixtures {
            let f = reencode(&data(name), ts);
            assert_eq!(transfer_syntax(&f), ts, "{name}");
            files.push((format!("{name} as {ts}"), f));
        }
    }
    files.push(("image_dfl.dcm".into(), data("image_dfl.dcm")));
    files.push((
        "MR_small_bigendian.dcm".into(),
        data("MR_small_bigendian.dcm"),
    ));
    files.extend(synthetic(Coding::BigEndian));
    files.extend(synthetic(Coding::Deflated));
    for profile in PROFILES {
        let d = deid(profile);
        for (what, input) in &files {
            let what = format!("{what} ({})", profile.as_str());
            let out = same(&d, &e, input, &what).unwrap_or_else(|| panic!("{what}: failed"));
            // Written back in the input's transfer syntax, a complete deflate stream for a
            // deflated file, and readable by dicom-rs.
            let ts = transfer_syntax(input);
            assert_eq!(transfer_syntax(&out), ts, "{what}");
            if ts == synth::TS_DEFLATED {
                assert!(!inflate_data_set(&out).is_empty(), "{what}");
            }
            let (obj, _) = parse(&out);
            let text = strings(&obj);
            assert!(
                !text.contains("Doe^Jane") && !text.contains("PID12345"),
                "{what}: {text}"
            );
        }
    }
}

#[test]
fn big_endian_and_deflated_pixels_pass_through_unchanged() {
    let e = engine(7);
    let d = deid(ProfileName::SafeHarbor);
    for coding in [Coding::BigEndian, Coding::Deflated] {
        let len = 2 * 1024 * 1024 + 10;
        let mut input = Vec::new();
        synth::write_coded(&mut input, coding, len, true, synth::pixel_byte);
        let out = same(&d, &e, &input, &format!("{coding:?}")).unwrap();
        // The pixel bytes as they are in the file: the inflated data set for a deflated file,
        // the file itself otherwise; no byte swapped.
        let want: Vec<u8> = (0..u64::from(len)).map(synth::pixel_byte).collect();
        let body = if coding == Coding::Deflated {
            inflate_data_set(&out)
        } else {
            out.clone()
        };
        let mut header = synth::native_pixel_header_in(len, coding != Coding::BigEndian);
        header.extend_from_slice(&want[..64]);
        let at = body
            .windows(header.len())
            .position(|w| w == header)
            .expect("pixel data element in the output");
        assert!(
            body[at + 12..at + 12 + want.len()] == want[..],
            "{coding:?}"
        );
    }
}

#[test]
fn deflated_truncations_and_flips_fail_cleanly() {
    let e = engine(7);
    let d = deid(ProfileName::SafeHarbor);
    let mut input = Vec::new();
    synth::write_coded(
        &mut input,
        Coding::Deflated,
        256 * 1024,
        true,
        synth::pixel_byte,
    );
    let meta_end = 144 + u32::from_le_bytes(input[140..144].try_into().unwrap()) as usize;
    // Cut anywhere: an error (the meta group cut short, or the deflate stream ending before
    // its last block), never a panic, and no output that ends as a complete deflate stream.
    let n = input.len();
    let mut cuts: Vec<usize> = (1..n).step_by(n / 97).collect();
    cuts.extend([meta_end, meta_end + 1, meta_end + 2, n - 2, n - 1]);
    for cut in cuts {
        let mut out = Vec::new();
        let r = d.deidentify_stream(
            &e,
            Trickle(Cursor::new(&input[..cut]), 0),
            &mut out,
            &mut Tally::default(),
        );
        let err = match r {
            Err(err) => err,
            Ok(_) => panic!("cut at {cut} of {n}: no error"),
        };
        let msg = err.to_string();
        assert!(!msg.contains("Doe"), "{msg}");
        if cut > meta_end + 16 {
            assert!(
                matches!(err, DicomError::Malformed { .. })
                    && msg.contains("deflate")
                    && msg.contains("truncated")
                    && msg.contains("offset "),
                "cut at {cut}: {msg}"
            );
            if out.len() > meta_end {
                let r = std::io::Read::read_to_end(
                    &mut flate2::read::DeflateDecoder::new(&out[meta_end..]),
                    &mut Vec::new(),
                );
                assert!(
                    r.is_err(),
                    "cut at {cut}: the partial output ends its deflate stream"
                );
            }
        }
        // The in-memory path fails too.
        assert!(
            d.deidentify_bytes(&e, &input[..cut], &mut Tally::default())
                .is_err()
        );
    }
    // Flips in the deflate stream: both paths agree (a flip may still inflate), no panic.
    let mut corrupt = 0;
    for i in 0..200usize {
        let mut bad = input.clone();
        let at = meta_end + (i * 7919) % (n - meta_end);
        bad[at] ^= 1 << (i % 8);
        let mut t1 = Tally::default();
        let r1 = d.deidentify_bytes(&e, &bad, &mut t1);
        let mut t2 = Tally::default();
        let mut out = Vec::new();
        let r2 = d.deidentify_stream(&e, Trickle(Cursor::new(&bad[..]), 0), &mut out, &mut t2);
        match (r1, r2) {
            (Ok(a), Ok(_)) => {
                assert!(a.bytes == out, "flip at {at}");
                assert_eq!(t1, t2);
            }
            (Err(_), Err(b)) => {
                if b.to_string().contains("deflate stream is corrupt") {
                    corrupt += 1;
                }
            }
            (a, b) => panic!(
                "flip at {at}: in memory {:?}, streamed {:?}",
                a.err(),
                b.err()
            ),
        }
    }
    assert!(corrupt > 0, "no flip made a corrupt deflate stream");
}

/// Top-level elements out of tag order: the in-memory path would move them, which the
/// streaming path cannot do once the pixel data has gone by, so both refuse the file, naming
/// the element and its offset (found by `damaged_input_agrees`: a flipped byte turned
/// (0020,0052) into (8020,0052), before the pixel data).
#[test]
fn elements_out_of_tag_order_are_refused_by_both_paths() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(5);
    let original = data("MR_small.dcm");
    let mut before = original.clone();
    let at = before
        .windows(6)
        .position(|w| w == [0x20, 0x00, 0x52, 0x00, b'U', b'I'])
        .expect("MR_small has a Frame of Reference UID");
    before[at + 1] = 0x80;
    let mut after = original.clone();
    after.extend_from_slice(&[
        0x08, 0x00, 0x80, 0x00, b'L', b'O', 4, 0, b'A', b'B', b'C', b' ',
    ]);
    // The element reported is the first one that does not follow its predecessor.
    for (input, label) in [(before, "(0020,0060)"), (after, "(0008,0080)")] {
        let r1 = d.deidentify_bytes(&e, &input, &mut Tally::default());
        let mut out = Vec::new();
        let r2 = d.deidentify_stream(
            &e,
            Trickle(Cursor::new(&input[..]), 0),
            &mut out,
            &mut Tally::default(),
        );
        let (Err(a), Err(b)) = (r1, r2) else {
            panic!("{label}: both paths must refuse the file")
        };
        for err in [a.to_string(), b.to_string()] {
            assert!(
                err.contains("out of order") && err.contains(label),
                "{label}: {err}"
            );
        }
    }
    // In order, the same file goes through.
    same(&d, &e, &original, "in order").unwrap();
}
