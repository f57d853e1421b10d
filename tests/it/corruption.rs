//! Corruption: any single damaged byte of a segment or of a WAL record before the tail is
//! reported as corruption and never returned as data.

use crate::common::{options, seed};
use annals::{Batch, Engine, Error, FieldValue, LogEntry, LogLevel, ScanRequest, ScanRow, SeriesKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

fn fill(engine: &Engine, rounds: usize) {
    for round in 0..rounds {
        let mut batch = Batch::new();
        for i in 0..20i64 {
            let key = SeriesKey::metric("cpu").unwrap().with_tag("host", format!("h{}", i % 3)).unwrap();
            let ts = 1_451_606_400_000_000_000 + (round as i64 * 20 + i) * 10_000_000_000;
            batch
                .add_row(
                    &key,
                    ts,
                    [("usage", FieldValue::F64(i as f64 * 1.25)), ("count", FieldValue::I64(i * 7 - 50))],
                )
                .unwrap();
            if i % 4 == 0 {
                batch
                    .add_log(&LogEntry {
                        timestamp: ts,
                        level: LogLevel::Warning,
                        logger_name: "disk".into(),
                        message: format!("disk {i} almost full"),
                        module: None,
                        function_name: None,
                        line_number: Some(i),
                        thread_id: None,
                        process_id: None,
                        extra_data: Default::default(),
                        tags: Default::default(),
                    })
                    .unwrap();
            }
        }
        engine.write(&batch).unwrap();
    }
}

fn everything(engine: &Engine) -> Result<Vec<ScanRow>, Error> {
    engine.snapshot().scan(&ScanRequest::default())?.collect()
}

/// Opens and scans the damaged store: the outcome must be a corruption error or exactly the
/// original rows. Returns true when damage was reported.
fn open_and_scan(dir: &Path, expected: &[ScanRow], context: &str) -> bool {
    let engine = match Engine::open(dir, options()) {
        Ok(e) => e,
        Err(e) if e.is_corruption() => return true,
        Err(e) => panic!("{context}: open failed with a non-corruption error: {e}"),
    };
    match everything(&engine) {
        Ok(rows) => {
            assert_eq!(rows, expected, "{context}: damaged bytes were returned as data");
            false
        }
        Err(e) if e.is_corruption() => true,
        Err(e) => panic!("{context}: scan failed with a non-corruption error: {e}"),
    }
}

fn only_file(dir: &Path, extension: &str) -> PathBuf {
    let mut found = Vec::new();
    for entry in walk(dir) {
        if entry.extension().and_then(|e| e.to_str()) == Some(extension) {
            found.push(entry);
        }
    }
    assert_eq!(found.len(), 1, "expected one .{extension} file, found {found:?}");
    found.remove(0)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_damaged_segment_byte_is_reported() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 3);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let expected = everything(&engine).unwrap();
    drop(engine);
    let segment = only_file(&dir.path().join("data"), "seg");
    let original = std::fs::read(&segment).unwrap();
    let mut reported_by_reads = 0;
    for offset in 0..original.len() {
        let mut damaged = original.clone();
        damaged[offset] ^= rng.random_range(1..=255u8);
        std::fs::write(&segment, &damaged).unwrap();
        let context = format!("seed {}, segment byte {offset} of {}", seed(), original.len());
        if open_and_scan(dir.path(), &expected, &context) {
            reported_by_reads += 1;
        }
        let report = annals::verify::verify(dir.path(), false).unwrap();
        assert!(!report.is_clean(), "{context}: verify did not notice");
    }
    std::fs::write(&segment, &original).unwrap();
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
    // Reads check block checksums only for blocks they decode; a full scan decodes all.
    assert_eq!(reported_by_reads, original.len(), "every damaged byte must surface on a full read");
}

#[test]
fn every_damaged_byte_before_the_last_wal_record_is_reported() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 1);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 4);
    drop(engine);
    let wal = only_file(&dir.path().join("wal"), "wal");
    let original = std::fs::read(&wal).unwrap();
    // Where the last record starts: records follow the 24-byte header, framed by their
    // length (12-byte header + payload + 4-byte crc).
    let mut pos = 24usize;
    let mut last_start = pos;
    while pos < original.len() {
        last_start = pos;
        let len = u32::from_le_bytes(original[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 16 + len;
    }
    assert_eq!(pos, original.len());
    assert!(last_start > 24, "need more than one record");
    for offset in 0..last_start {
        let mut damaged = original.clone();
        damaged[offset] ^= rng.random_range(1..=255u8);
        std::fs::write(&wal, &damaged).unwrap();
        let context = format!("seed {}, WAL byte {offset} of {}", seed(), original.len());
        match Engine::open(dir.path(), options()) {
            Err(e) if e.is_corruption() => {}
            Err(e) => panic!("{context}: open failed with a non-corruption error: {e}"),
            Ok(_) => panic!("{context}: the damaged WAL was replayed"),
        }
        let report = annals::verify::verify(dir.path(), false).unwrap();
        assert!(!report.is_clean(), "{context}: verify did not notice");
        assert_eq!(
            std::fs::read(&wal).unwrap(),
            damaged,
            "{context}: a failed open must not modify the WAL"
        );
    }
    std::fs::write(&wal, &original).unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(everything(&engine).unwrap().len(), 4 * 25);
}

#[test]
fn repair_drops_damage_and_the_store_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 2);
    engine.flush().unwrap();
    fill(&engine, 3);
    drop(engine);
    // Damage the first WAL record (so later ones are lost) and the segment.
    let wal = only_file(&dir.path().join("wal"), "wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[40] ^= 0x55;
    std::fs::write(&wal, &bytes).unwrap();
    let segment = only_file(&dir.path().join("data"), "seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();

    assert!(Engine::open(dir.path(), options()).unwrap_err().is_corruption());
    let report = annals::verify::verify(dir.path(), true).unwrap();
    assert_eq!(report.problems.len(), 2, "{report:?}");
    // The WAL truncation, the quarantined segment, and the month's text index (it indexes
    // the quarantined rows; open rebuilds it).
    assert_eq!(report.repairs.len(), 3, "{report:?}");
    assert!(report.repairs.iter().any(|r| r.contains("text index")), "{report:?}");
    assert!(dir.path().join("quarantine").read_dir().unwrap().count() == 1);
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert!(everything(&engine).unwrap().is_empty(), "both damaged parts were dropped");
    fill(&engine, 1);
    assert_eq!(everything(&engine).unwrap().len(), 25);
}

#[test]
fn a_missing_wal_file_is_reported_and_repair_recreates_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 1);
    engine.close().unwrap();
    let wal = only_file(&dir.path().join("wal"), "wal");
    std::fs::remove_file(&wal).unwrap();
    assert!(Engine::open(dir.path(), options()).unwrap_err().is_corruption());
    let report = annals::verify::verify(dir.path(), true).unwrap();
    assert_eq!(report.repairs.len(), 1, "{report:?}");
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(everything(&engine).unwrap().len(), 25, "flushed rows are unaffected");
}

#[test]
fn a_wal_file_whose_header_never_reached_the_disk_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 1);
    drop(engine);
    // A crash while creating the next WAL file can leave its size without its bytes.
    let wal_dir = dir.path().join("wal");
    let last = only_file(&wal_dir, "wal");
    let number: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    std::fs::write(wal_dir.join(format!("{:020}.wal", number + 1)), [0u8; 24]).unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert!(engine.recovery_report().torn_tail.is_some());
    assert_eq!(everything(&engine).unwrap().len(), 25);
}

#[test]
fn a_wrong_tag_index_is_reported_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    fill(&engine, 1);
    engine.close().unwrap();
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
    // A tag index from another store: valid bytes, wrong contents.
    let other = tempfile::tempdir().unwrap();
    let engine = Engine::open(other.path(), options()).unwrap();
    let mut batch = Batch::new();
    for host in ["x", "y", "z", "w"] {
        batch
            .add_row(
                &SeriesKey::metric("cpu").unwrap().with_tag("host", host).unwrap(),
                1,
                [("v", FieldValue::I64(1))],
            )
            .unwrap();
    }
    engine.write(&batch).unwrap();
    engine.close().unwrap();
    std::fs::copy(other.path().join("TAGS"), dir.path().join("TAGS")).unwrap();
    let report = annals::verify::verify(dir.path(), true).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert!(engine.recovery_report().tag_index_rebuilt);
    let snapshot = engine.snapshot();
    assert_eq!(
        snapshot
            .select(&annals::SeriesSelector::measurement("cpu").with_tag("host", "h1"))
            .unwrap()
            .len(),
        1
    );
}
