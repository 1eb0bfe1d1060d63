//! Safe Harbor leak test over every DICOM file of the shared corpus and the fixtures: the
//! identifying values of the input, found by structure (VR and attribute), appear nowhere in
//! the output; codes, measurements and pixel data survive.

use crate::common::*;
use dicom_core::Tag;
use dicom_core::VR;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;

fn keyword(tag: u32) -> String {
    StandardDataDictionary
        .by_tag(Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
        .map(|e| e.alias().to_string())
        .unwrap_or_default()
}

/// Identifying values of the input, by structure.
fn identifiers(input: &[u8]) -> Vec<(String, String)> {
    let (obj, _) = parse(input);
    let mut out = Vec::new();
    for s in walk(&obj) {
        let tag = *s.path.last().unwrap();
        let kw = keyword(tag);
        let private = s.path.iter().any(|t| (t >> 16) & 1 == 1);
        for v in &s.strings {
            let label = format!("{kw} {tag:08X}");
            if private {
                // Private attributes are checked by their absence (below).
                continue;
            }
            match s.vr {
                VR::PN => {
                    for part in v.split(['^', '=']).map(str::trim) {
                        if part.chars().filter(|c| c.is_alphabetic()).count() >= 4 {
                            out.push((label.clone(), part.to_string()));
                        }
                    }
                }
                VR::DA if v.len() == 8 && !v.ends_with("0101") => {
                    out.push((label.clone(), v.clone()))
                }
                VR::DT
                    if v.len() >= 8
                        && !v[..8].ends_with("0101")
                        && v[..8].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    out.push((label.clone(), v[..8].to_string()))
                }
                VR::AS
                    if v.ends_with('Y')
                        && v[..v.len() - 1].parse::<u32>().is_ok_and(|n| n >= 90)
                        && v != "090Y" =>
                {
                    out.push((label.clone(), v.clone()))
                }
                VR::UI
                    if (kw.ends_with("InstanceUID")
                        || kw == "FrameOfReferenceUID"
                        || kw == "UID")
                        && !v.starts_with("1.2.840.10008.")
                        && v.len() >= 8
                        && v.contains('.') =>
                {
                    out.push((label.clone(), v.clone()))
                }
                VR::LO | VR::SH | VR::ST | VR::LT if v.len() >= 4 => {
                    let id_like =
                        (kw.ends_with("ID") || kw.ends_with("IDs") || kw == "AccessionNumber")
                            && !kw.contains("Content")
                            && !kw.contains("Code");
                    let who = [
                        "Address",
                        "Telephone",
                        "Institution",
                        "Station",
                        "Physician",
                        "Operator",
                        "Patient",
                    ]
                    .iter()
                    .any(|w| kw.contains(w))
                        && ![
                            "PatientPosition",
                            "PatientOrientation",
                            "PatientSex",
                            "PatientSize",
                            "PatientWeight",
                            "PatientIdentityRemoved",
                        ]
                        .contains(&kw.as_str());
                    if id_like || who {
                        out.push((label.clone(), v.clone()));
                    }
                }
                _ => {}
            }
        }
    }
    // A PN value repeated verbatim as the whole value of a free-text attribute is template
    // text (`Enter text`), not a name; free text is the detector's job, tested in phiguard-detect.
    let texts: std::collections::HashSet<String> = walk(&obj)
        .into_iter()
        .filter(|s| matches!(s.vr, VR::UT | VR::LT | VR::ST))
        .flat_map(|s| s.strings)
        .collect();
    out.retain(|(_, v)| !texts.contains(v));
    out.sort();
    out.dedup();
    out
}

/// The output's text (decoded strings, our own de-identification marks excluded) and the raw
/// bytes of its non-text elements other than pixel data.
fn haystack(output: &[u8]) -> (String, Vec<u8>) {
    let (obj, meta) = parse(output);
    let mut text = String::new();
    let mut raw = Vec::new();
    if let Some(m) = meta {
        text.push_str(&m.media_storage_sop_instance_uid);
        text.push('\n');
    }
    for s in walk(&obj) {
        if s.path.first().is_some_and(|t| t >> 16 == 0x0012) {
            continue;
        }
        if s.strings.is_empty() {
            if s.path.last() != Some(&0x7FE0_0010) {
                raw.extend_from_slice(&s.bytes);
            }
        } else {
            for v in &s.strings {
                text.push_str(v);
                text.push('\n');
            }
        }
    }
    (text, raw)
}

/// `needle` in `hay` as a whole word (not inside a longer run of letters, digits or `_`).
fn contains_word(hay: &str, needle: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn check_file(name: &str, input: &[u8]) {
    let (d, e) = (safe_harbor(), shared_engine());
    let mut tally = phiguard_rules::Tally::default();
    let out = match d.deidentify_bytes(e, input, &mut tally) {
        Ok(o) => o.bytes,
        Err(err) => panic!("{name}: {err}"),
    };
    let (text, raw) = haystack(&out);
    assert!(
        walk(&parse(&out).0)
            .iter()
            .all(|s| s.path.iter().all(|t| (t >> 16) & 1 == 0)),
        "{name}: a private attribute survives"
    );
    for (label, v) in identifiers(input) {
        assert!(
            !contains_word(&text, &v),
            "{name}: {label} survives in the output text"
        );
        if v.is_ascii() && v.len() >= 5 {
            assert!(
                !raw.windows(v.len()).any(|w| w == v.as_bytes()),
                "{name}: {label} survives in binary values"
            );
        }
    }
    // What must survive: modality, class, geometry, codes and the pixels, byte for byte.
    let (a, _) = parse(input);
    let (b, _) = parse(&out);
    for (g, el) in [
        (0x0008, 0x0060),
        (0x0008, 0x0016),
        (0x0028, 0x0010),
        (0x0028, 0x0011),
        (0x0018, 0x0050),
        (0x0008, 0x0008),
    ] {
        assert_eq!(
            top_string(&a, g, el),
            top_string(&b, g, el),
            "{name}: ({g:04X},{el:04X}) changed"
        );
    }
    let pixels = |o: &dicom_object::InMemDicomObject| {
        walk(o)
            .into_iter()
            .find(|s| s.path == [0x7FE0_0010])
            .map(|s| s.bytes)
    };
    assert_eq!(pixels(&a), pixels(&b), "{name}: pixel data changed");
    let codes = |o: &dicom_object::InMemDicomObject| {
        let mut v: Vec<String> = walk(o)
            .into_iter()
            .filter(|s| {
                s.path.len() >= 2
                    && s.path[s.path.len() - 2] == 0x0040_A043
                    && s.path.last() == Some(&0x0008_0100)
            })
            .flat_map(|s| s.strings)
            .collect();
        v.sort();
        v
    };
    // Concept codes survive, except inside sequences the profile empties (Acquisition Context
    // Sequence is X/Z in Annex E).
    let (ca, cb) = (codes(&a), codes(&b));
    assert!(
        cb.iter().all(|c| ca.contains(c)),
        "{name}: concept codes changed"
    );
    assert!(cb.len() * 10 >= ca.len() * 9, "{name}: concept codes lost");
    assert_eq!(top_string(&b, 0x0012, 0x0062).as_deref(), Some("YES"));
}

#[test]
fn fixtures_do_not_leak() {
    for name in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "test-SR.dcm",
        "nested_priv_SQ.dcm",
        "rtstruct.dcm",
        "ctbrain1.dcm",
        "I290.dcm",
        "dicomdirtests_98892003_MR1_4919.dcm",
    ] {
        check_file(name, &data(name));
    }
}

#[test]
fn corpus_does_not_leak() {
    let Some(files) = corpus() else { return };
    assert!(!files.is_empty());
    for p in files {
        let input = std::fs::read(&p).unwrap();
        check_file(&p.display().to_string(), &input);
    }
}

#[test]
fn the_identifier_collector_finds_identifiers() {
    // The leak test is only as good as its collector: it must find the patient's name, id,
    // birth date and instance UIDs of a plain MR image.
    let ids = identifiers(&data("MR_small.dcm"));
    for kw in [
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "SOPInstanceUID",
        "StudyDate",
    ] {
        assert!(
            ids.iter().any(|(l, _)| l.starts_with(&format!("{kw} "))),
            "{kw} not collected: {:?}",
            ids.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
    }
}
