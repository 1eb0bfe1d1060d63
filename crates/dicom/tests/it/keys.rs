//! Same key → same output; different key → different pseudonyms; one study keeps one study
//! UID across files; the shifted profile keeps a patient's date intervals.

use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, ProfileName};

use crate::common::*;

const MR: [&str; 3] = [
    "dicomdirtests_98892003_MR1_4919.dcm",
    "dicomdirtests_98892003_MR2_4950.dcm",
    "dicomdirtests_98892003_MR700_4467.dcm",
];

#[test]
fn same_key_same_output_other_key_other_pseudonyms() {
    let d = deid(ProfileName::SafeHarbor);
    let input = data("MR_small.dcm");
    let a = run(&d, &engine(1), &input);
    let b = run(&d, &engine(1), &input);
    assert_eq!(a, b);
    let c = run(&d, &engine(2), &input);
    let (oa, _) = parse(&a);
    let (oc, _) = parse(&c);
    for (g, e) in [(0x0010, 0x0020), (0x0020, 0x000D), (0x0008, 0x0018)] {
        let (x, y) = (top_string(&oa, g, e), top_string(&oc, g, e));
        assert!(
            x.is_some() && x != y,
            "({g:04X},{e:04X}) same under two keys"
        );
    }
}

#[test]
fn one_study_one_uid_across_files() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(5);
    let ins: Vec<_> = MR.iter().map(|n| parse(&data(n)).0).collect();
    let outs: Vec<_> = MR.iter().map(|n| parse(&run(&d, &e, &data(n)))).collect();
    let get = |o: &dicom_object::InMemDicomObject, g, el| top_string(o, g, el).unwrap();
    // The relation between UIDs is kept: equal stays equal, different stays different.
    for (g, el) in [
        (0x0020, 0x000D),
        (0x0020, 0x000E),
        (0x0008, 0x0018),
        (0x0010, 0x0020),
    ] {
        for i in 0..3 {
            for j in 0..3 {
                let same_in = get(&ins[i], g, el) == get(&ins[j], g, el);
                let same_out = get(&outs[i].0, g, el) == get(&outs[j].0, g, el);
                assert_eq!(same_in, same_out, "({g:04X},{el:04X}) files {i},{j}");
            }
        }
    }
    for (i, (o, meta)) in outs.iter().enumerate() {
        let sop = get(o, 0x0008, 0x0018);
        assert!(sop.starts_with("2.25."));
        assert_eq!(
            meta.as_ref()
                .unwrap()
                .media_storage_sop_instance_uid
                .trim_end_matches('\0'),
            sop,
            "file {i}"
        );
        assert_ne!(sop, get(&ins[i], 0x0008, 0x0018));
    }
    // Across runs with the same key.
    let again = parse(&run(&d, &engine(5), &data(MR[0]))).0;
    assert_eq!(get(&again, 0x0020, 0x000D), get(&outs[0].0, 0x0020, 0x000D));
}

fn days(da: &str) -> i64 {
    let y: i32 = da[..4].parse().unwrap();
    let m: u8 = da[4..6].parse().unwrap();
    let d: u8 = da[6..8].parse().unwrap();
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
        .unwrap()
        .to_julian_day() as i64
}

#[test]
fn shifted_keeps_intervals_and_limited_keeps_dates() {
    let e = engine(3);
    let input = data("ctbrain1.dcm");
    let (a, _) = parse(&input);
    let shifted = parse(&run(&deid(ProfileName::Shifted), &e, &input)).0;
    let dates = [
        (0x0008, 0x0020),
        (0x0008, 0x0021),
        (0x0008, 0x0023),
        (0x0010, 0x0030),
    ];
    let mut offsets = Vec::new();
    for (g, el) in dates {
        if let (Some(x), Some(y)) = (top_string(&a, g, el), top_string(&shifted, g, el))
            && x.len() == 8
        {
            assert_eq!(y.len(), 8, "({g:04X},{el:04X})");
            offsets.push(days(&y) - days(&x));
        }
    }
    assert!(offsets.len() >= 2, "{offsets:?}");
    let other = parse(&run(&deid(ProfileName::Shifted), &engine(4), &input)).0;
    assert_ne!(
        top_string(&other, 0x0008, 0x0020),
        top_string(&shifted, 0x0008, 0x0020),
        "another key, another shift"
    );
    assert!(
        offsets.iter().all(|o| *o == offsets[0] && *o != 0),
        "{offsets:?}"
    );
    let lds = parse(&run(&deid(ProfileName::LimitedDataSet), &e, &input)).0;
    for (g, el) in dates {
        assert_eq!(top_string(&a, g, el), top_string(&lds, g, el));
    }
    assert_eq!(
        top_string(&lds, 0x0028, 0x0303).as_deref(),
        Some("UNMODIFIED")
    );
    // Safe Harbor: year only, as YYYY0101.
    let sh = parse(&run(&deid(ProfileName::SafeHarbor), &e, &input)).0;
    let sd = top_string(&sh, 0x0008, 0x0020).unwrap();
    assert!(sd.ends_with("0101") && sd[..4] == top_string(&a, 0x0008, 0x0020).unwrap()[..4]);
}

#[test]
fn user_rules_win_and_options_apply() {
    let cfg = Config::from_toml(
        r#"
profile = "safe-harbor"
[dicom]
options = ["retain-uids", "clean-descriptors"]
rules = [
  { select = "(0008,0070)", action = "remove" },
  { select = "PatientName", action = "pseudonym" },
  { select = "00181020", action = "keep" },
]
"#,
    )
    .unwrap();
    let d = DicomDeid::new(&cfg).unwrap();
    let e = engine(4);
    let input = data("MR_small.dcm");
    let (a, _) = parse(&input);
    let (b, _) = parse(&run(&d, &e, &input));
    assert_eq!(top_string(&b, 0x0008, 0x0070), None);
    let name = top_string(&b, 0x0010, 0x0010).unwrap();
    assert!(!name.is_empty() && Some(&name) != top_string(&a, 0x0010, 0x0010).as_ref());
    assert_eq!(
        top_string(&a, 0x0020, 0x000D),
        top_string(&b, 0x0020, 0x000D)
    );
    let codes: Vec<String> = walk(&b)
        .into_iter()
        .filter(|s| s.path == [0x0012_0064, 0x0008_0100])
        .flat_map(|s| s.strings)
        .collect();
    assert!(
        codes.contains(&"113100".to_string())
            && codes.contains(&"113110".to_string())
            && codes.contains(&"113105".to_string()),
        "{codes:?}"
    );
    let bad = Config::from_toml("[dicom]\noptions = [\"retain-everything\"]\n").unwrap();
    let err = DicomDeid::new(&bad).unwrap_err().to_string();
    assert!(err.contains("dicom.options[0]"), "{err}");
    let bad =
        Config::from_toml("[dicom]\nrules = [ { select = \"PatientNmae\", action = \"keep\" } ]\n")
            .unwrap();
    assert!(
        DicomDeid::new(&bad)
            .unwrap_err()
            .to_string()
            .contains("dicom.rules[0]")
    );
}

#[test]
fn private_tags_removed_unless_safe_and_sequences_recursed() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(6);
    for name in ["nested_priv_SQ.dcm", "ctbrain1.dcm", "MR_small.dcm"] {
        let (b, _) = parse(&run(&d, &e, &data(name)));
        assert!(
            walk(&b)
                .iter()
                .all(|s| s.path.iter().all(|t| (t >> 16) & 1 == 0)),
            "{name}: private tag left"
        );
    }
    // SR: the observer names inside sequences are replaced, the structure kept.
    let input = data("test-SR.dcm");
    let (a, _) = parse(&input);
    let (b, _) = parse(&run(&d, &e, &input));
    let count = |o: &dicom_object::InMemDicomObject, tag: u32| {
        walk(o)
            .iter()
            .filter(|s| s.path.last() == Some(&tag))
            .count()
    };
    assert_eq!(count(&a, 0x0040_A730), count(&b, 0x0040_A730));
    let names_in: Vec<String> = walk(&a)
        .into_iter()
        .filter(|s| s.vr == dicom_core::VR::PN)
        .flat_map(|s| s.strings)
        .filter(|s| !s.is_empty())
        .collect();
    let names_out: Vec<String> = walk(&b)
        .into_iter()
        .filter(|s| s.vr == dicom_core::VR::PN)
        .flat_map(|s| s.strings)
        .collect();
    assert!(!names_in.is_empty());
    assert!(names_in.iter().all(|n| !names_out.contains(n)));
}
