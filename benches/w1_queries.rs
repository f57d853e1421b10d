//! TSBS queries on W1 through the embedded API: p50 and p99 over seeded random instances,
//! with the decoded-block cache warm ("p50", "p99") and off ("p50 cold", "p99 cold"). The
//! file pages are in the OS cache in both.
//!
//! ```sh
//! cargo bench --profile release --bench w1_queries -- [--scale quick|full] [--runs N] [--dir DIR] [--only NAME]
//! ```
//! The store is built once in DIR (default: a temporary directory) and reused when it
//! already holds the data.

mod common;

use annals::workload::w1::{TsbsQuery, W1, W1Config};
use annals::{Batch, Engine, Options};
use common::{arg, percentile};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn main() -> annals::Result<()> {
    common::require_release_build();
    let config = match arg("--scale").as_deref() {
        Some("full") => W1Config::full(1),
        _ => W1Config::quick(1),
    };
    let runs: usize = arg("--runs").and_then(|r| r.parse().ok()).unwrap_or(50);
    let dir = arg("--dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("annals-w1q-{}", std::process::id())));
    let keep = arg("--dir").is_some();
    {
        let engine = Engine::open(
            &dir,
            Options {
                retention: annals::lifecycle::RetentionOptions::manual(),
                ..Options::default()
            },
        )?;
        if engine.stats()?.points < config.points() {
            let started = Instant::now();
            let mut generator = W1::new(config.clone())?;
            let mut batch = Batch::new();
            loop {
                batch.clear();
                if generator.fill_batch(&mut batch, 10_000)? == 0 {
                    break;
                }
                engine.write(&batch)?;
            }
            engine.close()?;
            println!("loaded {} points in {:.1?}", config.points(), started.elapsed());
        }
    }
    println!(
        "W1 {} hosts x {} days, {runs} instances per query (seeded)",
        config.hosts,
        config.epochs / 8640
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "query", "p50", "p99", "p50 cold", "p99 cold", "rows"
    );
    let only = arg("--only");
    for kind in TsbsQuery::ALL.into_iter().filter(|k| only.as_deref().is_none_or(|o| o == k.name())) {
        let mut timings = [Vec::new(), Vec::new()];
        let mut rows = 0;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let instances: Vec<_> = (0..runs).map(|_| kind.generate(&config, &mut rng)).collect();
        // Column 0: the decoded-block cache on, every instance run once before the timed
        // pass (a dashboard refreshing). Column 1: the cache off, so every block is decoded
        // again. Both start with an untimed pass, so the file pages are in the OS cache and
        // neither column measures disk reads.
        for (cached, label) in [(true, 0usize), (false, 1)] {
            let engine = Engine::open(
                &dir,
                Options {
                    block_cache_bytes: Some(if cached { 256 << 20 } else { 0 }),
                    background_flush: false,
                    retention: annals::lifecycle::RetentionOptions::manual(),
                    ..Options::default()
                },
            )?;
            let snapshot = engine.snapshot();
            for query in &instances {
                snapshot.query(query)?.collect_rows()?;
            }
            for query in &instances {
                let started = Instant::now();
                let (result, _) = snapshot.query(query)?.collect_rows()?;
                timings[label].push(started.elapsed());
                rows = result.len();
            }
        }
        for t in &mut timings {
            t.sort();
        }
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
        println!(
            "{:<24} {:>10} {:>10} {:>10} {:>10} {:>8}",
            kind.name(),
            ms(percentile(&timings[0], 50.0)),
            ms(percentile(&timings[0], 99.0)),
            ms(percentile(&timings[1], 50.0)),
            ms(percentile(&timings[1], 99.0)),
            rows
        );
    }
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
