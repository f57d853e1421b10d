//! Every log record of a program goes to its history: [`HistoryLayer`], a
//! `tracing-subscriber` layer, stores `tracing` events as log records (and, if asked, span
//! durations as performance samples), and [`HistoryLogger`] does the same for programs on
//! the `log` crate.
//!
//! ```
//! use annals::tracing::{HistoryLayer, LayerOptions};
//! use annals::{Engine, Options};
//! use tracing_subscriber::layer::SubscriberExt;
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Arc::new(Engine::open(dir.path(), Options::default()).unwrap());
//! let (layer, guard) = HistoryLayer::new(engine.clone(), LayerOptions::default()).unwrap();
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(user = 42, "signed in");
//! });
//! guard.flush().unwrap(); // stored and durable; dropping the guard flushes too
//! assert_eq!(guard.stats().stored, 1);
//! ```
//!
//! **Never blocking the caller on I/O.** The caller's thread turns the event into a record
//! (its fields formatted) and offers it to a bounded queue; a writer thread takes records in
//! batches and writes each batch with one group commit. When the queue is full the record
//! is dropped and counted: [`LayerStats::dropped`], and a WARNING record
//! (`logger_name` `annals::tracing`) with the count is stored once the writer catches up.
//!
//! **Records.** Level (TRACE and DEBUG are DEBUG, WARN is WARNING), the target as the
//! logger name, the module path, the line number, the thread (`thread_id` the OS thread
//! id on Linux; `extra_data.thread_name`), the process id, `extra_data.file`, the event's
//! fields (`message` is the message) and the fields of its spans as
//! `extra_data.<span>.<field>` with `extra_data.spans` naming the spans root first. Span
//! durations become performance samples: component the target, operation the span name,
//! `duration_ms` from creation to close, the span's fields as metadata.
//!
//! **No loops.** Events whose target starts with one of [`LayerOptions::ignore_targets`]
//! (`annals` and `tantivy` by default: the store's own work) and events on the writer
//! thread are not stored.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Batch, FieldValue, LogEntry, LogLevel, Metadata, PerformanceData};
use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Level, Subscriber};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The logger name of the layer's own WARNING records (dropped events).
pub const LAYER_LOGGER: &str = "annals::tracing";

/// How the layer queues and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOptions {
    /// Records the queue holds before new ones are dropped (default 65,536).
    pub queue_capacity: usize,
    /// Most records written in one batch (default 4,096).
    pub batch_rows: usize,
    /// Events below this level are not stored (default DEBUG: TRACE is left out).
    pub min_level: Level,
    /// Also store each span's duration as a performance sample (default false).
    pub span_durations: bool,
    /// Events whose target starts with any of these are not stored (default `annals`,
    /// `tantivy`: the store's own work must not feed itself).
    pub ignore_targets: Vec<String>,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            queue_capacity: 65_536,
            batch_rows: 4_096,
            min_level: Level::DEBUG,
            span_durations: false,
            ignore_targets: vec!["annals".into(), "tantivy".into()],
        }
    }
}

/// What the layer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerStats {
    /// Records offered to the queue.
    pub queued: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records written to the store (the layer's own warnings included).
    pub stored: u64,
    /// Records lost to failed writes (the store refused the batch).
    pub failed: u64,
}

enum Message {
    Record(Box<Row>),
    /// Write what is pending, then answer.
    Flush(SyncSender<Result<()>>),
    /// Write what is pending, then end the writer.
    Stop,
}

enum Row {
    /// A `tracing` event, as captured on the caller's thread.
    Event(EventRow),
    /// A `log` record, already a log entry.
    Log(LogEntry),
    /// A closed span.
    Span(PerformanceData),
}

/// Field values by their static names.
type FieldList = Vec<(&'static str, FieldValue)>;

/// What the caller's thread captures of a `tracing` event: only what is not `'static`
/// (the time, the thread, the formatted fields); the writer thread makes the log entry.
struct EventRow {
    time_ns: i64,
    metadata: &'static ::tracing::Metadata<'static>,
    thread_id: i64,
    thread_name: Option<Arc<str>>,
    message: String,
    fields: FieldList,
    /// The event's spans, root first, with their fields.
    spans: Vec<(&'static str, Arc<FieldList>)>,
}

impl EventRow {
    fn into_entry(self) -> LogEntry {
        let mut extra: Metadata = self.fields.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        if !self.spans.is_empty() {
            let names: Vec<&str> = self.spans.iter().map(|(name, _)| *name).collect();
            extra.insert("spans".into(), FieldValue::Str(names.join(":")));
            for (span, fields) in &self.spans {
                for (name, value) in fields.iter() {
                    extra.insert(format!("{span}.{name}"), value.clone());
                }
            }
        }
        if let Some(file) = self.metadata.file() {
            extra.insert("file".into(), FieldValue::Str(file.to_string()));
        }
        if let Some(name) = self.thread_name {
            extra.insert("thread_name".into(), FieldValue::Str(name.to_string()));
        }
        LogEntry {
            timestamp: self.time_ns,
            level: level_of(self.metadata.level()),
            logger_name: self.metadata.target().to_string(),
            message: self.message,
            module: self.metadata.module_path().map(str::to_string),
            function_name: None,
            line_number: self.metadata.line().map(i64::from),
            thread_id: Some(self.thread_id),
            process_id: Some(i64::from(std::process::id())),
            extra_data: extra,
            tags: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    stored: AtomicU64,
    failed: AtomicU64,
}

/// The state the layer, its loggers and its guard share.
struct Shared {
    sender: SyncSender<Message>,
    counters: Counters,
    options: LayerOptions,
}

thread_local! {
    /// True on the writer thread, whose events (the store's own) are never stored.
    static ON_WRITER: Cell<bool> = const { Cell::new(false) };
}

impl Shared {
    fn wants(&self, level: Level, target: &str) -> bool {
        level <= self.options.min_level
            && !ON_WRITER.with(Cell::get)
            && !self.options.ignore_targets.iter().any(|prefix| target.starts_with(prefix.as_str()))
    }

    /// Offers a row to the queue without waiting.
    fn offer(&self, row: Row) {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(Message::Record(Box::new(row))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn stats(&self) -> LayerStats {
        LayerStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            stored: self.counters.stored.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits until every record queued before the call is written and durable.
    fn flush(&self) -> Result<()> {
        let (reply, answer) = sync_channel(1);
        self.sender
            .send(Message::Flush(reply))
            .map_err(|_| Error::invalid("the tracing layer's writer has stopped"))?;
        answer
            .recv()
            .map_err(|_| Error::invalid("the tracing layer's writer has stopped"))?
    }
}

/// A `tracing-subscriber` layer that stores events in an annals store (see the module's
/// documentation). Cloning it is cheap; all clones feed one writer.
#[derive(Clone)]
pub struct HistoryLayer {
    shared: Arc<Shared>,
}

/// Owns the layer's writer thread: [`FlushGuard::flush`] waits for what is queued, and
/// dropping the guard flushes and stops the writer (records offered later are dropped and
/// counted).
pub struct FlushGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl HistoryLayer {
    /// A layer writing to `engine`, and the guard of its writer thread.
    pub fn new(engine: Arc<Engine>, options: LayerOptions) -> Result<(HistoryLayer, FlushGuard)> {
        if options.queue_capacity == 0 || options.batch_rows == 0 {
            return Err(Error::invalid("queue_capacity and batch_rows must be at least 1"));
        }
        let (sender, receiver) = sync_channel(options.queue_capacity);
        let shared = Arc::new(Shared {
            sender: sender.clone(),
            counters: Counters::default(),
            options,
        });
        let writer_shared = shared.clone();
        let dir = engine.dir().to_path_buf();
        let writer = std::thread::Builder::new()
            .name("annals-tracing".into())
            .spawn(move || write_loop(&engine, &writer_shared, receiver))
            .map_err(|e| Error::io("spawn the tracing layer's writer thread for", &dir, e))?;
        drop(sender);
        let guard = FlushGuard {
            shared: shared.clone(),
            writer: Some(writer),
        };
        Ok((HistoryLayer { shared }, guard))
    }

    /// Waits until every event offered before the call is stored and durable.
    pub fn flush(&self) -> Result<()> {
        self.shared.flush()
    }

    /// Counts of queued, dropped, stored and failed records.
    pub fn stats(&self) -> LayerStats {
        self.shared.stats()
    }

    /// A `log` logger feeding the same writer, for programs (or dependencies) on `log`.
    pub fn log_bridge(&self) -> HistoryLogger {
        HistoryLogger {
            shared: self.shared.clone(),
        }
    }
}

impl FlushGuard {
    /// Waits until every event offered before the call is stored and durable.
    pub fn flush(&self) -> Result<()> {
        self.shared.flush()
    }

    /// Counts of queued, dropped, stored and failed records.
    pub fn stats(&self) -> LayerStats {
        self.shared.stats()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        // The layers may live on in a subscriber, holding senders, so the writer is told to
        // stop rather than waiting for the channel to close; it writes what is queued first.
        let _ = self.shared.sender.send(Message::Stop);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: takes records in batches of up to `batch_rows`, writes each with one
/// group commit, answers flushes, and reports drops as a WARNING record.
fn write_loop(engine: &Engine, shared: &Shared, receiver: Receiver<Message>) {
    ON_WRITER.with(|on| on.set(true));
    let mut batch = Batch::new();
    let mut rows = 0u64;
    let mut reported_drops = 0u64;
    loop {
        let Ok(first) = receiver.recv() else { return };
        let mut flushes = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(row) => {
                    let added = match *row {
                        Row::Event(event) => batch.add_log(&event.into_entry()),
                        Row::Log(entry) => batch.add_log(&entry),
                        Row::Span(sample) => batch.add_performance(&sample),
                    };
                    match added {
                        Ok(()) => rows += 1,
                        Err(_) => {
                            shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Message::Flush(reply) => flushes.push(reply),
                Message::Stop => stop = true,
            }
            if rows as usize >= shared.options.batch_rows || stop || !flushes.is_empty() {
                break;
            }
            next = receiver.try_recv().ok();
        }
        let dropped = shared.counters.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            let mut warning = LogEntry::new(
                crate::time::now_ns(),
                LogLevel::Warning,
                LAYER_LOGGER,
                format!(
                    "the tracing layer dropped {} events: its queue of {} was full",
                    dropped - reported_drops,
                    shared.options.queue_capacity
                ),
            );
            warning.process_id = Some(i64::from(std::process::id()));
            warning.extra_data = [("dropped_total".to_string(), FieldValue::I64(dropped as i64))]
                .into_iter()
                .collect();
            if batch.add_log(&warning).is_ok() {
                rows += 1;
                reported_drops = dropped;
            }
        }
        let outcome = if rows == 0 {
            Ok(())
        } else {
            let written = engine.write(&batch).map(|_| ());
            match &written {
                Ok(()) => shared.counters.stored.fetch_add(rows, Ordering::Relaxed),
                Err(_) => shared.counters.failed.fetch_add(rows, Ordering::Relaxed),
            };
            batch = Batch::new();
            rows = 0;
            written
        };
        for reply in flushes {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::invalid(format!("the tracing layer could not store its records: {e}"))),
            };
            let _ = reply.send(answer);
        }
        if stop {
            return;
        }
    }
}

/// Field values as stored: numbers and booleans as themselves, the rest as text.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: FieldList,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.values.push((field.name(), FieldValue::Str(format!("{value:?}"))));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.values.push((field.name(), FieldValue::Str(value.to_string())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.push((field.name(), FieldValue::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).map(FieldValue::I64).unwrap_or(FieldValue::F64(value as f64));
        self.values.push((field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values.push((field.name(), FieldValue::F64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.push((field.name(), FieldValue::Bool(value)));
    }
}

/// What a span keeps in its extensions: its fields, and when it began.
struct SpanData {
    /// Shared with the events inside the span, which the writer formats later.
    fields: Arc<FieldList>,
    started: Instant,
    started_ns: i64,
}

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warning,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// The calling thread's id: the OS thread id on Linux, else a number per thread.
fn os_thread_id() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid(2) has no preconditions and cannot fail.
        i64::from(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed) as i64
    }
}

thread_local! {
    /// The calling thread's id and name, looked up once per thread (a system call and a
    /// lock otherwise paid on every event).
    static THREAD: (i64, Option<Arc<str>>) = (os_thread_id(), std::thread::current().name().map(Arc::from));
}

/// A log record from the parts every source (tracing event, `log` record) has.
struct Origin<'a> {
    level: LogLevel,
    target: &'a str,
    module: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
}

fn log_entry(origin: Origin<'_>, message: String, mut extra: Metadata) -> LogEntry {
    if let Some(file) = origin.file {
        extra.insert("file".into(), FieldValue::Str(file.to_string()));
    }
    let thread_id = THREAD.with(|(id, name)| {
        if let Some(name) = name {
            extra.insert("thread_name".into(), FieldValue::Str(name.to_string()));
        }
        *id
    });
    LogEntry {
        timestamp: crate::time::now_ns(),
        level: origin.level,
        logger_name: origin.target.to_string(),
        message,
        module: origin.module.map(str::to_string),
        function_name: None,
        line_number: origin.line.map(i64::from),
        thread_id: Some(thread_id),
        process_id: Some(i64::from(std::process::id())),
        extra_data: extra,
        tags: BTreeMap::new(),
    }
}

impl<S> tracing_subscriber::Layer<S> for HistoryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(message) = fields.message {
            fields.values.push(("message", FieldValue::Str(message)));
        }
        span.extensions_mut().insert(SpanData {
            fields: Arc::new(fields.values),
            started: Instant::now(),
            started_ns: crate::time::now_ns(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
            Arc::make_mut(&mut data.fields).extend(fields.values);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !self.shared.wants(*metadata.level(), metadata.target()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let span_fields = span
                    .extensions()
                    .get::<SpanData>()
                    .map(|data| data.fields.clone())
                    .unwrap_or_default();
                spans.push((span.name(), span_fields));
            }
        }
        let (thread_id, thread_name) = THREAD.with(|(id, name)| (*id, name.clone()));
        self.shared.offer(Row::Event(EventRow {
            time_ns: crate::time::now_ns(),
            metadata,
            thread_id,
            thread_name,
            message: fields.message.unwrap_or_default(),
            fields: fields.values,
            spans,
        }));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.shared.options.span_durations {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let metadata = span.metadata();
        if !self.shared.wants(*metadata.level(), metadata.target()) {
            return;
        }
        let extensions = span.extensions();
        let Some(data) = extensions.get::<SpanData>() else { return };
        self.shared.offer(Row::Span(PerformanceData {
            timestamp: data.started_ns,
            component: metadata.target().to_string(),
            operation: metadata.name().to_string(),
            duration_ms: Some(data.started.elapsed().as_secs_f64() * 1000.0),
            throughput: None,
            efficiency_percent: None,
            error_count: 0,
            metadata: data.fields.iter().map(|(name, value)| (name.to_string(), value.clone())).collect(),
            tags: BTreeMap::new(),
        }));
    }
}

/// A `log` logger that stores records through a [`HistoryLayer`]'s writer: the target is
/// the logger name, `module_path`, `file` and `line` as a tracing event's, key-values are
/// not read (the `kv` feature of `log` is not enabled). Install it with
/// [`HistoryLogger::install`].
#[derive(Clone)]
pub struct HistoryLogger {
    shared: Arc<Shared>,
}

impl HistoryLogger {
    /// Makes this the `log` crate's logger, passing records at `max_level` and above.
    /// Fails when a logger is already set.
    pub fn install(self, max_level: log::LevelFilter) -> Result<()> {
        log::set_boxed_logger(Box::new(self)).map_err(|_| Error::invalid("a `log` logger is already installed in this process"))?;
        log::set_max_level(max_level);
        Ok(())
    }
}

fn tracing_level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::ERROR,
        log::Level::Warn => Level::WARN,
        log::Level::Info => Level::INFO,
        log::Level::Debug => Level::DEBUG,
        log::Level::Trace => Level::TRACE,
    }
}

impl log::Log for HistoryLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.shared.wants(tracing_level(metadata.level()), metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = tracing_level(record.level());
        if !self.shared.wants(level, record.target()) {
            return;
        }
        let origin = Origin {
            level: level_of(&level),
            target: record.target(),
            module: record.module_path(),
            file: record.file(),
            line: record.line(),
        };
        self.shared
            .offer(Row::Log(log_entry(origin, record.args().to_string(), Metadata::new())));
    }

    fn flush(&self) {
        let _ = self.shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::SeriesSelector;
    use crate::model::SeriesKind;
    use crate::read::Order;
    use crate::scan::{ScanRequest, ScanRow};
    use crate::time::TimeRange;
    use crate::{Engine, Options};
    use tracing_subscriber::layer::SubscriberExt;

    fn store() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(dir.path(), Options::default()).unwrap());
        (dir, engine)
    }

    fn rows(engine: &Engine, kind: SeriesKind) -> Vec<ScanRow> {
        let request = ScanRequest {
            selector: SeriesSelector {
                kind: Some(kind),
                measurement: None,
                predicate: None,
            },
            fields: None,
            range: TimeRange::ALL,
            order: Order::Ascending,
            limit: None,
        };
        engine.snapshot().scan(&request).unwrap().map(Result::unwrap).collect()
    }

    fn field<'a>(row: &'a ScanRow, name: &str) -> Option<&'a FieldValue> {
        row.fields.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    fn tag<'a>(row: &'a ScanRow, name: &str) -> Option<&'a str> {
        row.key.tags().iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn events_become_log_records_with_fields_and_spans() {
        let (_dir, engine) = store();
        let (layer, guard) = HistoryLayer::new(engine.clone(), LayerOptions::default()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        ::tracing::subscriber::with_default(subscriber, || {
            let span = ::tracing::info_span!("request", id = 7_u64, path = "/items");
            let _entered = span.enter();
            ::tracing::warn!(target: "app::http", latency_ms = 12.5, slow = true, "took {} ms", 12.5);
            ::tracing::trace!(target: "app::http", "below the minimum level");
            ::tracing::error!(target: "annals::engine", "the store's own: never stored");
        });
        guard.flush().unwrap();
        let logs = rows(&engine, SeriesKind::Log);
        assert_eq!(logs.len(), 1, "{logs:?}");
        let row = &logs[0];
        assert_eq!((tag(row, "level"), tag(row, "logger_name")), (Some("WARNING"), Some("app::http")));
        assert_eq!(field(row, "message"), Some(&FieldValue::Str("took 12.5 ms".into())));
        assert_eq!(field(row, "extra_data.latency_ms"), Some(&FieldValue::F64(12.5)));
        assert_eq!(field(row, "extra_data.slow"), Some(&FieldValue::Bool(true)));
        assert_eq!(field(row, "extra_data.request.id"), Some(&FieldValue::I64(7)));
        assert_eq!(field(row, "extra_data.request.path"), Some(&FieldValue::Str("/items".into())));
        assert_eq!(field(row, "extra_data.spans"), Some(&FieldValue::Str("request".into())));
        assert_eq!(field(row, "extra_data.file"), Some(&FieldValue::Str(file!().into())));
        assert!(matches!(field(row, "line_number"), Some(FieldValue::I64(line)) if *line > 0));
        assert_eq!(field(row, "process_id"), Some(&FieldValue::I64(i64::from(std::process::id()))));
        assert_eq!(
            guard.stats(),
            LayerStats {
                queued: 1,
                dropped: 0,
                stored: 1,
                failed: 0
            }
        );
    }

    #[test]
    fn span_durations_are_performance_samples_when_asked() {
        let (_dir, engine) = store();
        let options = LayerOptions {
            span_durations: true,
            ..LayerOptions::default()
        };
        let (layer, guard) = HistoryLayer::new(engine.clone(), options).unwrap();
        ::tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = ::tracing::info_span!(target: "app::db", "query", table = "items");
            let entered = span.enter();
            std::thread::sleep(std::time::Duration::from_millis(5));
            drop(entered);
            drop(span);
        });
        guard.flush().unwrap();
        let samples = rows(&engine, SeriesKind::Performance);
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert_eq!(
            (tag(&samples[0], "component"), tag(&samples[0], "operation")),
            (Some("app::db"), Some("query"))
        );
        assert!(matches!(field(&samples[0], "duration_ms"), Some(FieldValue::F64(ms)) if *ms >= 5.0));
        assert_eq!(field(&samples[0], "metadata.table"), Some(&FieldValue::Str("items".into())));
    }

    #[test]
    fn a_full_queue_drops_counts_and_warns() {
        let (_dir, engine) = store();
        // A queue of two whose writer starts only after five records were offered.
        let (sender, receiver) = sync_channel(2);
        let shared = Arc::new(Shared {
            sender,
            counters: Counters::default(),
            options: LayerOptions {
                queue_capacity: 2,
                ..LayerOptions::default()
            },
        });
        let logger = HistoryLogger { shared: shared.clone() };
        for i in 0..5 {
            log::Log::log(
                &logger,
                &log::Record::builder()
                    .args(format_args!("record {i}"))
                    .level(log::Level::Info)
                    .target("app")
                    .build(),
            );
        }
        assert_eq!((shared.stats().queued, shared.stats().dropped), (5, 3));
        let writer_shared = shared.clone();
        let writer_engine = engine.clone();
        let writer = std::thread::spawn(move || write_loop(&writer_engine, &writer_shared, receiver));
        shared.flush().unwrap();
        let messages: Vec<String> = rows(&engine, SeriesKind::Log)
            .iter()
            .map(|r| match field(r, "message") {
                Some(FieldValue::Str(m)) => m.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(&messages[..2], ["record 0", "record 1"]);
        assert_eq!(messages[2], "the tracing layer dropped 3 events: its queue of 2 was full");
        assert_eq!(shared.stats().stored, 3);
        shared.sender.send(Message::Stop).unwrap();
        writer.join().unwrap();
    }

    #[test]
    fn the_log_bridge_and_the_guard_store_what_was_queued() {
        let (_dir, engine) = store();
        let (layer, guard) = HistoryLayer::new(engine.clone(), LayerOptions::default()).unwrap();
        let logger = layer.log_bridge();
        let warn_disk = |logger: &HistoryLogger| {
            log::Log::log(
                logger,
                &log::Record::builder()
                    .args(format_args!("disk {}% full", 91))
                    .level(log::Level::Warn)
                    .target("app::disk")
                    .module_path(Some("app::disk"))
                    .file(Some("src/disk.rs"))
                    .line(Some(42))
                    .build(),
            )
        };
        warn_disk(&logger);
        let ignored = log::Record::builder()
            .args(format_args!("tantivy's own"))
            .level(log::Level::Info)
            .target("tantivy::indexer")
            .build();
        assert!(!log::Log::enabled(&logger, ignored.metadata()));
        log::Log::log(&logger, &ignored);
        // Dropping the guard flushes: no explicit flush.
        drop(guard);
        let logs = rows(&engine, SeriesKind::Log);
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(field(&logs[0], "message"), Some(&FieldValue::Str("disk 91% full".into())));
        assert_eq!(field(&logs[0], "line_number"), Some(&FieldValue::I64(42)));
        assert_eq!(tag(&logs[0], "module"), Some("app::disk"));
        // After the writer stopped, records are dropped and counted, not lost silently.
        warn_disk(&logger);
        assert_eq!(layer.stats().dropped, 1);
        assert!(layer.flush().is_err());
    }
}
