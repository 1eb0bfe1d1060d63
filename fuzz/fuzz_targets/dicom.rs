//! Any bytes through DICOM de-identification: an error or output, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use phiguard_rules::Tally;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (profile, data) = common::profile(data);
    let (engine, config) = common::engine(profile);
    if let Ok(deid) = phiguard_dicom::DicomDeid::new(&config) {
        let _ = deid.deidentify_bytes(&engine, data, &mut Tally::default());
    }
});
