//! Compaction on a month of W1: load it the way a running system would (the head flushed
//! whenever it fills, so the month arrives as many segments), then compact it and report
//! throughput, peak memory and bytes per point before and after.
//!
//! ```sh
//! cargo bench --profile release --bench lifecycle -- [--hosts 1000] [--days 30] [--flush-hours 6] [--dir DIR] [--quick]
//!     [--interval-secs 10] [--no-compact]
//! ```
//!
//! Then summaries and retention: the clock moves to a day after the data, every day is
//! rolled up (hourly, daily, weekly; sizes and time reported), retention drops the detail
//! older than 30 days, and a query over the whole range (daily mean, max and p99 of
//! `usage_user` over all hosts) is timed twice; with more than 30 days of data it is
//! answered from summaries. A year of hourly summaries for 100 hosts:
//! `--hosts 100 --days 365 --interval-secs 60 --no-compact`.
//!
//! The head is flushed every `--flush-hours` of data time (as `head_max_age` does in a
//! live store), so a month arrives as about 120 segments. `--quick` (CI) is 20 hosts for
//! 2 days. Peak RSS is read from `/proc/self/status` after
//! resetting the high-water mark (`/proc/self/clear_refs`), so it covers the compaction
//! alone; mapped input pages count in it, anonymous memory is reported beside it.

mod common;

use annals::workload::w1::{W1, W1Config};
use annals::{Batch, CompactionOptions, Durability, Engine, Options};
use common::arg;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> annals::Result<()> {
    common::require_release_build();
    let quick = std::env::args().any(|a| a == "--quick");
    let hosts: usize = arg("--hosts").and_then(|h| h.parse().ok()).unwrap_or(if quick { 20 } else { 1000 });
    let days: u64 = arg("--days").and_then(|d| d.parse().ok()).unwrap_or(if quick { 2 } else { 30 });
    let mut config = W1Config::new(hosts, days, 1);
    let interval_secs: i64 = arg("--interval-secs").and_then(|s| s.parse().ok()).unwrap_or(10);
    config.interval_ns = interval_secs * 1_000_000_000;
    config.epochs = days * 86_400 / interval_secs as u64;
    let compact = !std::env::args().any(|a| a == "--no-compact");
    let clock_ns = Arc::new(std::sync::atomic::AtomicI64::new(config.start_ns));
    let base = arg("--dir").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("annals-lifecycle-{}", std::process::id()));
    let options = Options {
        durability: Durability::None,
        compaction: CompactionOptions {
            background: false,
            ..CompactionOptions::default()
        },
        retention: annals::lifecycle::RetentionOptions::manual(),
        clock: {
            let clock_ns = clock_ns.clone();
            annals::Clock::from_fn(move || clock_ns.load(Ordering::SeqCst))
        },
        ..Options::default()
    };

    let engine = Engine::open(&dir, options)?;
    let flush_hours: u64 = arg("--flush-hours").and_then(|h| h.parse().ok()).unwrap_or(6);
    let rows_per_flush = (flush_hours * 3600 / interval_secs as u64).max(1) * hosts as u64;
    let mut generator = W1::new(config.clone())?;
    let started = Instant::now();
    let mut since_flush = 0;
    loop {
        let mut batch = Batch::new();
        let rows = generator.fill_batch(&mut batch, 1000)?;
        if rows == 0 {
            break;
        }
        engine.write(&batch)?;
        since_flush += rows as u64;
        if since_flush >= rows_per_flush {
            engine.flush()?;
            since_flush = 0;
        }
    }
    engine.flush()?;
    let load = started.elapsed();
    let before = engine.stats()?;
    println!(
        "W1 {hosts} hosts x {days} days: {} points loaded in {:.1} s as {} segments, {} bytes ({:.3} bytes/point)",
        before.segment_points,
        load.as_secs_f64(),
        before.segments,
        before.segment_bytes,
        before.bytes_per_point
    );

    if compact {
        compaction(&engine, &before)?;
    }
    summaries(&engine, &config, &clock_ns)?;
    engine.close()?;
    std::fs::remove_dir_all(&dir).map_err(|e| annals::Error::InvalidInput {
        line: None,
        column: None,
        reason: format!("removing {}: {e}", dir.display()),
    })?;
    Ok(())
}

fn summaries(engine: &Engine, config: &W1Config, clock_ns: &std::sync::atomic::AtomicI64) -> annals::Result<()> {
    const DAY: i64 = 86_400 * 1_000_000_000;
    let end = config.start_ns + config.epochs as i64 * config.interval_ns;
    clock_ns.store(end + DAY, Ordering::SeqCst);
    let started = Instant::now();
    let report = engine.summarize()?;
    let seconds = started.elapsed().as_secs_f64();
    let stats = engine.stats()?;
    println!(
        "summaries: {} days rolled up in {seconds:.1} s ({} hourly, {} daily, {} weekly rows)",
        report.days, report.hour_rows, report.day_rows, report.week_rows
    );
    for tier in &stats.summaries {
        println!(
            "  {} tier: {} rows, {} bytes in {} files ({:.1} bytes/row; detail is {} bytes)",
            tier.tier,
            tier.rows,
            tier.bytes,
            tier.segments,
            tier.bytes as f64 / tier.rows.max(1) as f64,
            stats.segment_bytes
        );
    }
    let started = Instant::now();
    let retained = engine.apply_retention()?;
    println!(
        "retention (detail 30 days): {} actions, {} bytes freed in {:.1} s",
        retained.actions.len(),
        retained.bytes_freed,
        started.elapsed().as_secs_f64()
    );
    let query = annals::Query {
        selector: annals::SeriesSelector::measurement("cpu"),
        range: annals::TimeRange::new(config.start_ns, end),
        every: Some(annals::Bucket::parse("1d")?),
        aggregates: vec![
            annals::Aggregate::of(annals::AggregateFn::Mean, "usage_user"),
            annals::Aggregate::of(annals::AggregateFn::Max, "usage_user"),
            annals::Aggregate::of(annals::AggregateFn::Percentile(99.0), "usage_user"),
        ],
        ..annals::Query::default()
    };
    for run in ["cold", "warm"] {
        let started = Instant::now();
        let result = engine.snapshot().query(&query)?;
        let resolutions: Vec<&str> = result.resolutions.iter().map(|r| r.name()).collect();
        let (rows, _) = result.collect_rows()?;
        println!(
            "whole-range query ({run}): {} daily rows from {} in {:.1} ms",
            rows.len(),
            resolutions.join("+"),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn compaction(engine: &Engine, before: &annals::StoreStats) -> annals::Result<()> {
    // Reset the high-water mark so the peak is the compaction's own.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let anon_peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (anon_peak, stop) = (anon_peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(kib) = status_kib("RssAnon:") {
                    anon_peak.fetch_max(kib, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let report = engine.compact()?;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let after = engine.stats()?;
    let points: u64 = report.merged.iter().map(|m| m.input_points).sum();
    let inputs: usize = report.merged.iter().map(|m| m.input_segments).sum();
    println!(
        "compaction: {inputs} segments into {} in {seconds:.1} s, {:.2} M points/s",
        report.merged.len(),
        points as f64 / seconds / 1e6
    );
    match (reset, status_kib("VmHWM:")) {
        (true, Some(hwm)) => println!(
            "peak RSS during compaction: {:.0} MiB (anonymous memory peak {:.0} MiB)",
            hwm as f64 / 1024.0,
            anon_peak.load(Ordering::SeqCst) as f64 / 1024.0
        ),
        _ => println!(
            "peak RSS: not measurable here; anonymous memory peak {:.0} MiB",
            anon_peak.load(Ordering::SeqCst) as f64 / 1024.0
        ),
    }
    println!(
        "bytes/point: {:.3} before, {:.3} after ({} -> {} bytes)",
        before.bytes_per_point, after.bytes_per_point, before.segment_bytes, after.segment_bytes
    );
    for skipped in &report.skipped {
        println!("skipped: {skipped}");
    }
    Ok(())
}
