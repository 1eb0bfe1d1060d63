//! `phiguard bench`: detector throughput (characters and MB per second, one thread and all
//! cores) and peak memory, with a tokenizer pass over the same text as an in-run baseline so
//! figures from a noisy shared machine can be compared as ratios.

use std::hint::black_box;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use phiguard_detect::{Detector, Lang};
use serde::Serialize;

use crate::input::{self, InputOptions};

/// Where the dev corpora are looked for when no input is given (relative to the current folder).
const DEFAULT_CORPORA: &str = "../shared/corpora/text";

/// Measure detector throughput and peak memory. Each input (file or folder) is one corpus; by
/// default the `dev.jsonl` of every corpus under ../shared/corpora/text.
#[derive(clap::Args)]
pub struct Args {
    /// Text files, folders or JSONL files; each argument is measured as one corpus
    /// (default: ../shared/corpora/text/*/dev.jsonl).
    pub inputs: Vec<PathBuf>,
    /// Threads for the all-cores measurement (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Minimum number of passes over the texts per measurement (each thread over its share).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub iterations: u32,
    /// Minimum seconds per measurement: passes repeat until this much time has gone by.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub min_time: f64,
    /// Language of the documents: en, es or de (default: detected per document).
    #[arg(long, value_parser = crate::cmd_scan::parse_lang)]
    pub lang: Option<Lang>,
    /// The JSONL field that holds the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One document's text with its size.
struct Text {
    text: String,
    chars: u64,
}

/// The texts of one corpus.
struct Corpus {
    name: String,
    texts: Vec<Text>,
    chars: u64,
    bytes: u64,
}

/// What one timed measurement processed.
struct Measured {
    seconds: f64,
    chars: u64,
    bytes: u64,
    /// What the measured function counted in one pass over the whole corpus.
    counted: u64,
}

/// A throughput figure.
#[derive(Serialize, Clone, Copy)]
struct Rate {
    /// Wall-clock time of the measurement.
    seconds: f64,
    /// Equivalent full passes over the corpus in that time.
    passes: f64,
    chars_per_s: f64,
    mb_per_s: f64,
}

impl Rate {
    fn new(m: &Measured, corpus_chars: u64) -> Rate {
        Rate {
            seconds: m.seconds,
            passes: ratio(m.chars as f64, corpus_chars as f64),
            chars_per_s: ratio(m.chars as f64, m.seconds),
            mb_per_s: ratio(m.bytes as f64, m.seconds) / 1e6,
        }
    }

    /// Seconds for one pass over the corpus.
    fn pass_seconds(&self) -> f64 {
        ratio(self.seconds, self.passes)
    }

    /// The rate of `chars`/`bytes` processed once in `seconds`.
    fn once(seconds: f64, chars: u64, bytes: u64) -> Rate {
        Rate::new(
            &Measured {
                seconds,
                chars,
                bytes,
                counted: 0,
            },
            chars,
        )
    }
}

#[derive(Serialize)]
struct CorpusResult {
    name: String,
    docs: usize,
    chars: u64,
    bytes: u64,
    /// Spans found in one pass.
    spans: u64,
    /// Detector, one thread.
    single: Rate,
    /// Detector, `threads` threads, documents split across them.
    multi: Rate,
    /// Baseline: tokenising the same texts (phiguard-eval's tokenizer), one thread.
    baseline: Rate,
    /// Baseline on `threads` threads: how far the machine scales right now.
    baseline_multi: Rate,
    /// Detector time per character over baseline time per character (one thread).
    detector_over_baseline: f64,
}

#[derive(Serialize)]
struct BenchResult {
    threads: usize,
    min_time_s: f64,
    lang: Option<&'static str>,
    detector_build_s: f64,
    corpora: Vec<CorpusResult>,
    /// All corpora once: total characters over the summed per-pass times.
    overall: CorpusResult,
    /// Peak resident memory of the whole run (VmHWM), if the platform reports it.
    peak_rss_bytes: Option<u64>,
    /// Peak resident memory after loading the texts, before building the detector.
    rss_after_load_bytes: Option<u64>,
}

pub fn run(args: Args) -> Result<u8> {
    if !(args.min_time.is_finite() && args.min_time >= 0.0) {
        bail!("--min-time must be a number of seconds >= 0");
    }
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let inputs = if args.inputs.is_empty() {
        default_inputs()?
    } else {
        args.inputs.clone()
    };
    let corpora = inputs
        .iter()
        .map(|p| load(p, &args.text_field))
        .collect::<Result<Vec<_>>>()?;
    if corpora.iter().all(|c| c.chars == 0) {
        bail!("no text to measure in the inputs");
    }
    let rss_after_load = peak_rss_bytes();

    let t = Instant::now();
    let detector = Detector::new();
    let detector_build_s = t.elapsed().as_secs_f64();
    let lang = args.lang;
    let detect = |text: &str| detector.detect_lang(text, lang).len() as u64;
    let tokenize = |text: &str| phiguard_eval::count_tokens(text) as u64;
    let plan = Plan {
        min_passes: args.iterations.max(1),
        min_time: Duration::from_secs_f64(args.min_time),
    };

    let mut results = Vec::new();
    for c in &corpora {
        if !args.json {
            eprintln!("phiguard bench: measuring {} ...", c.name);
        }
        warm_up(&c.texts, &detect);
        let single = plan.measure(&c.texts, 1, &detect)?;
        let multi = plan.measure(&c.texts, threads, &detect)?;
        let baseline = plan.measure(&c.texts, 1, &tokenize)?;
        let baseline_multi = plan.measure(&c.texts, threads, &tokenize)?;
        let single = Rate::new(&single, c.chars);
        let baseline_rate = Rate::new(&baseline, c.chars);
        results.push(CorpusResult {
            name: c.name.clone(),
            docs: c.texts.len(),
            chars: c.chars,
            bytes: c.bytes,
            spans: multi.counted,
            single,
            multi: Rate::new(&multi, c.chars),
            baseline: baseline_rate,
            baseline_multi: Rate::new(&baseline_multi, c.chars),
            detector_over_baseline: ratio(single.pass_seconds(), baseline_rate.pass_seconds()),
        });
    }
    let overall = overall(&results);
    let result = BenchResult {
        threads,
        min_time_s: args.min_time,
        lang: lang.map(Lang::code),
        detector_build_s,
        corpora: results,
        overall,
        peak_rss_bytes: peak_rss_bytes(),
        rss_after_load_bytes: rss_after_load,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", table(&result));
    }
    Ok(0)
}

/// `../shared/corpora/text/*/dev.jsonl`, sorted.
fn default_inputs() -> Result<Vec<PathBuf>> {
    let dir = Path::new(DEFAULT_CORPORA);
    let missing = || {
        format!(
            "no inputs given and no {DEFAULT_CORPORA}/*/dev.jsonl found from {}; \
             run from the workspace root or name the files to measure",
            std::env::current_dir().map_or_else(|_| ".".into(), |d| d.display().to_string())
        )
    };
    let entries = std::fs::read_dir(dir).with_context(missing)?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.with_context(missing)?.path().join("dev.jsonl");
        if p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        bail!(missing());
    }
    files.sort();
    Ok(files)
}

/// A corpus name: the folder for `NAME/dev.jsonl` (or test/train), else the file or folder name.
fn corpus_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if matches!(stem.as_str(), "dev" | "test" | "train")
        && let Some(parent) = path.parent().and_then(Path::file_name)
    {
        return parent.to_string_lossy().into_owned();
    }
    stem
}

fn load(path: &Path, text_field: &str) -> Result<Corpus> {
    let files = input::expand(std::slice::from_ref(&path.to_path_buf()))?;
    let opts = InputOptions {
        text_field: text_field.to_string(),
        skip_invalid: false,
    };
    let mut texts = Vec::new();
    input::for_each_record(&files, &opts, |rec| {
        let chars = rec.text.chars().count() as u64;
        texts.push(Text {
            text: rec.text,
            chars,
        });
        Ok(())
    })?;
    Ok(Corpus {
        name: corpus_name(path),
        chars: texts.iter().map(|t| t.chars).sum(),
        bytes: texts.iter().map(|t| t.text.len() as u64).sum(),
        texts,
    })
}

/// Runs `f` over the texts for up to half a second, so that lazily built tables, caches and the
/// allocator are warm before timing.
fn warm_up(texts: &[Text], f: &(dyn Fn(&str) -> u64 + Sync)) {
    let t = Instant::now();
    for text in texts {
        black_box(f(black_box(&text.text)));
        if t.elapsed() > Duration::from_millis(500) {
            break;
        }
    }
}

/// Splits `texts` into at most `n` non-empty shares of about equal size in bytes (largest
/// first, each to the least loaded share).
fn shares(texts: &[Text], n: usize) -> Vec<Vec<&Text>> {
    let mut order: Vec<&Text> = texts.iter().collect();
    order.sort_by_key(|t| std::cmp::Reverse(t.text.len()));
    let mut out: Vec<(usize, Vec<&Text>)> = (0..n.max(1)).map(|_| (0, Vec::new())).collect();
    for t in order {
        if let Some(least) = out.iter_mut().min_by_key(|(load, _)| *load) {
            least.0 += t.text.len();
            least.1.push(t);
        }
    }
    out.into_iter()
        .map(|(_, part)| part)
        .filter(|p| !p.is_empty())
        .collect()
}

/// How long to measure.
struct Plan {
    min_passes: u32,
    min_time: Duration,
}

impl Plan {
    /// Runs `f` over `texts` on `threads` threads, each passing over its share of the documents
    /// again and again until it has made `min_passes` passes and `min_time` has gone by (threads
    /// are started once, so short passes are not dominated by thread start-up). The rate is all
    /// the text processed over the wall-clock time until the last thread stops.
    fn measure(
        &self,
        texts: &[Text],
        threads: usize,
        f: &(dyn Fn(&str) -> u64 + Sync),
    ) -> Result<Measured> {
        let parts = shares(texts, threads);
        let start = Instant::now();
        let per_thread: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .map(|part| s.spawn(move || self.run_share(part, start, f)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("a benchmark thread panicked")))
                .collect::<Result<Vec<_>>>()
        })?;
        let seconds = start.elapsed().as_secs_f64();
        Ok(Measured {
            seconds,
            chars: per_thread.iter().map(|x| x.0).sum(),
            bytes: per_thread.iter().map(|x| x.1).sum(),
            counted: per_thread.iter().map(|x| x.2).sum(),
        })
    }

    /// One thread's passes: (chars processed, bytes processed, count of the first pass).
    fn run_share(
        &self,
        part: &[&Text],
        start: Instant,
        f: &(dyn Fn(&str) -> u64 + Sync),
    ) -> (u64, u64, u64) {
        let chars: u64 = part.iter().map(|t| t.chars).sum();
        let bytes: u64 = part.iter().map(|t| t.text.len() as u64).sum();
        let mut passes = 0u64;
        let mut counted = 0u64;
        loop {
            let n: u64 = part.iter().map(|t| f(black_box(&t.text))).sum();
            if passes == 0 {
                counted = n;
            }
            black_box(n);
            passes += 1;
            if passes >= u64::from(self.min_passes) && start.elapsed() >= self.min_time {
                return (chars * passes, bytes * passes, counted);
            }
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// All corpora once: each measurement's per-pass times summed.
fn overall(results: &[CorpusResult]) -> CorpusResult {
    let chars = results.iter().map(|r| r.chars).sum();
    let bytes = results.iter().map(|r| r.bytes).sum();
    let sum = |pick: fn(&CorpusResult) -> &Rate| -> Rate {
        let seconds: f64 = results.iter().map(|r| pick(r).pass_seconds()).sum();
        Rate::once(seconds, chars, bytes)
    };
    let single = sum(|r| &r.single);
    let baseline = sum(|r| &r.baseline);
    CorpusResult {
        name: "overall".to_string(),
        docs: results.iter().map(|r| r.docs).sum(),
        chars,
        bytes,
        spans: results.iter().map(|r| r.spans).sum(),
        single,
        multi: sum(|r| &r.multi),
        baseline,
        baseline_multi: sum(|r| &r.baseline_multi),
        detector_over_baseline: ratio(single.seconds, baseline.seconds),
    }
}

/// Peak resident set size (VmHWM in /proc/self/status), where the platform has it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

fn table(r: &BenchResult) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "phiguard bench: detector built in {:.3} s; at least {} s per measurement; language {}\n\n",
        r.detector_build_s,
        r.min_time_s,
        r.lang.unwrap_or("detected per document"),
    ));
    let multi = format!("detector {} threads", r.threads);
    out.push_str(&format!(
        "{:<18} {:>6} {:>10} {:>7}  {:>22}  {:>22}  {:>7}  {:>22}  {:>7}  {:>8}\n",
        "corpus",
        "docs",
        "chars",
        "spans",
        "detector 1 thread",
        multi,
        "scaling",
        "tokenizer 1 thread",
        "scaling",
        "det/base"
    ));
    let rate = |x: &Rate| {
        format!(
            "{:>7.3} Mch/s {:>6.2} MB/s",
            x.chars_per_s / 1e6,
            x.mb_per_s
        )
    };
    for c in r.corpora.iter().chain(std::iter::once(&r.overall)) {
        out.push_str(&format!(
            "{:<18} {:>6} {:>10} {:>7}  {}  {}  {:>6.2}x  {}  {:>6.2}x  {:>7.1}x\n",
            c.name,
            thousands(c.docs as u64),
            thousands(c.chars),
            thousands(c.spans),
            rate(&c.single),
            rate(&c.multi),
            ratio(c.multi.chars_per_s, c.single.chars_per_s),
            rate(&c.baseline),
            ratio(c.baseline_multi.chars_per_s, c.baseline.chars_per_s),
            c.detector_over_baseline,
        ));
    }
    out.push_str(&format!(
        "\nMch/s: millions of Unicode code points per second; MB/s: 10^6 UTF-8 bytes per second.\n\
         scaling: {} threads over 1 thread (the tokenizer's shows what the machine gives right now).\n\
         det/base: detector time over tokenizer time on one thread (lower is better; steadier \
         than absolute figures on a shared machine).\n\
         peak RSS: {} (after loading the texts, before building the detector: {})\n",
        r.threads,
        mib(r.peak_rss_bytes),
        mib(r.rss_after_load_bytes)
    ));
    out
}

/// Progress reporting: a bar on a terminal; otherwise a line of counts on stderr every
/// [`Progress::PLAIN_EVERY`] (and a last one at the end if any was printed). Counts only, never
/// file contents.
pub struct Progress {
    what: String,
    bar: Option<indicatif::ProgressBar>,
    total_files: u64,
    files: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    /// When the last plain line was printed, and whether any was.
    last: Mutex<(Instant, bool)>,
}

impl Progress {
    /// How often the plain (non-terminal) report prints.
    pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

    /// Starts reporting on `files` files for the command `what`.
    pub fn new(what: &str, files: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(files);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} files, {msg} ({elapsed})",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_prefix(what.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        let now = Instant::now();
        Progress {
            what: what.to_string(),
            bar,
            total_files: files,
            files: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: now,
            last: Mutex::new((now, false)),
        }
    }

    /// One more file done.
    pub fn inc_file(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        self.tick();
    }

    /// One more record of `bytes` bytes done.
    pub fn inc_record(&self, bytes: u64) {
        let n = self.records.fetch_add(1, Ordering::Relaxed) + 1;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if n.is_multiple_of(64) {
            self.tick();
        }
    }

    fn counts(&self) -> String {
        format!(
            "{} records, {:.1} MB",
            thousands(self.records.load(Ordering::Relaxed)),
            self.bytes.load(Ordering::Relaxed) as f64 / 1e6
        )
    }

    fn tick(&self) {
        if let Some(b) = &self.bar {
            b.set_message(self.counts());
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.0.elapsed() >= Self::PLAIN_EVERY {
            *last = (Instant::now(), true);
            eprintln!("{}", self.plain_line());
        }
    }

    fn plain_line(&self) -> String {
        format!(
            "phiguard {}: {}/{} files, {} after {:.0} s",
            self.what,
            self.files.load(Ordering::Relaxed),
            self.total_files,
            self.counts(),
            self.start.elapsed().as_secs_f64()
        )
    }

    /// Clears the bar, or prints the last counts if plain lines were printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else if self.last.lock().is_ok_and(|l| l.1) {
            eprintln!("{}", self.plain_line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_by_size_and_cover_everything() {
        let texts: Vec<Text> = [10, 10, 10, 10, 40, 5, 5]
            .iter()
            .map(|&n| Text {
                text: "x".repeat(n),
                chars: n as u64,
            })
            .collect();
        for n in 1..=9 {
            let parts = shares(&texts, n);
            assert_eq!(parts.len(), n.min(texts.len()));
            assert_eq!(
                parts.iter().map(Vec::len).sum::<usize>(),
                texts.len(),
                "n={n}"
            );
        }
        let load = |p: &Vec<&Text>| p.iter().map(|t| t.text.len()).sum::<usize>();
        let two = shares(&texts, 2);
        assert_eq!((load(&two[0]), load(&two[1])), (45, 45));
        assert!(shares(&[], 2).is_empty());
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            corpus_name(Path::new("../shared/corpora/text/asq-phi/dev.jsonl")),
            "asq-phi"
        );
        assert_eq!(corpus_name(Path::new("notes/letters")), "letters");
        assert_eq!(corpus_name(Path::new("x.jsonl")), "x");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert!(peak_rss_bytes().is_none_or(|b| b > 0));
    }

    #[test]
    fn measure_counts_one_pass_and_repeats_to_min_passes() {
        let texts: Vec<Text> = ["a b c", "dé", "e f"]
            .iter()
            .map(|t| Text {
                text: t.to_string(),
                chars: t.chars().count() as u64,
            })
            .collect();
        let count = |t: &str| phiguard_eval::count_tokens(t) as u64;
        let plan = Plan {
            min_passes: 3,
            min_time: Duration::ZERO,
        };
        for threads in [1, 2, 5] {
            let m = plan.measure(&texts, threads, &count).unwrap();
            assert_eq!(m.counted, 6, "threads={threads}");
            // every thread makes exactly 3 passes over its share: 3 passes over everything
            assert_eq!((m.chars, m.bytes), (3 * 10, 3 * 11), "threads={threads}");
            let r = Rate::new(&m, 10);
            assert_eq!(r.passes, 3.0);
        }
    }
}
