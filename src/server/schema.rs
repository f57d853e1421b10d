//! The JSON bodies of the routes as types: the handlers build these, and `GET
//! /openapi.json` describes them (utoipa), so the document and the answers cannot drift
//! apart. Records, hits, commits and reports keep the library's own JSON form (`any`
//! objects here).

use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The kind of error: `bad_input`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `body_too_large`, `query_limit`, `input_limit`, `too_many_queries`, `unavailable`,
    /// `timeout`, `internal`, ...
    pub error: String,
    /// What went wrong, for a person.
    pub reason: String,
    /// The input line at fault (from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The column at fault (from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// The limit exceeded, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    pub status: String,
}

/// Records stored by `POST /history/{kind}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Stored {
    /// Elements of the array stored.
    pub stored: u64,
    /// Rows written (a metric element with several values is one row).
    pub rows: u64,
}

/// A query's answer: one array of cells per row, in the order of `columns`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct QueryPage {
    /// Column names: `time` (when rows have times), tag columns, value columns.
    pub columns: Vec<String>,
    /// Rows of cells (strings, numbers, booleans or null).
    pub rows: Vec<Vec<Value>>,
    /// Rows of the whole answer, this page and the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Where the answer came from: `detail`, and summary tiers where retention dropped the
    /// detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolutions: Option<Vec<String>>,
    /// `GET /history/performance/analysis?trends=...`: the trend analysis of the mean
    /// duration of each component and operation (the JSON of `GET /history/metrics/trends`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub trends: Option<Value>,
}

/// A page of records (`GET /history/logs`, `/history/performance`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct RecordsPage {
    /// The records, each with the keys of its JSON line and `kind`.
    pub records: Vec<Value>,
    /// Records matching in all.
    pub total_count: Option<u64>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A page of search hits.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct SearchPage {
    /// Hits with `time`, `tags`, `fields` and `snippet` (`fragment`, `highlights` as
    /// `[start, end)` byte offsets).
    pub hits: Vec<Value>,
    /// Every match of the query.
    pub total: Option<u64>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// `GET /history/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct AlertsPage {
    /// The newest event of each alert, newest first.
    pub alerts: Vec<Value>,
}

/// `GET /history/commits`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct CommitsPage {
    /// Commits, newest first.
    pub commits: Vec<Value>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// `POST /hooks/git` for a push.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct PushStored {
    /// Commits stored.
    pub stored: u64,
    /// Commits the store held already (a re-delivery).
    pub duplicates: u64,
    /// Commits that failed.
    pub failed: u64,
    /// One `StorageResult` per commit.
    pub results: Vec<Value>,
}

/// A dry run of `POST /history/cleanup`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct CleanupPlan {
    /// Always true: nothing was dropped.
    pub dry_run: bool,
    /// What retention would drop (the library's `RetentionReport`).
    pub plan: Value,
}

/// A long operation accepted (202).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct OperationAccepted {
    /// The operation's id.
    pub id: u64,
    /// `archive`, `cleanup` or `optimize`.
    pub operation: String,
    /// `running`.
    pub status: String,
    /// Where its progress is shown.
    pub status_url: String,
}

/// `GET /history/operations`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct OperationsList {
    /// Operations, newest first.
    pub operations: Vec<super::operations::Operation>,
}

/// The parameters of `GET /history/metrics/trends`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read as text by `TrendQuery::from_pairs`; this type only describes them.
pub(crate) struct TrendParams {
    /// The measurement to read.
    pub measurement: String,
    /// Fields to analyse (repeatable, or comma separated); every numeric field by default.
    pub field: Option<String>,
    /// A tag predicate such as `host=a` (repeatable; all must hold).
    #[param(rename = "where")]
    pub where_: Option<String>,
    /// A condition on a field value, e.g. `usage > 90` (repeatable).
    pub filter: Option<String>,
    /// Only series of this kind: metric, performance, log, alert.
    pub kind: Option<String>,
    /// Start (inclusive): RFC 3339, a date, nanoseconds or `now-30d`.
    pub from: Option<String>,
    /// End (exclusive).
    pub to: Option<String>,
    /// Analyse the mean of each group of series per bucket (needs `every`).
    pub group_by: Option<String>,
    /// Analyse bucket means of this width (`10m`, `1h`, `1d`) instead of stored points.
    pub every: Option<String>,
    /// `patterns`, `anomalies`, `forecast`, `correlation` (comma separated) or `all` (default).
    pub parts: Option<String>,
    /// Offset from UTC of the profiles' hours and days: `+05:30`, `-8`, `UTC`.
    pub utc_offset: Option<String>,
    /// In [0, 1]: higher reports more anomalies (threshold = 1 - sensitivity; default 0.5).
    pub sensitivity: Option<f64>,
    /// Forecast horizon (default `1d`, at most `366d`).
    pub horizon: Option<String>,
    /// With a forecast: when the series reaches this value.
    pub threshold: Option<f64>,
    /// Correlation: largest lag tried, in buckets (default 12, at most 10000).
    pub max_lag: Option<u32>,
    /// Correlation: explain which series moved at this time (default: the strongest anomaly).
    pub around: Option<String>,
    /// `anomalies` (default): only the anomalous points of each series; `all`: every scored point.
    pub points: Option<String>,
    /// `rfc3339` (default) or `ns` for integer times.
    pub time_format: Option<String>,
}

/// The parameters of `GET /history/metrics` (and the keys of a JSON query).
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read as text by `QuerySpec`; this type only describes them.
pub(crate) struct MetricsParams {
    /// The measurement to read.
    pub measurement: String,
    /// Only these fields (repeatable, or comma separated).
    pub field: Option<String>,
    /// A tag predicate such as `host=a` or `region in (eu, us)` (repeatable; all must hold).
    #[param(rename = "where")]
    pub where_: Option<String>,
    /// A condition on a field value, e.g. `usage > 90` (repeatable).
    pub filter: Option<String>,
    /// Only series of this kind: metric, performance, log, alert, commit.
    pub kind: Option<String>,
    /// Start (inclusive): RFC 3339, a date, nanoseconds or `now-1h`.
    pub from: Option<String>,
    /// End (exclusive).
    pub to: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// Continue after the page that returned it.
    pub cursor: Option<String>,
    /// Aggregates: count, sum, min, max, mean, first, last, stddev, p95, or `max(field)`.
    pub agg: Option<String>,
    /// Time buckets: `10s`, `5m`, `1h`, `1d`, `day`, `week`, `month`.
    pub every: Option<String>,
    /// Tags to group aggregates by.
    pub group_by: Option<String>,
    /// What empty buckets show: none, null, previous, or a number.
    pub fill: Option<String>,
    /// The newest row of each series: `true`, `false`, or empty (`?lastpoint`, true).
    pub lastpoint: Option<String>,
    /// `rfc3339` (default) or `ns` for integer times.
    pub time_format: Option<String>,
}
