//! Compaction on a month of W1: load it the way a running system would (the head flushed
//! whenever it fills, so the month arrives as many segments), then compact it and report
//! throughput, peak memory and bytes per point before and after.
//!
//! ```sh
//! cargo bench --bench lifecycle -- [--hosts 1000] [--days 30] [--flush-hours 6] [--dir DIR] [--quick]
//! ```
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
    let quick = std::env::args().any(|a| a == "--quick");
    let hosts: usize = arg("--hosts").and_then(|h| h.parse().ok()).unwrap_or(if quick { 20 } else { 1000 });
    let days: u64 = arg("--days").and_then(|d| d.parse().ok()).unwrap_or(if quick { 2 } else { 30 });
    let config = W1Config::new(hosts, days, 1);
    let base = arg("--dir").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("annals-lifecycle-{}", std::process::id()));
    let options = Options {
        durability: Durability::None,
        compaction: CompactionOptions {
            background: false,
            ..CompactionOptions::default()
        },
        ..Options::default()
    };

    let engine = Engine::open(&dir, options)?;
    let flush_hours: u64 = arg("--flush-hours").and_then(|h| h.parse().ok()).unwrap_or(6);
    // W1 has one row per host every 10 seconds.
    let rows_per_flush = (flush_hours * 360).max(1) * hosts as u64;
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
    engine.close()?;
    std::fs::remove_dir_all(&dir).map_err(|e| annals::Error::InvalidInput {
        line: None,
        column: None,
        reason: format!("removing {}: {e}", dir.display()),
    })?;
    Ok(())
}
