//! The history facade: the original design's `HistoryDataManager` as a typed embedded API
//! over [`Engine`] and the query engine.
//!
//! ```
//! use annals::history::{DataQuery, DataType, History, Record};
//! use annals::{LogEntry, LogLevel, Options};
//! let dir = tempfile::tempdir().unwrap();
//! let history = History::open(dir.path(), Options::default()).unwrap();
//! let log = LogEntry {
//!     timestamp: 1_700_000_000_000_000_000,
//!     level: LogLevel::Error,
//!     logger_name: "db".into(),
//!     message: "connection lost".into(),
//!     module: None,
//!     function_name: None,
//!     line_number: None,
//!     thread_id: None,
//!     process_id: None,
//!     extra_data: Default::default(),
//!     tags: Default::default(),
//! };
//! history.store_logs(&[log.clone()]).unwrap();
//! let answer = history
//!     .query_data(&DataQuery { data_types: vec![DataType::Logs], levels: vec![LogLevel::Error], ..DataQuery::default() })
//!     .unwrap();
//! assert_eq!(answer.rows, vec![Record::Log(log)]);
//! assert_eq!(answer.total_count, Some(1));
//! ```

mod commits;
#[cfg(feature = "git")]
mod git;
mod report;
mod table;
mod trends;
mod verify;
mod watch;

pub use commits::{CommitPage, CommitQuery, DiffStorage, FileDiffs, StoredCommit, StoredDiff};
#[cfg(feature = "git")]
pub use git::{ImportOptions, ImportProgress, ImportReport};
pub use report::{
    BusyPeriod, Change, Dashboard, DashboardRequest, Latency, LatestReading, LevelCounts, Reading, RecentError, Report, ReportPeriod,
};
pub use table::{RecordTable, TableColumn, TableValues};
pub use verify::verify_store;
pub use watch::{TrendWatcher, WatchOptions, WatchStats};

use crate::engine::{Engine, StoreStats, WriteReceipt};
use crate::error::{Error, Result};
use crate::index::TagPredicate;
use crate::model::kinds::{ALERT_MEASUREMENT, LOG_MEASUREMENT, PERFORMANCE_MEASUREMENT};
use crate::model::{
    AlertEvent, AlertState, Batch, FieldValue, LogEntry, LogLevel, Metadata, MetricData, PerformanceData, SeriesKey, SeriesKind,
};
use crate::options::Options;
use crate::query::{Aggregate, Query, QueryRow, SearchOrder, SearchQuery};
use crate::read::Order;
use crate::scan::SeriesSelector;
use crate::time::TimeRange;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One stored record, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A metric reading.
    Metric(MetricData),
    /// A performance sample.
    Performance(PerformanceData),
    /// A log record.
    Log(LogEntry),
    /// An alert event.
    Alert(AlertEvent),
}

impl Record {
    /// Nanoseconds since the epoch.
    pub fn timestamp(&self) -> i64 {
        match self {
            Record::Metric(m) => m.timestamp,
            Record::Performance(p) => p.timestamp,
            Record::Log(l) => l.timestamp,
            Record::Alert(a) => a.timestamp,
        }
    }

    /// The record as JSON with the keys of its JSON line (`kind` included), the timestamp
    /// in RFC 3339, optional keys null when absent.
    pub fn to_json(&self) -> serde_json::Value {
        let time = |t: i64| serde_json::Value::from(crate::time::format_rfc3339(t));
        let values = |m: &crate::model::Metadata| -> serde_json::Map<String, serde_json::Value> {
            m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()
        };
        match self {
            Record::Metric(m) => serde_json::json!({
                "kind": "metric", "timestamp": time(m.timestamp), "metric_type": m.metric_type,
                "metric_name": m.metric_name, "value": m.value, "unit": m.unit, "tags": m.tags,
            }),
            Record::Performance(p) => serde_json::json!({
                "kind": "performance", "timestamp": time(p.timestamp), "component": p.component,
                "operation": p.operation, "duration_ms": p.duration_ms, "throughput": p.throughput,
                "efficiency_percent": p.efficiency_percent, "error_count": p.error_count,
                "metadata": values(&p.metadata), "tags": p.tags,
            }),
            Record::Log(l) => serde_json::json!({
                "kind": "log", "timestamp": time(l.timestamp), "level": l.level.as_str(),
                "logger_name": l.logger_name, "message": l.message, "module": l.module,
                "function_name": l.function_name, "line_number": l.line_number,
                "thread_id": l.thread_id, "process_id": l.process_id,
                "extra_data": values(&l.extra_data), "tags": l.tags,
            }),
            Record::Alert(a) => {
                let mut json = a.to_json();
                if let Some(map) = json.as_object_mut() {
                    map.insert("kind".into(), "alert".into());
                }
                json
            }
        }
    }

    fn add_to(&self, batch: &mut Batch) -> Result<()> {
        match self {
            Record::Metric(m) => batch.add_metric(m),
            Record::Performance(p) => batch.add_performance(p),
            Record::Log(l) => batch.add_log(l),
            Record::Alert(a) => batch.add_alert(a),
        }
    }
}

/// The record kinds of [`DataQuery::data_types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Metric readings.
    Metrics,
    /// Performance samples.
    Performance,
    /// Log records.
    Logs,
    /// Alert events.
    Alerts,
}

impl DataType {
    /// Parses `metrics`, `performance`, `logs`, `alerts`.
    pub fn parse(text: &str) -> Result<DataType> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "metrics" | "metric" => DataType::Metrics,
            "performance" => DataType::Performance,
            "logs" | "log" => DataType::Logs,
            "alerts" | "alert" => DataType::Alerts,
            other => {
                return Err(Error::invalid(format!(
                    "unknown data type {other:?} (metrics, performance, logs, alerts)"
                )));
            }
        })
    }

    /// `metrics`, `performance`, `logs` or `alerts`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Metrics => "metrics",
            DataType::Performance => "performance",
            DataType::Logs => "logs",
            DataType::Alerts => "alerts",
        }
    }

    fn kind(self) -> SeriesKind {
        match self {
            DataType::Metrics => SeriesKind::Metric,
            DataType::Performance => SeriesKind::Performance,
            DataType::Logs => SeriesKind::Log,
            DataType::Alerts => SeriesKind::Alert,
        }
    }
}

/// What [`History::query_data`] returns rows of (the original `DataQuery`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataQuery {
    /// First included time (ns).
    pub start_time: Option<i64>,
    /// First excluded time (ns).
    pub end_time: Option<i64>,
    /// Kinds to return; empty for all.
    pub data_types: Vec<DataType>,
    /// Levels of logs and alerts to return; empty for all.
    pub levels: Vec<LogLevel>,
    /// Components of performance samples to return; empty for all.
    pub components: Vec<String>,
    /// Only logs and alerts whose message, title or description match this full-text
    /// query (words, `"phrases"`, `AND`/`OR`/`NOT`, `prefix*`; see
    /// [`crate::text::query`]), ignoring case. Answered by the text index.
    pub search_text: Option<String>,
    /// Rows per page, 1..=1000 (default 100).
    pub limit: usize,
    /// Rows to skip.
    pub offset: usize,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
    /// Newest first (default) or oldest first.
    pub order_desc: bool,
}

impl Default for DataQuery {
    fn default() -> Self {
        DataQuery {
            start_time: None,
            end_time: None,
            data_types: Vec::new(),
            levels: Vec::new(),
            components: Vec::new(),
            search_text: None,
            limit: 100,
            offset: 0,
            cursor: None,
            order_desc: true,
        }
    }
}

/// A page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct DataResponse {
    /// The records, in the requested order. A metric row with several fields yields one
    /// record per field.
    pub rows: Vec<Record>,
    /// Rows matching the query in all (from block statistics, or from the text index with
    /// `search_text`).
    pub total_count: Option<u64>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// The typed history API over an [`Engine`].
#[derive(Debug)]
pub struct History {
    engine: Engine,
}

impl AsRef<Engine> for History {
    fn as_ref(&self) -> &Engine {
        &self.engine
    }
}

impl History {
    /// Opens the store in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<History> {
        Ok(History::from_engine(Engine::open(dir, options)?))
    }

    /// Wraps an open engine.
    pub fn from_engine(engine: Engine) -> History {
        History { engine }
    }

    /// Diffs above the inline limit.
    fn objects(&self) -> &crate::objects::Objects {
        self.engine.objects()
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Subscribes to the store's events ([`crate::events`]): those `filter` takes, in a
    /// queue of [`History::DEFAULT_EVENT_QUEUE`] events that drops its oldest when the
    /// subscriber falls behind (its next receive is then a `lagged` event).
    ///
    /// ```
    /// use annals::events::{Event, EventFilter};
    /// use annals::history::History;
    /// use annals::{MetricData, Options};
    /// let dir = tempfile::tempdir().unwrap();
    /// let history = History::open(dir.path(), Options::default()).unwrap();
    /// let events = history.subscribe(EventFilter::default());
    /// let reading = MetricData {
    ///     timestamp: 1_700_000_000_000_000_000,
    ///     metric_type: "cpu".into(),
    ///     metric_name: "usage_percent".into(),
    ///     value: 42.0,
    ///     unit: None,
    ///     tags: Default::default(),
    /// };
    /// history.store_metrics(&[reading]).unwrap();
    /// match events.try_recv() {
    ///     Some(Event::HistoryDataUpdated(update)) => assert_eq!((update.rows, update.measurements), (1, vec!["cpu".to_string()])),
    ///     other => panic!("expected a data event, got {other:?}"),
    /// }
    /// ```
    pub fn subscribe(&self, filter: crate::events::EventFilter) -> crate::events::Subscription {
        self.engine.subscribe(filter, Self::DEFAULT_EVENT_QUEUE)
    }

    /// Events a subscription of [`History::subscribe`] holds before it drops the oldest.
    pub const DEFAULT_EVENT_QUEUE: usize = 1024;

    /// Flushes and closes.
    pub fn close(self) -> Result<()> {
        self.engine.close()
    }

    fn store<T>(&self, items: &[T], add: impl Fn(&mut Batch, &T) -> Result<()>) -> Result<WriteReceipt> {
        let mut batch = Batch::new();
        for item in items {
            add(&mut batch, item)?;
        }
        self.engine.write(&batch)
    }

    /// Stores metric readings, all or none.
    pub fn store_metrics(&self, metrics: &[MetricData]) -> Result<WriteReceipt> {
        self.store(metrics, Batch::add_metric)
    }

    /// Stores performance samples, all or none.
    pub fn store_performance_data(&self, samples: &[PerformanceData]) -> Result<WriteReceipt> {
        self.store(samples, Batch::add_performance)
    }

    /// Stores log records, all or none.
    pub fn store_logs(&self, logs: &[LogEntry]) -> Result<WriteReceipt> {
        self.store(logs, Batch::add_log)
    }

    /// Stores an alert event (usually `Raised`).
    pub fn store_alert(&self, alert: &AlertEvent) -> Result<WriteReceipt> {
        self.store(std::slice::from_ref(alert), Batch::add_alert)
    }

    /// Stores records of any kinds in one write: all or none.
    pub fn store_batch(&self, records: &[Record]) -> Result<WriteReceipt> {
        self.store(records, |batch, r| r.add_to(batch))
    }

    /// The newest event of an alert.
    pub fn alert(&self, alert_id: &str) -> Result<Option<AlertEvent>> {
        let mut found = None;
        self.alert_events_newest_first(|event| {
            if event.alert_id == alert_id {
                found = Some(event);
            }
            found.is_some()
        })?;
        Ok(found)
    }

    /// The newest event of every alert, newest first: all alerts, or only those whose
    /// newest event is in `states` (open alerts: `[Raised, Acknowledged]`). At most
    /// `limit`, 1..=10,000.
    pub fn alerts(&self, states: &[AlertState], limit: usize) -> Result<Vec<AlertEvent>> {
        if !(1..=10_000).contains(&limit) {
            return Err(Error::invalid(format!("limit {limit} is outside 1..=10000")));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        self.alert_events_newest_first(|event| {
            // The first event seen of an alert is its newest.
            if seen.insert(event.alert_id.clone()) && (states.is_empty() || states.contains(&event.state)) {
                out.push(event);
            }
            out.len() == limit
        })?;
        Ok(out)
    }

    /// The events of an alert's latest raising, newest first: each acknowledgement and
    /// resolution since, then the raising itself (empty when the alert is unknown).
    pub fn alert_events(&self, alert_id: &str) -> Result<Vec<AlertEvent>> {
        let mut events = Vec::new();
        self.alert_events_newest_first(|event| {
            if event.alert_id == alert_id {
                let raised = event.state == AlertState::Raised;
                events.push(event);
                return raised;
            }
            false
        })?;
        Ok(events)
    }

    /// Hands every alert event to `visit`, newest first, until it returns true.
    fn alert_events_newest_first(&self, mut visit: impl FnMut(AlertEvent) -> bool) -> Result<()> {
        let query = Query {
            selector: SeriesSelector::measurement(ALERT_MEASUREMENT).with_kind(SeriesKind::Alert),
            order: Order::Descending,
            ..Query::default()
        };
        let snapshot = self.engine.snapshot();
        let result = snapshot.query(&query)?;
        let columns = result.value_columns.clone();
        for row in result {
            let row = row?;
            let Some(key) = row.series.and_then(|id| snapshot.series_key(id)) else {
                continue;
            };
            let fields = named_values(&columns, &row);
            if let Some(event) = alert_from(&key, row.time.unwrap_or_default(), &fields)
                && visit(event)
            {
                break;
            }
        }
        Ok(())
    }

    fn append_state(&self, alert_id: &str, state: AlertState, at: i64) -> Result<bool> {
        let Some(mut event) = self.alert(alert_id)? else { return Ok(false) };
        event.state = state;
        event.timestamp = at;
        self.store_alert(&event)?;
        Ok(true)
    }

    /// Appends an `Acknowledged` event at `at`; false when the alert is unknown.
    pub fn acknowledge_alert(&self, alert_id: &str, at: i64) -> Result<bool> {
        self.append_state(alert_id, AlertState::Acknowledged, at)
    }

    /// Appends a `Resolved` event at `at`; false when the alert is unknown.
    pub fn resolve_alert(&self, alert_id: &str, at: i64) -> Result<bool> {
        self.append_state(alert_id, AlertState::Resolved, at)
    }

    /// Sizes and counts of the store.
    pub fn storage_stats(&self) -> Result<StoreStats> {
        self.engine.stats()
    }

    /// Records of the chosen kinds, levels and components in a time range, a page at a time.
    pub fn query_data(&self, request: &DataQuery) -> Result<DataResponse> {
        if !(1..=1000).contains(&request.limit) {
            return Err(Error::invalid(format!("limit {} is outside 1..=1000", request.limit)));
        }
        let types = if request.data_types.is_empty() {
            vec![DataType::Metrics, DataType::Performance, DataType::Logs, DataType::Alerts]
        } else {
            request.data_types.clone()
        };
        let Some(selector) = kinds_selector(request, &types) else {
            return Ok(DataResponse {
                rows: Vec::new(),
                total_count: Some(0),
                next_cursor: None,
            });
        };
        let range = TimeRange::new(request.start_time.unwrap_or(i64::MIN), request.end_time.unwrap_or(i64::MAX));
        let snapshot = self.engine.snapshot();
        let query = Query {
            selector: selector.clone(),
            range,
            order: if request.order_desc { Order::Descending } else { Order::Ascending },
            limit: Some(request.limit),
            offset: request.offset,
            cursor: request.cursor.clone(),
            ..Query::default()
        };
        if let Some(text) = &request.search_text {
            return search_page(&snapshot, request, text, selector, range);
        }
        let mut result = snapshot.query(&query)?;
        let columns = result.value_columns.clone();
        let mut rows = Vec::new();
        for row in result.by_ref() {
            let row = row?;
            let Some(key) = row.series.and_then(|id| snapshot.series_key(id)) else {
                continue;
            };
            let fields = named_values(&columns, &row);
            rows.extend(records_from(&key, row.time.unwrap_or_default(), &fields));
        }
        let next_cursor = result.next_cursor().map(str::to_owned);
        let count = Query {
            selector,
            range,
            aggregates: vec![Aggregate::count_rows()],
            ..Query::default()
        };
        let (counted, _) = snapshot.query(&count)?.collect_rows()?;
        let total_count = Some(
            counted
                .first()
                .and_then(|r| r.values.first().cloned().flatten())
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0) as u64,
        );
        Ok(DataResponse {
            rows,
            total_count,
            next_cursor,
        })
    }
}

/// The series of `types` that `request`'s level and component filters keep (with
/// `search_text`, only the kinds that hold text); `None` when no kind is left.
fn kinds_selector(request: &DataQuery, types: &[DataType]) -> Option<SeriesSelector> {
    let texts_only = request.search_text.is_some();
    let levels: Vec<String> = request.levels.iter().map(|l| l.as_str().to_string()).collect();
    let alternatives: Vec<TagPredicate> = types
        .iter()
        .filter(|t| !texts_only || matches!(t, DataType::Logs | DataType::Alerts))
        .map(|t| {
            let mut all = vec![TagPredicate::Kind(t.kind())];
            match t {
                DataType::Logs | DataType::Alerts if !levels.is_empty() => all.push(TagPredicate::In("level".into(), levels.clone())),
                DataType::Performance if !request.components.is_empty() => {
                    all.push(TagPredicate::In("component".into(), request.components.clone()))
                }
                _ => {}
            }
            TagPredicate::all(all).unwrap_or(TagPredicate::Kind(t.kind()))
        })
        .collect();
    if alternatives.is_empty() {
        return None;
    }
    Some(SeriesSelector {
        predicate: Some(TagPredicate::Or(alternatives)),
        ..SeriesSelector::default()
    })
}

/// A page of [`History::query_data`] with `search_text`, answered by the full-text index.
fn search_page(
    snapshot: &crate::engine::Snapshot,
    request: &DataQuery,
    text: &str,
    selector: SeriesSelector,
    range: TimeRange,
) -> Result<DataResponse> {
    let search = SearchQuery {
        text: text.to_string(),
        selector,
        range,
        order: if request.order_desc {
            SearchOrder::Newest
        } else {
            SearchOrder::Oldest
        },
        // A cursor continues a page; an offset skips hits of the first page.
        limit: if request.cursor.is_some() {
            request.limit
        } else {
            request.offset.saturating_add(request.limit)
        },
        cursor: request.cursor.clone(),
        count_total: true,
    };
    let found = snapshot.search(&search)?;
    let skip = if request.cursor.is_some() { 0 } else { request.offset };
    let mut rows = Vec::new();
    for hit in found.hits.iter().skip(skip) {
        let fields: Vec<(&str, FieldValue)> = hit.fields.iter().map(|(n, v)| (&**n, v.clone())).collect();
        rows.extend(records_from(&hit.key, hit.time, &fields));
    }
    Ok(DataResponse {
        rows,
        total_count: found.total,
        next_cursor: found.next_cursor,
    })
}

fn named_values<'a>(columns: &'a [String], row: &QueryRow) -> Vec<(&'a str, FieldValue)> {
    columns
        .iter()
        .zip(&row.values)
        .filter_map(|(c, v)| v.clone().map(|v| (c.as_str(), v)))
        .collect()
}

fn text(fields: &[(&str, FieldValue)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn float(fields: &[(&str, FieldValue)], name: &str) -> Option<f64> {
    fields.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_f64())
}

fn integer(fields: &[(&str, FieldValue)], name: &str) -> Option<i64> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::I64(i) if *n == name => Some(*i),
        _ => None,
    })
}

fn prefixed(fields: &[(&str, FieldValue)], prefix: &str) -> Metadata {
    fields
        .iter()
        .filter_map(|(n, v)| {
            n.strip_prefix(prefix)
                .and_then(|k| k.strip_prefix('.'))
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect()
}

fn other_tags(key: &SeriesKey, typed: &[&str]) -> BTreeMap<String, String> {
    key.tags().iter().filter(|(k, _)| !typed.contains(&k.as_str())).cloned().collect()
}

fn alert_from(key: &Arc<SeriesKey>, timestamp: i64, fields: &[(&str, FieldValue)]) -> Option<AlertEvent> {
    Some(AlertEvent {
        timestamp,
        alert_id: text(fields, "alert_id")?,
        state: AlertState::parse(&text(fields, "state")?).ok()?,
        level: LogLevel::parse(key.tag("level")?).ok()?,
        category: key.tag("category")?.to_string(),
        title: text(fields, "title").unwrap_or_default(),
        description: text(fields, "description"),
        source_component: key.tag("source_component").map(str::to_owned),
        metadata: prefixed(fields, "metadata"),
    })
}

/// The typed records of one stored row (the inverse of the front doors' mapping).
fn records_from(key: &Arc<SeriesKey>, timestamp: i64, fields: &[(&str, FieldValue)]) -> Vec<Record> {
    match key.kind() {
        SeriesKind::Metric => {
            let tags = other_tags(key, &["unit"]);
            fields
                .iter()
                .filter_map(|(name, v)| {
                    Some(Record::Metric(MetricData {
                        timestamp,
                        metric_type: key.measurement().to_string(),
                        metric_name: name.to_string(),
                        value: v.as_f64()?,
                        unit: key.tag("unit").map(str::to_owned),
                        tags: tags.clone(),
                    }))
                })
                .collect()
        }
        SeriesKind::Performance if key.measurement() == PERFORMANCE_MEASUREMENT => vec![Record::Performance(PerformanceData {
            timestamp,
            component: key.tag("component").unwrap_or_default().to_string(),
            operation: key.tag("operation").unwrap_or_default().to_string(),
            duration_ms: float(fields, "duration_ms"),
            throughput: float(fields, "throughput"),
            efficiency_percent: float(fields, "efficiency_percent"),
            error_count: integer(fields, "error_count").unwrap_or(0),
            metadata: prefixed(fields, "metadata"),
            tags: other_tags(key, &["component", "operation"]),
        })],
        SeriesKind::Log if key.measurement() == LOG_MEASUREMENT => {
            let Some(level) = key.tag("level").and_then(|l| LogLevel::parse(l).ok()) else {
                return Vec::new();
            };
            vec![Record::Log(LogEntry {
                timestamp,
                level,
                logger_name: key.tag("logger_name").unwrap_or_default().to_string(),
                message: text(fields, "message").unwrap_or_default(),
                module: key.tag("module").map(str::to_owned),
                function_name: text(fields, "function_name"),
                line_number: integer(fields, "line_number"),
                thread_id: integer(fields, "thread_id"),
                process_id: integer(fields, "process_id"),
                extra_data: prefixed(fields, "extra_data"),
                tags: other_tags(key, &["level", "logger_name", "module"]),
            })]
        }
        SeriesKind::Alert if key.measurement() == ALERT_MEASUREMENT => {
            alert_from(key, timestamp, fields).map(Record::Alert).into_iter().collect()
        }
        _ => Vec::new(),
    }
}
