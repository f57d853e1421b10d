//! `annals ingest`: line protocol or JSON lines into the store.
//!
//! A parser thread reads and parses lines into batches; the main thread writes them. A
//! malformed line is reported with its number and reason and skipped, and the command
//! exits with status 2 (`--strict`: the lines before it are stored, then the command stops
//! with status 1). When every integer timestamp of the input lies before 1971 or after
//! 2200 in the chosen precision, a warning names the precision they look like.

use crate::CliError;
use annals::history::History;
use annals::ingest::{Format, IntegerTimestamps, Line, LineReader, ParsedCommit, Parser};
use annals::time::{Precision, now_ns};
use annals::{Batch, Durability, Engine, Error, Limits, Options, StorageStatus};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct IngestArgs {
    /// Input format [default: jsonl for *.jsonl and *.json files, lp otherwise].
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// Unit of integer timestamps.
    #[arg(long, value_enum, default_value = "ns")]
    precision: PrecisionArg,
    /// When a batch counts as written: fsync each (sync), share fsyncs (group), or leave it
    /// to the operating system (none).
    #[arg(long, value_enum, default_value = "group")]
    durability: DurabilityArg,
    /// Progress display [default: bar on a terminal, none otherwise]. `json` prints
    /// {"durable_rows":N,"durable_points":M} to stderr after every committed batch.
    #[arg(long, value_enum)]
    progress: Option<ProgressArg>,
    /// Stop at the first malformed line and exit with status 1 (lines before it are stored).
    /// Without it, malformed lines are reported, skipped, and the exit status is 2.
    #[arg(long)]
    strict: bool,
    /// Rows per batch; each batch is one WAL record and one commit.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_rows: u32,
    /// Flush the in-memory head to segment files when it holds about this many MiB
    /// (default: a quarter of --memory-mb).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    head_mb: Option<u32>,
    /// Longest accepted input line in bytes; longer lines are reported and skipped.
    #[arg(long, default_value_t = 4 << 20)]
    max_line_bytes: usize,
    /// Input file, or - for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    input: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    /// Influx line protocol.
    Lp,
    /// JSON lines of the typed kinds (metric, performance, log, alert, point, commit).
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    Ns,
    Us,
    Ms,
    S,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Sync,
    Group,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressArg {
    Bar,
    Json,
    None,
}

enum Message {
    /// `lines`: the first and last input line the batch was parsed from.
    Batch {
        batch: Batch,
        /// Commit lines, stored through the commit store after the batch.
        commits: Vec<ParsedCommit>,
        bytes_read: u64,
        lines: (u64, u64),
    },
    Malformed(Error),
}

struct ParseOutcome {
    lines: u64,
    malformed: u64,
    timestamps: IntegerTimestamps,
    stopped_by: Option<Error>,
    read_error: Option<std::io::Error>,
}

pub fn run(data: &Path, args: IngestArgs) -> Result<(), CliError> {
    let format = match args.format {
        Some(InputFormat::Lp) => Format::LineProtocol,
        Some(InputFormat::Jsonl) => Format::JsonLines,
        None => match args.input.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json" | "ndjson") => Format::JsonLines,
            _ => Format::LineProtocol,
        },
    };
    let precision = match args.precision {
        PrecisionArg::Ns => Precision::Nanoseconds,
        PrecisionArg::Us => Precision::Microseconds,
        PrecisionArg::Ms => Precision::Milliseconds,
        PrecisionArg::S => Precision::Seconds,
    };
    let durability = match args.durability {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Group => Durability::default(),
        DurabilityArg::None => Durability::None,
    };
    let (input, total_bytes): (Box<dyn Read + Send>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(&args.input).map_err(|e| Error::Io {
            op: "open",
            path: args.input.clone(),
            source: e,
        })?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let history = History::from_engine(Engine::open(
        data,
        Options {
            durability,
            head_max_bytes: args.head_mb.map(|mib| mib as usize * (1 << 20)),
            ..crate::store_options()
        },
    )?);
    let engine = history.engine();
    let progress_kind = args.progress.unwrap_or(if std::io::stderr().is_terminal() {
        ProgressArg::Bar
    } else {
        ProgressArg::None
    });
    let bar = make_bar(progress_kind, total_bytes);

    let settings = ParseSettings {
        format,
        precision,
        limits: engine.options().limits.clone(),
        strict: args.strict,
        batch_rows: args.batch_rows as usize,
        max_line_bytes: args.max_line_bytes,
    };
    let (tx, rx) = sync_channel::<Message>(4);
    let parser = std::thread::spawn(move || parse_input(input, settings, tx));

    let started = Instant::now();
    let (mut rows, mut points) = (0u64, 0u64);
    let mut commits = CommitCounts::default();
    let mut write_error = None;
    for message in rx.iter() {
        match message {
            Message::Malformed(e) => bar.suspend(|| eprintln!("malformed {e}")),
            Message::Batch {
                batch,
                commits: parsed,
                bytes_read,
                lines,
            } => {
                if !batch.is_empty() {
                    match engine.write(&batch) {
                        Ok(receipt) => {
                            rows += receipt.rows as u64;
                            points += receipt.points as u64;
                        }
                        Err(e) => {
                            write_error = Some((e, lines));
                            break;
                        }
                    }
                }
                if !parsed.is_empty() {
                    match store_commits(&history, &parsed, &mut commits) {
                        Ok(stored_rows) => rows += stored_rows,
                        Err(e) => {
                            write_error = Some((e, lines));
                            break;
                        }
                    }
                }
                if progress_kind == ProgressArg::Json {
                    eprintln!("{{\"durable_rows\":{rows},\"durable_points\":{points}}}");
                }
                bar.set_position(bytes_read);
                bar.set_message(format!(
                    "{} rows, {} points",
                    crate::output::count(rows),
                    crate::output::count(points)
                ));
            }
        }
    }
    // Dropping the receiver stops a parser that is still running (after a write error).
    drop(rx);
    let outcome = parser
        .join()
        .map_err(|_| CliError::Io(std::io::Error::other("the parser thread panicked")))?;
    bar.set_message("flushing");
    let closed = history.close();
    bar.finish_and_clear();
    if let Some((e, (first, last))) = write_error {
        // A batch is written whole or not at all, and the ingest stops at the first refused
        // one, so everything from its first line on is not stored.
        eprintln!(
            "annals: writing failed after {} durable rows: {e}\nannals: input from line {} on was not stored (the refused batch held lines {}-{})",
            crate::output::count(rows),
            crate::output::count(first),
            crate::output::count(first),
            crate::output::count(last)
        );
        return Err(CliError::Reported);
    }
    closed?;
    if let Some(e) = outcome.read_error {
        eprintln!(
            "annals: reading the input failed after {} durable rows: {e}",
            crate::output::count(rows)
        );
        return Err(CliError::Reported);
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} rows ({} points) from {} lines in {seconds:.2} s ({:.0} points/s); {} malformed line{} skipped",
        crate::output::count(rows),
        crate::output::count(points),
        crate::output::count(outcome.lines),
        points as f64 / seconds.max(1e-9),
        crate::output::count(outcome.malformed),
        if outcome.malformed == 1 { "" } else { "s" }
    );
    if commits.stored + commits.duplicates > 0 {
        eprintln!(
            "commits: {} stored, {} duplicate{} (already in the store) skipped",
            crate::output::count(commits.stored),
            crate::output::count(commits.duplicates),
            if commits.duplicates == 1 { "" } else { "s" }
        );
    }
    warn_about_precision(&outcome.timestamps);
    if let Some(e) = outcome.stopped_by {
        eprintln!("annals: stopped at the first malformed line (--strict): {e}");
        return Err(CliError::Reported);
    }
    if outcome.malformed > 0 {
        return Err(CliError::Status(MALFORMED_LINES_STATUS));
    }
    Ok(())
}

/// Commit lines stored and skipped.
#[derive(Default)]
struct CommitCounts {
    stored: u64,
    duplicates: u64,
}

/// Stores the commit lines of one batch through the commit store (all or none of the new
/// ones); duplicates are counted and skipped. Returns the rows written. The lines were
/// checked when parsed, so a `Failed` answer is a failure of the store (its object store),
/// which stops the ingest like any write error.
fn store_commits(history: &History, parsed: &[ParsedCommit], counts: &mut CommitCounts) -> Result<u64, Error> {
    let results = history.store_commits(parsed)?;
    let mut rows = 0;
    for (result, (_, diffs)) in results.iter().zip(parsed) {
        match result.status {
            StorageStatus::Success => {
                counts.stored += 1;
                rows += 1 + diffs.len() as u64;
            }
            StorageStatus::Duplicate => counts.duplicates += 1,
            StorageStatus::Failed => {
                return Err(Error::Refused {
                    reason: format!("the commit store refused the batch: {}", result.message),
                });
            }
        }
    }
    Ok(rows)
}

/// Exit status when malformed lines were skipped and the rest stored.
const MALFORMED_LINES_STATUS: u8 = 2;

/// Warns when every integer timestamp lies outside 1971..2200 in the chosen precision: the
/// input is almost certainly in another unit, and its rows were stored at the wrong times.
fn warn_about_precision(seen: &IntegerTimestamps) {
    if !seen.all_implausible() {
        return;
    }
    let chosen = seen.precision.as_str();
    let range = if seen.min == seen.max {
        format!("{}", seen.min)
    } else {
        format!("{} to {}", seen.min, seen.max)
    };
    let advice = match seen.likely_precision() {
        Some(p) => format!(
            "they look like {}: ingest them again with --precision {}",
            precision_words(p),
            p.as_str()
        ),
        None => "check the unit of the input's timestamps and --precision".to_string(),
    };
    eprintln!(
        "annals: warning: every integer timestamp ({range}) lies before 1971 or after 2200 when read as {} (--precision {chosen}); {advice}",
        precision_words(seen.precision)
    );
}

fn precision_words(p: Precision) -> &'static str {
    match p {
        Precision::Nanoseconds => "nanoseconds",
        Precision::Microseconds => "microseconds",
        Precision::Milliseconds => "milliseconds",
        Precision::Seconds => "seconds",
        Precision::Minutes => "minutes",
        Precision::Hours => "hours",
    }
}

fn make_bar(kind: ProgressArg, total_bytes: Option<u64>) -> ProgressBar {
    if kind != ProgressArg::Bar {
        return ProgressBar::hidden();
    }
    let bar = match total_bytes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

struct ParseSettings {
    format: Format,
    precision: Precision,
    limits: Limits,
    strict: bool,
    batch_rows: usize,
    max_line_bytes: usize,
}

fn parse_input(input: Box<dyn Read + Send>, settings: ParseSettings, tx: SyncSender<Message>) -> ParseOutcome {
    let ParseSettings {
        format,
        precision,
        limits,
        strict,
        batch_rows,
        max_line_bytes,
    } = settings;
    let batch_bytes = limits.max_batch_bytes / 2;
    let mut parser = Parser::new(format, precision, limits);
    let mut reader = LineReader::new(BufReader::with_capacity(1 << 20, input), max_line_bytes);
    let mut outcome = ParseOutcome {
        lines: 0,
        malformed: 0,
        timestamps: IntegerTimestamps::new(precision),
        stopped_by: None,
        read_error: None,
    };
    let mut batch = Batch::new();
    let mut batch_first_line = 1;
    let mut now = now_ns();
    loop {
        let (number, line) = match reader.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                outcome.read_error = Some(e);
                break;
            }
        };
        outcome.lines = number;
        let result = match line.error(number, max_line_bytes) {
            Some(e) => Err(e),
            None => match line {
                Line::Text(text) => parser.parse_into(text, number, now, &mut batch).map(|_| ()),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            outcome.malformed += 1;
            if strict {
                outcome.stopped_by = Some(e);
                break;
            }
            if tx.send(Message::Malformed(e)).is_err() {
                outcome.timestamps = parser.integer_timestamps();
                return outcome;
            }
        }
        let (commit_count, commit_bytes) = parser.pending_commits();
        if batch.len() + commit_count >= batch_rows || batch.estimated_bytes() + commit_bytes >= batch_bytes {
            let full = std::mem::take(&mut batch);
            if tx
                .send(Message::Batch {
                    batch: full,
                    commits: parser.take_commits(),
                    bytes_read: reader.bytes_read(),
                    lines: (batch_first_line, number),
                })
                .is_err()
            {
                outcome.timestamps = parser.integer_timestamps();
                return outcome;
            }
            batch_first_line = number + 1;
            now = now_ns();
        }
    }
    let commits = parser.take_commits();
    if !batch.is_empty() || !commits.is_empty() {
        let _ = tx.send(Message::Batch {
            batch,
            commits,
            bytes_read: reader.bytes_read(),
            lines: (batch_first_line, outcome.lines),
        });
    }
    outcome.timestamps = parser.integer_timestamps();
    outcome
}
