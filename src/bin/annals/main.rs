//! `annals`: the command-line front end. It uses only the library's public API.

mod commits;
mod demo;
mod ingest;
mod lifecycle;
mod output;
mod query;
mod report;
mod search;
#[cfg(feature = "server")]
mod serve;
mod trends;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// An embedded, append-only history store: metrics, performance samples, logs and alerts.
#[derive(Parser)]
#[command(name = "annals", version, propagate_version = true)]
struct Cli {
    /// Data directory of the store.
    #[arg(long, global = true, env = "ANNALS_DATA", default_value = "./annals-data", value_name = "DIR")]
    data: PathBuf,
    /// Memory the store may hold for writing and caching, in MiB (default 512): a quarter
    /// for the head being written, a quarter for the head being flushed, a quarter for the
    /// block cache, an eighth for the text index writer.
    #[arg(long, global = true, env = "ANNALS_MEMORY_MB", value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    memory_mb: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

/// `--memory-mb`, set once at start for [`store_options`].
static MEMORY_BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Command {
    /// Write line protocol or JSON lines from a file or standard input. Exit status: 0
    /// when every line was stored, 2 when malformed lines were skipped (the rest stored),
    /// 1 when an error stopped it.
    Ingest(ingest::IngestArgs),
    /// Print raw points of one measurement.
    Scan(query::SelectArgs),
    /// Aggregate by time buckets and tags, or take the newest row per series.
    Query(query::QueryArgs),
    /// Write a query's rows (the flags of `query`) as CSV, NDJSON or Parquet to a file or stdout,
    /// streamed.
    Export(query::ExportArgs),
    /// Full-text search over logs, alerts and commits, newest first.
    Search(search::SearchArgs),
    /// Show series, points and bytes per month.
    Stats(report::StatsArgs),
    /// Merge the small segments of each month into few large ones (as the background
    /// compactor does), now.
    Compact(lifecycle::CompactArgs),
    /// Show what retention would drop (detail older than 30 days, summaries older than
    /// 365), or drop it with --apply after rolling finished days up into summaries.
    Retention(lifecycle::RetentionArgs),
    /// Move whole months out of the store into a compressed, checksummed archive file;
    /// `archive list` shows the archives.
    Archive(lifecycle::ArchiveArgs),
    /// Bring an archive's months back into the store.
    Restore(lifecycle::RestoreArgs),
    /// Check every checksum and cross-reference; --repair drops damaged parts.
    Verify(report::VerifyArgs),
    /// Git commits with their per-file diffs: show, log, diff, import.
    Commits(commits::CommitsArgs),
    /// Trend analysis of the series the query flags select: patterns, anomalies, forecast,
    /// correlate.
    Trends(trends::TrendsArgs),
    /// Write a realistic month of demo data to the data directory and show a few answers.
    Demo(demo::DemoArgs),
    /// Serve the store over HTTP (JSON API) until SIGTERM or SIGINT.
    #[cfg(feature = "server")]
    Serve(serve::ServeArgs),
}

/// Errors of a command. `Reported` means the command already printed what went wrong;
/// `Status` too, and it asks for that exit status.
pub enum CliError {
    Annals(annals::Error),
    Io(std::io::Error),
    Reported,
    Status(u8),
}

impl From<annals::Error> for CliError {
    fn from(e: annals::Error) -> Self {
        CliError::Annals(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e)
    }
}

/// Options of every store the command line opens: a command runs briefly, so retention
/// runs only when asked (`annals retention --apply`); large diffs go to the S3 bucket the
/// `AWS_*` variables name, if any.
pub fn store_options() -> annals::Options {
    annals::Options {
        memory_budget: MEMORY_BUDGET.get().copied().unwrap_or(annals::DEFAULT_MEMORY_BUDGET),
        retention: annals::lifecycle::RetentionOptions::manual(),
        objects: annals::ObjectStoreConfig::from_env(),
        ..annals::Options::default()
    }
}

/// Opens a store that must exist, for a command that only reads it.
pub fn open_existing(data: &std::path::Path) -> Result<annals::Engine, annals::Error> {
    annals::Engine::open(
        data,
        annals::Options {
            create_if_missing: false,
            background_flush: false,
            compaction: annals::CompactionOptions {
                background: false,
                ..annals::CompactionOptions::default()
            },
            ..crate::store_options()
        },
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(mib) = cli.memory_mb {
        let _ = MEMORY_BUDGET.set(mib as usize * (1 << 20));
    }
    let result = match cli.command {
        Command::Ingest(args) => ingest::run(&cli.data, args),
        Command::Scan(args) => query::scan(&cli.data, args),
        Command::Query(args) => query::query(&cli.data, args),
        Command::Export(args) => query::export(&cli.data, args),
        Command::Search(args) => search::run(&cli.data, args),
        Command::Stats(args) => report::stats(&cli.data, args),
        Command::Verify(args) => report::verify(&cli.data, args),
        Command::Compact(args) => lifecycle::compact(&cli.data, args),
        Command::Retention(args) => lifecycle::retention(&cli.data, args),
        Command::Archive(args) => lifecycle::archive(&cli.data, args),
        Command::Restore(args) => lifecycle::restore(&cli.data, args),
        Command::Commits(args) => commits::run(&cli.data, args),
        Command::Trends(args) => trends::run(&cli.data, args),
        Command::Demo(args) => demo::run(&cli.data, args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(&cli.data, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Output cut short by a closed pipe (`annals scan ... | head`) is not a failure.
        Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(CliError::Io(e)) => {
            eprintln!("annals: {e}");
            ExitCode::FAILURE
        }
        Err(CliError::Annals(e)) => {
            eprintln!("annals: {e}");
            // Damage in the store (not in an archive or input file given on the command line).
            let in_store = matches!(&e, annals::Error::Corruption { file, .. } if file.starts_with(&cli.data));
            if e.is_corruption() && in_store {
                eprintln!(
                    "annals: run `annals --data {} verify` to see the damage, and `verify --repair` to drop it",
                    cli.data.display()
                );
            }
            ExitCode::FAILURE
        }
        Err(CliError::Reported) => ExitCode::FAILURE,
        Err(CliError::Status(status)) => ExitCode::from(status),
    }
}
