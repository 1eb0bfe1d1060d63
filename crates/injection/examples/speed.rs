//! Time of one screen of a ~1,500-character clinical prompt (the embedded model, one thread),
//! without the cross-validation `eval` runs first:
//!
//! `cargo run --release -p phiguard-injection --example speed [-- RUNS]`

use std::time::Instant;

use phiguard_injection::Screen;

fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
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
    let screen = Screen::new();
    for _ in 0..100 {
        std::hint::black_box(screen.score(std::hint::black_box(&prompt)));
    }
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(screen.score(std::hint::black_box(&prompt)));
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!("{us:.1} µs per 1,500-char prompt ({runs} runs)");
}
