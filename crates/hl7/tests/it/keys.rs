//! Same key, same output; another key, other pseudonyms and shifts; a patient's dates keep
//! their intervals under `shifted`; the patient key is configurable.

use phiguard_hl7::parse_segments;
use phiguard_rules::{Config, ProfileName};

use crate::{fixtures, run, run_with};

const TWO_VISITS: &[u8] = b"MSH|^~\\&|A|B|C|D|20200301080000||ADT^A01|1|P|2.5\rEVN|A01|20200301080000\rPID|1||PAT-1^^^H^MR||DOE^JANE||19800214|F\rPV1|1|I|||||||||||||||||V1|||||||||||||||||||||||||20200301080000|20200310120000\rMSH|^~\\&|A|B|C|D|20200401080000||ADT^A03|2|P|2.5\rPID|1||PAT-1^^^H^MR||DOE^JANE||19800214|F\rPV1|1|I|||||||||||||||||V2|||||||||||||||||||||||||20200401080000|20200415120000\r";

fn days(d: &str) -> i32 {
    let y: i32 = d[..4].parse().unwrap();
    let m: u8 = d[4..6].parse().unwrap();
    let dd: u8 = d[6..8].parse().unwrap();
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), dd)
        .unwrap()
        .to_julian_day()
}

#[test]
fn same_key_same_output_other_key_other_output() {
    for path in fixtures() {
        let input = std::fs::read(&path).unwrap();
        for p in [ProfileName::SafeHarbor, ProfileName::Shifted] {
            let (a, _) = run(p, 1, &input);
            let (b, _) = run(p, 1, &input);
            assert_eq!(a, b, "{}", path.display());
        }
    }
    let (a, _) = run(ProfileName::Shifted, 1, TWO_VISITS);
    let (b, _) = run(ProfileName::Shifted, 2, TWO_VISITS);
    let (sa, sb) = (
        parse_segments(a.as_slice()).unwrap(),
        parse_segments(b.as_slice()).unwrap(),
    );
    assert_ne!(
        sa[2].field(3),
        sb[2].field(3),
        "pseudonyms differ between keys"
    );
    assert_ne!(
        sa[3].field(44),
        sb[3].field(44),
        "shifts differ between keys"
    );
}

#[test]
fn shifted_dates_keep_intervals_and_pseudonyms_link_messages() {
    let (out, _) = run(ProfileName::Shifted, 3, TWO_VISITS);
    let segs = parse_segments(out.as_slice()).unwrap();
    let val = |i: usize, f: usize| String::from_utf8(segs[i].field(f).unwrap().to_vec()).unwrap();
    let original = [("20200301", "20200310"), ("20200401", "20200415")];
    let shifted = [(val(3, 44), val(3, 45)), (val(6, 44), val(6, 45))];
    for ((a, b), (x, y)) in original.iter().zip(&shifted) {
        assert_ne!(*a, &x[..8]);
        assert_eq!(days(b) - days(a), days(y) - days(x));
        assert!(x.ends_with("080000") && y.ends_with("120000"), "time kept");
    }
    assert_eq!(
        days(&shifted[1].0) - days(&shifted[0].0),
        days("20200401") - days("20200301")
    );
    assert_eq!(
        days(&val(0, 7)) - days(&val(3, 44)),
        0,
        "MSH-7 shifted with the patient"
    );
    assert_eq!(val(2, 3), val(5, 3), "same MRN, same pseudonym");
    assert_ne!(val(3, 19), val(6, 19));
}

#[test]
fn the_patient_key_is_configurable() {
    let mut config = Config::builtin(ProfileName::Shifted);
    let first = &TWO_VISITS[..TWO_VISITS.iter().rposition(|&b| b == b'M').unwrap()];
    let text = String::from_utf8(first.to_vec()).unwrap();
    let input_a = text.replace("|1||PAT-1^", "|1|SAME|ID-A^").into_bytes();
    let input_b = text.replace("|1||PAT-1^", "|1|SAME|ID-B^").into_bytes();
    let (input_a, input_b) = (input_a.as_slice(), input_b.as_slice());
    let shift = |config: &Config, input: &[u8]| {
        let (out, _) = run_with(config, 4, input);
        parse_segments(out.as_slice()).unwrap()[3]
            .field(44)
            .unwrap()
            .to_vec()
    };
    assert_ne!(
        shift(&config, input_a),
        shift(&config, input_b),
        "PID-3 differs: different shifts"
    );
    config.hl7.patient = Some("PID-2.1".into());
    assert_eq!(
        shift(&config, input_a),
        shift(&config, input_b),
        "PID-2 equal: same shift"
    );
    config.hl7.patient = Some("*-*".into());
    assert!(phiguard_hl7::Hl7Deid::new(&config).is_err());
}

/// The per-input caches (pseudonyms, text the detector found nothing in) and the buffers kept
/// from input to input on a thread never carry one key's answers into another's run: the same
/// inputs alternated between keys give each key's own output, and a value repeated within an
/// input gets the same pseudonym each time.
#[test]
fn caches_do_not_leak_between_keys_or_inputs() {
    let config = Config::builtin(ProfileName::SafeHarbor);
    let deid = phiguard_hl7::Hl7Deid::new(&config).unwrap();
    let run_on = |key: u8, input: &[u8]| {
        let mut out = Vec::new();
        let mut tally = phiguard_rules::Tally::default();
        deid.deidentify(crate::engine(key, &config), input, &mut out, &mut tally)
            .unwrap();
        (out, tally)
    };
    let (a1, ta1) = run_on(4, TWO_VISITS);
    let (b1, tb1) = run_on(5, TWO_VISITS);
    let (a2, ta2) = run_on(4, TWO_VISITS);
    let (b2, tb2) = run_on(5, TWO_VISITS);
    assert_eq!((&a1, &ta1), (&a2, &ta2));
    assert_eq!((&b1, &tb1), (&b2, &tb2));
    assert_ne!(a1, b1);
    let segs = parse_segments(a1.as_slice()).unwrap();
    let pids: Vec<_> = segs.iter().filter(|s| &s.id == b"PID").collect();
    assert_eq!(pids.len(), 2);
    assert_eq!(
        pids[0].field(3),
        pids[1].field(3),
        "one pseudonym per value"
    );
    // Another thread (fresh buffers) agrees.
    let (c, tc) = std::thread::scope(|s| s.spawn(|| run_on(4, TWO_VISITS)).join().unwrap());
    assert_eq!((&a1, &ta1), (&c, &tc));
}

/// An engine with the config's own text profile (the shared test engines keep the default).
fn engine_from(config: &Config) -> phiguard_rules::Engine {
    let today = time::Date::from_calendar_date(2026, time::Month::December, 4).unwrap();
    phiguard_rules::Engine::new(
        phiguard_deid::DeidKey::from_bytes([9; 32]),
        phiguard_rules::EngineOptions {
            today,
            ..config.engine_options()
        },
    )
}

/// A free-text value is de-identified once per patient and input and the answer reused: the
/// reuse must never hand one patient's answer (their date shift) to another.
#[test]
fn text_answers_are_not_shared_between_patients() {
    use phiguard_rules::Tally;
    // Under `shifted`, dates inside free text move by the patient's offset too.
    let config = Config::builtin(ProfileName::Shifted);
    let engine = engine_from(&config);
    let note = "Seen on 2020-03-04 for a follow-up visit.";
    let message = |mrn: &str| {
        format!(
            "MSH|^~\\&|A|B|C|D|20200301080000||ORU^R01|1|P|2.5\rPID|1||{mrn}^^^H^MR||DOE^JANE||19800214|F\rNTE|1||{note}\rOBX|1|DT|1^Visit^L||20200304\r"
        )
    };
    let input = [message("PAT-1"), message("PAT-2"), message("PAT-1")].concat();
    let deid = phiguard_hl7::Hl7Deid::new(&config).unwrap();
    let mut out = Vec::new();
    deid.deidentify(&engine, input.as_bytes(), &mut out, &mut Tally::default())
        .unwrap();
    let segs = parse_segments(out.as_slice()).unwrap();
    let nte = |i: usize| String::from_utf8(segs[i].field(3).unwrap().to_vec()).unwrap();
    let expected = |mrn: &str| {
        let (text, counts) = engine.text(note, Some(&engine.patient(mrn))).unwrap();
        assert!(!counts.is_empty(), "the date is found");
        text.unwrap()
    };
    let (one, two) = (expected("PAT-1"), expected("PAT-2"));
    assert_ne!(one, two, "two patients, two date shifts");
    assert_eq!(nte(2), one);
    assert_eq!(nte(6), two);
    assert_eq!(nte(10), one);
    // The date in the text moved with the patient's typed dates: the same day in both.
    for (n, o) in [(2, 3), (6, 7), (10, 11)] {
        let typed = String::from_utf8(segs[o].field(5).unwrap().to_vec()).unwrap();
        let iso = format!("{}-{}-{}", &typed[..4], &typed[4..6], &typed[6..8]);
        assert!(nte(n).contains(&iso), "{} vs {typed}", nte(n));
    }
}

/// Under `limited-data-set`, dates are kept in free text as in typed fields; names are not.
#[test]
fn limited_data_set_keeps_dates_in_text_too() {
    use phiguard_rules::Tally;
    let config = Config::builtin(ProfileName::LimitedDataSet);
    let engine = engine_from(&config);
    let input = "MSH|^~\\&|A|B|C|D|20200301080000||ORU^R01|1|P|2.5\rPID|1||PAT-1^^^H^MR||DOE^JANE||19800214|F\rNTE|1||Seen by Dr. Ann Lee on 2020-03-04 for a follow-up visit.\rOBX|1|DT|1^Visit^L||20200304\r";
    let deid = phiguard_hl7::Hl7Deid::new(&config).unwrap();
    let mut out = Vec::new();
    deid.deidentify(&engine, input.as_bytes(), &mut out, &mut Tally::default())
        .unwrap();
    let segs = parse_segments(out.as_slice()).unwrap();
    let nte = String::from_utf8(segs[2].field(3).unwrap().to_vec()).unwrap();
    assert!(nte.contains("2020-03-04"), "{nte}");
    assert!(!nte.contains("Ann Lee"), "{nte}");
    assert_eq!(segs[3].field(5).unwrap(), b"20200304");
}
