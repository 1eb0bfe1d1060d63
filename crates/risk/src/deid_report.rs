//! Adding risk reports to a phiguard de-identification report (`deid-report.json` and
//! `deid-report.md`), as text in and text out: the caller does the (atomic) file handling.
//!
//! - JSON: the report's top-level `risk` member is an array of [`RiskReport`]s, each exactly
//!   the object `phiguard risk --json` prints. An entry is identified by its table's file name
//!   stem and its set of quasi-identifier columns: adding a report for the same pair replaces
//!   the entry in place, another pair is appended. Every other member of the de-identification
//!   report is copied byte for byte (it is never parsed into numbers and printed again).
//! - Markdown: a `## Re-identification risk` section holding every entry of the array, each
//!   rendered by [`RiskReport::to_markdown`] with its headings moved down two levels; an
//!   existing section is replaced, else the section is appended.

use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Result, RiskError};
use crate::report::RiskReport;

/// The top-level member of the de-identification report holding the risk reports.
pub const RISK_MEMBER: &str = "risk";

/// The Markdown heading of the risk section.
pub const MD_HEADING: &str = "## Re-identification risk";

fn bad(m: impl Into<String>) -> RiskError {
    RiskError::DeidReport(m.into())
}

/// Where a JSON error is and what kind it is, without serde_json's message (which can quote
/// the text).
fn position(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

/// A JSON object's members in file order, each value as its exact text.
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawMembers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawMembers, A::Error> {
                let mut v = Vec::new();
                while let Some((k, raw)) = map.next_entry::<String, Box<RawValue>>()? {
                    v.push((k, raw));
                }
                Ok(RawMembers(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A de-identification report read for adding risk reports to it.
pub struct DeidReportJson {
    members: Vec<(String, Box<RawValue>)>,
    /// The `risk` entries already there, as text and parsed.
    entries: Vec<(Box<RawValue>, RiskReport)>,
    trailing_newline: bool,
}

/// Whether `tool` names a phiguard de-identification run: the structured run writes
/// `"tool": "phiguard <version>"`, the text run `"tool": {"name": "phiguard", ...}`.
/// `phiguard-risk` (a risk report) is not one.
fn is_deid_tool(tool: &serde_json::Value) -> bool {
    let name = match tool {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(o) => o
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(""),
        _ => "",
    };
    name.starts_with("phiguard") && !name.starts_with("phiguard-risk")
}

impl DeidReportJson {
    /// Reads the text of a `deid-report.json`; fails unless it is a JSON object whose `tool`
    /// names phiguard (and not `phiguard-risk`), and whose `risk` member, if any, is an array
    /// of risk reports. Error messages give positions, never content.
    pub fn parse(text: &str) -> Result<Self> {
        let members = serde_json::from_str::<RawMembers>(text)
            .map_err(|e| {
                bad(format!(
                    "not a phiguard de-identification report: not a JSON object ({})",
                    position(&e)
                ))
            })?
            .0;
        let tool = members
            .iter()
            .find(|(k, _)| k == "tool")
            .and_then(|(_, raw)| serde_json::from_str::<serde_json::Value>(raw.get()).ok());
        if !tool.as_ref().is_some_and(is_deid_tool) {
            return Err(bad(
                "not a phiguard de-identification report (no \"tool\" naming phiguard; a `phiguard risk` report is not one)",
            ));
        }
        let mut entries = Vec::new();
        if let Some((_, raw)) = members.iter().find(|(k, _)| k == RISK_MEMBER) {
            let list: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).map_err(|_| {
                bad(format!(
                    "the report's \"{RISK_MEMBER}\" member is not an array"
                ))
            })?;
            for (i, raw) in list.into_iter().enumerate() {
                let parsed: RiskReport = serde_json::from_str(raw.get()).map_err(|e| {
                    bad(format!(
                        "entry {} of the report's \"{RISK_MEMBER}\" array is not a phiguard risk report ({})",
                        i + 1,
                        position(&e)
                    ))
                })?;
                entries.push((raw, parsed));
            }
        }
        Ok(DeidReportJson {
            members,
            entries,
            trailing_newline: text.ends_with('\n'),
        })
    }

    /// The risk reports in the `risk` array, in order.
    pub fn entries(&self) -> impl Iterator<Item = &RiskReport> {
        self.entries.iter().map(|(_, r)| r)
    }

    /// Adds `report`, replacing the entry for the same table stem and quasi-identifier set
    /// (in place) or appending it.
    pub fn upsert(&mut self, report: &RiskReport) -> Result<()> {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| bad(format!("cannot serialise the risk report: {e}")))?;
        // Never write an entry a later run could not read back (a non-finite figure would be
        // written as null).
        serde_json::from_str::<RiskReport>(&text).map_err(|e| {
            bad(format!(
                "the risk report does not read back as one ({})",
                position(&e)
            ))
        })?;
        // Pretty-printed at the depth of an array element inside the top-level object.
        let text = text.replace('\n', "\n    ");
        let raw = RawValue::from_string(text)
            .map_err(|e| bad(format!("cannot serialise the risk report: {e}")))?;
        let key = entry_key(report);
        let entry = (raw, report.clone());
        match self.entries.iter().position(|(_, r)| entry_key(r) == key) {
            Some(i) => self.entries[i] = entry,
            None => self.entries.push(entry),
        }
        Ok(())
    }

    /// The report's text: every member other than `risk` exactly as read, in its place; `risk`
    /// where it was, or last.
    pub fn to_text(&self) -> Result<String> {
        let mut array = String::from("[");
        for (i, (raw, _)) in self.entries.iter().enumerate() {
            array.push_str(if i == 0 { "\n    " } else { ",\n    " });
            array.push_str(raw.get());
        }
        array.push_str(if self.entries.is_empty() {
            "]"
        } else {
            "\n  ]"
        });
        let mut out = String::from("{");
        let mut placed = false;
        let mut first = true;
        let mut member = |out: &mut String, k: &str, v: &str| -> Result<()> {
            out.push_str(if first { "\n  " } else { ",\n  " });
            first = false;
            out.push_str(
                &serde_json::to_string(k).map_err(|e| bad(format!("cannot write a key: {e}")))?,
            );
            out.push_str(": ");
            out.push_str(v);
            Ok(())
        };
        for (k, v) in &self.members {
            if k == RISK_MEMBER {
                if !placed {
                    member(&mut out, k, &array)?;
                    placed = true;
                }
            } else {
                member(&mut out, k, v.get())?;
            }
        }
        if !placed {
            member(&mut out, RISK_MEMBER, &array)?;
        }
        out.push_str("\n}");
        if self.trailing_newline {
            out.push('\n');
        }
        Ok(out)
    }
}

/// What identifies an entry: the table's file name stem and its quasi-identifier columns
/// (as a set: the same columns in another order give the same classes).
fn entry_key(r: &RiskReport) -> (String, Vec<String>) {
    let stem = Path::new(&r.input)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut qis: Vec<String> = r
        .quasi_identifiers
        .iter()
        .map(|q| q.column.clone())
        .collect();
    qis.sort();
    (stem, qis)
}

/// The Markdown section for `entries`: [`MD_HEADING`], then each report as
/// [`RiskReport::to_markdown`] renders it, every heading moved down two levels.
pub fn markdown_section<'a>(entries: impl IntoIterator<Item = &'a RiskReport>) -> String {
    let mut s = format!("{MD_HEADING}\n");
    for r in entries {
        s.push('\n');
        for line in r.to_markdown().lines() {
            // Every line starting with '#' goes down two levels, so that no line of the
            // section but its heading starts with "# " or "## ".
            if line.starts_with('#') {
                s.push_str("##");
            }
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

fn ends_section(line: &str) -> bool {
    line.starts_with("# ") || line.starts_with("## ")
}

/// `md` with its risk section (from a line equal to [`MD_HEADING`] to the next `#`/`##`
/// heading, or the end) replaced by `section`, or with `section` appended.
pub fn replace_markdown_section(md: &str, section: &str) -> String {
    let lines: Vec<&str> = md.split_inclusive('\n').collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end_matches(['\r', '\n']) == MD_HEADING);
    let (before, after) = match start {
        Some(i) => {
            let end = lines[i + 1..]
                .iter()
                .position(|l| ends_section(l))
                .map_or(lines.len(), |j| i + 1 + j);
            (lines[..i].concat(), lines[end..].concat())
        }
        None => (md.to_string(), String::new()),
    };
    let mut out = before.trim_end().to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(section.trim_end());
    out.push('\n');
    if !after.is_empty() {
        out.push('\n');
        out.push_str(&after);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(input: &str, qis: &[&str], k: usize) -> RiskReport {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "zip,sex,age\n123,F,1\n123,F,1\n124,M,2\n124,M,2\n").unwrap();
        let mut cfg = crate::RiskConfig::new(&path, qis);
        cfg.target_k = Some(k);
        let mut r = crate::assess(&cfg).unwrap();
        r.input = input.to_string();
        r
    }

    const DEID: &str = "{\n  \"tool\": \"phiguard 0.1.0\",\n  \"seconds\": 0.497318515,\n  \"inputs\": [\n    {\n      \"index\": 0\n    }\n  ],\n  \"review\": []\n}";

    #[test]
    fn members_are_kept_byte_for_byte_and_entries_replaced() {
        let mut d = DeidReportJson::parse(DEID).unwrap();
        d.upsert(&report("out/t.csv", &["zip", "sex"], 1)).unwrap();
        let once = d.to_text().unwrap();
        let v: serde_json::Value = serde_json::from_str(&once).unwrap();
        assert_eq!(v["risk"].as_array().unwrap().len(), 1);
        // Without the new member the text is the original.
        let cut = once.find(",\n  \"risk\"").unwrap();
        assert_eq!(format!("{}\n}}", &once[..cut]), DEID);
        // Same table stem (another folder) and the same columns in another order: replaced.
        let mut d = DeidReportJson::parse(&once).unwrap();
        d.upsert(&report("/elsewhere/t.csv", &["sex", "zip"], 2))
            .unwrap();
        let twice = d.to_text().unwrap();
        let v: serde_json::Value = serde_json::from_str(&twice).unwrap();
        assert_eq!(v["risk"].as_array().unwrap().len(), 1);
        assert_eq!(v["risk"][0]["input"], "/elsewhere/t.csv");
        assert_eq!(v["risk"][0]["search"]["target"]["k"], 2);
        // Other columns or another table: appended, the first entry kept as it was.
        let mut d = DeidReportJson::parse(&twice).unwrap();
        d.upsert(&report("out/t.csv", &["zip"], 1)).unwrap();
        d.upsert(&report("out/u.csv", &["sex", "zip"], 1)).unwrap();
        let thrice = d.to_text().unwrap();
        let v: serde_json::Value = serde_json::from_str(&thrice).unwrap();
        assert_eq!(v["risk"].as_array().unwrap().len(), 3);
        assert_eq!(v["risk"][0]["input"], "/elsewhere/t.csv");
        assert!(thrice.starts_with(&twice[..twice.find("\n  ]").unwrap()]));
        // Read and written again unchanged.
        assert_eq!(
            DeidReportJson::parse(&thrice).unwrap().to_text().unwrap(),
            thrice
        );
        // The member stays where it is.
        let mid = "{\n  \"tool\": \"phiguard 1\",\n  \"risk\": [],\n  \"z\": 1\n}\n";
        let mut d = DeidReportJson::parse(mid).unwrap();
        d.upsert(&report("t.csv", &["zip"], 1)).unwrap();
        let text = d.to_text().unwrap();
        assert!(
            text.starts_with(
                "{\n  \"tool\": \"phiguard 1\",\n  \"risk\": [\n    {\n      \"tool\""
            )
        );
        assert!(text.ends_with("\n    }\n  ],\n  \"z\": 1\n}\n"), "{text}");
    }

    #[test]
    fn refuses_what_is_not_a_deid_report() {
        for bad in [
            "",
            "[1]",
            "{\"tool\": 1}",
            "{\"profile\": \"safe-harbor\"}",
            "{\"tool\": \"other 1.0\"}",
            "{\"tool\": \"phiguard-risk 0.1.0\", \"input\": \"t.csv\"}",
            "{\"tool\": \"phiguard 0.1.0\", \"risk\": {}}",
            "{\"tool\": \"phiguard 0.1.0\", \"risk\": [{\"k\": 1}]}",
        ] {
            assert!(DeidReportJson::parse(bad).is_err(), "{bad}");
        }
        assert!(DeidReportJson::parse("{\"tool\": {\"name\": \"phiguard\"}}").is_ok());
        assert!(DeidReportJson::parse("{\"tool\": \"phiguard 0.1.0\", \"risk\": []}").is_ok());
    }

    #[test]
    fn markdown_section_is_replaced_not_duplicated() {
        let deid =
            "# phiguard de-identification report\n\n## Notes\n\n| note | count |\n|---|---|\n";
        let a = report("out/t.csv", &["zip", "sex"], 1);
        let once = replace_markdown_section(deid, &markdown_section([&a]));
        assert!(once.starts_with(deid));
        assert!(
            once.contains(
                "\n\n## Re-identification risk\n\n### Re-identification risk: out/t.csv\n"
            )
        );
        assert!(once.contains("\n#### Privacy models\n"));
        assert!(once.contains("\n#### Re-identification risk (threshold 20.00%)\n"));
        assert_eq!(once.matches("\n## ").count(), 2, "{once}");
        let b = report("out/u.csv", &["zip"], 1);
        let twice = replace_markdown_section(&once, &markdown_section([&a, &b]));
        assert_eq!(twice.lines().filter(|l| *l == MD_HEADING).count(), 1);
        assert!(twice.contains("### Re-identification risk: out/u.csv"));
        assert_eq!(
            replace_markdown_section(&twice, &markdown_section([&a])),
            once
        );
        // A section in the middle is replaced there; the sections after it stay.
        let mid = format!("{}\n## Later\n\ntext\n", once);
        let again = replace_markdown_section(&mid, &markdown_section([&b]));
        assert!(again.starts_with(deid));
        assert!(again.ends_with("\n\n## Later\n\ntext\n"));
        assert!(!again.contains("out/t.csv"));
    }
}
