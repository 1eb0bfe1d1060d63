//! FHIR R4 Patient resources flattened into a table, one row per Patient, so the same risk
//! figures apply: a Bundle, a single resource, NDJSON, or a folder of those (`.json`,
//! `.ndjson`). Other resource types are skipped. Errors name the file and the line (NDJSON) or
//! the record, never a value.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, RiskError};
use crate::table::Table;

/// The columns a flattened Patient has.
pub const PATIENT_COLUMNS: [&str; 13] = [
    "gender",
    "birthDate",
    "birthYear",
    "postalCode",
    "zip3",
    "city",
    "state",
    "country",
    "maritalStatus",
    "deceased",
    "race",
    "ethnicity",
    "language",
];

/// Whether `path` is read as FHIR: a folder, or a `.json` / `.ndjson` file.
pub fn is_fhir_path(path: &Path) -> bool {
    path.is_dir()
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "ndjson")
        )
}

fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn coding_code(v: Option<&Value>) -> String {
    let Some(v) = v else { return String::new() };
    v.get("coding")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| s(v.get("text")))
}

/// US Core race/ethnicity: the OMB category code, else the text.
fn us_core(p: &Value, which: &str) -> String {
    let url = format!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-{which}");
    let Some(ext) = p.get("extension").and_then(Value::as_array).and_then(|e| {
        e.iter()
            .find(|x| x.get("url").and_then(Value::as_str) == Some(&url))
    }) else {
        return String::new();
    };
    let subs = ext.get("extension").and_then(Value::as_array);
    let find = |u: &str| {
        subs.and_then(|e| {
            e.iter()
                .find(|x| x.get("url").and_then(Value::as_str) == Some(u))
        })
    };
    if let Some(code) = find("ombCategory")
        .and_then(|x| x.get("valueCoding"))
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str)
    {
        return code.to_string();
    }
    s(find("text").and_then(|x| x.get("valueString")))
}

/// One Patient as a row in [`PATIENT_COLUMNS`] order.
pub fn flatten_patient(p: &Value) -> Vec<String> {
    let birth = s(p.get("birthDate"));
    let addresses = p.get("address").and_then(Value::as_array);
    let addr = addresses
        .and_then(|a| {
            a.iter()
                .find(|x| x.get("use").and_then(Value::as_str) == Some("home"))
                .or_else(|| a.first())
        })
        .cloned()
        .unwrap_or(Value::Null);
    let postal = s(addr.get("postalCode"));
    let zip3: String = if postal.chars().take(3).all(|c| c.is_ascii_digit()) && postal.len() >= 3 {
        postal.chars().take(3).collect()
    } else {
        String::new()
    };
    let deceased = match (p.get("deceasedBoolean"), p.get("deceasedDateTime")) {
        (Some(Value::Bool(b)), _) => b.to_string(),
        (_, Some(_)) => "true".to_string(),
        _ => "false".to_string(),
    };
    let language = p
        .get("communication")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .map(|c| coding_code(c.get("language")))
        .unwrap_or_default();
    vec![
        s(p.get("gender")),
        birth.clone(),
        birth.chars().take(4).collect(),
        postal,
        zip3,
        s(addr.get("city")),
        s(addr.get("state")),
        s(addr.get("country")),
        coding_code(p.get("maritalStatus")),
        deceased,
        us_core(p, "race"),
        us_core(p, "ethnicity"),
        language,
    ]
}

fn collect_patients(v: &Value, line: u64, out: &mut Vec<(u64, Vec<String>)>) {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("Patient") => out.push((line, flatten_patient(v))),
        Some("Bundle") => {
            if let Some(entries) = v.get("entry").and_then(Value::as_array) {
                for e in entries {
                    if let Some(r) = e.get("resource") {
                        collect_patients(r, line, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn read_file(path: &Path, out: &mut Vec<(u64, Vec<String>)>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| RiskError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        RiskError::Utf8 {
            file: path.to_path_buf(),
            line,
            column: "(JSON)".into(),
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // One JSON document (Bundle or resource), else NDJSON.
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        collect_patients(&v, 1, out);
        return Ok(());
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| RiskError::Csv {
            file: path.to_path_buf(),
            line: i as u64 + 1,
            kind: format!("invalid JSON at column {}", e.column()),
        })?;
        collect_patients(&v, i as u64 + 1, out);
    }
    Ok(())
}

/// Reads Patient resources from a file or a folder (its `.json`/`.ndjson` files, sorted) into a
/// table with [`PATIENT_COLUMNS`], keeping `columns`. A missing element is an empty value.
pub fn read_patients(path: &Path, columns: &[&str]) -> Result<Table> {
    let mut files: Vec<PathBuf> = Vec::new();
    if path.is_dir() {
        let rd = std::fs::read_dir(path).map_err(|source| RiskError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        for e in rd {
            let e = e.map_err(|source| RiskError::Io {
                file: path.to_path_buf(),
                source,
            })?;
            let p = e.path();
            if p.is_file() && is_fhir_path(&p) {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut rows = Vec::new();
    for f in &files {
        read_file(f, &mut rows)?;
    }
    if files.len() > 1 {
        // From a folder, "line" numbers count Patient resources in file-name order.
        for (i, r) in rows.iter_mut().enumerate() {
            r.0 = i as u64 + 1;
        }
    }
    let header: Vec<String> = PATIENT_COLUMNS.iter().map(|c| c.to_string()).collect();
    Table::from_rows(path, header, rows, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_a_us_core_patient() {
        let p: Value = serde_json::json!({
            "resourceType": "Patient",
            "gender": "female",
            "birthDate": "1961-02-03",
            "address": [{"use": "work", "postalCode": "99999"},
                        {"use": "home", "postalCode": "02139-1234", "city": "C", "state": "MA", "country": "US"}],
            "maritalStatus": {"coding": [{"code": "M"}]},
            "deceasedDateTime": "2020-01-01",
            "communication": [{"language": {"coding": [{"code": "en-US"}]}}],
            "extension": [{
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}},
                              {"url": "text", "valueString": "White"}]
            }, {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                "extension": [{"url": "text", "valueString": "Not Hispanic"}]
            }]
        });
        assert_eq!(
            flatten_patient(&p),
            vec![
                "female",
                "1961-02-03",
                "1961",
                "02139-1234",
                "021",
                "C",
                "MA",
                "US",
                "M",
                "true",
                "2106-3",
                "Not Hispanic",
                "en-US"
            ]
        );
        let empty = flatten_patient(&serde_json::json!({"resourceType": "Patient"}));
        assert_eq!(empty[9], "false");
        assert!(
            empty
                .iter()
                .enumerate()
                .all(|(i, v)| i == 9 || v.is_empty())
        );
    }
}
