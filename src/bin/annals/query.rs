//! `annals scan` (raw points) and `annals query` (aggregates, buckets, groups, lastpoint),
//! one flag set and one output path over the query engine.

use crate::CliError;
use crate::output::{self, TimeFormat};
use annals::Query;
use annals::query::QuerySpec;
use annals::query::export::{ExportFormat, ExportOptions, export_rows};
use annals::time::now_ns;
use clap::{Args, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::Path;

/// What to read and how to print it: the flags `scan` and `query` share.
#[derive(Args)]
pub struct SelectArgs {
    /// Measurement to read (e.g. cpu, log, alert, performance); required, except by a
    /// partitioned export (--to DIR), which then writes every measurement.
    #[arg(long, short = 'm')]
    measurement: Option<String>,
    /// Only these fields (repeat or separate with commas) [default: all].
    #[arg(long = "field", short = 'f', value_delimiter = ',')]
    fields: Vec<String>,
    /// Only series whose tags satisfy this, e.g. host=a, 'region in (eu, us)', 'host =~ ^web'
    /// (repeat for more; all must hold).
    #[arg(long = "where", short = 'w', value_name = "PREDICATE")]
    filters: Vec<String>,
    /// Only rows whose field value satisfies this, e.g. 'usage_user > 90' (repeatable).
    #[arg(long = "filter", value_name = "FIELD OP NUMBER")]
    value_filters: Vec<String>,
    /// Only series of this kind.
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// Start of the range, inclusive: RFC 3339, a date, nanoseconds, or now-1h.
    #[arg(long)]
    from: Option<String>,
    /// End of the range, exclusive. `export --format parquet` also takes a directory or
    /// s3://bucket/prefix here, for a partitioned export (repeat --to for both; name a
    /// directory that looks like a time as ./2016-01-01).
    #[arg(long, value_name = "TIME")]
    to: Vec<String>,
    /// Output format [default: table on a terminal, csv otherwise; export: csv].
    #[arg(long, value_enum)]
    format: Option<RowFormat>,
    /// How times are printed.
    #[arg(long, value_enum, default_value = "rfc3339")]
    time_format: TimeFormat,
    /// Newest first (desc) or oldest first (asc).
    #[arg(long, value_enum, default_value = "asc")]
    order: OrderArg,
    /// At most this many rows; when more remain, the next page's cursor is printed to stderr.
    #[arg(long)]
    limit: Option<usize>,
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
}

/// How the rows of `scan`, `query` and `export` are written.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RowFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line (NDJSON).
    Json,
    /// Aligned columns for reading.
    Table,
    /// An Apache Parquet file (to a file, or to stdout when it is not a terminal).
    Parquet,
}

/// `query`'s own flags.
#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Aggregates: count, sum, min, max, mean, first, last, stddev, p95 or percentile(95),
    /// each applied to every --field (count alone counts rows); or explicit max(usage_user).
    #[arg(long, value_delimiter = ',')]
    agg: Vec<String>,
    /// Time buckets: a duration (10s, 5m, 1h, 1d) or day, week (ISO, from Monday), month.
    #[arg(long)]
    every: Option<String>,
    /// Tags to group aggregates by (separate with commas).
    #[arg(long = "group-by", value_delimiter = ',')]
    group_by: Vec<String>,
    /// What empty buckets show: none, null, previous, or a number.
    #[arg(long, default_value = "none")]
    fill: String,
    /// The newest row of each series.
    #[arg(long)]
    lastpoint: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Metric,
    Performance,
    Log,
    Alert,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Asc,
    Desc,
}

impl SelectArgs {
    /// These flags as the library's text form of a query (no aggregates).
    fn spec(&self) -> Result<QuerySpec, CliError> {
        if self.to.len() > 1 {
            return Err(invalid("--to is given twice (only a partitioned export takes a destination there)"));
        }
        Ok(QuerySpec {
            measurement: self.measurement.clone().unwrap_or_default(),
            fields: self.fields.clone(),
            predicates: self.filters.clone(),
            value_filters: self.value_filters.clone(),
            kind: self.kind.map(|k| {
                match k {
                    KindArg::Metric => "metric",
                    KindArg::Performance => "performance",
                    KindArg::Log => "log",
                    KindArg::Alert => "alert",
                }
                .to_string()
            }),
            from: self.from.clone(),
            to: self.to.first().cloned(),
            order: Some(
                match self.order {
                    OrderArg::Asc => "asc",
                    OrderArg::Desc => "desc",
                }
                .to_string(),
            ),
            limit: self.limit.map(|l| l.to_string()),
            offset: Some(self.offset.to_string()),
            cursor: self.cursor.clone(),
            ..QuerySpec::default()
        })
    }
}

impl QueryArgs {
    fn spec(&self) -> Result<QuerySpec, CliError> {
        Ok(QuerySpec {
            aggregates: self.agg.clone(),
            every: self.every.clone(),
            group_by: self.group_by.clone(),
            fill: Some(self.fill.clone()),
            lastpoint: self.lastpoint,
            ..self.select.spec()?
        })
    }
}

pub fn scan(data: &Path, args: SelectArgs) -> Result<(), CliError> {
    let query = args.spec()?.to_query(now_ns())?;
    run(data, &query, args.format, args.time_format)
}

pub fn query(data: &Path, args: QueryArgs) -> Result<(), CliError> {
    let query = args.spec()?.to_query(now_ns())?;
    run(data, &query, args.select.format, args.select.time_format)
}

fn run(data: &Path, query: &Query, format: Option<RowFormat>, time_format: TimeFormat) -> Result<(), CliError> {
    let format = format.unwrap_or(if output::stdout_is_terminal() {
        RowFormat::Table
    } else {
        RowFormat::Csv
    });
    if format == RowFormat::Parquet && output::stdout_is_terminal() {
        return Err(binary_to_terminal());
    }
    // Arguments are checked (above) before the store is opened.
    let engine = crate::open_existing(data)?;
    let mut result = engine.snapshot().query(query)?;
    note_resolutions(&result);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match export_format(format) {
        Some(format) => {
            let options = ExportOptions {
                format,
                integer_times: time_format == TimeFormat::Ns,
            };
            export_rows(&mut result, query.selector.measurement.as_deref(), options, &mut out, &mut |_| {})?;
        }
        None => {
            let header = result.columns();
            let time_column = result.time_column;
            let mut table_rows = Vec::new();
            for row in result.by_ref() {
                let row = row?;
                let mut cells = Vec::with_capacity(header.len());
                if time_column {
                    cells.push(row.time.map(|t| time_format.format(t)).unwrap_or_default());
                }
                cells.extend(row.tags.iter().map(|t| t.clone().unwrap_or_default()));
                cells.extend(row.values.iter().map(|v| v.as_ref().map(output::text).unwrap_or_default()));
                table_rows.push(cells);
            }
            output::table(&mut out, &header, &table_rows)?;
        }
    }
    out.flush()?;
    if let Some(cursor) = result.next_cursor() {
        eprintln!("next page: --cursor {cursor}");
    }
    Ok(())
}

/// Says on stderr when retention dropped detail that the answer needed.
fn note_resolutions(result: &annals::query::QueryResult) {
    if result.resolutions != [annals::lifecycle::Resolution::Detail] {
        let used: Vec<&str> = result.resolutions.iter().map(|r| r.name()).collect();
        eprintln!(
            "resolution: {} (retention dropped the detail of part of the range; those buckets come from summaries)",
            used.join("+")
        );
    }
}

/// The library's export format of an output format (`None` for a table).
fn export_format(format: RowFormat) -> Option<ExportFormat> {
    match format {
        RowFormat::Csv => Some(ExportFormat::Csv),
        RowFormat::Json => Some(ExportFormat::Ndjson),
        RowFormat::Parquet => Some(ExportFormat::Parquet),
        RowFormat::Table => None,
    }
}

fn binary_to_terminal() -> CliError {
    invalid("Parquet is binary: write it to a file (--output FILE, or redirect stdout)")
}

fn invalid(reason: &str) -> CliError {
    CliError::Annals(annals::Error::InvalidInput {
        line: None,
        column: None,
        reason: reason.into(),
    })
}

/// `export`'s flags: those of `query`, and where to write.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    query: QueryArgs,
    /// File to write (written whole under a temporary name, then renamed); stdout when
    /// absent. Formats: --format csv (default), json (NDJSON) or parquet.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Partitioned export (--to DIR|s3://bucket/prefix): the folder levels, from kind,
    /// measurement and month, or none.
    #[arg(long, value_name = "KEYS", default_value = "kind,month")]
    partition: String,
    /// Partitioned export: continue the export already at the destination, writing only
    /// what is new (without it the destination must be empty).
    #[arg(long)]
    incremental: bool,
}

/// `annals export`: a query's rows as CSV, NDJSON or Parquet, streamed, to a file or stdout;
/// or, with a destination in --to, the store's rows as a partitioned Parquet dataset.
pub fn export(data: &Path, args: ExportArgs) -> Result<(), CliError> {
    let select = &args.query.select;
    let mut times = Vec::new();
    let mut destinations = Vec::new();
    for value in &select.to {
        if !value.starts_with("s3://") && annals::time::parse_time(value, now_ns()).is_ok() {
            times.push(value.clone());
        } else {
            destinations.push(value.clone());
        }
    }
    if destinations.len() > 1 {
        return Err(invalid("--to names two destinations"));
    }
    if times.len() > 1 {
        return Err(invalid("--to names two end times"));
    }
    if let Some(destination) = destinations.pop() {
        return export_dataset(data, &args, &destination, times.pop());
    }
    if args.incremental {
        return Err(invalid(
            "--incremental continues a partitioned export: name its directory or s3://bucket/prefix with --to",
        ));
    }
    let format = match export_format(select.format.unwrap_or(RowFormat::Csv)) {
        None => {
            return Err(invalid(
                "export writes csv, json (NDJSON) or parquet; --format table is for reading",
            ));
        }
        Some(format) => format.available()?,
    };
    if format == ExportFormat::Parquet && args.output.is_none() && output::stdout_is_terminal() {
        return Err(binary_to_terminal());
    }
    let query = args.query.spec()?.to_query(now_ns())?;
    let engine = crate::open_existing(data)?;
    let mut result = engine.snapshot().query(&query)?;
    note_resolutions(&result);
    let options = ExportOptions {
        format,
        integer_times: select.time_format == TimeFormat::Ns,
    };
    let measurement = query.selector.measurement.as_deref();
    let summary = match &args.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            export_rows(&mut result, measurement, options, &mut out, &mut |_| {})?
        }
        Some(path) => {
            let temporary = path.with_extension(format!("{}.partial", format.extension()));
            let file = std::fs::File::create(&temporary).map_err(|e| file_error("create", &temporary, e))?;
            let mut out = BufWriter::new(file);
            let bar = output::rows_spinner("exporting");
            let written = export_rows(&mut result, measurement, options, &mut out, &mut |rows| bar.set_position(rows));
            bar.finish_and_clear();
            let summary = match written.and_then(|s| {
                let file = out.into_inner().map_err(|e| file_error("write", &temporary, e.into_error()))?;
                file.sync_all().map_err(|e| file_error("sync", &temporary, e))?;
                Ok(s)
            }) {
                Ok(summary) => summary,
                Err(e) => {
                    let _ = std::fs::remove_file(&temporary);
                    return Err(e.into());
                }
            };
            std::fs::rename(&temporary, path).map_err(|e| file_error("rename into place", path, e))?;
            eprintln!(
                "exported {} rows ({}) to {}",
                output::count(summary.rows),
                output::bytes(summary.bytes),
                path.display()
            );
            summary
        }
    };
    if let Some(cursor) = result.next_cursor() {
        eprintln!("{} rows; next page: --cursor {cursor}", summary.rows);
    }
    Ok(())
}

/// `annals export --format parquet --to DIR|s3://bucket/prefix`: see `annals::dataset`.
#[cfg(feature = "parquet")]
fn export_dataset(data: &Path, args: &ExportArgs, destination: &str, to: Option<String>) -> Result<(), CliError> {
    use annals::dataset::{DatasetOptions, Destination, PartitionKey, export_dataset};
    let select = &args.query.select;
    if select.format != Some(RowFormat::Parquet) {
        return Err(invalid(
            "a partitioned export (--to DIR or s3://...) is written as Parquet: add --format parquet",
        ));
    }
    let query = &args.query;
    let refused = [
        (!select.fields.is_empty(), "--field"),
        (!select.value_filters.is_empty(), "--filter"),
        (select.limit.is_some(), "--limit"),
        (select.offset != 0, "--offset"),
        (select.cursor.is_some(), "--cursor"),
        (!query.agg.is_empty(), "--agg"),
        (query.every.is_some(), "--every"),
        (!query.group_by.is_empty(), "--group-by"),
        (query.lastpoint, "--lastpoint"),
        (args.output.is_some(), "--output"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
        return Err(invalid(&format!(
            "a partitioned export writes whole rows of every field; {flag} is for single-file exports (-o FILE)"
        )));
    }
    let now = now_ns();
    let time = |text: &Option<String>| text.as_deref().map(|t| annals::time::parse_time(t, now)).transpose();
    let options = DatasetOptions {
        partition: PartitionKey::parse_list(&args.partition)?,
        kind: select.kind.map(|k| match k {
            KindArg::Metric => annals::SeriesKind::Metric,
            KindArg::Performance => annals::SeriesKind::Performance,
            KindArg::Log => annals::SeriesKind::Log,
            KindArg::Alert => annals::SeriesKind::Alert,
        }),
        measurement: select.measurement.clone().filter(|m| !m.trim().is_empty()),
        predicates: select.filters.clone(),
        from: time(&select.from)?,
        to: time(&to)?,
        incremental: args.incremental,
        ..DatasetOptions::new(Destination::parse(destination)?)
    };
    let engine = crate::open_existing(data)?;
    let bar = output::rows_spinner("exporting");
    let summary = export_dataset(&engine, &options, &mut |p| {
        bar.set_position(p.rows);
        bar.set_message(format!("unit {}/{}, {}", p.units_done, p.units_total, output::bytes(p.bytes)));
    });
    bar.finish_and_clear();
    let summary = summary?;
    eprintln!(
        "exported {} rows in {} files ({}) to {}: {} units new, {} appended, {} rewritten, {} unchanged; {} files removed",
        output::count(summary.rows),
        summary.files_written,
        output::bytes(summary.bytes),
        options.destination,
        summary.units_new,
        summary.units_appended,
        summary.units_rewritten,
        summary.units_unchanged,
        summary.files_removed,
    );
    for unit in &summary.units_kept {
        eprintln!("kept the exported files of {unit}: the store now holds fewer of its rows (retention)");
    }
    Ok(())
}

#[cfg(not(feature = "parquet"))]
fn export_dataset(_: &Path, _: &ExportArgs, _: &str, _: Option<String>) -> Result<(), CliError> {
    Err(invalid(
        "this build of annals writes no Parquet (it was compiled without the cargo feature `parquet`)",
    ))
}

fn file_error(op: &'static str, path: &Path, source: std::io::Error) -> annals::Error {
    annals::Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
