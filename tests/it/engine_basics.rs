use crate::common::{options, points, scan_all};
use annals::{Batch, Engine, FieldValue, LogEntry, LogLevel, Order, ScanRequest, SeriesKey, SeriesSelector, TimeRange};

fn cpu(host: &str) -> SeriesKey {
    SeriesKey::metric("cpu").unwrap().with_tag("host", host).unwrap()
}

fn log(ts: i64, level: LogLevel, message: &str) -> LogEntry {
    crate::common::log_entry(ts, level, "app", message.into())
}

#[test]
fn write_scan_flush_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let jan = 1_451_606_400_000_000_000i64;
    let feb = 1_454_284_800_000_000_000i64;
    let mut expected;
    {
        let engine = Engine::open(dir.path(), options()).unwrap();
        let mut batch = Batch::new();
        batch.add_row(&cpu("a"), jan + 10, [("usage", FieldValue::F64(1.5))]).unwrap();
        batch
            .add_row(&cpu("b"), jan + 5, [("usage", FieldValue::F64(2.5)), ("cores", FieldValue::I64(8))])
            .unwrap();
        batch.add_row(&cpu("a"), feb + 1, [("usage", FieldValue::F64(3.5))]).unwrap();
        engine.write(&batch).unwrap();
        // Overwrite a metric timestamp: the last write wins.
        let mut batch = Batch::new();
        batch.add_row(&cpu("a"), jan + 10, [("usage", FieldValue::F64(9.0))]).unwrap();
        engine.write(&batch).unwrap();
        expected = points(&scan_all(&engine, "cpu"));
        assert_eq!(expected.len(), 4);
        assert_eq!(expected[0], ("cpu,host=b".into(), jan + 5, "cores".into(), FieldValue::I64(8)));
        assert_eq!(expected[2], ("cpu,host=a".into(), jan + 10, "usage".into(), FieldValue::F64(9.0)));

        let report = engine.flush().unwrap();
        assert_eq!(report.segments, 2, "one segment per month");
        assert_eq!(points(&scan_all(&engine, "cpu")), expected);
        // A write after the flush to the same timestamp still wins over the segment.
        let mut batch = Batch::new();
        batch.add_row(&cpu("a"), jan + 10, [("usage", FieldValue::F64(7.0))]).unwrap();
        engine.write(&batch).unwrap();
        expected[2].3 = FieldValue::F64(7.0);
        assert_eq!(points(&scan_all(&engine, "cpu")), expected);
        // Dropped without close: the last write is replayed from the WAL.
    }
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.recovery_report().wal_records, 1);
    assert_eq!(points(&scan_all(&engine, "cpu")), expected);
    assert!(dir.path().join("data/2016-01").is_dir());
    assert!(dir.path().join("data/2016-02").is_dir());
    engine.flush().unwrap();
    assert_eq!(points(&scan_all(&engine, "cpu")), expected);
    let stats = engine.stats().unwrap();
    assert_eq!(stats.series, 2);
    assert_eq!(stats.points, 5, "two segments hold the overwritten value twice until compaction");
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(points(&scan_all(&engine, "cpu")), expected);
}

#[test]
fn logs_keep_duplicates_and_scan_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    for i in 0..5 {
        batch.add_log(&log(100, LogLevel::Info, &format!("same second {i}"))).unwrap();
    }
    batch.add_log(&log(200, LogLevel::Error, "later")).unwrap();
    let receipt = engine.write(&batch).unwrap();
    engine.flush().unwrap();
    batch.clear();
    batch.add_log(&log(100, LogLevel::Info, "written after the flush")).unwrap();
    engine.write(&batch).unwrap();

    let rows: Vec<_> = engine
        .snapshot()
        .scan(&ScanRequest {
            selector: SeriesSelector::measurement("log"),
            order: Order::Descending,
            ..ScanRequest::default()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0].timestamp, 200);
    // Within one timestamp, newest-first means highest record id first.
    let ids: Vec<u64> = rows[1..].iter().map(|r| r.record_id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(ids.last(), Some(&receipt.first_seq));
    // Filter by tag and time, with a limit.
    let rows: Vec<_> = engine
        .snapshot()
        .scan(&ScanRequest {
            selector: SeriesSelector::measurement("log").with_tag("level", "INFO"),
            range: TimeRange::new(0, 150),
            limit: Some(3),
            ..ScanRequest::default()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.key.tag("level") == Some("INFO")));
}

#[test]
fn snapshots_do_not_see_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    batch.add_row(&cpu("a"), 1, [("x", FieldValue::I64(1))]).unwrap();
    engine.write(&batch).unwrap();
    let before = engine.snapshot();
    batch.clear();
    batch.add_row(&cpu("a"), 2, [("x", FieldValue::I64(2))]).unwrap();
    engine.write(&batch).unwrap();
    engine.flush().unwrap();
    let count = |s: &annals::Snapshot| s.scan(&ScanRequest::default()).unwrap().count();
    assert_eq!(count(&before), 1);
    assert_eq!(count(&engine.snapshot()), 2);
}

#[test]
fn second_handle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _engine = Engine::open(dir.path(), options()).unwrap();
    match Engine::open(dir.path(), options()) {
        Err(annals::Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
}
