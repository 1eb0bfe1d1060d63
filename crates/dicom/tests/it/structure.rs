//! Output parses again with the same structure; transfer syntaxes are kept; pixel flags.

use phiguard_rules::{ProfileName, Tally};

use crate::common::*;

#[test]
fn round_trip_keeps_structure_and_transfer_syntax() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(8);
    for name in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "rtstruct.dcm",
        "test-SR.dcm",
    ] {
        let input = data(name);
        let out = run(&d, &e, &input);
        let (a, ma) = parse(&input);
        let (b, mb) = parse(&out);
        assert_eq!(ma.is_some(), mb.is_some(), "{name}");
        if let (Some(x), Some(y)) = (&ma, &mb) {
            assert_eq!(x.transfer_syntax(), y.transfer_syntax(), "{name}");
            assert_eq!(
                x.media_storage_sop_class_uid(),
                y.media_storage_sop_class_uid()
            );
        }
        // Sequences keep their item structure unless the profile removes them.
        let seqs = |o: &dicom_object::InMemDicomObject| {
            walk(o)
                .into_iter()
                .filter(|s| s.vr == dicom_core::VR::SQ)
                .count()
        };
        assert!(seqs(&b) >= 1 || seqs(&a) == 0, "{name}");
        // De-identifying twice changes nothing more than the first pass (idempotent markers,
        // same pseudonyms for already pseudonymised values are not required, but the
        // structure must hold).
        let again = run(&d, &e, &out);
        let (c, _) = parse(&again);
        assert_eq!(walk(&b).len(), walk(&c).len(), "{name}");
    }
}

#[test]
fn flags_burned_in_pixels_without_touching_them() {
    let d = deid(ProfileName::SafeHarbor);
    let e = engine(8);
    let mut t = Tally::default();
    // An original MR image, not flagged.
    let out = d
        .deidentify_bytes(&e, &data("dicomdirtests_98892003_MR1_4919.dcm"), &mut t)
        .unwrap();
    assert_eq!(out.pixel_flag, None);
    let Some(files) = corpus() else { return };
    let mut flagged = 0;
    for p in files {
        let input = std::fs::read(&p).unwrap();
        let (obj, _) = parse(&input);
        let burned =
            top_string(&obj, 0x0028, 0x0301).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
        let us = top_string(&obj, 0x0008, 0x0060).as_deref() == Some("US");
        let flag = d.pixel_flag(&input).unwrap();
        if burned || us {
            assert!(flag.is_some(), "{} not flagged", p.display());
        }
        flagged += usize::from(flag.is_some());
    }
    assert!(flagged >= 2);
    let n: u64 = t
        .notes
        .iter()
        .filter(|(k, _)| k.starts_with("dicom_pixels_flagged"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(n, 0);
}

#[test]
fn sniff_recognises_dicom() {
    assert!(phiguard_dicom::sniff(&data("MR_small.dcm")[..200]));
    assert!(phiguard_dicom::sniff(&data("rtstruct.dcm")[..64]));
    assert!(!phiguard_dicom::sniff(b"MSH|^~\\&|"));
    assert!(!phiguard_dicom::sniff(b"{\"resourceType\":\"Patient\"}"));
}

#[test]
fn ms_anonymizer_expected_attributes_are_deidentified_too() {
    // Every attribute the Microsoft anonymizer removed or emptied is removed, emptied or
    // replaced by ours (ours keeps some as pseudonyms, dummy values or the year).
    let input = data("I290.dcm");
    let expected = data("I290.expected-default-config.dcm");
    let out = run(&deid(ProfileName::SafeHarbor), &engine(1), &input);
    let (a, _) = parse(&input);
    let (x, _) = parse(&expected);
    let (b, _) = parse(&out);
    let mut checked = 0;
    for el in a.iter() {
        use dicom_core::header::Header;
        let t = el.tag();
        let ms = x.get(t).map(|e| {
            e.value()
                .primitive()
                .map(|v| v.to_str().trim().is_empty())
                .unwrap_or(false)
        });
        let ms_cleared = ms.is_none() || ms == Some(true);
        if !ms_cleared || el.vr() == dicom_core::VR::SQ {
            continue;
        }
        let orig = top_string(&a, t.group(), t.element()).unwrap_or_default();
        if orig.is_empty() {
            continue;
        }
        let ours = top_string(&b, t.group(), t.element());
        let year_only = el.vr() == dicom_core::VR::DA && orig.ends_with("0101");
        assert!(
            ours.as_deref() != Some(orig.as_str()) || year_only,
            "{t} kept"
        );
        checked += 1;
    }
    assert!(checked > 5, "{checked}");
}

#[test]
fn kept_overlays_are_flagged() {
    let Some(files) = corpus() else { return };
    let Some(overlay) = files
        .iter()
        .find(|p| p.to_string_lossy().contains("examples_overlay"))
    else {
        eprintln!("note: examples_overlay.dcm absent");
        return;
    };
    let input = std::fs::read(overlay).unwrap();
    let cfg =
        phiguard_rules::Config::from_toml("[dicom]\noptions = [\"clean-graphics\"]\n").unwrap();
    let d = phiguard_dicom::DicomDeid::new(&cfg).unwrap();
    let mut t = Tally::default();
    let out = d.deidentify_bytes(shared_engine(), &input, &mut t).unwrap();
    let (b, _) = parse(&out.bytes);
    assert!(
        b.get(dicom_core::Tag(0x6000, 0x3000)).is_some(),
        "overlay kept under clean-graphics"
    );
    assert!(out.pixel_flag.is_some());
    let plain = safe_harbor()
        .deidentify_bytes(shared_engine(), &input, &mut t)
        .unwrap();
    assert!(
        parse(&plain.bytes)
            .0
            .get(dicom_core::Tag(0x6000, 0x3000))
            .is_none(),
        "overlay removed by the Basic Profile"
    );
}
