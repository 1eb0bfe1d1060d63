//! One key, one pseudonym and one date shift per patient across tables; another key, other
//! values; intervals kept under the `shifted` profile.

use std::collections::HashMap;

use phiguard_rules::ProfileName;
use time::Date;

use crate::{Table, config, data_dir, run};

fn table(name: &str, profile: ProfileName, key: u8) -> (Table, Table) {
    let input = std::fs::read(data_dir().join("synthea").join(format!("{name}.csv"))).unwrap();
    let (out, _) = run(&config(profile), key, Some(name), &input).unwrap();
    (
        Table::parse(std::str::from_utf8(&input).unwrap()),
        Table::parse(&out),
    )
}

fn day(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.len() < 10 {
        return None;
    }
    let y: i32 = s[..4].parse().ok()?;
    let m: u8 = s[5..7].parse().ok()?;
    let d: u8 = s[8..10].parse().ok()?;
    Some(
        Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d)
            .ok()?
            .to_julian_day(),
    )
}

#[test]
fn patient_ids_match_across_tables() {
    let (pin, pout) = table("patients", ProfileName::SafeHarbor, 1);
    let (ein, eout) = table("encounters", ProfileName::SafeHarbor, 1);
    let (cin, cout) = table("conditions", ProfileName::SafeHarbor, 1);
    let map: HashMap<&str, &str> = pin
        .column("Id")
        .into_iter()
        .zip(pout.column("Id"))
        .collect();
    assert_eq!(map.len(), pin.rows.len());
    for (k, v) in &map {
        assert_ne!(k, v);
    }
    let mut linked = 0;
    for (t_in, t_out) in [(&ein, &eout), (&cin, &cout)] {
        for (a, b) in t_in.column("PATIENT").iter().zip(t_out.column("PATIENT")) {
            assert_eq!(
                map.get(a).copied(),
                Some(b),
                "PATIENT pseudonym differs from Id's"
            );
            linked += 1;
        }
    }
    assert!(linked > 100);
    // Encounter ids: the encounter table's Id and the conditions' ENCOUNTER agree too.
    let enc: HashMap<&str, &str> = ein
        .column("Id")
        .into_iter()
        .zip(eout.column("Id"))
        .collect();
    for (a, b) in cin.column("ENCOUNTER").iter().zip(cout.column("ENCOUNTER")) {
        assert_eq!(enc.get(a).copied(), Some(b));
    }
}

#[test]
fn another_key_gives_other_values() {
    let (_, a) = table("patients", ProfileName::Shifted, 1);
    let (_, b) = table("patients", ProfileName::Shifted, 2);
    let (_, a2) = table("patients", ProfileName::Shifted, 1);
    assert_eq!(a.rows, a2.rows, "same key, same output");
    for (x, y) in a.column("Id").iter().zip(b.column("Id")) {
        assert_ne!(x, &y);
    }
    let differ = a
        .column("BIRTHDATE")
        .iter()
        .zip(b.column("BIRTHDATE"))
        .filter(|(x, y)| !x.is_empty() && x != &y)
        .count();
    assert!(differ > 0, "date shifts do not depend on the key");
}

#[test]
fn shifted_profile_keeps_intervals_and_one_offset_per_patient() {
    let (pin, pout) = table("patients", ProfileName::Shifted, 5);
    let (ein, eout) = table("encounters", ProfileName::Shifted, 5);
    let mut offsets: HashMap<String, i32> = HashMap::new();
    let (ci, co) = (ein.col("START").unwrap(), eout.col("START").unwrap());
    let pi = ein.col("PATIENT").unwrap();
    for (ri, ro) in ein.rows.iter().zip(&eout.rows) {
        let (Some(a), Some(b)) = (day(&ri[ci]), day(&ro[co])) else {
            panic!("START not a date");
        };
        let off = b - a;
        assert_ne!(off, 0);
        let prev = offsets.entry(ri[pi].clone()).or_insert(off);
        assert_eq!(*prev, off, "one patient, two offsets");
        // The time of day is kept.
        assert_eq!(ri[ci].get(10..), ro[co].get(10..));
    }
    // The same offset for the birth date in patients.csv.
    let mut checked = 0;
    for (ri, ro) in pin.rows.iter().zip(&pout.rows) {
        let id = &ri[pin.col("Id").unwrap()];
        let b = pin.col("BIRTHDATE").unwrap();
        if let (Some(off), Some(a), Some(o)) = (offsets.get(id), day(&ri[b]), day(&ro[b])) {
            assert_eq!(
                o - a,
                *off,
                "birth date shifted differently from encounters"
            );
            checked += 1;
        }
    }
    assert!(checked > 5);
}

#[test]
fn identifiers_get_the_format_independent_pseudonym() {
    // The engine's identifier pseudonym is keyed by the value alone: the CSV Id of a patient is
    // what a FHIR Patient.id or an HL7 PID-3 with the same value becomes under the same key.
    let (pin, pout) = table("patients", ProfileName::SafeHarbor, 8);
    let engine = crate::engine_for(8, &config(ProfileName::SafeHarbor));
    for (a, b) in pin.column("Id").iter().zip(pout.column("Id")) {
        assert_eq!(engine.id_pseudonym(a), b);
    }
}
