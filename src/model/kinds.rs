//! Typed front doors: the record kinds of the original design, each mapped onto
//! (series, timestamp, fields). Field names follow the original tables, so a JSON row of
//! the old store reads back into the same names.
//!
//! | kind | measurement | tags | fields |
//! |---|---|---|---|
//! | [`MetricData`] | `metric_type` | `tags`, `unit` | `<metric_name>` (float) |
//! | [`PerformanceData`] | `performance` | `component`, `operation`, `tags` | `duration_ms`, `throughput`, `efficiency_percent`, `error_count`, `metadata.*` |
//! | [`LogEntry`] | `log` | `level`, `logger_name`, `module`, `tags` | `message`, `function_name`, `line_number`, `thread_id`, `process_id`, `extra_data.*` |
//! | [`AlertEvent`] | `alert` | `level`, `category`, `source_component` | `alert_id`, `state`, `title`, `description`, `metadata.*` |

use super::{Batch, FieldValue, SeriesKey, SeriesKind};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;

/// Free-form extra values attached to a record (`metadata`, `extra_data`); each entry is
/// stored as a field named `<prefix>.<key>`.
pub type Metadata = BTreeMap<String, FieldValue>;

/// Measurement of performance samples.
pub const PERFORMANCE_MEASUREMENT: &str = "performance";
/// Measurement of log records.
pub const LOG_MEASUREMENT: &str = "log";
/// Measurement of alert events.
pub const ALERT_MEASUREMENT: &str = "alert";

/// Log severity, as in Python's `logging` (the original design's `LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARNING
    Warning,
    /// ERROR
    Error,
    /// CRITICAL
    Critical,
}

impl LogLevel {
    /// All levels, least severe first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
    ];

    /// Upper-case name, as stored in the `level` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }

    /// Parses a level name, ignoring case. Common spellings of other systems map onto the
    /// five levels: TRACE and FINE to DEBUG, NOTICE to INFO, WARN to WARNING, ERR and SEVERE
    /// to ERROR, FATAL, CRIT, ALERT and EMERG to CRITICAL.
    pub fn parse(text: &str) -> Result<LogLevel> {
        let upper = text.trim().to_ascii_uppercase();
        Ok(match upper.as_str() {
            "DEBUG" | "TRACE" | "FINE" | "FINER" | "FINEST" => LogLevel::Debug,
            "INFO" | "NOTICE" => LogLevel::Info,
            "WARNING" | "WARN" => LogLevel::Warning,
            "ERROR" | "ERR" | "SEVERE" => LogLevel::Error,
            "CRITICAL" | "CRIT" | "FATAL" | "ALERT" | "EMERG" | "EMERGENCY" => LogLevel::Critical,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown level {text:?} (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)"
                )));
            }
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric reading (the original `SystemMetric`).
///
/// Stored as measurement `metric_type`, field `metric_name`, with `unit` as a tag, so a
/// metric written here and the same metric written as line protocol share a series when
/// their tags agree.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricData {
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// cpu, memory, disk, network, ...
    pub metric_type: String,
    /// The metric's name within its type, e.g. `usage_percent`.
    pub metric_name: String,
    /// The reading.
    pub value: f64,
    /// Unit of the reading, e.g. `percent`, `bytes`.
    pub unit: Option<String>,
    /// Extra identifying tags (host, region, ...).
    pub tags: BTreeMap<String, String>,
}

/// A performance sample of an operation (the original `PerformanceData`).
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceData {
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// The component measured: buffer, batch, stream, optimizer, network, device, ...
    pub component: String,
    /// The operation within the component.
    pub operation: String,
    /// How long it took.
    pub duration_ms: Option<f64>,
    /// Items per second.
    pub throughput: Option<f64>,
    /// Efficiency in percent.
    pub efficiency_percent: Option<f64>,
    /// Errors seen.
    pub error_count: i64,
    /// Extra values, stored as fields `metadata.<key>`.
    pub metadata: Metadata,
    /// Extra identifying tags.
    pub tags: BTreeMap<String, String>,
}

/// A log record (the original `SystemLog`). `message` is a text column.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// Severity.
    pub level: LogLevel,
    /// Name of the logger.
    pub logger_name: String,
    /// The message text.
    pub message: String,
    /// Source module.
    pub module: Option<String>,
    /// Source function.
    pub function_name: Option<String>,
    /// Source line.
    pub line_number: Option<i64>,
    /// Thread id.
    pub thread_id: Option<i64>,
    /// Process id.
    pub process_id: Option<i64>,
    /// Extra values, stored as fields `extra_data.<key>`.
    pub extra_data: Metadata,
    /// Extra identifying tags (host, service, ...).
    pub tags: BTreeMap<String, String>,
}

/// What happened to an alert. Each is an appended event; the latest one is the alert's
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The alert was raised.
    Raised,
    /// Someone acknowledged it.
    Acknowledged,
    /// It was resolved.
    Resolved,
}

impl AlertState {
    /// Lower-case name, as stored in the `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Raised => "raised",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parses [`AlertState::as_str`], ignoring case.
    pub fn parse(text: &str) -> Result<AlertState> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "raised" => AlertState::Raised,
            "acknowledged" => AlertState::Acknowledged,
            "resolved" => AlertState::Resolved,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown alert state {text:?} (expected raised, acknowledged or resolved)"
                )));
            }
        })
    }
}

/// One event in the life of an alert (the original `AlertHistory`, where
/// `acknowledged_at` and `resolved_at` are the timestamps of the later events).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// Nanoseconds since the epoch: when this event happened.
    pub timestamp: i64,
    /// Identifies the alert across its events.
    pub alert_id: String,
    /// Which event this is.
    pub state: AlertState,
    /// Severity.
    pub level: LogLevel,
    /// PERFORMANCE, SENSOR, SYSTEM, DATA, ...
    pub category: String,
    /// One-line summary.
    pub title: String,
    /// Longer text (full-text searchable).
    pub description: Option<String>,
    /// The component that raised it.
    pub source_component: Option<String>,
    /// Extra values, stored as fields `metadata.<key>`.
    pub metadata: Metadata,
}

fn with_tags(mut key: SeriesKey, tags: &BTreeMap<String, String>) -> Result<SeriesKey> {
    for (k, v) in tags {
        if v.is_empty() {
            continue;
        }
        key = key.with_tag(k.as_str(), v.as_str())?;
    }
    Ok(key)
}

fn with_optional_tag(key: SeriesKey, name: &str, value: Option<&str>) -> Result<SeriesKey> {
    match value {
        Some(v) if !v.is_empty() => key.with_tag(name, v),
        _ => Ok(key),
    }
}

fn push_prefixed(fields: &mut Vec<(String, FieldValue)>, prefix: &str, extra: &Metadata) {
    for (k, v) in extra {
        fields.push((format!("{prefix}.{k}"), v.clone()));
    }
}

impl MetricData {
    /// The series this reading belongs to.
    pub fn series_key(&self) -> Result<SeriesKey> {
        let key = SeriesKey::new::<String, String>(SeriesKind::Metric, self.metric_type.as_str(), [])?;
        let key = with_tags(key, &self.tags)?;
        with_optional_tag(key, "unit", self.unit.as_deref())
    }
}

impl PerformanceData {
    /// The series this sample belongs to.
    pub fn series_key(&self) -> Result<SeriesKey> {
        let key = SeriesKey::new(
            SeriesKind::Performance,
            PERFORMANCE_MEASUREMENT,
            [("component", self.component.as_str()), ("operation", self.operation.as_str())],
        )?;
        with_tags(key, &self.tags)
    }

    fn fields(&self) -> Vec<(String, FieldValue)> {
        let mut fields = Vec::with_capacity(4 + self.metadata.len());
        for (name, value) in [
            ("duration_ms", self.duration_ms),
            ("throughput", self.throughput),
            ("efficiency_percent", self.efficiency_percent),
        ] {
            if let Some(v) = value {
                fields.push((name.to_owned(), FieldValue::F64(v)));
            }
        }
        fields.push(("error_count".to_owned(), FieldValue::I64(self.error_count)));
        push_prefixed(&mut fields, "metadata", &self.metadata);
        fields
    }
}

impl LogEntry {
    /// A record of `message` at `level` from `logger_name`, with no module, location,
    /// thread, extra data or tags (set the fields for those).
    pub fn new(timestamp: i64, level: LogLevel, logger_name: impl Into<String>, message: impl Into<String>) -> LogEntry {
        LogEntry {
            timestamp,
            level,
            logger_name: logger_name.into(),
            message: message.into(),
            module: None,
            function_name: None,
            line_number: None,
            thread_id: None,
            process_id: None,
            extra_data: Metadata::new(),
            tags: BTreeMap::new(),
        }
    }

    /// The series this record belongs to.
    pub fn series_key(&self) -> Result<SeriesKey> {
        let key = SeriesKey::new(
            SeriesKind::Log,
            LOG_MEASUREMENT,
            [("level", self.level.as_str()), ("logger_name", self.logger_name.as_str())],
        )?;
        let key = with_optional_tag(key, "module", self.module.as_deref())?;
        with_tags(key, &self.tags)
    }

    fn fields(&self) -> Vec<(String, FieldValue)> {
        let mut fields = Vec::with_capacity(5 + self.extra_data.len());
        fields.push(("message".to_owned(), FieldValue::Str(self.message.clone())));
        if let Some(f) = &self.function_name {
            fields.push(("function_name".to_owned(), FieldValue::Str(f.clone())));
        }
        for (name, value) in [
            ("line_number", self.line_number),
            ("thread_id", self.thread_id),
            ("process_id", self.process_id),
        ] {
            if let Some(v) = value {
                fields.push((name.to_owned(), FieldValue::I64(v)));
            }
        }
        push_prefixed(&mut fields, "extra_data", &self.extra_data);
        fields
    }
}

impl AlertEvent {
    /// The event as JSON with the keys of an alert JSON line: `timestamp` (RFC 3339),
    /// `alert_id`, `state`, `level`, `category`, `title`, `description`,
    /// `source_component` and `metadata`.
    pub fn to_json(&self) -> serde_json::Value {
        let metadata: serde_json::Map<String, serde_json::Value> = self.metadata.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        serde_json::json!({
            "timestamp": crate::time::format_rfc3339(self.timestamp),
            "alert_id": self.alert_id,
            "state": self.state.as_str(),
            "level": self.level.as_str(),
            "category": self.category,
            "title": self.title,
            "description": self.description,
            "source_component": self.source_component,
            "metadata": metadata,
        })
    }

    /// The series this event belongs to.
    pub fn series_key(&self) -> Result<SeriesKey> {
        let key = SeriesKey::new(
            SeriesKind::Alert,
            ALERT_MEASUREMENT,
            [("level", self.level.as_str()), ("category", self.category.as_str())],
        )?;
        with_optional_tag(key, "source_component", self.source_component.as_deref())
    }

    fn fields(&self) -> Vec<(String, FieldValue)> {
        let mut fields = Vec::with_capacity(4 + self.metadata.len());
        fields.push(("alert_id".to_owned(), FieldValue::Str(self.alert_id.clone())));
        fields.push(("state".to_owned(), FieldValue::Str(self.state.as_str().to_owned())));
        fields.push(("title".to_owned(), FieldValue::Str(self.title.clone())));
        if let Some(d) = &self.description {
            fields.push(("description".to_owned(), FieldValue::Str(d.clone())));
        }
        push_prefixed(&mut fields, "metadata", &self.metadata);
        fields
    }
}

impl Batch {
    /// Adds a metric reading.
    pub fn add_metric(&mut self, m: &MetricData) -> Result<()> {
        if m.metric_name.is_empty() {
            return Err(Error::invalid("empty metric_name"));
        }
        if m.unit.is_some() && m.tags.contains_key("unit") {
            return Err(Error::invalid("tag \"unit\" conflicts with the metric's unit"));
        }
        self.add_row(&m.series_key()?, m.timestamp, [(m.metric_name.as_str(), FieldValue::F64(m.value))])
    }

    /// Adds a performance sample.
    pub fn add_performance(&mut self, p: &PerformanceData) -> Result<()> {
        self.add_row(&p.series_key()?, p.timestamp, p.fields())
    }

    /// Adds a log record.
    pub fn add_log(&mut self, log: &LogEntry) -> Result<()> {
        self.add_row(&log.series_key()?, log.timestamp, log.fields())
    }

    /// Adds an alert event.
    pub fn add_alert(&mut self, alert: &AlertEvent) -> Result<()> {
        if alert.alert_id.is_empty() {
            return Err(Error::invalid("empty alert_id"));
        }
        self.add_row(&alert.series_key()?, alert.timestamp, alert.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_with_aliases() {
        assert_eq!(LogLevel::parse("warn").unwrap(), LogLevel::Warning);
        assert_eq!(LogLevel::parse("FATAL").unwrap(), LogLevel::Critical);
        assert_eq!(LogLevel::parse(" info ").unwrap(), LogLevel::Info);
        assert!(LogLevel::parse("loud").is_err());
    }

    #[test]
    fn kinds_map_onto_series_and_fields() {
        let mut batch = Batch::new();
        let metric = MetricData {
            timestamp: 1,
            metric_type: "cpu".into(),
            metric_name: "usage_percent".into(),
            value: 12.5,
            unit: Some("percent".into()),
            tags: [("host".to_string(), "a".to_string())].into(),
        };
        batch.add_metric(&metric).unwrap();
        let log = LogEntry {
            timestamp: 2,
            level: LogLevel::Error,
            logger_name: "db".into(),
            message: "connection lost".into(),
            module: Some("pool".into()),
            function_name: None,
            line_number: Some(42),
            thread_id: None,
            process_id: Some(7),
            extra_data: [("retry".to_string(), FieldValue::I64(3))].into(),
            tags: BTreeMap::new(),
        };
        batch.add_log(&log).unwrap();
        let rows: Vec<_> = batch
            .rows()
            .map(|(k, t, f)| (k.to_string(), t, f.map(|(n, v)| (n.to_string(), v.clone())).collect::<Vec<_>>()))
            .collect();
        assert_eq!(rows[0].0, "cpu,host=a,unit=percent");
        assert_eq!(rows[0].2, vec![("usage_percent".to_string(), FieldValue::F64(12.5))]);
        assert_eq!(rows[1].0, "log,level=ERROR,logger_name=db,module=pool");
        let names: Vec<_> = rows[1].2.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message", "line_number", "process_id", "extra_data.retry"]);
        assert_eq!(batch.series[1].kind(), SeriesKind::Log);
    }
}
