//! Measures the storage core on W1 (TSBS cpu-only shape, see ../shared/bench/WORKLOAD.md):
//! embedded ingest with group commit, bytes per point after flush, and reopen time after a
//! clean close and after a crash (everything still in the WAL). Optionally writes the same
//! rows as line protocol, for timing `annals ingest`.
//!
//! ```sh
//! cargo bench --profile release --bench w1_ingest -- [--scale quick|full] [--writers N] [--write-lp FILE] [--dir DIR]
//! ```
//!
//! This is the storage core's yardstick; the benchmark harness (annals-bench) runs the
//! same workload beside SQLite and VictoriaMetrics.

mod common;

use annals::workload::w1::{W1, W1Config};
use annals::{Batch, Durability, Engine, Options};
use common::arg;
use std::time::{Duration, Instant};

fn main() -> annals::Result<()> {
    common::require_release_build();
    let config = match arg("--scale").as_deref() {
        Some("full") => W1Config::full(1),
        _ => W1Config::quick(1),
    };
    let writers: usize = arg("--writers").and_then(|w| w.parse().ok()).unwrap_or(1);
    if let Some(path) = arg("--write-lp") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| annals::Error::InvalidInput {
            line: None,
            column: None,
            reason: e.to_string(),
        })?);
        let mut generator = W1::new(config.clone())?;
        while generator
            .write_line_protocol(&mut out, 100_000)
            .map_err(|e| annals::Error::InvalidInput {
                line: None,
                column: None,
                reason: e.to_string(),
            })?
            > 0
        {}
        println!("wrote {} rows of line protocol to {path}", config.rows());
        return Ok(());
    }
    let base = arg("--dir").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("annals-w1-{}", std::process::id()));
    let options = Options {
        durability: Durability::default(),
        ..Options::default()
    };

    // Rows are generated up front so only the store is timed.
    let mut generator = W1::new(config.clone())?;
    let mut batches = Vec::new();
    loop {
        let mut batch = Batch::new();
        if generator.fill_batch(&mut batch, 1000)? == 0 {
            break;
        }
        batches.push(batch);
    }
    let points = config.points() as f64;

    let engine = Engine::open(&dir, options.clone())?;
    let started = Instant::now();
    std::thread::scope(|s| -> annals::Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (engine, batches) = (&engine, &batches);
                s.spawn(move || -> annals::Result<()> {
                    for batch in batches.iter().skip(w).step_by(writers) {
                        engine.write(batch)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    })?;
    let written = started.elapsed();
    let flush_started = Instant::now();
    engine.flush()?;
    let flushed = flush_started.elapsed();
    let stats = engine.stats()?;
    engine.close()?;

    let reopen_started = Instant::now();
    let engine = Engine::open(&dir, options.clone())?;
    let reopen_clean = reopen_started.elapsed();
    drop(engine);

    // A crash with every row still in the WAL: write again into a fresh store without
    // flushing, drop the handle, reopen (replay).
    let crash_dir = dir.with_extension("crash");
    let engine = Engine::open(
        &crash_dir,
        Options {
            head_max_bytes: Some(4 << 30),
            background_flush: false,
            ..options.clone()
        },
    )?;
    for batch in &batches {
        engine.write(batch)?;
    }
    drop(engine);
    let replay_started = Instant::now();
    let engine = Engine::open(&crash_dir, options)?;
    let reopen_replay = replay_started.elapsed();
    let replayed = engine.recovery_report().wal_rows;
    drop(engine);

    let rate = |d: Duration| points / d.as_secs_f64() / 1e6;
    println!(
        "W1 {} hosts x {} epochs = {} points, {writers} writer(s), batches of 1000 rows, group commit",
        config.hosts,
        config.epochs,
        config.points()
    );
    println!("  ingest             {:>8.2} M points/s ({written:.2?})", rate(written));
    println!(
        "  ingest + flush     {:>8.2} M points/s (flush {flushed:.2?})",
        rate(written + flushed)
    );
    println!(
        "  bytes/point        {:>8.4} ({} bytes in {} segment files)",
        stats.bytes_per_point, stats.segment_bytes, stats.segments
    );
    println!("  reopen after close {:>8.2?}", reopen_clean);
    println!("  reopen with replay {:>8.2?} ({replayed} rows from the WAL)", reopen_replay);
    for d in [&dir, &crash_dir] {
        std::fs::remove_dir_all(d).ok();
    }
    Ok(())
}
