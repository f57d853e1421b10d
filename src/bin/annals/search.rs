//! `annals search`: full-text search over logs, alerts and commits.

use crate::CliError;
use crate::output::{self, Format, TimeFormat};
use annals::time::{now_ns, parse_time};
use annals::{Bucket, SearchOrder, SearchQuery, SeriesKind, SeriesSelector, TagPredicate, TimeRange};
use clap::{Args, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Flags of `annals search`.
#[derive(Args)]
pub struct SearchArgs {
    /// The query: words (whole words, any case), "quoted phrases", AND, OR, NOT or -word,
    /// prefix*, (groups), level:error, logger:name. Identifiers such as IPs, block ids,
    /// hashes and dotted class names match whole. Empty matches everything.
    #[arg(value_name = "QUERY")]
    query: String,
    /// Start of the range, inclusive: RFC 3339, a date, nanoseconds, or now-1h.
    #[arg(long)]
    from: Option<String>,
    /// End of the range, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Only series whose tags satisfy this, e.g. level=ERROR, 'level in (ERROR, WARNING)',
    /// logger_name=app.db, module=auth (repeat for more; all must hold).
    #[arg(long = "where", short = 'w', value_name = "PREDICATE")]
    filters: Vec<String>,
    /// Only logs, alerts, or commits (their messages and file paths) [default: all three].
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// Hits per page; when more remain, the next page's cursor is printed to stderr.
    #[arg(long, default_value_t = annals::query::DEFAULT_SEARCH_LIMIT)]
    limit: usize,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Order of hits.
    #[arg(long, value_enum, default_value = "newest")]
    order: OrderArg,
    /// Also print the number of all matches (to stderr, or as a last JSON line).
    #[arg(long)]
    count: bool,
    /// Instead of hits, print matches per time bucket and level (e.g. 1h, 1d), without
    /// reading any record.
    #[arg(long, value_name = "BUCKET")]
    histogram: Option<String>,
    /// Output format [default: table on a terminal, csv otherwise]. Table and CSV mark the
    /// matched terms with **; JSON gives the snippet and highlight offsets.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// How times are printed.
    #[arg(long, value_enum, default_value = "rfc3339")]
    time_format: TimeFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Log,
    Alert,
    Commit,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Newest,
    Oldest,
    Relevance,
}

impl SearchArgs {
    fn search_query(&self) -> Result<SearchQuery, annals::Error> {
        // Reject a bad query string before the store is opened.
        annals::text::TextQuery::parse(&self.query)?;
        let now = now_ns();
        let start = self.from.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MIN);
        let end = self.to.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(i64::MAX);
        let predicates = self.filters.iter().map(|p| TagPredicate::parse(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(SearchQuery {
            text: self.query.clone(),
            selector: SeriesSelector {
                kind: self.kind.map(|k| match k {
                    KindArg::Log => SeriesKind::Log,
                    KindArg::Alert => SeriesKind::Alert,
                    KindArg::Commit => SeriesKind::Commit,
                }),
                measurement: None,
                predicate: TagPredicate::all(predicates),
            },
            range: TimeRange::new(start, end),
            order: match self.order {
                OrderArg::Newest => SearchOrder::Newest,
                OrderArg::Oldest => SearchOrder::Oldest,
                OrderArg::Relevance => SearchOrder::Relevance,
            },
            limit: self.limit,
            cursor: self.cursor.clone(),
            count_total: self.count,
        })
    }
}

pub fn run(data: &Path, args: SearchArgs) -> Result<(), CliError> {
    let query = args.search_query()?;
    let bucket = args.histogram.as_deref().map(Bucket::parse).transpose()?;
    let engine = crate::open_existing(data)?;
    let snapshot = engine.snapshot();
    let format = args
        .format
        .unwrap_or(if output::stdout_is_terminal() { Format::Table } else { Format::Csv });
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if let Some(bucket) = bucket {
        let counts = snapshot.search_counts(&query, bucket)?;
        let header = vec!["time".to_string(), "level".to_string(), "count".to_string()];
        let rows: Vec<Vec<String>> = counts
            .iter()
            .map(|c| {
                vec![
                    args.time_format.format(c.time),
                    c.level.clone().unwrap_or_default(),
                    c.count.to_string(),
                ]
            })
            .collect();
        match format {
            Format::Json => {
                for c in &counts {
                    let line = serde_json::json!({
                        "time": time_json(args.time_format, c.time),
                        "level": c.level,
                        "count": c.count,
                    });
                    writeln!(out, "{line}")?;
                }
            }
            Format::Csv => {
                output::csv_line(&mut out, &header)?;
                for row in &rows {
                    output::csv_line(&mut out, row)?;
                }
            }
            Format::Table => output::table(&mut out, &header, &rows)?,
        }
        out.flush()?;
        return Ok(());
    }
    let result = snapshot.search(&query)?;
    let header: Vec<String> = ["time", "record_id", "kind", "level", "logger", "text"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match format {
        Format::Json => {
            for hit in &result.hits {
                writeln!(
                    out,
                    "{}",
                    hit.to_json(matches!(args.time_format, TimeFormat::Ns), query.order == SearchOrder::Relevance)
                )?;
            }
            if let Some(total) = result.total {
                writeln!(out, "{}", serde_json::json!({ "total": total }))?;
            }
        }
        Format::Csv | Format::Table => {
            let rows: Vec<Vec<String>> = result
                .hits
                .iter()
                .map(|hit| {
                    let mut text = hit.snippet.marked("**", "**");
                    if hit.snippet.truncated {
                        text.push('…');
                    }
                    if format == Format::Table {
                        text = text.replace(['\n', '\r'], " ");
                    }
                    vec![
                        args.time_format.format(hit.time),
                        hit.record_id.to_string(),
                        hit.key.kind().name().to_string(),
                        hit.key.tag("level").unwrap_or_default().to_string(),
                        hit.key.tag("logger_name").unwrap_or_default().to_string(),
                        text,
                    ]
                })
                .collect();
            if format == Format::Csv {
                output::csv_line(&mut out, &header)?;
                for row in &rows {
                    output::csv_line(&mut out, row)?;
                }
            } else {
                output::table(&mut out, &header, &rows)?;
            }
            if let Some(total) = result.total {
                out.flush()?;
                eprintln!("{} matches", output::count(total));
            }
        }
    }
    out.flush()?;
    if let Some(cursor) = &result.next_cursor {
        eprintln!("next page: --cursor {cursor}");
    }
    Ok(())
}

fn time_json(format: TimeFormat, ts: i64) -> serde_json::Value {
    match format {
        TimeFormat::Ns => ts.into(),
        TimeFormat::Rfc3339 => annals::time::format_rfc3339(ts).into(),
    }
}
