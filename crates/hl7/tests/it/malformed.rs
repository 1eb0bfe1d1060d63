//! Malformed input is an error naming the position, never a panic, never a value.

use phiguard_hl7::{Hl7Deid, Hl7Error};
use phiguard_rules::{Config, ProfileName, Tally};

use crate::engine;

fn err(input: &[u8]) -> String {
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config).unwrap();
    let mut out = Vec::new();
    let e = deid
        .deidentify(engine(1, &config), input, &mut out, &mut Tally::default())
        .unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("SECRETNAME"), "{text}");
    assert!(!format!("{e:?}").contains("SECRETNAME"));
    text
}

#[test]
fn errors_name_the_line_and_offset() {
    let e = err(b"PID|1||SECRETNAME\r");
    assert!(
        e.contains("line 1") && e.contains("before the first MSH"),
        "{e}"
    );
    let e = err(b"MSH|^~\\&|A\rPID|1\rpid|SECRETNAME\r");
    assert!(e.contains("line 3") && e.contains("byte 17"), "{e}");
    let e = err(b"MSH|^~\\&|A\rPIDXSECRETNAME\r");
    assert!(e.contains("line 2") && e.contains("field separator"), "{e}");
    let e = err(b"MSH|");
    assert!(
        e.contains("line 1") && e.contains("encoding characters"),
        "{e}"
    );
    let e = err(b"MSH|^^\\&|SECRETNAME\r");
    assert!(e.contains("not distinct"), "{e}");
    let e = err(b"MSHA^~\\&|SECRETNAME\r");
    assert!(e.contains("field separator"), "{e}");
    let e = err(b"");
    assert!(e.contains("no HL7 message"), "{e}");
    let e = err(b"\n\n");
    assert!(e.contains("no HL7 message"), "{e}");
    let e = err(b"MSH|^~\\&|A\rPID|1\rBTS|1\rOBX|SECRETNAME\r");
    assert!(
        e.contains("line 4") && e.contains("outside a message"),
        "{e}"
    );
}

#[test]
fn truncated_files_still_work_or_fail_cleanly() {
    let full = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/synthetic/escapes_crlf_blank.hl7"),
    )
    .unwrap();
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config).unwrap();
    let e = engine(1, &config);
    for cut in 0..full.len() {
        let mut out = Vec::new();
        match deid.deidentify(e, &full[..cut], &mut out, &mut Tally::default()) {
            Ok(()) => {
                phiguard_hl7::parse_segments(out.as_slice()).unwrap();
            }
            // Only the cut segment (a truncated segment id) may be wrong.
            Err(Hl7Error::Syntax { line, .. }) => {
                let lines = full[..cut].split(|&b| b == b'\n').count() as u64;
                assert_eq!(line, lines, "cut at {cut}");
            }
            Err(Hl7Error::Empty) => assert!(cut < 4),
            Err(other) => panic!("cut at {cut}: {other}"),
        }
    }
}

#[test]
fn io_errors_are_reported() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
    }
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config).unwrap();
    let r = deid.deidentify(
        engine(1, &config),
        Failing,
        Vec::new(),
        &mut Tally::default(),
    );
    assert!(matches!(r, Err(Hl7Error::Io(_))));
}
