//! Archive and restore: a round trip gives identical answers (rows, record ids, full-text
//! counts); restoring twice or over live data is refused; corrupt, truncated, tampered
//! and foreign archives are rejected before anything is written.

use crate::common::{copy_dir, files_under, seed};
use crate::compaction::{answers, lifecycle_options, month_start, random_batch};
use annals::{Batch, Engine, Error, FieldValue, Month, SeriesKey};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::Command;

fn filled_store(dir: &Path, seed: u64) -> Engine {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let engine = Engine::open(dir, lifecycle_options()).unwrap();
    let months = [month_start(2026, 9), month_start(2026, 10), month_start(2026, 11)];
    for _ in 0..4 {
        engine.write(&random_batch(&mut rng, &months)).unwrap();
        engine.flush().unwrap();
    }
    // Some rows only in the head: archive must flush them first.
    engine.write(&random_batch(&mut rng, &months)).unwrap();
    engine
}

fn november() -> Month {
    Month::new(2026, 11).unwrap()
}

#[test]
fn archive_and_restore_round_trip() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let engine = filled_store(dir.path(), seed);
    let before = answers(&engine);
    let in_november = |a: &crate::compaction::Answers| a.cpu.iter().filter(|r| r.1 >= month_start(2026, 11)).count();

    let report = engine.archive(november(), None, &mut |_, _| {}).unwrap();
    assert_eq!(report.months, vec!["2026-09", "2026-10"]);
    assert!(report.path.starts_with(dir.path().join("archive")));
    assert!(report.rows > 0 && report.archive_bytes > 0, "{report:?}");
    let archived = answers(&engine);
    assert_eq!(archived.cpu.len(), in_november(&before), "seed {seed}: only November is left");
    assert!(archived.cpu.iter().all(|r| r.1 >= month_start(2026, 11)));
    assert!(archived.logs.len() < before.logs.len());
    let stats = engine.stats().unwrap();
    assert_eq!(stats.months.iter().map(|m| m.month.as_str()).collect::<Vec<_>>(), vec!["2026-11"]);
    let files = files_under(&dir.path().join("data"));
    assert!(
        files.iter().all(|f| f.starts_with("2026-11") || f.starts_with("summaries")),
        "seed {seed}: files of archived months remain: {files:?}"
    );
    // Their summaries stay: the archived days were rolled up first.
    assert!(files.iter().any(|f| f.starts_with("summaries/day/2026-09")), "{files:?}");

    let listed = engine.archives().unwrap();
    assert_eq!(listed.len(), 1);
    let info = listed[0].info().unwrap();
    assert_eq!(
        (info.months.clone(), info.rows, info.segments),
        (report.months.clone(), report.rows, report.segments)
    );

    let restored = engine.restore(&report.path, &mut |_, _| {}).unwrap();
    assert_eq!(restored.months, report.months);
    assert!(restored.text_records_indexed > 0);
    assert_eq!(answers(&engine), before, "seed {seed}: answers differ after restore");

    let again = engine.restore(&report.path, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(&again, Error::Refused { reason } if reason.contains("already holds data")),
        "{again}"
    );
    assert_eq!(answers(&engine), before);

    engine.close().unwrap();
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    assert_eq!(answers(&engine), before, "seed {seed}: answers differ after reopen");
    engine.close().unwrap();
}

/// A run killed after renaming its archive into place, before the manifest lost the
/// months: the store still holds them and the file is there. The rerun finishes that run;
/// a file at that path that is not an archive of exactly those segments is refused and
/// left as it was.
#[test]
fn a_rerun_after_a_kill_between_rename_and_manifest_finishes_the_archive() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let (killed, other) = (dir.path().join("killed"), dir.path().join("other"));
    let store = dir.path().join("store");
    let engine = filled_store(&store, seed);
    engine.flush().unwrap();
    let before = answers(&engine);
    engine.close().unwrap();
    copy_dir(&store, &killed);
    copy_dir(&store, &other);
    let engine = Engine::open(&store, lifecycle_options()).unwrap();
    let report = engine.archive(november(), None, &mut |_, _| {}).unwrap();
    let archived = answers(&engine);
    engine.close().unwrap();
    let name = report.path.file_name().unwrap();

    // The killed run's state: its archive in place, the months still in the store.
    std::fs::create_dir_all(killed.join("archive")).unwrap();
    std::fs::copy(&report.path, killed.join("archive").join(name)).unwrap();
    let engine = Engine::open(&killed, lifecycle_options()).unwrap();
    assert_eq!(answers(&engine), before);
    let rerun = engine.archive(november(), None, &mut |_, _| {}).unwrap();
    assert_eq!(
        (rerun.months.clone(), rerun.segments, rerun.rows, rerun.archive_bytes),
        (report.months.clone(), report.segments, report.rows, report.archive_bytes),
        "seed {seed}"
    );
    assert_eq!(answers(&engine), archived, "seed {seed}: the rerun removed the months");
    engine.restore(&rerun.path, &mut |_, _| {}).unwrap();
    assert_eq!(answers(&engine), before, "seed {seed}: the leftover archive restores");
    engine.close().unwrap();

    // Not an archive, then an archive of other segments (October gained one since): refused.
    let engine = Engine::open(&other, lifecycle_options()).unwrap();
    let target = other.join("archive").join(name);
    std::fs::create_dir_all(other.join("archive")).unwrap();
    std::fs::write(&target, b"someone's notes").unwrap();
    let refused = engine.archive(november(), None, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(&refused, Error::Refused { reason } if reason.contains("already exists and is not an archive")),
        "{refused}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"someone's notes");
    std::fs::copy(&report.path, &target).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    engine.write(&random_batch(&mut rng, &[month_start(2026, 10)])).unwrap();
    let refused = engine.archive(november(), None, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(&refused, Error::Refused { reason } if reason.contains("holds other segments than the months to archive")),
        "{refused}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&report.path).unwrap());
    engine.close().unwrap();
}

#[test]
fn partial_writes_in_separate_segments_stay_merged_through_archive_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    let key = SeriesKey::metric("cpu").unwrap().with_tag("host", "a").unwrap();
    let ts = month_start(2026, 9) + 60 * 1_000_000_000;
    // Three flushes, three segments of September, each with some of the row's fields.
    for fields in [
        vec![("a", FieldValue::F64(1.0)), ("b", FieldValue::F64(2.0))],
        vec![("b", FieldValue::F64(20.0)), ("c", FieldValue::I64(3))],
        vec![("a", FieldValue::F64(10.0))],
    ] {
        let mut batch = Batch::new();
        batch.add_row(&key, ts, fields).unwrap();
        engine.write(&batch).unwrap();
        engine.flush().unwrap();
    }
    let merged = |engine: &Engine| -> Vec<(i64, Vec<(String, FieldValue)>)> {
        crate::common::scan_all(engine, "cpu")
            .into_iter()
            .map(|r| (r.timestamp, r.fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()))
            .collect()
    };
    let want = vec![(
        ts,
        vec![
            ("a".to_string(), FieldValue::F64(10.0)),
            ("b".to_string(), FieldValue::F64(20.0)),
            ("c".to_string(), FieldValue::I64(3)),
        ],
    )];
    assert_eq!(merged(&engine), want);
    let report = engine.archive(Month::new(2026, 10).unwrap(), None, &mut |_, _| {}).unwrap();
    assert_eq!(report.segments, 3, "archived as the three segments they were");
    assert!(merged(&engine).is_empty());
    engine.restore(&report.path, &mut |_, _| {}).unwrap();
    assert_eq!(merged(&engine), want, "restored segments keep their order of writes");
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    assert_eq!(merged(&engine), want, "after reopen");
    engine.optimize(&mut |_| {}).unwrap();
    assert_eq!(merged(&engine), want, "after the month is merged into one segment");
    engine.close().unwrap();
}

#[test]
fn restore_over_data_written_after_the_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = filled_store(dir.path(), seed());
    let report = engine.archive(november(), None, &mut |_, _| {}).unwrap();
    let mut batch = Batch::new();
    let key = SeriesKey::metric("late").unwrap();
    batch
        .add_row(&key, month_start(2026, 10) + 5, [("x", FieldValue::F64(1.0))])
        .unwrap();
    engine.write(&batch).unwrap();
    let err = engine.restore(&report.path, &mut |_, _| {}).unwrap_err();
    assert!(matches!(&err, Error::Refused { reason } if reason.contains("2026-10")), "{err}");
    // The attempt flushed the late row; nothing of the archive was written.
    let archived_months: Vec<String> = files_under(&dir.path().join("data"))
        .into_iter()
        .filter(|f| !f.starts_with("2026-11") && !f.starts_with("summaries"))
        .collect();
    assert_eq!(archived_months.len(), 1, "{archived_months:?}");
    assert_eq!(engine.stats().unwrap().rows, {
        let november: u64 = engine
            .stats()
            .unwrap()
            .months
            .iter()
            .filter(|m| m.month == "2026-11")
            .map(|m| m.rows)
            .sum();
        november + 1
    });
    engine.close().unwrap();
}

/// The (index offset, index JSON) of an archive.
fn index_of(bytes: &[u8]) -> (usize, serde_json::Value) {
    let footer = &bytes[bytes.len() - 28..];
    let offset = u64::from_le_bytes(footer[0..8].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(footer[8..16].try_into().unwrap()) as usize;
    (offset, serde_json::from_slice(&bytes[offset..offset + len]).unwrap())
}

/// Rewrites an archive with another index, checksummed as a real writer would.
fn with_index(bytes: &[u8], index: &serde_json::Value) -> Vec<u8> {
    let (offset, _) = index_of(bytes);
    let json = serde_json::to_vec(index).unwrap();
    let mut out = bytes[..offset].to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&(offset as u64).to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(b"ANNALARC");
    out
}

#[test]
fn corrupt_tampered_and_foreign_archives_are_rejected_before_anything_is_written() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let engine = filled_store(dir.path(), seed);
    let report = engine.archive(november(), None, &mut |_, _| {}).unwrap();
    let good = std::fs::read(&report.path).unwrap();
    let expected = answers(&engine);
    let files = files_under(dir.path());
    let bad_dir = tempfile::tempdir().unwrap();
    let try_restore = |name: &str, bytes: &[u8]| -> Error {
        let path: PathBuf = bad_dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = engine.restore(&path, &mut |_, _| {}).unwrap_err();
        assert_eq!(files_under(dir.path()), files, "seed {seed}: {name} wrote into the store");
        assert_eq!(answers(&engine), expected, "seed {seed}: {name} changed answers");
        err
    };

    // A flipped byte inside the first entry.
    let mut flipped = good.clone();
    flipped[40] ^= 0x20;
    let err = try_restore("flipped.annarc", &flipped);
    assert!(err.is_corruption(), "flipped: {err}");

    let err = try_restore("truncated.annarc", &good[..good.len() / 2]);
    assert!(err.is_corruption(), "truncated: {err}");
    let err = try_restore("empty.annarc", b"");
    assert!(err.is_corruption(), "empty: {err}");

    let (_, index) = index_of(&good);
    for (name, evil) in [
        ("absolute", "/tmp/00000000000000000001.seg"),
        ("dotdot", "2026-09/../../00000000000000000001.seg"),
        ("text", "2026-09/text/meta.json"),
    ] {
        let mut tampered = index.clone();
        tampered["entries"][0]["name"] = serde_json::Value::String(evil.into());
        let err = try_restore(&format!("{name}.annarc"), &with_index(&good, &tampered));
        assert!(
            err.is_corruption() && err.to_string().contains(&format!("{evil:?}")),
            "{name}: {err}"
        );
    }
    // A declared size smaller than the entry: decompression must stop there and say so.
    let mut lying = index.clone();
    let raw = lying["entries"][0]["raw_len"].as_u64().unwrap();
    lying["entries"][0]["raw_len"] = serde_json::Value::from(raw - 1);
    let err = try_restore("lying.annarc", &with_index(&good, &lying));
    assert!(err.is_corruption(), "lying: {err}");
    // An index whose checksum does not match.
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 12] ^= 1;
    let err = try_restore("crc.annarc", &bad_crc);
    assert!(err.is_corruption(), "crc: {err}");

    // A well-formed archive whose series are not this store's.
    let mut foreign = index.clone();
    foreign["series"][0]["measurement"] = serde_json::Value::String("someone_else".into());
    let err = try_restore("foreign.annarc", &with_index(&good, &foreign));
    assert!(
        matches!(&err, Error::Refused { reason } if reason.contains("another store")),
        "foreign: {err}"
    );

    // The untouched archive still restores.
    engine.restore(&report.path, &mut |_, _| {}).unwrap();
    engine.close().unwrap();
}

#[test]
fn cli_archive_list_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path(), seed()).close().unwrap();
    let annals = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = annals(&["archive", "--before", "2026-11", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = report["path"].as_str().unwrap().to_string();
    assert_eq!(report["months"], serde_json::json!(["2026-09", "2026-10"]));

    std::fs::write(dir.path().join("archive").join("junk.annarc"), b"not an archive").unwrap();
    let out = annals(&["archive", "list", "--format", "json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[1]["months"], report["months"]);
    assert_eq!(list[1]["rows"], report["rows"]);
    assert!(list[0]["error"].as_str().unwrap().contains("junk.annarc"), "{list}");
    // The CLI prints the library's report as it is, so a server can return the same.
    let engine = Engine::open(dir.path(), lifecycle_options()).unwrap();
    assert_eq!(list, serde_json::to_value(engine.archives().unwrap()).unwrap());
    engine.close().unwrap();
    let out = annals(&["compact", "--full", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let optimized: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["compaction", "text_months_merged", "orphans_removed"] {
        assert!(optimized.get(key).is_some(), "{key} missing in {optimized}");
    }
    std::fs::remove_file(dir.path().join("archive").join("junk.annarc")).unwrap();

    let out = annals(&["archive", "--before", "2026-13"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a month"));

    let out = annals(&["restore", &path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("restored 2026-09, 2026-10"));
    let out = annals(&["restore", &path]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds data") && !stderr.contains("verify"), "{stderr}");
}
