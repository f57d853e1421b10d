//! A real full disk: a store on a small tmpfs is filled by ingest until writes fail. The
//! failure must be a clear `DiskFull` error, the store must stay readable with every
//! acknowledged row, and writes must succeed again once space is freed (after a reopen
//! when the failure hit a flush, which poisons the handle).
//!
//! Mounting needs root; without it the test says so and checks nothing. Under `CI=true` as
//! root, a mount that fails is a failure, not a skip.

use crate::common::{assert_verifies, options, scan_all};
use annals::{Batch, Durability, Engine, Error, FieldValue, Options, SeriesKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn batch(rng: &mut ChaCha8Rng, first: i64) -> Batch {
    let mut batch = Batch::new();
    for n in first..first + 100 {
        let key = SeriesKey::metric("full").unwrap().with_tag("host", format!("h{}", n % 8)).unwrap();
        // Random text barely compresses, so the disk fills quickly.
        let text: String = (0..200).map(|_| rng.random_range(b'a'..=b'z') as char).collect();
        batch
            .add_row(
                &key,
                1_451_606_400_000_000_000 + n * 1_000_000_000,
                [("n", FieldValue::I64(n)), ("text", FieldValue::Str(text))],
            )
            .unwrap();
    }
    batch
}

fn store_options() -> Options {
    Options {
        durability: Durability::Sync,
        head_max_bytes: Some(256 << 10),
        // The compaction's free-space guard is not what is tested here.
        ..options()
    }
}

#[test]
fn filling_the_disk_fails_writes_clearly_and_freeing_space_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("tmpfs");
    let _tmpfs = match Tmpfs::mount(&mount_point, "12m") {
        Ok(t) => t,
        Err(why) => {
            // CI runs as root, where mounting must work: there a skip would hide the test.
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            assert!(
                !(root && std::env::var("CI").is_ok_and(|v| v == "true")),
                "the full-disk test cannot mount a tmpfs under CI as root: {why}"
            );
            eprintln!("SKIPPED: the full-disk test needs a small tmpfs and cannot mount one ({why})");
            return;
        }
    };
    let store = mount_point.join("store");
    // Ballast to free later: the disk is full with it in place.
    let ballast = mount_point.join("ballast");
    std::fs::write(&ballast, vec![7u8; 3 << 20]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(crate::common::seed());
    let engine = Engine::open(&store, store_options()).unwrap();
    let mut acknowledged = 0i64;
    let failure = loop {
        match engine.write(&batch(&mut rng, acknowledged)) {
            Ok(_) => acknowledged += 100,
            Err(e) => break e,
        }
        assert!(acknowledged < 1_000_000, "the disk never filled");
    };
    eprintln!("the disk filled after {acknowledged} rows: {failure}");
    // Either this write's WAL append hit the full disk (that batch fails, the handle stays
    // usable), or an earlier flush did (the batch that triggered it was durable and
    // acknowledged; the handle is poisoned and says why).
    let poisoned = match &failure {
        Error::DiskFull { .. } => !failure.is_retryable_disk_full(),
        Error::Poisoned { .. } => true,
        other => panic!("not a disk-full error: {other:?}"),
    };
    assert!(failure.to_string().contains("no space left on the device"), "{failure}");
    // Still readable, with every acknowledged row.
    assert_eq!(scan_all(&engine, "full").len() as i64, acknowledged);
    std::fs::remove_file(&ballast).unwrap();
    let engine = if poisoned {
        // The failure hit a flush: the handle refuses writes until reopened.
        assert!(matches!(engine.write(&batch(&mut rng, acknowledged)), Err(Error::Poisoned { .. })));
        drop(engine);
        Engine::open(&store, store_options()).unwrap()
    } else {
        engine
    };
    engine.write(&batch(&mut rng, acknowledged)).unwrap();
    acknowledged += 100;
    engine.flush().unwrap();
    assert_eq!(scan_all(&engine, "full").len() as i64, acknowledged);
    engine.close().unwrap();
    let engine = Engine::open(&store, store_options()).unwrap();
    let rows = scan_all(&engine, "full");
    assert_eq!(rows.len() as i64, acknowledged, "rows lost across the reopen");
    engine.close().unwrap();
    assert_verifies(&store, "after the disk was full");
}
