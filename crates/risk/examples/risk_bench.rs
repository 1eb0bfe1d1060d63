//! Throughput of equivalence-class computation on ARX's adult.csv (or any table):
//! `cargo run --release -p phiguard-risk --example risk_bench -- [TABLE] [QI,QI,...]`.
//! Prints rows/s for reading, for one partition + figures, and the time of a full lattice search
//! to k = 5 when the adult hierarchies are beside the table.

use std::path::PathBuf;
use std::time::Instant;

use phiguard_risk::{LossMetric, RiskConfig, Target, load, measure};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let table = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../../../shared/corpora/structured/csv/arx/adult.csv".into()),
    );
    let qi_arg = args
        .next()
        .unwrap_or_else(|| "sex,age,race,marital-status,native-country".into());
    let qis: Vec<&str> = qi_arg.split(',').collect();
    let dir = table.parent().map(PathBuf::from).unwrap_or_default();
    let mut cfg = RiskConfig::new(&table, &qis);
    cfg.sensitive = Some("salary-class".into());
    for q in &qis {
        let h = dir.join(format!("adult_hierarchy_{q}.csv"));
        if h.exists() {
            cfg.hierarchies.push((q.to_string(), h));
        }
    }

    let t0 = Instant::now();
    let ds = load(&cfg)?;
    let read = t0.elapsed().as_secs_f64();
    let rows = ds.table().rows();
    println!(
        "read {rows} rows in {:.1} ms ({:.0} rows/s)",
        read * 1e3,
        rows as f64 / read
    );

    let levels = vec![0; qis.len()];
    let reps = 200;
    let t1 = Instant::now();
    let mut n = 0;
    for _ in 0..reps {
        n = ds.partition(&levels)?.sizes.len();
    }
    let per = t1.elapsed().as_secs_f64() / reps as f64;
    println!(
        "equivalence classes only: {:.3} ms per pass, {:.0} rows/s ({n} classes)",
        per * 1e3,
        rows as f64 / per
    );
    let t1 = Instant::now();
    let mut classes = 0;
    for _ in 0..reps {
        let p = ds.partition(&levels)?;
        let all = vec![true; p.sizes.len()];
        classes = measure(&p, &all, ds.sensitive(), 0.2).equivalence_classes;
    }
    let per = t1.elapsed().as_secs_f64() / reps as f64;
    println!(
        "equivalence classes + all figures: {:.3} ms per pass, {:.0} rows/s ({classes} classes)",
        per * 1e3,
        rows as f64 / per
    );

    let t2 = Instant::now();
    let target = Target {
        k: 5,
        l: None,
        max_suppression: 0.0,
    };
    let fixed = vec![None; qis.len()];
    let out = ds.search(&fixed, &target, LossMetric::Loss)?;
    println!(
        "lattice search to k = 5: {} nodes in {:.1} ms, best {:?}",
        out.nodes,
        t2.elapsed().as_secs_f64() * 1e3,
        out.best.map(|b| b.levels)
    );
    Ok(())
}
