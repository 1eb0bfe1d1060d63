//! `phiguard deid` on the labelled development corpora (`shared/corpora/text`, described in its
//! README): the real binary, the default Safe Harbor profile, each set's `dev.jsonl`.
//!
//! For each set the test runs `phiguard scan` and `phiguard deid --drop-field spans` on the same
//! file, then `phiguard deid` again on the de-identified output, and checks:
//!
//! * **No leak where the detector did its part.** A gold Safe Harbor span whose tokens the scan
//!   covers completely must leave none of its tokens in the record's de-identified text.
//! * **The leak figure.** How many gold Safe Harbor tokens remain in the output in all, which is
//!   what the detector missed, is printed per set (`cargo test -p phiguard --test
//!   deid_dev_corpora -- --nocapture`). It is measured, never asserted: the detector keeps
//!   improving.
//! * **Twice changes nothing.** De-identifying the de-identified output again gives
//!   byte-identical records.
//!
//! The whole dev sets are used (meddocan, the largest at 4 MB, takes a few seconds with the debug
//! binary). Skipped, with a message, when the corpora are not there.
//!
//! ## What counts as a remaining token
//!
//! Tokens are score.py's (maximal runs of Unicode letters and digits, `phiguard_eval::tokens`),
//! compared case-sensitively as whole tokens. Checked are the tokens of gold spans of the 18 Safe
//! Harbor categories (not ORGANIZATION, PROFESSION or OTHER, not `year_only`, not `country`),
//! except what Safe Harbor lets stay or what is no identifier on its own:
//!
//! * tokens of one character;
//! * the year of a date: in a DATE span (or inside a span the scan found as a DATE, which is what
//!   de-identification acts on; the gold marks a few dates as other categories), a four-digit
//!   token, and the two-digit year that de-identification keeps ("3/14/21" becomes "21"; read
//!   with `phiguard_deid::date::year_of` in the language `deid` uses, the detector's guess);
//! * in an AGE_OVER_89 span, "90" (ages over 89 become "90+") and the words around the number
//!   ("años" in "92 años", which the output keeps as "90+ años");
//! * in a LOCATION span, a ZIP code already in its Safe Harbor form ("021" stays "021").
//!
//! Common words occur inside gold spans too ("de" in "María de la Cruz", "Calle" in a street), and
//! the same word may legitimately stay elsewhere in the record. So a checked token remains only as
//! far as the output holds more occurrences of it than the input holds outside checked
//! positions. Tags that phiguard writes (`[NAME]`, `[OTHER_ID]`) are removed from the output
//! before it is tokenised, so a gold "ID" is not matched by the "ID" of `[OTHER_ID]`, and the
//! "90" of every "90+" is not counted (in the input either).
//!
//! Failure messages give record ids, categories and code-point offsets into the corpus file, not
//! the gold text. The idempotency message shows the changed fragment of the de-identified output.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use phiguard_deid::{date::year_of, zip};
use phiguard_detect::{Category, Detector, Lang};
use phiguard_eval::{Token, overlapping, tokens};
use serde_json::Value;

/// The corpora folder, beside the workspace: `/work/shared/corpora/text` for `/work/main`.
fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/text")
}

/// The dev file of `set`, or `None` (after saying so) when the corpora are absent.
fn dev_file(set: &str) -> Option<PathBuf> {
    let path = corpora().join(set).join("dev.jsonl");
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "skipping {set}: {} not found (the dev corpora are not checked out here)",
            path.display()
        );
        None
    }
}

/// Runs the real binary with the key home inside `home`; panics with its stderr on failure
/// (stderr carries file names and counts, never record text).
fn phiguard<S: AsRef<OsStr>>(home: &Path, args: impl IntoIterator<Item = S>) {
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_phiguard"))
        .args(&args)
        .env("PHIGUARD_HOME", home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "phiguard {args:?} failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn parse(line: &str, what: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str(line) {
        Ok(Value::Object(m)) => m,
        _ => panic!("{what}: a line is not a JSON object"),
    }
}

fn str_field<'a>(rec: &'a serde_json::Map<String, Value>, key: &str, what: &str) -> &'a str {
    rec.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: missing string field \"{key}\""))
}

fn id_of(rec: &serde_json::Map<String, Value>) -> String {
    match rec.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(no id)".to_string(),
    }
}

/// One span of a JSONL record, in code points.
struct CpSpan {
    start: usize,
    end: usize,
    category: Category,
    /// `year_only` or `country`: a value Safe Harbor lets stay.
    may_stay: bool,
}

fn spans(rec: &serde_json::Map<String, Value>, what: &str, n_chars: usize) -> Vec<CpSpan> {
    let Some(list) = rec.get("spans").and_then(Value::as_array) else {
        panic!("{what}: missing \"spans\"");
    };
    list.iter()
        .map(|s| {
            let num = |k: &str| {
                s.get(k)
                    .and_then(Value::as_u64)
                    .unwrap_or_else(|| panic!("{what}: a span has no \"{k}\""))
                    as usize
            };
            let (start, end) = (num("start"), num("end"));
            assert!(
                start <= end && end <= n_chars,
                "{what}: span {start}..{end} is outside the text ({n_chars} code points)"
            );
            let label = s.get("category").and_then(Value::as_str).unwrap_or("");
            let category = Category::parse(label)
                .unwrap_or_else(|| panic!("{what}: unknown category {label:?}"));
            let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
            CpSpan {
                start,
                end,
                category,
                may_stay: flag("year_only") || flag("country"),
            }
        })
        .collect()
}

/// `text` with the tags phiguard writes (`[NAME]`, `[OTHER_ID]`, ...) replaced by a space.
fn without_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if Category::parse(&after[..close]).is_some() => {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// True for the "90" of "90+", which de-identification writes for every age over 89: such
/// tokens are counted neither in the input nor in the output.
fn is_ninety_plus(text: &str, t: &Token) -> bool {
    &text[t.byte_start..t.byte_end] == "90" && text[t.byte_end..].starts_with('+')
}

/// One record's text, tokens and language.
struct Record<'a> {
    text: &'a str,
    toks: Vec<Token>,
    /// Byte offset of every code point, and of the end.
    byte_at: Vec<usize>,
    /// The language `phiguard deid` reads it in (the detector's guess).
    lang: Lang,
}

impl<'a> Record<'a> {
    fn new(text: &'a str, detector: &Detector) -> Record<'a> {
        Record {
            text,
            toks: tokens(text),
            byte_at: text
                .char_indices()
                .map(|(b, _)| b)
                .chain(std::iter::once(text.len()))
                .collect(),
            lang: detector.guess_language(text),
        }
    }

    fn word(&self, i: usize) -> &'a str {
        &self.text[self.toks[i].byte_start..self.toks[i].byte_end]
    }

    fn slice(&self, s: &CpSpan) -> &'a str {
        &self.text[self.byte_at[s.start]..self.byte_at[s.end]]
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether Safe Harbor lets token `i`, one of the tokens `range` of the gold span `gold`, stay
/// in the output. `found` are the scan's spans.
fn exempt(
    rec: &Record<'_>,
    i: usize,
    gold: &CpSpan,
    range: std::ops::Range<usize>,
    found: &[CpSpan],
) -> bool {
    let w = rec.word(i);
    if w.chars().count() < 2 {
        return true;
    }
    let t = &rec.toks[i];
    let detected_dates: Vec<&CpSpan> = found
        .iter()
        .filter(|f| f.category == Category::Date && f.start < gold.end && gold.start < f.end)
        .collect();
    let in_detected_date = detected_dates
        .iter()
        .any(|f| f.start <= t.start && t.end <= f.end);
    if gold.category == Category::Date || in_detected_date {
        if w.len() == 4 && all_digits(w) {
            return true;
        }
        // A two-digit year is kept as written. It is the last number of the date, as the gold
        // span or the detected date over it reads ("6-9/19" holds the gold "9/19").
        return range.rev().find(|&j| all_digits(rec.word(j))) == Some(i)
            && std::iter::once(gold)
                .chain(detected_dates)
                .any(|s| year_of(rec.slice(s), Some(rec.lang)).as_deref() == Some(w));
    }
    match gold.category {
        Category::AgeOver89 => w == "90" || !w.chars().any(char::is_numeric),
        // A ZIP code already in its Safe Harbor form ("021") is written back unchanged.
        Category::Location => zip::generalize(w).as_deref() == Some(w),
        _ => false,
    }
}

/// Counts for one set.
#[derive(Default)]
struct Tally {
    records: usize,
    /// Gold Safe Harbor tokens checked (not exempt).
    checked: usize,
    /// Of those, in a gold span the scan covers completely.
    asserted: usize,
    /// Of the checked tokens, those the scan does not cover completely.
    uncovered: usize,
    /// Checked tokens still in the de-identified output.
    remaining: usize,
    /// Remaining tokens from spans the scan covered completely: each one a failure.
    leaks: Vec<String>,
}

/// Compares one record's gold spans, scan spans and de-identified text.
fn tally_record(
    tally: &mut Tally,
    id: &str,
    rec: &Record<'_>,
    gold: &[CpSpan],
    found: &[CpSpan],
    deidentified: &str,
) {
    let toks = &rec.toks;
    let mut covered = vec![false; rec.byte_at.len() - 1];
    for s in found {
        covered[s.start..s.end].fill(true);
    }
    let token_covered = |t: &Token| covered[t.start..t.end].iter().all(|&c| c);

    // Per token: checked (not exempt) in some Safe Harbor span; asserted when that span is
    // covered completely by the scan.
    let mut checked = vec![false; toks.len()];
    let mut asserted: Vec<Option<Category>> = vec![None; toks.len()];
    for s in gold
        .iter()
        .filter(|s| s.category.is_safe_harbor() && !s.may_stay)
    {
        let range = overlapping(toks, s.start as i64, s.end as i64);
        let span_covered = !range.is_empty() && toks[range.clone()].iter().all(token_covered);
        for i in range.clone() {
            if !exempt(rec, i, s, range.clone(), found) {
                checked[i] = true;
                if span_covered {
                    asserted[i] = Some(s.category);
                }
            }
        }
    }

    let mut in_all: HashMap<&str, usize> = HashMap::new();
    let mut in_checked: HashMap<&str, usize> = HashMap::new();
    let mut in_asserted: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in toks.iter().enumerate() {
        let w = rec.word(i);
        if is_ninety_plus(rec.text, t) {
            continue;
        }
        *in_all.entry(w).or_default() += 1;
        if checked[i] {
            tally.checked += 1;
            *in_checked.entry(w).or_default() += 1;
            if !token_covered(t) {
                tally.uncovered += 1;
            }
            if asserted[i].is_some() {
                tally.asserted += 1;
                in_asserted.entry(w).or_default().push(i);
            }
        }
    }
    let stripped = without_tags(deidentified);
    let mut out: HashMap<&str, usize> = HashMap::new();
    for t in tokens(&stripped) {
        if !is_ninety_plus(&stripped, &t) {
            *out.entry(&stripped[t.byte_start..t.byte_end]).or_default() += 1;
        }
    }

    // ZIP3 areas that de-identification writes ("000", "280") are its own output, not a leak
    // of an identifier that happens to share the digits.
    let mut generated: HashMap<String, usize> = HashMap::new();
    for f in found.iter().filter(|f| f.category == Category::Location) {
        if let Some(z) = zip::generalize(rec.slice(f)) {
            *generated.entry(z.trim().to_string()).or_default() += 1;
        }
    }
    for (w, &n_checked) in &in_checked {
        // Occurrences that may legitimately stay: every other one in the input.
        let allowed = in_all[w] - n_checked + generated.get(*w).copied().unwrap_or(0);
        let surplus = out.get(w).copied().unwrap_or(0).saturating_sub(allowed);
        tally.remaining += surplus.min(n_checked);
        let asserted_at = in_asserted.get(w).map_or(&[][..], Vec::as_slice);
        // Checked occurrences the scan missed may stay; any surplus beyond them is a leak.
        let missed = n_checked - asserted_at.len();
        let leaked = surplus.saturating_sub(missed).min(asserted_at.len());
        if leaked > 0 {
            let at: Vec<String> = asserted_at
                .iter()
                .map(|&i| {
                    let cat = asserted[i].map_or("?", Category::as_str);
                    format!(
                        "{cat} token at code points {}..{}",
                        toks[i].start, toks[i].end
                    )
                })
                .collect();
            tally.leaks.push(format!(
                "record {id}: {leaked} of {} completely detected occurrence(s) remain ({})",
                asserted_at.len(),
                at.join(", ")
            ));
        }
    }
}

/// Where two de-identified texts differ: code-point offset and the changed fragments.
fn first_difference(a: &str, b: &str) -> String {
    let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = ac.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let suffix = ac[prefix..]
        .iter()
        .rev()
        .zip(bc[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let clip = |v: &[char]| v.iter().take(60).collect::<String>();
    format!(
        "at code point {prefix}: {:?} became {:?}",
        clip(&ac[prefix..ac.len() - suffix]),
        clip(&bc[prefix..bc.len() - suffix])
    )
}

fn check_set(set: &str) {
    let Some(dev) = dev_file(set) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let key = tmp.path().join("key").join("deid.key");
    let scan = tmp.path().join("scan.jsonl");
    let once = tmp.path().join("once.jsonl");
    let twice = tmp.path().join("twice.jsonl");
    let arg = OsStr::new;
    phiguard(
        &home,
        [arg("scan"), dev.as_os_str(), arg("-o"), scan.as_os_str()],
    );
    let deid = |input: &Path, output: &Path, report: &str| {
        let report = tmp.path().join(report);
        phiguard(
            &home,
            [
                arg("deid"),
                input.as_os_str(),
                arg("-o"),
                output.as_os_str(),
                arg("--drop-field"),
                arg("spans"),
                arg("--key-file"),
                key.as_os_str(),
                arg("--report"),
                report.as_os_str(),
            ],
        )
    };
    deid(&dev, &once, "report-once");
    deid(&once, &twice, "report-twice");

    let (gold, found, first, second) = (
        read_lines(&dev),
        read_lines(&scan),
        read_lines(&once),
        read_lines(&twice),
    );
    for (what, lines) in [("scan", &found), ("deid", &first), ("deid twice", &second)] {
        assert_eq!(
            lines.len(),
            gold.len(),
            "{set}: {what} wrote {} records for {} input records",
            lines.len(),
            gold.len()
        );
    }

    let detector = Detector::new();
    let mut tally = Tally::default();
    let mut not_idempotent = Vec::new();
    for (k, line) in gold.iter().enumerate() {
        let at = format!("{set} record {}", k + 1);
        let g = parse(line, &at);
        let id = id_of(&g);
        let text = str_field(&g, "text", &at);
        let n_chars = text.chars().count();
        let p = parse(&found[k], &at);
        let d = parse(&first[k], &at);
        for (what, rec) in [("scan", &p), ("deid", &d)] {
            assert_eq!(id_of(rec), id, "{at}: {what} output is out of order");
        }
        assert!(
            !d.contains_key("spans"),
            "{at}: --drop-field spans left the gold spans in the output"
        );
        tally.records += 1;
        tally_record(
            &mut tally,
            &id,
            &Record::new(text, &detector),
            &spans(&g, &at, n_chars),
            &spans(&p, &format!("{at} (scan)"), n_chars),
            str_field(&d, "text", &at),
        );
        if first[k] != second[k] {
            let e = parse(&second[k], &at);
            not_idempotent.push(format!(
                "record {id}: {}",
                first_difference(str_field(&d, "text", &at), str_field(&e, "text", &at))
            ));
        }
    }

    let pct = |n: usize| 100.0 * n as f64 / tally.checked.max(1) as f64;
    println!(
        "{set}: {} records; {} gold Safe Harbor tokens checked, {} of them in spans the scan \
         covers completely. Remaining in the de-identified output: {} ({:.2}%; the scan left {} \
         ({:.2}%) not completely covered). Leaks from completely detected spans: {}. Records \
         changed by a second run: {}.",
        tally.records,
        tally.checked,
        tally.asserted,
        tally.remaining,
        pct(tally.remaining),
        tally.uncovered,
        pct(tally.uncovered),
        tally.leaks.len(),
        not_idempotent.len(),
    );

    let show = |list: &[String]| {
        let mut s: String = list.iter().take(20).map(|l| format!("\n  {l}")).collect();
        if list.len() > 20 {
            s.push_str(&format!("\n  ... and {} more", list.len() - 20));
        }
        s
    };
    let mut failures = String::new();
    if !tally.leaks.is_empty() {
        failures.push_str(&format!(
            "\n{set}: {} record(s) keep tokens of gold Safe Harbor spans that the scan covered \
             completely:{}",
            tally.leaks.len(),
            show(&tally.leaks)
        ));
    }
    if !not_idempotent.is_empty() {
        failures.push_str(&format!(
            "\n{set}: {} record(s) changed when de-identified a second time:{}",
            not_idempotent.len(),
            show(&not_idempotent)
        ));
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn asq_phi() {
    check_set("asq-phi");
}

#[test]
fn presidio_synth_v2() {
    check_set("presidio-synth-v2");
}

#[test]
fn meddocan() {
    check_set("meddocan");
}

#[test]
fn grascco_phi() {
    check_set("grascco-phi");
}

#[test]
fn tags_are_removed_before_matching() {
    assert_eq!(
        without_tags("[NAME] [OTHER_ID]x [notatag] [DATE"),
        "   x [notatag] [DATE"
    );
}
