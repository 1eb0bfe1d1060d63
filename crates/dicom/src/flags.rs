//! Files whose pixels may carry burned-in text. Pixels are never altered: such files are
//! flagged for review with a reason. The heuristics follow PS3.15 E.3.1 (Clean Pixel Data) and
//! the graylist/blacklist ideas of pydicom deid's `deid.dicom` recipe (MIT): the object says so
//! (BurnedInAnnotation YES), or it is of a kind that usually does (ultrasound, secondary and
//! screen captures, scanned or encapsulated documents, dose reports, derived CT/MR saves).

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    let v = e.value().primitive()?;
    let s = v.to_multi_str().join("\\");
    Some(s.trim_matches([' ', '\0']).to_ascii_uppercase())
}

/// Why the pixels of `obj` may show identifying text, or `None`.
pub fn burned_in_reason(obj: &InMemDicomObject) -> Option<&'static str> {
    let burned = text(obj, Tag(0x0028, 0x0301));
    if burned.as_deref() == Some("YES") {
        return Some("burned_in_annotation_yes");
    }
    let has_pixels = obj.get(Tag(0x7FE0, 0x0010)).is_some()
        || obj.get(Tag(0x7FE0, 0x0008)).is_some()
        || obj.get(Tag(0x7FE0, 0x0009)).is_some();
    let sop_class = text(obj, Tag(0x0008, 0x0016)).unwrap_or_default();
    if sop_class.starts_with("1.2.840.10008.5.1.4.1.1.104.")
        || obj.get(Tag(0x0042, 0x0011)).is_some()
    {
        return Some("encapsulated_document");
    }
    if !has_pixels {
        return None;
    }
    let modality = text(obj, Tag(0x0008, 0x0060)).unwrap_or_default();
    let image_type = text(obj, Tag(0x0008, 0x0008));
    let series = text(obj, Tag(0x0008, 0x103E)).unwrap_or_default();
    if modality == "US"
        || modality == "IVUS"
        || sop_class.starts_with("1.2.840.10008.5.1.4.1.1.6.")
        || sop_class.starts_with("1.2.840.10008.5.1.4.1.1.3.")
    {
        return Some("ultrasound");
    }
    if matches!(modality.as_str(), "SC" | "OT" | "DOC")
        || sop_class.starts_with("1.2.840.10008.5.1.4.1.1.7")
        || obj.get(Tag(0x0008, 0x0064)).is_some()
    {
        return Some("secondary_capture_or_document");
    }
    if matches!(modality.as_str(), "XC" | "ES" | "GM") {
        return Some("visible_light_photograph");
    }
    let ct_mr = matches!(modality.as_str(), "CT" | "MR");
    if let Some(t) = &image_type
        && ct_mr
        && ["SECONDARY", "SCREEN", "SAVE", "DERIVED"]
            .iter()
            .any(|w| t.split('\\').any(|v| v.contains(w)))
    {
        return Some("derived_or_screen_save");
    }
    if ct_mr && image_type.as_deref().is_none_or(str::is_empty) {
        return Some("image_type_missing");
    }
    if [
        "DOSE REPORT",
        "SAVE",
        "PATIENT PROTOCOL",
        "PACS NOMINATION",
        "SCREEN",
    ]
    .iter()
    .any(|w| series.contains(w))
    {
        return Some("dose_report_or_screen_save");
    }
    None
}
