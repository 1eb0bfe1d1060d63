//! Annex E options on a synthetic object: retain-safe-private keeps only allow-listed private
//! attributes; free text inside an SR content tree goes through the detector; the shifted and
//! safe-harbor profiles treat birth dates over 89 as Safe Harbor requires.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, ProfileName};

use crate::common::*;

fn el(g: u16, e: u16, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(Tag(g, e), vr, PrimitiveValue::from(v))
}

fn synthetic() -> Vec<u8> {
    let text_item = InMemDicomObject::from_element_iter([
        el(0x0040, 0xA040, VR::CS, "TEXT"),
        el(
            0x0040,
            0xA160,
            VR::UT,
            "Seen by Dr. Maria Lopez on 03/14/2021. Hemoglobin 13.2 g/dL.",
        ),
    ]);
    let name_item = InMemDicomObject::from_element_iter([
        el(0x0040, 0xA040, VR::CS, "PNAME"),
        el(0x0040, 0xA123, VR::PN, "Quintanilla^Rosalind"),
    ]);
    let obj = InMemDicomObject::from_element_iter([
        el(0x0008, 0x0016, VR::UI, "1.2.840.10008.5.1.4.1.1.88.33"),
        el(0x0008, 0x0018, VR::UI, "1.2.3.4.5.6.7.8.9"),
        el(0x0008, 0x0060, VR::CS, "SR"),
        el(0x0010, 0x0010, VR::PN, "Quintanilla^Rosalind"),
        el(0x0010, 0x0020, VR::LO, "MRN-778812"),
        el(0x0010, 0x0030, VR::DA, "19290612"),
        el(0x0010, 0x1010, VR::AS, "096Y"),
        el(0x0019, 0x0010, VR::LO, "SIEMENS MR HEADER"),
        el(0x0019, 0x100C, VR::IS, "1000"),
        el(0x0019, 0x1001, VR::LO, "Rosalind's scan"),
        el(0x0029, 0x0010, VR::LO, "ACME PRIVATE"),
        el(0x0029, 0x1001, VR::LO, "Quintanilla"),
        DataElement::new(
            Tag(0x0040, 0xA730),
            VR::SQ,
            DataSetSequence::new(vec![text_item, name_item], Length::UNDEFINED),
        ),
    ]);
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.88.33")
        .media_storage_sop_instance_uid("1.2.3.4.5.6.7.8.9")
        .transfer_syntax("1.2.840.10008.1.2.1")
        .implementation_class_uid("1.2.3.4")
        .build()
        .unwrap();
    let mut out = Vec::new();
    obj.with_exact_meta(meta).write_all(&mut out).unwrap();
    out
}

fn with(options: &str, profile: &str) -> DicomDeid {
    let cfg = Config::from_toml(&format!(
        "profile = \"{profile}\"\n[dicom]\noptions = [{options}]\n"
    ))
    .unwrap();
    DicomDeid::new(&cfg).unwrap()
}

#[test]
fn safe_private_keeps_only_the_allow_list() {
    let input = synthetic();
    let (out, _) = parse(&run(
        &with("\"retain-safe-private\"", "safe-harbor"),
        shared_engine(),
        &input,
    ));
    assert_eq!(top_string(&out, 0x0019, 0x100C).as_deref(), Some("1000"));
    assert_eq!(
        top_string(&out, 0x0019, 0x0010).as_deref(),
        Some("SIEMENS MR HEADER")
    );
    for (g, e) in [(0x0019, 0x1001), (0x0029, 0x0010), (0x0029, 0x1001)] {
        assert_eq!(top_string(&out, g, e), None, "({g:04X},{e:04X})");
    }
    let (plain, _) = parse(&run(safe_harbor(), shared_engine(), &input));
    assert!(
        walk(&plain)
            .iter()
            .all(|s| s.path.iter().all(|t| (t >> 16) & 1 == 0))
    );
}

#[test]
fn sr_text_names_and_old_patients() {
    let input = synthetic();
    let (out, _) = parse(&run(safe_harbor(), shared_engine(), &input));
    let all: Vec<String> = walk(&out).into_iter().flat_map(|s| s.strings).collect();
    let joined = all.join("\n");
    for leaked in [
        "Quintanilla",
        "Rosalind",
        "Lopez",
        "03/14/2021",
        "MRN-778812",
        "19290612",
        "096Y",
    ] {
        assert!(!joined.contains(leaked), "{leaked} survives");
    }
    assert!(
        joined.contains("Hemoglobin 13.2 g/dL"),
        "clinical text lost"
    );
    // Born over 89 years ago: the birth date goes entirely, the age becomes 090Y.
    assert_eq!(top_string(&out, 0x0010, 0x0030).as_deref(), Some(""));
    assert_eq!(top_string(&out, 0x0010, 0x1010).as_deref(), Some("090Y"));
    let (shifted, _) = parse(&run(&deid(ProfileName::Shifted), shared_engine(), &input));
    assert_eq!(top_string(&shifted, 0x0010, 0x0030).as_deref(), Some(""));
    let (lds, _) = parse(&run(
        &deid(ProfileName::LimitedDataSet),
        shared_engine(),
        &input,
    ));
    assert_eq!(
        top_string(&lds, 0x0010, 0x0030).as_deref(),
        Some("19290612")
    );
    assert_eq!(top_string(&lds, 0x0010, 0x0010).as_deref(), Some(""));
}
