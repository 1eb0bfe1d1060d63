//! Output is HL7 again, with the same segments, field counts, endings, byte order mark and
//! encoding characters.

use phiguard_hl7::parse_segments;
use phiguard_rules::ProfileName;

use crate::{all_files, run};

#[test]
fn output_parses_with_the_same_structure() {
    let files = all_files();
    assert!(files.len() >= 10);
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let before = parse_segments(input.as_slice()).unwrap();
        for profile in [
            ProfileName::SafeHarbor,
            ProfileName::Shifted,
            ProfileName::LimitedDataSet,
        ] {
            let (out, tally) = run(profile, 1, &input);
            let after = parse_segments(out.as_slice())
                .unwrap_or_else(|e| panic!("{}: output does not parse: {e}", path.display()));
            assert_eq!(before.len(), after.len(), "{}", path.display());
            for (a, b) in before.iter().zip(&after) {
                assert_eq!(a.id, b.id, "{}", path.display());
                assert_eq!(a.fields.len(), b.fields.len(), "{} {:?}", path.display(), a);
                assert_eq!(a.ending, b.ending, "{}", path.display());
                assert_eq!(a.delimiters, b.delimiters);
                if &a.id == b"MSH" {
                    assert_eq!(a.field(2), b.field(2));
                    assert_eq!(a.field(9), b.field(9), "message type kept");
                    assert_eq!(a.field(12), b.field(12), "version kept");
                }
            }
            assert_eq!(
                input.starts_with(b"\xEF\xBB\xBF"),
                out.starts_with(b"\xEF\xBB\xBF")
            );
            assert_eq!(
                input.iter().filter(|&&b| b == b'\n').count(),
                out.iter().filter(|&&b| b == b'\n').count(),
                "{}: line endings",
                path.display()
            );
            let msh = before.iter().filter(|s| &s.id == b"MSH").count() as u64;
            assert_eq!(tally.records, msh);
            assert_eq!(tally.files, 1);
        }
    }
}

#[test]
fn non_standard_delimiters_are_honoured() {
    let input = b"MSH^~|\\&^SENDING^200M^RECEIVING^200^20120918173931-0500^^ADT~A24^2003582144^T^2.4\rPID^1^^11111~~~FOO&&0363~NI~FACILITY ID&200M&L^^SMITH~JOHN~TEST^^19700101\r";
    let (out, _) = run(ProfileName::SafeHarbor, 1, input);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("MSH^~|\\&^"), "{out}");
    assert!(
        !out.contains("SMITH") && !out.contains("JOHN") && !out.contains("11111"),
        "{out}"
    );
    assert!(out.contains("^ADT~A24^"), "{out}");
    assert!(
        out.contains("~NI~FACILITY ID&200M&L"),
        "assigning authority kept: {out}"
    );
    assert!(out.contains("^1970\r"), "{out}");
}

#[test]
fn batches_keep_their_envelope_and_every_message_is_processed() {
    let input = b"FHS|^~\\&||ABCHS||AUSDHSV|20070101123401|||file20070101.hl7|\rBHS|^~\\&||ABCHS||AUSDHSV|20070101123401|\rMSH|^~\\&||ABCHS||AUSDHSV|20070101112951||ADT^A04^ADT_A01|1|P|2.5\rPID|1||AAA111^^^100^A||ALPHA^ANN\rMSH|^~\\&||ABCHS||AUSDHSV|20070101112951||ADT^A04^ADT_A01|2|P|2.5\rPID|1||BBB222^^^100^A||BETA^BOB\rBTS|2\rFTS|1\r";
    let (out, tally) = run(ProfileName::SafeHarbor, 1, input);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(tally.records, 2);
    for s in [
        "ALPHA",
        "BETA",
        "AAA111",
        "BBB222",
        "20070101",
        "file20070101",
    ] {
        assert!(!out.contains(s), "{s} in {out}");
    }
    assert!(
        out.starts_with("FHS|^~\\&|") && out.contains("\rBTS|2\rFTS|1\r"),
        "{out}"
    );
}

#[test]
fn escapes_are_decoded_for_detection_and_re_encoded() {
    let input = b"MSH|^~\\&|A|B|C|D|20200101||ORU^R01|1|P|2.5\rPID|1||X1\rOBX|1|FT|11488-4^Note^LN||Seen by Dr. Maria Lopez\\.br\\on 03/14/2021 \\T\\ stable\\F\\ok||||||F\rNTE|1||plain \\H\\text\\N\\ with no one in it\r";
    let (out, _) = run(ProfileName::SafeHarbor, 1, input);
    let segs = phiguard_hl7::parse_segments(out.as_slice()).unwrap();
    let obx = &segs[2];
    assert_eq!(obx.fields.len(), 12);
    let text = &obx.leaves(5)[0].1;
    assert!(!text.contains("Lopez") && !text.contains("03/14"), "{text}");
    assert!(
        text.contains('\n') && text.contains("& stable|ok"),
        "{text}"
    );
    let raw = String::from_utf8(obx.field(5).unwrap().to_vec()).unwrap();
    assert!(
        raw.contains("\\.br\\") && raw.contains("\\T\\") && raw.contains("\\F\\"),
        "{raw}"
    );
    // Unchanged values keep their original bytes, formatting escapes included.
    assert_eq!(
        segs[3].field(3).unwrap(),
        b"plain \\H\\text\\N\\ with no one in it"
    );
}

#[test]
fn uncovered_fields_are_reported_and_go_through_the_detector() {
    let input = b"MSH|^~\\&|A|B|C|D|20200101||ADT^A01|1|P|2.5\rPID|1||X1\rZPI|1|Seen by Dr. Maria Lopez on 03/14/2021|CODE7\r";
    let (out, tally) = run(ProfileName::SafeHarbor, 1, input);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("Lopez"), "{out}");
    assert!(
        tally.uncovered.contains_key("ZPI-2"),
        "{:?}",
        tally.uncovered
    );
    assert!(out.contains("|CODE7\r"));
}

#[test]
fn user_rules_come_first() {
    let config = phiguard_rules::Config::from_toml(
        r#"
[hl7]
rules = [
  { select = "Z*-*", action = "remove" },
  { select = "PID-3[2]", action = "remove" },
  { select = "PID-5.2", action = "keep" },
  { select = "OBX-5", action = "keep", name = "keep results" },
]
"#,
    )
    .unwrap();
    let input = b"MSH|^~\\&|A|B|C|D|20200101||ORU^R01|1|P|2.5\rPID|1||ID1^^^H~ID2^^^H||DOE^JANE\rOBX|1|TX|x^y||free text Jane Doe\rZPI|1|secret|x^y\r";
    let (out, tally) = crate::run_with(&config, 1, input);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("||^JANE\r"), "{out}");
    assert!(
        !out.contains("ID2") && !out.contains("ID1") && !out.contains("DOE"),
        "{out}"
    );
    assert!(out.contains("|free text Jane Doe\r"), "{out}");
    assert!(out.contains("\rZPI|||\r"), "{out}");
    assert_eq!(tally.rules["keep results"].values, 1);
    let bad = phiguard_rules::Config::from_toml(
        "[hl7]\nrules = [ { select = \"MSH-2\", action = \"remove\" } ]\n",
    )
    .unwrap();
    let e = phiguard_hl7::Hl7Deid::new(&bad).unwrap_err().to_string();
    assert!(e.contains("hl7.rules[0]"), "{e}");
}

#[test]
fn the_message_dictionary_catches_what_the_detector_misses() {
    let input = b"MSH|^~\\&|A|B|C|D|20200101||ADT^A01|1|P|2.5\rPID|1||QX9917^^^H||ZYXWVU^QQQQRT||19800214|F|||12 Orchard Row^^Plimpton^IL^62704\rPV1|1|I||||||||||||||||QX9917\rNTE|1||note about zyxwvu qqqqrt from Plimpton, ref QX9917\r";
    let (out, tally) = run(ProfileName::SafeHarbor, 1, input);
    let out = String::from_utf8(out).unwrap();
    for s in ["ZYXWVU", "zyxwvu", "QQQQRT", "qqqqrt", "Plimpton", "QX9917"] {
        assert!(!out.contains(s), "{s}: {out}");
    }
    assert!(
        out.contains("note about [NAME] [NAME] from [LOCATION], ref ["),
        "{out}"
    );
    assert!(tally.notes.contains_key("hl7_record_value_removed"));
}
