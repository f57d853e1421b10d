//! Stores written by earlier versions of annals open, verify and answer. The fixture
//! `tests/fixtures/manifest-v1/` is a store written by the code of 2026-11 before the
//! manifest's version 2 (its files are the ones the fuzz seeds were taken from): a version
//! 1 MANIFEST listing one segment of January 2016, its CATALOG, the segment, and the WAL
//! file holding the same batch written again after the flush. No TAGS file: it is rebuilt.

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
