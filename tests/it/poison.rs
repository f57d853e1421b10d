//! A failed WAL write poisons the handle: later writes and flushes fail until reopen, and
//! reopening keeps every acknowledged batch and no partial one.
//!
//! The failure is real: a child copy of this test binary lowers its file-size limit
//! (RLIMIT_FSIZE) and ignores SIGXFSZ, so the WAL append fails with EFBIG once the file
//! reaches the limit. The limit is per process, so the child keeps it from other tests.

use crate::common::options;
use annals::events::{Event, EventFilter};
use annals::{Batch, Engine, Error, FieldValue, ScanRequest, SeriesKey};
use std::process::Command;

const CHILD: &str = "ANNALS_POISON_CHILD_DIR";
const BATCHES: i64 = 400;

fn batch(b: i64) -> Batch {
    let key = SeriesKey::metric("p").unwrap().with_tag("k", (b % 3).to_string()).unwrap();
    let mut batch = Batch::new();
    for r in 0..20 {
        batch
            .add_row(
                &key,
                b * 100 + r,
                [("b", FieldValue::I64(b)), ("pad", FieldValue::Str("z".repeat(64)))],
            )
            .unwrap();
    }
    batch
}

fn child(dir: &str) {
    let engine = Engine::open(dir, options()).unwrap();
    let events = engine.subscribe(EventFilter::default(), 1024);
    // SAFETY: plain libc calls on this process's own signal disposition and limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = 64 * 1024;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let mut acknowledged = 0;
    let mut failure = None;
    for b in 0..BATCHES {
        match engine.write(&batch(b)) {
            Ok(_) => acknowledged += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the file-size limit was never reached");
    assert!(matches!(failure, Error::Io { .. } | Error::DiskFull { .. }), "{failure}");
    assert!(
        matches!(engine.write(&batch(BATCHES)), Err(Error::Poisoned { .. })),
        "writes after a failure must fail"
    );
    assert!(matches!(engine.flush(), Err(Error::Poisoned { .. })));
    // Subscribers heard of every acknowledged write, of no other, and then of the poison.
    let (mut rows, mut poisoned) = (0, false);
    while let Some(event) = events.try_recv() {
        match event {
            Event::HistoryDataUpdated(update) => {
                assert!(!poisoned, "a data event after the poison");
                rows += update.rows;
            }
            Event::StorageWarning(alarm) => {
                assert_eq!(alarm.kind, "poisoned", "{alarm:?}");
                poisoned = true;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(rows, acknowledged * 20, "rows announced");
    assert!(poisoned, "the poison was announced");
    // The test harness prints the test's name on the same line first.
    println!("ACKNOWLEDGED {acknowledged}");
}

#[test]
fn a_failed_wal_write_poisons_the_handle_and_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "poison::a_failed_wal_write_poisons_the_handle_and_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acknowledged: i64 = stdout
        .lines()
        .find_map(|l| l.split("ACKNOWLEDGED ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("the child reports what it acknowledged");
    assert!(acknowledged > 0 && acknowledged < BATCHES);

    let engine = Engine::open(dir.path(), options()).unwrap();
    // The failed append's partial record was cut off again before the handle gave up, so
    // the log ends with the last whole record.
    assert!(
        engine.recovery_report().torn_tail.is_none(),
        "{:?}",
        engine.recovery_report().torn_tail
    );
    let mut batches: Vec<i64> = engine
        .snapshot()
        .scan(&ScanRequest::default())
        .unwrap()
        .map(|r| match r.unwrap().fields[0].1 {
            FieldValue::I64(b) => b,
            ref other => panic!("{other:?}"),
        })
        .collect();
    batches.sort_unstable();
    let expected: Vec<i64> = (0..acknowledged).flat_map(|b| std::iter::repeat_n(b, 20)).collect();
    assert_eq!(batches, expected, "exactly the acknowledged batches survive");
    engine.close().unwrap();
    crate::common::assert_verifies(dir.path(), "after the failed append");
}
