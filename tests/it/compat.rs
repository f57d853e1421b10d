//! Stores written by earlier versions of annals open, verify and answer. The fixture
//! `tests/fixtures/manifest-v1/` is a store written by the code of 2026-11 before the
//! manifest's version 2 (its files are the ones the fuzz seeds were taken from): a version
//! 1 MANIFEST listing one segment of January 2016, its CATALOG, the segment, and the WAL
//! file holding the same batch written again after the flush. No TAGS file: it is rebuilt.
//!
//! `tests/fixtures/segment-v2/` is a store written at commit d085b74, before segment
//! version 3 (a checksum per block column): one version 2 segment of January 2016 holding
//! the rows of [`segment_v2_rows`] (written with `block_max_rows` 256), and its text index.
//!
//! `tests/fixtures/segment-v3/` holds the same rows written at commit 065a705, before segment
//! version 4 (two interleaved rANS states in integer streams of 256 values or more): its
//! blocks of 256 rows hold one-state streams that version 4 would write with two.

use crate::common::{copy_dir, options, scan_all};
use annals::{Engine, FieldValue};
use std::path::Path;

fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name), dir.path());
    dir
}

#[test]
fn a_store_with_a_version_1_manifest_opens_verifies_and_is_upgraded() {
    let dir = fixture("manifest-v1");
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(&manifest[8..12], &1u32.to_le_bytes(), "the fixture's manifest is version 1");
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!((report.segments, report.series), (1, 3));

    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.recovery_report().wal_records, 1, "the batch in the WAL is replayed");
    // The batch was written twice: metric rows are the same rows again, log rows are kept.
    let cpu = scan_all(&engine, "cpu");
    assert_eq!(cpu.len(), 40);
    assert_eq!(
        cpu[39].fields,
        vec![("n".into(), FieldValue::I64(39)), ("usage".into(), FieldValue::F64(9.75))]
    );
    assert_eq!(scan_all(&engine, "log").len(), 10);
    engine.close().unwrap();
    // The next manifest write (the close's flush) is version 2, and the store still verifies.
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(&manifest[8..12], &2u32.to_le_bytes());
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(scan_all(&engine, "cpu").len(), 40);
    assert_eq!(scan_all(&engine, "log").len(), 10);
    engine.close().unwrap();
}

/// The rows of `tests/fixtures/segment-v2/`: three hosts of a metric with a float, an
/// integer, a boolean and a sparse string field (700 rows each, blocks of 256 rows), and an
/// event series whose rows share timestamps (two per second, so record ids are stored).
fn segment_v2_rows() -> annals::Batch {
    let jan_2016 = 1_451_606_400_000_000_000i64;
    let mut batch = annals::Batch::new();
    for host in ["a", "b", "c"] {
        let key = annals::SeriesKey::metric("cpu").unwrap().with_tag("host", host).unwrap();
        for i in 0..700i64 {
            let mut fields = vec![
                ("usage", FieldValue::F64(i as f64 * 0.25 + host.len() as f64)),
                ("n", FieldValue::I64(i * i - 300)),
                ("up", FieldValue::Bool(i % 3 == 0)),
            ];
            if i % 50 == 7 {
                fields.push(("note", FieldValue::Str(format!("{host} note {i}"))));
            }
            batch.add_row(&key, jan_2016 + i * 10_000_000_000, fields).unwrap();
        }
    }
    let events = annals::SeriesKey::new(annals::SeriesKind::Log, "log", [("app", "x")]).unwrap();
    for i in 0..600i64 {
        let message = FieldValue::Str(format!("request {i} took {} ms", i % 37));
        batch
            .add_row(&events, jan_2016 + (i / 2) * 1_000_000_000, vec![("message", message)])
            .unwrap();
    }
    batch
}

/// The versions of the fixture month's segment files, by file name.
fn segment_versions(dir: &Path) -> Vec<u32> {
    let month = dir.join("data/2016-01");
    let mut versions: Vec<(String, u32)> = std::fs::read_dir(&month)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.display().to_string(), u32::from_le_bytes(bytes[8..12].try_into().unwrap()))
        })
        .collect();
    versions.sort();
    versions.into_iter().map(|(_, v)| v).collect()
}

/// Every row of the cpu and log series, as (time, fields) per series in order.
fn all_rows(engine: &Engine) -> Vec<(i64, Vec<(String, FieldValue)>)> {
    scan_all(engine, "cpu")
        .into_iter()
        .chain(scan_all(engine, "log"))
        .map(|r| (r.timestamp, r.fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .collect()
}

#[test]
fn a_store_with_version_2_segments_answers_the_same_before_and_after_they_are_rewritten() {
    let dir = fixture("segment-v2");
    let report = annals::verify::verify(dir.path(), false).unwrap();
    // Its text index is an earlier format: noted, not a problem; open rebuilds it.
    assert!(
        report.notes.iter().any(|n| n.contains("is a format 2 text index")),
        "{:?}",
        report.notes
    );
    old_segments_answer_the_same_before_and_after_they_are_rewritten(dir.path(), 2);
}

#[test]
fn a_store_with_version_3_segments_answers_the_same_before_and_after_they_are_rewritten() {
    let dir = fixture("segment-v3");
    old_segments_answer_the_same_before_and_after_they_are_rewritten(dir.path(), 3);
}

/// The segment version this build writes.
const CURRENT: u32 = 4;

/// Checks a fixture store whose one segment is `version`: it verifies, answers as a fresh
/// store of the same rows does, and compaction rewrites it as the current version.
fn old_segments_answer_the_same_before_and_after_they_are_rewritten(dir: &Path, version: u32) {
    assert_eq!(segment_versions(dir), vec![version], "the fixture's segment is version {version}");
    let report = annals::verify::verify(dir, false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    // The same rows written into a new store: its segment is the current version.
    let fresh = tempfile::tempdir().unwrap();
    let written = Engine::open(
        fresh.path(),
        annals::Options {
            block_max_rows: 256,
            ..options()
        },
    )
    .unwrap();
    written.write(&segment_v2_rows()).unwrap();
    written.flush().unwrap();
    assert_eq!(segment_versions(fresh.path()), vec![CURRENT]);
    let want = all_rows(&written);
    assert_eq!(want.len(), 3 * 700 + 600);

    let engine = Engine::open(dir, options()).unwrap();
    assert_eq!(all_rows(&engine), want, "the version {version} segment reads back the rows written");
    let aggregate = annals::Query {
        selector: annals::SeriesSelector::measurement("cpu"),
        aggregates: vec![
            annals::Aggregate::of(annals::AggregateFn::Sum, "usage"),
            annals::Aggregate::of(annals::AggregateFn::Max, "n"),
            annals::Aggregate::of(annals::AggregateFn::Count, "note"),
        ],
        group_by: vec!["host".into()],
        every: Some(annals::Bucket::Fixed(3_600_000_000_000)),
        ..annals::Query::default()
    };
    let answer = |e: &Engine| e.snapshot().query(&aggregate).unwrap().collect_rows().unwrap().0;
    assert_eq!(answer(&engine), answer(&written));
    let search = annals::SearchQuery::new("took 36");
    let hits = |e: &Engine| e.snapshot().search(&search).unwrap().hits.len();
    assert_eq!(hits(&engine), hits(&written));
    assert!(hits(&engine) > 0);

    // A new flush beside the old segment, then compaction rewrites both.
    let mut late = annals::Batch::new();
    let key = annals::SeriesKey::metric("cpu").unwrap().with_tag("host", "a").unwrap();
    late.add_row(&key, 1_451_606_400_000_000_000 + 5, [("usage", FieldValue::F64(-1.0))])
        .unwrap();
    engine.write(&late).unwrap();
    written.write(&late).unwrap();
    engine.flush().unwrap();
    assert_eq!(segment_versions(dir), vec![version, CURRENT]);
    engine.compact().unwrap();
    assert_eq!(
        segment_versions(dir),
        vec![CURRENT],
        "compaction merged the month into a segment of the current version"
    );
    assert_eq!(all_rows(&engine), all_rows(&written));
    assert_eq!(answer(&engine), answer(&written));
    engine.close().unwrap();
    written.close().unwrap();
    let report = annals::verify::verify(dir, false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
