//! One stream on several threads (`deidentify_with_threads`): the same bytes, counts, review
//! sample and errors as one thread and as the sequential walker.

use phiguard_hl7::{CHUNK_MESSAGES, Hl7Deid};
use phiguard_rules::{Config, ProfileName, ReviewSample, Tally};

use crate::{engine, fixtures};

/// Every fixture's messages, many times over, as one file: a byte order mark, file and batch
/// wrappers, the fixtures' own endings (CR, LF, CR LF) and blank lines between them.
fn big_stream() -> Vec<u8> {
    let mut s = b"\xEF\xBB\xBFFHS|^~\\&|APP|FAC\r\nBHS|^~\\&|APP|FAC\r\n".to_vec();
    let inputs: Vec<Vec<u8>> = fixtures()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.starts_with(b"MSH"))
        .collect();
    assert!(!inputs.is_empty());
    let mut messages = 0;
    while messages < 3 * CHUNK_MESSAGES + 7 {
        for i in &inputs {
            s.extend_from_slice(i);
            if !i.ends_with(b"\r") && !i.ends_with(b"\n") {
                s.push(b'\r');
            }
            messages += i
                .windows(4)
                .filter(|w| w[1..] == *b"MSH" && (w[0] == b'\r' || w[0] == b'\n'))
                .count()
                + 1;
        }
        s.extend_from_slice(b"\n");
    }
    s.extend_from_slice(b"BTS|3\rFTS|1");
    s
}

fn run(input: &[u8], threads: Option<usize>) -> (Vec<u8>, Tally) {
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config).unwrap();
    let mut out = Vec::new();
    let mut tally = Tally {
        review: ReviewSample::new(6, 11),
        ..Tally::default()
    };
    let e = engine(1, &config);
    match threads {
        None => deid.deidentify(e, input, &mut out, &mut tally).unwrap(),
        Some(t) => deid
            .deidentify_with_threads(e, input, &mut out, &mut tally, t)
            .unwrap(),
    }
    (out, tally)
}

#[test]
fn a_stream_on_threads_writes_what_one_thread_writes() {
    let input = big_stream();
    let (seq, seq_tally) = run(&input, None);
    let (one, one_tally) = run(&input, Some(1));
    assert_eq!(one, seq, "chunks write what the sequential walker writes");
    let strip = |t: &Tally| Tally {
        review: ReviewSample::default(),
        ..t.clone()
    };
    assert_eq!(strip(&one_tally), strip(&seq_tally), "the same counts");
    assert_eq!(one_tally.files, 1);
    assert!(one_tally.records as usize > 3 * CHUNK_MESSAGES);
    for threads in [2, 3, 8] {
        let (out, tally) = run(&input, Some(threads));
        assert_eq!(out, seq, "{threads} threads");
        assert_eq!(
            tally, one_tally,
            "{threads} threads: counts and review sample"
        );
    }
    assert_eq!(one_tally.review.items.len(), 6);
    // Review labels name lines of the whole input, not of a chunk: the labelled line holds
    // the labelled segment.
    let mut lines = Vec::new();
    let mut reader = phiguard_hl7::reader::SegmentReader::new(input.as_slice());
    let mut buf = Vec::new();
    while reader.next_segment(&mut buf).unwrap().is_some() {
        lines.push(buf.clone());
    }
    for threads in [1, 2] {
        let (_, tally) = run(&input, Some(threads));
        for item in &tally.review.items {
            let (label, line) = item.rule.split_once(" (line ").unwrap();
            let line: usize = line.trim_end_matches(')').parse().unwrap();
            assert_eq!(
                &lines[line - 1][..3],
                &label.as_bytes()[..3],
                "{}",
                item.rule
            );
        }
    }
    // Short and empty inputs too.
    for f in fixtures() {
        let input = std::fs::read(&f).unwrap();
        let (a, _) = run(&input, None);
        let (b, _) = run(&input, Some(2));
        assert_eq!(a, b, "{}", f.display());
    }
}

#[test]
fn errors_name_the_same_position_on_threads() {
    let mut input = big_stream();
    // A bad segment in a later chunk, and another one after it.
    let at = input.len() * 2 / 3;
    let cut = at + input[at..].iter().position(|&b| b == b'\r').unwrap() + 1;
    input.splice(cut..cut, b"pid|SECRETNAME\r".iter().copied());
    input.extend_from_slice(b"\rpid|LATER\r");
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = Hl7Deid::new(&config).unwrap();
    let e = engine(1, &config);
    let seq = deid
        .deidentify(e, input.as_slice(), &mut Vec::new(), &mut Tally::default())
        .unwrap_err()
        .to_string();
    for threads in [1, 2, 4] {
        let par = deid
            .deidentify_with_threads(
                e,
                input.as_slice(),
                &mut Vec::new(),
                &mut Tally::default(),
                threads,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(par, seq, "{threads} threads");
        assert!(!par.contains("SECRETNAME"), "{par}");
    }
    let empty = deid
        .deidentify_with_threads(e, &b""[..], &mut Vec::new(), &mut Tally::default(), 2)
        .unwrap_err()
        .to_string();
    assert!(empty.contains("no HL7 message"), "{empty}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Damage anywhere in a long stream: the threaded run ends as the sequential one does (the
    /// same output, or the same error naming the same place).
    #[test]
    fn damaged_streams_end_as_on_one_thread(
        edits in proptest::collection::vec((0.0f64..1.0, proptest::prelude::any::<u8>()), 0..6),
    ) {
        let message: &[u8] = b"MSH|^~\\&|A|B|C|D|20200101||ORU^R01|1|P|2.5\rPID|1||M1^^^H~M2||DOE^JANE||19800214|F\rOBX|1|TX|c^d||Seen by Dr. Ann Lee on 2020-01-02||||||F\r";
        let mut input = message.repeat(2 * CHUNK_MESSAGES + 9);
        for (at, b) in edits {
            let i = ((input.len() - 1) as f64 * at) as usize;
            input[i] = b;
        }
        let config = Config::builtin(ProfileName::SafeHarbor);
        let deid = Hl7Deid::new(&config).unwrap();
        let e = engine(1, &config);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let seq = deid.deidentify(e, input.as_slice(), &mut a, &mut Tally::default());
        let par = deid.deidentify_with_threads(e, input.as_slice(), &mut b, &mut Tally::default(), 3);
        match (seq, par) {
            (Ok(()), Ok(())) => proptest::prop_assert_eq!(a, b),
            (Err(x), Err(y)) => proptest::prop_assert_eq!(x.to_string(), y.to_string()),
            (x, y) => proptest::prop_assert!(false, "sequential {:?}, threaded {:?}", x.err().map(|e| e.to_string()), y.err().map(|e| e.to_string())),
        }
    }
}
