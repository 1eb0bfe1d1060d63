//! The built-in profiles as ordinary rules (they follow the user's rules; the first match wins).

use phiguard_rules::ProfileName;

/// Rules every profile starts with: direct identifiers.
const DIRECT: &[(&str, &str)] = &[
    (
        "extension(http://hl7.org/fhir/StructureDefinition/geolocation)",
        "remove",
    ),
    (
        "extension(http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName)",
        "remove",
    ),
    ("HumanName", "remove"),
    ("ContactPoint", "remove"),
    ("Address.line", "remove"),
    ("Address.text", "remove"),
];

/// Safe Harbor geography: city and district out, ZIP to ZIP3, state and country kept.
const SAFE_HARBOR_GEOGRAPHY: &[(&str, &str)] = &[
    ("Address.city", "remove"),
    ("Address.district", "remove"),
    ("Address.postalCode", "generalize:zip3"),
];

/// Limited data set geography: city, district, state and ZIP kept.
const LIMITED_GEOGRAPHY: &[(&str, &str)] = &[
    ("Address.city", "keep"),
    ("Address.district", "keep"),
    ("Address.postalCode", "keep"),
];

/// Identifiers, references, free text, and what is kept.
const COMMON: &[(&str, &str)] = &[
    ("Address.state", "keep"),
    ("Address.country", "keep"),
    ("Identifier.value", "pseudonym"),
    ("Reference.reference", "pseudonym"),
    ("Reference.display", "remove"),
    ("Attachment.data", "text"),
    ("Attachment.url", "remove"),
    ("Attachment.hash", "remove"),
    ("Attachment.title", "text"),
    ("Narrative.div", "text"),
    ("Annotation.authorString", "remove"),
    ("Annotation.text", "text"),
    ("CodeableConcept.text", "text"),
    ("Coding", "keep"),
    ("Quantity", "keep"),
    ("Observation.valueString", "text"),
    ("Bundle.entry.fullUrl", "pseudonym"),
    ("Bundle.entry.request.url", "pseudonym"),
    ("Bundle.entry.response.location", "pseudonym"),
    ("Bundle.link.url", "pseudonym"),
    ("id", "pseudonym"),
    ("uid", "pseudonym"),
];

/// Dates, by profile.
const DATES_YEAR: &[(&str, &str)] = &[
    ("date", "generalize:year"),
    ("dateTime", "generalize:year"),
    ("instant", "generalize:year"),
];
const DATES_SHIFT: &[(&str, &str)] = &[
    ("date", "date_shift"),
    ("dateTime", "date_shift"),
    ("instant", "date_shift"),
];
const DATES_KEEP: &[(&str, &str)] = &[("date", "keep"), ("dateTime", "keep"), ("instant", "keep")];

/// Primitives: codes, uris, numbers and booleans kept; strings through the detector.
const PRIMITIVES: &[(&str, &str)] = &[
    ("time", "keep"),
    ("code", "keep"),
    ("uri", "keep"),
    ("boolean", "keep"),
    ("decimal", "keep"),
    ("base64Binary", "remove"),
    ("markdown", "text"),
    ("string", "text"),
];

/// The `(selector, action)` pairs of a built-in profile, in order.
pub fn rules(profile: ProfileName) -> Vec<(&'static str, &'static str)> {
    let (geo, dates) = match profile {
        ProfileName::SafeHarbor => (SAFE_HARBOR_GEOGRAPHY, DATES_YEAR),
        ProfileName::Shifted => (SAFE_HARBOR_GEOGRAPHY, DATES_SHIFT),
        ProfileName::LimitedDataSet => (LIMITED_GEOGRAPHY, DATES_KEEP),
    };
    [DIRECT, geo, COMMON, dates, PRIMITIVES]
        .iter()
        .flat_map(|r| r.iter().copied())
        .collect()
}
