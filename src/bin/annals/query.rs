//! `annals scan` (raw points) and `annals query` (aggregates, buckets, groups, lastpoint),
//! one flag set and one output path over the query engine.

use crate::CliError;
use crate::output::{self, Format, TimeFormat};
use annals::time::{now_ns, parse_time};
use annals::{Aggregate, AggregateFn, Bucket, Error, FieldFilter, Fill, Order, Query, SeriesKind, SeriesSelector, TagPredicate, TimeRange};
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

fn invalid(reason: String) -> Error {
    Error::InvalidInput {
        line: None,
        column: None,
        reason,
    }
}

impl SelectArgs {
    /// The query these flags describe (no aggregates).
    fn query(&self) -> Result<Query, Error> {
        let now = now_ns();
        let start = self.from.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MIN);
        let end = self.to.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MAX);
        let predicates = self.filters.iter().map(|p| TagPredicate::parse(p)).collect::<Result<Vec<_>, _>>()?;
        let selector = SeriesSelector {
            kind: self.kind.map(|k| match k {
                KindArg::Metric => SeriesKind::Metric,
                KindArg::Performance => SeriesKind::Performance,
                KindArg::Log => SeriesKind::Log,
                KindArg::Alert => SeriesKind::Alert,
            }),
            measurement: Some(self.measurement.clone()),
            predicate: TagPredicate::all(predicates),
        };
        Ok(Query {
            selector,
            fields: (!self.fields.is_empty()).then(|| self.fields.clone()),
            filters: self.value_filters.iter().map(|f| FieldFilter::parse(f)).collect::<Result<_, _>>()?,
            range: TimeRange::new(start, end),
            order: match self.order {
                OrderArg::Asc => Order::Ascending,
                OrderArg::Desc => Order::Descending,
            },
            limit: self.limit,
            offset: self.offset,
            cursor: self.cursor.clone(),
            ..Query::default()
        })
    }
}

impl QueryArgs {
    fn query(&self) -> Result<Query, Error> {
        let mut query = self.select.query()?;
        for spec in &self.agg {
            let spec = spec.trim();
            // An explicit `function(field)`, except percentile(95) which names a quantile.
            let explicit = spec
                .split_once('(')
                .filter(|(f, _)| !f.eq_ignore_ascii_case("percentile"))
                .and_then(|(f, rest)| rest.strip_suffix(')').map(|field| (f, field.trim())));
            match explicit {
                Some((function, field)) => {
                    let function = AggregateFn::parse(function)?;
                    query.aggregates.push(if field == "*" {
                        Aggregate::count_rows()
                    } else {
                        Aggregate::of(function, field)
                    });
                }
                None => {
                    let function = AggregateFn::parse(spec)?;
                    if self.select.fields.is_empty() {
                        if function != AggregateFn::Count {
                            return Err(invalid(format!("--agg {spec} needs --field (or write {spec}(FIELD))")));
                        }
                        query.aggregates.push(Aggregate::count_rows());
                    }
                    for field in &self.select.fields {
                        query.aggregates.push(Aggregate::of(function, field.clone()));
                    }
                }
            }
        }
        if !query.aggregates.is_empty() {
            query.fields = None;
        }
        query.every = self.every.as_deref().map(Bucket::parse).transpose()?;
        query.group_by = self.group_by.clone();
        query.fill = Fill::parse(&self.fill)?;
        query.lastpoint = self.lastpoint;
        Ok(query)
    }
}

pub fn scan(data: &Path, args: SelectArgs) -> Result<(), CliError> {
    let query = args.query()?;
    run(data, &query, args.format, args.time_format)
}

pub fn query(data: &Path, args: QueryArgs) -> Result<(), CliError> {
    let query = args.query()?;
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
                    .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), output::json(v))))
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
