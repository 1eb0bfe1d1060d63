//! Malformed input: an error naming the position, never a panic, never PHI in the message.

use phiguard_rules::Tally;
use proptest::prelude::*;

use crate::common::*;

#[test]
fn truncated_files_fail_with_an_offset() {
    let (d, e) = (safe_harbor(), shared_engine());
    for name in [
        "MR_small.dcm",
        "test-SR.dcm",
        "image_dfl.dcm",
        "rtstruct.dcm",
    ] {
        let input = data(name);
        let (obj, _) = parse(&input);
        let name_value = top_string(&obj, 0x0010, 0x0010).unwrap_or_default();
        let mut errors = 0;
        for cut in (0..input.len()).step_by(input.len() / 150 + 1) {
            let mut t = Tally::default();
            match d.deidentify_bytes(e, &input[..cut], &mut t) {
                Ok(out) => {
                    // A cut exactly between two top-level elements is a shorter valid file.
                    parse(&out.bytes);
                }
                Err(err) => {
                    errors += 1;
                    let msg = err.to_string();
                    if !name_value.is_empty() {
                        assert!(!msg.contains(&name_value), "{msg}");
                    }
                    if cut > 140 && matches!(err, phiguard_dicom::DicomError::Malformed { .. }) {
                        assert!(msg.contains("offset"), "{msg}");
                    }
                }
            }
        }
        assert!(errors > 0, "{name}");
    }
}

#[test]
fn error_names_the_tag_path() {
    let input = data("test-SR.dcm");
    // Cut inside the content sequence: the path names it.
    let cut = input.len() - 40;
    let err = safe_harbor()
        .deidentify_bytes(shared_engine(), &input[..cut], &mut Tally::default())
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(
        err.contains("(0040,A730)") && err.contains("offset"),
        "{err}"
    );
    let mut w = Vec::new();
    let r = safe_harbor().deidentify(
        shared_engine(),
        &input[..cut],
        &mut w,
        &mut Tally::default(),
    );
    assert!(r.is_err() && w.is_empty(), "nothing written on error");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn mutated_bytes_never_panic(flips in proptest::collection::vec((0usize..10_000, any::<u8>()), 1..8), cut in 0usize..10_000) {
        let mut input = data("MR_small.dcm");
        for (at, b) in flips {
            let n = input.len();
            input[at % n] = b;
        }
        let n = input.len();
        input.truncate(cut.max(1).min(n));
        let _ = safe_harbor().deidentify_bytes(shared_engine(), &input, &mut Tally::default());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(&bytes);
        let _ = safe_harbor().deidentify_bytes(shared_engine(), &b, &mut Tally::default());
        let _ = safe_harbor().deidentify_bytes(shared_engine(), &bytes, &mut Tally::default());
    }
}
