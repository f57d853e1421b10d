//! The dashboard and the period reports: what `annals demo` prints, `GET /history/dashboard`
//! answers and `GET /history/reports` renders, computed in one place over the query
//! engine.

use super::{DataQuery, DataType, History, Record};
use crate::error::{Error, Result};
use crate::model::{AlertState, FieldValue, LogLevel};
use crate::query::{QueryRow, QuerySpec};
use crate::time::{NANOS_PER_SECOND, format_rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;

const HOUR: i64 = 3600 * NANOS_PER_SECOND;
const DAY: i64 = 24 * HOUR;

/// A metric reading the dashboard shows per series (`cpu` / `usage_percent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The measurement.
    pub measurement: String,
    /// The field.
    pub field: String,
}

impl Reading {
    /// `measurement.field`.
    pub fn parse(text: &str) -> Result<Reading> {
        match text.split_once('.') {
            Some((m, f)) if !m.trim().is_empty() && !f.trim().is_empty() => Ok(Reading {
                measurement: m.trim().to_string(),
                field: f.trim().to_string(),
            }),
            _ => Err(Error::invalid(format!(
                "reading {text:?} is not measurement.field, e.g. cpu.usage_percent"
            ))),
        }
    }
}

/// What the dashboard covers.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardRequest {
    /// First included time (ns).
    pub from: i64,
    /// First excluded time (ns).
    pub to: i64,
    /// Readings whose latest value per series is listed; the first also gives the busiest
    /// periods. Default: `cpu.usage_percent`, `memory.used_percent`, `disk.used_percent`.
    pub readings: Vec<Reading>,
}

impl DashboardRequest {
    /// The default readings over `[from, to)`.
    pub fn new(from: i64, to: i64) -> DashboardRequest {
        let reading = |m: &str, f: &str| Reading {
            measurement: m.into(),
            field: f.into(),
        };
        DashboardRequest {
            from,
            to,
            readings: vec![
                reading("cpu", "usage_percent"),
                reading("memory", "used_percent"),
                reading("disk", "used_percent"),
            ],
        }
    }
}

/// The newest value of one series' reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestReading {
    /// The measurement.
    pub measurement: String,
    /// The field.
    pub field: String,
    /// The series' tags.
    pub tags: BTreeMap<String, String>,
    /// When, RFC 3339.
    pub time: String,
    /// The value.
    pub value: f64,
}

/// An hour in which one series of the first reading was high.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusyPeriod {
    /// The hour's start, RFC 3339.
    pub start: String,
    /// The series' `host` tag (empty without one).
    pub host: String,
    /// The reading's mean over the hour.
    pub mean: f64,
    /// Its maximum over the hour.
    pub max: f64,
}

/// Log records of one bucket, per level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelCounts {
    /// The bucket's start, RFC 3339.
    pub time: String,
    /// Records per level.
    pub counts: BTreeMap<String, u64>,
}

/// A recent error or critical log record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentError {
    /// When, RFC 3339.
    pub time: String,
    /// `ERROR` or `CRITICAL`.
    pub level: String,
    /// The logger.
    pub logger: String,
    /// The `host` tag, if any.
    pub host: Option<String>,
    /// The message.
    pub message: String,
}

/// Durations of one component's operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// The component.
    pub component: String,
    /// Samples.
    pub count: u64,
    /// Samples that reported errors (sum of `error_count`).
    pub errors: u64,
    /// Median duration, ms.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Longest, ms.
    pub max_ms: Option<f64>,
}

/// One answer with the store's state over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// Range start, RFC 3339.
    pub from: String,
    /// Range end (excluded), RFC 3339.
    pub to: String,
    /// The bucket of the timelines (`1h`, `1d`, ...).
    pub bucket: String,
    /// Newest value of each reading per series, in the range.
    pub latest: Vec<LatestReading>,
    /// The five hours with the highest mean of the first reading, per host.
    pub busiest: Vec<BusyPeriod>,
    /// Log records per level.
    pub logs_by_level: BTreeMap<String, u64>,
    /// Log records per level per bucket.
    pub log_timeline: Vec<LevelCounts>,
    /// The newest error and critical log records (at most 5).
    pub recent_errors: Vec<RecentError>,
    /// Alert events per level per bucket.
    pub alert_timeline: Vec<LevelCounts>,
    /// Alert events (raised, acknowledged, resolved) in the range.
    pub alert_events: u64,
    /// Alerts whose newest event is raised or acknowledged, newest first (at most 20),
    /// as `GET /history/alerts` shows them.
    pub open_alerts: Vec<serde_json::Value>,
    /// Operation durations per component.
    pub latency: Vec<Latency>,
}

/// A bucket giving a chart a few hundred points over `span` nanoseconds.
fn timeline_bucket(span: i64) -> &'static str {
    const CHOICES: [(&str, i64); 7] = [
        ("1m", 60 * NANOS_PER_SECOND),
        ("5m", 300 * NANOS_PER_SECOND),
        ("15m", 900 * NANOS_PER_SECOND),
        ("1h", HOUR),
        ("6h", 6 * HOUR),
        ("1d", DAY),
        ("week", 7 * DAY),
    ];
    CHOICES
        .iter()
        .find(|(_, width)| span / width <= 400)
        .map_or("week", |(name, _)| name)
}

/// The rows of a query written as parameters, with its tag and value column names.
struct Table {
    tag_columns: Vec<String>,
    rows: Vec<QueryRow>,
}

impl Table {
    fn tag(&self, row: &QueryRow, name: &str) -> Option<String> {
        let i = self.tag_columns.iter().position(|c| c == name)?;
        row.tags.get(i).cloned().flatten()
    }

    fn tags(&self, row: &QueryRow) -> BTreeMap<String, String> {
        self.tag_columns
            .iter()
            .zip(row.tags.iter())
            .filter_map(|(name, value)| value.clone().map(|v| (name.clone(), v)))
            .collect()
    }
}

fn number(value: Option<&Option<FieldValue>>) -> Option<f64> {
    value.and_then(|v| v.as_ref()).and_then(FieldValue::as_f64)
}

fn whole(value: Option<&Option<FieldValue>>) -> u64 {
    number(value).map_or(0, |n| n.max(0.0) as u64)
}

impl History {
    fn table(&self, snapshot: &crate::Snapshot, pairs: &[(&str, &str)]) -> Result<Table> {
        let query = QuerySpec::from_pairs(pairs.iter().copied())?.to_query(0)?;
        let result = snapshot.query(&query)?;
        let tag_columns = result.tag_columns.clone();
        let (rows, _) = result.collect_rows()?;
        Ok(Table { tag_columns, rows })
    }

    /// The dashboard of `[from, to)`: latest readings per series, the busiest hours, log
    /// counts by level (whole and over time), recent errors, alerts, and operation latency
    /// per component. Everything is read from one snapshot.
    ///
    /// ```
    /// use annals::history::{DashboardRequest, History};
    /// use annals::{LogEntry, LogLevel, Options};
    /// let dir = tempfile::tempdir().unwrap();
    /// let history = History::open(dir.path(), Options::default()).unwrap();
    /// let log = |level, message: &str| LogEntry {
    ///     timestamp: 1_700_000_000_000_000_000,
    ///     level,
    ///     logger_name: "db".into(),
    ///     message: message.into(),
    ///     module: None,
    ///     function_name: None,
    ///     line_number: None,
    ///     thread_id: None,
    ///     process_id: None,
    ///     extra_data: Default::default(),
    ///     tags: Default::default(),
    /// };
    /// history.store_logs(&[log(LogLevel::Info, "up"), log(LogLevel::Error, "connection lost")]).unwrap();
    /// let board = history.dashboard(&DashboardRequest::new(0, i64::MAX)).unwrap();
    /// assert_eq!(board.logs_by_level["ERROR"], 1);
    /// assert_eq!(board.recent_errors[0].message, "connection lost");
    /// ```
    pub fn dashboard(&self, request: &DashboardRequest) -> Result<Dashboard> {
        if request.from >= request.to {
            return Err(Error::invalid(format!(
                "the dashboard's range is empty: from {} is not before to {}",
                format_rfc3339(request.from),
                format_rfc3339(request.to)
            )));
        }
        let snapshot = self.engine.snapshot();
        let (from, to) = (request.from.to_string(), request.to.to_string());
        let range = [("from", from.as_str()), ("to", to.as_str())];
        let with_range =
            |pairs: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> { pairs.iter().copied().chain(range.iter().copied()).collect() };
        let bucket = timeline_bucket(request.to.saturating_sub(request.from));

        let mut latest = Vec::new();
        for reading in &request.readings {
            let mut pairs = with_range(&[("kind", "metric"), ("lastpoint", "true")]);
            pairs.extend([("measurement", reading.measurement.as_str()), ("field", reading.field.as_str())]);
            let table = self.table(&snapshot, &pairs)?;
            for row in &table.rows {
                let (Some(time), Some(value)) = (row.time, number(row.values.first())) else {
                    continue;
                };
                latest.push(LatestReading {
                    measurement: reading.measurement.clone(),
                    field: reading.field.clone(),
                    tags: table.tags(row),
                    time: format_rfc3339(time),
                    value,
                });
            }
        }

        let mut busiest = Vec::new();
        if let Some(first) = request.readings.first() {
            let aggregates = format!("mean({0}),max({0})", first.field);
            let mut pairs = with_range(&[("kind", "metric"), ("every", "1h"), ("group_by", "host")]);
            pairs.extend([("measurement", first.measurement.as_str()), ("agg", aggregates.as_str())]);
            let table = self.table(&snapshot, &pairs)?;
            for row in &table.rows {
                if let (Some(time), Some(mean), Some(max)) = (row.time, number(row.values.first()), number(row.values.get(1))) {
                    busiest.push(BusyPeriod {
                        start: format_rfc3339(time),
                        host: table.tag(row, "host").unwrap_or_default(),
                        mean,
                        max,
                    });
                }
            }
            busiest.sort_by(|a, b| b.mean.total_cmp(&a.mean).then_with(|| a.start.cmp(&b.start)));
            busiest.truncate(5);
        }

        let level_counts =
            |measurement: &'static str, kind: &'static str, every: Option<&str>| -> Result<Vec<(Option<i64>, String, u64)>> {
                let mut pairs = with_range(&[("agg", "count(*)"), ("group_by", "level")]);
                pairs.extend([("measurement", measurement), ("kind", kind)]);
                if let Some(every) = every {
                    pairs.push(("every", every));
                }
                let table = self.table(&snapshot, &pairs)?;
                Ok(table
                    .rows
                    .iter()
                    .map(|row| (row.time, table.tag(row, "level").unwrap_or_default(), whole(row.values.first())))
                    .filter(|(_, _, n)| *n > 0)
                    .collect())
            };
        let timeline = |counts: Vec<(Option<i64>, String, u64)>| -> Vec<LevelCounts> {
            let mut by_time: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
            for (time, level, n) in counts {
                *by_time.entry(time.unwrap_or(request.from)).or_default().entry(level).or_default() += n;
            }
            by_time
                .into_iter()
                .map(|(t, counts)| LevelCounts {
                    time: format_rfc3339(t),
                    counts,
                })
                .collect()
        };
        let mut logs_by_level = BTreeMap::new();
        for (_, level, n) in level_counts("log", "log", None)? {
            *logs_by_level.entry(level).or_default() += n;
        }
        let log_timeline = timeline(level_counts("log", "log", Some(bucket))?);
        let alert_counts = level_counts("alert", "alert", Some(bucket))?;
        let alert_events = alert_counts.iter().map(|(_, _, n)| n).sum();
        let alert_timeline = timeline(alert_counts);

        let errors = self.query_data(&DataQuery {
            start_time: Some(request.from),
            end_time: Some(request.to),
            data_types: vec![DataType::Logs],
            levels: vec![LogLevel::Error, LogLevel::Critical],
            limit: 5,
            ..DataQuery::default()
        })?;
        let recent_errors = errors
            .rows
            .into_iter()
            .filter_map(|record| match record {
                Record::Log(log) => Some(RecentError {
                    time: format_rfc3339(log.timestamp),
                    level: log.level.as_str().to_string(),
                    logger: log.logger_name,
                    host: log.tags.get("host").cloned(),
                    message: log.message,
                }),
                _ => None,
            })
            .collect();

        let open_alerts = self
            .alerts(&[AlertState::Raised, AlertState::Acknowledged], 20)?
            .iter()
            .map(|a| a.to_json())
            .collect();

        let table = self.table(
            &snapshot,
            &with_range(&[
                ("measurement", "performance"),
                ("kind", "performance"),
                ("group_by", "component"),
                (
                    "agg",
                    "count(*),sum(error_count),p50(duration_ms),p90(duration_ms),p99(duration_ms),max(duration_ms)",
                ),
            ]),
        )?;
        let latency = table
            .rows
            .iter()
            .map(|row| Latency {
                component: table.tag(row, "component").unwrap_or_default(),
                count: whole(row.values.first()),
                errors: whole(row.values.get(1)),
                p50_ms: number(row.values.get(2)),
                p90_ms: number(row.values.get(3)),
                p99_ms: number(row.values.get(4)),
                max_ms: number(row.values.get(5)),
            })
            .filter(|l| l.count > 0)
            .collect();

        Ok(Dashboard {
            from: format_rfc3339(request.from),
            to: format_rfc3339(request.to),
            bucket: bucket.to_string(),
            latest,
            busiest,
            logs_by_level,
            log_timeline,
            recent_errors,
            alert_timeline,
            alert_events,
            open_alerts,
            latency,
        })
    }

    /// The report of the `period` ending at `end` (ns): its dashboard, the same figures of
    /// the period before it, and their changes.
    pub fn report(&self, period: ReportPeriod, end: i64) -> Result<Report> {
        let length = period.length();
        let start = end.saturating_sub(length);
        let current = self.dashboard(&DashboardRequest::new(start, end))?;
        let previous = self.dashboard(&DashboardRequest::new(start.saturating_sub(length), start))?;
        let logs = |d: &Dashboard| d.logs_by_level.values().sum::<u64>();
        let errors = |d: &Dashboard| {
            ["ERROR", "CRITICAL"]
                .iter()
                .map(|l| d.logs_by_level.get(*l).copied().unwrap_or(0))
                .sum::<u64>()
        };
        let change = |name: &str, now: f64, before: f64| Change {
            measure: name.to_string(),
            previous: before,
            current: now,
            ratio: (before != 0.0).then(|| now / before),
        };
        let mut changes = vec![
            change("log records", logs(&current) as f64, logs(&previous) as f64),
            change("error and critical log records", errors(&current) as f64, errors(&previous) as f64),
            change("alert events", current.alert_events as f64, previous.alert_events as f64),
        ];
        for latency in &current.latency {
            let before = previous.latency.iter().find(|l| l.component == latency.component);
            if let (Some(now), Some(then)) = (latency.p99_ms, before.and_then(|b| b.p99_ms)) {
                changes.push(change(&format!("{} p99 ms", latency.component), now, then));
            }
        }
        Ok(Report {
            period: period.name().to_string(),
            generated: format_rfc3339(crate::time::now_ns()),
            current,
            previous,
            changes,
        })
    }
}

/// The period of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPeriod {
    /// The 24 hours before the end.
    Day,
    /// The 7 days before the end.
    Week,
}

impl ReportPeriod {
    /// `day` or `week`.
    pub fn parse(text: &str) -> Result<ReportPeriod> {
        match text {
            "day" => Ok(ReportPeriod::Day),
            "week" => Ok(ReportPeriod::Week),
            other => Err(Error::invalid(format!("period {other:?} is not day or week"))),
        }
    }

    /// `day` or `week`.
    pub fn name(self) -> &'static str {
        match self {
            ReportPeriod::Day => "day",
            ReportPeriod::Week => "week",
        }
    }

    fn length(self) -> i64 {
        match self {
            ReportPeriod::Day => DAY,
            ReportPeriod::Week => 7 * DAY,
        }
    }
}

/// One figure of a report beside the period before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What is measured.
    pub measure: String,
    /// Its value in the period before.
    pub previous: f64,
    /// Its value in the period.
    pub current: f64,
    /// current / previous; `None` when previous is 0.
    pub ratio: Option<f64>,
}

/// A generated report of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `day` or `week`.
    pub period: String,
    /// When it was generated, RFC 3339.
    pub generated: String,
    /// The period's dashboard.
    pub current: Dashboard,
    /// The period before's dashboard.
    pub previous: Dashboard,
    /// The main figures side by side.
    pub changes: Vec<Change>,
}

impl Report {
    /// The report as one self-contained HTML page (no script, no external resource).
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let d = &self.current;
        page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        page.push_str(&format!("<title>annals report: {} to {}</title>", escape(&d.from), escape(&d.to)));
        page.push_str(
            "<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}\
             td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
             h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}</style></head><body>\n",
        );
        page.push_str(&format!(
            "<h1>annals {} report</h1><p>{} to {} (generated {})</p>\n",
            escape(&self.period),
            escape(&d.from),
            escape(&d.to),
            escape(&self.generated)
        ));
        let cell = |v: Option<f64>| v.map_or(String::from("—"), |v| format!("{v:.2}"));
        html_table(
            &mut page,
            "Against the period before",
            &["measure", "before", "now", "ratio"],
            self.changes.iter().map(|c| {
                vec![
                    escape(&c.measure),
                    format!("{:.2}", c.previous),
                    format!("{:.2}", c.current),
                    cell(c.ratio),
                ]
            }),
        );
        html_table(
            &mut page,
            "Latest readings",
            &["measurement", "field", "tags", "time", "value"],
            d.latest.iter().map(|r| {
                let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                vec![
                    escape(&r.measurement),
                    escape(&r.field),
                    escape(&tags.join(" ")),
                    escape(&r.time),
                    format!("{:.2}", r.value),
                ]
            }),
        );
        html_table(
            &mut page,
            "Busiest hours",
            &["hour", "host", "mean", "max"],
            d.busiest
                .iter()
                .map(|b| vec![escape(&b.start), escape(&b.host), format!("{:.2}", b.mean), format!("{:.2}", b.max)]),
        );
        html_table(
            &mut page,
            "Log records by level",
            &["level", "records"],
            d.logs_by_level.iter().map(|(l, n)| vec![escape(l), n.to_string()]),
        );
        html_table(
            &mut page,
            "Recent errors",
            &["time", "level", "logger", "host", "message"],
            d.recent_errors.iter().map(|e| {
                vec![
                    escape(&e.time),
                    escape(&e.level),
                    escape(&e.logger),
                    escape(e.host.as_deref().unwrap_or("")),
                    escape(&e.message),
                ]
            }),
        );
        html_table(
            &mut page,
            "Open alerts",
            &["since", "alert", "state", "level", "title"],
            d.open_alerts.iter().map(|a| {
                let text = |k: &str| escape(a[k].as_str().unwrap_or(""));
                vec![text("timestamp"), text("alert_id"), text("state"), text("level"), text("title")]
            }),
        );
        html_table(
            &mut page,
            "Operation latency by component (ms)",
            &["component", "samples", "errors", "p50", "p90", "p99", "max"],
            d.latency.iter().map(|l| {
                vec![
                    escape(&l.component),
                    l.count.to_string(),
                    l.errors.to_string(),
                    cell(l.p50_ms),
                    cell(l.p90_ms),
                    cell(l.p99_ms),
                    cell(l.max_ms),
                ]
            }),
        );
        page.push_str("</body></html>\n");
        page
    }
}

fn html_table(page: &mut String, title: &str, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    page.push_str(&format!("<h2>{}</h2>\n<table><tr>", escape(title)));
    for h in header {
        page.push_str(&format!("<th>{}</th>", escape(h)));
    }
    page.push_str("</tr>\n");
    let mut any = false;
    for row in rows {
        any = true;
        page.push_str("<tr>");
        for cell in row {
            let numeric = !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-');
            page.push_str(if numeric { "<td class=\"n\">" } else { "<td>" });
            page.push_str(&cell);
            page.push_str("</td>");
        }
        page.push_str("</tr>\n");
    }
    if !any {
        page.push_str(&format!("<tr><td colspan=\"{}\">none</td></tr>\n", header.len()));
    }
    page.push_str("</table>\n");
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_give_charts_a_few_hundred_points() {
        assert_eq!(timeline_bucket(3 * HOUR), "1m");
        assert_eq!(timeline_bucket(DAY), "5m");
        assert_eq!(timeline_bucket(30 * DAY), "6h");
        assert_eq!(timeline_bucket(365 * DAY), "1d");
    }

    #[test]
    fn html_escapes_what_it_is_given() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let mut page = String::new();
        html_table(&mut page, "t", &["a"], vec![vec![escape("<script>")]].into_iter());
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"), "{page}");
    }

    #[test]
    fn readings_and_periods_parse() {
        assert_eq!(
            Reading::parse("cpu.usage_percent").unwrap(),
            Reading {
                measurement: "cpu".into(),
                field: "usage_percent".into()
            }
        );
        assert!(matches!(Reading::parse("cpu"), Err(Error::InvalidInput { .. })));
        assert_eq!(ReportPeriod::parse("week").unwrap(), ReportPeriod::Week);
        match ReportPeriod::parse("month") {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("day or week"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
