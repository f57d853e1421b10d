//! W1 as Prometheus remote-write requests (protocol 1.0: snappy protobuf `WriteRequest`s),
//! built once into a file and sent alike to `annals serve` and to VictoriaMetrics, each on
//! its own `/api/v1/write`: the ingest rate a Prometheus agent would see.

use crate::BenchError;
use crate::report::Better;
use annals::TagPredicate;
use annals::ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use annals::workload::w1::{FIELDS, TsbsQuery, W1, W1Config};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

/// The figure.
pub const INGEST_RW: (&str, &str, Better) = ("ingest, remote write over HTTP", "samples/s", Better::Higher);

/// Readings (rows of ten fields) per request: 100,000 samples, about what a Prometheus
/// agent's queue sends under load (`max_samples_per_send` times its shards).
const READINGS_PER_REQUEST: usize = 10_000;

/// Writes W1's readings as request bodies, each prefixed with its length (u32, little
/// endian), to `path`. Returns the number of samples.
pub fn emit(config: &W1Config, path: &Path) -> Result<u64, BenchError> {
    let mut generator = W1::new(config.clone())?;
    let file = std::fs::File::create(path).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut samples = 0u64;
    // Labels of each (host, field), built once.
    let mut labels: Vec<Vec<Vec<Label>>> = Vec::new();
    loop {
        let mut series: std::collections::BTreeMap<(usize, usize), Vec<Sample>> = std::collections::BTreeMap::new();
        let mut readings = 0;
        while readings < READINGS_PER_REQUEST {
            let Some((host, time, values)) = generator.next_reading() else {
                break;
            };
            readings += 1;
            for (field, value) in values.iter().enumerate() {
                series.entry((host, field)).or_default().push(Sample {
                    value: *value,
                    timestamp: time.div_euclid(1_000_000),
                });
            }
        }
        if readings == 0 {
            break;
        }
        let mut request = WriteRequest {
            timeseries: Vec::with_capacity(series.len()),
        };
        for ((host, field), points) in series {
            while labels.len() <= host {
                let key = generator.series_key(labels.len()).clone();
                labels.push(
                    FIELDS
                        .iter()
                        .map(|name| {
                            let mut set = vec![Label {
                                name: "__name__".into(),
                                value: format!("cpu_{name}"),
                            }];
                            set.extend(key.tags().iter().map(|(k, v)| Label {
                                name: k.clone(),
                                value: v.clone(),
                            }));
                            set
                        })
                        .collect(),
                );
            }
            samples += points.len() as u64;
            request.timeseries.push(TimeSeries {
                labels: labels[host][field].clone(),
                samples: points,
                histograms: Vec::new(),
            });
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request))
            .map_err(|e| BenchError::Peer(format!("snappy: {e}")))?;
        let write =
            |out: &mut BufWriter<std::fs::File>, bytes: &[u8]| out.write_all(bytes).map_err(|e| BenchError::Io(path.to_path_buf(), e));
        write(&mut out, &(body.len() as u32).to_le_bytes())?;
        write(&mut out, &body)?;
    }
    out.flush().map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    Ok(samples)
}

/// Sends every body of `path` to `url` with two senders, each taking the next body;
/// every request must be answered 2xx. Returns the seconds taken.
pub fn send(path: &Path, url: &str) -> Result<f64, BenchError> {
    let file = std::fs::File::open(path).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    let reader = parking_lot::Mutex::new(BufReader::with_capacity(1 << 22, file));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(3600)))
        .build()
        .new_agent();
    let next = || -> Result<Option<Vec<u8>>, BenchError> {
        let mut reader = reader.lock();
        let mut length = [0u8; 4];
        match reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(BenchError::Io(path.to_path_buf(), e)),
        }
        let mut body = vec![0u8; u32::from_le_bytes(length) as usize];
        reader.read_exact(&mut body).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
        Ok(Some(body))
    };
    let started = Instant::now();
    crate::w1::two_senders(&next, &|body| {
        let mut response = agent
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body)
            .map_err(|e| BenchError::Peer(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(BenchError::Peer(format!("{url}: {}: {text}", response.status())));
        }
        Ok(())
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// TSBS queries written in PromQL that Prometheus, VictoriaMetrics and annals all answer
/// alike: the whole minute or hour buckets of the instance, each evaluated 1 ms before
/// the bucket ends, so a left-open window (VictoriaMetrics) and a closed one (Prometheus
/// 2.x, annals) hold the same samples (W1's are on whole 10 s).
pub const PROMQL_QUERIES: [TsbsQuery; 5] = [
    TsbsQuery::SingleGroupby111,
    TsbsQuery::SingleGroupby5112,
    TsbsQuery::CpuMaxAll8,
    TsbsQuery::DoubleGroupby1,
    TsbsQuery::GroupbyOrderbyLimit,
];

/// A query instance in PromQL: (expression, first evaluation, last evaluation, step), times
/// in ns.
pub type PromqlInstance = (String, i64, i64, i64);

/// An answer and the time it took.
pub type Timed = (Matrix, std::time::Duration);

/// A query of [`PROMQL_QUERIES`] in PromQL.
pub fn promql(kind: TsbsQuery, query: &annals::Query) -> Option<PromqlInstance> {
    let (first, last, step) = crate::victoria::whole_buckets(query)?;
    let hosts = match &query.selector.predicate {
        Some(TagPredicate::Eq(_, host)) => format!("{{hostname=\"{host}\"}}"),
        Some(TagPredicate::In(_, hosts)) => format!("{{hostname=~\"{}\"}}", hosts.join("|")),
        _ => String::new(),
    };
    // The maximum of several fields per bucket: one rollup per field, told apart by a
    // `field` label (a rollup drops the metric name, and Prometheus refuses two series
    // that are then the same).
    let fields_max = |fields: &[&str], window: &str| {
        fields
            .iter()
            .map(|f| format!("label_replace(max_over_time(cpu_{f}{hosts}[{window}]), \"field\", \"{f}\", \"\", \"\")"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let expr = match kind {
        TsbsQuery::SingleGroupby111 => format!("max_over_time(cpu_usage_user{hosts}[1m])"),
        TsbsQuery::SingleGroupby5112 => fields_max(&FIELDS[..5], "1m"),
        TsbsQuery::CpuMaxAll8 => fields_max(&FIELDS, "1h"),
        TsbsQuery::DoubleGroupby1 => format!("avg_over_time(cpu_usage_user{hosts}[1h])"),
        TsbsQuery::GroupbyOrderbyLimit => format!("max(max_over_time(cpu_usage_user{hosts}[1m]))"),
        _ => return None,
    };
    Some((expr, first + step - MS, last + step - MS, step))
}

const MS: i64 = 1_000_000;

/// A matrix answer: sorted labels (without `__name__`) to (ms, value) points.
pub type Matrix = std::collections::BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

/// Prometheus' HTTP query API of one engine.
pub struct PromApi {
    base: String,
    agent: ureq::Agent,
}

impl PromApi {
    /// The API at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> PromApi {
        PromApi {
            base: base.to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(600)))
                .build()
                .new_agent(),
        }
    }

    /// `query_range`, answered and parsed, and the time it took (request and JSON).
    pub fn query_range(&self, expr: &str, start: i64, end: i64, step: i64) -> Result<(Matrix, std::time::Duration), BenchError> {
        let seconds = |ns: i64| format!("{}.{:03}", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) / MS);
        let started = Instant::now();
        let mut response = self
            .agent
            .get(&format!("{}/api/v1/query_range", self.base))
            .query("query", expr)
            .query("start", seconds(start))
            .query("end", seconds(end))
            .query("step", format!("{}ms", step / MS))
            .query("nocache", "1")
            .call()
            .map_err(|e| BenchError::Peer(format!("{}: {e}", self.base)))?;
        let text = response.body_mut().read_to_string().map_err(|e| BenchError::Peer(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| BenchError::Peer(format!("{}: {e}: {text}", self.base)))?;
        let elapsed = started.elapsed();
        let Some(result) = json["data"]["result"].as_array() else {
            return Err(BenchError::Peer(format!("{} answered {expr}: {text}", self.base)));
        };
        let mut matrix = Matrix::new();
        for series in result {
            let mut labels: Vec<(String, String)> = series["metric"]
                .as_object()
                // The metric name is not compared: VictoriaMetrics 1.79 keeps it on the
                // results of rollups such as max_over_time, Prometheus drops it.
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.as_str() != "__name__")
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            let points = series["values"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|p| {
                            let t = p[0].as_f64()?;
                            let v: f64 = p[1].as_str()?.parse().ok()?;
                            Some(((t * 1000.0).round() as i64, v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            matrix.insert(labels, points);
        }
        Ok((matrix, elapsed))
    }
}

/// Why two answers differ, or `Ok` (values within 1e-9 relative).
pub fn agree(reference: &Matrix, other: &Matrix) -> Result<(), String> {
    if reference.keys().ne(other.keys()) {
        let theirs = other.keys().find(|k| !reference.contains_key(*k));
        let ours = reference.keys().find(|k| !other.contains_key(*k));
        return Err(format!(
            "{} series against {}: {theirs:?} is not annals', {ours:?} is not theirs",
            other.len(),
            reference.len()
        ));
    }
    for (labels, points) in reference {
        let theirs = &other[labels];
        if points.len() != theirs.len() {
            return Err(format!("{labels:?}: {} points against {}", theirs.len(), points.len()));
        }
        for ((t, v), (u, w)) in points.iter().zip(theirs) {
            if t != u || (v - w).abs() > 1e-9 * v.abs().max(w.abs()).max(1e-300) {
                return Err(format!("{labels:?} at {t}: {w} at {u} against {v}"));
            }
        }
    }
    Ok(())
}

/// Prometheus (Debian's `prometheus`) on a free loopback port, taking remote writes of any
/// age (an out-of-order window of 100 years) and keeping them (retention 100 years).
pub struct Prometheus {
    server: crate::peer::Server,
}

impl Prometheus {
    /// Starts it in `dir` (installing it through `scripts/bench-peers.sh` when missing);
    /// `Err` with the reason when it cannot be.
    pub fn start(dir: &Path) -> Result<Prometheus, BenchError> {
        let binary = crate::peer::locate("prometheus").map_err(BenchError::Peer)?;
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(dir.to_path_buf(), e))?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "storage:\n  tsdb:\n    out_of_order_time_window: 100y\n")
            .map_err(|e| BenchError::Io(config.clone(), e))?;
        let port = crate::peer::free_port()?;
        let mut command = std::process::Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--storage.tsdb.retention.time=100y");
        let server = crate::peer::Server::start(
            "prometheus",
            command,
            port,
            &dir.join("prometheus.log"),
            "/-/ready",
            |_| true,
            std::time::Duration::from_secs(60),
        )?;
        Ok(Prometheus { server })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.server.base
    }
}
