//! Any bytes through the CSV de-identifier: an error or an output, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use phiguard_rules::{Config, Engine, ProfileName, Tally};
use phiguard_tabular::TabularDeid;

fn setup() -> &'static (TabularDeid, Engine) {
    static S: OnceLock<(TabularDeid, Engine)> = OnceLock::new();
    S.get_or_init(|| {
        let config = Config::builtin(ProfileName::Shifted);
        let deid = TabularDeid::new(&config).unwrap_or_else(|e| unreachable!("{e}"));
        let engine = Engine::new(
            phiguard_deid::DeidKey::from_bytes([7; 32]),
            config.engine_options(),
        );
        (deid, engine)
    })
}

fuzz_target!(|data: &[u8]| {
    let (deid, engine) = setup();
    let mut out = Vec::new();
    let mut tally = Tally::default();
    let _ = deid.deidentify_table(engine, Some("patients"), data, &mut out, &mut tally);
    let _ = phiguard_tabular::sniff(data);
});
