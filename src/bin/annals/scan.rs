//! `annals scan`: raw points of one measurement.

use crate::CliError;
use crate::output::{self, Format, TimeFormat};
use annals::time::{now_ns, parse_time};
use annals::{Error, Order, ScanRequest, SeriesKind, SeriesSelector, TimeRange};
use clap::{Args, ValueEnum};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Args)]
pub struct ScanArgs {
    /// Measurement to read (e.g. cpu, log, alert, performance).
    #[arg(long, short = 'm')]
    measurement: String,
    /// Only these fields (repeat or separate with commas) [default: all].
    #[arg(long = "field", short = 'f', value_delimiter = ',')]
    fields: Vec<String>,
    /// Only series with this tag value, as KEY=VALUE (repeat for more).
    #[arg(long = "where", short = 'w', value_name = "KEY=VALUE")]
    filters: Vec<String>,
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
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
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

pub fn run(data: &Path, args: ScanArgs) -> Result<(), CliError> {
    // Arguments are checked before the store is opened.
    let now = now_ns();
    let start = args.from.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MIN);
    let end = args.to.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MAX);
    let mut selector = SeriesSelector::measurement(args.measurement.clone());
    selector.kind = args.kind.map(|k| match k {
        KindArg::Metric => SeriesKind::Metric,
        KindArg::Performance => SeriesKind::Performance,
        KindArg::Log => SeriesKind::Log,
        KindArg::Alert => SeriesKind::Alert,
    });
    for filter in &args.filters {
        let (k, v) = filter.split_once('=').ok_or_else(|| Error::InvalidInput {
            line: None,
            column: None,
            reason: format!("--where {filter:?} is not KEY=VALUE"),
        })?;
        selector = selector.with_tag(k, v);
    }
    let request = ScanRequest {
        selector,
        fields: (!args.fields.is_empty()).then(|| args.fields.clone()),
        range: TimeRange::new(start, end),
        order: match args.order {
            OrderArg::Asc => Order::Ascending,
            OrderArg::Desc => Order::Descending,
        },
        limit: args.limit,
    };
    let engine = crate::open_existing(data)?;
    let snapshot = engine.snapshot();
    let ids = snapshot.select(&request.selector);
    let tag_keys: Vec<String> = ids
        .iter()
        .filter_map(|&id| snapshot.series_key(id))
        .flat_map(|k| k.tags().iter().map(|(t, _)| t.clone()).collect::<Vec<_>>())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let fields: Vec<String> = match &request.fields {
        Some(f) => f.clone(),
        None => snapshot.field_names(&ids, request.range)?,
    };
    let format = args
        .format
        .unwrap_or(if output::stdout_is_terminal() { Format::Table } else { Format::Csv });
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut header = vec!["time".to_string()];
    header.extend(tag_keys.iter().cloned());
    header.extend(fields.iter().cloned());
    let mut table_rows = Vec::new();
    if format == Format::Csv {
        output::csv_line(&mut out, &header)?;
    }
    for row in snapshot.scan(&request)? {
        let row = row?;
        match format {
            Format::Json => {
                let tags: serde_json::Map<String, serde_json::Value> =
                    row.key.tags().iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
                let values: serde_json::Map<String, serde_json::Value> =
                    row.fields.iter().map(|(k, v)| (k.to_string(), output::json(v))).collect();
                let mut object = serde_json::Map::new();
                object.insert(
                    "time".into(),
                    match args.time_format {
                        TimeFormat::Ns => row.timestamp.into(),
                        TimeFormat::Rfc3339 => annals::time::format_rfc3339(row.timestamp).into(),
                    },
                );
                object.insert("measurement".into(), row.key.measurement().into());
                object.insert("tags".into(), tags.into());
                object.insert("fields".into(), values.into());
                if let Some(id) = row.record_id {
                    object.insert("record_id".into(), id.into());
                }
                writeln!(out, "{}", serde_json::Value::Object(object))?;
            }
            Format::Csv | Format::Table => {
                let mut cells = vec![args.time_format.format(row.timestamp)];
                cells.extend(tag_keys.iter().map(|k| row.key.tag(k).unwrap_or_default().to_string()));
                cells.extend(fields.iter().map(|f| {
                    row.fields
                        .iter()
                        .find(|(name, _)| &**name == f.as_str())
                        .map(|(_, v)| output::text(v))
                        .unwrap_or_default()
                }));
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
    Ok(())
}
