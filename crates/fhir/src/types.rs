//! Just enough FHIR R4 type knowledge to de-identify without the full schema: a compact table
//! of element → data type for the data types and the elements that shape cannot tell apart,
//! choice-type suffixes (`valueString`, `onsetDateTime`), and shape heuristics (an object with
//! `family`/`given` is a HumanName, a string in FHIR date form is a date).

use crate::json::Json;

/// A FHIR data type, as far as de-identification needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// A resource (root, Bundle entry, contained).
    Resource,
    /// An object of no known data type (a BackboneElement, or anything unrecognised).
    Backbone,
    HumanName,
    Address,
    ContactPoint,
    Identifier,
    Reference,
    Attachment,
    CodeableConcept,
    Coding,
    Period,
    Quantity,
    Age,
    Range,
    Ratio,
    Annotation,
    Narrative,
    Meta,
    Extension,
    Timing,
    Dosage,
    Signature,
    SampledData,
    /// The `_x` companion object of a primitive (id and extensions).
    Element,
    // Primitives.
    Date,
    DateTime,
    Instant,
    Time,
    /// A `string` whose place is known.
    Str,
    Markdown,
    Code,
    Uri,
    /// A resource's logical id.
    Id,
    /// A DICOM UID (`ImagingStudy.series.uid`): pseudonymised as DICOM does, `2.25.<n>`.
    Uid,
    Base64,
    Xhtml,
    Boolean,
    Number,
    /// A reference string (`Reference.reference`, `Bundle.entry.fullUrl`, `request.url`).
    RefString,
    /// A string in a place nothing explains.
    Unknown,
}

impl DType {
    /// The selector spelling of a data type, or `None` for names that are not data types.
    pub fn parse(name: &str) -> Option<DType> {
        Some(match name {
            "HumanName" => DType::HumanName,
            "Address" => DType::Address,
            "ContactPoint" => DType::ContactPoint,
            "Identifier" => DType::Identifier,
            "Reference" => DType::Reference,
            "Attachment" => DType::Attachment,
            "CodeableConcept" => DType::CodeableConcept,
            "Coding" => DType::Coding,
            "Period" => DType::Period,
            "Quantity" => DType::Quantity,
            "Age" => DType::Age,
            "Range" => DType::Range,
            "Ratio" => DType::Ratio,
            "Annotation" => DType::Annotation,
            "Narrative" => DType::Narrative,
            "Meta" => DType::Meta,
            "Extension" => DType::Extension,
            "Timing" => DType::Timing,
            "Dosage" => DType::Dosage,
            "Signature" => DType::Signature,
            "SampledData" => DType::SampledData,
            "BackboneElement" => DType::Backbone,
            "Element" => DType::Element,
            "date" => DType::Date,
            "dateTime" => DType::DateTime,
            "instant" => DType::Instant,
            "time" => DType::Time,
            "string" => DType::Str,
            "markdown" => DType::Markdown,
            "code" => DType::Code,
            "uri" | "url" | "canonical" | "oid" | "uuid" => DType::Uri,
            "id" => DType::Id,
            "uid" => DType::Uid,
            "base64Binary" => DType::Base64,
            "xhtml" => DType::Xhtml,
            "boolean" => DType::Boolean,
            "decimal" | "integer" | "positiveInt" | "unsignedInt" => DType::Number,
            _ => return None,
        })
    }

    /// True for types whose values are JSON objects.
    pub fn is_complex(self) -> bool {
        !matches!(
            self,
            DType::Date
                | DType::DateTime
                | DType::Instant
                | DType::Time
                | DType::Str
                | DType::Markdown
                | DType::Code
                | DType::Uri
                | DType::Id
                | DType::Uid
                | DType::Base64
                | DType::Xhtml
                | DType::Boolean
                | DType::Number
                | DType::RefString
                | DType::Unknown
        )
    }
}

/// The type of member `name` of a value of type `parent` (in a resource of type `rtype`),
/// from the tables, choice suffixes and then the value's shape.
pub fn member_type(parent: DType, rtype: &str, name: &str, value: &Json) -> DType {
    if name == "extension" || name == "modifierExtension" {
        return DType::Extension;
    }
    if name.starts_with('_') {
        return DType::Element;
    }
    let first = match value {
        Json::Arr(a) => a.iter().find(|x| !matches!(x, Json::Null)),
        v => Some(v),
    };
    let Some(v) = first else {
        return DType::Unknown;
    };
    let t = match parent {
        DType::Resource | DType::Backbone => resource_member(parent, rtype, name, v),
        dt => datatype_member(dt, name),
    };
    if let Some(t) = t {
        // A table type that contradicts the JSON kind (an object where a string belongs) falls
        // through to shape: the table must never make a value skip inspection.
        if t.is_complex() == matches!(v, Json::Obj(_)) {
            return t;
        }
    }
    if let Some(t) = choice_suffix(name)
        && t.is_complex() == matches!(v, Json::Obj(_))
    {
        return t;
    }
    shape(v)
}

fn datatype_member(parent: DType, name: &str) -> Option<DType> {
    use DType as T;
    Some(match (parent, name) {
        (_, "id") if parent != T::Resource => T::Str,
        (T::HumanName, "use") => T::Code,
        (T::HumanName, "text" | "family" | "given" | "prefix" | "suffix") => T::Str,
        (T::HumanName | T::Address | T::ContactPoint | T::Identifier, "period") => T::Period,
        (T::Address, "use" | "type") => T::Code,
        (
            T::Address,
            "text" | "line" | "city" | "district" | "state" | "postalCode" | "country",
        ) => T::Str,
        (T::ContactPoint, "system" | "use") => T::Code,
        (T::ContactPoint, "value") => T::Str,
        (T::ContactPoint, "rank") => T::Number,
        (T::Identifier, "use") => T::Code,
        (T::Identifier, "type") => T::CodeableConcept,
        (T::Identifier, "system") => T::Uri,
        (T::Identifier, "value") => T::Str,
        (T::Identifier, "assigner") => T::Reference,
        (T::Reference, "reference") => T::RefString,
        (T::Reference, "type") => T::Uri,
        (T::Reference, "identifier") => T::Identifier,
        (T::Reference, "display") => T::Str,
        (T::Attachment, "contentType" | "language") => T::Code,
        (T::Attachment, "data" | "hash") => T::Base64,
        (T::Attachment, "url") => T::Uri,
        (T::Attachment, "size") => T::Number,
        (T::Attachment, "title") => T::Str,
        (T::Attachment, "creation") => T::DateTime,
        (T::CodeableConcept, "coding") => T::Coding,
        (T::CodeableConcept, "text") => T::Str,
        (T::Coding, "system") => T::Uri,
        (T::Coding, "version" | "display") => T::Str,
        (T::Coding, "code") => T::Code,
        (T::Coding, "userSelected") => T::Boolean,
        (T::Period, "start" | "end") => T::DateTime,
        (T::Quantity | T::Age, "value") => T::Number,
        (T::Quantity | T::Age, "comparator" | "code" | "currency") => T::Code,
        (T::Quantity | T::Age, "unit") => T::Str,
        (T::Quantity | T::Age, "system") => T::Uri,
        (T::Range, "low" | "high") => T::Quantity,
        (T::Ratio, "numerator" | "denominator") => T::Quantity,
        (T::Annotation, "authorReference") => T::Reference,
        (T::Annotation, "authorString") => T::Str,
        (T::Annotation, "time") => T::DateTime,
        (T::Annotation, "text") => T::Markdown,
        (T::Narrative, "status") => T::Code,
        (T::Narrative, "div") => T::Xhtml,
        (T::Meta, "versionId") => T::Code,
        (T::Meta, "lastUpdated") => T::Instant,
        (T::Meta, "source" | "profile") => T::Uri,
        (T::Meta, "security" | "tag") => T::Coding,
        (T::Extension, "url") => T::Uri,
        (T::Timing, "event") => T::DateTime,
        (T::Timing, "code") => T::CodeableConcept,
        (T::Timing, "repeat") => T::Backbone,
        (T::Dosage, "sequence") => T::Number,
        (T::Dosage, "text" | "patientInstruction") => T::Str,
        (T::Dosage, "timing") => T::Timing,
        (
            T::Dosage,
            "site" | "route" | "method" | "asNeededCodeableConcept" | "additionalInstruction",
        ) => T::CodeableConcept,
        (T::Dosage, "asNeededBoolean") => T::Boolean,
        (T::Dosage, "maxDosePerPeriod") => T::Ratio,
        (T::Dosage, "maxDosePerAdministration" | "maxDosePerLifetime") => T::Quantity,
        (T::Dosage, "doseAndRate") => T::Backbone,
        (T::Signature, "type") => T::Coding,
        (T::Signature, "when") => T::Instant,
        (T::Signature, "who" | "onBehalfOf") => T::Reference,
        (T::Signature, "targetFormat" | "sigFormat") => T::Code,
        (T::Signature, "data") => T::Base64,
        (T::SampledData, "origin") => T::Quantity,
        (T::SampledData, "period" | "factor" | "lowerLimit" | "upperLimit" | "dimensions") => {
            T::Number
        }
        (T::SampledData, "data") => T::Str,
        _ => return None,
    })
}

/// Elements of resources and backbone elements whose type shape alone cannot tell.
fn resource_member(parent: DType, rtype: &str, name: &str, v: &Json) -> Option<DType> {
    use DType as T;
    let obj = matches!(v, Json::Obj(_));
    Some(match name {
        "id" if parent == T::Resource => T::Id,
        "id" => T::Str,
        "resourceType" => T::Code,
        "meta" => T::Meta,
        "text" if parent == T::Resource => T::Narrative,
        "contained" => T::Resource,
        "resource" if rtype == "Bundle" => T::Resource,
        "implicitRules" => T::Uri,
        "language" | "status" | "intent" | "gender" | "use" | "priority" | "criticality"
        | "mode" | "method" | "outcome" | "kind" | "contentType" | "lifecycleStatus"
        | "periodUnit" | "durationUnit" | "dayOfWeek" | "when" | "severity" | "sex" => T::Code,
        "category" | "type" if !obj => T::Code,
        "uid" if rtype == "ImagingStudy" => T::Uid,
        "identifier" => T::Identifier,
        "name" if obj => T::HumanName,
        "telecom" => T::ContactPoint,
        "address" if obj => T::Address,
        "photo" | "presentedForm" | "attachment" | "content" if obj && attachment_shape(v) => {
            T::Attachment
        }
        "note" => T::Annotation,
        "period" | "billablePeriod" | "servicedPeriod" | "performedPeriod" => T::Period,
        "dosage" | "dosageInstruction" => T::Dosage,
        "timing" if obj => T::Timing,
        "birthDate" => T::Date,
        "div" if !obj => T::Xhtml,
        "name" => T::Str,
        "fullUrl" => T::RefString,
        "url" if rtype == "Bundle" => T::RefString,
        "location" if rtype == "Bundle" && !obj => T::RefString,
        "type" if rtype == "Bundle" && !obj => T::Code,
        _ => return None,
    })
}

fn attachment_shape(v: &Json) -> bool {
    let Json::Obj(m) = v else { return false };
    m.iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "contentType" | "data" | "url" | "hash" | "size" | "title" | "creation"
        )
    }) && !m.iter().any(|(k, _)| k == "attachment")
}

/// `valueString` → string, `onsetDateTime` → dateTime: the longest known type name suffix.
fn choice_suffix(name: &str) -> Option<DType> {
    const SUFFIXES: [(&str, DType); 30] = [
        ("CodeableConcept", DType::CodeableConcept),
        ("ContactPoint", DType::ContactPoint),
        ("HumanName", DType::HumanName),
        ("Identifier", DType::Identifier),
        ("Attachment", DType::Attachment),
        ("Annotation", DType::Annotation),
        ("SampledData", DType::SampledData),
        ("Reference", DType::Reference),
        ("Quantity", DType::Quantity),
        ("Duration", DType::Quantity),
        ("Distance", DType::Quantity),
        ("Address", DType::Address),
        ("DateTime", DType::DateTime),
        ("Instant", DType::Instant),
        ("Markdown", DType::Markdown),
        ("Boolean", DType::Boolean),
        ("Integer", DType::Number),
        ("Decimal", DType::Number),
        ("Period", DType::Period),
        ("Coding", DType::Coding),
        ("String", DType::Str),
        ("Timing", DType::Timing),
        ("Dosage", DType::Dosage),
        ("Range", DType::Range),
        ("Ratio", DType::Ratio),
        ("Money", DType::Quantity),
        ("Count", DType::Quantity),
        ("Date", DType::Date),
        ("Time", DType::Time),
        ("Age", DType::Age),
    ];
    const MORE: [(&str, DType); 6] = [
        ("Code", DType::Code),
        ("Uri", DType::Uri),
        ("Url", DType::Uri),
        ("Canonical", DType::Uri),
        ("Id", DType::Str),
        ("Base64Binary", DType::Base64),
    ];
    // A choice element is a lower-case stem followed by the type name.
    if !name.as_bytes().first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    SUFFIXES
        .iter()
        .chain(MORE.iter())
        .find(|(s, _)| name.len() > s.len() && name.ends_with(s))
        .map(|(_, t)| *t)
}

/// The type a value's shape suggests.
pub fn shape(v: &Json) -> DType {
    match v {
        Json::Bool(_) => DType::Boolean,
        Json::Num(_) => DType::Number,
        Json::Str(s) => date_kind(s).unwrap_or(DType::Unknown),
        Json::Obj(m) => {
            let has = |k: &str| m.iter().any(|(n, _)| n == k);
            let only = |allowed: &[&str]| {
                m.iter()
                    .all(|(n, _)| allowed.contains(&n.as_str()) || n.starts_with('_'))
            };
            if has("resourceType") {
                DType::Resource
            } else if (has("family") || has("given"))
                && only(&[
                    "id",
                    "extension",
                    "use",
                    "text",
                    "family",
                    "given",
                    "prefix",
                    "suffix",
                    "period",
                ])
            {
                DType::HumanName
            } else if (has("line") || has("city") || has("postalCode") || has("district"))
                && only(&[
                    "id",
                    "extension",
                    "use",
                    "type",
                    "text",
                    "line",
                    "city",
                    "district",
                    "state",
                    "postalCode",
                    "country",
                    "period",
                ])
            {
                DType::Address
            } else if has("reference")
                || (has("display")
                    && only(&[
                        "id",
                        "extension",
                        "reference",
                        "type",
                        "identifier",
                        "display",
                    ]))
            {
                DType::Reference
            } else if has("value")
                && has("system")
                && matches!(
                    m.iter().find(|(n, _)| n == "system").map(|(_, v)| v),
                    Some(Json::Str(s)) if matches!(s.as_str(), "phone" | "fax" | "email" | "pager" | "url" | "sms" | "other")
                )
            {
                DType::ContactPoint
            } else if has("coding") && only(&["id", "extension", "coding", "text"]) {
                DType::CodeableConcept
            } else if (has("code") || has("system"))
                && only(&[
                    "id",
                    "extension",
                    "system",
                    "version",
                    "code",
                    "display",
                    "userSelected",
                ])
            {
                DType::Coding
            } else if has("value")
                && only(&[
                    "id",
                    "extension",
                    "value",
                    "comparator",
                    "unit",
                    "system",
                    "code",
                    "currency",
                ])
            {
                DType::Quantity
            } else if (has("start") || has("end")) && only(&["id", "extension", "start", "end"]) {
                DType::Period
            } else if has("url") && only(&["id", "extension", "url"])
                || (has("url") && m.iter().any(|(n, _)| n.starts_with("value")))
            {
                DType::Extension
            } else if has("div") && only(&["id", "extension", "status", "div"]) {
                DType::Narrative
            } else if attachment_shape(v) && (has("data") || has("contentType")) {
                DType::Attachment
            } else {
                DType::Backbone
            }
        }
        Json::Null | Json::Arr(_) | Json::Gone => DType::Unknown,
    }
}

/// `date`, `dateTime` or `instant` when `s` is written as FHIR writes them.
pub fn date_kind(s: &str) -> Option<DType> {
    let b = s.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if b.len() < 4 || !(0..4).all(d) {
        return None;
    }
    match b.len() {
        4 => return Some(DType::Date),
        7 if at(4, b'-') && d(5) && d(6) => return Some(DType::Date),
        10 if at(4, b'-') && d(5) && d(6) && at(7, b'-') && d(8) && d(9) => {
            return Some(DType::Date);
        }
        _ => {}
    }
    // YYYY-MM-DDThh:mm(:ss(.s+)?)?(Z|(+|-)hh:mm)?
    if b.len() < 16
        || !(at(4, b'-') && d(5) && d(6) && at(7, b'-') && d(8) && d(9) && at(10, b'T'))
        || !(d(11) && d(12) && at(13, b':') && d(14) && d(15))
    {
        return None;
    }
    let mut i = 16;
    let mut seconds = false;
    if at(i, b':') && d(i + 1) && d(i + 2) {
        seconds = true;
        i += 3;
        if at(i, b'.') {
            i += 1;
            let start = i;
            while d(i) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    let zone = if at(i, b'Z') {
        i += 1;
        true
    } else if (at(i, b'+') || at(i, b'-')) && d(i + 1) && d(i + 2) && at(i + 3, b':') {
        if !(d(i + 4) && d(i + 5)) {
            return None;
        }
        i += 6;
        true
    } else {
        false
    };
    if i != b.len() {
        return None;
    }
    Some(if seconds && zone {
        DType::Instant
    } else {
        DType::DateTime
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_by_form() {
        assert_eq!(date_kind("2020"), Some(DType::Date));
        assert_eq!(date_kind("2020-03"), Some(DType::Date));
        assert_eq!(date_kind("2020-03-14"), Some(DType::Date));
        assert_eq!(date_kind("2020-03-14T09:30"), Some(DType::DateTime));
        assert_eq!(
            date_kind("2011-04-07T12:26:53.796-07:00"),
            Some(DType::Instant)
        );
        assert_eq!(date_kind("2011-04-07T12:26:53Z"), Some(DType::Instant));
        assert_eq!(date_kind("12345"), None);
        assert_eq!(date_kind("2020-03-14 trailing"), None);
        assert_eq!(date_kind("abcd"), None);
    }

    #[test]
    fn shapes_and_choices() {
        let j = |s: &str| Json::from_slice(s.as_bytes()).unwrap();
        assert_eq!(
            shape(&j(r#"{"family":"X","given":["Y"]}"#)),
            DType::HumanName
        );
        assert_eq!(shape(&j(r#"{"city":"X","state":"Y"}"#)), DType::Address);
        assert_eq!(shape(&j(r#"{"reference":"Patient/1"}"#)), DType::Reference);
        assert_eq!(
            shape(&j(r#"{"system":"phone","value":"555"}"#)),
            DType::ContactPoint
        );
        assert_eq!(
            member_type(DType::Resource, "Observation", "valueString", &j(r#""x""#)),
            DType::Str
        );
        assert_eq!(
            member_type(
                DType::Extension,
                "Patient",
                "valueAddress",
                &j(r#"{"x":1}"#)
            ),
            DType::Address
        );
        assert_eq!(
            member_type(DType::Resource, "Organization", "name", &j(r#""Acme""#)),
            DType::Str
        );
        assert_eq!(
            member_type(
                DType::Resource,
                "Patient",
                "name",
                &j(r#"[{"text":"A B"}]"#)
            ),
            DType::HumanName
        );
    }
}
