//! `annals compact`: merge segments now.

use crate::CliError;
use crate::output::{self, bytes, count};
use crate::report::ReportFormat;
use annals::lifecycle::ArchiveListing;
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
    /// Merge every month into one file whatever the policy says, merge each month's
    /// full-text index into one segment, and remove orphaned files.
    #[arg(long, conflicts_with = "dry_run")]
    full: bool,
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
            let header = ["tier", "month", "segments", "bytes", "rows", "level", "reason"].map(String::from);
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|p| {
                    vec![
                        p.tier.to_string(),
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
    let bar = byte_bar(args.no_progress, "compacting");
    let mut show = |p: &annals::lifecycle::CompactionProgress| {
        bar.set_message(p.month.clone());
        bar.set_length(p.input_bytes_total);
        bar.set_position(p.input_bytes_done);
    };
    let report = if args.full {
        engine.optimize(&mut show)
    } else {
        engine
            .compact_with_progress(&mut show)
            .map(|compaction| annals::lifecycle::OptimizeReport {
                compaction,
                ..Default::default()
            })
    };
    bar.finish_and_clear();
    let optimized = report?;
    engine.close()?;
    if args.format == ReportFormat::Json {
        // `--full` reports what optimize did as a whole; a policy run its compaction.
        let json = if args.full {
            serde_json::to_string_pretty(&optimized)
        } else {
            serde_json::to_string_pretty(&optimized.compaction)
        };
        writeln!(out, "{}", json.map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    let report = &optimized.compaction;
    if report.merged.is_empty() {
        writeln!(out, "nothing to compact")?;
    } else {
        let header = [
            "tier",
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
                    m.tier.to_string(),
                    m.month.clone(),
                    m.reason.to_string(),
                    m.input_segments.to_string(),
                    m.input_bytes.to_string(),
                    m.output_bytes.to_string(),
                    m.input_rows.to_string(),
                    m.output_rows.to_string(),
                    format!("{:.0}", m.points_per_second()),
                    format!("{:.2}", m.seconds),
                ]
            })
            .collect();
        output::table(&mut out, &header, &rows)?;
        writeln!(
            out,
            "merged {} segments into {}: {} -> {}",
            count(report.input_segments() as u64),
            count(report.merged.len() as u64),
            bytes(report.input_bytes()),
            bytes(report.output_bytes())
        )?;
    }
    for why in &report.skipped {
        writeln!(out, "skipped {why}")?;
    }
    if args.full {
        writeln!(
            out,
            "merged the full-text index of {} months; removed {} orphaned files",
            optimized.text_months_merged,
            optimized.orphans_removed.len()
        )?;
    }
    Ok(())
}

#[derive(Args)]
pub struct RetentionArgs {
    /// Drop what is past retention (after summarising every finished day). Without it,
    /// only show what would be dropped.
    #[arg(long)]
    apply: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

/// `annals retention [--apply]`: the store's default policy (detail 30 days, summaries
/// 365 days) by the system clock.
pub fn retention(data: &Path, args: RetentionArgs) -> Result<(), CliError> {
    let engine = crate::open_existing(data)?;
    let spinner = byte_bar(!args.apply || !std::io::stderr().is_terminal(), "summarising and dropping");
    let report = if args.apply {
        engine.apply_retention()
    } else {
        engine.retention_plan()
    };
    spinner.finish_and_clear();
    let report = report?;
    engine.close()?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    writeln!(out, "now {}", report.now)?;
    let header = ["rule", "series", "detail_before", "summaries_before"].map(String::from);
    let rows: Vec<Vec<String>> = report
        .horizons
        .iter()
        .map(|h| {
            vec![
                h.rule.clone(),
                h.series.to_string(),
                h.detail_before.clone(),
                h.summaries_before.clone(),
            ]
        })
        .collect();
    output::table(&mut out, &header, &rows)?;
    if let Some(s) = &report.summary {
        writeln!(
            out,
            "summarised {} days ({} again): {} hourly, {} daily, {} weekly rows; watermark {}",
            s.days,
            s.days_redone,
            count(s.hour_rows),
            count(s.day_rows),
            count(s.week_rows),
            s.watermark.as_deref().unwrap_or("none")
        )?;
    }
    if report.actions.is_empty() {
        writeln!(out, "nothing is past retention")?;
        return Ok(());
    }
    let header = [
        "tier",
        "month",
        "action",
        "segments",
        "bytes",
        "rows",
        "series_expired",
        "rows_kept",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = report
        .actions
        .iter()
        .map(|a| {
            vec![
                a.tier.to_string(),
                a.month.clone(),
                a.action.to_string(),
                a.segments.to_string(),
                a.bytes.to_string(),
                a.rows.to_string(),
                a.series_expired.to_string(),
                a.rows_kept.map_or_else(|| "-".into(), |r| r.to_string()),
            ]
        })
        .collect();
    output::table(&mut out, &header, &rows)?;
    let verb = if report.applied { "freed" } else { "would free at least" };
    writeln!(out, "{verb} {}", bytes(report.bytes_freed))?;
    if !report.applied {
        writeln!(
            out,
            "(dry run: pass --apply to drop; rewritten months keep the rows inside retention)"
        )?;
    }
    Ok(())
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    action: Option<ArchiveAction>,
    /// Archive every month before this one (`YYYY-MM`): they leave the store.
    #[arg(long, value_name = "YYYY-MM")]
    before: Option<String>,
    /// Archive file to write [default: <data>/archive/<first>_<last>.annarc].
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    /// Output format of the report.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// Do not show a progress bar (shown on a terminal by default).
    #[arg(long)]
    no_progress: bool,
}

#[derive(clap::Subcommand)]
enum ArchiveAction {
    /// List the archives in <data>/archive/ and what each holds.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The archive file.
    file: std::path::PathBuf,
    /// Output format of the report.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// Do not show a progress bar (shown on a terminal by default).
    #[arg(long)]
    no_progress: bool,
}

fn byte_bar(no_progress: bool, what: &str) -> ProgressBar {
    if no_progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} {wide_bar} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn archive(data: &Path, args: ArchiveArgs) -> Result<(), CliError> {
    if let Some(ArchiveAction::List { format }) = args.action {
        return list(data, format);
    }
    let Some(before) = args.before else {
        eprintln!("annals: archive needs --before YYYY-MM (or the `list` subcommand)");
        return Err(CliError::Reported);
    };
    let Some(month) = annals::Month::parse(&before) else {
        eprintln!("annals: --before {before:?} is not a month; expected YYYY-MM, e.g. 2016-02");
        return Err(CliError::Reported);
    };
    let engine = crate::open_existing(data)?;
    let bar = byte_bar(args.no_progress, "archiving");
    let report = engine.archive(month, args.out.as_deref(), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    engine.close()?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "archived {} ({} segments, {} rows, {} points) into {}: {} of segments -> {} in {:.2} s",
        report.months.join(", "),
        report.segments,
        count(report.rows),
        count(report.points),
        report.path.display(),
        bytes(report.segment_bytes),
        bytes(report.archive_bytes),
        report.seconds
    )?;
    if report.objects > 0 {
        writeln!(
            out,
            "with {} objects (large diffs, {}); they stay in the store's objects/ until `annals verify --repair` removes those no stored commit names",
            report.objects,
            bytes(report.object_bytes)
        )?;
    }
    if !report.missing_objects.is_empty() {
        writeln!(
            out,
            "warning: {} objects the archived commits name were missing from the store and are not in the archive: {}",
            report.missing_objects.len(),
            report.missing_objects.join(", ")
        )?;
    }
    Ok(())
}

fn list(data: &Path, format: ReportFormat) -> Result<(), CliError> {
    let engine = crate::open_existing(data)?;
    let archives = engine.archives()?;
    engine.close()?;
    let mut out = std::io::stdout().lock();
    if format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&archives).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    if archives.is_empty() {
        writeln!(out, "no archives in {}", data.join("archive").display())?;
        return Ok(());
    }
    let header = ["file", "months", "segments", "rows", "points", "bytes", "created"].map(String::from);
    let rows: Vec<Vec<String>> = archives
        .iter()
        .map(|a| match a {
            ArchiveListing::Readable(info) => vec![
                info.path.display().to_string(),
                info.months.join(","),
                info.segments.to_string(),
                info.rows.to_string(),
                info.points.to_string(),
                info.archive_bytes.to_string(),
                info.created.clone(),
            ],
            ArchiveListing::Unreadable { path, error } => vec![
                path.display().to_string(),
                format!("unreadable: {error}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    output::table(&mut out, &header, &rows)?;
    Ok(())
}

pub fn restore(data: &Path, args: RestoreArgs) -> Result<(), CliError> {
    let engine = crate::open_existing(data)?;
    let bar = byte_bar(args.no_progress, "restoring");
    let report = engine.restore(&args.file, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    engine.close()?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "restored {} ({} segments, {} rows, {} points; {} text records indexed) from {} in {:.2} s",
        report.months.join(", "),
        report.segments,
        count(report.rows),
        count(report.points),
        count(report.text_records_indexed),
        report.path.display(),
        report.seconds
    )?;
    if report.objects > 0 {
        writeln!(out, "wrote back {} objects (large diffs)", report.objects)?;
    }
    if !report.missing_objects.is_empty() {
        writeln!(
            out,
            "warning: the archive lacks {} objects its commits name (missing when it was written), so their diffs cannot be read: {}",
            report.missing_objects.len(),
            report.missing_objects.join(", ")
        )?;
    }
    Ok(())
}
