#![no_main]
//! Feeds arbitrary bytes to the FHIR reader and walker: errors are fine, panics are not.

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use phiguard_deid::DeidKey;
use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, Engine, ProfileName, Tally};

static SETUP: LazyLock<(FhirDeid, Engine)> = LazyLock::new(|| {
    let config = Config::builtin(ProfileName::SafeHarbor);
    let fhir = FhirDeid::new(&config).unwrap_or_else(|_| std::process::abort());
    let engine = Engine::new(DeidKey::from_bytes([9; 32]), config.engine_options());
    (fhir, engine)
});

fuzz_target!(|data: &[u8]| {
    let (fhir, engine) = &*SETUP;
    let mut out = Vec::new();
    let _ = fhir.deidentify(engine, data, &mut out, &mut Tally::default());
});
