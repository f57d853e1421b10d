//! Limits: exceeding one fails the write with a clear error, writes nothing, and leaves the
//! store usable.

use crate::common::{options, scan_all};
use annals::{Batch, Engine, Error, FieldValue, Limit, Limits, Options, SeriesKey};

fn key(i: usize) -> SeriesKey {
    SeriesKey::metric("m").unwrap().with_tag("i", i.to_string()).unwrap()
}

#[test]
fn series_limit_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_series: 3,
        ..Limits::default()
    };
    let engine = Engine::open(dir.path(), Options { limits, ..options() }).unwrap();
    let mut batch = Batch::new();
    for i in 0..2 {
        batch.add_row(&key(i), 1, [("v", FieldValue::I64(1))]).unwrap();
    }
    engine.write(&batch).unwrap();
    // Two existing series and two new ones: four would exceed the limit of three.
    let mut batch = Batch::new();
    for i in 0..4 {
        batch.add_row(&key(i), 2, [("v", FieldValue::I64(2))]).unwrap();
    }
    match engine.write(&batch) {
        Err(Error::LimitExceeded {
            limit: Limit::Series,
            value: 4,
            max: 3,
            ..
        }) => {}
        other => panic!("expected the series limit, got {other:?}"),
    }
    assert_eq!(scan_all(&engine, "m").len(), 2, "nothing of the rejected batch was written");
    let mut batch = Batch::new();
    batch.add_row(&key(2), 3, [("v", FieldValue::I64(3))]).unwrap();
    engine.write(&batch).unwrap();
    assert_eq!(engine.stats().unwrap().series, 3);
}

#[test]
fn oversized_batches_and_values_are_refused_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_batch_bytes: 4096,
        max_tag_value_bytes: 16,
        max_string_value_bytes: 1000,
        ..Limits::default()
    };
    let engine = Engine::open(dir.path(), Options { limits, ..options() }).unwrap();
    let mut batch = Batch::new();
    for i in 0..20 {
        batch.add_row(&key(i), i as i64, [("s", FieldValue::Str("y".repeat(900)))]).unwrap();
    }
    match engine.write(&batch) {
        Err(Error::LimitExceeded {
            limit: Limit::BatchBytes, ..
        }) => {}
        other => panic!("expected the batch size limit, got {other:?}"),
    }
    assert_eq!(engine.stats().unwrap().series, 0, "series of a refused batch are not created");

    let long_tag = SeriesKey::metric("m").unwrap().with_tag("k", "x".repeat(17)).unwrap();
    let mut batch = Batch::new();
    batch.add_row(&long_tag, 1, [("v", FieldValue::I64(1))]).unwrap();
    assert!(matches!(
        engine.write(&batch),
        Err(Error::LimitExceeded {
            limit: Limit::TagValueLength,
            ..
        })
    ));

    let mut batch = Batch::new();
    batch.add_row(&key(0), 1, [("s", FieldValue::Str("z".repeat(1001)))]).unwrap();
    assert!(matches!(
        engine.write(&batch),
        Err(Error::LimitExceeded {
            limit: Limit::StringValueLength,
            ..
        })
    ));

    let mut batch = Batch::new();
    batch.add_row(&key(0), i64::MAX, [("v", FieldValue::I64(1))]).unwrap();
    assert!(matches!(engine.write(&batch), Err(Error::InvalidInput { .. })));

    let mut batch = Batch::new();
    batch.add_row(&key(0), i64::MAX - 1, [("v", FieldValue::I64(1))]).unwrap();
    batch.add_row(&key(0), i64::MIN, [("v", FieldValue::I64(2))]).unwrap();
    engine.write(&batch).unwrap();
    engine.flush().unwrap();
    assert_eq!(scan_all(&engine, "m").len(), 2, "the extremes of time are storable");
}

#[test]
fn invalid_batches_are_rejected_when_built() {
    let mut batch = Batch::new();
    let refused = batch.add_row(&key(0), 1, Vec::<(&str, FieldValue)>::new()).unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidInput { reason, .. } if reason == "a row needs at least one field"),
        "{refused}"
    );
    let refused = batch
        .add_row(&key(0), 1, [("a", FieldValue::I64(1)), ("a", FieldValue::I64(2))])
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidInput { reason, .. } if reason == "field \"a\" given twice in one row"),
        "{refused}"
    );
    assert!(batch.is_empty(), "a rejected row leaves nothing behind");
}

#[test]
fn the_memory_budget_bounds_the_head() {
    // 4 MiB of 200-byte strings over 10 series, written in batches of 100 rows.
    let write_all = |engine: &Engine| {
        let mut max_head = 0;
        for b in 0..200i64 {
            let mut batch = Batch::new();
            for r in 0..100i64 {
                let text = format!("{:0>200}", b * 100 + r);
                batch
                    .add_row(&key((r % 10) as usize), b * 100 + r, [("text", FieldValue::Str(text))])
                    .unwrap();
            }
            engine.write(&batch).unwrap();
            max_head = max_head.max(engine.stats().unwrap().head_memory_bytes);
        }
        max_head
    };
    let dir = tempfile::tempdir().unwrap();
    let small = Options {
        memory_budget: 4 << 20,
        ..options()
    };
    assert_eq!(small.memory().head_flush_bytes, 1 << 20);
    let engine = Engine::open(dir.path(), small).unwrap();
    let max_head = write_all(&engine);
    let stats = engine.stats().unwrap();
    // A head of 1 MiB holds fewer than 5,000 of these rows (200 bytes each and their slots).
    assert!(
        stats.segments >= 4,
        "{} segments for 4 MiB of strings with a 1 MiB head",
        stats.segments
    );
    assert!(max_head < 1 << 20, "the head reached {max_head} bytes; it flushes at 1 MiB");
    assert_eq!(scan_all(&engine, "m").len(), 20_000, "every row is kept across the flushes");

    // The default budget holds all of it in the head.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let max_head = write_all(&engine);
    assert_eq!(engine.stats().unwrap().segments, 0);
    assert!(max_head > 4 << 20, "20,000 rows of 200-byte strings count {max_head} bytes");
}
