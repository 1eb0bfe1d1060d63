//! `cargo +nightly fuzz run deidentify` from crates/hl7: the parser and the de-identifier must
//! never panic, and whatever they accept must parse again.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use phiguard_deid::DeidKey;
use phiguard_hl7::{Hl7Deid, parse_segments};
use phiguard_rules::{Config, Engine, ProfileName, Tally};

fn setup() -> &'static (Hl7Deid, Engine) {
    static S: OnceLock<(Hl7Deid, Engine)> = OnceLock::new();
    S.get_or_init(|| {
        let config = Config::builtin(ProfileName::Shifted);
        let deid = Hl7Deid::new(&config).unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new(DeidKey::from_bytes([1; 32]), config.engine_options());
        (deid, engine)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_segments(data);
    let (deid, engine) = setup();
    let mut out = Vec::new();
    if deid
        .deidentify(engine, data, &mut out, &mut Tally::default())
        .is_ok()
        && parse_segments(out.as_slice()).is_err()
    {
        panic!("output does not parse");
    }
});
