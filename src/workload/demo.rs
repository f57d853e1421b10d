//! The demo month: a small fleet's metrics, performance samples, logs and alerts.
//!
//! Eight hosts in four roles, readings every minute with daily cycles, random incidents
//! that push CPU and latency up, error logs and alerts that follow the incidents, and
//! alerts that are acknowledged and resolved. Deterministic for a seed and an end time.

use crate::error::{Error, Result};
use crate::model::{AlertEvent, AlertState, Batch, FieldValue, LogEntry, LogLevel, Metadata, MetricData, PerformanceData};
use crate::time::NANOS_PER_SECOND;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use std::collections::BTreeMap;

const MINUTE: i64 = 60 * NANOS_PER_SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Demo parameters.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Exclusive end of the month of data (ns); the data covers `days` before it.
    pub end_ns: i64,
    /// Days of data.
    pub days: u32,
    /// RNG seed.
    pub seed: u64,
}

/// Rows generated, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Metric readings.
    pub metrics: u64,
    /// Performance samples.
    pub performance: u64,
    /// Log records.
    pub logs: u64,
    /// Alert events.
    pub alerts: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Web,
    Db,
    Cache,
    Worker,
}

struct Host {
    name: String,
    role: Role,
    region: &'static str,
    pid: i64,
    memory: f64,
    disk: f64,
    /// Minutes left in the current incident.
    incident: u32,
    hot_minutes: u32,
    cpu_alert: Option<OpenAlert>,
    disk_alert: Option<OpenAlert>,
}

struct OpenAlert {
    raised: AlertEvent,
    ack_at: i64,
    acknowledged: bool,
}

const COMPONENTS: [(&str, &str, f64); 6] = [
    ("buffer", "flush", 4.0),
    ("batch", "process", 35.0),
    ("stream", "ingest", 2.0),
    ("optimizer", "compact", 120.0),
    ("network", "send", 8.0),
    ("device", "read", 1.5),
];

/// Generates the demo data in time order, handing batches of about an hour to `sink`.
pub fn generate(config: &DemoConfig, mut sink: impl FnMut(&Batch) -> Result<()>) -> Result<DemoSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let roles = [
        Role::Web,
        Role::Web,
        Role::Web,
        Role::Web,
        Role::Db,
        Role::Db,
        Role::Cache,
        Role::Worker,
    ];
    let mut hosts: Vec<Host> = roles
        .iter()
        .enumerate()
        .map(|(i, &role)| {
            let prefix = match role {
                Role::Web => "web",
                Role::Db => "db",
                Role::Cache => "cache",
                Role::Worker => "worker",
            };
            let index = roles[..i].iter().filter(|&&r| r == role).count() + 1;
            Host {
                name: format!("{prefix}-{index}"),
                role,
                region: if i % 2 == 0 { "eu-west-1" } else { "us-east-1" },
                pid: 1000 + i as i64 * 137,
                memory: rng.random_range(35.0..60.0),
                disk: rng.random_range(40.0..70.0),
                incident: 0,
                hot_minutes: 0,
                cpu_alert: None,
                disk_alert: None,
            }
        })
        .collect();
    let minutes = config.days as i64 * 24 * 60;
    let start = config.end_ns - minutes * MINUTE;
    let start = start - start.rem_euclid(MINUTE);
    let noise = Normal::new(0.0, 1.0).map_err(|e| Error::invalid(e.to_string()))?;
    let mut summary = DemoSummary::default();
    let mut batch = Batch::new();
    let mut alert_seq = 0u32;
    for minute in 0..minutes {
        let ts = start + minute * MINUTE;
        let hour_of_day = (ts.rem_euclid(24 * HOUR) / HOUR) as f64 + (ts.rem_euclid(HOUR) / MINUTE) as f64 / 60.0;
        // Busy in the (UTC) working day, quiet at night.
        let daily = (((hour_of_day - 14.0) / 24.0 * std::f64::consts::TAU).cos() + 1.0) / 2.0;
        for h in &mut hosts {
            if h.incident == 0 && rng.random_bool(1.0 / 2500.0) {
                h.incident = rng.random_range(15..75);
            }
            let in_incident = h.incident > 0;
            h.incident = h.incident.saturating_sub(1);
            let base = match h.role {
                Role::Web => 20.0 + 45.0 * daily,
                Role::Db => 25.0 + 25.0 * daily,
                Role::Cache => 10.0 + 10.0 * daily,
                Role::Worker => {
                    if (2.0..4.0).contains(&hour_of_day) {
                        80.0
                    } else {
                        15.0
                    }
                }
            };
            let cpu =
                ((base + noise.sample(&mut rng) * 3.0 + if in_incident { 40.0 } else { 0.0 }).clamp(0.0, 100.0) * 10.0).round() / 10.0;
            h.memory = (h.memory + noise.sample(&mut rng) * 0.05 + if in_incident { 0.05 } else { -0.002 }).clamp(20.0, 97.0);
            let growth = if h.role == Role::Db { 0.0009 } else { 0.0002 };
            h.disk += growth + noise.sample(&mut rng).abs() * 0.0002;
            if h.disk > 93.0 {
                h.disk -= 25.0;
            }
            let rx = (2e6 * daily * if h.role == Role::Web { 3.0 } else { 1.0 } * (noise.sample(&mut rng) * 0.1).exp()).round();
            let tx = (rx * rng.random_range(0.3..0.6)).round();
            let load = ((cpu / 25.0 + noise.sample(&mut rng) * 0.1).max(0.0) * 100.0).round() / 100.0;
            let tags: BTreeMap<String, String> = [
                ("host".to_string(), h.name.clone()),
                ("role".to_string(), role_name(h.role).to_string()),
                ("region".to_string(), h.region.to_string()),
            ]
            .into();
            for (metric_type, metric_name, value, unit) in [
                ("cpu", "usage_percent", cpu, "percent"),
                ("memory", "used_percent", (h.memory * 10.0).round() / 10.0, "percent"),
                ("disk", "used_percent", (h.disk * 100.0).round() / 100.0, "percent"),
                ("network", "rx_bytes_per_s", rx, "bytes_per_second"),
                ("network", "tx_bytes_per_s", tx, "bytes_per_second"),
                ("system", "load_1m", load, "load"),
            ] {
                batch.add_metric(&MetricData {
                    timestamp: ts,
                    metric_type: metric_type.into(),
                    metric_name: metric_name.into(),
                    value,
                    unit: Some(unit.into()),
                    tags: tags.clone(),
                })?;
                summary.metrics += 1;
            }
            summary.logs += emit_logs(&mut batch, &mut rng, h, ts, cpu, in_incident)?;
            summary.alerts += track_alerts(&mut batch, &mut rng, h, ts, cpu, &mut alert_seq)?;
        }
        if minute % 5 == 0 {
            let incident = hosts.iter().any(|h| h.incident > 0);
            for (component, operation, typical_ms) in COMPONENTS {
                let slow = if incident { 3.0 } else { 1.0 };
                let duration = LogNormal::new((typical_ms * slow).ln(), 0.35)
                    .map_err(|e| Error::invalid(e.to_string()))?
                    .sample(&mut rng);
                let batch_size: i64 = rng.random_range(64..=512);
                let errors = Poisson::new(if incident { 1.5 } else { 0.05 })
                    .map_err(|e| Error::invalid(e.to_string()))?
                    .sample(&mut rng) as i64;
                batch.add_performance(&PerformanceData {
                    timestamp: ts + rng.random_range(0..MINUTE),
                    component: component.into(),
                    operation: operation.into(),
                    duration_ms: Some((duration * 1000.0).round() / 1000.0),
                    throughput: Some((batch_size as f64 / duration * 1000.0 * 10.0).round() / 10.0),
                    efficiency_percent: Some(
                        ((100.0 - noise.sample(&mut rng).abs() * if incident { 15.0 } else { 3.0 }).max(0.0) * 10.0).round() / 10.0,
                    ),
                    error_count: errors,
                    metadata: [("batch_size".to_string(), FieldValue::I64(batch_size))].into(),
                    tags: BTreeMap::new(),
                })?;
                summary.performance += 1;
            }
        }
        if minute % 60 == 59 || minute == minutes - 1 {
            sink(&batch)?;
            batch.clear();
        }
    }
    Ok(summary)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Web => "web",
        Role::Db => "db",
        Role::Cache => "cache",
        Role::Worker => "worker",
    }
}

fn emit_logs(batch: &mut Batch, rng: &mut ChaCha8Rng, h: &Host, ts: i64, cpu: f64, incident: bool) -> Result<u64> {
    let rate = match h.role {
        Role::Web => 0.4 + cpu / 100.0,
        Role::Db => 0.3,
        Role::Cache => 0.1,
        Role::Worker => 0.25,
    } * if incident { 3.0 } else { 1.0 };
    let count = Poisson::new(rate).map_err(|e| Error::invalid(e.to_string()))?.sample(rng) as u64;
    for _ in 0..count {
        let roll: f64 = rng.random();
        let (level, logger, module, function, message) = match h.role {
            Role::Web => {
                let ms: u32 = rng.random_range(3..if incident { 4000 } else { 250 });
                if incident && roll < 0.3 {
                    (
                        LogLevel::Error,
                        "app.orders",
                        "orders",
                        "load_order",
                        format!("upstream db-{} timed out after {} ms", rng.random_range(1..=2), 1000 + ms),
                    )
                } else if roll < 0.002 {
                    (
                        LogLevel::Critical,
                        "app.server",
                        "server",
                        "accept",
                        format!("worker pool exhausted: {} requests queued", rng.random_range(200..900)),
                    )
                } else if roll < 0.08 {
                    (
                        LogLevel::Warning,
                        "http.access",
                        "access",
                        "log_request",
                        format!(
                            "slow request GET /api/search?q={} took {} ms",
                            ["shoes", "laptop", "coffee", "tent"][rng.random_range(0..4)],
                            500 + ms * 4
                        ),
                    )
                } else if roll < 0.25 {
                    (
                        LogLevel::Debug,
                        "app.session",
                        "session",
                        "lookup",
                        format!("cache hit for session {:016x}", rng.random::<u64>()),
                    )
                } else {
                    (
                        LogLevel::Info,
                        "http.access",
                        "access",
                        "log_request",
                        format!("GET /api/orders/{} 200 {} ms", rng.random_range(10_000..99_999), ms),
                    )
                }
            }
            Role::Db => {
                if incident && roll < 0.25 {
                    (
                        LogLevel::Error,
                        "db.lock",
                        "lockmgr",
                        "deadlock_check",
                        format!(
                            "deadlock detected on relation orders; process {} waits for ShareLock",
                            rng.random_range(20_000..40_000)
                        ),
                    )
                } else if roll < 0.2 || incident {
                    (
                        LogLevel::Warning,
                        "db.query",
                        "executor",
                        "run_query",
                        format!(
                            "slow query {} ms: SELECT * FROM orders WHERE customer_id = {}",
                            rng.random_range(300..5000),
                            rng.random_range(1..50_000)
                        ),
                    )
                } else {
                    (
                        LogLevel::Info,
                        "db.checkpoint",
                        "checkpointer",
                        "checkpoint",
                        format!(
                            "checkpoint complete: wrote {} buffers ({:.1}%)",
                            rng.random_range(100..9000),
                            rng.random_range(0.5..12.0)
                        ),
                    )
                }
            }
            Role::Cache => {
                if roll < 0.15 {
                    (
                        LogLevel::Warning,
                        "cache",
                        "memory",
                        "check_usage",
                        format!("memory usage {:.1}% above threshold", h.memory.max(80.0)),
                    )
                } else {
                    (
                        LogLevel::Info,
                        "cache",
                        "evict",
                        "evict_keys",
                        format!("evicted {} keys (maxmemory policy allkeys-lru)", rng.random_range(10..5000)),
                    )
                }
            }
            Role::Worker => {
                let job = format!("{:08x}-{:04x}", rng.random::<u32>(), rng.random::<u16>());
                if roll < if incident { 0.3 } else { 0.03 } {
                    (
                        LogLevel::Error,
                        "worker.jobs",
                        "runner",
                        "run_job",
                        format!("job {job} failed: connection reset by peer"),
                    )
                } else if roll < 0.1 {
                    (
                        LogLevel::Warning,
                        "worker.jobs",
                        "runner",
                        "retry",
                        format!("retrying job {job} (attempt {})", rng.random_range(2..5)),
                    )
                } else {
                    (
                        LogLevel::Info,
                        "worker.jobs",
                        "runner",
                        "run_job",
                        format!("job {job} finished in {:.2} s", rng.random_range(0.1..30.0)),
                    )
                }
            }
        };
        let mut extra: Metadata = Metadata::new();
        if level >= LogLevel::Error {
            extra.insert("cpu_percent".into(), FieldValue::F64(cpu));
        }
        batch.add_log(&LogEntry {
            timestamp: ts + rng.random_range(0..MINUTE),
            level,
            logger_name: logger.into(),
            message,
            module: Some(module.into()),
            function_name: Some(function.into()),
            line_number: Some(rng.random_range(20..400)),
            thread_id: Some(140_000_000 + rng.random_range(0..8)),
            process_id: Some(h.pid),
            extra_data: extra,
            tags: [("host".to_string(), h.name.clone())].into(),
        })?;
    }
    Ok(count)
}

fn track_alerts(batch: &mut Batch, rng: &mut ChaCha8Rng, h: &mut Host, ts: i64, cpu: f64, seq: &mut u32) -> Result<u64> {
    let mut events = 0;
    h.hot_minutes = if cpu > 90.0 { h.hot_minutes + 1 } else { 0 };
    if h.hot_minutes == 3 && h.cpu_alert.is_none() {
        *seq += 1;
        let raised = AlertEvent {
            timestamp: ts,
            alert_id: format!("cpu-{}-{seq:04}", h.name),
            state: AlertState::Raised,
            level: if cpu > 95.0 { LogLevel::Critical } else { LogLevel::Warning },
            category: "PERFORMANCE".into(),
            title: format!("High CPU on {}", h.name),
            description: Some(format!("cpu usage_percent above 90 for 3 minutes (now {cpu:.1}%)")),
            source_component: Some(h.name.clone()),
            metadata: [("threshold".to_string(), FieldValue::F64(90.0))].into(),
        };
        batch.add_alert(&raised)?;
        events += 1;
        h.cpu_alert = Some(OpenAlert {
            ack_at: ts + rng.random_range(5..30) * MINUTE,
            raised,
            acknowledged: false,
        });
    }
    let disk_full = h.disk > 85.0;
    if disk_full && h.disk_alert.is_none() {
        *seq += 1;
        let raised = AlertEvent {
            timestamp: ts,
            alert_id: format!("disk-{}-{seq:04}", h.name),
            state: AlertState::Raised,
            level: LogLevel::Warning,
            category: "SYSTEM".into(),
            title: format!("Disk almost full on {}", h.name),
            description: Some(format!("/var is {:.1}% full", h.disk)),
            source_component: Some(h.name.clone()),
            metadata: Metadata::new(),
        };
        batch.add_alert(&raised)?;
        events += 1;
        h.disk_alert = Some(OpenAlert {
            ack_at: ts + rng.random_range(30..240) * MINUTE,
            raised,
            acknowledged: false,
        });
    }
    for (slot, cleared) in [(&mut h.cpu_alert, cpu < 70.0), (&mut h.disk_alert, !disk_full)] {
        let Some(alert) = slot.as_mut() else { continue };
        if !alert.acknowledged && (ts >= alert.ack_at || cleared) {
            batch.add_alert(&AlertEvent {
                timestamp: ts,
                state: AlertState::Acknowledged,
                ..alert.raised.clone()
            })?;
            alert.acknowledged = true;
            events += 1;
        }
        if cleared && alert.acknowledged {
            batch.add_alert(&AlertEvent {
                timestamp: ts + NANOS_PER_SECOND,
                state: AlertState::Resolved,
                ..alert.raised.clone()
            })?;
            events += 1;
            *slot = None;
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_of_demo_data_is_deterministic_and_varied() {
        let config = DemoConfig {
            end_ns: 1_700_000_000_000_000_000,
            days: 1,
            seed: 5,
        };
        let mut rows_a = 0;
        let a = generate(&config, |b| {
            rows_a += b.len();
            Ok(())
        })
        .unwrap();
        let b = generate(&config, |_| Ok(())).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.metrics, 8 * 6 * 24 * 60);
        assert_eq!(a.performance, 6 * 24 * 12);
        assert!(a.logs > 1000, "{a:?}");
        assert_eq!(rows_a as u64, a.metrics + a.performance + a.logs + a.alerts);
    }
}
