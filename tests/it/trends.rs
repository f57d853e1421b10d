//! Trend analysis through the public API and the binary: the anomaly detector's causality
//! and resumable state on every shared NAB file, degenerate input, `History::get_trends`
//! over a real store, and the CLI's CSV columns.

use annals::history::History;
use annals::query::QuerySpec;
use annals::time::{NANOS_PER_DAY, NANOS_PER_SECOND};
use annals::trends::{AnomalyDetector, DetectorOptions, TrendParts, TrendQuery, score_points};
use annals::workload::w3::{NabCorpus, default_nab_dir};
use annals::{MetricData, Options};
use std::collections::BTreeMap;
use std::process::Command;

fn nab() -> Option<NabCorpus> {
    let dir = default_nab_dir();
    if !dir.exists() {
        eprintln!("skipped: no NAB corpus at {}", dir.display());
        return None;
    }
    Some(NabCorpus::load(&dir).expect("the shared NAB corpus loads"))
}

/// The score of a point depends only on the points up to it: scoring a prefix gives the
/// first scores of the whole series, on every shared NAB file and at several cut points.
#[test]
fn scores_of_a_prefix_are_the_first_scores_of_the_whole_series() {
    let Some(corpus) = nab() else { return };
    assert!(corpus.series.len() >= 35);
    for series in &corpus.series {
        let whole = score_points(&series.points, DetectorOptions::default());
        for cut in [
            1,
            151,
            series.points.len() / 3,
            series.points.len() / 2 + 7,
            series.points.len() - 1,
        ] {
            let prefix = score_points(&series.points[..cut], DetectorOptions::default());
            assert_eq!(prefix.points[..], whole.points[..cut], "{} cut at {cut}", series.name);
        }
        assert!(whole.points.iter().all(|p| (0.0..=1.0).contains(&p.score)), "{}", series.name);
    }
}

/// A detector saved as JSON mid-series and restored scores the rest exactly as one that
/// never stopped.
#[test]
fn a_checkpointed_detector_resumes_exactly() {
    let Some(corpus) = nab() else { return };
    for series in &corpus.series {
        let mut straight = AnomalyDetector::new(DetectorOptions::default());
        let expected: Vec<_> = series.points.iter().map(|&(t, v)| straight.score(t, v)).collect();
        for cut in [10, series.points.len() / 2] {
            let mut first = AnomalyDetector::new(DetectorOptions::default());
            let mut got: Vec<_> = series.points[..cut].iter().map(|&(t, v)| first.score(t, v)).collect();
            let saved = serde_json::to_string(&first).unwrap();
            assert!(saved.len() < 64 * 1024, "{}: state of {} bytes", series.name, saved.len());
            let mut resumed: AnomalyDetector = serde_json::from_str(&saved).unwrap();
            assert_eq!(resumed, first, "{}: the restored state equals the saved one", series.name);
            got.extend(series.points[cut..].iter().map(|&(t, v)| resumed.score(t, v)));
            assert_eq!(got, expected, "{} resumed at {cut}", series.name);
        }
    }
}

#[test]
fn degenerate_series_score_without_panics_or_nan() {
    let minute = 60 * NANOS_PER_SECOND;
    let check = |name: &str, points: &[(i64, f64)]| {
        let report = score_points(points, DetectorOptions::default());
        assert_eq!(report.points.len(), points.len(), "{name}");
        for p in &report.points {
            assert!(p.score.is_finite() && (0.0..=1.0).contains(&p.score), "{name}: {p:?}");
        }
        report
    };
    let constant: Vec<(i64, f64)> = (0..5_000).map(|i| (i * minute, 42.0)).collect();
    assert_eq!(check("constant", &constant).count, 0);
    check("single", &[(0, 1.0)]);
    check("empty", &[]);
    let odd: Vec<(i64, f64)> = (0..2_000)
        .map(|i| {
            let v = match i % 97 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => (i % 13) as f64,
            };
            (i * minute, v)
        })
        .collect();
    let report = check("non-finite", &odd);
    for (p, &(_, v)) in report.points.iter().zip(&odd) {
        if !v.is_finite() {
            assert_eq!((p.score, p.anomaly), (0.0, false));
        }
    }
    // Gaps of weeks, repeated and backward timestamps, extreme times and values.
    let mut gappy = Vec::new();
    for week in 0..6 {
        for i in 0..300 {
            gappy.push((week * 14 * NANOS_PER_DAY + i * minute, (i % 20) as f64));
        }
    }
    gappy.push((gappy[10].0, 5.0));
    gappy.push((i64::MIN, 1e300));
    gappy.push((i64::MAX, -1e300));
    check("gaps", &gappy);
}

/// Ten million points through one detector: the state does not grow with the series.
#[test]
fn ten_million_points_keep_the_state_bounded() {
    let mut detector = AnomalyDetector::new(DetectorOptions::default());
    let step = 10 * NANOS_PER_SECOND;
    let mut size_at_1m = 0;
    let mut anomalies = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..10_000_000i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 1000) as f64 / 100.0;
        let daily = (std::f64::consts::TAU * (i % 8_640) as f64 / 8_640.0).sin() * 20.0;
        anomalies += u64::from(detector.score(i * step, 50.0 + daily + noise).anomaly);
        if i == 1_000_000 {
            size_at_1m = serde_json::to_vec(&detector).unwrap().len();
        }
    }
    let size = serde_json::to_vec(&detector).unwrap().len();
    assert!(
        size < 64 * 1024 && size <= size_at_1m + 1024,
        "state grew from {size_at_1m} to {size} bytes"
    );
    assert!(anomalies < 1_000, "{anomalies} alerts on a steady daily rhythm");
}

fn cpu(host: &str, t: i64, value: f64) -> MetricData {
    MetricData {
        timestamp: t,
        metric_type: "cpu".into(),
        metric_name: "value".into(),
        value,
        unit: None,
        tags: BTreeMap::from([("host".to_string(), host.to_string())]),
    }
}

/// 14 days of 10-minute cpu for three hosts: a daily rhythm, host b following host a an
/// hour later, host c unrelated with a level shift on day 10.
fn seeded_store(dir: &std::path::Path) -> History {
    let history = History::open(dir, Options::default()).unwrap();
    let start = 1_700_000_000 * NANOS_PER_SECOND - (1_700_000_000 * NANOS_PER_SECOND).rem_euclid(NANOS_PER_DAY);
    let step = 600 * NANOS_PER_SECOND;
    let cells = 14 * 144;
    let mut state = 7u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1000) as f64 / 1000.0 - 0.5
    };
    let a: Vec<f64> = (0..cells)
        .map(|i| 50.0 + 20.0 * (std::f64::consts::TAU * (i % 144) as f64 / 144.0).sin() + 8.0 * noise())
        .collect();
    let mut rows = Vec::new();
    for i in 0..cells {
        let t = start + i as i64 * step;
        rows.push(cpu("a", t, a[i]));
        rows.push(cpu("b", t, if i >= 6 { 0.5 * a[i - 6] } else { 25.0 } + noise()));
        rows.push(cpu("c", t, if i >= 10 * 144 { 80.0 } else { 20.0 } + noise()));
    }
    history.store_metrics(&rows).unwrap();
    history
}

fn select(measurement: &str, fields: &[&str]) -> QuerySpec {
    QuerySpec {
        measurement: measurement.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        ..QuerySpec::default()
    }
}

#[test]
fn get_trends_reads_the_store_and_answers_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let history = seeded_store(dir.path());
    let query = TrendQuery {
        selection: select("cpu", &["value"]),
        threshold: Some(95.0),
        max_lag: 12,
        ..TrendQuery::default()
    };
    let analysis = history.get_trends(&query).unwrap();
    let labels: Vec<&str> = analysis.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["value{host=a}", "value{host=b}", "value{host=c}"]);
    let a = &analysis.series[0];
    assert_eq!(a.points, 14 * 144);
    let periods = &a.patterns.as_ref().unwrap().periods;
    assert_eq!(
        periods.first().map(|p| (p.samples, p.name.as_deref())),
        Some((144, Some("day"))),
        "{periods:?}"
    );
    assert_eq!(a.anomalies.as_ref().unwrap().points.len(), 14 * 144);
    let forecast = a.forecast.as_ref().unwrap();
    assert_eq!((forecast.model.as_str(), forecast.points.len()), ("holt-winters", 144));
    let c = &analysis.series[2];
    let shifts = &c.patterns.as_ref().unwrap().change_points;
    assert_eq!(shifts.len(), 1, "{shifts:?}");
    assert!(
        (shifts[0].time - (c.first.unwrap() + 10 * NANOS_PER_DAY)).abs() <= 2 * 600 * NANOS_PER_SECOND,
        "{shifts:?}"
    );
    assert!(c.anomalies.as_ref().unwrap().count >= 1, "the shift is an anomaly");
    let correlation = analysis.correlation.as_ref().unwrap();
    let ab = &correlation.pairs[0];
    assert_eq!(
        (ab.a.as_str(), ab.b.as_str(), ab.best_lag),
        ("value{host=a}", "value{host=b}", 6),
        "{ab:?}"
    );
    assert!(ab.lag_coefficient.unwrap() > 0.9, "{ab:?}");
    assert_eq!(
        correlation.moved_together.first().map(|m| m.series.as_str()),
        Some("value{host=c}"),
        "{correlation:?}"
    );

    // Bucket means per group.
    let grouped = TrendQuery {
        selection: QuerySpec {
            every: Some("1h".into()),
            group_by: vec!["host".into()],
            ..select("cpu", &["value"])
        },
        parts: TrendParts::parse("patterns").unwrap(),
        ..TrendQuery::default()
    };
    let g = history.get_trends(&grouped).unwrap();
    assert_eq!(g.every_nanos, Some(3_600 * NANOS_PER_SECOND));
    assert_eq!(
        (g.series.len(), g.series[0].points, g.series[0].label.as_str()),
        (3, 14 * 24, "value{host=a}")
    );
    history.close().unwrap();
}

#[test]
fn get_trends_refuses_what_it_cannot_answer_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let history = seeded_store(dir.path());
    let err = |q: TrendQuery| history.get_trends(&q).unwrap_err().to_string();
    let no_every = TrendQuery {
        selection: QuerySpec {
            group_by: vec!["host".into()],
            ..select("cpu", &["value"])
        },
        ..TrendQuery::default()
    };
    assert!(err(no_every).contains("group_by needs every"));
    let too_many = TrendQuery {
        selection: select("cpu", &["value"]),
        max_points: 1_000,
        ..TrendQuery::default()
    };
    let message = err(too_many);
    assert!(message.contains("6048 rows") && message.contains("every=1h"), "{message}");
    assert!(err(TrendQuery::default()).contains("measurement"));
    let empty = history
        .get_trends(&TrendQuery {
            selection: select("nothing", &[]),
            ..TrendQuery::default()
        })
        .unwrap();
    assert!(empty.series.is_empty());
    history.close().unwrap();
}

#[test]
fn the_cli_prints_the_documented_csv_columns() {
    let dir = tempfile::tempdir().unwrap();
    seeded_store(dir.path()).close().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .env_remove("ANNALS_DATA")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let base = ["-m", "cpu", "-f", "value", "--where", "host=a", "--format", "csv"];
    let anomalies = run(&[&["trends", "anomalies"][..], &base].concat());
    let mut lines = anomalies.lines();
    assert_eq!(lines.next(), Some("time,value,score,anomaly"));
    assert_eq!(lines.clone().count(), 14 * 144);
    assert!(lines.all(|l| l.ends_with(",0") || l.ends_with(",1")));
    let forecast = run(&[&["trends", "forecast"][..], &base, &["--horizon", "2h"]].concat());
    let mut lines = forecast.lines();
    assert_eq!(lines.next(), Some("time,forecast,lower_80,upper_80,lower_95,upper_95"));
    assert_eq!(lines.count(), 12);
    let json = run(&["trends", "patterns", "-m", "cpu", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["series"].as_array().map(Vec::len), Some(3));
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(dir.path())
        .args(["trends", "anomalies", "-m", "cpu", "--sensitivity", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sensitivity"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On NAB's nyc_taxi (half-hourly) the daily and weekly periods are found; on the
/// artificial series without anomalies no level shift is reported.
#[test]
fn nab_periods_and_no_false_change_points() {
    let Some(corpus) = nab() else { return };
    let taxi = corpus.series.iter().find(|s| s.name == "realKnownCause/nyc_taxi").unwrap();
    let patterns = annals::trends::patterns::analyze(&taxi.points, 0);
    let lags: Vec<u64> = patterns.periods.iter().map(|p| p.samples).collect();
    assert!(lags.contains(&48) && lags.contains(&336), "{:?}", patterns.periods);
    for series in corpus.series.iter().filter(|s| s.name.starts_with("artificialNoAnomaly/")) {
        let patterns = annals::trends::patterns::analyze(&series.points, 0);
        assert!(patterns.change_points.is_empty(), "{}: {:?}", series.name, patterns.change_points);
    }
}

/// The watcher warms on the stored history without alerting, then scores live writes: a
/// spike on one host is one `trend_alert` event (and one stored `anomaly` alert), the
/// steady host none, and a late write is not scored.
#[test]
fn the_watcher_scores_live_writes_and_alerts_once() {
    use annals::events::{Event, EventFilter, EventType};
    use annals::history::{TrendWatcher, WatchOptions};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let history = Arc::new(History::open(dir.path(), Options::default()).unwrap());
    let step = 300 * NANOS_PER_SECOND;
    let start = 1_700_000_000 * NANOS_PER_SECOND;
    let value = |i: i64, host: &str| {
        40.0 + 10.0 * (std::f64::consts::TAU * (i % 288) as f64 / 288.0).sin()
            + if host == "a" { 0.0 } else { 5.0 }
            + ((i * 7) % 5) as f64 * 0.2
    };
    let history_rows: Vec<MetricData> = (0..3 * 288)
        .flat_map(|i| ["a", "b"].map(|h| cpu(h, start + i * step, value(i, h))))
        .collect();
    history.store_metrics(&history_rows).unwrap();
    let events = history.subscribe(EventFilter {
        event_types: vec![EventType::TrendAlert],
        ..EventFilter::default()
    });
    let options = WatchOptions {
        selections: vec![WatchOptions::parse_selection("cpu:value").unwrap()],
        replay_nanos: 2 * NANOS_PER_DAY,
        store_alerts: true,
        ..WatchOptions::default()
    };
    let watcher = TrendWatcher::start(history.clone(), options).unwrap();
    let wait_for = |what: &dyn Fn(annals::history::WatchStats) -> bool| {
        for _ in 0..400 {
            if what(watcher.stats()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the watcher did not get there: {:?}", watcher.stats());
    };
    // Two days replayed per series (576 points, the first one inclusive: 577).
    wait_for(&|s| s.points_replayed == 2 * 577);
    assert_eq!((watcher.stats().series, watcher.stats().anomalies), (2, 0));
    // Live: 50 steady points each, host a spiking at the 20th.
    for i in 3 * 288..3 * 288 + 50 {
        let spike = if i == 3 * 288 + 20 { 400.0 } else { 0.0 };
        history
            .store_metrics(&[
                cpu("a", start + i * step, value(i, "a") + spike),
                cpu("b", start + i * step, value(i, "b")),
            ])
            .unwrap();
    }
    wait_for(&|s| s.points_scored == 100);
    let mut alerts = Vec::new();
    while let Some(event) = events.recv_timeout(std::time::Duration::from_millis(200)) {
        if let Event::TrendAlert(alert) = event {
            alerts.push(alert);
        }
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(
        (
            alert.measurement.as_str(),
            alert.field.as_str(),
            alert.tags.get("host").map(String::as_str)
        ),
        ("cpu", "value", Some("a"))
    );
    assert_eq!(alert.time, annals::time::format_rfc3339(start + (3 * 288 + 20) * step));
    assert!(alert.score >= 0.5 && alert.value > 400.0, "{alert:?}");
    // A late write (before the last scored point) is not scored.
    history.store_metrics(&[cpu("b", start + 3 * 288 * step + 1, 1e6)]).unwrap();
    wait_for(&|s| s.unwatched_points == 1);
    let stats = watcher.stop();
    assert_eq!((stats.points_scored, stats.anomalies, stats.errors), (100, 1, 0));
    let stored = history.alerts(&[], 10).unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (stored[0].category.as_str(), stored[0].timestamp),
        ("anomaly", start + (3 * 288 + 20) * step)
    );
    Arc::try_unwrap(history).ok().unwrap().close().unwrap();
}
