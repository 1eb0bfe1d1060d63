//! De-identifies one CSV file to stdout with a fixed demo key: `deid_csv FILE [PROFILE]`, or
//! prints the `--suggest` proposal: `deid_csv FILE PROFILE suggest`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let profile = args
        .get(2)
        .and_then(|p| phiguard_rules::ProfileName::parse(p))
        .unwrap_or_default();
    let config = phiguard_rules::Config::builtin(profile);
    let deid = phiguard_tabular::TabularDeid::new(&config).unwrap();
    let engine = phiguard_rules::Engine::new(
        phiguard_deid::DeidKey::from_bytes([1; 32]),
        config.engine_options(),
    );
    let path = std::path::Path::new(&args[1]);
    let table = phiguard_tabular::table_name(path);
    let input = std::fs::File::open(path).unwrap();
    if args.get(3).is_some_and(|a| a == "suggest") {
        let text = phiguard_tabular::suggest_table(&engine, &config, table.as_deref(), input, 200)
            .unwrap();
        print!("{text}");
        return;
    }
    let mut tally = phiguard_rules::Tally::default();
    deid.deidentify_table(
        &engine,
        table.as_deref(),
        std::io::BufReader::new(input),
        std::io::stdout().lock(),
        &mut tally,
    )
    .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&tally).unwrap());
}
