//! Forwarding metrics to a central Prometheus-compatible store (feature `forward`): a
//! Prometheus remote-write 1.0 sender (snappy protobuf `WriteRequest`s over HTTP), for
//! when one machine is not enough. VictoriaMetrics' `/api/v1/write`, Prometheus' own
//! receiver, Mimir, Thanos and Cortex take what it sends.
//!
//! A [`Forwarder`] runs on its own thread. Every `interval` it reads, from a snapshot, the
//! selected metric series' rows with times after its *position* and up to `settle` before
//! now, oldest first (the scan merges series by time), and sends them in requests of at
//! most `max_samples_per_request` samples, each cut where the time changes. Each numeric
//! field of a row is a sample of the series `<measurement>_<field>` (`<measurement>` for the
//! field `value` that remote write stores), labelled with the series' tags: the names
//! annals' PromQL answers to, so a dashboard reads the same series from both. Booleans are
//! 0 and 1; strings and bytes are not samples.
//!
//! **Position.** After the remote acknowledges a request (2xx), the position (the time up
//! to which every selected row has been sent) moves to the request's last time and is
//! written durably (`forward/<name>.json` in the store's directory, temporary file and
//! rename) before the next request is sent. A restart resumes from it, so a sample the
//! remote acknowledged is never sent again, and nothing after the position is skipped. The
//! one window: a crash after the remote stored a request and before its acknowledgement
//! reached annals (or was recorded) sends that request again.
//!
//! **Failures.** A connection error, a timeout, a 5xx or a 429 is retried with the same
//! request, after a backoff that doubles from 250 ms to `max_backoff` (with jitter), for as
//! long as it takes; rows keep arriving in the store meanwhile and are sent after. A
//! 4xx other than 429 means the remote will never take the request: it is counted in
//! [`ForwardStats::rejected_samples`] with the remote's answer, and the position moves
//! past it, as Prometheus does.
//!
//! **Late rows.** A row written with a time at or before the position (older than
//! `settle` when it arrives) is not forwarded; make `settle` longer than the lag of the
//! store's writers.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::{SeriesSelector, TagPredicate};
use crate::ingest::remote_write::{Label, METRIC_NAME_LABEL, Sample, TimeSeries, WriteRequest};
use crate::model::{FieldValue, SeriesId, SeriesKind};
use crate::scan::ScanRequest;
use crate::time::{TimeRange, format_rfc3339};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The folder of the positions, in the store's directory.
pub const FORWARD_DIR: &str = "forward";

/// How the sender proves who it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum ForwardAuth {
    /// Nothing.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic` with a user name and password.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        match self {
            ForwardAuth::None => write!(f, "None"),
            ForwardAuth::Bearer(_) => write!(f, "Bearer(..)"),
            ForwardAuth::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, .. }}"),
        }
    }
}

/// What a [`Forwarder`] sends, where, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardOptions {
    /// The remote-write URL, e.g. `http://vm:8428/api/v1/write`.
    pub url: String,
    /// Names the position file (`forward/<name>.json`); one per remote (default `default`).
    pub name: String,
    /// Credentials.
    pub auth: ForwardAuth,
    /// Only metric series of these measurements (all when empty).
    pub measurements: Vec<String>,
    /// Only series whose tags satisfy all of these (as `--where`: `region=eu`, ...).
    pub predicates: Vec<String>,
    /// Where a first run (no position yet) starts, in ns, inclusive; `None`: from the time
    /// it starts, so history already in the store is not sent.
    pub start: Option<i64>,
    /// Rows are sent once they are this old (default 10 s): writers' lag.
    pub settle: Duration,
    /// How often the store is read for new rows (default 5 s).
    pub interval: Duration,
    /// Samples per request at most (default 5,000); a request is cut where the time
    /// changes, so it holds more when more rows share its last time.
    pub max_samples_per_request: usize,
    /// The longest wait between retries (default 30 s).
    pub max_backoff: Duration,
    /// Time allowed for one request (default 30 s).
    pub request_timeout: Duration,
}

impl ForwardOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> ForwardOptions {
        ForwardOptions {
            url: url.into(),
            name: "default".to_string(),
            auth: ForwardAuth::None,
            measurements: Vec::new(),
            predicates: Vec::new(),
            start: None,
            settle: Duration::from_secs(10),
            interval: Duration::from_secs(5),
            max_samples_per_request: 5_000,
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Checks the options (the URL's scheme, the name, the limits), as
    /// [`Forwarder::start`] does.
    pub fn check(&self) -> Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::invalid(format!(
                "forward url {:?} is not an http:// or https:// URL",
                self.url
            )));
        }
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::invalid(format!(
                "forward name {:?} must be letters, digits, - and _ (it names a file)",
                self.name
            )));
        }
        if self.max_samples_per_request == 0 {
            return Err(Error::invalid("forward max_samples_per_request must be at least 1"));
        }
        if self.interval.is_zero() {
            return Err(Error::invalid("forward interval must be longer than zero"));
        }
        Ok(())
    }
}

/// What a [`Forwarder`] has done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForwardStats {
    /// Every selected row up to this time (ns) has been sent (or was rejected).
    pub position_ns: i64,
    /// Samples the remote acknowledged.
    pub samples_sent: u64,
    /// Requests the remote acknowledged.
    pub requests_sent: u64,
    /// Attempts that failed and were retried.
    pub failed_attempts: u64,
    /// Samples of requests the remote refused for good (a 4xx other than 429).
    pub rejected_samples: u64,
    /// The last failure, while the remote is failing (cleared by a success).
    pub last_error: Option<String>,
    /// Whether the sender is waiting to retry.
    pub retrying: bool,
}

/// The durable position, `forward/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Position {
    url: String,
    position_ns: i64,
    samples_sent: u64,
    updated: String,
}

/// Stop requests and waits, shared with the thread.
struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    stats: Mutex<ForwardStats>,
}

impl Control {
    /// Sleeps up to `how_long`; true when asked to stop.
    fn sleep(&self, how_long: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            let _ = self.wake.wait_for(&mut stop, how_long);
        }
        *stop
    }

    fn stopping(&self) -> bool {
        *self.stop.lock()
    }
}

/// A running sender; see the module's documentation. Dropping it stops it.
pub struct Forwarder {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Starts forwarding the rows of `store` (an [`Engine`] or a
    /// [`crate::history::History`]) that `options` selects. Fails on bad
    /// options or an unreadable position file; the remote is not contacted here.
    pub fn start(store: Arc<dyn AsRef<Engine> + Send + Sync>, options: ForwardOptions) -> Result<Forwarder> {
        options.check()?;
        let engine: &Engine = (*store).as_ref();
        let predicates = options
            .predicates
            .iter()
            .map(|p| TagPredicate::parse(p))
            .collect::<Result<Vec<_>>>()?;
        let predicate = TagPredicate::all(predicates);
        let path = engine.dir().join(FORWARD_DIR).join(format!("{}.json", options.name));
        let position = match crate::io::read_file_if_exists(&path)? {
            Some(bytes) => {
                let position: Position = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid(format!(
                        "{} is not a forwarding position ({e}); remove it to start afresh",
                        path.display()
                    ))
                })?;
                position.position_ns
            }
            // Every row before `start` counts as sent; rows at `start` are sent.
            None => options
                .start
                .map(|start| start.saturating_sub(1))
                .unwrap_or_else(|| engine.options().clock.now_ns()),
        };
        let rustls_provider = rustls::crypto::ring::default_provider();
        // A second install is refused harmlessly.
        let _ = rustls_provider.install_default();
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(format!("annals/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid(format!("the forwarding HTTP client cannot start: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the forwarding runtime", &path, e))?;
        let control = Arc::new(Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            stats: Mutex::new(ForwardStats {
                position_ns: position,
                ..ForwardStats::default()
            }),
        });
        let mut sender = Sender {
            store: store.clone(),
            options,
            predicate,
            path,
            position,
            client,
            runtime,
            control: control.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("annals-forward".into())
            .spawn(move || sender.run())
            .map_err(|e| Error::io("start the forwarding thread", &PathBuf::new(), e))?;
        Ok(Forwarder {
            control,
            thread: Some(thread),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> ForwardStats {
        self.control.stats.lock().clone()
    }

    /// A handle that reads [`Forwarder::stats`] from elsewhere (a metrics endpoint) without
    /// owning the sender.
    pub fn stats_handle(&self) -> ForwardStatsHandle {
        ForwardStatsHandle(self.control.clone())
    }

    /// Stops it: a request in flight is finished (or fails), no retry is started, and the
    /// position stays where the last acknowledgement put it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        *self.control.stop.lock() = true;
        self.control.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Reads a [`Forwarder`]'s statistics ([`Forwarder::stats_handle`]).
#[derive(Clone)]
pub struct ForwardStatsHandle(Arc<Control>);

impl ForwardStatsHandle {
    /// What the sender has done so far.
    pub fn stats(&self) -> ForwardStats {
        self.0.stats.lock().clone()
    }
}

impl std::fmt::Debug for ForwardStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ForwardStatsHandle").field(&self.stats()).finish()
    }
}

/// The thread's state.
struct Sender {
    store: Arc<dyn AsRef<Engine> + Send + Sync>,
    options: ForwardOptions,
    predicate: Option<TagPredicate>,
    path: PathBuf,
    position: i64,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    control: Arc<Control>,
}

/// A request being gathered: its series by key, and its samples.
#[derive(Default)]
struct Pending {
    series: HashMap<(SeriesId, Arc<str>), TimeSeries>,
    samples: usize,
    last_time: i64,
}

/// What happened to one request.
enum Outcome {
    Sent,
    Rejected,
    Stopped,
}

impl Sender {
    fn engine(&self) -> &Engine {
        (*self.store).as_ref()
    }

    fn run(&mut self) {
        loop {
            if let Err(e) = self.forward_once() {
                // A store error (a read failed): said, and tried again next interval.
                let mut stats = self.control.stats.lock();
                stats.last_error = Some(e.to_string());
            }
            if self.control.sleep(self.options.interval) {
                return;
            }
        }
    }

    /// Sends everything selected from the position to `settle` ago.
    fn forward_once(&mut self) -> Result<()> {
        let now = self.engine().options().clock.now_ns();
        let target = now.saturating_sub(self.options.settle.as_nanos().min(i64::MAX as u128) as i64);
        if target <= self.position {
            return Ok(());
        }
        let snapshot = self.engine().snapshot();
        let selectors: Vec<SeriesSelector> = if self.options.measurements.is_empty() {
            vec![SeriesSelector {
                kind: Some(SeriesKind::Metric),
                measurement: None,
                predicate: self.predicate.clone(),
            }]
        } else {
            self.options
                .measurements
                .iter()
                .map(|m| SeriesSelector {
                    kind: Some(SeriesKind::Metric),
                    measurement: Some(m.clone()),
                    predicate: self.predicate.clone(),
                })
                .collect()
        };
        let range = TimeRange::new(self.position.saturating_add(1), target.saturating_add(1));
        // One scan per measurement, merged by time, so the position is one time for all.
        let mut scans = Vec::new();
        for selector in selectors {
            let scan = snapshot.scan(&ScanRequest {
                selector,
                range,
                ..ScanRequest::default()
            })?;
            scans.push(scan.peekable());
        }
        let mut pending = Pending::default();
        let mut names: HashMap<(SeriesId, Arc<str>), Vec<Label>> = HashMap::new();
        loop {
            // The scan whose next row is oldest.
            let mut oldest: Option<(usize, i64)> = None;
            for (i, scan) in scans.iter_mut().enumerate() {
                match scan.peek() {
                    None => {}
                    Some(Err(_)) => {
                        oldest = Some((i, i64::MIN));
                        break;
                    }
                    Some(Ok(row)) if oldest.is_none_or(|(_, t)| row.timestamp < t) => {
                        oldest = Some((i, row.timestamp));
                    }
                    Some(Ok(_)) => {}
                }
            }
            let Some((i, _)) = oldest else { break };
            let Some(row) = scans[i].next() else { break };
            let row = row?;
            if pending.samples >= self.options.max_samples_per_request
                && row.timestamp != pending.last_time
                && let Outcome::Stopped = self.send(std::mem::take(&mut pending))?
            {
                return Ok(());
            }
            for (field, value) in &row.fields {
                let value = match value {
                    FieldValue::F64(v) => *v,
                    FieldValue::I64(v) => *v as f64,
                    FieldValue::Bool(v) => f64::from(u8::from(*v)),
                    FieldValue::Str(_) | FieldValue::Bytes(_) => continue,
                };
                let key = (row.series, field.clone());
                let labels = names.entry(key.clone()).or_insert_with(|| {
                    let mut labels = vec![Label {
                        name: METRIC_NAME_LABEL.to_string(),
                        value: crate::query::promql::metric_name(row.key.measurement(), field),
                    }];
                    labels.extend(row.key.tags().iter().map(|(k, v)| Label {
                        name: k.clone(),
                        value: v.clone(),
                    }));
                    labels.sort_by(|a, b| a.name.cmp(&b.name));
                    labels
                });
                let series = pending.series.entry(key).or_insert_with(|| TimeSeries {
                    labels: labels.clone(),
                    samples: Vec::new(),
                    histograms: Vec::new(),
                });
                series.samples.push(Sample {
                    value,
                    timestamp: row.timestamp.div_euclid(1_000_000),
                });
                pending.samples += 1;
            }
            pending.last_time = row.timestamp;
        }
        if pending.samples > 0
            && let Outcome::Stopped = self.send(pending)?
        {
            return Ok(());
        }
        self.advance(target, 0)?;
        Ok(())
    }

    /// Sends one request until it is acknowledged or refused for good (or the sender is
    /// stopped), then moves the position to its last time.
    fn send(&mut self, pending: Pending) -> Result<Outcome> {
        let samples = pending.samples as u64;
        let last_time = pending.last_time;
        let mut series: Vec<TimeSeries> = pending.series.into_values().collect();
        series.sort_by(|a, b| {
            a.labels
                .iter()
                .map(|l| (&l.name, &l.value))
                .cmp(b.labels.iter().map(|l| (&l.name, &l.value)))
        });
        let request = WriteRequest { timeseries: series };
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request))
            .map_err(|e| Error::Invariant(format!("snappy refused a remote-write request: {e}")))?;
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0u64;
        loop {
            if self.control.stopping() {
                return Ok(Outcome::Stopped);
            }
            attempt += 1;
            match self.post(body.clone()) {
                Ok(()) => {
                    self.advance(last_time, samples)?;
                    return Ok(Outcome::Sent);
                }
                Err(Failure::Refused(answer)) => {
                    {
                        let mut stats = self.control.stats.lock();
                        stats.rejected_samples += samples;
                        stats.last_error = Some(answer);
                    }
                    self.advance(last_time, 0)?;
                    return Ok(Outcome::Rejected);
                }
                Err(Failure::Retry(reason)) => {
                    {
                        let mut stats = self.control.stats.lock();
                        stats.failed_attempts += 1;
                        stats.retrying = true;
                        stats.last_error = Some(reason);
                    }
                    // Jitter of up to a quarter, from the attempt and the time, so many
                    // senders do not retry in step.
                    let clock = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_nanos()));
                    let jitter = (attempt.wrapping_mul(0x9e37_79b9) ^ clock) % 256;
                    let wait = backoff + backoff.mul_f64(jitter as f64 / 1024.0);
                    if self.control.sleep(wait) {
                        return Ok(Outcome::Stopped);
                    }
                    backoff = (backoff * 2).min(self.options.max_backoff.max(Duration::from_millis(250)));
                }
            }
        }
    }

    /// One POST of a request.
    fn post(&self, body: Vec<u8>) -> std::result::Result<(), Failure> {
        let mut request = self
            .client
            .post(&self.options.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        request = match &self.options.auth {
            ForwardAuth::None => request,
            ForwardAuth::Bearer(token) => request.bearer_auth(token),
            ForwardAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
        };
        self.runtime.block_on(async move {
            let response = request
                .send()
                .await
                .map_err(|e| Failure::Retry(format!("sending to the remote failed: {e}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let text = response.text().await.unwrap_or_default();
            let answer = format!(
                "the remote answered {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            );
            if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(Failure::Retry(answer))
            } else {
                Err(Failure::Refused(answer))
            }
        })
    }

    /// Moves the position and writes it durably.
    fn advance(&mut self, to: i64, samples: u64) -> Result<()> {
        let to = to.max(self.position);
        let sent_before = self.control.stats.lock().samples_sent;
        let record = Position {
            url: self.options.url.clone(),
            position_ns: to,
            samples_sent: sent_before + samples,
            updated: format_rfc3339(self.engine().options().clock.now_ns()),
        };
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| Error::Invariant(format!("the forwarding position does not serialize: {e}")))?;
        let fs = self.engine().fs();
        if let Some(dir) = self.path.parent() {
            fs.create_dir_durable(dir)?;
        }
        fs.write_file_atomic(&self.path, &bytes)?;
        self.position = to;
        let mut stats = self.control.stats.lock();
        stats.position_ns = to;
        if samples > 0 {
            stats.samples_sent += samples;
            stats.requests_sent += 1;
            stats.retrying = false;
            stats.last_error = None;
        }
        Ok(())
    }
}

/// Why a POST failed.
enum Failure {
    /// Worth trying again: the remote was unreachable, slow, overloaded or failing.
    Retry(String),
    /// The remote will not take this request, ever.
    Refused(String),
}
