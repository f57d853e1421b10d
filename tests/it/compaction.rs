//! Compaction: answers identical before, during and after; files replaced only when no
//! snapshot holds them; concurrent writes, flushes and queries; SIGKILL of a compacting
//! child at random moments.

use crate::common::{assert_no_stray_files, copy_dir, files_under, options, run_cli_killed_at_random, scan_selected, seed};
use annals::{
    Batch, Clock, CompactionOptions, Engine, FieldValue, LogLevel, Month, Options, ScanRequest, ScanRow, SearchQuery, SeriesKey,
    SeriesKind, SeriesSelector,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SECOND: i64 = 1_000_000_000;

/// Options with a clock in the middle of November 2026: September and October are sealed,
/// November is still written.
pub fn lifecycle_options() -> Options {
    Options {
        compaction: CompactionOptions {
            background: false,
            min_segments: 3,
            min_free_bytes: 0,
            ..CompactionOptions::default()
        },
        clock: Clock::fixed(Month::new(2026, 11).unwrap().start_ns() + 14 * 86_400 * SECOND),
        block_max_rows: 64,
        ..options()
    }
}

pub fn month_start(year: i32, month: u32) -> i64 {
    Month::new(year, month).unwrap().start_ns()
}

/// One batch of metrics (with re-written timestamps and sparse fields) and logs, spread
/// over three months, out of order.
pub fn random_batch(rng: &mut ChaCha8Rng, months: &[i64]) -> Batch {
    let mut batch = Batch::new();
    for _ in 0..200 {
        let start = months[rng.random_range(0..months.len())];
        // Few distinct timestamps, so later batches overwrite earlier metric rows.
        let ts = start + rng.random_range(0..2_000) * SECOND;
        let host = format!("h{}", rng.random_range(0..4));
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", &host).unwrap();
        let mut fields = vec![("usage", FieldValue::F64(rng.random_range(0.0..100.0)))];
        if rng.random_bool(0.5) {
            fields.push(("n", FieldValue::I64(rng.random_range(-5..5))));
        }
        if rng.random_bool(0.1) {
            fields.push(("state", FieldValue::Str(format!("s{}", rng.random_range(0..3)))));
        }
        batch.add_row(&key, ts, fields).unwrap();
        if rng.random_bool(0.3) {
            let level = if rng.random_bool(0.2) { LogLevel::Error } else { LogLevel::Info };
            batch
                .add_log(&crate::common::log_entry(
                    ts,
                    level,
                    &format!("svc{}", rng.random_range(0..2)),
                    format!(
                        "request {} took {} ms token{}",
                        rng.random_range(0..50),
                        rng.random_range(1..900),
                        rng.random_range(0..20)
                    ),
                ))
                .unwrap();
        }
    }
    batch
}

/// Everything the tests compare: metric rows, log rows (with record ids), and full-text
/// match counts.
pub type Fields = Vec<(String, FieldValue)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub cpu: Vec<(String, i64, Fields)>,
    pub logs: Vec<(String, i64, Option<u64>, Fields)>,
    pub matches: Vec<Option<u64>>,
}

pub fn answers(engine: &Engine) -> Answers {
    let flatten = |r: &ScanRow| r.fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>();
    let cpu = scan_selected(engine, SeriesSelector::measurement("cpu"))
        .iter()
        .map(|r| (r.key.to_string(), r.timestamp, flatten(r)))
        .collect();
    let logs = scan_selected(
        engine,
        SeriesSelector {
            kind: Some(SeriesKind::Log),
            ..SeriesSelector::default()
        },
    )
    .iter()
    .map(|r| (r.key.to_string(), r.timestamp, r.record_id, flatten(r)))
    .collect();
    let snapshot = engine.snapshot();
    let matches = ["token3", "request", "took 5"]
        .iter()
        .map(|q| snapshot.search(&SearchQuery::new(*q).limit(0).count_total(true)).unwrap().total)
        .collect();
    Answers { cpu, logs, matches }
}

fn segments_by_month(engine: &Engine) -> Vec<(String, u64)> {
    engine
        .stats()
        .unwrap()
        .months
        .iter()
        .map(|m| (m.month.clone(), m.segments))
        .collect()
}

#[test]
fn compaction_keeps_every_answer_and_frees_inputs_after_the_last_snapshot() {
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    let months = [month_start(2026, 9), month_start(2026, 10), month_start(2026, 11)];
    for _ in 0..7 {
        engine.write(&random_batch(&mut rng, &months)).unwrap();
        engine.flush().unwrap();
    }
    // Rows left in the head take part in answers but not in compaction.
    engine.write(&random_batch(&mut rng, &months)).unwrap();
    let before = answers(&engine);
    assert!(before.cpu.len() > 500 && !before.logs.is_empty(), "seed {seed}: too little data");
    assert_eq!(
        segments_by_month(&engine).iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![7, 7, 7]
    );

    let plan = engine.compaction_plan();
    assert_eq!(
        plan.iter().map(|p| (p.month.as_str(), p.reason, p.segments)).collect::<Vec<_>>(),
        vec![("2026-09", "sealed", 7), ("2026-10", "sealed", 7), ("2026-11", "tiered", 7)]
    );
    let held = engine.snapshot();
    let files_before = files_under(&dir.path().join("data"));
    let mut progress_calls = 0;
    let report = engine
        .compact_with_progress(&mut |p| {
            progress_calls += 1;
            assert!(p.series_done <= p.series_total && p.input_bytes_done <= p.input_bytes_total);
        })
        .unwrap();
    assert!(progress_calls >= 3, "seed {seed}: progress reported {progress_calls} times");
    assert_eq!(report.merged.len(), 3, "seed {seed}: {report:?}");
    for m in &report.merged {
        assert!(m.output_rows <= m.input_rows && m.output_points <= m.input_points, "{m:?}");
        assert_eq!(m.input_segments, 7);
    }
    assert!(
        report.merged.iter().any(|m| m.output_rows < m.input_rows),
        "seed {seed}: overwritten metric rows should have been dropped: {report:?}"
    );
    assert_eq!(
        segments_by_month(&engine),
        vec![("2026-09".into(), 1), ("2026-10".into(), 1), ("2026-11".into(), 1)]
    );
    assert_eq!(answers(&engine), before, "seed {seed}: answers changed by compaction");
    assert!(engine.compaction_plan().is_empty());

    // The snapshot taken before still reads the replaced files, which are still there.
    let still: Vec<ScanRow> = held
        .scan(&ScanRequest {
            selector: SeriesSelector::measurement("cpu"),
            ..ScanRequest::default()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(still.len(), before.cpu.len());
    let files_during = files_under(&dir.path().join("data"));
    assert!(
        files_before.iter().all(|f| files_during.contains(f)),
        "an input vanished while a snapshot held it"
    );
    drop(held);
    drop(still);
    let files_after = files_under(&dir.path().join("data"));
    let segment_files: Vec<_> = files_after.iter().filter(|f| f.ends_with(".seg")).collect();
    assert_eq!(
        segment_files.len(),
        3,
        "seed {seed}: inputs not deleted after the last snapshot: {files_after:?}"
    );

    engine.close().unwrap();
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    assert_eq!(answers(&engine), before, "seed {seed}: answers changed after reopen");
    engine.close().unwrap();
}

#[test]
fn compaction_under_concurrent_writes_flushes_and_queries() {
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), lifecycle_options()).unwrap());
    let months = [month_start(2026, 9), month_start(2026, 10), month_start(2026, 11)];
    for _ in 0..6 {
        engine.write(&random_batch(&mut rng, &months)).unwrap();
        engine.flush().unwrap();
    }
    let fixed = answers(&engine);

    let done = Arc::new(AtomicBool::new(false));
    // A writer adds a separate measurement to the same months (so flushes land in months
    // being merged), flushing every few batches.
    let writer = {
        let engine = engine.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut written = 0i64;
            let mut i = 0;
            while !done.load(Ordering::SeqCst) || i < 30 {
                let mut batch = Batch::new();
                for j in 0..50 {
                    let n = written + j;
                    let ts = months[(n % 3) as usize] + n * SECOND;
                    let key = SeriesKey::metric("live").unwrap().with_tag("w", "1").unwrap();
                    batch.add_row(&key, ts, [("n", FieldValue::I64(n))]).unwrap();
                }
                engine.write(&batch).unwrap();
                written += 50;
                i += 1;
                if i % 3 == 0 {
                    engine.flush().unwrap();
                }
            }
            written
        })
    };
    // A reader checks that the fixed data answers the same throughout.
    let reader = {
        let engine = engine.clone();
        let done = done.clone();
        let fixed = fixed.clone();
        std::thread::spawn(move || {
            let mut checks = 0;
            let mut live_seen = 0;
            while !done.load(Ordering::SeqCst) {
                let now = answers(&engine);
                assert_eq!(now, fixed, "answers changed during compaction");
                let live = scan_selected(&engine, SeriesSelector::measurement("live")).len();
                assert!(live >= live_seen, "live rows went from {live_seen} to {live}");
                live_seen = live;
                checks += 1;
            }
            checks
        })
    };
    let mut merges = 0;
    let started = Instant::now();
    while merges < 8 && started.elapsed() < Duration::from_secs(60) {
        merges += engine.compact().unwrap().merged.len();
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    let checks = reader.join().unwrap();
    assert!(merges >= 3 && checks >= 1, "seed {seed}: {merges} merges, {checks} checks");
    engine.compact().unwrap();

    let check_live = |engine: &Engine| {
        let live = scan_selected(engine, SeriesSelector::measurement("live"));
        let mut ns: Vec<i64> = live
            .iter()
            .map(|r| match r.fields[0].1 {
                FieldValue::I64(n) => n,
                ref other => panic!("unexpected value {other:?}"),
            })
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..written).collect::<Vec<_>>(), "seed {seed}: live rows lost or duplicated");
    };
    check_live(&engine);
    assert_eq!(answers(&engine), fixed);
    let engine = Arc::try_unwrap(engine).ok().unwrap();
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    check_live(&engine);
    assert_eq!(answers(&engine), fixed);
    engine.close().unwrap();
}

#[test]
fn sigkill_during_compaction_leaves_every_row_exactly_once() {
    let base = seed();
    let rounds = crate::common::env_count("ANNALS_CRASH_ITERATIONS", 12);
    let mut rng = ChaCha8Rng::seed_from_u64(base ^ 0xc0ac);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    // The real clock (the CLI's) sees 2025 as long over: every month is sealed.
    let months = [month_start(2025, 3), month_start(2025, 4), month_start(2025, 5)];
    {
        let engine = Engine::open(&template, options()).unwrap();
        for flush in 0..12i64 {
            engine.write(&random_batch(&mut rng, &months)).unwrap();
            // Bulk rows, so that the merge takes long enough for kills to land inside it.
            let mut bulk = Batch::new();
            for host in 0..20 {
                let key = SeriesKey::metric("bulk").unwrap().with_tag("host", format!("b{host}")).unwrap();
                for i in 0..2_000i64 {
                    let ts = months[(i % 3) as usize] + (flush * 2_000 + i) * SECOND;
                    bulk.add_row(
                        &key,
                        ts,
                        [("x", FieldValue::F64((i * host) as f64 * 0.25)), ("n", FieldValue::I64(i))],
                    )
                    .unwrap();
                }
            }
            engine.write(&bulk).unwrap();
            engine.flush().unwrap();
        }
        engine.close().unwrap();
    }
    let bulk_rows = |engine: &Engine| {
        scan_selected(engine, SeriesSelector::measurement("bulk"))
            .iter()
            .map(|r| (r.key.to_string(), r.timestamp, r.fields.clone()))
            .collect::<Vec<_>>()
    };
    let (expected, expected_bulk) = {
        let engine = Engine::open(&template, options()).unwrap();
        let a = (answers(&engine), bulk_rows(&engine));
        engine.close().unwrap();
        a
    };
    assert_eq!(expected_bulk.len(), 12 * 20 * 2_000);
    let mut full_run = Duration::from_millis(100);
    let mut finished = 0;
    for round in 0..=rounds {
        let context = format!("seed {base}, round {round}");
        let store = dir.path().join(format!("round{round}"));
        copy_dir(&template, &store);
        if run_cli_killed_at_random(&store, &["compact", "--no-progress"], round, &mut full_run, &mut rng, &context) {
            finished += 1;
        }
        let report = annals::verify::verify(&store, false).unwrap();
        assert!(report.is_clean(), "{context}: verify after the kill found {:?}", report.problems);
        let engine = Engine::open(&store, options()).unwrap();
        assert_eq!(answers(&engine), expected, "{context}: answers differ after the kill");
        assert!(bulk_rows(&engine) == expected_bulk, "{context}: bulk rows differ after the kill");
        let segments = engine.stats().unwrap().segments;
        engine.close().unwrap();
        assert_no_stray_files(&store, segments, &context);
        std::fs::remove_dir_all(&store).unwrap();
    }
    eprintln!(
        "an uninterrupted compaction took {full_run:?}; {finished} of {} runs finished before the kill",
        rounds + 1
    );
}

#[test]
fn optimize_merges_every_month_and_text_index_and_removes_orphans() {
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0971);
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        low_disk_bytes: u64::MAX,
        ..lifecycle_options()
    };
    let engine = Engine::open(dir.path(), options.clone()).unwrap();
    let months = [month_start(2026, 9), month_start(2026, 10), month_start(2026, 11)];
    for _ in 0..2 {
        engine.write(&random_batch(&mut rng, &months)).unwrap();
        engine.flush().unwrap();
    }
    assert_eq!(
        engine.compaction_plan().len(),
        2,
        "the open month has too few segments for the policy"
    );
    let orphan = dir.path().join("data/2026-11/00000000000000099999.seg");
    let leftover = dir.path().join("data/2026-10/00000000000000099998.seg.tmp");
    std::fs::write(&orphan, b"not a segment").unwrap();
    std::fs::write(&leftover, b"half a segment").unwrap();
    let before = answers(&engine);

    let report = engine.optimize(&mut |_| {}).unwrap();
    assert_eq!(report.compaction.merged.len(), 3, "{report:?}");
    assert!(report.compaction.merged.iter().any(|m| m.reason == "optimize"));
    assert!(
        report.orphans_removed.contains(&orphan) && report.orphans_removed.contains(&leftover),
        "{report:?}"
    );
    assert!(!orphan.exists() && !leftover.exists());
    assert_eq!(answers(&engine), before, "seed {seed}");

    let stats = engine.stats().unwrap();
    assert_eq!(stats.segments, 3);
    assert!(stats.text_index_bytes > 0 && stats.compression_ratio > 1.0, "{stats:?}");
    let kinds: Vec<&str> = stats.kinds.iter().map(|k| k.kind.as_str()).collect();
    assert_eq!(kinds, vec!["metric", "log"]);
    assert_eq!(stats.kinds.iter().map(|k| k.rows).sum::<u64>(), stats.rows - stats.head_rows);
    assert_eq!(stats.kinds.iter().map(|k| k.points).sum::<u64>(), stats.segment_points);
    assert_eq!(stats.warnings.len(), 1, "a threshold of u64::MAX always warns");
    assert_eq!(engine.storage_warning().unwrap().map(|w| w.kind), Some("low_disk"));
    engine.close().unwrap();

    let engine = Engine::open(dir.path(), options).unwrap();
    assert_eq!(engine.recovery_report().text_rows_indexed, 0, "merging kept the index's payload");
    assert_eq!(answers(&engine), before, "seed {seed}: after reopen");
    engine.close().unwrap();
}
