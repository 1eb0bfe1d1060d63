//! The few Python behaviours score.py's numbers and texts depend on, reproduced exactly:
//! `str.split()` whitespace, slicing with clamped and negative indices, truthiness of JSON
//! values, `round(x, 4)`, `f"{x:.1f}"` and `repr(float)`.

use serde_json::Value;

/// Python's `str.isspace()`: Rust's `White_Space` plus the four information separators
/// U+001C..U+001F (bidirectional class B/S), which Python also splits on.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `" ".join(t.split())`: runs of whitespace become one space, ends trimmed.
pub fn norm(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for w in t.split(is_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// `str.strip()` with no argument.
pub fn strip(t: &str) -> &str {
    t.trim_matches(is_space)
}

/// The code-point range Python's `text[start:end]` selects in a string of `len` code points:
/// negative indices count from the end, out-of-range ones are clamped, and a reversed range is
/// empty.
pub fn slice_bounds(len: usize, start: i64, end: i64) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let fix = |i: i64| -> usize {
        let i = if i < 0 { i.saturating_add(len_i) } else { i };
        usize::try_from(i.clamp(0, len_i)).unwrap_or(0)
    };
    let (s, e) = (fix(start), fix(end));
    (s, e.max(s))
}

/// `repr(s)` for a Python `str`: single quotes unless the text holds `'` and no `"`, with
/// backslash escapes for the quote, `\\`, `\n`, `\r`, `\t` and other C0/C1 control characters.
/// (Python also escapes other non-printable code points, such as format characters; those are
/// left as they are here.)
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python truthiness of a JSON value (`if x:`): false for `null`, `false`, `0`, `0.0`, `""`,
/// `[]` and `{}`.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `round(x, 4)`: the exact binary value rounded to 4 decimals, ties to even, read back.
/// (Rust's fixed-precision formatting rounds the exact value half-to-even, as CPython's dtoa.)
pub fn round4(x: f64) -> f64 {
    format!("{x:.4}").parse().unwrap_or(x)
}

/// score.py's `pct`: `"-"` for `None`, else `f"{100 * x:.1f}"`.
pub fn pct(x: Option<f64>) -> String {
    match x {
        None => "-".to_string(),
        Some(x) => format!("{:.1}", 100.0 * x),
    }
}

/// `repr(x)` for a Python float: the shortest round-trip digits, in fixed notation when the
/// decimal exponent is in -4..16, else as `1.5e-07` / `1e+16`; always a `.0` on whole numbers.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sci = format!("{x:e}"); // shortest digits: "-1.5e-7"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let fixed = format!("{x}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_collapses_python_whitespace() {
        assert_eq!(norm("  a \t b\n\nc  "), "a b c");
        assert_eq!(norm("a\u{1c}b\u{a0}c\u{3000}d"), "a b c d");
        assert_eq!(norm("a\u{200b}b"), "a\u{200b}b"); // zero-width space is not whitespace
        assert_eq!(norm(" \n "), "");
        assert_eq!(strip("\u{85} x \u{1f}"), "x");
    }

    #[test]
    fn slice_bounds_follow_python() {
        // "abcde"[s:e]
        assert_eq!(slice_bounds(5, 1, 3), (1, 3));
        assert_eq!(slice_bounds(5, 3, 1), (3, 3));
        assert_eq!(slice_bounds(5, -2, 5), (3, 5));
        assert_eq!(slice_bounds(5, -9, 2), (0, 2));
        assert_eq!(slice_bounds(5, 2, 99), (2, 5));
        assert_eq!(slice_bounds(5, 7, 9), (5, 5));
        assert_eq!(slice_bounds(5, 0, -1), (0, 4));
        assert_eq!(slice_bounds(0, 0, 3), (0, 0));
    }

    #[test]
    fn str_repr_matches_python() {
        // Expected values from CPython's repr().
        assert_eq!(str_repr("dev"), "'dev'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("tab\there\\ñ"), "'tab\\there\\\\ñ'");
        assert_eq!(str_repr("\u{1}\u{85}"), "'\\x01\\x85'");
    }

    #[test]
    fn truthiness() {
        use serde_json::json;
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("no"),
            json!([0]),
            json!({"a": 0}),
        ] {
            assert!(truthy(&v), "{v}");
        }
    }

    #[test]
    fn round4_is_half_even_on_the_exact_value() {
        // Expected values from CPython's round(x, 4).
        assert_eq!(round4(0.03125), 0.0312);
        assert_eq!(round4(0.09375), 0.0938);
        assert_eq!(round4(0.00025), 0.0003); // 0.00025 is slightly above the tie in binary
        assert_eq!(round4(0.12345), 0.1235);
        assert_eq!(round4(0.99995), 1.0);
        assert_eq!(round4(2.0 / 3.0), 0.6667);
        assert_eq!(round4(0.0), 0.0);
    }

    #[test]
    fn pct_matches_format_1f() {
        assert_eq!(pct(None), "-");
        assert_eq!(pct(Some(0.03125)), "3.1");
        assert_eq!(pct(Some(0.00025)), "0.0");
        assert_eq!(pct(Some(1.0)), "100.0");
        assert_eq!(pct(Some(0.6667)), "66.7");
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.1, "0.1"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }
}
