//! `annals compact`: merge segments now.

use crate::CliError;
use crate::output::{self, bytes, count};
use crate::report::ReportFormat;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

#[derive(Args)]
pub struct CompactArgs {
    /// Show the merges that are due without running them.
    #[arg(long)]
    dry_run: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// Do not show a progress bar (shown on a terminal by default).
    #[arg(long)]
    no_progress: bool,
}

pub fn compact(data: &Path, args: CompactArgs) -> Result<(), CliError> {
    let engine = crate::open_existing(data)?;
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        let plan = engine.compaction_plan();
        if args.format == ReportFormat::Json {
            writeln!(out, "{}", serde_json::to_string_pretty(&plan).map_err(std::io::Error::other)?)?;
        } else if plan.is_empty() {
            writeln!(out, "nothing to compact")?;
        } else {
            let header = ["month", "segments", "bytes", "rows", "level", "reason"].map(String::from);
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|p| {
                    vec![
                        p.month.clone(),
                        p.segments.to_string(),
                        p.bytes.to_string(),
                        p.rows.to_string(),
                        p.level.to_string(),
                        p.reason.to_string(),
                    ]
                })
                .collect();
            output::table(&mut out, &header, &rows)?;
        }
        engine.close()?;
        return Ok(());
    }
    let bar = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} {wide_bar} {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = engine.compact_with_progress(&mut |p| {
        bar.set_message(p.month.clone());
        bar.set_length(p.input_bytes_total);
        bar.set_position(p.input_bytes_done);
    });
    bar.finish_and_clear();
    let report = report?;
    engine.close()?;
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    if report.merged.is_empty() {
        writeln!(out, "nothing to compact")?;
    } else {
        let header = [
            "month",
            "reason",
            "segments",
            "bytes_before",
            "bytes_after",
            "rows_before",
            "rows_after",
            "points/s",
            "seconds",
        ]
        .map(String::from);
        let rows: Vec<Vec<String>> = report
            .merged
            .iter()
            .map(|m| {
                vec![
                    m.month.clone(),
                    m.reason.to_string(),
                    m.input_segments.to_string(),
                    m.input_bytes.to_string(),
                    m.output_bytes.to_string(),
                    m.input_rows.to_string(),
                    m.output_rows.to_string(),
                    format!("{:.0}", m.input_points as f64 / m.seconds.max(1e-9)),
                    format!("{:.2}", m.seconds),
                ]
            })
            .collect();
        output::table(&mut out, &header, &rows)?;
        let before: u64 = report.merged.iter().map(|m| m.input_bytes).sum();
        let after: u64 = report.merged.iter().map(|m| m.output_bytes).sum();
        let segments: usize = report.merged.iter().map(|m| m.input_segments).sum();
        writeln!(
            out,
            "merged {} segments into {}: {} -> {}",
            count(segments as u64),
            count(report.merged.len() as u64),
            bytes(before),
            bytes(after)
        )?;
    }
    for why in &report.skipped {
        writeln!(out, "skipped {why}")?;
    }
    Ok(())
}
