//! Token scoring of one system's predictions against gold, as score.py's `score_system`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use crate::counter::OrderedCounter;
use crate::error::EvalError;
use crate::jsonl::{Doc, DocId, DocSet, Score, TextField};
use crate::python::{norm, round4, slice_bounds};
use crate::report::{CategoryResult, LabelResult, OrderedMap, SystemResult};
use crate::tokenize::{Token, overlapping, tokens_into};

/// The gold categories `--safe-harbor` leaves out of P/R/F1: labelled by corpora, but not Safe
/// Harbor identifiers.
pub const SAFE_HARBOR_DONT_CARE: [&str; 3] = ["ORGANIZATION", "PROFESSION", "OTHER"];

/// How to score (score.py's command-line options).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    /// Ignore predicted spans whose `score` is below this (spans without a score are kept).
    pub min_score: Option<f64>,
    /// Predicted labels to ignore.
    pub exclude_pred_labels: BTreeSet<String>,
    /// Length of the missed / false-positive lists (score.py `--top`, default 30).
    pub top: usize,
    /// Gold categories whose tokens are left out of P/R/F1 (still listed per category).
    pub dont_care: BTreeSet<String>,
    /// Also leave out gold spans flagged `year_only` or `country`.
    pub year_only_dont_care: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            min_score: None,
            exclude_pred_labels: BTreeSet::new(),
            top: 30,
            dont_care: BTreeSet::new(),
            year_only_dont_care: false,
        }
    }
}

impl ScoreOptions {
    /// Adds the Safe Harbor view: ORGANIZATION, PROFESSION and OTHER don't-care, and year-only
    /// dates and countries too (score.py `--safe-harbor`).
    pub fn with_safe_harbor(mut self) -> Self {
        self.dont_care
            .extend(SAFE_HARBOR_DONT_CARE.iter().map(|s| s.to_string()));
        self.year_only_dont_care = true;
        self
    }
}

/// The gold documents to score, in gold order.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    gold: &'a DocSet,
    docs: Vec<&'a Doc>,
}

impl<'a> Selection<'a> {
    /// Every gold line whose id is present in every prediction file (score.py scores only
    /// those, so runs on a subset score on that subset). A repeated gold id counts once per line.
    pub fn common(gold: &'a DocSet, preds: &[&DocSet]) -> Self {
        let docs = gold
            .in_order()
            .filter(|d| preds.iter().all(|p| p.contains(&d.id)))
            .collect();
        Selection { gold, docs }
    }

    /// Keeps only the documents whose (string) id is in `keep`; numeric ids never match, as in
    /// score.py where split-file ids are strings.
    pub fn retain_ids(&mut self, keep: &HashSet<String>) {
        self.docs
            .retain(|d| matches!(&d.id, DocId::Str(s) if keep.contains(s)));
    }

    /// The number of documents selected.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when no document is selected.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The selected documents.
    pub fn docs(&self) -> &[&'a Doc] {
        &self.docs
    }
}

/// The number of distinct ids in `pred` that are not in `gold` (score.py warns about them).
pub fn ids_not_in_gold(gold: &DocSet, pred: &DocSet) -> usize {
    pred.docs().iter().filter(|d| !gold.contains(&d.id)).count()
}

/// Reads a splits file (`id<TAB>split` lines) and returns the ids of `split`.
pub fn read_split_ids(path: &Path, split: &str) -> Result<HashSet<String>, EvalError> {
    let content = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let content = content.replace("\r\n", "\n").replace('\r', "\n");
    Ok(content
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let id = parts.next()?;
            (parts.next()? == split).then(|| id.to_string())
        })
        .collect())
}

/// Scores every prediction set on `selection`, in the given order.
pub fn score_all(
    selection: &Selection<'_>,
    preds: &[(String, &DocSet)],
    opts: &ScoreOptions,
) -> Result<OrderedMap<SystemResult>, EvalError> {
    let mut out = Vec::with_capacity(preds.len());
    for (name, pred) in preds {
        if out.iter().any(|(n, _)| n == name) {
            return Err(EvalError::DuplicateSystem { name: name.clone() });
        }
        out.push((name.clone(), score_system(selection, pred, opts)?));
    }
    Ok(OrderedMap(out))
}

#[derive(Default)]
struct CatAcc {
    gold_tokens: u64,
    pred_tokens: u64,
    spans: u64,
    full: u64,
    any: u64,
    no_token: u64,
    fully_missed: u64,
    missed: OrderedCounter,
    missed_tokens: OrderedCounter,
}

/// Interns strings to dense ids.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, usize>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len();
        self.ids.insert(s.to_string(), i);
        self.names.push(s.to_string());
        i
    }
}

/// Code-point slicing of one text.
struct CharMap {
    /// Byte offset of every code point, plus the text length; empty for ASCII text.
    offsets: Vec<usize>,
    chars: usize,
    ascii: bool,
}

impl CharMap {
    fn new() -> Self {
        CharMap {
            offsets: Vec::new(),
            chars: 0,
            ascii: true,
        }
    }

    fn reset(&mut self, text: &str) {
        self.offsets.clear();
        self.ascii = text.is_ascii();
        if self.ascii {
            self.chars = text.len();
        } else {
            self.offsets.extend(text.char_indices().map(|(b, _)| b));
            self.chars = self.offsets.len();
            self.offsets.push(text.len());
        }
    }

    fn byte(&self, ci: usize) -> usize {
        if self.ascii {
            ci
        } else {
            self.offsets.get(ci).copied().unwrap_or(0)
        }
    }

    /// Python's `text[start:end]`.
    fn slice<'t>(&self, text: &'t str, start: i64, end: i64) -> &'t str {
        let (s, e) = slice_bounds(self.chars, start, end);
        text.get(self.byte(s)..self.byte(e)).unwrap_or_default()
    }
}

fn tok_text<'t>(text: &'t str, t: &Token) -> &'t str {
    text.get(t.byte_start..t.byte_end).unwrap_or_default()
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| round4(num as f64 / den as f64))
}

/// Scores one system, exactly as score.py's `score_system`.
///
/// Only the gold text is tokenised; a gold document without a string `text` is an error (naming
/// its line), and so is a non-numeric predicted `score` when `min_score` is set.
pub fn score_system(
    selection: &Selection<'_>,
    pred: &DocSet,
    opts: &ScoreOptions,
) -> Result<SystemResult, EvalError> {
    let (mut tp, mut fp, mut fn_, mut tn, mut dc_tokens) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut bad_gold, mut text_mismatch, mut n_pred_spans) = (0u64, 0u64, 0u64);
    let mut cats = Interner::default();
    let mut cat_acc: Vec<CatAcc> = Vec::new();
    let mut labels = Interner::default();
    // label id -> position in `label_order` (the insertion order of score.py's `pred_label`)
    let mut label_pos: Vec<Option<usize>> = Vec::new();
    let mut label_order: Vec<(usize, u64, u64)> = Vec::new(); // (label, tokens, of which gold)
    let mut fp_tokens = OrderedCounter::new();

    let mut toks: Vec<Token> = Vec::new();
    let mut chars = CharMap::new();
    let (mut is_gold, mut is_pred, mut is_dc) = (Vec::new(), Vec::new(), Vec::new());
    let mut tok_cats: Vec<(usize, usize)> = Vec::new();
    let mut tok_labels: Vec<(usize, usize)> = Vec::new();
    let mut span_tok: Vec<(usize, std::ops::Range<usize>, usize)> = Vec::new();

    for g in selection.docs() {
        let TextField::Str(text) = &g.text else {
            return Err(EvalError::field(
                selection.gold.path(),
                g.line,
                "text",
                "missing or not a string",
            ));
        };
        let Some(p) = pred.get(&g.id) else {
            continue; // not reached: the selection holds only ids present in every prediction
        };
        if p.text.present_and_differs(text) {
            text_mismatch += 1;
        }
        tokens_into(text, &mut toks);
        chars.reset(text);
        let n = toks.len();
        for v in [&mut is_gold, &mut is_pred, &mut is_dc] {
            v.clear();
            v.resize(n, false);
        }
        tok_cats.clear();
        tok_labels.clear();
        span_tok.clear();

        for (si, sp) in g.spans.iter().enumerate() {
            let cat_name = sp.category.as_deref().unwrap_or("UNKNOWN");
            let cat = cats.id(cat_name);
            if cat == cat_acc.len() {
                cat_acc.push(CatAcc::default());
            }
            if sp
                .text
                .present_and_differs(chars.slice(text, sp.start, sp.end))
            {
                bad_gold += 1;
            }
            let idx = overlapping(&toks, sp.start, sp.end);
            let dc = opts.dont_care.contains(cat_name)
                || (opts.year_only_dont_care && (sp.year_only || sp.country));
            for k in idx.clone() {
                if dc {
                    is_dc[k] = true;
                } else {
                    is_gold[k] = true;
                }
                tok_cats.push((k, cat));
            }
            span_tok.push((si, idx, cat));
        }

        for sp in &p.spans {
            if let Some(min) = opts.min_score {
                match sp.score {
                    Score::Num(s) if s < min => continue,
                    Score::Invalid => {
                        return Err(EvalError::field(
                            pred.path(),
                            p.line,
                            "spans[].score",
                            "expected a number",
                        ));
                    }
                    _ => {}
                }
            }
            if sp
                .category
                .as_deref()
                .is_some_and(|c| opts.exclude_pred_labels.contains(c))
            {
                continue;
            }
            n_pred_spans += 1;
            let lab = labels.id(sp.category.as_deref().unwrap_or("?"));
            if lab == label_pos.len() {
                label_pos.push(None);
            }
            for k in overlapping(&toks, sp.start, sp.end) {
                is_pred[k] = true;
                tok_labels.push((k, lab));
            }
        }
        tok_cats.sort_unstable();
        tok_cats.dedup();
        // stable by token: a token's labels keep the order their spans came in
        tok_labels.sort_by_key(|&(k, _)| k);

        let (mut ci, mut li) = (0usize, 0usize);
        for (k, t) in toks.iter().enumerate() {
            let (g_k, p_k) = (is_gold[k], is_pred[k]);
            if is_dc[k] && !g_k {
                dc_tokens += 1;
            } else if g_k && p_k {
                tp += 1;
            } else if p_k {
                fp += 1;
                fp_tokens.add(tok_text(text, t));
            } else if g_k {
                fn_ += 1;
            } else {
                tn += 1;
            }
            while let Some(&(tk, c)) = tok_cats.get(ci) {
                if tk != k {
                    break;
                }
                if let Some(acc) = cat_acc.get_mut(c) {
                    acc.gold_tokens += 1;
                    acc.pred_tokens += u64::from(p_k);
                }
                ci += 1;
            }
            let first = li;
            while let Some(&(tk, lab)) = tok_labels.get(li) {
                if tk != k {
                    break;
                }
                li += 1;
                // a set per token: count each label once
                if tok_labels[first..li - 1].iter().any(|&(_, l)| l == lab) {
                    continue;
                }
                let pos = match label_pos.get(lab).copied().flatten() {
                    Some(pos) => pos,
                    None => {
                        label_order.push((lab, 0, 0));
                        if let Some(slot) = label_pos.get_mut(lab) {
                            *slot = Some(label_order.len() - 1);
                        }
                        label_order.len() - 1
                    }
                };
                if let Some(entry) = label_order.get_mut(pos) {
                    entry.1 += 1;
                    entry.2 += u64::from(g_k);
                }
            }
        }

        for (si, idx, cat) in &span_tok {
            let Some(acc) = cat_acc.get_mut(*cat) else {
                continue;
            };
            acc.spans += 1;
            if idx.is_empty() {
                acc.no_token += 1;
                continue;
            }
            let mut hit = 0usize;
            for k in idx.clone() {
                if is_pred[k] {
                    hit += 1;
                } else {
                    acc.missed_tokens.add(tok_text(text, &toks[k]));
                }
            }
            if hit == idx.len() {
                acc.full += 1;
            } else {
                if let Some(sp) = g.spans.get(*si) {
                    acc.missed.add(&norm(chars.slice(text, sp.start, sp.end)));
                }
                if hit == 0 {
                    acc.fully_missed += 1;
                }
            }
            if hit > 0 {
                acc.any += 1;
            }
        }
    }

    let prec = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let rec = if tp + fn_ > 0 {
        tp as f64 / (tp + fn_) as f64
    } else {
        0.0
    };
    let f1 = if prec + rec != 0.0 {
        2.0 * prec * rec / (prec + rec)
    } else {
        0.0
    };

    let mut per_category = BTreeMap::new();
    for (name, acc) in cats.names.iter().zip(&cat_acc) {
        let scorable = acc.spans - acc.no_token;
        per_category.insert(
            name.clone(),
            CategoryResult {
                spans: acc.spans,
                tokens: acc.gold_tokens,
                token_recall: ratio(acc.pred_tokens, acc.gold_tokens),
                span_full_recall: ratio(acc.full, scorable),
                span_any_hit: ratio(acc.any, scorable),
                spans_without_tokens: acc.no_token,
                missed_spans: acc.missed.total(),
                fully_missed_spans: acc.fully_missed,
                top_missed: acc.missed.most_common(opts.top),
                top_missed_tokens: acc.missed_tokens.most_common(opts.top),
            },
        );
    }
    // stable: equal token counts keep insertion order
    label_order.sort_by_key(|l| std::cmp::Reverse(l.1));
    let per_pred_label = OrderedMap(
        label_order
            .iter()
            .map(|&(lab, n, g)| {
                (
                    labels.names.get(lab).cloned().unwrap_or_default(),
                    LabelResult {
                        tokens: n,
                        precision: ratio(g, n),
                    },
                )
            })
            .collect(),
    );

    Ok(SystemResult {
        docs: selection.len() as u64,
        tokens: tp + fp + fn_ + tn,
        gold_tokens: tp + fn_,
        pred_tokens: tp + fp,
        pred_spans: n_pred_spans,
        tp,
        fp,
        r#fn: fn_,
        dont_care_tokens: dc_tokens,
        precision: round4(prec),
        recall: round4(rec),
        f1: round4(f1),
        per_category,
        per_pred_label,
        top_false_positive_tokens: fp_tokens.most_common(opts.top),
        gold_span_text_mismatches: bad_gold,
        pred_text_mismatches: text_mismatch,
        min_score: opts.min_score,
        dont_care_categories: opts.dont_care.iter().cloned().collect(),
        year_only_dont_care: opts.year_only_dont_care,
        excluded_pred_labels: opts.exclude_pred_labels.iter().cloned().collect(),
    })
}
