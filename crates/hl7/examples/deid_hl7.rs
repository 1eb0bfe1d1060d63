//! De-identifies one HL7 file to stdout with a built-in profile and a fixed demo key:
//! `cargo run -p phiguard-hl7 --example deid_hl7 -- FILE [safe-harbor|limited-data-set|shifted]`.

use phiguard_deid::DeidKey;
use phiguard_rules::{Config, Engine, ProfileName, Tally};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: deid_hl7 FILE [PROFILE]")?;
    let profile = args
        .next()
        .and_then(|p| ProfileName::parse(&p))
        .unwrap_or(ProfileName::SafeHarbor);
    let config = Config::builtin(profile);
    let deid = phiguard_hl7::Hl7Deid::new(&config)?;
    let engine = Engine::new(DeidKey::from_bytes([42; 32]), config.engine_options());
    let mut tally = Tally::default();
    let input = std::fs::File::open(&path)?;
    deid.deidentify(&engine, input, std::io::stdout().lock(), &mut tally)?;
    eprintln!(
        "{} messages; uncovered: {:?}",
        tally.records,
        tally.uncovered.keys().collect::<Vec<_>>()
    );
    Ok(())
}
