//! `phiguard risk`: re-identification risk of a table for Expert Determination, over
//! `phiguard-risk`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use phiguard_risk::deid_report::{DeidReportJson, markdown_section, replace_markdown_section};
use phiguard_risk::{LossMetric, RiskConfig, RiskReport, SensitiveKind};

use crate::output::Sink;

/// Exit code when `--k` (or `--l`) is asked and no generalisation reaches it within
/// `--max-suppression`. The report is still written.
pub const EXIT_TARGET_NOT_REACHED: u8 = 4;

/// Measure re-identification risk of a table (CSV, `,`/`;`/tab sniffed, header row; Parquet) with
/// declared quasi-identifiers: equivalence classes, k-anonymity, l-diversity, t-closeness,
/// prosecutor/journalist/marketer risk, sample uniques. With --k, search ARX generalisation
/// hierarchies for the least-loss generalisation reaching k, suppressing at most
/// --max-suppression of the records. Exit codes: 0 computed, 4 target k/l not reachable (report
/// still written), 1 error.
#[derive(clap::Args)]
pub struct Args {
    /// The table: CSV with a header row, Parquet (recognised by content; only the named columns
    /// are read), or FHIR R4 Patient resources (a Bundle, NDJSON, or a
    /// folder of `.json`/`.ndjson` files) flattened to the columns gender, birthDate, birthYear,
    /// postalCode, zip3, city, state, country, maritalStatus, deceased, race, ethnicity, language.
    pub input: PathBuf,
    /// Read INPUT as FHIR Patient resources even without a `.json`/`.ndjson` extension.
    #[arg(long)]
    pub fhir: bool,
    /// Quasi-identifier columns, comma-separated (e.g. sex,age,zip).
    #[arg(long, value_name = "COLS", required = true, value_delimiter = ',')]
    pub qi: Vec<String>,
    /// Sensitive column, for l-diversity and t-closeness.
    #[arg(long, value_name = "COL")]
    pub sensitive: Option<String>,
    /// How t-closeness compares sensitive values (default: numerical when every value is a
    /// number, as pandas/pycanon decide).
    #[arg(long, value_enum, value_name = "KIND")]
    pub sensitive_kind: Option<KindArg>,
    /// ARX hierarchy for a quasi-identifier (`value;level1;...;*`), repeatable: COL=FILE, or
    /// COL=builtin:zip|age|year|date (digits masked from the right; 5/10/20-year bands, ages
    /// 90+ together; date → month → year → bands). Without one a column has two levels: the
    /// value and `*`.
    #[arg(long, value_name = "COL=FILE")]
    pub hierarchy: Vec<String>,
    /// Fixed generalisation levels, COL=N, comma-separated or repeated (others 0, or searched
    /// with --k).
    #[arg(long, value_name = "COL=N", value_delimiter = ',')]
    pub levels: Vec<String>,
    /// Target k: search the generalisation lattice for the least-loss node reaching it.
    #[arg(long, value_name = "K")]
    pub k: Option<usize>,
    /// Target distinct l-diversity for the search (needs --k and --sensitive).
    #[arg(long, value_name = "L")]
    pub l: Option<usize>,
    /// Largest fraction of records the search may suppress (e.g. 0.01 for 1%).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub max_suppression: f64,
    /// A record is at risk when its re-identification probability is above this (0.2: classes
    /// smaller than 5).
    #[arg(long, value_name = "P", default_value_t = phiguard_risk::DEFAULT_RISK_THRESHOLD)]
    pub threshold: f64,
    /// Information loss minimised by the search.
    #[arg(long, value_enum, default_value_t = MetricArg::Loss)]
    pub metric: MetricArg,
    /// Population table with the same quasi-identifier columns, for journalist and marketer
    /// risk (without it journalist risk is reported equal to prosecutor risk).
    #[arg(long, value_name = "FILE")]
    pub population: Option<PathBuf>,
    /// Include every class's generalised quasi-identifier values in the report (they are table
    /// values: off by default, counts only).
    #[arg(long)]
    pub show_classes: bool,
    /// Write the report as JSON (the default).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Write the report as Markdown.
    #[arg(long)]
    pub markdown: bool,
    /// Write the report here (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Add the report to a phiguard de-identification report: its folder (deid-report.json and
    /// deid-report.md) or its JSON file. The JSON report goes under "risk" (replacing the entry
    /// for the same table file name and quasi-identifiers), the Markdown into a
    /// "## Re-identification risk" section; both files are rewritten atomically, or left
    /// untouched on error. Nothing goes to stdout then, unless --output is given.
    #[arg(long, value_name = "PATH")]
    pub deid_report: Option<PathBuf>,
}

/// `--sensitive-kind`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// Equal ground distance.
    Categorical,
    /// Ordered distance over sorted values.
    Numerical,
}

/// `--metric`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MetricArg {
    /// Iyengar's generalisation loss (ARX's "Loss").
    Loss,
    /// Sweeney's precision loss (level / height).
    Precision,
}

fn split_pair<'a>(arg: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    match arg.split_once('=') {
        Some((c, v)) if !c.is_empty() && !v.is_empty() => Ok((c, v)),
        _ => bail!("{what} must be COL=VALUE, got '{arg}'"),
    }
}

/// Runs `phiguard risk`.
pub fn run(a: Args) -> Result<u8> {
    let qis: Vec<&str> =
        a.qi.iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
    let mut cfg = RiskConfig::new(&a.input, &qis);
    if a.fhir {
        cfg.fhir = Some(true);
    }
    cfg.sensitive = a.sensitive.clone();
    cfg.sensitive_kind = a.sensitive_kind.map(|k| match k {
        KindArg::Categorical => SensitiveKind::Categorical,
        KindArg::Numerical => SensitiveKind::Numerical,
    });
    for h in &a.hierarchy {
        let (c, f) = split_pair(h, "--hierarchy")?;
        cfg.hierarchies.push((c.to_string(), PathBuf::from(f)));
    }
    for l in a.levels.iter().filter(|s| !s.is_empty()) {
        let (c, n) = split_pair(l, "--levels")?;
        let n: usize = n
            .parse()
            .with_context(|| format!("--levels {c}=N: N must be a whole number"))?;
        cfg.levels.push((c.to_string(), n));
    }
    cfg.target_k = a.k;
    cfg.target_l = a.l;
    cfg.max_suppression = a.max_suppression;
    cfg.risk_threshold = a.threshold;
    cfg.metric = match a.metric {
        MetricArg::Loss => LossMetric::Loss,
        MetricArg::Precision => LossMetric::Precision,
    };
    cfg.population = a.population.clone();
    cfg.show_classes = a.show_classes;

    // The de-identification report is checked before the (possibly long) assessment.
    let deid = a.deid_report.as_deref().map(DeidReport::read).transpose()?;
    let report = phiguard_risk::assess(&cfg)?;
    if deid.is_none() || a.output.is_some() {
        let mut sink = Sink::open(a.output.as_deref())?;
        if a.markdown {
            sink.write_all(report.to_markdown().as_bytes())?;
        } else {
            serde_json::to_writer_pretty(&mut sink, &report)?;
            sink.write_all(b"\n")?;
        }
        sink.finish()?;
    }
    if let Some(deid) = deid {
        deid.add(&report)?;
        eprintln!(
            "phiguard: risk: k = {}, {} equivalence classes; added to {} and {}",
            report.measures.k,
            report.measures.equivalence_classes,
            deid.json.display(),
            deid.md.display()
        );
    }
    if report.target_missed() {
        eprintln!(
            "phiguard: risk: no generalisation reaches the target within --max-suppression {} (exit {EXIT_TARGET_NOT_REACHED})",
            a.max_suppression
        );
        return Ok(EXIT_TARGET_NOT_REACHED);
    }
    Ok(0)
}

/// A de-identification report (`deid-report.json` and `deid-report.md`) as read before the
/// assessment.
struct DeidReport {
    json: PathBuf,
    md: PathBuf,
    json_text: String,
    md_text: String,
}

impl DeidReport {
    /// `path` is the report folder or its JSON file (the Markdown is beside it, `.md`).
    /// Both must exist and the JSON must be a phiguard de-identification report.
    fn read(path: &Path) -> Result<DeidReport> {
        let (json, md) = if path.is_dir() {
            (path.join("deid-report.json"), path.join("deid-report.md"))
        } else if path.extension().is_some_and(|e| e == "json") {
            (path.to_path_buf(), path.with_extension("md"))
        } else if path.exists() {
            bail!(
                "--deid-report {}: expected a de-identification report folder or its deid-report.json",
                path.display()
            );
        } else {
            bail!(
                "--deid-report {}: no such folder or file (run `phiguard deid` first)",
                path.display()
            );
        };
        let read = |p: &Path| -> Result<String> {
            std::fs::read_to_string(p).with_context(|| {
                format!(
                    "--deid-report: cannot read the de-identification report {}",
                    p.display()
                )
            })
        };
        let json_text = read(&json)?;
        DeidReportJson::parse(&json_text).with_context(|| format!("{}", json.display()))?;
        let md_text = read(&md)?;
        Ok(DeidReport {
            json,
            md,
            json_text,
            md_text,
        })
    }

    /// Adds `report` to both files: each is written to a temporary file in its folder, synced,
    /// and renamed over the original only when both are ready and neither changed meanwhile.
    fn add(&self, report: &RiskReport) -> Result<()> {
        let mut doc = DeidReportJson::parse(&self.json_text)
            .with_context(|| format!("{}", self.json.display()))?;
        doc.upsert(report)
            .with_context(|| format!("{}", self.json.display()))?;
        let json_text = doc
            .to_text()
            .with_context(|| format!("{}", self.json.display()))?;
        let md_text = replace_markdown_section(&self.md_text, &markdown_section(doc.entries()));
        let json_tmp = stage(&self.json, &json_text)?;
        let md_tmp = stage(&self.md, &md_text)?;
        for (p, before) in [(&self.json, &self.json_text), (&self.md, &self.md_text)] {
            let now = std::fs::read_to_string(p).ok();
            if now.as_ref() != Some(before) {
                bail!(
                    "{} changed while the risk was computed; nothing was written, run again",
                    p.display()
                );
            }
        }
        persist(json_tmp, &self.json)?;
        if let Err(e) = persist(md_tmp, &self.md) {
            // Put the JSON back so the two files stay in step.
            let restored = stage(&self.json, &self.json_text).and_then(|t| persist(t, &self.json));
            return Err(match restored {
                Ok(()) => e.context("the de-identification report was left unchanged"),
                Err(r) => e.context(format!(
                    "and {} could not be restored ({r:#}): it holds the risk, {} does not",
                    self.json.display(),
                    self.md.display()
                )),
            });
        }
        sync_dir(&self.json);
        sync_dir(&self.md);
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `text` in a synced temporary file beside `path`, with `path`'s permissions.
fn stage(path: &Path, text: &str) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".phiguard-risk-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(tmp)
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Makes a rename durable (best effort: not every platform can sync a folder).
fn sync_dir(path: &Path) {
    if let Ok(d) = std::fs::File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
}
