//! Structured de-identification: `phiguard deid --profile P INPUT... --output DIR` (or
//! `--config FILE`). Every input file or folder is recognised by extension and content (FHIR
//! JSON/NDJSON, HL7 v2, DICOM, CSV, Parquet, plain text) and de-identified by its format crate
//! with one rule language and one key; outputs land under DIR with the same relative names
//! (path components that carry PHI de-identified too), next to the run's report. Files are
//! processed in parallel (`--jobs`), each written to a staging folder and moved into place only
//! when every file succeeded.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use phiguard_rules::{Config, Engine, ProfileName, Tally};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::output::Sink;

/// A recognised input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Fhir,
    Hl7,
    Dicom,
    Csv,
    Parquet,
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Fhir => "fhir",
            Format::Hl7 => "hl7",
            Format::Dicom => "dicom",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Text => "text",
        }
    }
}

fn ext(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Recognises a file by its first bytes, then by its extension.
pub fn classify(path: &Path) -> Result<Format> {
    let mut head = vec![0u8; 64 * 1024];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        let k = f
            .read(&mut head[n..])
            .with_context(|| format!("cannot read {}", path.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    Ok(classify_bytes(&head, &ext(path)))
}

/// The classification rule: content first (each format crate's own sniffing), extension second.
pub fn classify_bytes(head: &[u8], ext: &str) -> Format {
    if phiguard_dicom::sniff(head) {
        Format::Dicom
    } else if phiguard_tabular::sniff_parquet(head) {
        Format::Parquet
    } else if phiguard_hl7::sniff(head) {
        Format::Hl7
    } else if phiguard_fhir::sniff(head) {
        Format::Fhir
    } else {
        match ext {
            "dcm" | "dicom" => Format::Dicom,
            "parquet" | "pq" => Format::Parquet,
            "hl7" | "hl7v2" | "er7" => Format::Hl7,
            "csv" | "tsv" | "psv" => Format::Csv,
            // JSON that is not FHIR (no resourceType near the top) is de-identified as text.
            _ => Format::Text,
        }
    }
}

/// Everything a run needs, shared by the worker threads.
pub struct Pipeline {
    pub engine: Engine,
    pub formats: crate::formats::Formats,
    /// Size and seed of the review sample (`--review-sample`, `--review-seed`).
    pub review_size: usize,
    pub review_seed: u64,
    /// Threads one file may use for its records (FHIR NDJSON lines, HL7 messages): the cores
    /// left over when a run has fewer files than threads.
    pub record_threads: usize,
}

impl Pipeline {
    pub fn new(config: &Config, key: phiguard_deid::DeidKey) -> Result<Pipeline> {
        let engine = Engine::new(key, config.engine_options());
        let formats = crate::formats::Formats::new(config)?;
        Ok(Pipeline {
            engine,
            formats,
            review_size: phiguard_rules::REVIEW_SAMPLE,
            review_seed: 0,
            record_threads: 1,
        })
    }

    /// De-identifies one file into `out`; returns why it needs a human look, if it does.
    pub fn file(
        &self,
        format: Format,
        path: &Path,
        out: &mut (dyn Write + Send),
        tally: &mut Tally,
    ) -> Result<Option<String>> {
        self.formats
            .deidentify(&self.engine, format, path, out, tally, self.record_threads)
    }
}

/// De-identifies one path component: a UUID becomes its pseudonym (the same the records get),
/// and any PHI the detector finds in the name (with `_`, `-` and digits read as spaces) is
/// replaced by its category; anything else is kept.
pub fn deid_component(engine: &Engine, name: &str) -> String {
    let (stem, dot_ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    // UUIDs first: they are ids of the records inside.
    let mut out = String::with_capacity(stem.len());
    let mut rest = stem;
    while !rest.is_empty() {
        let found = (0..rest.len().saturating_sub(35))
            .filter(|&i| rest.is_char_boundary(i))
            .find(|&i| rest.get(i..i + 36).is_some_and(phiguard_rules::is_uuid));
        match found {
            Some(i) => {
                out.push_str(&rest[..i]);
                out.push_str(&engine.id_pseudonym(&rest[i..i + 36]));
                rest = &rest[i + 36..];
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    // The detector reads the name as words.
    let readable: String = out
        .chars()
        .map(|c| {
            if c == '_' || c.is_ascii_digit() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut spans = engine.detector().detect(&readable);
    // A name made only of capitalised words joined by underscores ("Aaron697_Brekke496") is
    // taken for a person's name even when the dictionaries do not know it.
    let words: Vec<&str> = readable.split_whitespace().collect();
    let capitalised_pair = words.len() >= 2
        && words.len() <= 4
        && words.iter().take(2).all(|w| {
            let mut cs = w.chars();
            cs.next().is_some_and(char::is_uppercase) && cs.all(char::is_lowercase)
        });
    if spans.is_empty() && !capitalised_pair {
        return format!("{out}{dot_ext}");
    }
    if capitalised_pair {
        let first = words[0];
        let second = words[1];
        if let (Some(a), Some(b)) = (readable.find(first), readable.find(second)) {
            let end = b + second.len();
            spans.retain(|s| s.end <= a || s.start >= end);
            spans.push(phiguard_detect::Span {
                start: a,
                end,
                category: phiguard_detect::Category::Name,
                confidence: 0.5,
                recognizer: "path",
            });
            spans.sort_by_key(|s| s.start);
        }
    }
    let mut res = String::with_capacity(out.len());
    let mut cursor = 0;
    for s in &spans {
        if s.start < cursor || !out.is_char_boundary(s.start) || !out.is_char_boundary(s.end) {
            continue;
        }
        res.push_str(&out[cursor..s.start]);
        res.push_str(s.category.as_str());
        cursor = s.end;
        // Digits glued to a replaced word ("Aaron697") go with it.
        let tail = out[cursor..].bytes().take_while(u8::is_ascii_digit).count();
        cursor += tail;
    }
    res.push_str(&out[cursor..]);
    format!("{res}{dot_ext}")
}

/// The de-identified relative output path.
pub fn deid_rel(engine: &Engine, rel: &Path) -> PathBuf {
    rel.components()
        .map(|c| deid_component(engine, &c.as_os_str().to_string_lossy()))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct InputEntry {
    /// Inputs are listed by position, not by name: exports are often named after the patient.
    pub index: usize,
    pub format: Format,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputEntry {
    pub path: String,
    pub format: Format,
    pub sha256: String,
    pub bytes: u64,
}

/// The structured run report.
#[derive(Debug, Serialize)]
pub struct StructuredReport {
    pub tool: String,
    pub created_at: String,
    pub profile: String,
    pub method: String,
    pub config_file_sha256: Option<String>,
    pub config_fingerprint: String,
    pub key_fingerprint: String,
    pub jobs: usize,
    pub seconds: f64,
    pub inputs: Vec<InputEntry>,
    pub outputs: Vec<OutputEntry>,
    pub files_by_format: std::collections::BTreeMap<String, u64>,
    /// Seed of the review sample (`--review-seed` reproduces it).
    pub review_seed: u64,
    pub tally: Tally,
    /// Files flagged for human review (burned-in text in DICOM pixels, ...), by output path.
    pub review: Vec<String>,
}

impl StructuredReport {
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# phiguard de-identification report (structured data)\n\n");
        s.push_str(&format!("- Tool: {}\n- Created: {}\n- Profile: `{}`\n- Method: {}\n- Config fingerprint: `{}`\n- Key fingerprint: `{}`\n- Files: {} in, {} out; records: {}; {:.2} s on {} jobs\n\n",
            self.tool, self.created_at, self.profile, self.method, self.config_fingerprint, self.key_fingerprint,
            self.inputs.len(), self.outputs.len(), self.tally.records, self.seconds, self.jobs));
        s.push_str("## Files by format\n\n| format | files |\n|---|---|\n");
        for (k, v) in &self.files_by_format {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
        s.push_str("\n## Rules applied\n\n| rule | action | values | changed | removed |\n|---|---|---|---|---|\n");
        for (k, v) in &self.tally.rules {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                k.replace('|', "\\|"),
                v.action,
                v.values,
                v.changed,
                v.removed
            ));
        }
        s.push_str("\n## Not covered by any rule (safe default applied — review these)\n\n| path | default | values | changed | removed |\n|---|---|---|---|---|\n");
        for (k, v) in &self.tally.uncovered {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                k.replace('|', "\\|"),
                v.action,
                v.values,
                v.changed,
                v.removed
            ));
        }
        s.push_str("\n## PHI found inside free text, by category\n\n| category | detections |\n|---|---|\n");
        for (k, v) in &self.tally.categories {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
        s.push_str("\n## Notes\n\n| note | count |\n|---|---|\n");
        for (k, v) in &self.tally.notes {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
        if !self.review.is_empty() {
            s.push_str("\n## Files for human review\n\n");
            for r in &self.review {
                s.push_str(&format!("- {r}\n"));
            }
        }
        let sample = &self.tally.review;
        s.push_str(&format!(
            "\n## Review sample\n\n{} of {} changed values, drawn at random (seed `{}`; \
             `--review-seed {}` draws the same sample). For each, find the replacement in the \
             output file, compare with the same place in the input, and tick *OK?* if the \
             change was right and nothing identifying is left around it.\n\n\
             | # | output file | rule or path | action | outcome | written | OK? |\n\
             |---|---|---|---|---|---|---|\n",
            sample.items.len(),
            sample.seen(),
            self.review_seed,
            self.review_seed
        ));
        for (n, item) in sample.items.iter().enumerate() {
            let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
            s.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {} | [ ] |\n",
                n + 1,
                cell(item.file.as_deref().unwrap_or("")),
                cell(&item.rule),
                item.action,
                item.outcome,
                item.replacement
                    .as_deref()
                    .map(|r| format!("`{}`", cell(r)))
                    .unwrap_or_default(),
            ));
        }
        s.push_str(
            "\nReviewed by: ____________________  Date: __________  Findings: ____________________\n",
        );
        s
    }
}

/// One input file of a run.
pub struct Job {
    pub input: PathBuf,
    pub rel: PathBuf,
    pub format: Format,
}

/// Runs `jobs` on `threads` threads; each output is written through `open(job)`; returns the
/// merged tally and, per job in order, the output's sha256 and size, plus review flags.
pub struct Done {
    pub tally: Tally,
    pub results: Vec<FileResult>,
}

/// One output: its sha256, its size, and why it needs a human look (if it does).
pub type FileResult = (String, u64, Vec<String>);

/// Sink that hashes what it writes.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Processes every job, writing job `i` to `targets[i]` (atomically); the first error stops
/// the run (files already written stay in the staging folder the caller discards).
pub fn run_jobs(
    pipeline: &Pipeline,
    jobs: &[Job],
    targets: &[PathBuf],
    names: &[String],
    threads: usize,
    progress: &crate::cmd_bench::Progress,
) -> Result<Done> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileResult>>> = Mutex::new(vec![None; jobs.len()]);
    let tally = Mutex::new(Tally::default());
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut local = Tally::default();
                loop {
                    if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = one_job(pipeline, i, job, &targets[i], &names[i], &mut local);
                    match r {
                        Ok(done) => {
                            progress.inc_record(done.1);
                            progress.inc_file();
                            if let Ok(mut v) = results.lock() {
                                v[i] = Some(done);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock()
                                && f.is_none()
                            {
                                *f = Some(e);
                            }
                            break;
                        }
                    }
                }
                if let Ok(mut t) = tally.lock() {
                    t.merge(local);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread failed"))?
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .context("a file was not processed")?;
    let tally = tally
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread failed"))?;
    Ok(Done { tally, results })
}

fn one_job(
    pipeline: &Pipeline,
    i: usize,
    job: &Job,
    target: &Path,
    name: &str,
    total: &mut Tally,
) -> Result<FileResult> {
    // A tally per file, so the review sample can name the file; merged into `total`.
    let mut tally = Tally {
        review: phiguard_rules::ReviewSample::new(
            pipeline.review_size,
            pipeline.review_seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ),
        ..Tally::default()
    };
    let mut w = Hashing {
        inner: Sink::open(Some(target))?,
        hasher: Sha256::new(),
        bytes: 0,
    };
    // Errors name the input by position and its de-identified output name: input names
    // often carry PHI.
    let review = pipeline
        .file(job.format, &job.input, &mut w, &mut tally)
        .with_context(|| {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            format!("input {} (output {name}, {})", i + 1, job.format.as_str())
        })?;
    let Hashing {
        inner,
        hasher,
        bytes,
    } = w;
    inner.finish()?;
    tally.review.set_file(name);
    total.merge(tally);
    Ok((
        hex::encode(hasher.finalize()),
        bytes,
        review.into_iter().collect(),
    ))
}

/// Resolves the profile/config of a structured run: `(config, profile label, config file sha)`.
pub fn load_config(
    profile: Option<&str>,
    config: Option<&Path>,
) -> Result<(Config, Option<String>)> {
    let (mut cfg, sha) = match config {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| anyhow::anyhow!("config file {} is not UTF-8", path.display()))?;
            let cfg = Config::from_toml(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?;
            (cfg, Some(hex::encode(Sha256::digest(&bytes))))
        }
        None => (Config::builtin(ProfileName::SafeHarbor), None),
    };
    if let Some(p) = profile {
        let name = ProfileName::parse(p).with_context(|| {
            format!("unknown profile {p:?}; expected safe-harbor, limited-data-set or shifted")
        })?;
        if config.is_some() && sha.is_some() && cfg.profile != name {
            // --profile overrides the config's base profile; say so.
            eprintln!(
                "phiguard deid: --profile {} overrides the config's profile {}",
                name.as_str(),
                cfg.profile.as_str()
            );
        }
        cfg.profile = name;
    }
    Ok((cfg, sha))
}

/// A fingerprint of the effective configuration (profile and config file).
pub fn config_fingerprint(cfg: &Config, sha: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(cfg.profile.as_str().as_bytes());
    h.update(b"\0");
    h.update(sha.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(cfg.text_profile().fingerprint().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Checks and lists the structured run's jobs (folders expanded, sorted).
pub fn plan(inputs: &[PathBuf]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for root in inputs {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot read input {}", root.display()))?;
        for file in crate::input::expand(std::slice::from_ref(root))? {
            let rel = if meta.is_dir() {
                file.strip_prefix(root).unwrap_or(&file).to_path_buf()
            } else {
                PathBuf::from(file.file_name().unwrap_or(file.as_os_str()))
            };
            let format = classify(&file)?;
            jobs.push(Job {
                input: file,
                rel,
                format,
            });
        }
    }
    if jobs.is_empty() {
        bail!("no input files found");
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let mut dcm = vec![0u8; 128];
        dcm.extend_from_slice(b"DICM");
        assert_eq!(classify_bytes(&dcm, "bin"), Format::Dicom);
        assert_eq!(
            classify_bytes(b"\xEF\xBB\xBFMSH|^~\\&|A", "txt"),
            Format::Hl7
        );
        assert_eq!(classify_bytes(b"MSHALL good", "txt"), Format::Text);
        assert_eq!(
            classify_bytes(b"{\"resourceType\":\"Patient\"}", "txt"),
            Format::Fhir
        );
        assert_eq!(classify_bytes(b"a,b\n1,2\n", "csv"), Format::Csv);
        assert_eq!(classify_bytes(b"PAR1....", "bin"), Format::Parquet);
        assert_eq!(classify_bytes(b"Seen today.", "txt"), Format::Text);
        assert_eq!(
            classify_bytes(b"{\"fhirVersion\": \"R4\"}", "json"),
            Format::Text
        );
    }

    #[test]
    fn path_components_lose_names_and_uuids() {
        let engine = Engine::new(
            phiguard_deid::DeidKey::from_bytes([1; 32]),
            Default::default(),
        );
        let out = deid_component(
            &engine,
            "Aaron697_Brekke496_2fa15bc7-8866-461a-9000-f739e425860a.json",
        );
        assert!(
            !out.contains("Aaron") && !out.contains("Brekke") && !out.contains("2fa15bc7"),
            "{out}"
        );
        assert!(out.ends_with(".json"));
        assert_eq!(
            deid_component(&engine, "observations.csv"),
            "observations.csv"
        );
        assert_eq!(deid_component(&engine, "CT_small.dcm"), "CT_small.dcm");
    }
}
