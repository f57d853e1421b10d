//! The VictoriaMetrics peer: Debian's `victoria-metrics` started on 127.0.0.1 with its data
//! under the run's directory, fed Influx line protocol over `POST /write` and queried with
//! MetricsQL over `/api/v1/query_range` and `/api/v1/query`.
//!
//! MetricsQL evaluates a rollup such as `max_over_time(x[1m])` at each step over the window
//! `(t - 1m, t]`, so a bucket `[b, b + 1m)` is the step at `b + 1m - 1ms` (timestamps are
//! milliseconds inside VictoriaMetrics). A TSBS window starts and ends at random nanoseconds,
//! which clips its first and last buckets; no rollup window expresses a clipped bucket, so
//! VictoriaMetrics is asked for the whole buckets only and checked against annals' answer on
//! those buckets. It therefore answers a slightly smaller question than annals does.

use crate::BenchError;
use crate::peer::Server;
use crate::results::Answer;
use annals::TagPredicate;
use annals::query::Query;
use annals::workload::w1::{FIELDS, TsbsQuery};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MS: i64 = 1_000_000;
const TEN_SECONDS: i64 = 10_000 * MS;

/// The binary, installing it through `scripts/bench-peers.sh` when it is missing; the reason
/// it is not available otherwise.
pub fn locate() -> Result<PathBuf, String> {
    crate::peer::locate("victoria-metrics")
}

/// A running VictoriaMetrics process; killed when dropped.
pub struct Victoria {
    binary: PathBuf,
    dir: PathBuf,
    server: Server,
}

impl Victoria {
    /// Starts VictoriaMetrics on a free 127.0.0.1 port with its storage in `dir`, and waits
    /// until it answers.
    pub fn start(binary: &Path, dir: &Path) -> Result<Victoria, BenchError> {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(dir.to_path_buf(), e))?;
        let port = crate::peer::free_port()?;
        let mut command = Command::new(binary);
        command
            .arg(format!("-storageDataPath={}", dir.join("storage").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y");
        let server = Server::start(
            "victoria-metrics",
            command,
            port,
            &dir.join("victoria-metrics.log"),
            "/health",
            |body| body == "OK",
            Duration::from_secs(60),
        )?;
        Ok(Victoria {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            server,
        })
    }

    /// The storage directory, whose size is the bytes on disk.
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// Sends line protocol; VictoriaMetrics acknowledges once it holds the rows in memory.
    pub fn write(&self, lines: &[u8]) -> Result<(), BenchError> {
        self.server.post_expecting("/write", None, lines, None)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// The value of the line of its own `/metrics` that starts with `series` (a name with
    /// its labels), `None` when there is none.
    pub fn own_metric(&self, series: &str) -> Result<Option<f64>, BenchError> {
        let text = self.server.get("/metrics")?;
        Ok(text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok()))
    }

    /// Makes everything written searchable.
    pub fn flush(&self) -> Result<(), BenchError> {
        self.server.get("/internal/force_flush").map(|_| ())
    }

    /// Merges the month's partition and waits until no merge runs.
    pub fn force_merge(&self, partition: &str) -> Result<(), BenchError> {
        self.server.get(&format!("/internal/force_merge?partition_prefix={partition}"))?;
        let mut idle = 0;
        while idle < 3 {
            std::thread::sleep(Duration::from_millis(500));
            let metrics = self.server.get("/metrics")?;
            let active = crate::peer::metric_sum(&metrics, "vm_active_merges");
            idle = if active == 0.0 { idle + 1 } else { 0 };
        }
        Ok(())
    }

    /// Peak resident memory of the process so far.
    pub fn peak_rss(&self) -> Option<u64> {
        self.server.peak_rss()
    }

    /// Stops the process gracefully (SIGTERM) and starts it again on the same storage;
    /// returns the time until the first query over the data answers.
    pub fn restart(&mut self, probe: &str) -> Result<Duration, BenchError> {
        self.server.terminate();
        let started = Instant::now();
        let fresh = Victoria::start(&self.binary, &self.dir)?;
        drop(std::mem::replace(self, fresh));
        self.server.get(probe)?;
        Ok(started.elapsed())
    }

    fn query(&self, path: &str, params: &[(&str, String)]) -> Result<serde_json::Value, BenchError> {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = self.server.get_with(path, &params)?;
        serde_json::from_str(&body).map_err(|e| self.server.error(path, e))
    }

    /// A range query evaluated at `start_ns, start_ns + step_ns, ..., <= end_ns`, uncached
    /// and unaligned.
    pub fn query_range(&self, expr: &str, start_ns: i64, end_ns: i64, step_ns: i64) -> Result<serde_json::Value, BenchError> {
        self.query(
            "/api/v1/query_range",
            &[
                ("query", expr.to_string()),
                ("start", seconds(start_ns)),
                ("end", seconds(end_ns)),
                ("step", format!("{}ms", step_ns / MS)),
                ("nocache", "1".into()),
            ],
        )
    }

    /// An instant query at `time_ns`.
    pub fn query_at(&self, expr: &str, time_ns: i64) -> Result<serde_json::Value, BenchError> {
        self.query(
            "/api/v1/query",
            &[("query", expr.to_string()), ("time", seconds(time_ns)), ("nocache", "1".into())],
        )
    }

    /// Answers a W1 TSBS query instance with MetricsQL. The time returned covers the HTTP
    /// requests and parsing their JSON, not the conversion into an [`Answer`].
    pub fn tsbs(&self, kind: TsbsQuery, query: &Query, data_end_ns: i64) -> Result<(Answer, Duration), BenchError> {
        let mut took = Duration::ZERO;
        let mut timed = |call: &mut dyn FnMut() -> Result<serde_json::Value, BenchError>| {
            let t = Instant::now();
            let json = call();
            took += t.elapsed();
            json
        };
        let hosts = match &query.selector.predicate {
            Some(TagPredicate::Eq(_, h)) => format!("hostname=\"{h}\""),
            Some(TagPredicate::In(_, hs)) => format!("hostname=~\"{}\"", hs.join("|")),
            _ => String::new(),
        };
        let fields = |n: usize| -> String {
            if n == 1 {
                format!("cpu_{}{{{hosts}}}", FIELDS[0])
            } else {
                let names: Vec<String> = FIELDS[..n].iter().map(|f| format!("cpu_{f}")).collect();
                let sep = if hosts.is_empty() { "" } else { "," };
                format!("{{__name__=~\"{}\"{sep}{hosts}}}", names.join("|"))
            }
        };
        let mut answer = Answer::default();
        match kind {
            TsbsQuery::Range10k | TsbsQuery::HighCpu1 => {
                // Raw rows: the 10 s grid points inside the window.
                let first = ceil_to(query.range.start, TEN_SECONDS);
                let last = floor_to(query.range.end - 1, TEN_SECONDS);
                if first > last {
                    return Ok((answer, took));
                }
                // `last_over_time(x[10s])` at a grid point is the sample at that point: a
                // bare selector would also repeat the last sample after the data ends.
                let all = format!("last_over_time({}[10s]) keep_metric_names", fields(10));
                let expr = if kind == TsbsQuery::HighCpu1 {
                    format!("{all} and on() (last_over_time({}[10s]) > 90)", fields(1))
                } else {
                    all
                };
                let json = timed(&mut || self.query_range(&expr, first, last, TEN_SECONDS))?;
                put_matrix(&mut answer, &json, 0, |name| name.to_string(), true)?;
                if let Some(limit) = query.limit {
                    // MetricsQL has no LIMIT: keep the newest rows, as the query asks.
                    let mut times: Vec<i64> = answer.0.keys().map(|(t, _)| *t).collect();
                    times.sort_unstable();
                    times.dedup();
                    if times.len() > limit {
                        let cut = times[times.len() - limit];
                        answer.0.retain(|(t, _), _| *t >= cut);
                    }
                }
            }
            TsbsQuery::Lastpoint => {
                let at = data_end_ns + 1_000 * MS;
                let last = "last_over_time({__name__=~\"cpu_usage_.*\"}[1h]) keep_metric_names";
                let values = timed(&mut || self.query_at(last, at))?;
                let times = timed(&mut || self.query_at("tlast_over_time(cpu_usage_user[1h])", at))?;
                let mut when = std::collections::HashMap::new();
                for series in result(&times)? {
                    let host = label(series, "hostname");
                    let t = series["value"][1].as_str().and_then(|s| s.parse::<f64>().ok());
                    if let Some(t) = t {
                        when.insert(host, (t * 1000.0).round() as i64 * MS);
                    }
                }
                for series in result(&values)? {
                    let host = label(series, "hostname");
                    let name = label(series, "__name__");
                    let value = series["value"][1].as_str().and_then(|s| s.parse::<f64>().ok());
                    if let (Some(t), Some(v)) = (when.get(&host), value) {
                        answer.put(*t, &host, name.trim_start_matches("cpu_"), v);
                    }
                }
            }
            TsbsQuery::SingleGroupby111
            | TsbsQuery::SingleGroupby5112
            | TsbsQuery::CpuMaxAll8
            | TsbsQuery::DoubleGroupby1
            | TsbsQuery::GroupbyOrderbyLimit => {
                let Some((first, last, bucket)) = whole_buckets(query) else {
                    return Ok((answer, took));
                };
                let window = format!("{}ms", bucket / MS);
                let (expr, function, by_host) = match kind {
                    TsbsQuery::SingleGroupby111 => (format!("max_over_time({}[{window}])", fields(1)), "max", false),
                    TsbsQuery::SingleGroupby5112 => (format!("max_over_time({}[{window}]) keep_metric_names", fields(5)), "max", false),
                    TsbsQuery::CpuMaxAll8 => (
                        format!("max by (__name__) (max_over_time({}[{window}]) keep_metric_names)", fields(10)),
                        "max",
                        false,
                    ),
                    TsbsQuery::DoubleGroupby1 => (format!("avg_over_time({}[{window}])", fields(1)), "mean", true),
                    _ => (format!("max(max_over_time({}[{window}]))", fields(1)), "max", false),
                };
                let json = timed(&mut || self.query_range(&expr, first + bucket - MS, last + bucket - MS, bucket))?;
                let single = FIELDS[0];
                put_matrix(
                    &mut answer,
                    &json,
                    bucket - MS,
                    |name| format!("{function}({})", if name.is_empty() { single } else { name }),
                    by_host,
                )?;
            }
        }
        Ok((answer, took))
    }
}

/// The part of annals' answer that VictoriaMetrics is asked for: for bucketed queries the
/// buckets that lie wholly inside the query's range (and among its newest `limit` for
/// groupby-orderby-limit); raw answers whole.
pub fn comparable(kind: TsbsQuery, query: &Query, reference: &Answer) -> Answer {
    match kind {
        TsbsQuery::Range10k | TsbsQuery::HighCpu1 | TsbsQuery::Lastpoint => Answer(reference.0.clone()),
        _ => {
            let Some((first, last, _)) = whole_buckets(query) else {
                return Answer::default();
            };
            Answer(
                reference
                    .0
                    .iter()
                    .filter(|((t, _), _)| *t >= first && *t <= last)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        }
    }
}

/// First and last start of the buckets that lie wholly inside the query's range, and the
/// bucket width. groupby-orderby-limit has no lower bound: its newest `limit` buckets.
pub fn whole_buckets(query: &Query) -> Option<(i64, i64, i64)> {
    let bucket = match query.every {
        Some(annals::Bucket::Fixed(ns)) => ns,
        _ => return None,
    };
    let last = floor_to(query.range.end, bucket) - bucket;
    let first = if query.range.start == i64::MIN {
        let newest = floor_to(query.range.end - 1, bucket);
        newest - (query.limit.unwrap_or(1) as i64 - 1) * bucket
    } else {
        ceil_to(query.range.start, bucket)
    };
    (first <= last).then_some((first, last, bucket))
}

fn floor_to(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

fn ceil_to(t: i64, step: i64) -> i64 {
    let f = floor_to(t, step);
    if f == t { t } else { f + step }
}

fn seconds(ns: i64) -> String {
    let ms = ns.div_euclid(MS);
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn result(json: &serde_json::Value) -> Result<&Vec<serde_json::Value>, BenchError> {
    json["data"]["result"]
        .as_array()
        .ok_or_else(|| BenchError::Peer(format!("victoria-metrics answer: no data.result in {json}")))
}

fn label(series: &serde_json::Value, name: &str) -> String {
    series["metric"][name].as_str().unwrap_or_default().to_string()
}

/// Adds a matrix answer: each point's time less `shift` (the bucket start), its column
/// from `column(field name)` and its group the host when `by_host` is set.
fn put_matrix(
    answer: &mut Answer,
    json: &serde_json::Value,
    shift: i64,
    column: impl Fn(&str) -> String,
    by_host: bool,
) -> Result<(), BenchError> {
    for series in result(json)? {
        let name = label(series, "__name__");
        let column = column(name.trim_start_matches("cpu_"));
        let group = if by_host { label(series, "hostname") } else { String::new() };
        for point in series["values"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let t = point[0].as_f64();
            let v = point[1].as_str().and_then(|s| s.parse::<f64>().ok());
            if let (Some(t), Some(v)) = (t, v) {
                let ns = (t * 1000.0).round() as i64 * MS - shift;
                answer.put(ns, &group, &column, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buckets_drop_the_clipped_edges() {
        let minute = 60_000 * MS;
        let q = Query {
            range: annals::TimeRange::new(minute + 5, 10 * minute + 7),
            every: Some(annals::Bucket::Fixed(minute)),
            ..Query::default()
        };
        assert_eq!(whole_buckets(&q), Some((2 * minute, 9 * minute, minute)));
        let newest = Query {
            range: annals::TimeRange::new(i64::MIN, 10 * minute + 7),
            every: Some(annals::Bucket::Fixed(minute)),
            limit: Some(5),
            ..Query::default()
        };
        // The newest five are 6..=10; 10 is clipped.
        assert_eq!(whole_buckets(&newest), Some((6 * minute, 9 * minute, minute)));
        assert_eq!(seconds(1_451_606_459_999 * MS), "1451606459.999");
    }
}
