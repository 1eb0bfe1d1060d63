//! Deterministic JSON: the bytes of a record that its leaf hash is taken over.
//!
//! Objects have their keys sorted by UTF-8 byte order, there is no whitespace, strings escape
//! only `"`, `\` and control characters (`\b \f \n \r \t`, others as lowercase `\u00xx`), and
//! numbers are printed as serde_json prints them (integers exactly, floats as the shortest
//! string that reads back to the same value). The same JSON value always gives the same bytes,
//! whatever the key order it arrived in, so a record's leaf hash can be recomputed anywhere.
//! For records of ASCII keys and integers this is the same text as RFC 8785 (JCS).

use serde_json::Value;

/// The canonical text of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as the canonical form escapes it.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_dropped() {
        let v: Value = serde_json::from_str(
            r#"{ "b": 1, "a": { "z": [3, {"y": null, "x": true}], "c": "s" } }"#,
        )
        .unwrap();
        assert_eq!(
            to_canonical_string(&v),
            r#"{"a":{"c":"s","z":[3,{"x":true,"y":null}]},"b":1}"#
        );
    }

    #[test]
    fn same_value_in_any_key_order_gives_same_text() {
        let a: Value = serde_json::from_str(r#"{"user":"u1","action":"summarize","n":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"n":2,"action":"summarize","user":"u1"}"#).unwrap();
        assert_eq!(to_canonical_string(&a), to_canonical_string(&b));
    }

    #[test]
    fn strings_escape_minimally_and_round_trip() {
        let v = json!({"s": "quote \" backslash \\ nl \n tab \t bell \u{07} é 😀 <>&"});
        let text = to_canonical_string(&v);
        assert_eq!(
            text,
            "{\"s\":\"quote \\\" backslash \\\\ nl \\n tab \\t bell \\u0007 é 😀 <>&\"}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn numbers_print_as_serde_json_does() {
        let v: Value =
            serde_json::from_str(r#"[0, -1, 18446744073709551615, 1.5, 1e300, 0.1]"#).unwrap();
        assert_eq!(
            to_canonical_string(&v),
            "[0,-1,18446744073709551615,1.5,1e+300,0.1]"
        );
    }
}
