//! Any bytes through FHIR (resource, Bundle or NDJSON) de-identification: an error or output,
//! never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use phiguard_rules::Tally;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (profile, data) = common::profile(data);
    let (engine, config) = common::engine(profile);
    if let Ok(deid) = phiguard_fhir::FhirDeid::new(&config) {
        let mut out = Vec::new();
        let _ = deid.deidentify(&engine, data, &mut out, &mut Tally::default());
    }
});
