//! Keys: same key → same output; another key → other pseudonyms and shifts; the shifted profile
//! keeps one patient's intervals; ids and shifts follow the cross-format convention.

use phiguard_rules::{Action, Config, DateFormat, Kind, Outcome, ProfileName};
use serde_json::Value;
use time::Date;

use super::{data_dir, engine, run_profile};

fn bundle() -> Vec<u8> {
    std::fs::read(data_dir().join("ms-samples/synthea-bundle-with-notes.json")).unwrap()
}

fn resources(v: &Value) -> Vec<&Value> {
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect()
}

#[test]
fn same_key_same_output_other_key_other_pseudonyms() {
    let input = bundle();
    let a = run_profile(ProfileName::Shifted, 1, &input);
    let b = run_profile(ProfileName::Shifted, 1, &input);
    let c = run_profile(ProfileName::Shifted, 2, &input);
    assert_eq!(a, b);
    let va: Value = serde_json::from_slice(&a).unwrap();
    let vc: Value = serde_json::from_slice(&c).unwrap();
    let pa = resources(&va)[0]["id"].as_str().unwrap().to_string();
    let pc = resources(&vc)[0]["id"].as_str().unwrap().to_string();
    assert_ne!(pa, pc);
    assert_ne!(
        resources(&va)[0]["birthDate"],
        resources(&vc)[0]["birthDate"]
    );
}

fn date(s: &str) -> Date {
    let n = |a: usize, b: usize| s[a..b].parse::<u16>().unwrap();
    let month = time::Month::try_from(n(5, 7) as u8).unwrap();
    Date::from_calendar_date(i32::from(n(0, 4)), month, n(8, 10) as u8).unwrap()
}

#[test]
fn shifted_profile_keeps_intervals_and_the_cross_format_keys() {
    let input = bundle();
    let orig: Value = serde_json::from_slice(&input).unwrap();
    let out: Value = serde_json::from_slice(&run_profile(ProfileName::Shifted, 1, &input)).unwrap();
    let (ro, rn) = (resources(&orig), resources(&out));
    assert_eq!(ro.len(), rn.len());
    // The patient's ids, references and date shift follow the convention every format uses.
    let config = Config::builtin(ProfileName::Shifted);
    let e = engine(1, &config);
    let pid = ro[0]["id"].as_str().unwrap();
    assert_eq!(rn[0]["resourceType"], "Patient");
    assert_eq!(rn[0]["id"].as_str().unwrap(), e.id_pseudonym(pid));
    let birth = ro[0]["birthDate"].as_str().unwrap();
    let expect = e
        .apply(
            Action::DateShift,
            Kind::Date(DateFormat::Iso),
            birth,
            Some(&e.patient(pid)),
        )
        .unwrap();
    assert_eq!(
        Outcome::Replace(rn[0]["birthDate"].as_str().unwrap().to_string()),
        expect
    );
    let subject = format!("urn:uuid:{}", e.id_pseudonym(pid));
    let mut offsets = std::collections::BTreeSet::new();
    let mut periods = 0;
    for (o, n) in ro.iter().zip(&rn) {
        if let (Some(s), Some(t)) = (
            o["subject"]["reference"].as_str(),
            n["subject"]["reference"].as_str(),
        ) && s == format!("urn:uuid:{pid}")
        {
            assert_eq!(t, subject);
        }
        for key in ["period", "billablePeriod"] {
            if let (Some(os), Some(oe), Some(ns), Some(ne)) = (
                o[key]["start"].as_str(),
                o[key]["end"].as_str(),
                n[key]["start"].as_str(),
                n[key]["end"].as_str(),
            ) {
                assert_eq!(date(oe) - date(os), date(ne) - date(ns), "interval changed");
                offsets.insert((date(ns) - date(os)).whole_days());
                periods += 1;
            }
        }
    }
    assert!(periods > 10);
    assert_eq!(offsets.len(), 1, "one patient, one shift: {offsets:?}");
    assert_ne!(offsets.into_iter().next(), Some(0));
}

#[test]
fn references_and_ids_stay_consistent() {
    let input = bundle();
    let out: Value =
        serde_json::from_slice(&run_profile(ProfileName::SafeHarbor, 1, &input)).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for e in out["entry"].as_array().unwrap() {
        let id = e["resource"]["id"].as_str().unwrap();
        assert!(phiguard_rules::is_uuid(id), "UUIDs stay UUIDs");
        assert_eq!(e["fullUrl"].as_str().unwrap(), format!("urn:uuid:{id}"));
        ids.insert(id.to_string());
    }
    // Every urn:uuid reference points at an entry of the output bundle, as in the input.
    let orig: Value = serde_json::from_slice(&input).unwrap();
    let orig_ids: std::collections::BTreeSet<String> = orig["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference")
                    && let Some(id) = r.strip_prefix("urn:uuid:")
                {
                    out.push(id.to_string());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let (mut ri, mut ro) = (Vec::new(), Vec::new());
    refs(&orig, &mut ri);
    refs(&out, &mut ro);
    assert_eq!(ri.len(), ro.len());
    for (a, b) in ri.iter().zip(&ro) {
        assert_eq!(orig_ids.contains(a), ids.contains(b));
    }
}
