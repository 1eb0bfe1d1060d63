//! User rules come first; selectors of every kind; profiles differ where they should.

use phiguard_rules::{Config, ProfileName};
use serde_json::Value;

use super::run;

const PATIENT: &str = r##"{"resourceType":"Patient","id":"pat-1",
 "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p title=\"Jane\">Jane Roe, 12 Elm Street</p></div>"},
 "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"city":"Springfield","state":"MA","postalCode":"02139"}},
  {"url":"http://hl7.org/fhir/StructureDefinition/geolocation","extension":[{"url":"latitude","valueDecimal":42.1}]},
  {"url":"http://example.org/custom","valueString":"lives with Jane Roe"}],
 "identifier":[{"system":"http://hospital/mrn","value":"MRN12345"}],
 "name":[{"family":"Roe","given":["Jane"]}],
 "telecom":[{"system":"phone","value":"555-123-4567"}],
 "gender":"female","birthDate":"1980-04-05",
 "address":[{"line":["12 Elm Street"],"city":"Springfield","state":"MA","postalCode":"02139","country":"US"}],
 "contained":[{"resourceType":"Practitioner","id":"pr1","name":[{"family":"Smith"}]}],
 "generalPractitioner":[{"reference":"#pr1","display":"Dr Smith"}],
 "managingOrganization":{"reference":"Organization/org-9"}}"##;

fn with_rules(profile: &str, rules: &str) -> Config {
    Config::from_toml(&format!(
        "profile = \"{profile}\"\n[fhir]\nrules = [{rules}]\n"
    ))
    .unwrap()
}

fn out(config: &Config) -> Value {
    serde_json::from_slice(&run(config, 1, PATIENT.as_bytes()).0).unwrap()
}

#[test]
fn safe_harbor_on_a_patient() {
    let v = out(&Config::builtin(ProfileName::SafeHarbor));
    assert!(v.get("name").is_none() && v.get("telecom").is_none());
    assert_eq!(v["birthDate"], "1980");
    assert_eq!(v["address"][0]["state"], "MA");
    assert_eq!(v["address"][0]["postalCode"], "021");
    assert!(v["address"][0].get("line").is_none() && v["address"][0].get("city").is_none());
    let ext = v["extension"].as_array().unwrap();
    assert_eq!(ext.len(), 2, "geolocation removed");
    assert_eq!(ext[0]["valueAddress"]["postalCode"], "021");
    assert!(ext[0]["valueAddress"].get("city").is_none());
    assert!(!ext[1]["valueString"].as_str().unwrap().contains("Roe"));
    assert_eq!(v["identifier"][0]["system"], "http://hospital/mrn");
    assert_ne!(v["identifier"][0]["value"], "MRN12345");
    let div = v["text"]["div"].as_str().unwrap();
    assert!(
        div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>"),
        "{div}"
    );
    assert!(!div.contains("Jane") && !div.contains("Elm"), "{div}");
    // The contained id and the local reference to it move together.
    let cid = v["contained"][0]["id"].as_str().unwrap();
    assert_eq!(v["generalPractitioner"][0]["reference"], format!("#{cid}"));
    assert!(v["generalPractitioner"][0].get("display").is_none());
    assert!(v["contained"][0].get("name").is_none());
    let org = v["managingOrganization"]["reference"].as_str().unwrap();
    assert!(org.starts_with("Organization/") && !org.contains("org-9"));
}

#[test]
fn limited_data_set_keeps_dates_and_geography() {
    let v = out(&Config::builtin(ProfileName::LimitedDataSet));
    assert_eq!(v["birthDate"], "1980-04-05");
    assert_eq!(v["address"][0]["city"], "Springfield");
    assert_eq!(v["address"][0]["postalCode"], "02139");
    assert!(v["address"][0].get("line").is_none() && v.get("name").is_none());
    assert_ne!(v["identifier"][0]["value"], "MRN12345");
}

#[test]
fn user_rules_come_first() {
    let c = with_rules(
        "safe-harbor",
        r#"{ select = "Patient.name.family", action = "keep" },
           { select = "Address.city", action = "keep" },
           { select = "Patient.gender", action = "remove" },
           { select = "extension(http://example.org/custom)", action = "remove" },
           { select = "Practitioner", action = "remove" },
           { select = "date", action = "keep" }"#,
    );
    let v = out(&c);
    assert_eq!(v["name"][0]["family"], "Roe");
    assert!(
        v["name"][0].get("given").is_none(),
        "the rest of HumanName still removed"
    );
    assert_eq!(v["address"][0]["city"], "Springfield");
    assert!(v.get("gender").is_none());
    assert_eq!(v["extension"].as_array().unwrap().len(), 1);
    assert!(v.get("contained").is_none());
    assert_eq!(v["birthDate"], "1980-04-05");
}

#[test]
fn bad_selectors_name_the_rule() {
    for (sel, want) in [
        ("patient.name", "fhir.rules[0]"),
        ("Patient.na-me", "na-me"),
        ("extension(", "parenthesis"),
    ] {
        let c = with_rules(
            "safe-harbor",
            &format!(r#"{{ select = "{sel}", action = "keep" }}"#),
        );
        let e = phiguard_fhir::FhirDeid::new(&c).err().unwrap().to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn uncovered_strings_are_counted_and_run_through_text() {
    let input =
        br#"{"resourceType":"Basic","id":"b1","mystery":{"note":"Call Jane Roe at 555-123-4567"}}"#;
    let (o, tally) = run(&Config::builtin(ProfileName::SafeHarbor), 1, input);
    let v: Value = serde_json::from_slice(&o).unwrap();
    assert!(
        !v["mystery"]["note"]
            .as_str()
            .unwrap()
            .contains("555-123-4567")
    );
    assert!(
        tally.uncovered.contains_key("Basic.mystery.note"),
        "{:?}",
        tally.uncovered.keys()
    );
    assert_eq!(tally.records, 1);
}

#[test]
fn round_trip_keeps_structure_and_order() {
    let input =
        std::fs::read(super::data_dir().join("ms-samples/synthea-bundle-with-notes.json")).unwrap();
    let (o, tally) = run(&Config::builtin(ProfileName::SafeHarbor), 1, &input);
    let v = phiguard_fhir::Json::from_slice(&o).unwrap();
    let orig = phiguard_fhir::Json::from_slice(&input).unwrap();
    let keys = |j: &phiguard_fhir::Json| match j {
        phiguard_fhir::Json::Obj(m) => m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        _ => vec![],
    };
    assert_eq!(keys(&v), keys(&orig));
    let ov: Value = serde_json::from_slice(&input).unwrap();
    let nv: Value = serde_json::from_slice(&o).unwrap();
    let types = |v: &Value| {
        v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&ov), types(&nv));
    assert_eq!(
        tally.records as usize,
        types(&ov).len() + count_contained(&ov)
    );
    // De-identifying the output again changes no structure.
    let (o2, _) = run(&Config::builtin(ProfileName::SafeHarbor), 1, &o);
    let v2: Value = serde_json::from_slice(&o2).unwrap();
    assert_eq!(types(&v2), types(&nv));
}

fn count_contained(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            m.get("contained")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                + m.values().map(count_contained).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(count_contained).sum(),
        _ => 0,
    }
}

#[test]
fn ndjson_is_streamed_line_by_line() {
    let input = b"{\"resourceType\":\"Patient\",\"id\":\"a\",\"name\":[{\"family\":\"Roe\"}]}\n\n{\"resourceType\":\"Observation\",\"id\":\"o\",\"subject\":{\"reference\":\"Patient/a\"},\"effectiveDateTime\":\"2020-01-02T03:04:05Z\"}\n";
    let (o, tally) = run(&Config::builtin(ProfileName::Shifted), 1, input);
    let text = String::from_utf8(o).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(!text.contains("Roe"));
    let p: Value = serde_json::from_str(lines[0]).unwrap();
    let obs: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        obs["subject"]["reference"],
        format!("Patient/{}", p["id"].as_str().unwrap())
    );
    assert_eq!(tally.records, 2);
    assert_eq!(tally.files, 1);
}

#[test]
fn dicom_uids_match_the_dicom_convention_and_short_zips_are_padded() {
    let input = br#"{"resourceType":"ImagingStudy","id":"s1","status":"available",
      "identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.840.99.1.1"}],
      "subject":{"reference":"Patient/p1"},
      "series":[{"uid":"1.2.840.99.1.1.1","instance":[{"uid":"1.2.840.99.1.1.1.1","number":1}]}]}"#;
    let config = Config::builtin(ProfileName::SafeHarbor);
    let e = super::engine(1, &config);
    let v: Value = serde_json::from_slice(&run(&config, 1, input).0).unwrap();
    assert_eq!(
        v["identifier"][0]["value"],
        format!("urn:oid:{}", e.uid("1.2.840.99.1.1"))
    );
    assert_eq!(v["series"][0]["uid"], e.uid("1.2.840.99.1.1.1"));
    assert_eq!(
        v["series"][0]["instance"][0]["uid"],
        e.uid("1.2.840.99.1.1.1.1")
    );
    let org = br#"{"resourceType":"Organization","id":"o","address":[{"city":"Boston","state":"MA","postalCode":"2116"}]}"#;
    let v: Value = serde_json::from_slice(&run(&config, 1, org).0).unwrap();
    assert_eq!(v["address"][0]["postalCode"], "021");
}

#[test]
fn ndjson_in_parallel_matches_sequential() {
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(super::data_dir().join("ms-samples/synthea-bundle-with-notes.json"))
            .unwrap(),
    )
    .unwrap();
    let mut nd = String::new();
    for e in bundle["entry"].as_array().unwrap() {
        nd.push_str(&serde_json::to_string(&e["resource"]).unwrap());
        nd.push('\n');
    }
    let config = Config::builtin(ProfileName::Shifted);
    let fhir = phiguard_fhir::FhirDeid::new(&config).unwrap();
    let e = super::engine(1, &config);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut ta, mut tb) = (
        phiguard_rules::Tally::default(),
        phiguard_rules::Tally::default(),
    );
    fhir.deidentify(e, nd.as_bytes(), &mut a, &mut ta).unwrap();
    fhir.deidentify_with_threads(e, nd.as_bytes(), &mut b, &mut tb, 3)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    // The review sample survives the threads, and is the same whatever their number.
    let review = || phiguard_rules::Tally {
        review: phiguard_rules::ReviewSample::new(5, 7),
        ..phiguard_rules::Tally::default()
    };
    let (mut ra, mut rb) = (review(), review());
    fhir.deidentify(e, nd.as_bytes(), &mut Vec::new(), &mut ra)
        .unwrap();
    fhir.deidentify_with_threads(e, nd.as_bytes(), &mut Vec::new(), &mut rb, 3)
        .unwrap();
    assert_eq!(ra.review.items.len(), 5);
    assert_eq!(ra.review, rb.review);
    assert_eq!(
        ta.records as usize,
        bundle["entry"].as_array().unwrap().len() + count_contained(&bundle)
    );
    // An error names the first bad line, as sequentially.
    let mut bad = nd.clone();
    bad.push_str("{\"resourceType\":\n");
    let err = fhir
        .deidentify_with_threads(
            e,
            bad.as_bytes(),
            &mut Vec::new(),
            &mut phiguard_rules::Tally::default(),
            3,
        )
        .unwrap_err()
        .to_string();
    let n = nd.lines().count() + 1;
    assert!(err.starts_with(&format!("NDJSON line {n}:")), "{err}");
}

#[test]
fn reference_forms_keep_their_shape() {
    let input = br#"{"resourceType":"Bundle","type":"transaction","entry":[
      {"fullUrl":"http://example.org/fhir/Patient/abc","resource":{"resourceType":"Patient","id":"abc"},
       "request":{"method":"PUT","url":"Patient/abc"}},
      {"fullUrl":"urn:uuid:0b1a4b5c-1d2e-4f30-8a9b-0c1d2e3f4a5b","resource":{"resourceType":"Observation","status":"final",
        "subject":{"reference":"http://example.org/fhir/Patient/abc/_history/2"},
        "performer":[{"reference":"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999912345"}],
        "specimen":{"reference":"urn:uuid:0b1a4b5c-1d2e-4f30-8a9b-0c1d2e3f4a5b"}},
       "request":{"method":"POST","url":"Observation"}}]}"#;
    let config = Config::builtin(ProfileName::SafeHarbor);
    let e = super::engine(1, &config);
    let v: Value = serde_json::from_slice(&run(&config, 1, input).0).unwrap();
    let p = e.id_pseudonym("abc");
    assert_eq!(
        v["entry"][0]["fullUrl"],
        format!("http://example.org/fhir/Patient/{p}")
    );
    assert_eq!(v["entry"][0]["resource"]["id"], p);
    assert_eq!(v["entry"][0]["request"]["url"], format!("Patient/{p}"));
    let obs = &v["entry"][1]["resource"];
    assert_eq!(
        obs["subject"]["reference"],
        format!("http://example.org/fhir/Patient/{p}/_history/2")
    );
    assert_eq!(
        obs["performer"][0]["reference"],
        format!(
            "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{}",
            e.id_pseudonym("9999912345")
        )
    );
    let u = obs["specimen"]["reference"].as_str().unwrap();
    assert_eq!(v["entry"][1]["fullUrl"], u);
    assert!(phiguard_rules::is_uuid(
        u.strip_prefix("urn:uuid:").unwrap()
    ));
    assert_eq!(v["entry"][1]["request"]["url"], "Observation");
}

#[test]
fn ages_over_89_are_capped_and_section_narratives_keep_markup() {
    let input = br#"{"resourceType":"Composition","status":"final","subject":{"reference":"Patient/p"},
      "extension":[{"url":"http://example.org/age","valueAge":{"value":93,"unit":"years","system":"http://unitsofmeasure.org","code":"a"}}],
      "section":[{"title":"Story","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>Jane Roe</b> was seen.</div>"}}],
      "contained":[{"resourceType":"Observation","id":"o","status":"final","code":{"text":"Age"},
        "valueQuantity":{"value":95,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}},
        {"resourceType":"Observation","id":"w","status":"final","code":{"text":"Weight"},
        "valueQuantity":{"value":95,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}]}"#;
    let v: Value =
        serde_json::from_slice(&run(&Config::builtin(ProfileName::SafeHarbor), 1, input).0)
            .unwrap();
    assert_eq!(v["extension"][0]["valueAge"]["value"], 90);
    assert_eq!(v["extension"][0]["valueAge"]["comparator"], ">=");
    assert_eq!(v["contained"][0]["valueQuantity"]["value"], 90);
    assert_eq!(
        v["contained"][1]["valueQuantity"]["value"], 95,
        "kilograms are not ages"
    );
    let div = v["section"][0]["text"]["div"].as_str().unwrap();
    assert!(
        div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>") && !div.contains("Roe"),
        "{div}"
    );
    let lds: Value =
        serde_json::from_slice(&run(&Config::builtin(ProfileName::LimitedDataSet), 1, input).0)
            .unwrap();
    assert_eq!(lds["extension"][0]["valueAge"]["value"], 93);
}

#[test]
fn tally_counts_rules_and_keeps_the_engine_notes() {
    let input = br#"{"resourceType":"Patient","id":"old","birthDate":"1920-02-03","address":[{"postalCode":"N/A","state":"MA"}],"name":[{"family":"Roe","given":["Jane","Q"]}]}"#;
    let (o, t) = run(&Config::builtin(ProfileName::SafeHarbor), 1, input);
    let v: Value = serde_json::from_slice(&o).unwrap();
    assert!(v.get("birthDate").is_none());
    assert_eq!(t.notes.get("birth_date_over_89_removed"), Some(&1));
    assert_eq!(t.notes.get("zip_not_parsed_removed"), Some(&1));
    let names = &t.rules["safe-harbor: HumanName"];
    assert_eq!(
        (names.values, names.removed, names.action),
        (3, 3, "remove")
    );
    assert_eq!(t.rules["safe-harbor: id"].changed, 1);
    let (_, t) = run(
        &Config::builtin(ProfileName::Shifted),
        1,
        br#"{"resourceType":"Device","id":"d","manufactureDate":"2020-01-02"}"#,
    );
    assert_eq!(t.notes.get("date_shift_without_patient"), Some(&1));
}
