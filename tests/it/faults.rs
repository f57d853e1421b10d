//! Fault injection through the file-system seam: random workloads (writes with logs,
//! flushes, compactions, archives, reopens) on a [`FaultyFileSystem`] that fails random
//! operations (EIO, ENOSPC, short writes) and sometimes crashes, leaving a random image of
//! what a power cut could have kept. Checked after every failure:
//! - no acknowledged row is lost, and no row appears that was never written;
//! - a failed batch is all there or not there at all, and stays that way;
//! - after an injected fsync failure of the WAL, catalog or manifest the handle is poisoned;
//! - reopening (without faults) always succeeds and `annals verify` is clean.
//!
//! `ANNALS_FAULT_ROUNDS` sets the number of workloads (default 24); `ANNALS_TEST_SEED` the
//! seed.

use crate::common::{assert_verifies, log_entry, options, scan_selected, seed};
use annals::fs::{CrashImage, Fault, FaultyFileSystem, Op};
use annals::{Batch, Durability, Engine, Error, FieldValue, LogLevel, Options, SeriesKey, SeriesSelector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const BASE: i64 = 1_451_606_400_000_000_000;
const HOUR: i64 = 3_600_000_000_000;
const STEPS: usize = 70;

fn february() -> annals::Month {
    annals::Month::new(2016, 2).unwrap()
}

/// Row `n`: a metric of host `n % 4`, at `n` hours, whose value derives from `n`.
fn metric_row(batch: &mut Batch, n: i64) {
    let key = SeriesKey::metric("m").unwrap().with_tag("host", format!("h{}", n % 4)).unwrap();
    batch.add_row(&key, BASE + n * HOUR, [("v", FieldValue::I64(n * 7 + 1))]).unwrap();
}

fn log_row(batch: &mut Batch, n: i64) {
    let level = if n % 3 == 0 { LogLevel::Error } else { LogLevel::Info };
    batch
        .add_log(&log_entry(BASE + n * HOUR + 1, level, "svc", format!("request {n} finished")))
        .unwrap();
}

/// What the store must hold: rows by number, and batches whose fate is not known yet.
#[derive(Default)]
struct Model {
    /// Metric rows that must be present (acknowledged, or seen after a failure).
    present: BTreeSet<i64>,
    /// Log rows that must be present.
    logs_present: BTreeSet<i64>,
    /// Rows of failed batches (or of a month whose archive failed) not yet observed:
    /// (metric rows, log rows). Each is all there or all gone; rows observed gone are in
    /// neither set and so must never appear.
    in_doubt: Vec<(Vec<i64>, Vec<i64>)>,
}

/// Metric row numbers and log row numbers in the store.
fn observe(engine: &Engine) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let mut metrics = BTreeSet::new();
    for row in scan_selected(engine, SeriesSelector::measurement("m")) {
        let n = (row.timestamp - BASE) / HOUR;
        assert_eq!(row.fields.len(), 1);
        assert_eq!(row.fields[0].1, FieldValue::I64(n * 7 + 1), "row {n} has a wrong value");
        let host = row.key.tags().iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
        assert_eq!(host, Some(format!("h{}", n % 4)), "row {n} is in the wrong series");
        assert!(metrics.insert(n), "row {n} appears twice");
    }
    let mut logs = BTreeSet::new();
    for row in scan_selected(engine, SeriesSelector::measurement("log")) {
        let n = (row.timestamp - 1 - BASE) / HOUR;
        assert!(logs.insert(n), "log {n} appears twice");
    }
    (metrics, logs)
}

impl Model {
    /// Checks the store against the model and settles every batch in doubt.
    fn check(&mut self, engine: &Engine, context: &str) {
        let (metrics, logs) = observe(engine);
        let missing: Vec<_> = self.present.difference(&metrics).collect();
        assert!(missing.is_empty(), "{context}: acknowledged rows lost: {missing:?}");
        let missing_logs: Vec<_> = self.logs_present.difference(&logs).collect();
        assert!(missing_logs.is_empty(), "{context}: acknowledged logs lost: {missing_logs:?}");
        for (rows, log_rows) in std::mem::take(&mut self.in_doubt) {
            let seen = rows.iter().filter(|n| metrics.contains(n)).count() + log_rows.iter().filter(|n| logs.contains(n)).count();
            if seen > 0 {
                assert_eq!(
                    seen,
                    rows.len() + log_rows.len(),
                    "{context}: a failed batch is half visible: {rows:?}"
                );
                self.present.extend(&rows);
                self.logs_present.extend(&log_rows);
            }
        }
        let unexpected: Vec<_> = metrics.difference(&self.present).collect();
        assert!(unexpected.is_empty(), "{context}: rows never acknowledged appeared: {unexpected:?}");
        let unexpected_logs: Vec<_> = logs.difference(&self.logs_present).collect();
        assert!(
            unexpected_logs.is_empty(),
            "{context}: logs never acknowledged appeared: {unexpected_logs:?}"
        );
    }
}

fn store_options(fs: &FaultyFileSystem, rng: &mut ChaCha8Rng) -> Options {
    Options {
        file_system: Arc::new(fs.clone()),
        durability: if rng.random_bool(0.5) {
            Durability::Sync
        } else {
            Durability::Group {
                max_delay: Duration::from_micros(200),
            }
        },
        // Small heads and segments: writers flush often, and compactions have inputs.
        head_max_bytes: Some(64 << 10),
        block_max_rows: 64,
        flush_threads: 1,
        text_index_memory_bytes: Some(15 << 20),
        ..options()
    }
}

/// Totals over all rounds, printed at the end.
#[derive(Default, Debug)]
struct Totals {
    operations: u64,
    faults: u64,
    fsync_faults: u64,
    crashes: u64,
    image: CrashImage,
    failed_calls: u64,
    reopens: u64,
}

fn run_round(seed: u64, totals: &mut Totals) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
    let mut model = Model::default();
    let mut next_row = 0i64;
    let mut archived = false;
    let mut engine = Some(Engine::open(&store, store_options(&fs, &mut rng)).unwrap());
    let one_in = rng.random_range(15..120);
    fs.fail_randomly(rng.random(), one_in);
    for step in 0..STEPS {
        let context = format!("seed {seed}, step {step}");
        let Some(e) = engine.as_ref() else { unreachable!() };
        let faults_before = fs.injected().len();
        let action = rng.random_range(0..100);
        let mut batch_rows = None;
        let result: Result<(), Error> = match action {
            0..70 => {
                let mut batch = Batch::new();
                let (mut rows, mut logs) = (Vec::new(), Vec::new());
                for _ in 0..rng.random_range(1..40) {
                    metric_row(&mut batch, next_row);
                    rows.push(next_row);
                    if rng.random_bool(0.2) {
                        log_row(&mut batch, next_row);
                        logs.push(next_row);
                    }
                    next_row += 1;
                }
                batch_rows = Some((rows, logs));
                e.write(&batch).map(|_| ())
            }
            70..82 => e.flush().map(|_| ()),
            82..92 => e.compact().map(|_| ()),
            92..95 if !archived && annals::Month::of(BASE + next_row * HOUR) > february() => {
                // January leaves the store for an archive file once a later month exists.
                let result = e.archive(february(), None, &mut |_, _| {}).map(|_| ());
                let january_end = (february().start_ns() - BASE) / HOUR;
                let rows: Vec<i64> = model.present.iter().copied().filter(|&n| n < january_end).collect();
                let logs: Vec<i64> = model.logs_present.iter().copied().filter(|&n| n < january_end).collect();
                model.present.retain(|&n| n >= january_end);
                model.logs_present.retain(|&n| n >= january_end);
                model.in_doubt.retain(|(rows, _)| rows.iter().all(|&n| n >= january_end));
                if result.is_ok() {
                    archived = true;
                } else {
                    // The month was archived whole or not at all.
                    model.in_doubt.push((rows, logs));
                }
                result
            }
            _ => Ok(()),
        };
        let injected = fs.injected()[faults_before..].to_vec();
        match (&result, batch_rows) {
            (Ok(()), Some((rows, logs))) => {
                model.present.extend(rows);
                model.logs_present.extend(logs);
            }
            (Err(_), Some(rows)) => model.in_doubt.push(rows),
            _ => {}
        }
        // Shown when the test fails: what each step did.
        println!("{context}: action {action}, result {result:?}, faults {injected:?}");
        let failed = result.is_err();
        if failed {
            totals.failed_calls += 1;
            assert!(!injected.is_empty(), "{context}: a call failed without a fault: {result:?}");
            // A failed fsync of the log, the catalog or the manifest leaves what is on disk
            // unknown. (One of a compaction's or archive's new file only fails that job:
            // the file is discarded.)
            let log_in_doubt = injected.iter().any(|f| {
                f.op == Op::Sync && {
                    let path = f.path.to_string_lossy();
                    path.contains("/wal/") || path.ends_with("CATALOG") || path.ends_with("MANIFEST.tmp")
                }
            });
            if log_in_doubt {
                let probe = e.write(&Batch::new());
                assert!(
                    matches!(probe, Err(Error::Poisoned { .. })),
                    "{context}: not poisoned after a failed fsync ({injected:?}): {probe:?}"
                );
            }
        }
        let reopen = failed || rng.random_range(0..20) == 0;
        if !reopen {
            continue;
        }
        // Crash (a random image of what was durable) or a plain drop of the handle.
        let crash = failed && rng.random_bool(0.6) || rng.random_bool(0.1);
        fs.stop_failing();
        if crash {
            fs.crash();
            drop(engine.take());
            let image = fs.write_crash_image(rng.random()).unwrap();
            println!("{context}: crash image {image:?}");
            totals.crashes += 1;
            totals.image.changes_undone += image.changes_undone;
            totals.image.changes_kept += image.changes_kept;
            totals.image.files_torn += image.files_torn;
            totals.image.bytes_dropped += image.bytes_dropped;
            totals.image.bytes_zeroed += image.bytes_zeroed;
        } else {
            drop(engine.take());
        }
        assert_verifies(&store, &context);
        let reopened = Engine::open(&store, store_options(&fs, &mut rng))
            .unwrap_or_else(|e| panic!("{context}: reopen after {injected:?} failed: {e}"));
        totals.reopens += 1;
        model.check(&reopened, &context);
        engine = Some(reopened);
        fs.fail_randomly(rng.random(), one_in);
    }
    fs.stop_failing();
    let e = engine.take().unwrap();
    if e.close().is_err() {
        // The last step's fault can poison the handle; the next open recovers.
    }
    let reopened = Engine::open(&store, store_options(&fs, &mut rng)).unwrap();
    model.check(&reopened, &format!("seed {seed}, end"));
    reopened.close().unwrap();
    assert_verifies(&store, &format!("seed {seed}, end"));
    let injected = fs.injected();
    totals.operations += fs.operations();
    totals.faults += injected.len() as u64;
    totals.fsync_faults += injected.iter().filter(|f| f.op == Op::Sync).count() as u64;
}

#[test]
fn random_faults_and_crashes_lose_nothing_acknowledged() {
    let base = seed();
    let rounds = crate::common::env_count("ANNALS_FAULT_ROUNDS", 24);
    let mut totals = Totals::default();
    for round in 0..rounds {
        run_round(base.wrapping_add(round), &mut totals);
    }
    println!("fault injection over {rounds} workloads: {totals:?}");
    assert!(totals.faults > rounds, "too few faults fired: {totals:?}");
    assert!(totals.crashes > 0 && totals.fsync_faults > 0, "{totals:?}");
}

/// A store in `dir/store` with fsync'd writes on a fault-injecting file system.
fn sync_store_on_faulty_fs(dir: &std::path::Path) -> (std::path::PathBuf, FaultyFileSystem, Engine) {
    let store = dir.join("store");
    let fs = FaultyFileSystem::new(dir.join("stash")).unwrap();
    let options = Options {
        file_system: Arc::new(fs.clone()),
        durability: Durability::Sync,
        ..options()
    };
    let engine = Engine::open(&store, options).unwrap();
    (store, fs, engine)
}

/// A full disk while appending to the WAL fails that batch only: the partial record is
/// cut off again, the handle stays usable, and the next write succeeds.
#[test]
fn a_full_disk_during_a_wal_append_fails_only_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, fs, engine) = sync_store_on_faulty_fs(dir.path());
    let batch = |from: i64| {
        let mut b = Batch::new();
        for n in from..from + 10 {
            metric_row(&mut b, n);
        }
        b
    };
    engine.write(&batch(0)).unwrap();
    fs.fail_nth(Op::Write, 1, Fault::ShortWrite);
    let err = engine.write(&batch(10)).unwrap_err();
    assert!(err.is_retryable_disk_full(), "{err}");
    engine.write(&batch(20)).unwrap();
    let mut model = Model::default();
    model.present.extend((0..10).chain(20..30));
    model.check(&engine, "before reopen");
    drop(engine);
    let engine = Engine::open(&store, options()).unwrap();
    model.check(&engine, "after reopen");
    engine.close().unwrap();
    assert_verifies(&store, "end");
}

/// An fsync failure of the WAL poisons the handle, whatever the error.
#[test]
fn a_failed_wal_fsync_poisons_the_handle() {
    for fault in [Fault::Io, Fault::NoSpace] {
        let dir = tempfile::tempdir().unwrap();
        let (store, fs, engine) = sync_store_on_faulty_fs(dir.path());
        let mut batch = Batch::new();
        metric_row(&mut batch, 0);
        fs.fail_nth(Op::Sync, 1, fault);
        let failed = engine.write(&batch).unwrap_err();
        // The fsync's own error: EIO as such, ENOSPC as a full disk (not retryable: what
        // reached the disk is unknown).
        match fault {
            Fault::Io => assert!(matches!(&failed, Error::Io { op, .. } if op.starts_with("fsync")), "{failed}"),
            _ => assert!(
                matches!(&failed, Error::DiskFull { op, .. } if op.starts_with("fsync")) && !failed.is_retryable_disk_full(),
                "{failed}"
            ),
        }
        assert!(matches!(engine.write(&batch), Err(Error::Poisoned { .. })), "{fault:?}");
        assert!(matches!(engine.flush(), Err(Error::Poisoned { .. })), "{fault:?}");
        fs.crash();
        drop(engine);
        fs.write_crash_image(7).unwrap();
        let engine = Engine::open(&store, options()).unwrap();
        let (rows, _) = observe(&engine);
        assert!(rows.len() <= 1, "{rows:?}");
        engine.close().unwrap();
        assert_verifies(&store, &format!("{fault:?}"));
    }
}
