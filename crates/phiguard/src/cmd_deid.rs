//! `phiguard deid`: write de-identified copies of text files, folders or JSONL, and a run report
//! (JSON and Markdown) for the auditor. The domain logic lives in `phiguard-deid`; this file
//! reads inputs, places outputs, and wires the detector, the key and the report together.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use phiguard_deid::report::{
    ConfigInfo, FileEntry, KeyInfo, RecordCounts, ReviewOptions, RunMeta, RunOptions, ToolInfo,
};
use phiguard_deid::{Deidentifier, Document, KeyOrigin, Profile, ReportBuilder, key};
use phiguard_detect::{Detector, Lang};
use sha2::{Digest, Sha256};

use crate::input::{self, InputOptions};
use crate::output::Sink;

#[derive(clap::Args)]
pub struct Args {
    /// Text files, folders (read recursively) or JSONL files (`.jsonl`/`.ndjson`, one record a
    /// line).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write. A folder: every input file is written there under its name relative to
    /// the input folder. For a single JSONL input, a file (unless it is an existing folder or
    /// ends with `/`), or `-` for stdout (then --report is required).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The JSONL field that holds the text (the only field de-identified).
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Language of the documents: en, es or de (default: guessed per document by the detector).
    /// The same language is used to find PHI and to read numeric dates: en m/d/y, es and de
    /// d/m/y.
    #[arg(long, value_parser = crate::cmd_scan::parse_lang)]
    pub lang: Option<Lang>,
    /// Skip (and count) malformed JSONL lines and files that are not UTF-8 instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// TOML file with per-category actions (default: HIPAA Safe Harbor).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// HMAC key file, created on first use (default: $PHIGUARD_HOME/keys/deid.key, where
    /// PHIGUARD_HOME defaults to $XDG_DATA_HOME/phiguard or ~/.local/share/phiguard).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// JSONL field naming the patient, for consistent date shifts (default: the record id).
    #[arg(long)]
    pub patient_field: Option<String>,
    /// Folder for deid-report.json and deid-report.md (default: `<output>.report.json` and
    /// `<output>.report.md` beside the output).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// How many replaced spans to sample at random for the review sheet.
    #[arg(long, default_value_t = 20)]
    pub review_sample: usize,
    /// Seed of the review sample (default: random; the report records it).
    #[arg(long)]
    pub review_seed: Option<u64>,
    /// Every decision with a confidence below this goes on the review sheet.
    #[arg(long, default_value_t = 0.6)]
    pub review_threshold: f32,
    /// A JSONL field to remove from the output records (repeatable), e.g. gold spans that quote
    /// the original text.
    #[arg(long = "drop-field", value_name = "FIELD")]
    pub drop_fields: Vec<String>,
    /// Audit store that records the run (`sqlite:PATH` or `postgres://…`; default: the
    /// embedded store under PHIGUARD_HOME). The record holds fingerprints and counts, never
    /// text or file names. If it cannot be written the run fails and its outputs are removed.
    #[arg(long, value_name = "URL")]
    pub audit_store: Option<String>,
    /// Do not record the run in the audit trail (throwaway experiments only).
    #[arg(long)]
    pub no_audit: bool,
    /// Built-in profile for structured data (FHIR, HL7 v2, DICOM, CSV, Parquet): safe-harbor,
    /// limited-data-set or shifted. Structured inputs are recognised by extension and content;
    /// with --profile (or any structured input) the run writes a folder of de-identified files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Files processed in parallel in a structured run (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Propose a config instead of de-identifying: sample each CSV table among the inputs, run
    /// the detector on every column and write one `[csv]` section with a rule per column (and
    /// why) to --output (`-` for stdout). No sampled value is written. Review it, then pass it
    /// with --config.
    #[arg(long)]
    pub suggest: bool,
}

/// Where the output goes.
enum Dest {
    /// One JSONL file (or `-` for stdout).
    File(PathBuf),
    /// A folder; files are staged in a hidden temporary folder inside it and moved into place
    /// only when every input has been written.
    Dir(PathBuf),
}

/// One input file and its name relative to its input root.
struct Job {
    input: PathBuf,
    rel: PathBuf,
    jsonl: bool,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn into_parts(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
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

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

fn is_stdout(p: &Path) -> bool {
    p == Path::new("-")
}

/// An absolute form of `p` with symlinks resolved as far as the path exists.
pub(crate) fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            resolved(parent).join(name)
        }
        _ => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// `<path>.report.json` and `.report.md` beside `path`.
fn beside(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let abs = resolved(path);
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        bail!(
            "cannot place the report beside {}; pass --report DIR",
            path.display()
        );
    };
    let name = name.to_string_lossy();
    Ok((
        parent.join(format!("{name}.report.json")),
        parent.join(format!("{name}.report.md")),
    ))
}

fn plan(args: &Args) -> Result<(Dest, Vec<Job>)> {
    let single_jsonl =
        args.inputs.len() == 1 && !args.inputs[0].is_dir() && input::is_jsonl(&args.inputs[0]);
    let out = &args.output;
    let ends_with_sep = out.as_os_str().to_string_lossy().ends_with(['/', '\\']);
    let dest = if single_jsonl && (is_stdout(out) || (!out.is_dir() && !ends_with_sep)) {
        Dest::File(out.clone())
    } else {
        if is_stdout(out) {
            bail!("--output - (stdout) works only for a single JSONL input");
        }
        if out.exists() && !out.is_dir() {
            bail!(
                "--output {} exists and is not a folder; with text files, folders or several inputs, --output names a folder",
                out.display()
            );
        }
        Dest::Dir(out.clone())
    };

    let mut jobs = Vec::new();
    for root in &args.inputs {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot read input {}", root.display()))?;
        let files = input::expand(std::slice::from_ref(root))?;
        for file in files {
            let rel = if meta.is_dir() {
                file.strip_prefix(root).unwrap_or(&file).to_path_buf()
            } else {
                PathBuf::from(file.file_name().unwrap_or(file.as_os_str()))
            };
            let jsonl = input::is_jsonl(&file);
            jobs.push(Job {
                input: file,
                rel,
                jsonl,
            });
        }
    }

    // Never write over an input, never write inside an input folder.
    let inputs_resolved: Vec<(PathBuf, bool)> = args
        .inputs
        .iter()
        .map(|p| (resolved(p), p.is_dir()))
        .collect();
    match &dest {
        Dest::File(p) if !is_stdout(p) => {
            let target = resolved(p);
            if jobs.iter().any(|j| resolved(&j.input) == target) {
                bail!("--output {} is an input; choose another file", p.display());
            }
        }
        Dest::File(_) => {}
        Dest::Dir(d) => {
            let target = resolved(d);
            for (input, is_dir) in &inputs_resolved {
                if *is_dir && target.starts_with(input) {
                    bail!(
                        "--output {} is inside the input folder {}; choose a folder outside it",
                        d.display(),
                        input.display()
                    );
                }
            }
            let mut seen = HashSet::new();
            for job in &jobs {
                if !seen.insert(job.rel.clone()) {
                    bail!(
                        "two inputs would both be written to {}",
                        d.join(&job.rel).display()
                    );
                }
                if resolved(&job.input) == target.join(&job.rel) {
                    bail!(
                        "--output {} would overwrite the input {}",
                        d.display(),
                        job.input.display()
                    );
                }
            }
        }
    }
    Ok((dest, jobs))
}

fn report_paths(args: &Args, dest: &Dest) -> Result<(PathBuf, PathBuf)> {
    if let Some(dir) = &args.report {
        return Ok((dir.join("deid-report.json"), dir.join("deid-report.md")));
    }
    match dest {
        Dest::File(p) if is_stdout(p) => {
            bail!("--report DIR is required when the output is stdout")
        }
        Dest::File(p) | Dest::Dir(p) => beside(p),
    }
}

fn load_profile(args: &Args) -> Result<(Profile, Option<(String, String)>)> {
    let Some(path) = &args.config else {
        return Ok((Profile::safe_harbor(), None));
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| anyhow::anyhow!("config file {} is not UTF-8", path.display()))?;
    let profile = Profile::from_toml(&text)
        .with_context(|| format!("invalid config file {}", path.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok((profile, Some((path.display().to_string(), sha))))
}

pub fn run(args: Args) -> Result<u8> {
    if args.suggest {
        return crate::suggest::run(&args);
    }
    if crate::structured_run::wanted(&args)? {
        return crate::structured_run::run(&args);
    }
    let created_at = phiguard_deid::report::now_utc_rfc3339();
    if !(0.0..=1.0).contains(&args.review_threshold) {
        bail!("--review-threshold must be between 0 and 1");
    }
    if args.drop_fields.contains(&args.text_field) {
        bail!(
            "--drop-field cannot drop the text field \"{}\"",
            args.text_field
        );
    }
    let (profile, config_file) = load_profile(&args)?;
    let (dest, jobs) = plan(&args)?;
    let (report_json, report_md) = report_paths(&args, &dest)?;

    let (deid_key, origin) = load_key(&args)?;
    let key_info = KeyInfo {
        fingerprint: deid_key.fingerprint(),
        created_this_run: origin == KeyOrigin::Created,
    };

    let review = ReviewOptions {
        sample_size: args.review_sample,
        seed: args
            .review_seed
            .unwrap_or_else(phiguard_deid::report::random_seed),
        threshold: args.review_threshold,
    };
    let method = profile.method();
    let safe_harbor_default = profile.differences_from_safe_harbor().is_empty();
    let config_info = ConfigInfo {
        file: config_file.as_ref().map(|(p, _)| p.clone()),
        file_sha256: config_file.map(|(_, s)| s),
        fingerprint: profile.fingerprint(),
        applied: profile.applied(),
    };
    let deid = Deidentifier::new(profile, deid_key);

    // Dir mode: create the folder (remembering whether we did) and a staging folder inside it.
    let mut created_dir = None;
    let staging = match &dest {
        Dest::Dir(d) => {
            if !d.exists() {
                created_dir = Some(d.clone());
            }
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create folder {}", d.display()))?;
            Some(
                tempfile::Builder::new()
                    .prefix(".phiguard-deid-")
                    .tempdir_in(d)
                    .with_context(|| format!("cannot create a folder in {}", d.display()))?,
            )
        }
        Dest::File(_) => None,
    };

    let mut builder = ReportBuilder::new(review);
    let processed = process(
        &args,
        &dest,
        staging.as_ref().map(|s| s.path()),
        &jobs,
        &deid,
        &mut builder,
    );
    let processed = match processed {
        Ok(p) => p,
        Err(e) => {
            drop(staging);
            if let Some(d) = created_dir {
                // Only removes the folder if it is empty.
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
    };

    // Move staged outputs into place.
    let mut placed: Vec<PathBuf> = Vec::new();
    if let (Dest::Dir(d), Some(staging)) = (&dest, &staging) {
        for rel in &processed.staged {
            let to = d.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create folder {}", parent.display()))?;
            }
            std::fs::rename(staging.path().join(rel), &to)
                .with_context(|| format!("cannot write {}", to.display()))?;
            placed.push(to);
        }
    } else if let Dest::File(p) = &dest
        && !is_stdout(p)
    {
        placed.push(p.clone());
    }
    drop(staging);

    let totals = processed.counts;
    let report = builder.finish(RunMeta {
        tool: ToolInfo {
            name: "phiguard".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        created_at,
        method,
        safe_harbor_default,
        config: config_info,
        key: key_info,
        options: RunOptions {
            lang: args.lang.map(|l| l.code().to_string()),
            text_field: args.text_field.clone(),
            patient_field: args.patient_field.clone(),
            dropped_fields: args.drop_fields.clone(),
        },
        inputs: processed.inputs,
        outputs: processed.outputs,
        records: totals,
    });
    let report_text = report.to_json();
    let written = write_report(&report_json, &report_text)
        .and_then(|()| write_report(&report_md, &report.to_markdown()));
    if let Err(e) = written {
        // No output without its report.
        for p in &placed {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.context("the run report could not be written; outputs were removed"));
    }
    if !args.no_audit
        && let Err(e) = record_run(&args, &report_text)
    {
        // Fail closed: no de-identified output without its audit record.
        for p in placed.iter().chain([&report_json, &report_md]) {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.context(
            "the run could not be recorded in the audit trail; outputs and report were removed",
        ));
    }
    eprintln!(
        "phiguard deid: {} records ({} skipped), {} spans, {} replaced; output {}; report {}",
        report.records.read,
        report.records.skipped,
        report.counts.spans,
        report.counts.changed,
        args.output.display(),
        report_json.display()
    );
    Ok(0)
}

/// Loads (or creates, on first use) the de-identification key.
pub fn load_key(args: &Args) -> Result<(phiguard_deid::DeidKey, KeyOrigin)> {
    let key_path = match &args.key_file {
        Some(p) => p.clone(),
        None => key::default_key_path(|k| std::env::var_os(k)).context(
            "cannot find a home folder for the de-identification key; set PHIGUARD_HOME or pass --key-file",
        )?,
    };
    let (deid_key, origin) = key::load_or_create(&key_path)?;
    if origin == KeyOrigin::Created {
        eprintln!(
            "phiguard deid: created a new de-identification key at {} (mode 0600). Keep it secret \
             and back it up: the same key gives the same pseudonyms, surrogates and date shifts.",
            key_path.display()
        );
    }
    if !key::is_private(&key_path) {
        eprintln!(
            "phiguard deid: warning: key file {} can be read by other users; run `chmod 600` on it",
            key_path.display()
        );
    }
    Ok((deid_key, origin))
}

/// Appends the run's audit record: who ran it, the method, and fingerprints of the
/// configuration, key, inputs, outputs and report, with counts per category. No text and no
/// file names (exports are often named after the patient).
fn record_run(args: &Args, report_text: &str) -> Result<()> {
    let report: serde_json::Value =
        serde_json::from_str(report_text).context("cannot read back the run report")?;
    let hashes = |key: &str| -> Vec<serde_json::Value> {
        report[key]
            .as_array()
            .map(|files| files.iter().map(|f| f["sha256"].clone()).collect())
            .unwrap_or_default()
    };
    let actor = crate::audit_trail::actor();
    let record = serde_json::json!({
        "type": "deid.run",
        "actor": actor,
        "action": "de-identification",
        "tool": format!("phiguard {}", env!("CARGO_PKG_VERSION")),
        "started_at": report["created_at"],
        "method": report["method"],
        "config_fingerprint": report["config"]["fingerprint"],
        "key_fingerprint": report["key"]["fingerprint"],
        "inputs_sha256": hashes("inputs"),
        "outputs_sha256": hashes("outputs"),
        "report_sha256": hex::encode(Sha256::digest(report_text.as_bytes())),
        "records": report["records"],
        "spans_by_category": report["counts"]["by_category"],
    });
    let index = crate::audit_trail::record(args.audit_store.as_deref(), &record)?;
    eprintln!("phiguard deid: run recorded in the audit trail at index {index}");
    Ok(())
}

fn write_report(path: &Path, text: &str) -> Result<()> {
    let mut sink = Sink::open(Some(path))?;
    sink.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    sink.finish()
}

struct Processed {
    inputs: Vec<FileEntry>,
    outputs: Vec<FileEntry>,
    /// Relative names written into the staging folder (Dir mode).
    staged: Vec<PathBuf>,
    counts: RecordCounts,
}

fn location(source: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", source.display()),
        None => source.display().to_string(),
    }
}

fn process(
    args: &Args,
    dest: &Dest,
    staging: Option<&Path>,
    jobs: &[Job],
    deid: &Deidentifier,
    builder: &mut ReportBuilder,
) -> Result<Processed> {
    let opts = InputOptions {
        text_field: args.text_field.clone(),
        skip_invalid: args.skip_invalid,
    };
    let detector = Detector::new();
    let progress = crate::cmd_bench::Progress::new("deid", jobs.len() as u64);
    let mut out = Processed {
        inputs: Vec::new(),
        outputs: Vec::new(),
        staged: Vec::new(),
        counts: RecordCounts::default(),
    };
    let mut noted_other_fields = false;
    for job in jobs {
        let (in_sha, in_bytes) = sha256_file(&job.input)?;
        let (target, shown) = match (dest, staging) {
            (Dest::Dir(d), Some(s)) => (s.join(&job.rel), d.join(&job.rel)),
            (Dest::Dir(d), None) => (d.join(&job.rel), d.join(&job.rel)),
            (Dest::File(p), _) => (p.clone(), p.clone()),
        };
        let mut writer: Option<Hashing<Sink>> = None;
        let mut written = 0u64;
        let mut skipped = 0u64;
        let patient_rel = job.rel.display().to_string();
        let stats = input::for_each_record(std::slice::from_ref(&job.input), &opts, |mut rec| {
            let at = || location(&rec.source, rec.line);
            let patient = match (&args.patient_field, &rec.json) {
                (Some(field), Some(json)) => match json.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    _ if args.skip_invalid => {
                        skipped += 1;
                        eprintln!(
                            "phiguard: skipped {}: missing or non-scalar patient field \"{field}\"",
                            at()
                        );
                        return Ok(());
                    }
                    _ => bail!("{}: missing or non-scalar patient field \"{field}\"", at()),
                },
                (_, Some(_)) => rec.id.clone(),
                (_, None) => patient_rel.clone(),
            };
            // One language per record, for both detection and reading numeric dates.
            let (lang, spans) = detector.detect_guessing(&rec.text, args.lang);
            let result = deid
                .deidentify(&Document {
                    text: &rec.text,
                    spans: &spans,
                    patient: &patient,
                    lang,
                })
                .with_context(at)?;
            builder.add_record(&rec.id, &rec.text, &result.decisions);
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(Hashing::new(Sink::open(Some(&target))?)),
            };
            match rec.json.take() {
                Some(mut obj) => {
                    if !noted_other_fields
                        && obj.keys().any(|k| {
                            k != "id"
                                && *k != args.text_field
                                && Some(k) != args.patient_field.as_ref()
                                && !args.drop_fields.contains(k)
                        })
                    {
                        noted_other_fields = true;
                        eprintln!(
                            "phiguard deid: note: only the field \"{}\" is de-identified; other fields are copied as they are (remove them with --drop-field)",
                            args.text_field
                        );
                    }
                    obj.insert(
                        args.text_field.clone(),
                        serde_json::Value::String(result.text),
                    );
                    for f in &args.drop_fields {
                        obj.remove(f);
                    }
                    serde_json::to_writer(&mut *w, &obj)
                        .with_context(|| format!("cannot write {}", shown.display()))?;
                    w.write_all(b"\n")
                        .with_context(|| format!("cannot write {}", shown.display()))?;
                }
                None => w
                    .write_all(result.text.as_bytes())
                    .with_context(|| format!("cannot write {}", shown.display()))?,
            }
            written += 1;
            progress.inc_record(rec.text.len() as u64);
            Ok(())
        })?;
        // A JSONL file whose records were all skipped still gets its (empty) output.
        if writer.is_none() && job.jsonl {
            writer = Some(Hashing::new(Sink::open(Some(&target))?));
        }
        if let Some(w) = writer {
            let (sink, sha, bytes) = w.into_parts();
            sink.finish()?;
            out.outputs.push(FileEntry {
                path: if matches!(dest, Dest::File(p) if is_stdout(p)) {
                    "(stdout)".to_string()
                } else {
                    shown.display().to_string()
                },
                sha256: sha,
                bytes,
                records: written,
            });
            if staging.is_some() {
                out.staged.push(job.rel.clone());
            }
        }
        out.inputs.push(FileEntry {
            path: job.input.display().to_string(),
            sha256: in_sha,
            bytes: in_bytes,
            records: stats.records,
        });
        out.counts.read += stats.records;
        out.counts.skipped += stats.skipped + skipped;
        out.counts.written += written;
        progress.inc_file();
    }
    progress.finish();
    Ok(out)
}
