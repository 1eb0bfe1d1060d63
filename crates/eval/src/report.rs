//! The result of scoring, with the field names of score.py's JSON, and its Markdown rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::python::{float_repr, pct};

/// A `(text, count)` list, most frequent first (Python `Counter.most_common` order).
pub type TopList = Vec<(String, u64)>;

/// A JSON object whose key order matters (Python dicts keep insertion order).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = access.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        deserializer.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// Scores of one gold category (score.py's `per_category` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryResult {
    /// Gold spans of this category.
    pub spans: u64,
    /// Tokens overlapping a span of this category.
    pub tokens: u64,
    /// Share of those tokens that are predicted, rounded to 4 decimals; `None` without tokens.
    pub token_recall: Option<f64>,
    /// Share of spans (with tokens) whose every token is predicted.
    pub span_full_recall: Option<f64>,
    /// Share of spans (with tokens) with at least one token predicted.
    pub span_any_hit: Option<f64>,
    /// Spans that overlap no token (punctuation only, or out of range).
    pub spans_without_tokens: u64,
    /// Spans with at least one token not predicted (something leaked).
    pub missed_spans: u64,
    /// Spans with no token predicted.
    pub fully_missed_spans: u64,
    /// The most frequent missed span texts (whitespace-normalised).
    pub top_missed: TopList,
    /// The most frequent missed tokens.
    pub top_missed_tokens: TopList,
}

/// Precision of one predicted label (score.py's `per_pred_label` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelResult {
    /// Tokens predicted with this label.
    pub tokens: u64,
    /// Share of them that are gold PHI tokens, rounded to 4 decimals.
    pub precision: Option<f64>,
}

/// The scores of one system: the object score.py writes under `results.NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemResult {
    /// Documents scored.
    pub docs: u64,
    /// Tokens counted in P/R/F1 (don't-care tokens excluded).
    pub tokens: u64,
    /// Gold PHI tokens (`tp + fn`).
    pub gold_tokens: u64,
    /// Predicted PHI tokens (`tp + fp`).
    pub pred_tokens: u64,
    /// Predicted spans kept after `min_score` and excluded labels.
    pub pred_spans: u64,
    /// True-positive tokens.
    pub tp: u64,
    /// False-positive tokens.
    pub fp: u64,
    /// False-negative tokens.
    pub r#fn: u64,
    /// Tokens covered only by don't-care gold spans, left out of P/R/F1.
    pub dont_care_tokens: u64,
    /// Token precision, rounded to 4 decimals.
    pub precision: f64,
    /// Token recall, rounded to 4 decimals.
    pub recall: f64,
    /// Token F1 (of the unrounded precision and recall), rounded to 4 decimals.
    pub f1: f64,
    /// Per gold category, sorted by name.
    pub per_category: BTreeMap<String, CategoryResult>,
    /// Per predicted label, most tokens first.
    pub per_pred_label: OrderedMap<LabelResult>,
    /// The most frequent false-positive tokens.
    pub top_false_positive_tokens: TopList,
    /// Gold spans whose `text` differs from the document text at their offsets.
    pub gold_span_text_mismatches: u64,
    /// Prediction records whose `text` differs from the gold text.
    pub pred_text_mismatches: u64,
    /// The `--min-score` used.
    pub min_score: Option<f64>,
    /// The don't-care gold categories, sorted.
    pub dont_care_categories: Vec<String>,
    /// Whether year-only dates and countries were don't-care.
    pub year_only_dont_care: bool,
    /// Predicted labels ignored, sorted.
    pub excluded_pred_labels: Vec<String>,
}

/// The whole JSON file score.py writes with `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The gold file as given on the command line.
    pub gold: String,
    /// System name -> the prediction argument as given.
    pub systems: OrderedMap<String>,
    /// System name -> its scores.
    pub results: OrderedMap<SystemResult>,
}

impl Report {
    /// JSON laid out as Python's `json.dump(..., indent=1, ensure_ascii=False)`.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn ticked(items: &[(String, u64)], n: usize, sep: &str, count_one: bool) -> String {
    let mut out = String::new();
    for (i, (t, k)) in items.iter().take(n).enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        if *k > 1 || count_one {
            let _ = write!(out, "`{t}`×{k}");
        } else {
            let _ = write!(out, "`{t}`");
        }
    }
    out
}

/// The Markdown report, laid out as score.py's `markdown()`: a header line, the P/R/F1 table,
/// the per-category recall table, then per system the most frequent missed spans and tokens,
/// predicted-label precision and false-positive tokens. The first system's counts head the
/// report. Categories are ordered by the first system's token count, ties by name (score.py
/// leaves ties in Python's set order, which varies from run to run).
pub fn markdown(results: &OrderedMap<SystemResult>, title: &str, top_md: usize) -> String {
    let mut lines: Vec<String> = vec![format!("## {title}"), String::new()];
    let Some((_, r0)) = results.0.first() else {
        return lines.join("\n") + "\n";
    };
    let mut head = format!(
        "{} docs, {} tokens, {} gold PHI tokens",
        r0.docs, r0.tokens, r0.gold_tokens
    );
    if r0.dont_care_tokens > 0 {
        let cats = if r0.dont_care_categories.is_empty() {
            "-".to_string()
        } else {
            r0.dont_care_categories.join(",")
        };
        let _ = write!(
            head,
            ", {} don't-care tokens left out (categories {cats}{})",
            r0.dont_care_tokens,
            if r0.year_only_dont_care {
                "; year-only dates"
            } else {
                ""
            }
        );
    }
    if let Some(m) = r0.min_score {
        let _ = write!(
            head,
            "; predicted spans with score < {} ignored",
            float_repr(m)
        );
    }
    head.push('.');
    lines.push(head);
    lines.push(String::new());
    lines.push("| system | P | R | F1 | TP | FP | FN |".into());
    lines.push("|---|---:|---:|---:|---:|---:|---:|".into());
    for (n, r) in results.iter() {
        lines.push(format!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            pct(Some(r.precision)),
            pct(Some(r.recall)),
            pct(Some(r.f1)),
            r.tp,
            r.fp,
            r.r#fn
        ));
    }
    let mut cats: Vec<&str> = results
        .iter()
        .flat_map(|(_, r)| r.per_category.keys().map(String::as_str))
        .collect();
    cats.sort_unstable();
    cats.dedup();
    let tokens_of = |c: &str| r0.per_category.get(c).map_or(0, |x| x.tokens);
    cats.sort_by_key(|c| std::cmp::Reverse(tokens_of(c))); // stable: ties stay by name
    lines.push(String::new());
    lines.push(
        "Per gold category: token recall % / span full-recall % (all tokens of the span predicted)."
            .into(),
    );
    lines.push(String::new());
    let names: Vec<&str> = results.keys().collect();
    lines.push(format!(
        "| category | spans | tokens | {} |",
        names.join(" | ")
    ));
    lines.push(format!("|---|---:|---:|{}", "---:|".repeat(names.len())));
    for &c in &cats {
        let pc = r0.per_category.get(c);
        let cells: Vec<String> = results
            .iter()
            .map(|(_, r)| match r.per_category.get(c) {
                Some(x) => format!("{} / {}", pct(x.token_recall), pct(x.span_full_recall)),
                None => "-".to_string(),
            })
            .collect();
        lines.push(format!(
            "| {c} | {} | {} | {} |",
            pc.map_or(0, |x| x.spans),
            pc.map_or(0, |x| x.tokens),
            cells.join(" | ")
        ));
    }
    for (n, r) in results.iter() {
        lines.push(String::new());
        lines.push(format!(
            "### {n}: most frequent missed gold spans (>=1 token not predicted; top {top_md})"
        ));
        lines.push(String::new());
        for &c in &cats {
            let Some(x) = r.per_category.get(c) else {
                continue;
            };
            if x.top_missed.is_empty() {
                continue;
            }
            lines.push(format!(
                "- **{c}** ({} missed, {} fully): {}",
                x.missed_spans,
                x.fully_missed_spans,
                ticked(&x.top_missed, top_md, "; ", false)
            ));
            lines.push(format!(
                "  - missed tokens: {}",
                ticked(&x.top_missed_tokens, top_md.min(15), ", ", true)
            ));
        }
        lines.push(String::new());
        let labels: Vec<String> = r
            .per_pred_label
            .iter()
            .map(|(lab, v)| format!("{lab} {} ({})", v.tokens, pct(v.precision)))
            .collect();
        lines.push(format!(
            "{n}: predicted labels (tokens, precision %): {}",
            labels.join(", ")
        ));
        lines.push(format!(
            "{n}: top false-positive tokens: {}",
            ticked(&r.top_false_positive_tokens, top_md, ", ", true)
        ));
    }
    lines.join("\n") + "\n"
}
