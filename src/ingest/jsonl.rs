//! JSON lines of the typed kinds, with the field names of the original design's tables.
//!
//! ```text
//! {"kind":"metric","timestamp":"2016-01-01T00:00:00Z","metric_type":"cpu","metric_name":"usage_percent","value":12.5,"unit":"percent","tags":{"host":"a"}}
//! {"kind":"performance","timestamp":...,"component":"buffer","operation":"flush","duration_ms":3.2,"throughput":1200,"efficiency_percent":97.5,"error_count":0,"metadata":{...}}
//! {"kind":"log","timestamp":...,"level":"ERROR","logger_name":"db","message":"connection lost","module":"pool","function_name":"get","line_number":42,"thread_id":1,"process_id":7,"extra_data":{...}}
//! {"kind":"alert","timestamp":...,"alert_id":"a-1","level":"WARNING","category":"SYSTEM","title":"disk 91% full","description":"...","source_component":"disk","acknowledged_at":...,"resolved_at":...,"metadata":{...}}
//! {"kind":"point","timestamp":...,"measurement":"cpu","tags":{"host":"a"},"fields":{"usage":1.5,"cores":8,"ok":true,"note":"x"}}
//! {"kind":"commit","timestamp":...,"commit_hash":"4b82…","message":"Fix","author":"Ada","author_email":"ada@example.com","repository":"acme/app","branch":"main","pusher":null,"commit_count":1,"diffs":[{"file_path":"src/a.rs","old_path":null,"additions":2,"deletions":1,"binary":false,"changes":null,"diff_content":"QEAgLTEgKzEsMiBAQAo="}]}
//! ```
//!
//! A commit line is not a row of the batch: the parser checks it (as
//! [`crate::history::History::store_commit`] would) and keeps it aside, and the caller
//! stores the commits of [`JsonLinesParser::take_commits`] through the commit store, which
//! deduplicates them by hash and moves large diffs to the object store. `diff_content` is
//! base64 (standard alphabet, padded), since a patch is bytes.
//!
//! `timestamp` (and `acknowledged_at`, `resolved_at`) is an RFC 3339 string (or any form of
//! [`crate::time::parse_time`]) or an integer in the chosen precision. An alert line
//! becomes a `raised` event at `timestamp`, plus `acknowledged` and `resolved` events at
//! those times when given; `"state"` instead names the single event the line records.
//! `id` and `created_at` (columns of the old tables) are accepted and ignored; any other
//! unknown key is an error, so typos do not silently drop data. `tags` values may be
//! strings, numbers or booleans; `metadata`/`extra_data` values may be any JSON (objects and
//! arrays are kept as JSON text, nulls are skipped).

use crate::error::{Error, Result};
use crate::model::{
    AlertEvent, AlertState, Batch, CommitData, DiffData, FieldValue, LogEntry, LogLevel, Metadata, MetricData, PerformanceData, SeriesKey,
    SeriesKind,
};
use crate::options::Limits;
use crate::time::{Precision, parse_time};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Record {
    Metric(MetricJson),
    Performance(PerformanceJson),
    Log(LogJson),
    Alert(AlertJson),
    Point(PointJson),
    Commit(CommitJson),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricJson {
    timestamp: Value,
    metric_type: String,
    metric_name: String,
    value: f64,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerformanceJson {
    timestamp: Value,
    component: String,
    operation: String,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    throughput: Option<f64>,
    #[serde(default)]
    efficiency_percent: Option<f64>,
    #[serde(default)]
    error_count: i64,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogJson {
    timestamp: Value,
    level: String,
    logger_name: String,
    message: String,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    function_name: Option<String>,
    #[serde(default)]
    line_number: Option<i64>,
    #[serde(default)]
    thread_id: Option<i64>,
    #[serde(default)]
    process_id: Option<i64>,
    #[serde(default)]
    extra_data: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertJson {
    timestamp: Value,
    alert_id: String,
    level: String,
    category: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source_component: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    acknowledged_at: Option<Value>,
    #[serde(default)]
    resolved_at: Option<Value>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointJson {
    timestamp: Value,
    measurement: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    fields: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitJson {
    timestamp: Value,
    commit_hash: String,
    message: String,
    author: String,
    #[serde(default)]
    author_email: Option<String>,
    repository: String,
    branch: String,
    #[serde(default)]
    pusher: Option<String>,
    #[serde(default = "one")]
    commit_count: i64,
    #[serde(default)]
    diffs: Vec<DiffJson>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffJson {
    file_path: String,
    #[serde(default)]
    old_path: Option<String>,
    #[serde(default)]
    additions: i64,
    #[serde(default)]
    deletions: i64,
    #[serde(default)]
    binary: bool,
    #[serde(default)]
    changes: Option<String>,
    /// Base64.
    #[serde(default)]
    diff_content: Option<String>,
}

/// A parsed commit line: the commit and its files.
pub type ParsedCommit = (CommitData, Vec<DiffData>);

/// Parses JSON lines into batches.
#[derive(Debug)]
pub struct JsonLinesParser {
    precision: Precision,
    limits: Limits,
    integer_timestamps: super::IntegerTimestamps,
    commits: Vec<ParsedCommit>,
    commit_bytes: usize,
}

impl JsonLinesParser {
    /// A parser for integer timestamps in `precision`, checking `limits`.
    pub fn new(precision: Precision, limits: Limits) -> JsonLinesParser {
        JsonLinesParser {
            precision,
            limits,
            integer_timestamps: super::IntegerTimestamps::new(precision),
            commits: Vec::new(),
            commit_bytes: 0,
        }
    }

    /// The integer timestamps parsed so far.
    pub fn integer_timestamps(&self) -> super::IntegerTimestamps {
        self.integer_timestamps
    }

    /// The commit lines parsed since the last call, in input order, checked.
    pub fn take_commits(&mut self) -> Vec<ParsedCommit> {
        self.commit_bytes = 0;
        std::mem::take(&mut self.commits)
    }

    /// Commits held for [`JsonLinesParser::take_commits`], and their approximate bytes.
    pub fn pending_commits(&self) -> (usize, usize) {
        (self.commits.len(), self.commit_bytes)
    }

    /// Parses one line and appends its rows (one, or up to three for an alert) to `batch`;
    /// a commit line is kept for [`JsonLinesParser::take_commits`] instead. Blank lines
    /// are skipped (false). On error the batch is unchanged.
    pub fn parse_into(&mut self, line: &str, now: i64, batch: &mut Batch) -> Result<bool> {
        if line.trim().is_empty() {
            return Ok(false);
        }
        let record: Record = serde_json::from_str(line).map_err(|e| Error::InvalidInput {
            line: None,
            column: Some(e.column() as u64),
            reason: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
        })?;
        let mark = batch.mark();
        let result = self.add(record, now, batch);
        if result.is_err() {
            batch.rollback(mark);
        }
        result.map(|()| true)
    }

    /// Parses a JSON array of records of one `kind` (`metric`, `performance`, `log`,
    /// `alert`, `point`): the body of `POST /history/logs` and its siblings. Each element
    /// is an object with that kind's keys; its `"kind"` may be left out and must match
    /// when given. All or nothing: on error the batch is unchanged, and the error's `line`
    /// is the element's position (from 1). Returns the number of elements.
    pub fn parse_array_into(&mut self, kind: &str, body: &[u8], now: i64, batch: &mut Batch) -> Result<usize> {
        if kind == "commit" {
            return Err(Error::invalid("commits are stored through the commit store, not as rows"));
        }
        let elements: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(body).map_err(|e| Error::InvalidInput {
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            reason: format!(
                "expected a JSON array of {kind} objects: {}",
                e.to_string().split(" at line ").next().unwrap_or_default()
            ),
        })?;
        let count = elements.len();
        let mark = batch.mark();
        for (i, mut element) in elements.into_iter().enumerate() {
            let at = |reason: String| Error::InvalidInput {
                line: Some(i as u64 + 1),
                column: None,
                reason,
            };
            match element.get("kind") {
                None => {
                    element.insert("kind".into(), Value::String(kind.to_string()));
                }
                Some(Value::String(k)) if k == kind => {}
                Some(other) => {
                    batch.rollback(mark);
                    return Err(at(format!("element {} has kind {other}, not {kind:?}", i + 1)));
                }
            }
            let result = serde_json::from_value::<Record>(Value::Object(element))
                .map_err(|e| at(format!("element {}: {e}", i + 1)))
                .and_then(|record| {
                    self.add(record, now, batch).map_err(|e| match e {
                        Error::InvalidInput { reason, .. } => at(format!("element {}: {reason}", i + 1)),
                        other => other,
                    })
                });
            if let Err(e) = result {
                batch.rollback(mark);
                return Err(e);
            }
        }
        Ok(count)
    }

    fn time(&mut self, value: &Value, now: i64, what: &str) -> Result<i64> {
        match value {
            Value::String(s) => parse_time(s, now),
            Value::Number(n) => n
                .as_i64()
                .and_then(|v| {
                    self.integer_timestamps.record(v);
                    self.precision.to_nanos(v)
                })
                .ok_or_else(|| Error::invalid(format!("{what} {n} is not an integer in range for the chosen precision"))),
            _ => Err(Error::invalid(format!("{what} must be a string or an integer"))),
        }
    }

    fn add(&mut self, record: Record, now: i64, batch: &mut Batch) -> Result<()> {
        let rows_before = batch.len();
        match record {
            Record::Metric(m) => {
                let metric = MetricData {
                    timestamp: self.time(&m.timestamp, now, "timestamp")?,
                    metric_type: m.metric_type,
                    metric_name: m.metric_name,
                    value: m.value,
                    unit: m.unit.filter(|u| !u.is_empty()),
                    tags: tags(m.tags)?,
                };
                batch.add_metric(&metric)?;
            }
            Record::Performance(p) => {
                let perf = PerformanceData {
                    timestamp: self.time(&p.timestamp, now, "timestamp")?,
                    component: p.component,
                    operation: p.operation,
                    duration_ms: p.duration_ms,
                    throughput: p.throughput,
                    efficiency_percent: p.efficiency_percent,
                    error_count: p.error_count,
                    metadata: metadata(p.metadata)?,
                    tags: tags(p.tags)?,
                };
                batch.add_performance(&perf)?;
            }
            Record::Log(l) => {
                let log = LogEntry {
                    timestamp: self.time(&l.timestamp, now, "timestamp")?,
                    level: LogLevel::parse(&l.level)?,
                    logger_name: l.logger_name,
                    message: l.message,
                    module: l.module,
                    function_name: l.function_name,
                    line_number: l.line_number,
                    thread_id: l.thread_id,
                    process_id: l.process_id,
                    extra_data: metadata(l.extra_data)?,
                    tags: tags(l.tags)?,
                };
                batch.add_log(&log)?;
            }
            Record::Alert(a) => {
                let raised_at = self.time(&a.timestamp, now, "timestamp")?;
                let mut event = AlertEvent {
                    timestamp: raised_at,
                    alert_id: a.alert_id,
                    state: AlertState::Raised,
                    level: LogLevel::parse(&a.level)?,
                    category: a.category,
                    title: a.title,
                    description: a.description,
                    source_component: a.source_component,
                    metadata: metadata(a.metadata)?,
                };
                if let Some(state) = &a.state {
                    event.state = AlertState::parse(state)?;
                    batch.add_alert(&event)?;
                } else {
                    batch.add_alert(&event)?;
                    for (state, at, what) in [
                        (AlertState::Acknowledged, &a.acknowledged_at, "acknowledged_at"),
                        (AlertState::Resolved, &a.resolved_at, "resolved_at"),
                    ] {
                        if let Some(at) = at.as_ref().filter(|v| !v.is_null()) {
                            event.state = state;
                            event.timestamp = self.time(at, now, what)?;
                            batch.add_alert(&event)?;
                        }
                    }
                }
            }
            Record::Point(p) => {
                let key = SeriesKey::new(SeriesKind::Metric, p.measurement, tags(p.tags)?)?;
                let timestamp = self.time(&p.timestamp, now, "timestamp")?;
                let fields: Vec<(String, FieldValue)> = p
                    .fields
                    .into_iter()
                    .filter_map(|(k, v)| field_value(v).transpose().map(|v| v.map(|v| (k, v))))
                    .collect::<Result<_>>()?;
                batch.add_row(&key, timestamp, fields)?;
            }
            Record::Commit(c) => {
                let commit = self.commit(c, now)?;
                self.commit_bytes += commit.1.iter().filter_map(|d| d.diff_content.as_ref()).map(Vec::len).sum::<usize>()
                    + commit.0.message.len()
                    + 256 * (1 + commit.1.len());
                self.commits.push(commit);
                return Ok(());
            }
        }
        for (key, timestamp, fields) in batch.rows().skip(rows_before) {
            self.limits.check_series(key)?;
            let mut count = 0;
            for (name, value) in fields {
                self.limits.check_field(name, value)?;
                count += 1;
            }
            self.limits.check_row(timestamp, count)?;
        }
        Ok(())
    }
}

impl JsonLinesParser {
    /// A commit line as the commit store takes it, with the store's checks applied.
    fn commit(&mut self, c: CommitJson, now: i64) -> Result<ParsedCommit> {
        let commit = CommitData {
            commit_hash: c.commit_hash,
            message: c.message,
            author: c.author,
            author_email: c.author_email,
            timestamp: self.time(&c.timestamp, now, "timestamp")?,
            repository: c.repository,
            branch: c.branch,
            pusher: c.pusher,
            commit_count: c.commit_count,
        };
        commit.check().map_err(Error::invalid)?;
        let mut diffs = Vec::with_capacity(c.diffs.len());
        for (i, d) in c.diffs.into_iter().enumerate() {
            let diff_content = d
                .diff_content
                .map(|text| {
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.as_bytes())
                        .map_err(|e| Error::invalid(format!("diffs[{i}].diff_content of {:?} is not base64: {e}", d.file_path)))
                })
                .transpose()?;
            let diff = DiffData {
                file_path: d.file_path,
                old_path: d.old_path,
                additions: d.additions,
                deletions: d.deletions,
                binary: d.binary,
                changes: d.changes,
                diff_content,
            };
            diff.check().map_err(Error::invalid)?;
            diffs.push(diff);
        }
        Ok((commit, diffs))
    }
}

fn tags(map: Option<BTreeMap<String, Value>>) -> Result<BTreeMap<String, String>> {
    map.unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(Error::invalid(format!("tag {k:?} must be a string, number or boolean"))),
        })
        .collect()
}

fn metadata(map: Option<BTreeMap<String, Value>>) -> Result<Metadata> {
    let mut out = Metadata::new();
    for (k, v) in map.unwrap_or_default() {
        if let Some(v) = field_value(v)? {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// A JSON value as a field: integers that fit `i64` stay integers, other numbers are
/// floats, objects and arrays are kept as JSON text, null is absent.
fn field_value(v: Value) -> Result<Option<FieldValue>> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(b) => FieldValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::I64(i),
            None if n.is_u64() => return Err(Error::invalid(format!("integer {n} exceeds the largest storable integer (2^63-1)"))),
            None => FieldValue::F64(n.as_f64().ok_or_else(|| Error::invalid(format!("number {n} is out of range")))?),
        },
        Value::String(s) => FieldValue::Str(s),
        other => FieldValue::Str(other.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (String, i64, Vec<(String, FieldValue)>);

    fn parse(line: &str) -> Result<Vec<Row>> {
        let mut parser = JsonLinesParser::new(Precision::Seconds, Limits::default());
        let mut batch = Batch::new();
        parser.parse_into(line, 0, &mut batch)?;
        Ok(batch
            .rows()
            .map(|(k, t, f)| (k.to_string(), t, f.map(|(n, v)| (n.to_string(), v.clone())).collect()))
            .collect())
    }

    #[test]
    fn typed_kinds() {
        let rows = parse(r#"{"kind":"metric","timestamp":"2016-01-01T00:00:00Z","metric_type":"cpu","metric_name":"usage","value":1.5,"unit":"percent","tags":{"host":"a","rack":7},"id":3,"created_at":"x"}"#).unwrap();
        assert_eq!(
            rows,
            vec![(
                "cpu,host=a,rack=7,unit=percent".into(),
                1_451_606_400_000_000_000,
                vec![("usage".into(), FieldValue::F64(1.5))]
            )]
        );

        let rows = parse(r#"{"kind":"log","timestamp":10,"level":"warn","logger_name":"db","message":"slow","line_number":5,"extra_data":{"ms":12.5,"ctx":{"a":[1]},"none":null}}"#).unwrap();
        assert_eq!(rows[0].0, "log,level=WARNING,logger_name=db");
        assert_eq!(rows[0].1, 10_000_000_000, "integer timestamps use the precision");
        assert_eq!(
            rows[0].2,
            vec![
                ("message".into(), FieldValue::Str("slow".into())),
                ("line_number".into(), FieldValue::I64(5)),
                ("extra_data.ctx".into(), FieldValue::Str(r#"{"a":[1]}"#.into())),
                ("extra_data.ms".into(), FieldValue::F64(12.5)),
            ]
        );

        let rows = parse(r#"{"kind":"alert","timestamp":1,"alert_id":"x","level":"ERROR","category":"SYSTEM","title":"t","acknowledged_at":2,"resolved_at":3}"#).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![1_000_000_000, 2_000_000_000, 3_000_000_000]
        );
        assert_eq!(rows[2].2[1], ("state".into(), FieldValue::Str("resolved".into())));

        let rows =
            parse(r#"{"kind":"performance","timestamp":1,"component":"buffer","operation":"flush","duration_ms":2,"metadata":{"n":3}}"#)
                .unwrap();
        assert_eq!(rows[0].0, "performance,component=buffer,operation=flush");
        assert_eq!(rows[0].2.len(), 3);

        let rows = parse(r#"{"kind":"point","timestamp":1,"measurement":"m","fields":{"a":1,"b":true,"c":"x","d":0.5}}"#).unwrap();
        assert_eq!(rows[0].2.len(), 4);
    }

    #[test]
    fn errors_leave_the_batch_unchanged() {
        let mut parser = JsonLinesParser::new(Precision::Nanoseconds, Limits::default());
        let mut batch = Batch::new();
        for bad in [
            r#"{"kind":"metric","timestamp":1,"metric_type":"cpu","metric_name":"u","value":1,"colour":"red"}"#,
            r#"{"kind":"nope","timestamp":1}"#,
            r#"{"kind":"log","timestamp":1,"level":"loud","logger_name":"a","message":"m"}"#,
            r#"{"kind":"alert","timestamp":1,"alert_id":"x","level":"ERROR","category":"S","title":"t","resolved_at":"soon"}"#,
            r#"{"kind":"metric","timestamp":1.5,"metric_type":"cpu","metric_name":"u","value":1}"#,
            r#"{"kind":"point","timestamp":1,"measurement":"m","fields":{"a":18446744073709551615}}"#,
            r#"{"kind":"point","timestamp":1,"measurement":"m","fields":{}}"#,
            r#"{"kind":"metric""#,
            "[1,2]",
        ] {
            assert!(parser.parse_into(bad, 0, &mut batch).is_err(), "{bad}");
            assert!(batch.is_empty(), "{bad} left rows behind");
        }
    }

    #[test]
    fn arrays_of_one_kind_are_taken_whole_or_not_at_all() {
        let mut parser = JsonLinesParser::new(Precision::Seconds, Limits::default());
        let mut batch = Batch::new();
        let body = br#"[{"timestamp":1,"level":"INFO","logger_name":"a","message":"x"},{"kind":"log","timestamp":2,"level":"INFO","logger_name":"a","message":"y"}]"#;
        assert_eq!(parser.parse_array_into("log", body, 0, &mut batch).unwrap(), 2);
        assert_eq!(batch.len(), 2);
        let mut reason = |body: &[u8], batch: &mut Batch| match parser.parse_array_into("log", body, 0, batch) {
            Err(Error::InvalidInput { line, reason, .. }) => (line, reason),
            other => panic!("expected an input error, got {other:?}"),
        };
        let (line, why) = reason(
            br#"[{"timestamp":3,"level":"INFO","logger_name":"a","message":"z"},{"kind":"metric","timestamp":4}]"#,
            &mut batch,
        );
        assert_eq!(line, Some(2));
        assert!(why.contains("not \"log\""), "{why}");
        assert_eq!(batch.len(), 2, "the first element of the refused array is rolled back");
        let (line, why) = reason(br#"{"timestamp":3}"#, &mut batch);
        assert_eq!(line, Some(1));
        assert!(why.starts_with("expected a JSON array of log objects"), "{why}");
        assert!(parser.parse_array_into("commit", b"[]", 0, &mut batch).is_err());
    }
}
