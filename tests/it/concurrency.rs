//! Concurrent writers share fsyncs and lose nothing; concurrent readers always see a
//! whole-batch prefix of the writes, across background flushes.

use crate::common::{options, scan_all};
use annals::{Batch, Durability, Engine, FieldValue, Options, SeriesKey};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn group_commit_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options {
            durability: Durability::Group {
                max_delay: Duration::from_millis(2),
            },
            ..options()
        },
    )
    .unwrap();
    let threads: usize = 4;
    let batches: usize = 150;
    let receipts: Vec<Vec<annals::WriteReceipt>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let engine = &engine;
                s.spawn(move || {
                    let key = SeriesKey::metric("w").unwrap().with_tag("thread", t.to_string()).unwrap();
                    (0..batches)
                        .map(|b| {
                            let mut batch = Batch::new();
                            for r in 0..10i64 {
                                batch.add_row(&key, b as i64 * 10 + r, [("v", FieldValue::I64(b as i64))]).unwrap();
                            }
                            engine.write(&batch).unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seqs: Vec<u64> = receipts.iter().flatten().map(|r| r.first_seq).collect();
    seqs.sort_unstable();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 10),
        "every batch got its own run of sequence numbers"
    );
    assert_eq!(scan_all(&engine, "w").len(), threads * batches * 10);
    drop(engine);
    // Acknowledged means durable: all of it is in the WAL.
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.recovery_report().wal_rows as usize, threads * batches * 10);
}

#[test]
fn readers_see_whole_batch_prefixes_during_writes_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options {
            durability: Durability::None,
            head_max_bytes: Some(64 << 10),
            background_flush: true,
            retention: annals::lifecycle::RetentionOptions::manual(),
            ..Options::default()
        },
    )
    .unwrap();
    let done = AtomicBool::new(false);
    let batches = 400i64;
    std::thread::scope(|s| {
        s.spawn(|| {
            let keys: Vec<SeriesKey> = (0..3)
                .map(|i| SeriesKey::metric("p").unwrap().with_tag("s", i.to_string()).unwrap())
                .collect();
            for b in 0..batches {
                let mut batch = Batch::new();
                for (i, key) in keys.iter().enumerate() {
                    // Out of order on purpose: some batches reach back in time (to timestamps no
                    // other batch uses, so last-write-wins replaces nothing).
                    let ts = if b % 7 == 0 { b * 100 - 4_950 } else { b * 100 } + i as i64;
                    batch
                        .add_row(key, ts, [("batch", FieldValue::I64(b)), ("pad", FieldValue::Str("x".repeat(200)))])
                        .unwrap();
                }
                engine.write(&batch).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut checks = 0;
            while !done.load(Ordering::SeqCst) || checks < 5 {
                let rows = scan_all(&engine, "p");
                let mut seen: Vec<i64> = rows
                    .iter()
                    .map(|r| match r.fields.iter().find(|(n, _)| &**n == "batch").map(|(_, v)| v.clone()) {
                        Some(FieldValue::I64(b)) => b,
                        other => panic!("unexpected {other:?}"),
                    })
                    .collect();
                seen.sort_unstable();
                // Each batch wrote one row to each of 3 series: a visible batch is whole.
                let n = seen.len() as i64 / 3;
                assert_eq!(seen.len() % 3, 0, "a batch is partly visible");
                let expected: Vec<i64> = (0..n).flat_map(|b| [b, b, b]).collect();
                assert_eq!(seen, expected, "visible batches are not a prefix of the writes");
                checks += 1;
            }
        });
    });
    assert!(engine.stats().unwrap().segments > 1, "background flushes ran");
    assert_eq!(scan_all(&engine, "p").len(), batches as usize * 3);
    assert_eq!(engine.background_error(), None);
}

/// Writers that find the head full together flush it once. Each writer over the head's
/// share queues on the flush lock; the first flushes, and the others, checking again under
/// the lock, find a new head and do not flush the few rows written since.
#[test]
fn writers_that_fill_the_head_together_flush_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options {
            durability: Durability::None,
            head_max_bytes: Some(64 << 10),
            ..options()
        },
    )
    .unwrap();
    // Values that pack poorly, so the head's share fills a few times although number
    // columns, timestamps and sequence numbers wait in packed pages.
    let (threads, batches, rows) = (4usize, 2000i64, 20i64);
    std::thread::scope(|s| {
        for t in 0..threads {
            let engine = &engine;
            s.spawn(move || {
                let key = SeriesKey::metric("w").unwrap().with_tag("thread", t.to_string()).unwrap();
                for b in 0..batches {
                    let mut batch = Batch::new();
                    for r in 0..rows {
                        let i = b * rows + r;
                        batch
                            .add_row(
                                &key,
                                i,
                                [
                                    ("v", FieldValue::F64((i * 2_654_435_761 % 1_000_003) as f64 / 4.0)),
                                    ("n", FieldValue::I64(i % 7)),
                                ],
                            )
                            .unwrap();
                    }
                    engine.write(&batch).unwrap();
                }
            });
        }
    });
    engine.close().unwrap();
    // (generation, rows) of every segment; the last is the close's flush of what was left.
    let mut segments = Vec::new();
    for month in std::fs::read_dir(dir.path().join("data")).unwrap() {
        for file in std::fs::read_dir(month.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let generation: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let (rows, _) = annals::internals::open_and_verify_segment(std::fs::read(&path).unwrap()).unwrap();
            segments.push((generation, rows));
        }
    }
    segments.sort_unstable();
    let total: u64 = segments.iter().map(|(_, rows)| rows).sum();
    assert_eq!(total, (threads as i64 * batches * rows) as u64);
    segments.pop();
    assert!(segments.len() >= 2, "the head's share should have filled a few times: {segments:?}");
    let largest = segments.iter().map(|(_, rows)| *rows).max().unwrap();
    for (generation, rows) in &segments {
        assert!(
            rows * 4 >= largest,
            "segment {generation} flushed {rows} rows, the largest {largest}: {segments:?}"
        );
    }
}
