//! The InfluxDB 1.x peer: Debian's `influxdb` package (`influxd`), started on 127.0.0.1 with
//! its meta, data and WAL directories under the run's directory, fed Influx line protocol
//! over `POST /write` and asked InfluxQL over `GET /query`.
//!
//! InfluxQL expresses every W1 query as annals asks it: `GROUP BY time(...)` buckets are
//! aligned to the epoch and clipped by the `WHERE time` bounds, as annals' buckets are, so
//! InfluxDB's answers are compared with annals' whole answers (unlike VictoriaMetrics').
//! Its `/write` returns once the points are in its WAL, which it fsyncs on every write by
//! default (`wal-fsync-delay = "0s"`), so a single write is durable when answered.

use crate::BenchError;
use crate::peer::Server;
use crate::results::Answer;
use annals::TagPredicate;
use annals::query::{AggregateFn, CmpOp, Query};
use annals::workload::w1::{FIELDS, TsbsQuery};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The database every W1 point is written to.
const DATABASE: &str = "bench";

/// The binary, installed through `scripts/bench-peers.sh` (Debian's `influxdb`) when it is
/// missing; the reason it is not available otherwise.
pub fn locate() -> Result<PathBuf, String> {
    crate::peer::locate("influxd")
}

/// A running `influxd`; killed when dropped.
pub struct InfluxDb {
    binary: PathBuf,
    dir: PathBuf,
    server: Server,
}

impl InfluxDb {
    /// Starts `influxd` with its files in `dir` on free 127.0.0.1 ports, waits until it
    /// answers, and creates the database (a no-op when it exists).
    pub fn start(binary: &Path, dir: &Path) -> Result<InfluxDb, BenchError> {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(dir.to_path_buf(), e))?;
        let (http, rpc) = (crate::peer::free_port()?, crate::peer::free_port()?);
        let config_path = dir.join("influxdb.conf");
        std::fs::write(&config_path, config(dir, http, rpc)).map_err(|e| BenchError::Io(config_path.clone(), e))?;
        let mut command = Command::new(binary);
        command.arg("-config").arg(&config_path);
        // `/ping` answers 204 with no body once the HTTP service is up.
        let server = Server::start(
            "influxdb",
            command,
            http,
            &dir.join("influxdb.log"),
            "/ping",
            str::is_empty,
            Duration::from_secs(120),
        )?;
        let influx = InfluxDb {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            server,
        };
        influx.statement(&format!("CREATE DATABASE {DATABASE}"))?;
        Ok(influx)
    }

    /// The directories of its shards and WAL, whose size is the bytes on disk.
    pub fn storage(&self) -> [PathBuf; 2] {
        [self.dir.join("data"), self.dir.join("wal")]
    }

    /// Sends line protocol with nanosecond times; InfluxDB answers 204 once the points are
    /// in its WAL. While its cache is full (it answers 500 `cache-max-memory-size exceeded`
    /// until a snapshot is written) the request is sent again, as TSBS's loader backs off,
    /// for up to a minute.
    pub fn write(&self, lines: &[u8]) -> Result<(), BenchError> {
        let path = format!("/write?db={DATABASE}&precision=ns");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.server.post(&path, None, lines, Some(204)) {
                Ok(()) => return Ok(()),
                Err(Err(e)) => return Err(e),
                Err(Ok(refused)) => {
                    if !refused.body.contains("cache-max-memory-size exceeded") || Instant::now() > deadline {
                        return Err(self.server.error("/write", format!("{}: {}", refused.status, refused.body)));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one InfluxQL statement (times as epoch nanoseconds) and returns its first
    /// result, or the error InfluxDB reported for it.
    pub fn statement(&self, influxql: &str) -> Result<serde_json::Value, BenchError> {
        let body = self
            .server
            .get_with("/query", &[("db", DATABASE), ("epoch", "ns"), ("q", influxql)])?;
        let mut json: serde_json::Value = serde_json::from_str(&body).map_err(|e| self.server.error(influxql, e))?;
        let first = json["results"][0].take();
        if let Some(error) = first["error"].as_str().or(json["error"].as_str()) {
            return Err(self.server.error(influxql, error));
        }
        Ok(first)
    }

    /// Waits until InfluxDB has written its cache to TSM files and fully compacted them
    /// (the configuration makes both happen a few seconds after the last write), so that
    /// the bytes on disk are those of the data at rest, as VictoriaMetrics' are after its
    /// forced merge. Gives up after `limit` and says so.
    pub fn settle(&self, limit: Duration) -> Result<(), BenchError> {
        let started = Instant::now();
        let mut last = (0, 0);
        let mut steady = 0;
        while steady < 5 {
            std::thread::sleep(Duration::from_secs(1));
            let [data, wal] = self.storage();
            let now = (crate::report::dir_bytes(&data), crate::report::dir_bytes(&wal));
            let compacting = has_file_ending(&data, ".tmp");
            // A settled shard has a WAL of (nearly) nothing and the same files as a second ago.
            steady = if now == last && !compacting && now.1 < 1 << 20 {
                steady + 1
            } else {
                0
            };
            last = now;
            if started.elapsed() > limit {
                return Err(self.server.error("compaction", format!("still writing after {limit:?}")));
            }
        }
        Ok(())
    }

    /// Peak resident memory of the process so far.
    pub fn peak_rss(&self) -> Option<u64> {
        self.server.peak_rss()
    }

    /// Stops the process gracefully (SIGTERM) and starts it again on the same files;
    /// returns the time until `probe` (a statement over the data) answers with a series.
    pub fn restart(&mut self, probe: &str) -> Result<Duration, BenchError> {
        self.server.terminate();
        let started = Instant::now();
        let fresh = InfluxDb::start(&self.binary, &self.dir)?;
        drop(std::mem::replace(self, fresh));
        let answer = self.statement(probe)?;
        if answer["series"].as_array().is_none_or(|s| s.is_empty()) {
            return Err(self.server.error("after restart", format!("{probe} found no data")));
        }
        Ok(started.elapsed())
    }

    /// Answers a W1 TSBS query instance in InfluxQL. The time returned covers the HTTP
    /// request and parsing its JSON, not the conversion into an [`Answer`].
    pub fn tsbs(&self, kind: TsbsQuery, query: &Query) -> Result<(Answer, Duration), BenchError> {
        let influxql = influxql(kind, query)?;
        let started = Instant::now();
        let result = self.statement(&influxql)?;
        let took = started.elapsed();
        let mut answer = Answer::default();
        for series in result["series"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let host = series["tags"]["hostname"].as_str().unwrap_or_default();
            let columns: Vec<&str> = series["columns"]
                .as_array()
                .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            for row in series["values"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let Some(cells) = row.as_array() else { continue };
                let Some(time) = cells.first().and_then(|t| t.as_i64()) else {
                    continue;
                };
                for (column, cell) in columns.iter().zip(cells).skip(1) {
                    if let Some(v) = cell.as_f64() {
                        answer.put(time, host, column, v);
                    }
                }
            }
        }
        Ok((answer, took))
    }
}

/// The configuration: loopback only, no usage reports, no self-monitoring database, and
/// the cache written to TSM and fully compacted seconds (not the default minutes and
/// hours) after the last write, so bytes on disk can be measured at rest.
fn config(dir: &Path, http: u16, rpc: u16) -> String {
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{meta}"
[data]
  dir = "{data}"
  wal-dir = "{wal}"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "4s"
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"#,
        meta = dir.join("meta").display(),
        data = dir.join("data").display(),
        wal = dir.join("wal").display(),
    )
}

fn has_file_ending(dir: &Path, suffix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                has_file_ending(&path, suffix)
            } else {
                path.to_string_lossy().ends_with(suffix)
            }
        })
    })
}

/// A W1 TSBS query instance in InfluxQL. Aggregates are named as annals names them
/// (`max(usage_user)`), raw fields by their own names; grouping by `hostname` puts the host
/// in each series' tags.
pub fn influxql(kind: TsbsQuery, query: &Query) -> Result<String, BenchError> {
    let mut conditions = Vec::new();
    match &query.selector.predicate {
        None => {}
        Some(TagPredicate::Eq(tag, value)) => conditions.push(format!("{tag} = {}", quoted(value))),
        Some(TagPredicate::In(tag, values)) => {
            let any: Vec<String> = values.iter().map(|v| format!("{tag} = {}", quoted(v))).collect();
            conditions.push(format!("({})", any.join(" OR ")));
        }
        Some(other) => return Err(BenchError::Peer(format!("{}: no InfluxQL for {other:?}", kind.name()))),
    }
    for filter in &query.filters {
        let op = match filter.op {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        };
        conditions.push(format!("{} {op} {}", filter.field, filter.value));
    }
    if query.range.start > i64::MIN {
        conditions.push(format!("time >= {}", query.range.start));
    }
    if query.range.end < i64::MAX {
        conditions.push(format!("time < {}", query.range.end));
    }
    let mut statement = String::from("SELECT ");
    if query.aggregates.is_empty() {
        statement.push_str(&FIELDS.join(", "));
    } else {
        let aggregates: Result<Vec<String>, BenchError> = query
            .aggregates
            .iter()
            .map(|a| {
                let function = match a.function {
                    AggregateFn::Max => "max",
                    AggregateFn::Min => "min",
                    AggregateFn::Mean => "mean",
                    AggregateFn::Sum => "sum",
                    AggregateFn::Count => "count",
                    other => return Err(BenchError::Peer(format!("{}: no InfluxQL for {other:?}", kind.name()))),
                };
                let field = a.field.as_deref().unwrap_or_default();
                Ok(format!("{function}({field}) AS \"{function}({field})\""))
            })
            .collect();
        statement.push_str(&aggregates?.join(", "));
    }
    statement.push_str(" FROM cpu");
    if !conditions.is_empty() {
        statement.push_str(" WHERE ");
        statement.push_str(&conditions.join(" AND "));
    }
    let mut group_by = Vec::new();
    if let Some(every) = query.every {
        match every {
            annals::Bucket::Fixed(ns) => group_by.push(format!("time({ns}ns)")),
            other => return Err(BenchError::Peer(format!("{}: no InfluxQL for buckets {other:?}", kind.name()))),
        }
    }
    // Raw and lastpoint rows are keyed by host, as are grouped aggregates.
    if query.aggregates.is_empty() || !query.group_by.is_empty() {
        group_by.push("hostname".into());
    }
    if !group_by.is_empty() {
        statement.push_str(" GROUP BY ");
        statement.push_str(&group_by.join(", "));
    }
    if query.every.is_some() {
        statement.push_str(" fill(none)");
    }
    let descending = query.lastpoint || query.order == annals::Order::Descending;
    if descending {
        statement.push_str(" ORDER BY time DESC");
    }
    let limit = if query.lastpoint { Some(1) } else { query.limit };
    if let Some(limit) = limit {
        statement.push_str(&format!(" LIMIT {limit}"));
    }
    Ok(statement)
}

/// A string literal of InfluxQL.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_w1_query_has_an_influxql_statement() {
        let config = annals::workload::w1::W1Config::quick(1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for kind in TsbsQuery::ALL {
            let q = kind.generate(&config, &mut rng);
            let statement = influxql(kind, &q).unwrap();
            assert!(statement.starts_with("SELECT ") && statement.contains(" FROM cpu"), "{statement}");
        }
        let minute = 60_000_000_000i64;
        let newest = Query {
            selector: annals::SeriesSelector::measurement("cpu"),
            range: annals::TimeRange::new(i64::MIN, 10 * minute),
            aggregates: vec![annals::query::Aggregate::of(AggregateFn::Max, "usage_user")],
            every: Some(annals::Bucket::Fixed(minute)),
            order: annals::Order::Descending,
            limit: Some(5),
            ..Query::default()
        };
        assert_eq!(
            influxql(TsbsQuery::GroupbyOrderbyLimit, &newest).unwrap(),
            "SELECT max(usage_user) AS \"max(usage_user)\" FROM cpu WHERE time < 600000000000 \
             GROUP BY time(60000000000ns) fill(none) ORDER BY time DESC LIMIT 5"
        );
        let one_host = Query {
            selector: annals::SeriesSelector::measurement("cpu").with_tag("hostname", "it's"),
            range: annals::TimeRange::new(5, 7),
            filters: vec![annals::query::FieldFilter {
                field: "usage_user".into(),
                op: CmpOp::Gt,
                value: 90.0,
            }],
            ..Query::default()
        };
        let statement = influxql(TsbsQuery::HighCpu1, &one_host).unwrap();
        assert!(
            statement.ends_with("FROM cpu WHERE hostname = 'it\\'s' AND usage_user > 90 AND time >= 5 AND time < 7 GROUP BY hostname"),
            "{statement}"
        );
    }
}
