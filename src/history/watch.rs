//! [`TrendWatcher`]: the anomaly detector running over live writes. A thread follows the
//! store's data events, reads each watched series' new points through the query engine,
//! scores them with one [`AnomalyDetector`] per series and field, and publishes a
//! `trend_alert` event for every anomaly (and, when asked, stores it as an alert with
//! `category=anomaly`). On start, each series' detector is warmed on a bounded window of
//! its newest points, without alerting, so a restart resumes where the history left off.

use super::History;
use crate::error::{Error, Result};
use crate::events::{Event, EventFilter, EventType, TrendAlert};
use crate::model::kinds::ALERT_MEASUREMENT;
use crate::model::{AlertEvent, AlertState, FieldValue, LogLevel, SeriesId};
use crate::query::{Query, QuerySpec};
use crate::read::Order;
use crate::time::{NANOS_PER_DAY, TimeRange, format_rfc3339};
use crate::trends::{AnomalyDetector, DetectorOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a [`TrendWatcher`] watches and how.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchOptions {
    /// The series: each a measurement with its fields (all numeric fields when empty) and
    /// tag predicates (`where`).
    pub selections: Vec<QuerySpec>,
    /// The detector's options (sensitivity).
    pub detector: DetectorOptions,
    /// How far back from each selection's newest point the detectors are warmed on start
    /// (default 7 days).
    pub replay_nanos: i64,
    /// Store each anomaly as an alert (`category=anomaly`, state raised, level WARNING).
    pub store_alerts: bool,
    /// Detectors kept at most (one per series and field); points of further series are
    /// not scored and counted in [`WatchStats::unwatched_points`].
    pub max_series: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            selections: Vec::new(),
            detector: DetectorOptions::default(),
            replay_nanos: 7 * NANOS_PER_DAY,
            store_alerts: false,
            max_series: 100_000,
        }
    }
}

impl WatchOptions {
    /// Reads `MEASUREMENT[:FIELD,FIELD...][@PREDICATE]`, e.g. `cpu:usage_user@host=a`.
    pub fn parse_selection(text: &str) -> Result<QuerySpec> {
        let (head, predicate) = match text.split_once('@') {
            Some((h, p)) => (h, Some(p.trim().to_string())),
            None => (text, None),
        };
        let (measurement, fields) = match head.split_once(':') {
            Some((m, f)) => (
                m.trim(),
                f.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            ),
            None => (head.trim(), Vec::new()),
        };
        if measurement.is_empty() {
            return Err(Error::invalid(format!(
                "watch {text:?}: no measurement (write MEASUREMENT[:FIELD,...][@PREDICATE])"
            )));
        }
        let spec = QuerySpec {
            measurement: measurement.to_string(),
            fields,
            predicates: predicate.into_iter().collect(),
            ..QuerySpec::default()
        };
        spec.to_query(0)?;
        Ok(spec)
    }
}

/// What a watcher has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStats {
    /// Points scored after the warm-up.
    pub points_scored: u64,
    /// Points the warm-up replayed.
    pub points_replayed: u64,
    /// Anomalies found (each published as a `trend_alert` event).
    pub anomalies: u64,
    /// Series and fields with a detector.
    pub series: u64,
    /// Points not scored: older than their series' last scored point (late writes), or
    /// of series past `max_series`.
    pub unwatched_points: u64,
    /// Errors met while reading or storing (the watcher keeps going).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    points_scored: AtomicU64,
    points_replayed: AtomicU64,
    anomalies: AtomicU64,
    series: AtomicU64,
    unwatched_points: AtomicU64,
    errors: AtomicU64,
}

/// The running watcher; stopped (and its thread joined) by [`TrendWatcher::stop`] or on
/// drop.
pub struct TrendWatcher {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TrendWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrendWatcher").field("stats", &self.stats()).finish()
    }
}

impl TrendWatcher {
    /// Starts watching. The warm-up runs on the watcher's thread; points written
    /// meanwhile are scored once it ends (the subscription is taken first).
    pub fn start(history: Arc<History>, options: WatchOptions) -> Result<TrendWatcher> {
        if options.selections.is_empty() {
            return Err(Error::invalid("nothing to watch: name at least one measurement"));
        }
        let mut queries = Vec::new();
        for spec in &options.selections {
            if options.store_alerts && spec.measurement == ALERT_MEASUREMENT {
                return Err(Error::invalid(
                    "watching alerts while storing anomalies as alerts would feed on itself",
                ));
            }
            queries.push((spec.measurement.clone(), spec.to_query(0)?));
        }
        let filter = EventFilter {
            event_types: vec![EventType::HistoryDataUpdated],
            measurements: queries.iter().map(|(m, _)| m.clone()).collect(),
            ..EventFilter::default()
        };
        let subscription = history.engine().subscribe(filter, 4_096);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut state = WatchState {
            history,
            options,
            queries,
            detectors: HashMap::new(),
            counters: counters.clone(),
        };
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("annals-trends".into())
            .spawn(move || {
                state.replay();
                while !stopping.load(Ordering::Relaxed) {
                    if let Some(Event::HistoryDataUpdated(update)) = subscription.recv_timeout(Duration::from_millis(100)) {
                        state.score_range(&update.measurements, update.measurements_omitted > 0, update.from_ns, update.to_ns);
                    }
                }
            })
            .map_err(|e| Error::Io {
                op: "start the trend watcher thread",
                path: "".into(),
                source: e,
            })?;
        Ok(TrendWatcher {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> WatchStats {
        let c = &self.counters;
        WatchStats {
            points_scored: c.points_scored.load(Ordering::Relaxed),
            points_replayed: c.points_replayed.load(Ordering::Relaxed),
            anomalies: c.anomalies.load(Ordering::Relaxed),
            series: c.series.load(Ordering::Relaxed),
            unwatched_points: c.unwatched_points.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Stops the thread and waits for it (it finishes the batch of points it is scoring).
    pub fn stop(mut self) -> WatchStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TrendWatcher {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Detector {
    detector: AnomalyDetector,
    last_time: i64,
}

struct WatchState {
    history: Arc<History>,
    options: WatchOptions,
    queries: Vec<(String, Query)>,
    detectors: HashMap<(SeriesId, String), Detector>,
    counters: Arc<Counters>,
}

impl WatchState {
    /// Warms every detector on the newest `replay_nanos` of its selection.
    fn replay(&mut self) {
        for k in 0..self.queries.len() {
            let newest = {
                let mut last = self.queries[k].1.clone();
                last.lastpoint = true;
                match self.history.engine().snapshot().query(&last).and_then(|r| r.collect_rows()) {
                    Ok((rows, _)) => rows.iter().filter_map(|r| r.time).max(),
                    Err(_) => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            };
            if let Some(newest) = newest {
                let from = newest.saturating_sub(self.options.replay_nanos);
                self.read_and_score(k, TimeRange::new(from, newest.saturating_add(1)), false);
            }
        }
    }

    /// Scores the points of `[from, to]` of the selections an update names.
    fn score_range(&mut self, measurements: &[String], some_omitted: bool, from: i64, to: i64) {
        for k in 0..self.queries.len() {
            if some_omitted || measurements.contains(&self.queries[k].0) {
                self.read_and_score(k, TimeRange::new(from, to.saturating_add(1)), true);
            }
        }
    }

    fn read_and_score(&mut self, k: usize, range: TimeRange, live: bool) {
        let mut query = self.queries[k].1.clone();
        // The selection's own range (if any) still applies.
        query.range = TimeRange::new(range.start.max(query.range.start), range.end.min(query.range.end));
        query.order = Order::Ascending;
        let snapshot = self.history.engine().snapshot();
        let result = snapshot.query(&query);
        let mut result = match result {
            Ok(r) => r,
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let columns = result.value_columns.clone();
        let measurement = self.queries[k].0.clone();
        let mut alerts = Vec::new();
        for row in result.by_ref() {
            let Ok(row) = row else {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            };
            let (Some(series), Some(time)) = (row.series, row.time) else {
                continue;
            };
            for (column, value) in row.values.iter().enumerate() {
                let Some(value) = value.as_ref().and_then(super::trends::numeric) else {
                    continue;
                };
                let key = (series, columns[column].clone());
                let known = self.detectors.len();
                let entry = match self.detectors.get_mut(&key) {
                    Some(e) => e,
                    None if known >= self.options.max_series => {
                        self.counters.unwatched_points.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    None => {
                        self.counters.series.fetch_add(1, Ordering::Relaxed);
                        self.detectors.entry(key.clone()).or_insert(Detector {
                            detector: AnomalyDetector::new(self.options.detector),
                            last_time: i64::MIN,
                        })
                    }
                };
                if time <= entry.last_time {
                    // Already scored, or written late: a detector only moves forward.
                    if live {
                        self.counters.unwatched_points.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                entry.last_time = time;
                let scored = entry.detector.score(time, value);
                if !live {
                    self.counters.points_replayed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                self.counters.points_scored.fetch_add(1, Ordering::Relaxed);
                if scored.anomaly {
                    alerts.push((series, key.1, time, value, scored.score));
                }
            }
        }
        drop(result);
        for (series, field, time, value, score) in alerts {
            self.counters.anomalies.fetch_add(1, Ordering::Relaxed);
            let tags: std::collections::BTreeMap<String, String> = snapshot
                .series_key(series)
                .map(|key| key.tags().iter().cloned().collect())
                .unwrap_or_default();
            self.history.engine().publish_event(&Event::TrendAlert(TrendAlert {
                measurement: measurement.clone(),
                field: field.clone(),
                tags: tags.clone(),
                time: format_rfc3339(time),
                value,
                score,
            }));
            if self.options.store_alerts {
                let label: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut metadata = crate::model::Metadata::new();
                metadata.insert("score".into(), FieldValue::F64(score));
                metadata.insert("value".into(), FieldValue::F64(value));
                metadata.insert("measurement".into(), FieldValue::Str(measurement.clone()));
                metadata.insert("field".into(), FieldValue::Str(field.clone()));
                for (k, v) in &tags {
                    metadata.insert(format!("tag.{k}"), FieldValue::Str(v.clone()));
                }
                let alert = AlertEvent {
                    timestamp: time,
                    alert_id: format!("anomaly:{measurement}:{field}:{}:{time}", label.join(",")),
                    state: AlertState::Raised,
                    level: LogLevel::Warning,
                    category: "anomaly".into(),
                    title: format!("{measurement} {field} {{{}}} anomalous at {value}", label.join(",")),
                    description: Some(format!("anomaly score {score:.3} at {}", format_rfc3339(time))),
                    source_component: Some("annals-trends".into()),
                    metadata,
                };
                if self.history.store_alert(&alert).is_err() {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
