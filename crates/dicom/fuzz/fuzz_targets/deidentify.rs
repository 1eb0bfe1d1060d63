//! `cargo fuzz run deidentify` from crates/dicom: arbitrary bytes through the structural check,
//! the dicom-rs decoder and the de-identification walk; errors are fine, panics are not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use phiguard_deid::DeidKey;
use phiguard_dicom::DicomDeid;
use phiguard_rules::{Config, Engine, EngineOptions, ProfileName, Tally};

fn setup() -> &'static (DicomDeid, Engine) {
    static S: OnceLock<(DicomDeid, Engine)> = OnceLock::new();
    S.get_or_init(|| {
        let deid = match DicomDeid::new(&Config::builtin(ProfileName::SafeHarbor)) {
            Ok(d) => d,
            Err(e) => panic!("config: {e}"),
        };
        (deid, Engine::new(DeidKey::from_bytes([1; 32]), EngineOptions::default()))
    })
}

fuzz_target!(|data: &[u8]| {
    let (deid, engine) = setup();
    let mut tally = Tally::default();
    let _ = phiguard_dicom::sniff(data);
    let _ = deid.deidentify_bytes(engine, data, &mut tally);
    // With a preamble and magic code in front, the bytes reach the meta group parser.
    let mut framed = vec![0u8; 128];
    framed.extend_from_slice(b"DICM");
    framed.extend_from_slice(data);
    let _ = deid.deidentify_bytes(engine, &framed, &mut tally);
});
