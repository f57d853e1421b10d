//! Crash matrix: real `annals` child processes killed with SIGKILL at random moments of
//! ingest (with small heads, so flushes run all the time), compaction, archive and restore.
//! After every kill the store must verify clean, open, and hold exactly what the model
//! says: every acknowledged row, whole batches only, a month archived or restored whole or
//! not at all, and no stray files.
//!
//! Rounds run until `ANNALS_CRASH_ITERATIONS` children have been killed (default 20, the
//! CI setting; the long mode in the README asks for 100 or more): a kill timed after the
//! child finished, or a run that re-times a phase, does not count. Seed: `ANNALS_TEST_SEED`.

use crate::common::{assert_no_stray_files, assert_verifies, options, run_cli_killed_at_random, seed};
use annals::{Engine, FieldValue, Month, SeriesSelector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BATCH_ROWS: u64 = 1_000;
const ROWS_PER_INGEST: u64 = 120_000;

fn month(index: u32) -> Month {
    Month::new(2016, index).unwrap()
}

/// Rows are 100 ms apart: a month holds 25 million, more than any run writes.
const STEP_NS: i64 = 100_000_000;

/// Row `i` of `month`: its timestamp and the values derived from both.
fn row(m: Month, i: u64) -> (String, i64, i64) {
    (
        format!("h{}", i % 20),
        m.start_ns() + i as i64 * STEP_NS,
        i as i64 * 31 + m.start_ns() / 1_000_000_000_000,
    )
}

fn write_input(path: &Path, m: Month, from: u64, count: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in from..from + count {
        let (host, ts, n) = row(m, i);
        writeln!(out, "cm,host={host} n={n}i {ts}").unwrap();
    }
}

/// Runs `annals ingest` on `input`, killed after `kill_after` when given. Returns the rows
/// the child reported durable and whether it finished.
fn ingest(store: &Path, input: &Path, kill_after: Option<Duration>) -> (u64, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(store)
        .args(["ingest", "--progress", "json", "--durability", "sync", "--head-mb", "1"])
        .args(["--batch-rows", &BATCH_ROWS.to_string()])
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut durable = 0;
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some(n) = crate::common::durable_rows(&line) {
                durable = durable.max(n);
            }
        }
        durable
    });
    if let Some(after) = kill_after {
        std::thread::sleep(after);
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    (reader.join().unwrap(), status.success())
}

/// Row indices present per month, checking every value.
fn observe(store: &Path, context: &str) -> BTreeMap<Month, Vec<u64>> {
    let engine = Engine::open(store, options()).unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let mut present: BTreeMap<Month, Vec<u64>> = BTreeMap::new();
    for r in crate::common::scan_selected(&engine, SeriesSelector::measurement("cm")) {
        let m = Month::of(r.timestamp);
        let i = ((r.timestamp - m.start_ns()) / STEP_NS) as u64;
        let (host, ts, n) = row(m, i);
        assert_eq!(
            (r.key.tag("host"), r.timestamp),
            (Some(host.as_str()), ts),
            "{context}: row {m}/{i}"
        );
        assert_eq!(r.fields.len(), 1);
        assert_eq!(r.fields[0].1, FieldValue::I64(n), "{context}: row {m}/{i} has another value");
        present.entry(m).or_default().push(i);
    }
    // Closing flushes what the WAL replayed: count the segments after that.
    engine.flush().unwrap();
    let stats = engine.stats().unwrap();
    let listed = stats.segments + stats.summaries.iter().map(|t| t.segments).sum::<u64>();
    engine.close().unwrap();
    assert_no_stray_files(store, listed, context);
    present
}

const PHASES: [&str; 4] = ["ingest", "compact", "archive", "restore"];

#[derive(Debug, Default)]
struct Counts {
    kills: BTreeMap<&'static str, (u64, u64)>,
}

impl Counts {
    fn killed(&self) -> u64 {
        self.kills.values().map(|(killed, _)| killed).sum()
    }

    fn record(&mut self, phase: &'static str, finished: bool) {
        let entry = self.kills.entry(phase).or_default();
        if finished {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
}

#[test]
fn sigkill_during_ingest_flush_compaction_archive_and_restore() {
    let base = seed();
    let wanted_kills = crate::common::env_count("ANNALS_CRASH_ITERATIONS", 20);
    let mut rng = ChaCha8Rng::seed_from_u64(base);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("input.lp");
    let archive_dir = store.join("archive");
    // The model: rows per month, always the prefix 0..n.
    let mut expected: BTreeMap<Month, u64> = BTreeMap::new();
    // Three months of many small segments, uninterrupted; the runs are timed.
    let mut full_ingest = Duration::ZERO;
    for m in 1..=3 {
        write_input(&input, month(m), 0, ROWS_PER_INGEST);
        let started = Instant::now();
        assert_eq!(ingest(&store, &input, None), (ROWS_PER_INGEST, true));
        full_ingest = full_ingest.max(started.elapsed());
        expected.insert(month(m), ROWS_PER_INGEST);
    }
    let mut full_compact = Duration::ZERO;
    let mut full_archive = Duration::ZERO;
    let mut full_restore = Duration::ZERO;
    let mut counts = Counts::default();
    let january = month(1);
    let mut january_archived = false;
    // Every fourth run of a phase goes uninterrupted and re-times it: the store grows, and
    // kills are spread over the latest duration.
    let mut occurrences = [0u64; 4];
    let mut round = 0;
    while counts.killed() < wanted_kills {
        // About half the rounds kill (see the module doc); far fewer means the timing broke.
        assert!(
            round < wanted_kills * 10,
            "seed {base}: {wanted_kills} kills not reached in {round} rounds: {:?}",
            counts.kills
        );
        round += 1;
        let context = format!("seed {base}, round {round}");
        // The phase with the fewest kills so far (then the fewest runs) goes next, so each
        // gets its share whatever its timing; archive needs January present, restore needs
        // it archived.
        let allowed: &[usize] = if january_archived { &[0, 1, 3] } else { &[0, 1, 2] };
        let phase = *allowed
            .iter()
            .min_by_key(|&&p| (counts.kills.get(PHASES[p]).map_or(0, |k| k.0), occurrences[p]))
            .expect("a phase is always allowed");
        let retime = occurrences[phase].is_multiple_of(4);
        occurrences[phase] += 1;
        match phase {
            0 => {
                // Ingest into February..June: small heads flush every few batches.
                let m = month(2 + (rng.random_range(0..5)));
                let from = expected.get(&m).copied().unwrap_or(0);
                write_input(&input, m, from, ROWS_PER_INGEST);
                let started = Instant::now();
                let kill_after = (!retime).then(|| full_ingest.mul_f64(rng.random_range(0.0..1.1)));
                let (acked, finished) = ingest(&store, &input, kill_after);
                if retime {
                    full_ingest = started.elapsed();
                }
                counts.record(PHASES[phase], finished);
                assert_verifies(&store, &context);
                let present = observe(&store, &context);
                let indices = present.get(&m).cloned().unwrap_or_default();
                let count = indices.len() as u64;
                assert!(
                    count >= from + acked,
                    "{context}: {m} acknowledged {acked} more rows but has {count} of {}",
                    from + acked
                );
                assert!(indices.iter().copied().eq(0..count), "{context}: {m} rows are not a prefix");
                assert!(
                    (count - from).is_multiple_of(BATCH_ROWS) || count - from == ROWS_PER_INGEST,
                    "{context}: {m} kept {} new rows, not whole batches",
                    count - from
                );
                if count > 0 {
                    expected.insert(m, count);
                }
            }
            1 | 2 => {
                // Compaction (new small segments first, so there is work) or archive.
                let args: Vec<String> = if phase == 1 {
                    let m = month(2);
                    let from = expected[&m];
                    write_input(&input, m, from, ROWS_PER_INGEST / 2);
                    assert_eq!(ingest(&store, &input, None), (ROWS_PER_INGEST / 2, true));
                    *expected.get_mut(&m).unwrap() += ROWS_PER_INGEST / 2;
                    vec!["compact".into()]
                } else {
                    vec!["archive".into(), "--before".into(), month(2).to_string()]
                };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let full = if phase == 1 { &mut full_compact } else { &mut full_archive };
                let finished = run_cli_killed_at_random(&store, &args, u64::from(!retime), full, &mut rng, &context);
                counts.record(PHASES[phase], finished);
                assert_verifies(&store, &context);
                let present = observe(&store, &context);
                if phase == 2 && !present.contains_key(&january) {
                    // Archived whole: the archive holds it, and restore brings it back.
                    january_archived = true;
                    let archives: Vec<_> = std::fs::read_dir(&archive_dir).unwrap().collect();
                    assert_eq!(archives.len(), 1, "{context}: one archive file");
                }
                check(&present, &expected, january_archived, &context);
            }
            _ => {
                let archive = std::fs::read_dir(&archive_dir).unwrap().next().unwrap().unwrap().path();
                let archive = archive.to_str().unwrap().to_string();
                let finished = run_cli_killed_at_random(
                    &store,
                    &["restore", &archive],
                    u64::from(!retime),
                    &mut full_restore,
                    &mut rng,
                    &context,
                );
                counts.record(PHASES[phase], finished);
                assert_verifies(&store, &context);
                let present = observe(&store, &context);
                if present.contains_key(&january) {
                    // Restored whole; the archive file stays, so remove it for the next
                    // archive round.
                    january_archived = false;
                    std::fs::remove_file(&archive).unwrap();
                }
                check(&present, &expected, january_archived, &context);
            }
        }
    }
    assert_verifies(&store, "end");
    eprintln!(
        "crash matrix, {} kills in {round} rounds (killed, finished) per phase: {:?}; uninterrupted: ingest {full_ingest:?}, compact {full_compact:?}, archive {full_archive:?}, restore {full_restore:?}",
        counts.killed(),
        counts.kills
    );
}

/// Every month holds exactly its expected rows, except January while it is archived.
fn check(present: &BTreeMap<Month, Vec<u64>>, expected: &BTreeMap<Month, u64>, january_archived: bool, context: &str) {
    for (m, &count) in expected {
        if january_archived && *m == month(1) {
            assert!(!present.contains_key(m), "{context}: January is both archived and present");
            continue;
        }
        let indices = present.get(m).cloned().unwrap_or_default();
        assert!(
            indices.iter().copied().eq(0..count),
            "{context}: {m} has {} rows, expected {count}",
            indices.len()
        );
    }
    assert!(
        present.keys().all(|m| expected.contains_key(m)),
        "{context}: unexpected months {:?}",
        present.keys()
    );
}
