//! The `phiguard deid` run for structured inputs: plan, key, parallel de-identification into a
//! staging folder, move into place, report, audit record — all or nothing.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::cmd_deid::{Args, load_key, resolved};
use crate::structured::{
    Format, InputEntry, OutputEntry, Pipeline, StructuredReport, config_fingerprint, deid_rel,
    load_config, plan, run_jobs,
};

/// A structured run when `--profile` is given, or when any input file is structured.
pub fn wanted(args: &Args) -> Result<bool> {
    if args.profile.is_some() {
        return Ok(true);
    }
    for root in &args.inputs {
        if !root.exists() {
            continue; // the text run reports the missing input
        }
        for file in crate::input::expand(std::slice::from_ref(root))? {
            if crate::structured::classify(&file)? != Format::Text {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

pub fn run(args: &Args) -> Result<u8> {
    let started = Instant::now();
    let created_at = phiguard_deid::report::now_utc_rfc3339();
    let (config, config_sha) = load_config(args.profile.as_deref(), args.config.as_deref())?;
    let jobs = plan(&args.inputs)?;
    let out_dir = &args.output;
    if out_dir.as_os_str() == "-" {
        bail!("a structured run writes a folder: --output must name a folder, not stdout");
    }
    if out_dir.exists() && !out_dir.is_dir() {
        bail!("--output {} exists and is not a folder", out_dir.display());
    }
    let target = resolved(out_dir);
    for input in &args.inputs {
        if input.is_dir() && target.starts_with(resolved(input)) {
            bail!(
                "--output {} is inside the input folder {}; choose a folder outside it",
                out_dir.display(),
                input.display()
            );
        }
    }
    let (key, origin) = load_key(args)?;
    let key_fingerprint = key.fingerprint();
    let mut pipeline = Pipeline::new(&config, key)?;
    pipeline.review_size = args.review_sample;
    pipeline.review_seed = args
        .review_seed
        .unwrap_or_else(phiguard_deid::report::random_seed);

    // Output names: the same relative names with PHI taken out of every component.
    let mut seen = HashSet::new();
    let mut rels = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let mut rel = deid_rel(&pipeline.engine, &job.rel);
        if !seen.insert(rel.clone()) {
            let stem = rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = rel
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            let mut n = 2;
            loop {
                let cand = rel.with_file_name(format!("{stem}-{n}{ext}"));
                if seen.insert(cand.clone()) {
                    rel = cand;
                    break;
                }
                n += 1;
            }
        }
        rels.push(rel);
    }

    let created_dir = !out_dir.exists();
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create folder {}", out_dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".phiguard-deid-")
        .tempdir_in(out_dir)
        .with_context(|| format!("cannot create a folder in {}", out_dir.display()))?;
    let targets: Vec<PathBuf> = rels.iter().map(|r| staging.path().join(r)).collect();
    let threads = args
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    // Fewer files than threads: the spare threads go to the records of each file (FHIR NDJSON
    // lines, HL7 messages).
    pipeline.record_threads = (threads / jobs.len().max(1)).max(1);
    let progress = crate::cmd_bench::Progress::new("deid", jobs.len() as u64);
    let names: Vec<String> = rels.iter().map(|r| r.display().to_string()).collect();
    let done = match run_jobs(&pipeline, &jobs, &targets, &names, threads, &progress) {
        Ok(d) => d,
        Err(e) => {
            drop(staging);
            if created_dir {
                let _ = std::fs::remove_dir(out_dir);
            }
            return Err(e);
        }
    };
    progress.finish();

    // Inputs are fingerprinted after the run (they are read-only to us), streamed: a DICOM
    // file may be larger than memory.
    let mut inputs = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let (sha256, bytes) = sha256_file(&job.input)
            .with_context(|| format!("cannot read {}", job.input.display()))?;
        inputs.push(InputEntry {
            index: i,
            format: job.format,
            sha256,
            bytes,
        });
    }
    let mut placed = Vec::with_capacity(jobs.len());
    let mut outputs = Vec::with_capacity(jobs.len());
    let mut review = Vec::new();
    let mut by_format: BTreeMap<String, u64> = BTreeMap::new();
    for ((job, rel), (sha, bytes, flags)) in jobs.iter().zip(&rels).zip(&done.results) {
        let to = out_dir.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        std::fs::rename(staging.path().join(rel), &to)
            .with_context(|| format!("cannot write {}", to.display()))?;
        placed.push(to.clone());
        outputs.push(OutputEntry {
            path: rel.display().to_string(),
            format: job.format,
            sha256: sha.clone(),
            bytes: *bytes,
        });
        *by_format
            .entry(job.format.as_str().to_string())
            .or_default() += 1;
        if !flags.is_empty() {
            review.push(format!("{} ({})", rel.display(), flags.join(", ")));
        }
    }
    drop(staging);

    let report = StructuredReport {
        tool: format!("phiguard {}", env!("CARGO_PKG_VERSION")),
        created_at,
        profile: config.profile.as_str().to_string(),
        method: config.profile.method().to_string(),
        config_fingerprint: config_fingerprint(&config, config_sha.as_deref()),
        config_file_sha256: config_sha,
        key_fingerprint,
        jobs: threads,
        seconds: started.elapsed().as_secs_f64(),
        inputs,
        outputs,
        files_by_format: by_format,
        review_seed: pipeline.review_seed,
        tally: done.tally,
        review,
    };
    let (report_json, report_md) = match &args.report {
        Some(d) => (d.join("deid-report.json"), d.join("deid-report.md")),
        None => (
            out_dir.join("deid-report.json"),
            out_dir.join("deid-report.md"),
        ),
    };
    let json = serde_json::to_string_pretty(&report).context("cannot write the report")?;
    let written =
        write(&report_json, &json).and_then(|()| write(&report_md, &report.to_markdown()));
    if let Err(e) = written {
        for p in &placed {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.context("the run report could not be written; outputs were removed"));
    }
    if !args.no_audit {
        let record = serde_json::json!({
            "type": "deid.run",
            "actor": crate::audit_trail::actor(),
            "action": "de-identification",
            "tool": report.tool,
            "started_at": report.created_at,
            "method": report.method,
            "profile": report.profile,
            "config_fingerprint": report.config_fingerprint,
            "key_fingerprint": report.key_fingerprint,
            "inputs_sha256": report.inputs.iter().map(|i| i.sha256.clone()).collect::<Vec<_>>(),
            "outputs_sha256": report.outputs.iter().map(|o| o.sha256.clone()).collect::<Vec<_>>(),
            "report_sha256": hex::encode(Sha256::digest(json.as_bytes())),
            "records": report.tally.records,
            "spans_by_category": report.tally.categories,
        });
        if let Err(e) = crate::audit_trail::record(args.audit_store.as_deref(), &record) {
            for p in placed.iter().chain([&report_json, &report_md]) {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.context(
                "the run could not be recorded in the audit trail; outputs and report were removed",
            ));
        }
    }
    let _ = origin;
    eprintln!(
        "phiguard deid: {} files ({}), {} records, profile {}; output {}; report {}",
        report.outputs.len(),
        report
            .files_by_format
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        report.tally.records,
        report.profile,
        out_dir.display(),
        report_json.display()
    );
    Ok(0)
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut sink = crate::output::Sink::open(Some(path))?;
    sink.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    sink.finish()
}

/// SHA-256 (hex) and length of a file, read in 1 MiB chunks.
fn sha256_file(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}
