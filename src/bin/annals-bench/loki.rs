//! The Loki peer for W2: Grafana Loki run as one process (`-target=all`) on 127.0.0.1 with
//! its files under the run's directory, fed W2 through `POST /loki/api/v1/push` (one stream
//! per level) and asked LogQL over `GET /loki/api/v1/query_range`.
//!
//! Debian has no Grafana Loki (its `loki` package is a program for pedigree analysis), so
//! the binary is the one named by `ANNALS_BENCH_LOKI`, or a `loki` on `PATH` that says it is
//! Grafana's; otherwise the column says why it is not available.
//!
//! LogQL filters are substring or RE2 matches over the line, not terms of an index, so each
//! search is written as the regular expression of what annals' tokenizer matches: a word is
//! `\bword\b` without regard to case, a phrase its words separated only by characters that
//! are not word characters.

use crate::BenchError;
use crate::peer::{Server, metric_sum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The environment variable naming a Grafana Loki binary.
pub const BINARY_VARIABLE: &str = "ANNALS_BENCH_LOKI";

/// A Grafana Loki binary, or why there is none.
pub fn locate() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os(BINARY_VARIABLE) {
        Some(path) => PathBuf::from(path),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            match std::env::split_paths(&path).map(|dir| dir.join("loki")).find(|p| p.is_file()) {
                Some(found) => found,
                None => {
                    return Err(format!(
                        "no Grafana Loki binary (Debian's `loki` is another program); set {BINARY_VARIABLE}"
                    ));
                }
            }
        }
    };
    let version = Command::new(&candidate)
        .arg("-version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if version.starts_with("loki, version") {
        Ok(candidate)
    } else {
        Err(format!("{} is not Grafana Loki (`-version` did not say so)", candidate.display()))
    }
}

/// A running Loki; killed when dropped.
pub struct Loki {
    dir: PathBuf,
    server: Server,
    /// The version it reports, for the table's notes.
    pub version: String,
}

impl Loki {
    /// Starts Loki with its files in `dir` on free 127.0.0.1 ports and waits until it is
    /// ready.
    pub fn start(binary: &Path, dir: &Path) -> Result<Loki, BenchError> {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(dir.to_path_buf(), e))?;
        let (http, grpc) = (crate::peer::free_port()?, crate::peer::free_port()?);
        let config_path = dir.join("loki.yaml");
        std::fs::write(&config_path, config(dir, http, grpc)).map_err(|e| BenchError::Io(config_path.clone(), e))?;
        let version = Command::new(binary)
            .arg("-version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let mut command = Command::new(binary);
        command.arg(format!("-config.file={}", config_path.display())).arg("-target=all");
        // Its ingester waits about 15 s before it says it is ready.
        let server = Server::start(
            "loki",
            command,
            http,
            &dir.join("loki.log"),
            "/ready",
            |body| body == "ready",
            Duration::from_secs(120),
        )?;
        Ok(Loki {
            dir: dir.to_path_buf(),
            server,
            version,
        })
    }

    /// Its files at rest: chunks and index, not the WAL (a copy of what is not yet
    /// flushed, dropped at its next checkpoint).
    pub fn storage(&self) -> [PathBuf; 2] {
        [self.dir.join("chunks"), self.dir.join("index")]
    }

    /// Pushes one request body (JSON); Loki answers 204 once its ingester holds the lines.
    pub fn push(&self, body: &[u8]) -> Result<(), BenchError> {
        self.server
            .post_expecting("/loki/api/v1/push", Some("application/json"), body, Some(204))
    }

    /// Asks the ingester to write every chunk it holds to the store, and waits until it has
    /// written as many chunks as it made. (Its count of chunks in memory falls only at its
    /// next periodic sweep, up to 30 s later, so that count would time the sweep.)
    pub fn flush(&self) -> Result<(), BenchError> {
        self.server.post_expecting("/flush", None, b"", None)?;
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let metrics = self.server.get("/metrics")?;
            let created = metric_sum(&metrics, "loki_ingester_chunks_created_total");
            let flushed = metric_sum(&metrics, "loki_ingester_chunks_flushed_total");
            if flushed >= created {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self
                    .server
                    .error("/flush", format!("{flushed} of {created} chunks written after 30 minutes")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A LogQL range query; its `data.result`.
    pub fn query_range(&self, logql: &str, params: &[(&str, String)]) -> Result<serde_json::Value, BenchError> {
        let mut all: Vec<(&str, &str)> = vec![("query", logql)];
        all.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let body = self.server.get_with("/loki/api/v1/query_range", &all)?;
        let mut json: serde_json::Value = serde_json::from_str(&body).map_err(|e| self.server.error(logql, e))?;
        Ok(json["data"]["result"].take())
    }

    /// The times of the newest `limit` lines of `level` in `[start, end)` whose message
    /// matches the search (annals' query syntax: `word`, `"a b"`, `(a OR b) -c`), newest
    /// first, and the time of the request with its JSON parsed.
    pub fn search(&self, search: &str, level: &str, start: i64, end: i64, limit: usize) -> Result<(Vec<i64>, Duration), BenchError> {
        let logql = format!("{{job=\"w2\",level=\"{level}\"}}{}", line_filters(search)?);
        let started = Instant::now();
        let result = self.query_range(
            &logql,
            &[
                ("start", start.to_string()),
                // Loki's end is inclusive.
                ("end", (end - 1).to_string()),
                ("limit", limit.to_string()),
                ("direction", "backward".into()),
            ],
        )?;
        let took = started.elapsed();
        let mut times: Vec<i64> = Vec::new();
        for stream in result.as_array().map(Vec::as_slice).unwrap_or_default() {
            for entry in stream["values"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(t) = entry[0].as_str().and_then(|t| t.parse().ok()) {
                    times.push(t);
                }
            }
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.truncate(limit);
        Ok((times, took))
    }

    /// Lines per level per hour over `[start, end)`: `sum by (level) (count_over_time(...[1h]))`
    /// evaluated at each hour's last nanosecond, whose window `(t - 1h, t]` is that hour.
    pub fn count_by_level_per_hour(&self, start: i64, end: i64) -> Result<(crate::w2::Counts, Duration), BenchError> {
        const HOUR: i64 = 3_600_000_000_000;
        let first = start - start.rem_euclid(HOUR) + HOUR - 1;
        let started = Instant::now();
        let result = self.query_range(
            "sum by (level) (count_over_time({job=\"w2\"}[1h]))",
            &[
                ("start", first.to_string()),
                ("end", (end + HOUR).to_string()),
                ("step", "3600".into()),
            ],
        )?;
        let took = started.elapsed();
        let mut counts = crate::w2::Counts::new();
        for series in result.as_array().map(Vec::as_slice).unwrap_or_default() {
            let level = series["metric"]["level"].as_str().unwrap_or_default().to_string();
            for point in series["values"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let seconds = point[0].as_f64().unwrap_or(0.0);
                let count = point[1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                if count > 0.0 {
                    // Times come back as seconds with milliseconds: step back into the hour.
                    let at = (seconds * 1000.0).round() as i64 * 1_000_000 - 1;
                    counts.insert((at - at.rem_euclid(HOUR), level.clone()), count as u64);
                }
            }
        }
        Ok((counts, took))
    }

    /// Peak resident memory of the process so far.
    pub fn peak_rss(&self) -> Option<u64> {
        self.server.peak_rss()
    }
}

/// A push request body of `entries` (time, level, line): one stream per level.
pub fn push_body<'a>(entries: impl Iterator<Item = (i64, &'a str, &'a str)>) -> Vec<u8> {
    let mut streams: std::collections::BTreeMap<&str, Vec<serde_json::Value>> = Default::default();
    for (time, level, line) in entries {
        streams.entry(level).or_default().push(serde_json::json!([time.to_string(), line]));
    }
    let streams: Vec<serde_json::Value> = streams
        .into_iter()
        .map(|(level, values)| serde_json::json!({"stream": {"job": "w2", "level": level}, "values": values}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap_or_default()
}

/// The LogQL line filters of a W2 search: `word`, `"a b"` or `(a OR b) -c`.
pub fn line_filters(search: &str) -> Result<String, BenchError> {
    let word = |w: &str| -> Result<String, BenchError> {
        if w.is_empty() || !w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(BenchError::Peer(format!("loki: no LogQL for the word {w:?} of {search:?}")));
        }
        Ok(w.to_string())
    };
    let filter = |op: &str, pattern: String| format!(" {op} `(?i)\\b{pattern}\\b`");
    if let Some(phrase) = search.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let words: Result<Vec<String>, BenchError> = phrase.split_whitespace().map(word).collect();
        return Ok(filter("|~", words?.join("[^0-9A-Za-z_]+")));
    }
    if let Some((either, not)) = search.strip_prefix('(').and_then(|s| s.split_once(") -")) {
        let (a, b) = either
            .split_once(" OR ")
            .ok_or_else(|| BenchError::Peer(format!("loki: no LogQL for {search:?}")))?;
        return Ok(format!(
            "{}{}",
            filter("|~", format!("({}|{})", word(a)?, word(b)?)),
            filter("!~", word(not)?)
        ));
    }
    Ok(filter("|~", word(search)?))
}

/// Loki as one process with its files under `dir`: loopback only, no usage reports, no
/// limits on the age, rate or size of what is pushed and asked (W2 is history of 2025),
/// ingesters asked for every range so that a query sees what is not yet flushed, and no
/// cache of query results (every instance is asked once, but the count is asked 20 times).
fn config(dir: &Path, http: u16, grpc: u16) -> String {
    format!(
        r#"auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
  grpc_server_max_recv_msg_size: 104857600
  grpc_server_max_send_msg_size: 104857600
  log_level: warn
common:
  path_prefix: {dir}
  replication_factor: 1
  instance_addr: 127.0.0.1
  ring:
    instance_addr: 127.0.0.1
    kvstore:
      store: inmemory
  storage:
    filesystem:
      chunks_directory: {dir}/chunks
      rules_directory: {dir}/rules
schema_config:
  configs:
    - from: 2000-01-01
      store: tsdb
      object_store: filesystem
      schema: v12
      index:
        prefix: index_
        period: 24h
storage_config:
  tsdb_shipper:
    active_index_directory: {dir}/index
    cache_location: {dir}/index-cache
    shared_store: filesystem
ingester:
  wal:
    dir: {dir}/wal
  query_store_max_look_back_period: -1
querier:
  query_ingesters_within: 0
query_range:
  cache_results: false
limits_config:
  reject_old_samples: false
  ingestion_rate_mb: 1024
  ingestion_burst_size_mb: 1024
  per_stream_rate_limit: 1024MB
  per_stream_rate_limit_burst: 1024MB
  max_query_length: 0
  max_query_lookback: 0
  max_entries_limit_per_query: 1000000
  max_query_series: 100000
  split_queries_by_interval: 24h
analytics:
  reporting_enabled: false
"#,
        dir = dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_become_word_bounded_case_blind_filters() {
        assert_eq!(line_filters("error").unwrap(), " |~ `(?i)\\berror\\b`");
        assert_eq!(
            line_filters("\"block_12 served\"").unwrap(),
            " |~ `(?i)\\bblock_12[^0-9A-Za-z_]+served\\b`"
        );
        assert_eq!(line_filters("(a OR b2) -c").unwrap(), " |~ `(?i)\\b(a|b2)\\b` !~ `(?i)\\bc\\b`");
        assert!(line_filters("a.b").is_err());
        let body = push_body([(5, "INFO", "x \"y\""), (6, "ERROR", "z"), (7, "INFO", "w")].into_iter());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["streams"].as_array().unwrap().len(), 2);
        assert_eq!(json["streams"][1]["stream"]["level"], "INFO");
        assert_eq!(json["streams"][1]["values"][0], serde_json::json!(["5", "x \"y\""]));
    }
}
