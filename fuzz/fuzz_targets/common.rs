// Shared by the targets: one engine and config per process (a fixed key: fuzzing needs
// determinism, not secrecy).
use phiguard_deid::DeidKey;
use phiguard_rules::{Config, Engine, ProfileName};

pub fn engine(profile: ProfileName) -> (Engine, Config) {
    let config = Config::builtin(profile);
    let engine = Engine::new(DeidKey::from_bytes([7; 32]), config.engine_options());
    (engine, config)
}

/// The first input byte picks the profile, so every profile's paths are fuzzed.
pub fn profile(data: &[u8]) -> (ProfileName, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (
            match b % 3 {
                0 => ProfileName::SafeHarbor,
                1 => ProfileName::LimitedDataSet,
                _ => ProfileName::Shifted,
            },
            rest,
        ),
        None => (ProfileName::SafeHarbor, data),
    }
}
