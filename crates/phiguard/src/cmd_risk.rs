//! `phiguard risk`: re-identification risk of a table for Expert Determination, over
//! `phiguard-risk`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use phiguard_risk::{LossMetric, RiskConfig, SensitiveKind};

use crate::output::Sink;

/// Exit code when `--k` (or `--l`) is asked and no generalisation reaches it within
/// `--max-suppression`. The report is still written.
pub const EXIT_TARGET_NOT_REACHED: u8 = 4;

/// Measure re-identification risk of a table (CSV, `,`/`;`/tab sniffed, header row) with
/// declared quasi-identifiers: equivalence classes, k-anonymity, l-diversity, t-closeness,
/// prosecutor/journalist/marketer risk, sample uniques. With --k, search ARX generalisation
/// hierarchies for the least-loss generalisation reaching k, suppressing at most
/// --max-suppression of the records. Exit codes: 0 computed, 4 target k/l not reachable (report
/// still written), 1 error.
#[derive(clap::Args)]
pub struct Args {
    /// The table: CSV with a header row, or FHIR R4 Patient resources (a Bundle, NDJSON, or a
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

    let report = phiguard_risk::assess(&cfg)?;
    let mut sink = Sink::open(a.output.as_deref())?;
    if a.markdown {
        sink.write_all(report.to_markdown().as_bytes())?;
    } else {
        serde_json::to_writer_pretty(&mut sink, &report)?;
        sink.write_all(b"\n")?;
    }
    sink.finish()?;
    if report.target_missed() {
        eprintln!(
            "phiguard: risk: no generalisation reaches the target within --max-suppression {} (exit {EXIT_TARGET_NOT_REACHED})",
            a.max_suppression
        );
        return Ok(EXIT_TARGET_NOT_REACHED);
    }
    Ok(0)
}
