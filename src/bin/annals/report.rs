//! `annals stats` and `annals verify`.

use crate::CliError;
use crate::output::{self, bytes, count};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned text.
    Table,
    /// One JSON object.
    Json,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Drop what is damaged so the store opens again: truncate the WAL at the first damaged
    /// record, move damaged segments to quarantine/. The report lists what was lost.
    #[arg(long)]
    repair: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

pub fn stats(data: &Path, args: StatsArgs) -> Result<(), CliError> {
    let engine = crate::open_existing(data)?;
    let stats = engine.stats()?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    writeln!(out, "series       {}", count(stats.series))?;
    writeln!(out, "rows         {}", count(stats.rows))?;
    writeln!(out, "points       {}", count(stats.points))?;
    writeln!(
        out,
        "bytes        {} ({} segments, {} WAL, {} catalog)",
        bytes(stats.bytes),
        bytes(stats.segment_bytes),
        bytes(stats.wal_bytes),
        bytes(stats.catalog_bytes)
    )?;
    writeln!(
        out,
        "             {} full-text index, {} in archives",
        bytes(stats.text_index_bytes),
        bytes(stats.archive_bytes)
    )?;
    let tiers: Vec<String> = stats
        .summaries
        .iter()
        .map(|t| format!("{} {} rows {}", t.tier, count(t.rows), bytes(t.bytes)))
        .collect();
    writeln!(
        out,
        "summaries    {}; summarised through {}",
        tiers.join(", "),
        stats.summary_watermark.as_deref().unwrap_or("(not yet)")
    )?;
    writeln!(
        out,
        "bytes/point  {:.3} (segments; {:.1}x smaller than 8 bytes per value and timestamp)",
        stats.bytes_per_point, stats.compression_ratio
    )?;
    for k in &stats.kinds {
        writeln!(
            out,
            "{:<12} {} series, {} rows, {} points, {}",
            k.kind,
            count(k.series),
            count(k.rows),
            count(k.points),
            bytes(k.bytes)
        )?;
    }
    if let Some(free) = stats.free_disk_bytes {
        writeln!(out, "disk free    {}", bytes(free))?;
    }
    for w in &stats.warnings {
        writeln!(out, "WARNING      {}", w.message)?;
    }
    writeln!(
        out,
        "in memory    {} rows, {} points, {} not yet flushed",
        count(stats.head_rows),
        count(stats.head_points),
        bytes(stats.head_memory_bytes)
    )?;
    if !stats.months.is_empty() {
        writeln!(out)?;
        let header: Vec<String> = ["month", "segments", "rows", "points", "bytes", "bytes/point", "first", "last"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows: Vec<Vec<String>> = stats
            .months
            .iter()
            .map(|m| {
                vec![
                    m.month.clone(),
                    m.segments.to_string(),
                    m.rows.to_string(),
                    m.points.to_string(),
                    m.bytes.to_string(),
                    format!("{:.3}", m.bytes_per_point),
                    m.first.clone(),
                    m.last.clone(),
                ]
            })
            .collect();
        output::table(&mut out, &header, &rows)?;
    }
    Ok(())
}

pub fn verify(data: &Path, args: VerifyArgs) -> Result<(), CliError> {
    let report = annals::history::verify_store(data, args.repair, annals::ObjectStoreConfig::from_env())?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?)?;
    } else {
        writeln!(
            out,
            "checked {} segments ({} rows, {} points), {} WAL records, {} series",
            report.segments,
            count(report.rows),
            count(report.points),
            report.wal_records,
            report.series
        )?;
        if report.commits + report.objects > 0 {
            writeln!(
                out,
                "checked {} commits ({} files) against the commit index, {} objects ({})",
                count(report.commits),
                count(report.commit_files),
                count(report.objects),
                crate::output::bytes(report.object_bytes)
            )?;
        }
        for p in &report.problems {
            writeln!(out, "DAMAGED  {} at offset {}: {}", p.file.display(), p.offset, p.what)?;
        }
        for note in &report.notes {
            writeln!(out, "note     {note}")?;
        }
        for repair in &report.repairs {
            writeln!(out, "repaired {repair}")?;
        }
        if report.is_clean() {
            writeln!(out, "clean")?;
        } else if args.repair {
            writeln!(out, "repaired; run verify again to confirm")?;
        } else {
            writeln!(
                out,
                "damaged; `annals verify --repair` drops the damaged parts (listing what is lost)"
            )?;
        }
    }
    if report.is_clean() || (args.repair && !report.repairs.is_empty()) {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}
