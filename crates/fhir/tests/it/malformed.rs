//! Malformed input: errors name the position, never the value; nothing panics.

use phiguard_fhir::{FhirDeid, FhirError};
use phiguard_rules::{Config, ProfileName, Tally};
use proptest::prelude::*;

use super::{data_dir, engine};

fn try_run(input: &[u8]) -> Result<Vec<u8>, FhirError> {
    static FHIR: std::sync::LazyLock<FhirDeid> = std::sync::LazyLock::new(|| {
        FhirDeid::new(&Config::builtin(ProfileName::SafeHarbor)).unwrap()
    });
    let e = engine(1, &Config::builtin(ProfileName::SafeHarbor));
    let mut out = Vec::new();
    FHIR.deidentify(e, input, &mut out, &mut Tally::default())
        .map(|()| out)
}

#[test]
fn errors_name_the_position_not_the_value() {
    let e = try_run(b"{\"resourceType\":\"Patient\",\n \"name\":[{\"family\":\"Secretname\"}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && !e.contains("Secretname"), "{e}");
    let e = try_run(b"{\"resourceType\":\"Patient\",\n \"name\": Secretname}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && !e.contains("Secretname"), "{e}");
    let nd = b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n{\"resourceType\":\"Patient\",\"id\":\"Secretname\"\n";
    let e = try_run(nd).unwrap_err().to_string();
    assert!(
        e.starts_with("NDJSON line 3") && !e.contains("Secretname"),
        "{e}"
    );
    let e = try_run(b"{\"id\":\"Secretname\"}").unwrap_err().to_string();
    assert!(
        e.contains("resourceType") && !e.contains("Secretname"),
        "{e}"
    );
    let e = try_run(b"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"id\":\"x\"}},{\"resource\":{\"resourceType\":7}}]}").unwrap_err().to_string();
    assert!(e.contains("/entry/0/resource"), "{e}");
    let e = try_run(b"{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\"}\n[1,2]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3"), "{e}");
    assert!(try_run(b"").is_err());
    assert!(try_run(b"\xff\xfe{}").is_err());
}

#[test]
fn truncations_of_a_real_bundle_error_cleanly() {
    let input = std::fs::read(data_dir().join("ms-anonymizer/bundle-basic.json")).unwrap();
    for cut in (0..input.len()).step_by(97) {
        let _ = try_run(&input[..cut]);
    }
    assert!(try_run(&input).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_selector_text_parses_or_errors(text in "[A-Za-z*.()\\[\\]:/_ -]{0,40}") {
        use phiguard_rules::Selector;
        let _ = phiguard_fhir::FhirSelector::parse(&text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = try_run(&bytes);
    }

    #[test]
    fn mutated_resources_never_panic(pos in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000) {
        let mut input = std::fs::read(data_dir().join("ms-anonymizer/patient-basic.json")).unwrap();
        let n = input.len();
        input[pos % n] = byte;
        input.truncate(n - cut % 64);
        let _ = try_run(&input);
    }
}
