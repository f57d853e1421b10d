//! `annals scan` (raw points) and `annals query` (aggregates, buckets, groups, lastpoint),
//! one flag set and one output path over the query engine.

use crate::CliError;
use crate::output::{self, Format, TimeFormat};
use annals::Query;
use annals::query::QuerySpec;
use annals::time::now_ns;
use clap::{Args, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::Path;

/// What to read and how to print it: the flags `scan` and `query` share.
#[derive(Args)]
pub struct SelectArgs {
    /// Measurement to read (e.g. cpu, log, alert, performance).
    #[arg(long, short = 'm')]
    measurement: String,
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
    /// End of the range, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
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
    fn spec(&self) -> QuerySpec {
        QuerySpec {
            measurement: self.measurement.clone(),
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
            to: self.to.clone(),
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
        }
    }
}

impl QueryArgs {
    fn spec(&self) -> QuerySpec {
        QuerySpec {
            aggregates: self.agg.clone(),
            every: self.every.clone(),
            group_by: self.group_by.clone(),
            fill: Some(self.fill.clone()),
            lastpoint: self.lastpoint,
            ..self.select.spec()
        }
    }
}

pub fn scan(data: &Path, args: SelectArgs) -> Result<(), CliError> {
    let query = args.spec().to_query(now_ns())?;
    run(data, &query, args.format, args.time_format)
}

pub fn query(data: &Path, args: QueryArgs) -> Result<(), CliError> {
    let query = args.spec().to_query(now_ns())?;
    run(data, &query, args.select.format, args.select.time_format)
}

fn run(data: &Path, query: &Query, format: Option<Format>, time_format: TimeFormat) -> Result<(), CliError> {
    // Arguments are checked (above) before the store is opened.
    let engine = crate::open_existing(data)?;
    let result = engine.snapshot().query(query)?;
    if result.resolutions != [annals::lifecycle::Resolution::Detail] {
        let used: Vec<&str> = result.resolutions.iter().map(|r| r.name()).collect();
        eprintln!(
            "resolution: {} (retention dropped the detail of part of the range; those buckets come from summaries)",
            used.join("+")
        );
    }
    let header = result.columns();
    let (time_column, tags, values) = (result.time_column, result.tag_columns.clone(), result.value_columns.clone());
    let format = format.unwrap_or(if output::stdout_is_terminal() { Format::Table } else { Format::Csv });
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if format == Format::Csv {
        output::csv_line(&mut out, &header)?;
    }
    let mut table_rows = Vec::new();
    let mut result = result;
    for row in result.by_ref() {
        let row = row?;
        match format {
            Format::Json => {
                let mut object = serde_json::Map::new();
                if time_column && let Some(t) = row.time {
                    object.insert(
                        "time".into(),
                        match time_format {
                            TimeFormat::Ns => t.into(),
                            TimeFormat::Rfc3339 => annals::time::format_rfc3339(t).into(),
                        },
                    );
                }
                if row.series.is_some() {
                    object.insert("measurement".into(), query.selector.measurement.clone().unwrap_or_default().into());
                }
                let tag_values: serde_json::Map<String, serde_json::Value> = tags
                    .iter()
                    .zip(row.tags.iter())
                    .filter_map(|(n, v)| v.clone().map(|v| (n.clone(), v.into())))
                    .collect();
                let field_values: serde_json::Map<String, serde_json::Value> = values
                    .iter()
                    .zip(&row.values)
                    .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.to_json())))
                    .collect();
                object.insert("tags".into(), tag_values.into());
                object.insert("fields".into(), field_values.into());
                if let Some(id) = row.record_id {
                    object.insert("record_id".into(), id.into());
                }
                writeln!(out, "{}", serde_json::Value::Object(object))?;
            }
            Format::Csv | Format::Table => {
                let mut cells = Vec::with_capacity(header.len());
                if time_column {
                    cells.push(row.time.map(|t| time_format.format(t)).unwrap_or_default());
                }
                cells.extend(row.tags.iter().map(|t| t.clone().unwrap_or_default()));
                cells.extend(row.values.iter().map(|v| v.as_ref().map(output::text).unwrap_or_default()));
                if format == Format::Csv {
                    output::csv_line(&mut out, &cells)?;
                } else {
                    table_rows.push(cells);
                }
            }
        }
    }
    if format == Format::Table {
        output::table(&mut out, &header, &table_rows)?;
    }
    out.flush()?;
    if let Some(cursor) = result.next_cursor() {
        eprintln!("next page: --cursor {cursor}");
    }
    Ok(())
}
