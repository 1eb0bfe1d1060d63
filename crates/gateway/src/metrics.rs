//! Prometheus metrics in the text exposition format. Labels are stable codes, category names
//! and policy names from the code or the config — never request content, keys or patient refs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use phiguard_detect::Category;

/// Upper bounds (milliseconds) of the overhead histogram buckets.
pub const OVERHEAD_BUCKETS_MS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (status, code) where code is `ok` or a stable error code.
    requests: Mutex<BTreeMap<(u16, &'static str), u64>>,
    /// Guard decisions by (policy, outcome).
    decisions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Detections per category.
    detections: Mutex<BTreeMap<Category, u64>>,
    /// Prompt-injection verdicts (`clean`, `flagged`, `blocked`).
    injections: Mutex<BTreeMap<&'static str, u64>>,
    overhead_buckets: [AtomicU64; OVERHEAD_BUCKETS_MS.len()],
    overhead_count: AtomicU64,
    overhead_sum_us: AtomicU64,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, n: u64) {
    if let Ok(mut g) = m.lock() {
        *g.entry(k).or_insert(0) += n;
    }
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, status: u16, code: &'static str) {
        bump(&self.requests, (status, code), 1);
    }

    /// Counts a guard decision (`policy`: allow/redact/tokenize/block; `outcome`: clean,
    /// transformed, allowed, blocked, route_denied, …).
    pub fn decision(&self, policy: &'static str, outcome: &'static str) {
        bump(&self.decisions, (policy, outcome), 1);
    }

    /// Adds detections.
    pub fn detections(&self, counts: &BTreeMap<Category, u32>) {
        for (c, n) in counts {
            bump(&self.detections, *c, u64::from(*n));
        }
    }

    /// Counts a prompt-injection verdict of a screened request.
    pub fn injection(&self, verdict: &'static str) {
        bump(&self.injections, verdict, 1);
    }

    /// Records the gateway's own time for a request (excluding the upstream).
    pub fn overhead(&self, ms: f64) {
        for (i, b) in OVERHEAD_BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.overhead_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.overhead_count.fetch_add(1, Ordering::Relaxed);
        self.overhead_sum_us
            .fetch_add((ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP phiguard_gateway_requests_total Requests by HTTP status and stable code."
        );
        let _ = writeln!(out, "# TYPE phiguard_gateway_requests_total counter");
        if let Ok(g) = self.requests.lock() {
            for ((s, c), n) in g.iter() {
                let _ = writeln!(
                    out,
                    "phiguard_gateway_requests_total{{status=\"{s}\",code=\"{c}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiguard_gateway_guard_decisions_total Input guard decisions by policy and outcome."
        );
        let _ = writeln!(out, "# TYPE phiguard_gateway_guard_decisions_total counter");
        if let Ok(g) = self.decisions.lock() {
            for ((p, o), n) in g.iter() {
                let _ = writeln!(
                    out,
                    "phiguard_gateway_guard_decisions_total{{policy=\"{p}\",outcome=\"{o}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiguard_gateway_detections_total PHI detections in requests by category."
        );
        let _ = writeln!(out, "# TYPE phiguard_gateway_detections_total counter");
        if let Ok(g) = self.detections.lock() {
            for (c, n) in g.iter() {
                let _ = writeln!(
                    out,
                    "phiguard_gateway_detections_total{{category=\"{}\"}} {n}",
                    c.as_str()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiguard_gateway_injection_total Prompt-injection screening verdicts of screened requests."
        );
        let _ = writeln!(out, "# TYPE phiguard_gateway_injection_total counter");
        if let Ok(g) = self.injections.lock() {
            for (v, n) in g.iter() {
                let _ = writeln!(
                    out,
                    "phiguard_gateway_injection_total{{verdict=\"{v}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiguard_gateway_overhead_milliseconds Time spent in the gateway per request, excluding the upstream."
        );
        let _ = writeln!(
            out,
            "# TYPE phiguard_gateway_overhead_milliseconds histogram"
        );
        for (i, b) in OVERHEAD_BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "phiguard_gateway_overhead_milliseconds_bucket{{le=\"{b}\"}} {}",
                self.overhead_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.overhead_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "phiguard_gateway_overhead_milliseconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "phiguard_gateway_overhead_milliseconds_sum {}",
            self.overhead_sum_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "phiguard_gateway_overhead_milliseconds_count {count}");
        out
    }
}
