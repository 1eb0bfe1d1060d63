//! Streamed Bundle documents (`deidentify_seekable`, two passes, one entry at a time) give the
//! bytes, the tally and the errors of the whole-document path.

use std::cell::Cell;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;

use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, ProfileName, Tally};
use proptest::prelude::*;

use super::{data_dir, engine, inputs};

const PROFILES: [ProfileName; 3] = [
    ProfileName::SafeHarbor,
    ProfileName::LimitedDataSet,
    ProfileName::Shifted,
];

/// A reader that counts the bytes read through it.
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

type Outcome = Result<(Vec<u8>, Tally), String>;

/// The whole-document path.
fn in_memory(config: &Config, input: &[u8]) -> Outcome {
    let fhir = FhirDeid::new(config).unwrap();
    let mut out = Vec::new();
    let mut tally = Tally::default();
    fhir.deidentify(engine(3, config), input, &mut out, &mut tally)
        .map(|()| (out, tally))
        .map_err(|e| e.to_string())
}

/// The seekable path with every Bundle streamed; also the bytes it read.
fn streamed(config: &Config, input: &[u8]) -> (Outcome, u64) {
    let fhir = FhirDeid::new(config).unwrap().with_stream_threshold(0);
    let read = Rc::new(Cell::new(0));
    let reader = Counting {
        inner: Cursor::new(input),
        read: read.clone(),
    };
    let mut out = Vec::new();
    let mut tally = Tally::default();
    let r = fhir
        .deidentify_seekable(engine(3, config), reader, &mut out, &mut tally, 1)
        .map(|()| (out, tally))
        .map_err(|e| e.to_string());
    (r, read.get())
}

/// The same error; for a number out of range, the same message at the same place but for
/// serde_json's one difference between its readers (see `json_errors_agree`).
fn same_error(want: &str, got: &str) -> bool {
    const OUT: &str = "number out of range";
    want == got || (want.ends_with(OUT) && got.ends_with(OUT) && got.contains(", column 0:"))
}

/// How many times the streamed path reads `input` when it streams it: a pretty Bundle document
/// twice, a Bundle on one line three times (the first line's layout is told by reading it).
fn streamed_passes(input: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(input);
    let text = text.trim_start_matches('\u{feff}');
    let bundle = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t)
            .is_ok_and(|v| v.get("resourceType").and_then(|t| t.as_str()) == Some("Bundle"))
    };
    let (line, rest) = text.split_at(text.find('\n').map_or(text.len(), |i| i + 1));
    if line.trim() == "{" && bundle(text) {
        Some(2)
    } else if line.trim_start().starts_with('{') && rest.trim().is_empty() && bundle(line) {
        Some(3)
    } else {
        None
    }
}

/// Streams `input` under every profile and checks it against the whole-document path;
/// returns whether it was a streamed Bundle.
fn check_same(name: &str, input: &[u8]) -> bool {
    check_same_in(&PROFILES, name, input)
}

fn check_same_in(profiles: &[ProfileName], name: &str, input: &[u8]) -> bool {
    let passes = streamed_passes(input);
    for &p in profiles {
        let config = Config::builtin(p);
        let want = in_memory(&config, input);
        let (got, read) = streamed(&config, input);
        match (&want, &got) {
            (Ok((wb, wt)), Ok((gb, gt))) => {
                assert!(wb == gb, "{name} {p:?}: streamed bytes differ");
                assert_eq!(wt, gt, "{name} {p:?}: tally differs");
            }
            (Err(w), Err(g)) => assert!(same_error(w, g), "{name} {p:?}: {w} / {g}"),
            _ => panic!("{name} {p:?}: in memory {want:?}, streamed {got:?}"),
        }
        if let Some(passes) = passes {
            // The streamed path really streamed (it did not fall back).
            let body = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
            assert!(
                read >= passes * body.len() as u64,
                "{name} {p:?}: read {read} of {} bytes",
                input.len()
            );
        }
    }
    passes.is_some()
}

/// Every input as it is, and every Bundle document also written compactly on one line (as
/// FHIR servers return them; safe-harbor only, for time).
#[test]
fn streamed_bundles_match_the_whole_document_path() {
    let mut bundles = 0;
    let mut one_line = 0;
    let mut files = 0;
    for path in inputs() {
        let input = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        files += 1;
        if !check_same(&name, &input) {
            continue;
        }
        bundles += 1;
        let json = phiguard_fhir::Json::from_slice(&input).unwrap();
        let mut compact = serde_json::to_vec(&json).unwrap();
        compact.push(b'\n');
        let name = format!("{name} on one line");
        assert_eq!(streamed_passes(&compact), Some(3), "{name}");
        one_line += usize::from(check_same_in(&[ProfileName::SafeHarbor], &name, &compact));
    }
    eprintln!("{files} files, {bundles} Bundle documents streamed, {one_line} on one line");
    assert!(bundles >= 2, "no Bundle among the inputs");
}

/// What the input is told to be and how it is written, for the whole-document path (which
/// reads the first line whole, as before) and the streamed one (which tells it as it reads).
enum Want {
    /// One compact line: NDJSON of one line, or a resource or Bundle written on one line.
    OneLine,
    /// NDJSON of this many records.
    Lines(usize),
    /// A document, pretty-printed.
    Pretty,
    /// This error.
    Error(&'static str),
}

#[test]
fn layouts_are_told_as_before() {
    const BUNDLE: &str = r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"p1","name":[{"family":"Zyxwvut"}],"birthDate":"1931-02-03"}},{"resource":{"resourceType":"Observation","id":"o1","subject":{"reference":"urn:uuid:p1"},"note":[{"text":"Zyxwvut was seen"}]}}]}"#;
    const PATIENT: &str = r#"{"resourceType":"Patient","id":"p2","name":[{"family":"Qwerty"}],"birthDate":"1940-05-06"}"#;
    let pretty_bundle =
        serde_json::to_string_pretty(&serde_json::from_str::<phiguard_fhir::Json>(BUNDLE).unwrap())
            .unwrap();
    let bad_entry = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":7}}]}"#;
    let cases: Vec<(&str, String, Want)> = vec![
        ("compact Bundle", BUNDLE.into(), Want::OneLine),
        (
            "compact Bundle, newline",
            format!("{BUNDLE}\n"),
            Want::OneLine,
        ),
        (
            "compact Bundle, CRLF",
            format!("{BUNDLE}\r\n"),
            Want::OneLine,
        ),
        (
            "compact Bundle, trailing whitespace and blank lines",
            format!("  {BUNDLE} \t\r\n \n\t\n\n"),
            Want::OneLine,
        ),
        (
            "compact Bundle, BOM",
            format!("\u{feff}{BUNDLE}\n"),
            Want::OneLine,
        ),
        ("compact resource", PATIENT.into(), Want::OneLine),
        ("NDJSON of one line", format!("{PATIENT}\n"), Want::OneLine),
        (
            "NDJSON",
            format!("{PATIENT}\n{PATIENT}\n{BUNDLE}\n"),
            Want::Lines(3),
        ),
        (
            "NDJSON, blank lines",
            format!("{PATIENT}\n\n  \n{BUNDLE}\r\n\n{PATIENT}\n \n"),
            Want::Lines(3),
        ),
        (
            "NDJSON, a Bundle first",
            format!("{BUNDLE}\n{PATIENT}"),
            Want::Lines(2),
        ),
        (
            "NDJSON, BOM",
            format!("\u{feff}{PATIENT}\n{PATIENT}\n"),
            Want::Lines(2),
        ),
        ("pretty Bundle", pretty_bundle.clone(), Want::Pretty),
        (
            "pretty Bundle, BOM",
            format!("\u{feff}{pretty_bundle}"),
            Want::Pretty,
        ),
        // The first line is blank, so it is not an object by itself: a document.
        (
            "blank line, then a compact Bundle",
            format!("\n{BUNDLE}"),
            Want::Pretty,
        ),
        (
            "compact Bundle, then garbage on its line",
            format!("{BUNDLE} x\n"),
            Want::Error("invalid JSON at line 1, column 315: trailing characters"),
        ),
        (
            "two objects on line 1",
            format!("{PATIENT}{PATIENT}"),
            Want::Error("invalid JSON at line 1, column 91: trailing characters"),
        ),
        (
            "compact Bundle, then garbage on the next line",
            format!("{BUNDLE}\nx"),
            Want::Error("NDJSON line 2: invalid JSON at column 1: expected value"),
        ),
        (
            "pretty Bundle, then garbage",
            format!("{pretty_bundle}\n\nx"),
            Want::Error("invalid JSON at line 35, column 1: trailing characters"),
        ),
        (
            "compact Bundle, bad entry",
            bad_entry.into(),
            Want::Error("line 1, /entry/1/resource: not a FHIR resource (no resourceType string)"),
        ),
        (
            "an array on one line",
            format!("[{PATIENT}]\n"),
            Want::Error("/: not a FHIR resource (no resourceType string)"),
        ),
        (
            "truncated on line 1",
            BUNDLE[..100].into(),
            Want::Error("invalid JSON at line 1, column 100: unexpected end of input"),
        ),
        (
            "empty",
            String::new(),
            Want::Error("invalid JSON at line 1, column 0: unexpected end of input"),
        ),
        (
            "blank",
            " \n \n".into(),
            Want::Error("invalid JSON at line 3, column 0: unexpected end of input"),
        ),
    ];
    let config = Config::builtin(ProfileName::SafeHarbor);
    for (name, input, want) in &cases {
        let input = input.as_bytes();
        let whole = in_memory(&config, input);
        // Every size streams (threshold 0), and the default threshold (these are small).
        let (streamed0, read) = streamed(&config, input);
        let fhir = FhirDeid::new(&config).unwrap();
        let mut out = Vec::new();
        let mut tally = Tally::default();
        let default = fhir
            .deidentify_seekable(
                engine(3, &config),
                Cursor::new(input),
                &mut out,
                &mut tally,
                2,
            )
            .map(|()| (out, tally))
            .map_err(|e| e.to_string());
        for got in [&streamed0, &default] {
            match (&whole, got) {
                (Ok((wb, wt)), Ok((gb, gt))) => {
                    assert!(wb == gb, "{name}: output differs");
                    assert_eq!(wt, gt, "{name}: tally differs");
                }
                (Err(w), Err(g)) => assert_eq!(w, g, "{name}"),
                _ => panic!("{name}: in memory {whole:?}, streamed {got:?}"),
            }
        }
        match (want, &whole) {
            (Want::Error(e), Err(got)) => assert_eq!(got, e, "{name}"),
            (Want::Error(_), Ok(_)) => panic!("{name}: no error"),
            (_, Err(e)) => panic!("{name}: {e}"),
            (Want::OneLine, Ok((out, _))) => {
                assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "{name}");
                assert!(out.ends_with(b"}\n"), "{name}");
            }
            (Want::Lines(n), Ok((out, tally))) => {
                assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), *n, "{name}");
                assert!(tally.records >= *n as u64, "{name}");
            }
            (Want::Pretty, Ok((out, _))) => {
                assert!(out.starts_with(b"{\n  \""), "{name}");
            }
        }
        if matches!(want, Want::OneLine) && name.contains("Bundle") {
            // Streamed (told, then two passes), not read as one NDJSON line.
            let body = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
            assert!(read >= 3 * body.len() as u64, "{name}: read {read}");
        }
    }
}

/// Member order, members before and after `entry`, removed entries and members, an empty
/// `entry`, duplicate members, a byte-order mark, `resourceType` after `entry`, non-Bundles.
#[test]
fn odd_bundles_match_too() {
    let cases: &[&str] = &[
        r#"{"id":"b1","meta":{"lastUpdated":"2020-01-02T03:04:05Z"},"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"p1","name":[{"family":"Zyxwvut","given":["Qwerty"]}],"birthDate":"1931-02-03"}},{"resource":{"resourceType":"Observation","id":"o1","subject":{"reference":"urn:uuid:p1"},"note":[{"text":"Zyxwvut called from 555-123-4567"}],"valueQuantity":{"value":93,"unit":"years"}}}],"total":2,"link":[{"relation":"self","url":"http://x/Patient?name=Zyxwvut"}],"signature":{"when":"2020-01-02T03:04:05Z","data":"c2lnbg=="}}"#,
        r#"{"resourceType":"Bundle","entry":[],"id":"x"}"#,
        r#"{"resourceType":"Bundle","entry":[null,{},{"resource":{"resourceType":"Patient","id":"p"}},[1,2]]}"#,
        r#"{"entry":[{"fullUrl":"urn:uuid:p2","resource":{"resourceType":"Patient","id":"p2","telecom":[{"system":"phone","value":"555-987-6543"}]}}],"resourceType":"Bundle","timestamp":"2021-05-06T07:08:09Z"}"#,
        r#"{"resourceType":"Bundle","entry":{"resource":{"resourceType":"Patient","id":"p3"}},"entry":[{"resource":{"resourceType":"Patient","id":"p4"}}]}"#,
        r#"{"resourceType":"Bundle","resourceType":"Patient","entry":[{"resource":{"resourceType":"Patient","id":"p5"}}],"entry":[{"resource":{"resourceType":"Patient","id":"p6"}}]}"#,
        "\u{feff}{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p7\",\"birthDate\":\"1990-01-01\"}}]}",
        r#"{"entry":[{"resource":{"resourceType":"Patient","id":"p8"}}],"resourceType":"List"}"#,
        r#"{"resourceType":"Patient","id":"p9","name":[{"family":"Asdfgh"}]}"#,
        r#"{"entry":[{"resource":{"resourceType":"Patient","id":"p10"}}]}"#,
        r#"[{"resourceType":"Bundle"}]"#,
        r#""Bundle""#,
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":7}}]}"#,
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]} x"#,
    ];
    for (i, c) in cases.iter().enumerate() {
        // Pretty-printed first, then as is (compact on one line: written back on one line).
        let pretty =
            match serde_json::from_str::<phiguard_fhir::Json>(c.trim_start_matches('\u{feff}')) {
                Ok(j) => {
                    let mut s = serde_json::to_string_pretty(&j).unwrap();
                    if c.starts_with('\u{feff}') {
                        s.insert(0, '\u{feff}');
                    }
                    s
                }
                Err(_) => c.replace(',', ",\n"),
            };
        check_same(&format!("case {i} pretty"), pretty.as_bytes());
        check_same(&format!("case {i}"), c.as_bytes());
    }
}

/// Rules that take the Bundle whole, or look inside a Bundle they remove, go through the
/// whole-document path and give its result.
#[test]
fn bundle_rules_match_too() {
    let input = std::fs::read(data_dir().join("ms-anonymizer/bundle-basic.json")).unwrap();
    for rules in [
        r#"[{ select = "Bundle", action = "remove" }]"#,
        r#"[{ select = "Bundle", action = "keep" }]"#,
        r#"[{ select = "Bundle.entry.fullUrl", action = "keep" }, { select = "Bundle", action = "remove" }]"#,
        r#"[{ select = "Bundle.id", action = "remove" }, { select = "Bundle.entry", action = "remove" }]"#,
        r#"[{ select = "Patient", action = "remove" }]"#,
    ] {
        let config = Config::from_toml(&format!(
            "profile = \"safe-harbor\"\n[fhir]\nrules = {rules}\n"
        ))
        .unwrap();
        let want = in_memory(&config, &input).unwrap();
        let (got, _) = streamed(&config, &input);
        let got = got.unwrap();
        assert!(want.0 == got.0, "{rules}: streamed bytes differ");
        assert_eq!(want.1, got.1, "{rules}: tally differs");
    }
}

/// A pretty Bundle of `n` Patient entries, with `bad` spliced into entry `at`.
fn bundle_with(n: usize, at: usize, bad: &str) -> String {
    let mut s = String::from(
        "{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"collection\",\n  \"entry\": [\n",
    );
    for i in 0..n {
        if i > 0 {
            s.push_str(",\n");
        }
        let extra = if i == at { bad } else { "" };
        s.push_str(&format!(
            "    {{\n      \"resource\": {{\n        \"resourceType\": \"Patient\",\n        \"id\": \"p{i}\"{extra}\n      }}\n    }}"
        ));
    }
    s.push_str("\n  ]\n}\n");
    s
}

#[test]
fn errors_name_the_line_column_and_entry() {
    let config = Config::builtin(ProfileName::SafeHarbor);
    // Invalid JSON inside entry 7: line 4 + 6 lines per entry + 4, the column of the `S` after `"id": "p7" `.
    let input = bundle_with(10, 7, " Secretname");
    let (got, _) = streamed(&config, input.as_bytes());
    let e = got.unwrap_err();
    assert_eq!(e, in_memory(&config, input.as_bytes()).unwrap_err());
    let line = 4 + 6 * 7 + 4;
    assert!(
        e.starts_with(&format!("invalid JSON at line {line}, column 20:")),
        "{e}"
    );
    assert!(!e.contains("Secretname"), "{e}");

    // Truncated: end of input on the last line.
    let whole = bundle_with(10, usize::MAX, "");
    let cut = &whole.as_bytes()[..whole.len() - 20];
    let (got, _) = streamed(&config, cut);
    let e = got.unwrap_err();
    assert_eq!(e, in_memory(&config, cut).unwrap_err());
    assert_eq!(
        e,
        "invalid JSON at line 63, column 0: unexpected end of input"
    );
    // Truncated inside entry 5's id.
    let at = whole.find("\"p5\"").unwrap() + 2;
    let (got, _) = streamed(&config, &whole.as_bytes()[..at]);
    let e = got.unwrap_err();
    assert_eq!(e, in_memory(&config, &whole.as_bytes()[..at]).unwrap_err());
    let line = 4 + 6 * 5 + 4;
    assert_eq!(
        e,
        format!("invalid JSON at line {line}, column 16: unexpected end of input")
    );

    // A structure error deep in entry 12 keeps its JSON pointer.
    let input = bundle_with(20, 12, ",\n        \"contained\": [{\"resourceType\": 5}]");
    let (got, _) = streamed(&config, input.as_bytes());
    let e = got.unwrap_err();
    assert_eq!(e, in_memory(&config, input.as_bytes()).unwrap_err());
    assert!(e.starts_with("/entry/12/resource/contained/0"), "{e}");
}

/// Each kind of JSON error, inside an entry of a pretty Bundle: the streamed reader and the
/// slice reader report the same message and position (but for one serde_json quirk).
#[test]
fn json_errors_agree() {
    let nested = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let bad: Vec<Vec<u8>> = vec![
        b", \"x\": \"a\xffb\"".to_vec(),
        b", \"x\": \"a\x01b\"".to_vec(),
        b", \"x\": \"a\\qb\"".to_vec(),
        b", \"x\": \"\\ud800\"".to_vec(),
        b", \"x\": \"\\ud800\\u0041\"".to_vec(),
        b", \"x\": 1e400".to_vec(), // OUT_OF_RANGE
        b", \"x\": -".to_vec(),
        b", \"x\": 01".to_vec(),
        b", \"x\": tru".to_vec(),
        b", \"x\": [1,]".to_vec(),
        b", \"x\": {\"a\":1,}".to_vec(),
        b", 7: 1".to_vec(),
        format!(", \"x\": {nested}").into_bytes(),
        b"}]}\n{".to_vec(),
        b"}]} x".to_vec(),
    ];
    const OUT_OF_RANGE: usize = 5;
    let config = Config::builtin(ProfileName::SafeHarbor);
    for (i, b) in bad.iter().enumerate() {
        let mut input = bundle_with(6, 3, "@").into_bytes();
        let at = input.iter().position(|&c| c == b'@').unwrap();
        input.splice(at..=at, b.iter().copied());
        let want = in_memory(&config, &input);
        let (got, _) = streamed(&config, &input);
        assert!(want.is_err(), "case {i} parsed");
        let (want, got) = (want.unwrap_err(), got.unwrap_err());
        if i == OUT_OF_RANGE {
            // serde_json's one difference between its readers: a number too big for f64 just
            // before a newline is placed after the number by the slice reader and at the start
            // of the next line by the stream reader.
            assert_eq!(
                want,
                "invalid JSON at line 26, column 30: number out of range"
            );
            assert_eq!(
                got,
                "invalid JSON at line 27, column 0: number out of range"
            );
            continue;
        }
        assert_eq!(want, got, "case {i}");
    }
}

#[test]
fn truncations_of_a_real_bundle_agree() {
    let input = std::fs::read(data_dir().join("ms-anonymizer/bundle-basic.json")).unwrap();
    for cut in (0..input.len()).step_by(53) {
        check_same(&format!("cut {cut}"), &input[..cut]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Damaged Bundles: no panic, and both paths agree (same bytes and tally, or same error).
    #[test]
    fn damaged_bundles_agree(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in 0usize..200) {
        let mut input = std::fs::read(data_dir().join("ms-anonymizer/bundle-basic.json")).unwrap();
        let n = input.len();
        for (pos, byte) in flips {
            input[pos % n] = byte;
        }
        input.truncate(n - cut % n);
        let config = Config::builtin(ProfileName::Shifted);
        let want = in_memory(&config, &input);
        let (got, _) = streamed(&config, &input);
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                prop_assert!(w.0 == g.0, "bytes differ");
                prop_assert_eq!(&w.1, &g.1);
            }
            (Err(w), Err(g)) => prop_assert!(same_error(w, g), "{} / {}", w, g),
            _ => prop_assert!(false, "in memory {:?}, streamed {:?}", want.is_ok(), got.is_ok()),
        }
    }
}
