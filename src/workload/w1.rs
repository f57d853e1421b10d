//! W1: devops CPU metrics in the shape of TSBS `cpu-only` (see `../shared/bench/WORKLOAD.md`
//! and `TSBS_NOTES.md`).
//!
//! `hosts` hosts, one row of ten fields per host every 10 s, from 2016-01-01T00:00:00Z.
//! Each field is a random walk with N(0, 1) steps clamped to [0, 100], emitted with two
//! decimals (or truncated to integers with `tsbs_ints`, as current TSBS does). Host tags
//! follow TSBS's distributions. Everything is a pure function of the configuration and seed:
//! the embedded API and the line-protocol file carry exactly the same values.

use crate::error::Result;
use crate::model::{Batch, FieldValue, SeriesKey, SeriesKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::io::Write;

/// The ten fields of the `cpu` measurement, in TSBS order.
pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// Tag keys in TSBS's emission order.
pub const TAG_KEYS: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

const REGIONS: [(&str, &[&str]); 9] = [
    ("us-east-1", &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];

/// W1 parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct W1Config {
    /// Number of hosts (series).
    pub hosts: usize,
    /// Number of 10-second epochs.
    pub epochs: u64,
    /// First timestamp (ns).
    pub start_ns: i64,
    /// Interval between readings (ns).
    pub interval_ns: i64,
    /// RNG seed.
    pub seed: u64,
    /// Truncate values to integers as current TSBS does, instead of two decimals.
    pub tsbs_ints: bool,
}

impl W1Config {
    /// 2016-01-01T00:00:00Z.
    pub const START_NS: i64 = 1_451_606_400_000_000_000;

    /// `hosts` hosts for `days` days at 10 s.
    pub fn new(hosts: usize, days: u64, seed: u64) -> W1Config {
        W1Config {
            hosts,
            epochs: days * 8640,
            start_ns: Self::START_NS,
            interval_ns: 10_000_000_000,
            seed,
            tsbs_ints: false,
        }
    }

    /// Quick scale: 100 hosts, 1 day (864,000 rows, 8.64 M points).
    pub fn quick(seed: u64) -> W1Config {
        W1Config::new(100, 1, seed)
    }

    /// Full scale: 1000 hosts, 3 days.
    pub fn full(seed: u64) -> W1Config {
        W1Config::new(1000, 3, seed)
    }

    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.epochs * self.hosts as u64
    }

    /// Total points (10 per row).
    pub fn points(&self) -> u64 {
        self.rows() * FIELDS.len() as u64
    }

    /// Timestamp of the last row.
    pub fn end_ns(&self) -> i64 {
        self.start_ns + (self.epochs as i64 - 1) * self.interval_ns
    }
}

struct Host {
    key: SeriesKey,
    /// Tag values in [`TAG_KEYS`] order, for line protocol.
    tags: [String; 10],
    state: [f64; 10],
}

/// A W1 generator: rows in TSBS emission order (every host at one timestamp, then the next
/// timestamp).
pub struct W1 {
    config: W1Config,
    hosts: Vec<Host>,
    rng: ChaCha8Rng,
    epoch: u64,
    host: usize,
}

impl W1 {
    /// A generator positioned at the first row.
    pub fn new(config: W1Config) -> Result<W1> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut hosts = Vec::with_capacity(config.hosts);
        for id in 0..config.hosts {
            let state: [f64; 10] = std::array::from_fn(|_| rng.random::<f64>() * 100.0);
            let (region, datacenters) = REGIONS[rng.random_range(0..REGIONS.len())];
            let tags: [String; 10] = [
                format!("host_{id}"),
                region.to_string(),
                datacenters[rng.random_range(0..datacenters.len())].to_string(),
                rng.random_range(0..100u32).to_string(),
                OSES[rng.random_range(0..OSES.len())].to_string(),
                ARCHES[rng.random_range(0..ARCHES.len())].to_string(),
                TEAMS[rng.random_range(0..TEAMS.len())].to_string(),
                rng.random_range(0..20u32).to_string(),
                rng.random_range(0..2u32).to_string(),
                ENVIRONMENTS[rng.random_range(0..ENVIRONMENTS.len())].to_string(),
            ];
            let key = SeriesKey::new(
                SeriesKind::Metric,
                "cpu",
                TAG_KEYS.iter().zip(tags.iter()).map(|(k, v)| (*k, v.as_str())),
            )?;
            hosts.push(Host { key, tags, state });
        }
        Ok(W1 {
            config,
            hosts,
            rng,
            epoch: 0,
            host: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &W1Config {
        &self.config
    }

    /// Series key of host `i`.
    pub fn series_key(&self, host: usize) -> &SeriesKey {
        &self.hosts[host].key
    }

    /// Emitted value of a walk state: cents as an integer, or whole units with `tsbs_ints`.
    fn emitted(&self, state: f64) -> i64 {
        if self.config.tsbs_ints {
            state.trunc() as i64
        } else {
            (state * 100.0).round() as i64
        }
    }

    fn value(&self, emitted: i64) -> f64 {
        if self.config.tsbs_ints {
            emitted as f64
        } else {
            emitted as f64 / 100.0
        }
    }

    /// The next row as (host index, timestamp, ten emitted values), or `None` at the end.
    fn next_row(&mut self) -> Option<(usize, i64, [i64; 10])> {
        if self.epoch >= self.config.epochs || self.hosts.is_empty() {
            return None;
        }
        let host = self.host;
        let ts = self.config.start_ns + self.epoch as i64 * self.config.interval_ns;
        let values = std::array::from_fn(|f| self.emitted(self.hosts[host].state[f]));
        self.host += 1;
        if self.host == self.hosts.len() {
            self.host = 0;
            self.epoch += 1;
            for h in 0..self.hosts.len() {
                for f in 0..FIELDS.len() {
                    let step: f64 = self.rng.sample(StandardNormal);
                    let s = &mut self.hosts[h].state[f];
                    *s = (*s + step).clamp(0.0, 100.0);
                }
            }
        }
        Some((host, ts, values))
    }

    /// The next reading as (host index, timestamp, the ten values in [`FIELDS`] order), for
    /// loading the same data into another engine; `None` at the end.
    pub fn next_reading(&mut self) -> Option<(usize, i64, [f64; 10])> {
        let (host, ts, values) = self.next_row()?;
        Some((host, ts, values.map(|v| self.value(v))))
    }

    /// Appends up to `max_rows` rows to `batch`; returns how many were added (0 at the end).
    pub fn fill_batch(&mut self, batch: &mut Batch, max_rows: usize) -> Result<usize> {
        let mut added = 0;
        while added < max_rows {
            let Some((host, ts, values)) = self.next_row() else { break };
            let fields = FIELDS.iter().zip(values).map(|(name, v)| {
                let value = if self.config.tsbs_ints {
                    FieldValue::I64(v)
                } else {
                    FieldValue::F64(self.value(v))
                };
                (*name, value)
            });
            batch.add_row(&self.hosts[host].key, ts, fields)?;
            added += 1;
        }
        Ok(added)
    }

    /// Writes up to `max_rows` rows as Influx line protocol (TSBS tag order, nanosecond
    /// timestamps); returns how many were written.
    pub fn write_line_protocol(&mut self, out: &mut impl Write, max_rows: usize) -> std::io::Result<usize> {
        let mut written = 0;
        let mut line = String::with_capacity(512);
        while written < max_rows {
            let Some((host, ts, values)) = self.next_row() else { break };
            line.clear();
            line.push_str("cpu");
            for (k, v) in TAG_KEYS.iter().zip(&self.hosts[host].tags) {
                line.push(',');
                line.push_str(k);
                line.push('=');
                line.push_str(v);
            }
            for (i, (name, v)) in FIELDS.iter().zip(values).enumerate() {
                line.push(if i == 0 { ' ' } else { ',' });
                line.push_str(name);
                line.push('=');
                if self.config.tsbs_ints {
                    line.push_str(&format!("{v}i"));
                } else {
                    line.push_str(&format!("{}.{:02}", v / 100, v % 100));
                }
            }
            line.push_str(&format!(" {ts}\n"));
            out.write_all(line.as_bytes())?;
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_emission_order() {
        let config = W1Config::new(3, 1, 7);
        let mut a = W1::new(config.clone()).unwrap();
        let mut b = W1::new(config).unwrap();
        let mut ba = Batch::new();
        let mut bb = Batch::new();
        assert_eq!(a.fill_batch(&mut ba, 10).unwrap(), 10);
        assert_eq!(b.fill_batch(&mut bb, 10).unwrap(), 10);
        let rows_a: Vec<_> = ba
            .rows()
            .map(|(k, t, f)| (k.clone(), t, f.map(|(n, v)| (n.to_string(), v.clone())).collect::<Vec<_>>()))
            .collect();
        let rows_b: Vec<_> = bb
            .rows()
            .map(|(k, t, f)| (k.clone(), t, f.map(|(n, v)| (n.to_string(), v.clone())).collect::<Vec<_>>()))
            .collect();
        assert_eq!(rows_a, rows_b);
        assert_eq!(rows_a[0].1, W1Config::START_NS);
        assert_eq!(rows_a[3].1, W1Config::START_NS + 10_000_000_000);
        assert_eq!(rows_a[1].0.tag("hostname"), Some("host_1"));
        for (_, _, fields) in &rows_a {
            for (_, v) in fields {
                let v = v.as_f64().unwrap();
                assert!((0.0..=100.0).contains(&v));
                assert_eq!((v * 100.0).round() / 100.0, v);
            }
        }
    }

    #[test]
    fn line_protocol_matches_the_embedded_rows() {
        let config = W1Config::new(2, 1, 9);
        let mut lp = Vec::new();
        W1::new(config.clone()).unwrap().write_line_protocol(&mut lp, 4).unwrap();
        let text = String::from_utf8(lp).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("cpu,hostname=host_0,region="), "{first}");
        let mut batch = Batch::new();
        W1::new(config).unwrap().fill_batch(&mut batch, 4).unwrap();
        let (_, ts, mut fields) = batch.rows().next().unwrap();
        let (name, value) = fields.next().unwrap();
        let printed = format!(" {name}={:.2},", value.as_f64().unwrap());
        assert!(first.contains(&printed), "{first} lacks {printed}");
        assert!(first.ends_with(&format!(" {ts}")));
    }
}

/// The TSBS devops queries of `../shared/bench/WORKLOAD.md`, with TSBS's random windows and
/// hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsbsQuery {
    /// The 10,000 newest points (1,000 rows of ten fields) of one host inside a 12 h window.
    Range10k,
    /// MAX(usage_user) per minute, one host, one hour.
    SingleGroupby111,
    /// MAX of the first five fields per minute, one host, twelve hours.
    SingleGroupby5112,
    /// MAX of all ten fields per hour, eight hosts, eight hours.
    CpuMaxAll8,
    /// AVG(usage_user) per host per hour, all hosts, twelve hours.
    DoubleGroupby1,
    /// All rows of one host over twelve hours where usage_user > 90.
    HighCpu1,
    /// The newest row of every host.
    Lastpoint,
    /// MAX(usage_user) per minute before a random time, all hosts, newest five minutes.
    GroupbyOrderbyLimit,
}

impl TsbsQuery {
    /// Every query, in WORKLOAD.md's order.
    pub const ALL: [TsbsQuery; 8] = [
        TsbsQuery::Range10k,
        TsbsQuery::SingleGroupby111,
        TsbsQuery::SingleGroupby5112,
        TsbsQuery::CpuMaxAll8,
        TsbsQuery::DoubleGroupby1,
        TsbsQuery::HighCpu1,
        TsbsQuery::Lastpoint,
        TsbsQuery::GroupbyOrderbyLimit,
    ];

    /// TSBS's name.
    pub fn name(&self) -> &'static str {
        match self {
            TsbsQuery::Range10k => "range-10k",
            TsbsQuery::SingleGroupby111 => "single-groupby-1-1-1",
            TsbsQuery::SingleGroupby5112 => "single-groupby-5-1-12",
            TsbsQuery::CpuMaxAll8 => "cpu-max-all-8",
            TsbsQuery::DoubleGroupby1 => "double-groupby-1",
            TsbsQuery::HighCpu1 => "high-cpu-1",
            TsbsQuery::Lastpoint => "lastpoint",
            TsbsQuery::GroupbyOrderbyLimit => "groupby-orderby-limit",
        }
    }

    /// An instance with random hosts and window, as TSBS's generator draws them: a window
    /// starts uniformly in `[start, end - window)`, where `end` is one second after the last
    /// reading.
    pub fn generate(&self, config: &W1Config, rng: &mut impl Rng) -> crate::query::Query {
        use crate::query::{Aggregate, AggregateFn, Bucket, FieldFilter, Query};
        use crate::read::Order;
        use crate::scan::SeriesSelector;
        use crate::time::TimeRange;
        let end = config.end_ns() + 1_000_000_000;
        let hour = 3_600_000_000_000i64;
        let mut window = |length: i64| {
            let upper = (end - length - config.start_ns).max(1);
            let start = config.start_ns + rng.random_range(0..upper);
            TimeRange::new(start, start + length)
        };
        let hosts = |rng: &mut dyn rand::RngCore, n: usize| -> Vec<String> {
            let mut all: Vec<usize> = (0..config.hosts).collect();
            for i in 0..n.min(all.len()) {
                let j = i + (rng.next_u64() as usize) % (all.len() - i);
                all.swap(i, j);
            }
            all[..n.min(config.hosts)].iter().map(|h| format!("host_{h}")).collect()
        };
        let cpu = || SeriesSelector::measurement("cpu");
        let one_host = |rng: &mut dyn rand::RngCore| cpu().with_tag("hostname", hosts(rng, 1).remove(0));
        let max_of = |n: usize| FIELDS[..n].iter().map(|f| Aggregate::of(AggregateFn::Max, *f)).collect::<Vec<_>>();
        match self {
            TsbsQuery::Range10k => {
                let range = window(12 * hour);
                Query {
                    selector: one_host(rng),
                    range,
                    order: Order::Descending,
                    limit: Some(1000),
                    ..Query::default()
                }
            }
            TsbsQuery::SingleGroupby111 | TsbsQuery::SingleGroupby5112 => {
                let (fields, length) = if *self == TsbsQuery::SingleGroupby111 {
                    (1, hour)
                } else {
                    (5, 12 * hour)
                };
                let range = window(length);
                Query {
                    selector: one_host(rng),
                    range,
                    aggregates: max_of(fields),
                    every: Some(Bucket::Fixed(60_000_000_000)),
                    ..Query::default()
                }
            }
            TsbsQuery::CpuMaxAll8 => {
                let range = window(8 * hour);
                let selected = hosts(rng, 8);
                Query {
                    selector: cpu().with_predicate(crate::index::TagPredicate::In("hostname".into(), selected)),
                    range,
                    aggregates: max_of(10),
                    every: Some(Bucket::Fixed(hour)),
                    ..Query::default()
                }
            }
            TsbsQuery::DoubleGroupby1 => Query {
                selector: cpu(),
                range: window(12 * hour),
                aggregates: vec![Aggregate::of(AggregateFn::Mean, FIELDS[0])],
                group_by: vec!["hostname".into()],
                every: Some(Bucket::Fixed(hour)),
                ..Query::default()
            },
            TsbsQuery::HighCpu1 => {
                let range = window(12 * hour);
                Query {
                    selector: one_host(rng),
                    range,
                    filters: vec![FieldFilter {
                        field: FIELDS[0].into(),
                        op: crate::query::CmpOp::Gt,
                        value: 90.0,
                    }],
                    ..Query::default()
                }
            }
            TsbsQuery::Lastpoint => Query {
                selector: cpu(),
                lastpoint: true,
                ..Query::default()
            },
            TsbsQuery::GroupbyOrderbyLimit => {
                let end = window(hour).end;
                Query {
                    selector: cpu(),
                    range: TimeRange::new(i64::MIN, end),
                    aggregates: vec![Aggregate::of(AggregateFn::Max, FIELDS[0])],
                    every: Some(Bucket::Fixed(60_000_000_000)),
                    order: Order::Descending,
                    limit: Some(5),
                    ..Query::default()
                }
            }
        }
    }
}
