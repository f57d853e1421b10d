//! Crash test: a real `annals ingest` child is killed with SIGKILL at random moments; after
//! every kill the store must open clean, verify clean, and hold every acknowledged row.

use crate::common::{options, seed};
use annals::{Engine, FieldValue, ScanRequest, SeriesSelector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const ROWS_PER_ROUND: u64 = 40_000;
const BATCH_ROWS: u64 = 400;

/// Row `i` of round `round`: unique timestamp, value derived from both.
fn row(round: u64, i: u64) -> (String, i64, i64, f64) {
    let host = format!("h{}", i % 5);
    let ts = 1_451_606_400_000_000_000 + (round * ROWS_PER_ROUND + i) as i64 * 1_000_000_000;
    (host, ts, (round * 1_000_003 + i) as i64, (i % 10_000) as f64 / 100.0)
}

fn write_input(path: &std::path::Path, round: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..ROWS_PER_ROUND {
        let (host, ts, n, x) = row(round, i);
        writeln!(out, "crash,host={host} n={n}i,x={x} {ts}").unwrap();
    }
}

#[test]
fn sigkill_during_ingest_loses_no_acknowledged_row() {
    let base = seed();
    let rounds = crate::common::env_count("ANNALS_CRASH_ITERATIONS", 20);
    let mut rng = ChaCha8Rng::seed_from_u64(base);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let input = dir.path().join("input.lp");
    let mut acknowledged = BTreeMap::new();
    // Round 0 runs to completion to measure how long an ingest takes; later rounds are
    // killed at a uniformly random moment within that time.
    let mut full_run = Duration::from_millis(200);
    for round in 0..=rounds {
        let context = format!("seed {base}, round {round}");
        write_input(&input, round);
        let durability = if rng.random_bool(0.75) { "sync" } else { "group" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .args([
                "--data",
                data.to_str().unwrap(),
                "ingest",
                "--progress",
                "json",
                "--durability",
                durability,
            ])
            .args(["--batch-rows", &BATCH_ROWS.to_string(), "--head-mb", "1"])
            .arg(&input)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let durable = Arc::new(AtomicU64::new(0));
        let seen = durable.clone();
        let reader = std::thread::spawn(move || {
            let mut other = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                match crate::common::durable_rows(&line) {
                    Some(n) => {
                        seen.fetch_max(n, Ordering::SeqCst);
                    }
                    None => other.push(line),
                }
            }
            other
        });
        let started = std::time::Instant::now();
        if round > 0 {
            std::thread::sleep(full_run.mul_f64(rng.random_range(0.0..1.0)));
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        if round == 0 {
            full_run = started.elapsed();
        }
        let other_output = reader.join().unwrap();
        let acked = durable.load(Ordering::SeqCst);
        if status.success() {
            assert_eq!(
                acked, ROWS_PER_ROUND,
                "{context}: finished without acknowledging everything; stderr {other_output:?}"
            );
        }
        acknowledged.insert(round, acked);

        let report = annals::verify::verify(&data, false).unwrap();
        assert!(report.is_clean(), "{context}: verify after the kill found {:?}", report.problems);

        let engine = Engine::open(&data, options()).unwrap();
        let rows: Vec<_> = engine
            .snapshot()
            .scan(&ScanRequest {
                selector: SeriesSelector::measurement("crash"),
                ..ScanRequest::default()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut present: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for r in &rows {
            let index = (r.timestamp - 1_451_606_400_000_000_000) as u64 / 1_000_000_000;
            let (round_of, i) = (index / ROWS_PER_ROUND, index % ROWS_PER_ROUND);
            let (host, ts, n, x) = row(round_of, i);
            assert_eq!(r.key.tag("host"), Some(host.as_str()), "{context}: row {index} in the wrong series");
            assert_eq!(r.timestamp, ts);
            let want = vec![("n".into(), FieldValue::I64(n)), ("x".into(), FieldValue::F64(x))];
            let got: Vec<(String, FieldValue)> = r.fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            assert_eq!(got, want, "{context}: row {index} has other values");
            present.entry(round_of).or_default().push(i);
        }
        for (r, acked) in acknowledged.iter_mut() {
            let indices = present.remove(r).unwrap_or_default();
            let count = indices.len() as u64;
            assert!(
                count >= *acked,
                "{context}: round {r} acknowledged {acked} rows but {count} survived"
            );
            // What survived is a prefix of the input made of whole batches: no holes, no
            // half batch. Rows beyond the acknowledged ones were durable but unanswered.
            assert!(
                indices.iter().copied().eq(0..count),
                "{context}: round {r} rows are not a prefix of its input"
            );
            assert!(
                count.is_multiple_of(BATCH_ROWS) || count == ROWS_PER_ROUND,
                "{context}: round {r} kept {count} rows, not whole batches"
            );
            *acked = count;
        }
        assert!(present.is_empty(), "{context}: rows of rounds that never ran: {:?}", present.keys());
        engine.close().unwrap();
    }
    let report = annals::verify::verify(&data, false).unwrap();
    assert!(report.is_clean(), "final verify found {:?}", report.problems);
    let killed_mid_ingest = acknowledged.values().filter(|&&n| n < ROWS_PER_ROUND).count();
    eprintln!(
        "an uninterrupted ingest took {full_run:?}; rows surviving per round (of {ROWS_PER_ROUND}): {:?}; {killed_mid_ingest} of {rounds} kills landed before the end",
        acknowledged.values().collect::<Vec<_>>()
    );
}
