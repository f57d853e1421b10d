//! Events of an open store, for subscribers: `history_data_updated` per durable write,
//! `archive_completed`, `storage_warning`, `operation_completed`, `trend_alert`, and
//! `lagged` for a subscriber that fell behind.
//!
//! The [`EventHub`] belongs to the engine. A write stages its event under the writer lock,
//! in commit order, and the event is released to subscribers once the write is durable
//! (the group commit that covered it returned), so subscribers see writes in commit order
//! and never a write that could still be lost. With no subscriber nothing is built.
//!
//! Each subscriber has a bounded queue: a slow subscriber never slows a writer. A full
//! queue drops its oldest event, and the subscriber's next receive is a `lagged` event with
//! the number dropped. A data event arriving behind another data event still queued is
//! merged into it, so a subscriber that reads a few times a second gets a few coalesced
//! events a second however fast the writes come.

use crate::error::{Error, Result};
use crate::model::{Batch, SeriesKind};
use crate::time::format_rfc3339;
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Most measurement names one data event lists; the rest are counted in
/// `measurements_omitted`.
const MAX_LISTED_MEASUREMENTS: usize = 64;

/// The type of an event, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// Rows became durable.
    HistoryDataUpdated,
    /// Trend analysis found an anomaly.
    TrendAlert,
    /// An archive file was written and its months left the store.
    ArchiveCompleted,
    /// Disk space low, the store poisoned, or retention refusing writes.
    StorageWarning,
    /// A long operation started through the server ended.
    OperationCompleted,
    /// The subscriber's queue overflowed; this many events were dropped.
    Lagged,
}

impl EventType {
    /// Every type, in wire order.
    pub const ALL: [EventType; 6] = [
        EventType::HistoryDataUpdated,
        EventType::TrendAlert,
        EventType::ArchiveCompleted,
        EventType::StorageWarning,
        EventType::OperationCompleted,
        EventType::Lagged,
    ];

    /// The wire name, e.g. `history_data_updated`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::HistoryDataUpdated => "history_data_updated",
            EventType::TrendAlert => "trend_alert",
            EventType::ArchiveCompleted => "archive_completed",
            EventType::StorageWarning => "storage_warning",
            EventType::OperationCompleted => "operation_completed",
            EventType::Lagged => "lagged",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
            Error::invalid(format!("unknown event type {name:?}; known: {}", known.join(", ")))
        })
    }
}

/// Rows that became durable: one write, or several merged while the subscriber had not
/// read them yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataUpdate {
    /// Sequence number of the first row.
    pub first_seq: u64,
    /// Sequence number of the last row.
    pub last_seq: u64,
    /// Writes merged into this event.
    pub writes: u64,
    /// Rows written.
    pub rows: u64,
    /// Field values written.
    pub points: u64,
    /// Kinds of the rows (`metric`, `log`, ...), sorted.
    pub kinds: Vec<String>,
    /// Measurements of the rows, sorted, at most 64.
    pub measurements: Vec<String>,
    /// Measurements written but not listed.
    pub measurements_omitted: u64,
    /// Oldest row's time, RFC 3339.
    pub from: String,
    /// Newest row's time, RFC 3339.
    pub to: String,
    /// Oldest row's time, nanoseconds.
    pub from_ns: i64,
    /// Newest row's time, nanoseconds.
    pub to_ns: i64,
}

impl DataUpdate {
    /// The update a batch makes, whose first row has sequence number `first_seq`. `None`
    /// for an empty batch.
    pub(crate) fn of_batch(batch: &Batch, first_seq: u64) -> Option<DataUpdate> {
        let (from_ns, to_ns) = batch.rows.iter().fold(None, |acc: Option<(i64, i64)>, row| match acc {
            None => Some((row.timestamp, row.timestamp)),
            Some((lo, hi)) => Some((lo.min(row.timestamp), hi.max(row.timestamp))),
        })?;
        let kinds: BTreeSet<&str> = batch.series.iter().map(|k| k.kind().name()).collect();
        let measurements: BTreeSet<&str> = batch.series.iter().map(|k| k.measurement()).collect();
        let mut update = DataUpdate {
            first_seq,
            last_seq: first_seq + batch.rows.len() as u64 - 1,
            writes: 1,
            rows: batch.rows.len() as u64,
            points: batch.point_count() as u64,
            kinds: kinds.into_iter().map(str::to_string).collect(),
            measurements: Vec::new(),
            measurements_omitted: 0,
            // Written when received (`format_times`).
            from: String::new(),
            to: String::new(),
            from_ns,
            to_ns,
        };
        update.set_measurements(measurements.into_iter().map(str::to_string).collect());
        Some(update)
    }

    fn set_measurements(&mut self, all: BTreeSet<String>) {
        let total = all.len() as u64 + self.measurements_omitted;
        self.measurements = all.into_iter().take(MAX_LISTED_MEASUREMENTS).collect();
        self.measurements_omitted = total - self.measurements.len() as u64;
    }

    /// Folds a later update into this one. Cheap when the later one names nothing new
    /// (the common case: a stream of writes to the same measurements), since it runs for
    /// every subscriber that has not read yet.
    fn merge(&mut self, later: &DataUpdate) {
        self.last_seq = self.last_seq.max(later.last_seq);
        self.first_seq = self.first_seq.min(later.first_seq);
        self.writes += later.writes;
        self.rows += later.rows;
        self.points += later.points;
        if !later.kinds.iter().all(|k| self.kinds.contains(k)) {
            let kinds: BTreeSet<String> = self.kinds.drain(..).chain(later.kinds.iter().cloned()).collect();
            self.kinds = kinds.into_iter().collect();
        }
        if !later.measurements.iter().all(|m| self.measurements.contains(m)) {
            let measurements: BTreeSet<String> = self.measurements.drain(..).chain(later.measurements.iter().cloned()).collect();
            // Omitted names of either side may overlap listed ones; the count stays an upper bound.
            self.measurements_omitted += later.measurements_omitted;
            self.set_measurements(measurements);
        } else {
            self.measurements_omitted += later.measurements_omitted;
        }
        self.from_ns = self.from_ns.min(later.from_ns);
        self.to_ns = self.to_ns.max(later.to_ns);
    }

    /// Writes `from` and `to` from the nanosecond times (done once, when the event is
    /// received, not for every write merged into it).
    fn format_times(&mut self) {
        self.from = format_rfc3339(self.from_ns);
        self.to = format_rfc3339(self.to_ns);
    }
}

/// A point trend analysis scored as anomalous.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendAlert {
    /// The series' measurement.
    pub measurement: String,
    /// The field scored.
    pub field: String,
    /// The series' tags.
    pub tags: BTreeMap<String, String>,
    /// The point's time, RFC 3339.
    pub time: String,
    /// The point's value.
    pub value: f64,
    /// Anomaly score in [0, 1].
    pub score: f64,
}

/// An archive was written and its months left the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveCompleted {
    /// The archive file.
    pub path: String,
    /// Months archived, `YYYY-MM`.
    pub months: Vec<String>,
    /// Rows archived.
    pub rows: u64,
    /// Bytes of the archive file.
    pub bytes: u64,
}

/// A storage condition an operator should act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageAlarm {
    /// `low_disk`, `poisoned` or `retention_refused`.
    pub kind: String,
    /// In words.
    pub message: String,
    /// Bytes free on the store's file system, for `low_disk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// The configured threshold, for `low_disk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_bytes: Option<u64>,
}

/// A long operation ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationCompleted {
    /// The operation's id.
    pub id: u64,
    /// `archive`, `cleanup` or `optimize`.
    pub operation: String,
    /// `succeeded` or `failed`.
    pub status: String,
    /// The error, for a failed operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event. As JSON, an object whose `type` is the [`EventType`]'s name beside the
/// event's own keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Rows became durable.
    HistoryDataUpdated(DataUpdate),
    /// Trend analysis found an anomaly.
    TrendAlert(TrendAlert),
    /// An archive completed.
    ArchiveCompleted(ArchiveCompleted),
    /// A storage condition.
    StorageWarning(StorageAlarm),
    /// A long operation ended.
    OperationCompleted(OperationCompleted),
    /// Events this subscriber's full queue dropped, oldest first, since its last receive.
    Lagged {
        /// How many.
        dropped: u64,
    },
}

impl Event {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::HistoryDataUpdated(_) => EventType::HistoryDataUpdated,
            Event::TrendAlert(_) => EventType::TrendAlert,
            Event::ArchiveCompleted(_) => EventType::ArchiveCompleted,
            Event::StorageWarning(_) => EventType::StorageWarning,
            Event::OperationCompleted(_) => EventType::OperationCompleted,
            Event::Lagged { .. } => EventType::Lagged,
        }
    }

    /// The event as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing these plain structs into a `Value` cannot fail (no maps with
        // non-string keys, no non-finite floats turned into errors).
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Which events a subscriber receives. Empty lists mean "all"; `lagged` is always
/// delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event types to receive.
    pub event_types: Vec<EventType>,
    /// Data kinds (`metric`, `performance`, `log`, `alert`, `commit`): a data event is
    /// delivered when it holds rows of one of them.
    pub kinds: Vec<SeriesKind>,
    /// Measurements: data and trend events are delivered when they name one of them.
    pub measurements: Vec<String>,
}

impl EventFilter {
    fn accepts(&self, event: &Event) -> bool {
        let kind = event.event_type();
        if kind == EventType::Lagged {
            return true;
        }
        if !self.event_types.is_empty() && !self.event_types.contains(&kind) {
            return false;
        }
        match event {
            Event::HistoryDataUpdated(update) => {
                let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| update.kinds.iter().any(|n| n == k.name()));
                let measurement_ok = self.measurements.is_empty()
                    || update.measurements_omitted > 0
                    || self.measurements.iter().any(|m| update.measurements.contains(m));
                kind_ok && measurement_ok
            }
            Event::TrendAlert(alert) => self.measurements.is_empty() || self.measurements.contains(&alert.measurement),
            _ => true,
        }
    }
}

struct Queue {
    events: VecDeque<Event>,
    dropped: u64,
    closed: bool,
}

/// One subscriber's bounded queue.
struct Subscriber {
    filter: EventFilter,
    capacity: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Called after an event was queued (the server wakes its async task with it).
    wake: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Subscriber {
    fn push(&self, event: &Event) {
        if !self.filter.accepts(event) {
            return;
        }
        {
            let mut q = self.queue.lock();
            if q.closed {
                return;
            }
            if let (Event::HistoryDataUpdated(later), Some(Event::HistoryDataUpdated(last))) = (event, q.events.back_mut()) {
                last.merge(later);
            } else {
                if q.events.len() >= self.capacity {
                    q.events.pop_front();
                    q.dropped += 1;
                }
                q.events.push_back(event.clone());
            }
        }
        self.ready.notify_one();
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

/// A subscription: receive events from it; dropping it unsubscribes.
pub struct Subscription {
    subscriber: Arc<Subscriber>,
}

impl Subscription {
    /// The next event without waiting: `lagged` first if events were dropped.
    pub fn try_recv(&self) -> Option<Event> {
        Self::pop(&mut self.subscriber.queue.lock())
    }

    /// The next event, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        let mut q = self.subscriber.queue.lock();
        if q.events.is_empty() && q.dropped == 0 {
            self.subscriber.ready.wait_for(&mut q, timeout);
        }
        Self::pop(&mut q)
    }

    fn pop(q: &mut Queue) -> Option<Event> {
        if q.dropped > 0 {
            let dropped = std::mem::take(&mut q.dropped);
            return Some(Event::Lagged { dropped });
        }
        let mut event = q.events.pop_front()?;
        if let Event::HistoryDataUpdated(update) = &mut event {
            update.format_times();
        }
        Some(event)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.subscriber.queue.lock().closed = true;
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("filter", &self.subscriber.filter).finish()
    }
}

/// The store's event hub: subscribers, and data events staged until durable.
#[derive(Default)]
pub(crate) struct EventHub {
    subscribers: Mutex<Vec<Weak<Subscriber>>>,
    /// Live subscribers, read without a lock on the write path.
    live: AtomicUsize,
    /// Data events of appended writes, by the WAL position after them, in commit order.
    staged: Mutex<VecDeque<(u64, DataUpdate)>>,
    /// Length of `staged`, read without its lock on the write path.
    staged_len: AtomicUsize,
}

impl EventHub {
    /// Adds a subscriber with a queue of `capacity` events (at least 1); `wake` is called
    /// after each event queued for it.
    pub(crate) fn subscribe(&self, filter: EventFilter, capacity: usize, wake: Option<Box<dyn Fn() + Send + Sync>>) -> Subscription {
        let subscriber = Arc::new(Subscriber {
            filter,
            capacity: capacity.max(1),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                dropped: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            wake,
        });
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|s| s.strong_count() > 0);
        subscribers.push(Arc::downgrade(&subscriber));
        self.live.store(subscribers.len(), Ordering::SeqCst);
        Subscription { subscriber }
    }

    /// Whether anyone listens (the write path builds no event otherwise).
    pub(crate) fn has_subscribers(&self) -> bool {
        self.live.load(Ordering::Relaxed) > 0
    }

    /// Delivers `event` to every subscriber whose filter takes it.
    pub(crate) fn publish(&self, event: &Event) {
        if !self.has_subscribers() {
            return;
        }
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|weak| match weak.upgrade() {
            Some(s) => {
                s.push(event);
                true
            }
            None => false,
        });
        self.live.store(subscribers.len(), Ordering::SeqCst);
    }

    /// Stages the data event of a write appended up to WAL position `lsn`. Called under the
    /// writer lock, so staged events are in commit order.
    pub(crate) fn stage(&self, lsn: u64, update: DataUpdate) {
        let mut staged = self.staged.lock();
        staged.push_back((lsn, update));
        self.staged_len.store(staged.len(), Ordering::SeqCst);
    }

    /// Publishes the staged events of writes durable up to `lsn`, in commit order.
    pub(crate) fn release_through(&self, lsn: u64) {
        if self.staged_len.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Held across publishing, so two releasing writers cannot interleave their events.
        let mut staged = self.staged.lock();
        while staged.front().is_some_and(|(at, _)| *at <= lsn) {
            if let Some((_, update)) = staged.pop_front() {
                self.publish(&Event::HistoryDataUpdated(update));
            }
        }
        self.staged_len.store(staged.len(), Ordering::SeqCst);
    }
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("subscribers", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FieldValue, SeriesKey};

    fn batch(measurement: &str, timestamps: &[i64]) -> Batch {
        let mut b = Batch::new();
        for &ts in timestamps {
            b.add_row(&SeriesKey::metric(measurement).unwrap(), ts, [("v", FieldValue::F64(1.0))])
                .unwrap();
        }
        b
    }

    #[test]
    fn staged_events_are_released_in_commit_order_once_durable() {
        let hub = EventHub::default();
        let sub = hub.subscribe(EventFilter::default(), 16, None);
        hub.stage(10, DataUpdate::of_batch(&batch("a", &[5, 1]), 1).unwrap());
        hub.stage(20, DataUpdate::of_batch(&batch("b", &[7]), 3).unwrap());
        assert_eq!(sub.try_recv(), None, "nothing is released before it is durable");
        hub.release_through(10);
        match sub.try_recv() {
            Some(Event::HistoryDataUpdated(u)) => {
                assert_eq!((u.first_seq, u.last_seq, u.rows, u.from_ns, u.to_ns), (1, 2, 2, 1, 5));
                assert_eq!(
                    (u.from.as_str(), u.to.as_str()),
                    ("1970-01-01T00:00:00.000000001Z", "1970-01-01T00:00:00.000000005Z")
                );
                assert_eq!(u.measurements, ["a"]);
                assert_eq!(u.kinds, ["metric"]);
            }
            other => panic!("expected the first write's event, got {other:?}"),
        }
        hub.release_through(25);
        match sub.try_recv() {
            Some(Event::HistoryDataUpdated(u)) => assert_eq!(u.first_seq, 3),
            other => panic!("expected the second write's event, got {other:?}"),
        }
    }

    #[test]
    fn unread_data_events_merge_and_a_full_queue_reports_lagged() {
        let hub = EventHub::default();
        let sub = hub.subscribe(EventFilter::default(), 2, None);
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            hub.stage(i as u64 + 1, DataUpdate::of_batch(&batch(m, &[i as i64]), i as u64 + 1).unwrap());
        }
        hub.release_through(3);
        match sub.try_recv() {
            Some(Event::HistoryDataUpdated(u)) => {
                assert_eq!((u.writes, u.rows, u.first_seq, u.last_seq), (3, 3, 1, 3));
                assert_eq!(u.measurements, ["a", "b", "c"]);
            }
            other => panic!("expected one merged event, got {other:?}"),
        }
        let warning = |n: u64| {
            Event::StorageWarning(StorageAlarm {
                kind: "low_disk".into(),
                message: n.to_string(),
                free_bytes: Some(n),
                threshold_bytes: None,
            })
        };
        for n in 0..5 {
            hub.publish(&warning(n));
        }
        assert_eq!(sub.try_recv(), Some(Event::Lagged { dropped: 3 }));
        assert_eq!(sub.try_recv(), Some(warning(3)), "the oldest were dropped");
        assert_eq!(sub.try_recv(), Some(warning(4)));
        assert_eq!(sub.try_recv(), None);
    }

    #[test]
    fn filters_select_types_kinds_and_measurements() {
        let hub = EventHub::default();
        let only_b = hub.subscribe(
            EventFilter {
                measurements: vec!["b".into()],
                ..EventFilter::default()
            },
            8,
            None,
        );
        let only_logs = hub.subscribe(
            EventFilter {
                kinds: vec![SeriesKind::Log],
                ..EventFilter::default()
            },
            8,
            None,
        );
        let only_archives = hub.subscribe(
            EventFilter {
                event_types: vec![EventType::ArchiveCompleted],
                ..EventFilter::default()
            },
            8,
            None,
        );
        hub.stage(1, DataUpdate::of_batch(&batch("a", &[1]), 1).unwrap());
        hub.stage(2, DataUpdate::of_batch(&batch("b", &[1]), 2).unwrap());
        hub.release_through(2);
        match only_b.try_recv() {
            Some(Event::HistoryDataUpdated(u)) => assert_eq!(u.measurements, ["b"]),
            other => panic!("expected b's event, got {other:?}"),
        }
        assert_eq!(only_b.try_recv(), None);
        assert_eq!(only_logs.try_recv(), None, "metric rows are not log rows");
        assert_eq!(only_archives.try_recv(), None);
        let archive = Event::ArchiveCompleted(ArchiveCompleted {
            path: "x.annarc".into(),
            months: vec!["2026-01".into()],
            rows: 1,
            bytes: 2,
        });
        hub.publish(&archive);
        assert_eq!(only_archives.try_recv(), Some(archive.clone()));
        assert_eq!(archive.to_json()["type"], "archive_completed");
        assert_eq!(EventType::parse("lagged").unwrap(), EventType::Lagged);
        match EventType::parse("nope") {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("history_data_updated"), "{reason}"),
            other => panic!("expected an unknown-type error, got {other:?}"),
        }
    }

    #[test]
    fn a_dropped_subscription_leaves_the_hub() {
        let hub = EventHub::default();
        let sub = hub.subscribe(EventFilter::default(), 4, None);
        assert!(hub.has_subscribers());
        drop(sub);
        hub.publish(&Event::Lagged { dropped: 0 });
        assert!(!hub.has_subscribers());
    }
}
