//! Summaries and retention over simulated timelines (an injected clock): summaries equal
//! brute-force aggregates of the detail they replace, detail goes after its retention and
//! summaries after theirs, queries fall back to summaries and say so, and disk use falls.

use crate::common::{options, scan_all, seed};
use annals::lifecycle::{Resolution, Retention};
use annals::{
    Aggregate, AggregateFn, Batch, Bucket, Clock, Engine, Error, FieldValue, LogLevel, Options, Query, SeriesKey, SeriesKind,
    SeriesSelector, TimeRange,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;
/// 2026-01-05, a Monday.
const T0: i64 = 1_767_571_200 * SECOND;

fn clocked(now: &Arc<AtomicI64>, detail_days: u32, summary_days: u32) -> Options {
    let now = now.clone();
    let day = Duration::from_secs(86_400);
    let mut o = options();
    o.clock = Clock::from_fn(move || now.load(Ordering::SeqCst));
    o.retention.default = Retention {
        detail: day * detail_days,
        summaries: day * summary_days,
    };
    o.block_max_rows = 256;
    o
}

/// One value per series and minute-ish, with integers, NaN-free floats, and logs.
struct Truth {
    /// (host, ts) -> (usage, errors)
    cpu: BTreeMap<(String, i64), (f64, i64)>,
    /// (level, hour) -> count
    logs: BTreeMap<(String, i64), i64>,
}

fn write_day(engine: &Engine, rng: &mut ChaCha8Rng, day: i64, truth: &mut Truth) {
    let mut batch = Batch::new();
    for host in ["a", "b"] {
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", host).unwrap();
        let mut ts = day + rng.random_range(0..120) * SECOND;
        while ts < day + DAY {
            let usage = (rng.random_range(0.0..100.0f64) * 100.0).round() / 100.0;
            let errors = rng.random_range(-3..20);
            batch
                .add_row(&key, ts, [("usage", FieldValue::F64(usage)), ("errors", FieldValue::I64(errors))])
                .unwrap();
            truth.cpu.insert((host.to_owned(), ts), (usage, errors));
            ts += rng.random_range(200..1_400) * SECOND;
        }
        // Some readings are completed by a second write of one field: the row counts once
        // in the summaries, with the newer value of that field and the other kept.
        let written: Vec<i64> = truth
            .cpu
            .range((host.to_owned(), day)..(host.to_owned(), day + DAY))
            .map(|((_, t), _)| *t)
            .collect();
        for _ in 0..3 {
            let ts = written[rng.random_range(0..written.len())];
            let entry = truth.cpu.get_mut(&(host.to_owned(), ts)).unwrap();
            if rng.random_bool(0.5) {
                entry.0 = (rng.random_range(0.0..100.0f64) * 100.0).round() / 100.0;
                batch.add_row(&key, ts, [("usage", FieldValue::F64(entry.0))]).unwrap();
            } else {
                entry.1 = rng.random_range(-3..20);
                batch.add_row(&key, ts, [("errors", FieldValue::I64(entry.1))]).unwrap();
            }
        }
    }
    for i in 0..rng.random_range(20..60) {
        let level = [LogLevel::Info, LogLevel::Warning, LogLevel::Error][rng.random_range(0..3)];
        let ts = day + rng.random_range(0..DAY / SECOND) * SECOND;
        batch
            .add_log(&crate::common::log_entry(ts, level, "app", format!("event {i}")))
            .unwrap();
        *truth.logs.entry((level.as_str().to_owned(), ts - ts.rem_euclid(HOUR))).or_default() += 1;
    }
    engine.write(&batch).unwrap();
}

fn cpu_query(range: TimeRange, every: Option<Bucket>) -> Query {
    Query {
        selector: SeriesSelector::measurement("cpu"),
        range,
        group_by: vec!["host".into()],
        every,
        aggregates: vec![
            Aggregate::of(AggregateFn::Count, "usage"),
            Aggregate::of(AggregateFn::Sum, "usage"),
            Aggregate::of(AggregateFn::Min, "usage"),
            Aggregate::of(AggregateFn::Max, "usage"),
            Aggregate::of(AggregateFn::First, "usage"),
            Aggregate::of(AggregateFn::Last, "usage"),
            Aggregate::of(AggregateFn::Mean, "usage"),
            Aggregate::of(AggregateFn::Sum, "errors"),
            Aggregate::of(AggregateFn::Min, "errors"),
            Aggregate::of(AggregateFn::Max, "errors"),
            Aggregate::of(AggregateFn::Percentile(50.0), "usage"),
            Aggregate::of(AggregateFn::Percentile(90.0), "usage"),
            Aggregate::of(AggregateFn::Percentile(99.0), "usage"),
        ],
        ..Query::default()
    }
}

fn f(v: &Option<FieldValue>) -> f64 {
    match v {
        Some(FieldValue::F64(x)) => *x,
        Some(FieldValue::I64(x)) => *x as f64,
        other => panic!("not numeric: {other:?}"),
    }
}

/// Brute force over the truth: the same aggregates for one host and bucket.
fn expected(truth: &Truth, host: &str, range: TimeRange) -> Option<Vec<f64>> {
    let rows: Vec<(i64, f64, i64)> = truth
        .cpu
        .range((host.to_owned(), range.start)..(host.to_owned(), range.end))
        .map(|((_, t), (u, e))| (*t, *u, *e))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let usage: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let mut sorted = usage.clone();
    sorted.sort_by(f64::total_cmp);
    let rank = |q: f64| ((q / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    let sum: f64 = usage.iter().sum();
    Some(vec![
        usage.len() as f64,
        sum,
        sorted[0],
        sorted[sorted.len() - 1],
        rows[0].1,
        rows[rows.len() - 1].1,
        sum / usage.len() as f64,
        rows.iter().map(|r| r.2).sum::<i64>() as f64,
        rows.iter().map(|r| r.2).min().unwrap() as f64,
        rows.iter().map(|r| r.2).max().unwrap() as f64,
        sorted[rank(50.0)],
        sorted[rank(90.0)],
        sorted[rank(99.0)],
    ])
}

/// Compares a bucketed query's answer with brute force: exact for everything but the
/// percentiles (and float sums, to rounding), which must be within the sketch's 1%.
fn check_against_truth(engine: &Engine, truth: &Truth, range: TimeRange, every: Bucket, want_resolution: Resolution) {
    let result = engine.snapshot().query(&cpu_query(range, Some(every))).unwrap();
    assert!(
        result.resolutions.contains(&want_resolution),
        "resolutions {:?}",
        result.resolutions
    );
    let (rows, _) = result.collect_rows().unwrap();
    let mut checked = 0;
    for row in &rows {
        let host = row.tags[0].clone().unwrap();
        let start = row.time.unwrap();
        let Some(want) = expected(
            truth,
            &host,
            TimeRange::new(start.max(range.start), every.next(start).min(range.end)),
        ) else {
            assert!(
                row.values[0].is_none() || f(&row.values[0]) == 0.0,
                "bucket {start} has rows nobody wrote"
            );
            continue;
        };
        assert!(
            row.values.iter().all(Option::is_some),
            "host {host} bucket {start} ({want_resolution:?}): {:?} want {want:?}",
            row.values
        );
        for (i, (got, want)) in row.values.iter().map(f).zip(&want).enumerate() {
            let tolerance = match i {
                10..=12 => annals::lifecycle::sketch::RELATIVE_ACCURACY * want.abs() + 1e-9,
                1 | 6 => 1e-9 * want.abs().max(1.0),
                _ => 0.0,
            };
            assert!(
                (got - want).abs() <= tolerance,
                "host {host} bucket {start} column {i}: {got} vs {want}"
            );
        }
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn summaries_answer_exactly_what_detail_answered_and_retention_follows_the_clock() {
    let seed = seed();
    let result = std::panic::catch_unwind(|| {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let engine = Engine::open(dir.path(), clocked(&now, 30, 365)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut truth = Truth {
            cpu: BTreeMap::new(),
            logs: BTreeMap::new(),
        };
        // Ten weeks of data, written day by day as the clock moves; summaries every day.
        let days = 70;
        for d in 0..days {
            write_day(&engine, &mut rng, T0 + d * DAY, &mut truth);
            now.store(T0 + (d + 1) * DAY + 2 * HOUR, Ordering::SeqCst);
            let report = engine.summarize().unwrap();
            assert_eq!(report.days, 1, "day {d}: one new day each time");
        }
        // A late row for a summarised day makes that day be summarised again.
        let late_ts = T0 + 3 * DAY + 5 * HOUR + 17 * SECOND;
        let mut batch = Batch::new();
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", "a").unwrap();
        batch
            .add_row(&key, late_ts, [("usage", FieldValue::F64(55.5)), ("errors", FieldValue::I64(1))])
            .unwrap();
        // And a late write of one field to a reading of that day already summarised.
        let (&(_, partial_ts), _) = truth
            .cpu
            .range(("a".to_owned(), T0 + 3 * DAY)..("a".to_owned(), T0 + 4 * DAY))
            .next()
            .unwrap();
        batch.add_row(&key, partial_ts, [("errors", FieldValue::I64(99))]).unwrap();
        engine.write(&batch).unwrap();
        truth.cpu.insert(("a".into(), late_ts), (55.5, 1));
        truth.cpu.get_mut(&("a".to_owned(), partial_ts)).unwrap().1 = 99;
        let report = engine.summarize().unwrap();
        assert_eq!((report.days, report.days_redone), (1, 1));

        // Before retention: the detail answers; after it, the same query over the first
        // weeks is answered from summaries, with the same results.
        let early = TimeRange::new(T0, T0 + 28 * DAY);
        check_against_truth(&engine, &truth, early, Bucket::parse("1d").unwrap(), Resolution::Detail);
        let before_bytes = engine.stats().unwrap().bytes;
        let retained = engine.apply_retention().unwrap();
        assert!(retained.applied);
        assert!(retained.actions.iter().any(|a| a.tier == Resolution::Detail), "{retained:?}");
        let horizon = T0 + days * DAY - 30 * DAY;
        let raw = scan_all(&engine, "cpu");
        assert!(raw.iter().all(|r| r.timestamp >= horizon), "detail before the horizon is gone");
        assert_eq!(
            raw.len(),
            truth.cpu.keys().filter(|(_, t)| *t >= horizon).count(),
            "detail after the horizon is all there"
        );
        for (bucket, tier) in [("1d", Resolution::Day), ("1h", Resolution::Hour), ("week", Resolution::Week)] {
            check_against_truth(&engine, &truth, early, Bucket::parse(bucket).unwrap(), tier);
        }
        // A range across the horizon combines summaries and detail.
        let across = TimeRange::new(T0 + 35 * DAY, T0 + 49 * DAY);
        let result = engine
            .snapshot()
            .query(&cpu_query(across, Some(Bucket::parse("1d").unwrap())))
            .unwrap();
        assert_eq!(result.resolutions, vec![Resolution::Detail, Resolution::Day]);
        check_against_truth(&engine, &truth, across, Bucket::parse("1d").unwrap(), Resolution::Day);
        // Log counts per level and hour come from summaries too.
        let logs = Query {
            selector: SeriesSelector {
                kind: Some(SeriesKind::Log),
                ..SeriesSelector::default()
            },
            range: early,
            group_by: vec!["level".into()],
            every: Some(Bucket::parse("1h").unwrap()),
            aggregates: vec![Aggregate::count_rows()],
            ..Query::default()
        };
        let (rows, _) = engine.snapshot().query(&logs).unwrap().collect_rows().unwrap();
        let got: BTreeMap<(String, i64), i64> = rows
            .iter()
            .filter(|r| f(&r.values[0]) > 0.0)
            .map(|r| ((r.tags[0].clone().unwrap(), r.time.unwrap()), f(&r.values[0]) as i64))
            .collect();
        let want: BTreeMap<(String, i64), i64> = truth
            .logs
            .range(..)
            .filter(|((_, h), _)| early.contains(*h))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(got, want);
        // What summaries cannot answer is refused with the reason.
        let mut stddev = cpu_query(early, None);
        stddev.aggregates = vec![Aggregate::of(AggregateFn::Stddev, "usage")];
        assert!(matches!(engine.snapshot().query(&stddev), Err(Error::InvalidInput { .. })));
        // Rows older than the horizon are refused: they would be dropped.
        let mut old = Batch::new();
        old.add_row(&key, T0 + DAY, [("usage", FieldValue::F64(1.0))]).unwrap();
        assert!(matches!(engine.write(&old), Err(Error::Refused { .. })));

        // A year later everything of the first weeks is gone, summaries too.
        now.store(T0 + 400 * DAY, Ordering::SeqCst);
        write_day(&engine, &mut rng, T0 + 399 * DAY, &mut truth);
        let later = engine.apply_retention().unwrap();
        assert!(
            later.actions.iter().any(|a| a.tier == Resolution::Hour && a.action == "drop"),
            "{later:?}"
        );
        let result = engine.snapshot().query(&cpu_query(early, None)).unwrap();
        let (rows, _) = result.collect_rows().unwrap();
        assert!(rows.iter().all(|r| r.values[0].is_none() || f(&r.values[0]) == 0.0), "{rows:?}");
        let after_bytes = engine.stats().unwrap().bytes;
        assert!(after_bytes < before_bytes, "disk use falls: {before_bytes} -> {after_bytes}");
        engine.close().unwrap();
        let reopened = Engine::open(dir.path(), clocked(&now, 30, 365)).unwrap();
        assert!(
            matches!(reopened.write(&old), Err(Error::Refused { .. })),
            "horizons survive a reopen"
        );
        reopened.close().unwrap();
        assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
    });
    if let Err(e) = result {
        eprintln!("failed with ANNALS_TEST_SEED={seed}");
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_year_of_daily_retention_keeps_30_days_of_detail_and_365_of_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let engine = Engine::open(dir.path(), clocked(&now, 30, 365)).unwrap();
    let key = SeriesKey::metric("temp").unwrap().with_tag("room", "x").unwrap();
    let mut peak_bytes = 0;
    let days = 420;
    for d in 0..days {
        let mut batch = Batch::new();
        for m in 0..24 * 6 {
            let ts = T0 + d * DAY + m * 10 * 60 * SECOND;
            batch.add_row(&key, ts, [("c", FieldValue::F64(20.0 + (m % 7) as f64))]).unwrap();
        }
        engine.write(&batch).unwrap();
        now.store(T0 + (d + 1) * DAY + 2 * HOUR, Ordering::SeqCst);
        if d % 7 == 6 {
            engine.apply_retention().unwrap();
            engine.compact().unwrap();
            let stats = engine.stats().unwrap();
            peak_bytes = peak_bytes.max(stats.bytes);
            let today = T0 + (d + 1) * DAY;
            let rows = scan_all(&engine, "temp");
            let oldest_detail = rows.first().map(|r| r.timestamp).unwrap();
            let horizon = (today - 30 * DAY).max(T0);
            assert!(
                oldest_detail >= horizon - DAY && oldest_detail <= horizon + DAY,
                "day {d}: detail from {oldest_detail}"
            );
            let count = |range: TimeRange| {
                let q = Query {
                    selector: SeriesSelector::measurement("temp"),
                    range,
                    aggregates: vec![Aggregate::of(AggregateFn::Count, "c")],
                    ..Query::default()
                };
                let (rows, _) = engine.snapshot().query(&q).unwrap().collect_rows().unwrap();
                rows.first().map_or(0.0, |r| f(&r.values[0]))
            };
            // Every day within the summary retention still counts its 144 rows.
            let kept_from = (today - 364 * DAY).max(T0);
            assert_eq!(
                count(TimeRange::new(kept_from, today)) as i64,
                (today - kept_from) / DAY * 144,
                "day {d}"
            );
            if today - 366 * DAY > T0 {
                assert_eq!(
                    count(TimeRange::new(T0, today - 366 * DAY)),
                    0.0,
                    "day {d}: summaries past a year are gone"
                );
            }
        }
    }
    let stats = engine.stats().unwrap();
    assert!(stats.summaries.iter().all(|t| t.segments > 0));
    assert!(stats.rows <= 32 * 144, "detail stays within 30 days: {} rows", stats.rows);
    let hour_rows = stats.summaries.iter().find(|t| t.tier == "hour").unwrap().rows;
    assert!(hour_rows <= 366 * 24, "hourly summaries stay within a year: {hour_rows}");
    assert!(peak_bytes > 0);
    engine.close().unwrap();
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
}

#[test]
fn sigkill_during_retention_leaves_either_detail_or_its_summaries() {
    use crate::common::{assert_no_stray_files, copy_dir, run_cli_killed_at_random};
    let seed = seed();
    let rounds = crate::common::env_count("ANNALS_CRASH_ITERATIONS", 8);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e7e);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    // The CLI runs by the real clock: 100 to 70 days ago is past the 30 days of detail and
    // well inside the year of summaries.
    let now = annals::time::now_ns();
    let first_day = (now - 100 * DAY).div_euclid(DAY) * DAY;
    let days = 30;
    {
        let engine = Engine::open(&template, options()).unwrap();
        for d in 0..days {
            let mut batch = Batch::new();
            // Enough rows that the run takes long enough for kills to land inside it.
            for host in 0..40 {
                let key = SeriesKey::metric("bulk").unwrap().with_tag("host", format!("h{host}")).unwrap();
                for m in 0..720i64 {
                    let ts = first_day + d * DAY + m * 120 * SECOND;
                    batch.add_row(&key, ts, [("x", FieldValue::F64((m * host) as f64 * 0.5))]).unwrap();
                }
            }
            engine.write(&batch).unwrap();
            engine.flush().unwrap();
        }
        engine.close().unwrap();
    }
    let rows_per_day = 40 * 720;
    let total = |engine: &Engine| {
        let q = Query {
            selector: SeriesSelector::measurement("bulk"),
            aggregates: vec![Aggregate::of(AggregateFn::Count, "x"), Aggregate::of(AggregateFn::Sum, "x")],
            ..Query::default()
        };
        let (rows, _) = engine.snapshot().query(&q).unwrap().collect_rows().unwrap();
        (f(&rows[0].values[0]) as i64, f(&rows[0].values[1]))
    };
    let expected_sum = {
        let engine = Engine::open(&template, options()).unwrap();
        let (count, sum) = total(&engine);
        assert_eq!(count, days * rows_per_day);
        engine.close().unwrap();
        sum
    };
    let mut full_run = Duration::from_millis(100);
    let mut outcomes = [0u32; 2];
    for round in 0..=rounds {
        let context = format!("seed {seed}, round {round}");
        let store = dir.path().join(format!("round{round}"));
        copy_dir(&template, &store);
        run_cli_killed_at_random(&store, &["retention", "--apply"], round, &mut full_run, &mut rng, &context);
        let report = annals::verify::verify(&store, false).unwrap();
        assert!(report.is_clean(), "{context}: verify after the kill found {:?}", report.problems);
        let engine = Engine::open(&store, options()).unwrap();
        // Every row is answered once: from detail, or from the summaries that replaced it.
        let (count, sum) = total(&engine);
        assert_eq!(count, days * rows_per_day, "{context}");
        assert!(
            (sum - expected_sum).abs() <= 1e-9 * expected_sum.abs(),
            "{context}: {sum} vs {expected_sum}"
        );
        let raw = scan_all(&engine, "bulk").len() as i64;
        assert!(
            raw == 0 || raw == days * rows_per_day,
            "{context}: {raw} detail rows: a month half dropped"
        );
        outcomes[usize::from(raw == 0)] += 1;
        let stats = engine.stats().unwrap();
        engine.close().unwrap();
        let listed = stats.segments + stats.summaries.iter().map(|t| t.segments).sum::<u64>();
        assert_no_stray_files(&store, listed, &context);
        std::fs::remove_dir_all(&store).unwrap();
    }
    eprintln!(
        "retention took {full_run:?} uninterrupted; after the kills {} stores kept their detail, {} had dropped it",
        outcomes[0], outcomes[1]
    );
}

#[test]
fn overrides_by_measurement_and_kind_keep_their_own_horizons() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0 + 100 * DAY));
    let mut o = clocked(&now, 30, 365);
    let day = Duration::from_secs(86_400);
    o.retention.measurements.insert(
        "audit".into(),
        Retention {
            detail: day * 90,
            summaries: day * 400,
        },
    );
    o.retention.kinds.insert(
        SeriesKind::Alert,
        Retention {
            detail: day * 7,
            summaries: day * 60,
        },
    );
    let engine = Engine::open(dir.path(), o).unwrap();
    let mut batch = Batch::new();
    let cpu = SeriesKey::metric("cpu").unwrap();
    let audit = SeriesKey::metric("audit").unwrap();
    let alert = SeriesKey::new(SeriesKind::Alert, "alert", [("level", "ERROR"), ("category", "disk")]).unwrap();
    for d in 0..100 {
        let ts = T0 + d * DAY + HOUR;
        batch.add_row(&cpu, ts, [("v", FieldValue::F64(d as f64))]).unwrap();
        batch.add_row(&audit, ts, [("v", FieldValue::F64(d as f64))]).unwrap();
        batch
            .add_row(&alert, ts, [("title", FieldValue::Str(format!("disk {d}")))])
            .unwrap();
    }
    engine.write(&batch).unwrap();
    let report = engine.apply_retention().unwrap();
    let rules: Vec<&str> = report.horizons.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(rules, ["default", "kind:alert", "measurement:audit"]);
    let oldest = |measurement: &str| scan_all(&engine, measurement).first().map(|r| (r.timestamp - T0) / DAY);
    assert_eq!(oldest("cpu"), Some(70));
    assert_eq!(oldest("audit"), Some(10));
    assert_eq!(oldest("alert"), Some(93));
    // Alert counts per level and category: detail for the last week, summaries back to 60
    // days, nothing before.
    let alerts = Query {
        selector: SeriesSelector {
            kind: Some(SeriesKind::Alert),
            ..SeriesSelector::default()
        },
        range: TimeRange::new(T0, T0 + 100 * DAY),
        group_by: vec!["level".into(), "category".into()],
        aggregates: vec![Aggregate::count_rows()],
        ..Query::default()
    };
    let result = engine.snapshot().query(&alerts).unwrap();
    assert_eq!(result.resolutions, vec![Resolution::Detail, Resolution::Day]);
    let (rows, _) = result.collect_rows().unwrap();
    assert_eq!(f(&rows[0].values[0]), 60.0, "{rows:?}");
    engine.close().unwrap();
}

#[test]
fn a_month_whose_series_all_stopped_before_the_horizon_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    // 2026-02-14: the horizon is 2026-01-15, inside January; the rows stop on 2026-01-10.
    let now = Arc::new(AtomicI64::new(T0 + 40 * DAY));
    let engine = Engine::open(dir.path(), clocked(&now, 30, 365)).unwrap();
    let key = SeriesKey::metric("stopped").unwrap();
    let mut batch = Batch::new();
    for d in 0..6 {
        batch.add_row(&key, T0 + d * DAY, [("v", FieldValue::I64(d))]).unwrap();
    }
    engine.write(&batch).unwrap();
    let report = engine.apply_retention().unwrap();
    let detail: Vec<_> = report.actions.iter().filter(|a| a.tier == Resolution::Detail).collect();
    assert_eq!(detail.len(), 1);
    assert_eq!((detail[0].month.as_str(), detail[0].action), ("2026-01", "drop"));
    assert_eq!(engine.stats().unwrap().segments, 0);
    let q = Query {
        selector: SeriesSelector::measurement("stopped"),
        aggregates: vec![Aggregate::of(AggregateFn::Sum, "v")],
        ..Query::default()
    };
    let (rows, _) = engine.snapshot().query(&q).unwrap().collect_rows().unwrap();
    assert_eq!(rows[0].values[0], Some(FieldValue::I64(15)), "the summaries answer");
    engine.close().unwrap();
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
}
