//! Forwarding metrics by Prometheus remote write (`annals::forward`): to a scripted remote
//! on loopback (headers, auth, retries after 503 and connection refusals, a 400 skipped and
//! counted, the position surviving a restart), and to a real VictoriaMetrics started on
//! 127.0.0.1 and stopped for a while mid-stream: every sample arrives exactly once, with its
//! value, under the name annals' PromQL gives it.

use crate::common::{free_port, options};
use annals::forward::{ForwardAuth, ForwardOptions, ForwardStats, Forwarder};
use annals::ingest::remote_write::WriteRequest;
use annals::{Batch, Engine, FieldValue, SeriesKey};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 2016-01-01T00:00:00Z.
const BASE: i64 = 1_451_606_400_000_000_000;
const MINUTE: i64 = 60_000_000_000;

/// `cpu` of four hosts, one row a minute for minutes `from..to`, with a float, an integer
/// and a string field (not a sample); and a log record (not a metric).
fn write_minutes(engine: &Engine, from: i64, to: i64) -> u64 {
    let mut batch = Batch::new();
    let mut samples = 0;
    for minute in from..to {
        for host in 0..4 {
            let key = SeriesKey::metric("cpu").unwrap().with_tag("host", format!("h{host}")).unwrap();
            let fields = [
                ("usage", FieldValue::F64(minute as f64 / 8.0 + host as f64)),
                ("procs", FieldValue::I64(minute * 10 + host)),
                ("state", FieldValue::Str("ok".into())),
            ];
            batch.add_row(&key, BASE + minute * MINUTE + 250_000, fields).unwrap();
            samples += 2;
        }
    }
    batch
        .add_log(&crate::common::log_entry(
            BASE + from * MINUTE,
            annals::LogLevel::Info,
            "svc",
            "not a metric".into(),
        ))
        .unwrap();
    engine.write(&batch).unwrap();
    samples
}

/// Series as a remote holds them: (sorted labels) -> [(ms, value)].
pub type Received = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

/// What the store's rows of minutes `0..to` should give.
fn expected(to: i64) -> Received {
    let mut out = Received::new();
    for minute in 0..to {
        for host in 0..4 {
            let ms = (BASE + minute * MINUTE + 250_000) / 1_000_000;
            let labels = |name: &str| vec![("__name__".to_string(), name.to_string()), ("host".to_string(), format!("h{host}"))];
            out.entry(labels("cpu_usage"))
                .or_default()
                .push((ms, minute as f64 / 8.0 + host as f64));
            out.entry(labels("cpu_procs")).or_default().push((ms, (minute * 10 + host) as f64));
        }
    }
    out
}

fn wait_for(what: &str, forwarder: &Forwarder, done: impl Fn(&ForwardStats) -> bool) -> ForwardStats {
    let started = Instant::now();
    loop {
        let stats = forwarder.stats();
        if done(&stats) {
            return stats;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: still {stats:?} after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A store whose clock the test sets (rows are forwarded up to its "now").
fn open_store(dir: &std::path::Path, now: &Arc<AtomicI64>) -> Arc<Engine> {
    let clock = now.clone();
    let options = annals::Options {
        clock: annals::Clock::from_fn(move || clock.load(Ordering::SeqCst)),
        ..options()
    };
    Arc::new(Engine::open(dir.join("store"), options).unwrap())
}

fn fast(url: String) -> ForwardOptions {
    ForwardOptions {
        start: Some(BASE),
        settle: Duration::ZERO,
        interval: Duration::from_millis(30),
        max_samples_per_request: 500,
        max_backoff: Duration::from_millis(200),
        ..ForwardOptions::new(url)
    }
}

/// A request a remote answered: its status and headers (lower-case names).
pub type Answered = (u16, BTreeMap<String, String>);

/// A remote that answers each request with the next status of its script (then 204),
/// keeping what it acknowledged.
pub struct ScriptedRemote {
    port: u16,
    /// What it acknowledged.
    pub received: Arc<Mutex<Received>>,
    /// Each request's status and headers.
    pub requests: Arc<Mutex<Vec<Answered>>>,
    up: Arc<AtomicBool>,
}

impl ScriptedRemote {
    pub fn start(script: Vec<u16>) -> ScriptedRemote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Received::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(AtomicBool::new(true));
        let (keep, log, flag) = (received.clone(), requests.clone(), up.clone());
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if !flag.load(Ordering::SeqCst) {
                    // Down: the connection is dropped unanswered.
                    continue;
                }
                let Some((headers, body)) = read_request(&mut stream) else {
                    continue;
                };
                let status = script.next().unwrap_or(204);
                if status == 204 {
                    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
                    let request = <WriteRequest as prost::Message>::decode(raw.as_slice()).unwrap();
                    let mut keep = keep.lock().unwrap();
                    for series in request.timeseries {
                        let labels = series.labels.into_iter().map(|l| (l.name, l.value)).collect();
                        keep.entry(labels)
                            .or_default()
                            .extend(series.samples.iter().map(|s| (s.timestamp, s.value)));
                    }
                }
                log.lock().unwrap().push((status, headers));
                let text = if status == 204 { "" } else { "scripted failure" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        ScriptedRemote {
            port,
            received,
            requests,
            up,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }
}

/// Headers (lower-case names) and body of one HTTP/1.1 request.
fn read_request(stream: &mut TcpStream) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let headers: BTreeMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((headers, data[head_end..head_end + length].to_vec()))
}

#[test]
fn retries_skip_refusals_and_resume_from_the_durable_position() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(BASE + 300 * MINUTE));
    let engine = open_store(dir.path(), &now);
    // The script: a 503 (retried), then a 400 (that request is refused for good), then 204s.
    let remote = ScriptedRemote::start(vec![503, 400]);
    let samples = write_minutes(&engine, 0, 300);
    let forwarder = Forwarder::start(
        engine.clone(),
        ForwardOptions {
            auth: ForwardAuth::Bearer("s3cret".into()),
            ..fast(remote.url())
        },
    )
    .unwrap();
    let last = BASE + 299 * MINUTE + 250_000;
    let stats = wait_for("catching up", &forwarder, |s| s.position_ns >= last);
    // 500 samples a request, cut where the time changes: 504 (63 minutes of 8 samples).
    assert_eq!(stats.rejected_samples, 504, "{stats:?}");
    assert_eq!(stats.samples_sent + stats.rejected_samples, samples, "{stats:?}");
    assert_eq!(stats.failed_attempts, 1, "{stats:?}");
    assert!(stats.last_error.is_none() && !stats.retrying, "{stats:?}");
    {
        let requests = remote.requests.lock().unwrap();
        let (_, headers) = &requests[0];
        assert_eq!(headers.get("content-encoding").map(String::as_str), Some("snappy"));
        assert_eq!(headers.get("content-type").map(String::as_str), Some("application/x-protobuf"));
        assert_eq!(headers.get("x-prometheus-remote-write-version").map(String::as_str), Some("0.1.0"));
        assert_eq!(headers.get("authorization").map(String::as_str), Some("Bearer s3cret"));
        assert_eq!(requests.iter().map(|(s, _)| *s).take(3).collect::<Vec<_>>(), [503, 400, 204]);
    }
    // What arrived: everything but the refused request's minutes (the first request, of
    // minutes 0 to 62, answered 503 and then 400).
    let mut want = expected(300);
    for samples in want.values_mut() {
        samples.retain(|(ms, _)| (ms * 1_000_000 - BASE) / MINUTE >= 63);
    }
    assert_eq!(*remote.received.lock().unwrap(), want);
    forwarder.stop();

    // A restart resumes from the position: nothing is sent again; new rows are.
    let position = std::fs::read_to_string(dir.path().join("store/forward/default.json")).unwrap();
    assert!(
        position.contains(&format!("\"position_ns\": {}", BASE + 300 * MINUTE)),
        "{position}"
    );
    let before = remote.requests.lock().unwrap().len();
    let forwarder = Forwarder::start(engine.clone(), fast(remote.url())).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(forwarder.stats().samples_sent, 0, "nothing new, nothing sent");
    assert_eq!(remote.requests.lock().unwrap().len(), before);

    // The remote goes away: connections fail and are retried until it is back.
    remote.up.store(false, Ordering::SeqCst);
    let more = write_minutes(&engine, 300, 360);
    now.store(BASE + 360 * MINUTE, Ordering::SeqCst);
    wait_for("failing", &forwarder, |s| s.failed_attempts >= 2 && s.retrying);
    remote.up.store(true, Ordering::SeqCst);
    let stats = wait_for("back", &forwarder, |s| s.position_ns >= BASE + 359 * MINUTE);
    assert_eq!(stats.samples_sent, more, "{stats:?}");
    assert!(stats.last_error.is_none());
    forwarder.stop();
}

#[test]
fn bad_options_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path().join("store"), options()).unwrap());
    let reason = |options: ForwardOptions| match Forwarder::start(engine.clone(), options) {
        Err(annals::Error::InvalidInput { reason, .. }) => reason,
        other => panic!("expected an invalid input, got {other:?}"),
    };
    assert!(reason(ForwardOptions::new("ftp://x/api/v1/write")).contains("is not an http:// or https:// URL"));
    let bad_name = ForwardOptions {
        name: "../x".into(),
        ..ForwardOptions::new("http://127.0.0.1:1/api/v1/write")
    };
    assert!(reason(bad_name).contains("must be letters, digits"));
    let bad_where = ForwardOptions {
        predicates: vec!["host =~ (".into()],
        ..ForwardOptions::new("http://127.0.0.1:1/api/v1/write")
    };
    assert!(!reason(bad_where).is_empty());
    std::fs::create_dir_all(dir.path().join("store/forward")).unwrap();
    std::fs::write(dir.path().join("store/forward/default.json"), "{").unwrap();
    assert!(reason(ForwardOptions::new("http://127.0.0.1:1/api/v1/write")).contains("is not a forwarding position"));
}

/// VictoriaMetrics on a free loopback port, stopped when dropped.
struct Victoria {
    child: std::process::Child,
    port: u16,
    storage: std::path::PathBuf,
}

impl Victoria {
    fn start(storage: &std::path::Path, port: u16) -> Victoria {
        let binary = which("victoria-metrics").unwrap_or_else(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-peers.sh");
            let status = std::process::Command::new("sh")
                .arg(script)
                .arg("victoria-metrics")
                .status()
                .unwrap();
            assert!(status.success(), "installing VictoriaMetrics failed");
            which("victoria-metrics").unwrap()
        });
        let child = std::process::Command::new(binary)
            .arg(format!("-storageDataPath={}", storage.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let victoria = Victoria {
            child,
            port,
            storage: storage.to_path_buf(),
        };
        let started = Instant::now();
        while get(port, "/health").as_deref() != Some("OK") {
            assert!(started.elapsed() < Duration::from_secs(30), "VictoriaMetrics did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        victoria
    }

    fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Every series VictoriaMetrics holds, as `/api/v1/export` gives them.
    fn export(&self) -> Received {
        assert!(get(self.port, "/internal/force_flush").is_some());
        let body = get(self.port, "/api/v1/export?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D").unwrap();
        let mut out = Received::new();
        for line in body.lines().filter(|l| !l.is_empty()) {
            let series: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut labels: Vec<(String, String)> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            let times = series["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap());
            let values = series["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
            let samples = out.entry(labels).or_default();
            samples.extend(times.zip(values));
            samples.sort_by_key(|(t, _)| *t);
        }
        out
    }

    /// Samples VictoriaMetrics took in by remote write since it started.
    fn inserted(&self) -> u64 {
        let metrics = get(self.port, "/metrics").unwrap();
        metrics
            .lines()
            .find(|l| l.starts_with("vm_rows_inserted_total{type=\"promremotewrite\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |v| v.parse().unwrap())
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// A GET's body when the answer is 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // Chunked: sizes in hex on their own lines between the pieces.
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        return Some(out);
    }
    Some(body.to_string())
}

#[test]
fn victoria_metrics_receives_every_sample_once_across_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut victoria = Victoria::start(&dir.path().join("vm"), port);
    let now = Arc::new(AtomicI64::new(BASE + 600 * MINUTE));
    let engine = open_store(dir.path(), &now);
    let first = write_minutes(&engine, 0, 600);
    engine.flush().unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let forwarder = Forwarder::start(engine.clone(), fast(url.clone())).unwrap();
    wait_for("catching up", &forwarder, |s| s.position_ns >= BASE + 599 * MINUTE);
    assert_eq!(victoria.export(), expected(600));
    let inserted_before = victoria.inserted();
    assert_eq!(inserted_before, first, "VictoriaMetrics took each sample once");

    // VictoriaMetrics stops mid-stream; rows keep coming; it comes back on the same port
    // and storage.
    victoria.stop();
    let second = write_minutes(&engine, 600, 1200);
    now.store(BASE + 1200 * MINUTE, Ordering::SeqCst);
    wait_for("failing", &forwarder, |s| s.failed_attempts >= 1 && s.retrying);
    std::thread::sleep(Duration::from_millis(300));
    let storage = victoria.storage.clone();
    let victoria = Victoria::start(&storage, port);
    let stats = wait_for("back", &forwarder, |s| s.position_ns >= BASE + 1199 * MINUTE);
    assert_eq!(stats.samples_sent, first + second, "{stats:?}");
    assert_eq!(stats.rejected_samples, 0);
    assert_eq!(victoria.export(), expected(1200), "every sample, once, with its value");
    assert_eq!(victoria.inserted(), second, "after the restart, only the new samples arrived");
    forwarder.stop();
}
