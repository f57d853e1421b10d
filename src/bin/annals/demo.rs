//! `annals demo`: a month of a small fleet's history, and a few questions answered from it.

use crate::CliError;
use crate::output::{bytes, count};
use annals::history::{DashboardRequest, History};
use annals::time::{NANOS_PER_SECOND, format_rfc3339, now_ns};
use annals::workload::demo::{DemoConfig, generate};
use annals::{Batch, Engine, FieldValue, Order, ScanRequest, SeriesKey, SeriesSelector};
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The series that records that demo data was written (and when).
const MARKER: &str = "annals_demo";
const HOUR: i64 = 3600 * NANOS_PER_SECOND;
const DAY: i64 = 24 * HOUR;

#[derive(Args)]
pub struct DemoArgs {
    /// Days of history to write.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    days: u32,
    /// Seed of the generated values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(data: &Path, args: DemoArgs) -> Result<(), CliError> {
    let engine = Engine::open(data, crate::store_options())?;
    let mut out = std::io::stdout().lock();
    let now = now_ns();
    let existing = engine
        .snapshot()
        .scan(&ScanRequest {
            selector: SeriesSelector::measurement(MARKER),
            order: Order::Descending,
            limit: Some(1),
            ..ScanRequest::default()
        })?
        .next()
        .transpose()?;
    let range = match existing {
        Some(marker) => {
            writeln!(
                out,
                "demo data was already written to {} at {}; answering from it",
                data.display(),
                format_rfc3339(marker.timestamp)
            )?;
            writeln!(out, "(pass --data DIR to write a fresh demo elsewhere)")?;
            let days = marker
                .fields
                .iter()
                .find(|(name, _)| &**name == "days")
                .and_then(|(_, v)| v.as_f64())
                .unwrap_or(args.days as f64) as i64;
            // The marker is written at the end of the demo's history.
            (marker.timestamp - days * DAY - HOUR, marker.timestamp.max(now) + 1)
        }
        None => {
            let end = write_demo(&engine, data, &args, &mut out)?;
            (end - args.days as i64 * DAY - HOUR, now.max(end) + 1)
        }
    };
    answer(engine, range.0, range.1, &mut out)
}

/// Writes the demo's history; returns the end of it (ns).
fn write_demo(engine: &Engine, data: &Path, args: &DemoArgs, out: &mut impl Write) -> Result<i64, CliError> {
    let now = now_ns();
    let end = now - now.rem_euclid(HOUR);
    let config = DemoConfig {
        end_ns: end,
        days: args.days,
        seed: args.seed,
    };
    let started = Instant::now();
    let summary = generate(&config, |batch| engine.write(batch).map(|_| ()))?;
    let mut marker = Batch::new();
    marker.add_row(
        &SeriesKey::metric(MARKER)?,
        now,
        [
            ("days", FieldValue::I64(args.days as i64)),
            ("seed", FieldValue::I64(args.seed as i64)),
        ],
    )?;
    engine.write(&marker)?;
    let flushed = engine.flush()?;
    let stats = engine.stats()?;
    let elapsed = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "wrote {} days of history ending {} to {}",
        args.days,
        format_rfc3339(end),
        data.display()
    )?;
    writeln!(
        out,
        "  metrics             {:>10} readings (cpu, memory, disk, network, load of 8 hosts, every minute)",
        count(summary.metrics)
    )?;
    writeln!(out, "  performance samples {:>10}", count(summary.performance))?;
    writeln!(out, "  log records         {:>10}", count(summary.logs))?;
    writeln!(out, "  alert events        {:>10}", count(summary.alerts))?;
    writeln!(
        out,
        "  {} series, {} points in {:.2} s; {} on disk in {} segment files ({:.2} bytes/point)",
        count(stats.series),
        count(stats.points),
        elapsed,
        bytes(stats.bytes),
        flushed.segments.max(stats.segments as usize),
        stats.bytes_per_point
    )?;
    Ok(end)
}

fn answer(engine: Engine, from: i64, to: i64, out: &mut impl Write) -> Result<(), CliError> {
    let history = History::from_engine(engine);
    let board = history.dashboard(&DashboardRequest::new(from, to))?;
    writeln!(out)?;
    writeln!(out, "latest cpu usage per host:")?;
    for reading in board.latest.iter().filter(|r| r.measurement == "cpu") {
        let host = reading.tags.get("host").map_or("?", String::as_str);
        writeln!(out, "  {host:<10} {:>5.1}%  at {}", reading.value, reading.time)?;
    }
    if let Some(busiest) = board.busiest.first() {
        writeln!(
            out,
            "busiest hour: {} at {:.1}% cpu on average (peak {:.1}%), {}",
            busiest.host, busiest.mean, busiest.max, busiest.start
        )?;
    }
    let levels: Vec<String> = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        .iter()
        .map(|l| format!("{l} {}", count(board.logs_by_level.get(*l).copied().unwrap_or(0))))
        .collect();
    writeln!(out, "log records by level: {}", levels.join(", "))?;
    writeln!(out, "most recent errors:")?;
    for e in board.recent_errors.iter().take(3) {
        writeln!(
            out,
            "  {} {:<8} {:<9} {}",
            e.time,
            e.level,
            e.host.as_deref().unwrap_or("?"),
            e.message
        )?;
    }
    writeln!(
        out,
        "alerts: {} events this period, {} still open",
        count(board.alert_events),
        board.open_alerts.len()
    )?;
    for alert in board.open_alerts.iter().take(5) {
        let text = |k: &str| alert[k].as_str().unwrap_or("").to_string();
        writeln!(
            out,
            "  {:<22} {:<12} since {}  {}",
            text("alert_id"),
            text("state"),
            text("timestamp"),
            text("title")
        )?;
    }
    writeln!(out, "operation latency by component (p50 / p99 / max, ms):")?;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for l in &board.latency {
        writeln!(
            out,
            "  {:<10} {:>8} {:>8} {:>8}",
            l.component,
            ms(l.p50_ms),
            ms(l.p99_ms),
            ms(l.max_ms)
        )?;
    }
    history.close()?;
    Ok(())
}
