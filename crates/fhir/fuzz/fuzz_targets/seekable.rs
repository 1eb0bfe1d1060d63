#![no_main]
//! Feeds arbitrary bytes to `deidentify_seekable` with every Bundle streamed (threshold 0): the
//! layout detection on the first line, the two passes (pretty or on one line) and their
//! fallbacks. Errors are fine, panics are not, and the result must be the whole-document
//! path's: the same bytes and tally, or an error for both.

use std::io::Cursor;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use phiguard_deid::DeidKey;
use phiguard_fhir::FhirDeid;
use phiguard_rules::{Config, Engine, ProfileName, Tally};

static SETUP: LazyLock<(FhirDeid, FhirDeid, Engine)> = LazyLock::new(|| {
    let config = Config::builtin(ProfileName::SafeHarbor);
    let whole = FhirDeid::new(&config).unwrap_or_else(|_| std::process::abort());
    let streamed = FhirDeid::new(&config)
        .unwrap_or_else(|_| std::process::abort())
        .with_stream_threshold(0);
    let engine = Engine::new(DeidKey::from_bytes([9; 32]), config.engine_options());
    (whole, streamed, engine)
});

fuzz_target!(|data: &[u8]| {
    let (whole, streamed, engine) = &*SETUP;
    let mut got = Vec::new();
    let mut got_tally = Tally::default();
    let r = streamed.deidentify_seekable(engine, Cursor::new(data), &mut got, &mut got_tally, 1);
    let mut want = Vec::new();
    let mut want_tally = Tally::default();
    let w = whole.deidentify(engine, data, &mut want, &mut want_tally);
    assert_eq!(
        r.is_ok(),
        w.is_ok(),
        "streamed and whole-document paths disagree"
    );
    if r.is_ok() {
        assert!(got == want, "streamed output differs");
        assert!(got_tally == want_tally, "streamed tally differs");
    }
});
