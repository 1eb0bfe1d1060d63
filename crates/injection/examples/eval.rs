//! 5-fold cross-validated evaluation of the screen, with the heuristics alone as a baseline in
//! the same run, and the screening speed.
//!
//! ```sh
//! cargo run --release -p phiguard-injection --example eval -- ../shared/corpora/injection/dev.jsonl
//! ```
//!
//! Folds are stratified by label and source with a fixed seed. In each fold the model is
//! trained on 4/5 exactly as `examples/train.rs` trains the shipped model (including the inner
//! cross-validation that picks the threshold) and tested on the remaining 1/5, so no figure
//! below is measured on texts the model was trained on. The heuristics have no fitted
//! parameters; they are scored on every test fold (note that they were written by a person who
//! had read this corpus, which flatters them somewhat).

#[path = "support/corpus.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use phiguard_injection::train::{Settings, folds, train};
use phiguard_injection::{SIGNALS, Screen};

const K: usize = 5;
const SEED: u64 = 20_261_204;

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fn_: usize,
    fp: usize,
    tn: usize,
}

impl Counts {
    fn add(&mut self, truth: bool, said: bool) {
        match (truth, said) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn tpr(&self) -> String {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn fpr(&self) -> String {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn ratio(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:5.1}% ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

struct Tally {
    all: Counts,
    by_source: BTreeMap<String, Counts>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            all: Counts::default(),
            by_source: BTreeMap::new(),
        }
    }
    fn add(&mut self, source: &str, truth: bool, said: bool) {
        self.all.add(truth, said);
        self.by_source
            .entry(source.to_string())
            .or_default()
            .add(truth, said);
    }
    fn print(&self, name: &str) {
        let ni = self
            .by_source
            .iter()
            .filter(|(s, _)| s.contains("NotInject"))
            .fold(Counts::default(), |mut a, (_, c)| {
                a.fp += c.fp;
                a.tn += c.tn;
                a
            });
        println!(
            "| {name} | {} | {} | {} |",
            self.all.tpr(),
            self.all.fpr(),
            ni.fpr()
        );
    }
    fn print_sources(&self, name: &str) {
        for (s, c) in &self.by_source {
            println!("  {name:<22} {s:<30} TPR {:<18} FPR {}", c.tpr(), c.fpr());
        }
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_errors = args.iter().any(|a| a == "--errors");
    let corpus = PathBuf::from(
        args.iter()
            .find(|a| !a.starts_with("--"))
            .ok_or("usage: eval CORPUS.jsonl [--errors]")?,
    );
    let items = common::load(&corpus)?;
    let strata: Vec<String> = items
        .iter()
        .map(|i| format!("{}/{}", i.injection, i.source))
        .collect();
    let fold = folds(&strata, K, SEED);
    let mut settings = Settings::default();
    // Overrides for exploring settings (the shipped model uses the defaults).
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = env("PG_EPOCHS") {
        settings.params.epochs = v as usize;
    }
    if let Some(v) = env("PG_LR") {
        settings.params.learning_rate = v as f32;
    }
    if let Some(v) = env("PG_L2") {
        settings.params.l2 = v as f32;
    }
    if let Some(v) = env("PG_MAX_FPR") {
        settings.max_fpr = v as f32;
    }

    let heur = Screen::heuristics_only();
    let mut t_model = Tally::new();
    let mut t_model_only = Tally::new();
    let mut t_model_05 = Tally::new();
    let mut t_heur = Tally::new();
    let mut t_heur_any = Tally::new();
    let mut signal_hits: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut thresholds = Vec::new();
    let t0 = Instant::now();
    for f in 0..K {
        let train_set: Vec<(&str, bool, &str)> = items
            .iter()
            .enumerate()
            .filter(|(i, _)| fold[*i] != f)
            .map(|(_, it)| (it.text.as_str(), it.injection, it.source.as_str()))
            .collect();
        let model = train(&train_set, settings);
        thresholds.push(model.threshold);
        let screen = Screen::with_model(model);
        for (i, it) in items.iter().enumerate() {
            if fold[i] != f {
                continue;
            }
            let v = screen.score(&it.text);
            let h = heur.score(&it.text);
            t_model.add(&it.source, it.injection, v.injection);
            t_model_only.add(&it.source, it.injection, v.score >= screen.threshold());
            t_model_05.add(&it.source, it.injection, v.score >= 0.5);
            t_heur.add(&it.source, it.injection, h.injection);
            t_heur_any.add(&it.source, it.injection, !h.signals.is_empty());
            if show_errors && (v.injection != it.injection || h.injection != it.injection) {
                let short: String = it.text.chars().take(140).collect();
                println!(
                    "  {} model={:.3}{} heur={} {:?} | {}",
                    if it.injection { "INJ" } else { "BEN" },
                    v.score,
                    if v.injection { "*" } else { "" },
                    h.injection,
                    h.signals,
                    short.replace('\n', " ")
                );
            }
            for s in &h.signals {
                let e = signal_hits.entry(s).or_default();
                if it.injection {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
    }
    let train_secs = t0.elapsed().as_secs_f64();
    let pos = items.iter().filter(|i| i.injection).count();
    println!(
        "corpus {}: {} texts, {} injection, {} benign; {K}-fold CV stratified by label and source, seed {SEED}",
        corpus.display(),
        items.len(),
        pos,
        items.len() - pos
    );
    println!(
        "model thresholds picked per fold (inner CV: benign FPR of the shipped rule <= {:.0}%, floor {}): {:?}",
        settings.max_fpr * 100.0,
        settings.floor,
        thresholds
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
    );
    println!();
    println!("| screen | TPR | FPR (all benign) | FPR (NotInject) |");
    println!("|---|---:|---:|---:|");
    t_model.print("shipped: model >= threshold, or a strong signal");
    t_model_only.print("model alone (>= threshold)");
    t_model_05.print("model alone, threshold 0.5");
    t_heur.print("heuristics alone (a strong signal)");
    t_heur_any.print("heuristics alone (any signal, weak too)");
    println!();
    println!("per source:");
    t_model.print_sources("shipped");
    t_heur.print_sources("heuristics");
    println!();
    println!("signal hits over the corpus (injection / benign):");
    for s in SIGNALS {
        let (a, b) = signal_hits.get(s).copied().unwrap_or((0, 0));
        println!("  {s:<26} {a:>4} / {b:>4}");
    }
    println!(
        "(cross-validation trained {} models in {train_secs:.1} s)",
        K * (settings.inner_folds + 1)
    );

    // Speed: the embedded model on a ~1,500-character prompt.
    let shipped = Screen::new();
    let base = "Discharge summary. 67-year-old patient admitted with community-acquired pneumonia, \
        treated with ceftriaxone and azithromycin, afebrile since day 3, oxygen weaned to room air. \
        Past history: type 2 diabetes on metformin, hypertension on lisinopril, CKD stage 3a. \
        Plan: complete 5 days of antibiotics, repeat chest X-ray in 6 weeks, follow up with the \
        primary care physician in one week, return if fever, dyspnoea or chest pain recur. ";
    let mut prompt = String::new();
    while prompt.chars().count() < 1500 {
        prompt.push_str(base);
    }
    let prompt: String = prompt.chars().take(1500).collect();
    for _ in 0..50 {
        std::hint::black_box(shipped.score(std::hint::black_box(&prompt)));
    }
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(shipped.score(std::hint::black_box(&prompt)));
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    let loads = 20;
    for _ in 0..loads {
        std::hint::black_box(phiguard_injection::Model::from_bytes(
            phiguard_injection::EMBEDDED_MODEL,
        ))
        .map_err(|e| e.to_string())?;
    }
    let load_us = t.elapsed().as_secs_f64() * 1e6 / loads as f64;
    println!();
    println!(
        "speed: {us:.1} µs per {}-char prompt (embedded model, one thread, {n} runs); model parse {load_us:.0} µs",
        prompt.chars().count()
    );
    Ok(())
}
