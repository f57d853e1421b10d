//! `annals demo`: a month of a small fleet's history, and a few questions answered from it.

use crate::CliError;
use crate::output::{bytes, count};
use annals::time::{NANOS_PER_SECOND, format_rfc3339, now_ns};
use annals::workload::demo::{DemoConfig, generate};
use annals::{Batch, Engine, FieldValue, Order, ScanRequest, SeriesKey, SeriesKind, SeriesSelector, TimeRange};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The series that records that demo data was written (and when).
const MARKER: &str = "annals_demo";

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
    match existing {
        Some(marker) => {
            writeln!(
                out,
                "demo data was already written to {} at {}; answering from it",
                data.display(),
                format_rfc3339(marker.timestamp)
            )?;
            writeln!(out, "(pass --data DIR to write a fresh demo elsewhere)")?;
        }
        None => write_demo(&engine, data, &args, &mut out)?,
    }
    answer(&engine, &mut out)?;
    engine.close()?;
    Ok(())
}

fn write_demo(engine: &Engine, data: &Path, args: &DemoArgs, out: &mut impl Write) -> Result<(), CliError> {
    let now = now_ns();
    let hour = 3600 * NANOS_PER_SECOND;
    let end = now - now.rem_euclid(hour);
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
    Ok(())
}

fn answer(engine: &Engine, out: &mut impl Write) -> Result<(), CliError> {
    let snapshot = engine.snapshot();
    writeln!(out)?;

    writeln!(out, "latest cpu usage per host:")?;
    let cpu = SeriesSelector::measurement("cpu").with_kind(SeriesKind::Metric);
    let mut peak: Option<(f64, i64, String)> = None;
    for id in snapshot.select(&cpu)? {
        let Some(key) = snapshot.series_key(id) else { continue };
        let host = key.tag("host").unwrap_or("?").to_string();
        let fields = ["usage_percent".to_string()];
        let mut latest = None;
        for chunk in snapshot.series_chunks(id, TimeRange::ALL, Some(&fields), Order::Descending)? {
            let chunk = chunk?;
            for (i, &ts) in chunk.timestamps.iter().enumerate() {
                let Some(v) = chunk.columns.iter().find_map(|c| c.value(i)).and_then(|v| v.as_f64()) else {
                    continue;
                };
                latest.get_or_insert((ts, v));
                if peak.as_ref().is_none_or(|p| v > p.0) {
                    peak = Some((v, ts, host.clone()));
                }
            }
        }
        if let Some((ts, v)) = latest {
            writeln!(out, "  {host:<10} {v:>5.1}%  at {}", format_rfc3339(ts))?;
        }
    }
    if let Some((v, ts, host)) = peak {
        writeln!(out, "busiest minute: {host} at {v:.1}% cpu, {}", format_rfc3339(ts))?;
    }

    let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
    let mut recent_errors = Vec::new();
    let logs = snapshot.scan(&ScanRequest {
        selector: SeriesSelector::measurement("log").with_kind(SeriesKind::Log),
        fields: Some(vec!["message".into()]),
        order: Order::Descending,
        ..ScanRequest::default()
    })?;
    for row in logs {
        let row = row?;
        let level = row.key.tag("level").unwrap_or("?").to_string();
        if (level == "ERROR" || level == "CRITICAL") && recent_errors.len() < 3 {
            let message = row
                .fields
                .iter()
                .find_map(|(_, v)| v.as_str().map(str::to_string))
                .unwrap_or_default();
            recent_errors.push((
                row.timestamp,
                level.clone(),
                row.key.tag("host").unwrap_or("?").to_string(),
                message,
            ));
        }
        *by_level.entry(level).or_default() += 1;
    }
    let levels: Vec<String> = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        .iter()
        .map(|l| format!("{l} {}", count(by_level.get(*l).copied().unwrap_or(0))))
        .collect();
    writeln!(out, "log records by level: {}", levels.join(", "))?;
    writeln!(out, "most recent errors:")?;
    for (ts, level, host, message) in recent_errors {
        writeln!(out, "  {} {level:<8} {host:<9} {message}", format_rfc3339(ts))?;
    }

    let mut alerts: BTreeMap<String, (i64, String, String)> = BTreeMap::new();
    let mut raised = 0u64;
    for row in snapshot.scan(&ScanRequest {
        selector: SeriesSelector::measurement("alert").with_kind(SeriesKind::Alert),
        ..ScanRequest::default()
    })? {
        let row = row?;
        let field = |name: &str| {
            row.fields
                .iter()
                .find(|(n, _)| &**n == name)
                .and_then(|(_, v)| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let state = field("state");
        if state == "raised" {
            raised += 1;
        }
        // Events come in time order: the last one seen is the alert's state.
        alerts.insert(field("alert_id"), (row.timestamp, state, field("title")));
    }
    let open: Vec<_> = alerts.iter().filter(|(_, (_, state, _))| state != "resolved").collect();
    writeln!(out, "alerts: {raised} raised this period, {} still open", open.len())?;
    for (id, (ts, state, title)) in open.iter().take(5) {
        writeln!(out, "  {id:<22} {state:<12} since {}  {title}", format_rfc3339(*ts))?;
    }

    let mut durations: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for row in snapshot.scan(&ScanRequest {
        selector: SeriesSelector::measurement("performance").with_kind(SeriesKind::Performance),
        fields: Some(vec!["duration_ms".into()]),
        ..ScanRequest::default()
    })? {
        let row = row?;
        if let Some(ms) = row.fields.first().and_then(|(_, v)| v.as_f64()) {
            durations
                .entry(row.key.tag("component").unwrap_or("?").to_string())
                .or_default()
                .push(ms);
        }
    }
    writeln!(out, "operation latency by component (p50 / p99 / max, ms):")?;
    for (component, mut values) in durations {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        writeln!(out, "  {component:<10} {:>8.2} {:>8.2} {:>8.2}", at(0.5), at(0.99), at(1.0))?;
    }
    Ok(())
}
