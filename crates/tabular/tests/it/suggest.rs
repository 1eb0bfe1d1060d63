//! `--suggest`: a config section that parses, a rule and a reason per column, no sampled value.

use phiguard_rules::{Config, ProfileName};

use crate::{Table, config, data_dir, engine_for};

#[test]
fn suggestion_parses_covers_every_column_and_holds_no_values() {
    for name in ["patients", "encounters", "providers"] {
        let path = data_dir().join(format!("synthea/{name}.csv"));
        let input = std::fs::read(&path).unwrap();
        let cfg = config(ProfileName::SafeHarbor);
        let engine = engine_for(1, &cfg);
        let text = phiguard_tabular::suggest(&engine, input.as_slice(), 50).unwrap();
        let parsed = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let t = Table::parse(std::str::from_utf8(&input).unwrap());
        assert_eq!(parsed.csv.rules.len(), t.header.len());
        for (rule, h) in parsed.csv.rules.iter().zip(&t.header) {
            assert_eq!(&rule.select, h);
        }
        // No sampled value appears: every cell of length >= 4 that is not a column name.
        for row in t.rows.iter().take(50) {
            for v in row {
                let v = v.trim();
                if v.len() >= 4 && !t.header.iter().any(|h| h == v) && v.parse::<f64>().is_err() {
                    assert!(
                        !text.contains(v),
                        "{name}: a sampled value is in the suggestion"
                    );
                }
            }
        }
        // The compiled suggestion de-identifies the table as the built-in profile does.
        let deid = phiguard_tabular::TabularDeid::new(&parsed).unwrap();
        let mut out = Vec::new();
        let mut tally = phiguard_rules::Tally::default();
        deid.deidentify(&engine, input.as_slice(), &mut out, &mut tally)
            .unwrap();
        assert!(tally.uncovered.is_empty(), "{:?}", tally.uncovered.keys());
    }
}

#[test]
fn suggestion_says_why() {
    let input = "Id,FIRST,LAST,BIRTHDATE,WHO\n1,Ann,Lee,1980-01-02,Maria Lopez\n2,Bob,Ray,1990-03-04,John Smith\n";
    let cfg = config(ProfileName::SafeHarbor);
    let engine = engine_for(1, &cfg);
    let text = phiguard_tabular::suggest_table(&engine, &cfg, Some("people"), input.as_bytes(), 10)
        .unwrap();
    assert!(
        text.contains("select = \"people.FIRST\", action = \"remove\""),
        "{text}"
    );
    assert!(
        text.contains("select = \"people.BIRTHDATE\", action = \"generalize:year\""),
        "{text}"
    );
    assert!(
        text.contains("name matches BIRTHDATE (birth date)"),
        "{text}"
    );
    let who = text.lines().find(|l| l.contains("people.WHO")).unwrap();
    assert!(
        who.contains("no name rule") && who.contains("NAME 100%"),
        "{who}"
    );
    assert!(!text.contains("Lopez") && !text.contains("Ann"));
    Config::from_toml(&text).unwrap();
}
