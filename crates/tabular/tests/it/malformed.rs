//! Malformed input: errors that name the position and hold no value; nothing panics.

use phiguard_rules::ProfileName;
use phiguard_tabular::TabularError;
use proptest::prelude::*;

use crate::{config, run};

#[test]
fn ragged_rows_name_line_and_counts() {
    let input = "Id,FIRST,LAST\n1,Ann,Lee\n2,Bob\n";
    let e = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            TabularError::Ragged {
                line: 3,
                expected: 3,
                actual: 2
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("line 3") && !msg.contains("Bob"), "{msg}");
    // Past the sample too.
    let mut long = String::from("Id,FIRST,LAST\n");
    for i in 0..500 {
        long.push_str(&format!("{i},Ann,Lee\n"));
    }
    long.push_str("x,Secretname,Lee,extra\n");
    let e = run(&config(ProfileName::SafeHarbor), 1, None, long.as_bytes()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("line 502") && msg.contains('4') && !msg.contains("Secretname"),
        "{msg}"
    );
}

#[test]
fn invalid_utf8_names_line_and_field() {
    let mut input = b"Id,FIRST\n1,Ann\n2,".to_vec();
    input.extend_from_slice(b"Jos\xe9\n");
    let e = run(&config(ProfileName::SafeHarbor), 1, None, &input).unwrap_err();
    assert!(
        matches!(e, TabularError::Utf8 { line: 3, field: 2 }),
        "{e:?}"
    );
}

#[test]
fn broken_quotes_do_not_panic() {
    for input in [
        "Id,NOTE\n1,\"unterminated\n2,x\n",
        "Id,NOTE\n1,a\"b\"c\n",
        "\"",
        "Id,NOTE\n\"\"\"\n",
    ] {
        let _ = run(&config(ProfileName::SafeHarbor), 1, None, input.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = run(&config(ProfileName::SafeHarbor), 1, None, &bytes);
    }

    #[test]
    fn mutated_tables_never_panic(
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
    ) {
        let base = std::fs::read(crate::data_dir().join("synthea/patients.csv")).unwrap();
        let mut b = base[..cut.min(base.len())].to_vec();
        for (i, v) in flips {
            if !b.is_empty() {
                let n = b.len();
                b[i % n] = v;
            }
        }
        let _ = run(&config(ProfileName::SafeHarbor), 1, Some("patients"), &b);
    }
}
