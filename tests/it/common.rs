//! Helpers shared by the integration tests.

#![allow(dead_code)]

use annals::{Engine, FieldValue, Options, ScanRequest, ScanRow, SeriesSelector};

/// Seed for randomised tests: `ANNALS_TEST_SEED` or a fixed default. Tests print it when
/// they fail.
pub fn seed() -> u64 {
    std::env::var("ANNALS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x616e_6e61_6c73)
}

/// Options for tests: no background thread, so flushes happen where the test says.
pub fn options() -> Options {
    Options {
        background_flush: false,
        compaction: annals::CompactionOptions {
            background: false,
            ..annals::CompactionOptions::default()
        },
        retention: annals::lifecycle::RetentionOptions::manual(),
        ..Options::default()
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Copies a directory tree (a closed store) to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &entry.path(), out);
            } else {
                out.push(entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every row of a measurement, oldest first.
pub fn scan_all(engine: &Engine, measurement: &str) -> Vec<ScanRow> {
    scan_selected(engine, SeriesSelector::measurement(measurement))
}

/// Every row of the selected series, oldest first.
pub fn scan_selected(engine: &Engine, selector: SeriesSelector) -> Vec<ScanRow> {
    engine
        .snapshot()
        .scan(&ScanRequest {
            selector,
            ..ScanRequest::default()
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// (timestamp, field, value) triples of rows, for comparisons.
pub fn points(rows: &[ScanRow]) -> Vec<(String, i64, String, FieldValue)> {
    rows.iter()
        .flat_map(|r| {
            r.fields
                .iter()
                .map(move |(f, v)| (r.key.to_string(), r.timestamp, f.to_string(), v.clone()))
        })
        .collect()
}

/// Runs `annals --data <store> <args>` for a crash test round: round 0 runs to the end and
/// sets `full_run` to its duration; later rounds are killed (SIGKILL) after a random part
/// (0 to 110%) of it. Returns whether the command finished by itself.
pub fn run_cli_killed_at_random(
    store: &std::path::Path,
    args: &[&str],
    round: u64,
    full_run: &mut std::time::Duration,
    rng: &mut impl rand::Rng,
    context: &str,
) -> bool {
    // Its stderr goes to a file, shown when an uninterrupted run fails.
    let stderr = tempfile::tempfile().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    if round > 0 {
        std::thread::sleep(full_run.mul_f64(rng.random_range(0.0..1.1)));
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    if round == 0 && !status.success() {
        use std::io::{Read, Seek};
        let mut said = String::new();
        let mut stderr = stderr;
        let _ = stderr.seek(std::io::SeekFrom::Start(0));
        let _ = stderr.read_to_string(&mut said);
        panic!("{context}: annals {args:?} failed ({status}): {said}");
    }
    if round == 0 {
        *full_run = started.elapsed();
    }
    status.success()
}

/// Asserts that `data/` holds exactly `listed` segment files and no temporary files.
pub fn assert_no_stray_files(store: &std::path::Path, listed: u64, context: &str) {
    let files = files_under(&store.join("data"));
    let on_disk = files.iter().filter(|f| f.ends_with(".seg")).count() as u64;
    assert_eq!(on_disk, listed, "{context}: files the manifest does not list remain: {files:?}");
    assert!(
        !files.iter().any(|f| f.ends_with(".tmp")),
        "{context}: temporary files remain: {files:?}"
    );
}

/// Runs `annals verify` (every checksum and cross-reference) on a closed store and fails
/// with its problems when it is not clean. Every test that damages, crashes or faults a
/// store ends with this.
pub fn assert_verifies(store: &std::path::Path, context: &str) {
    let report = annals::verify::verify(store, false).unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    assert!(report.is_clean(), "{context}: verify found problems: {:?}", report.problems);
}

/// A log record with only the fields the tests vary.
pub fn log_entry(timestamp: i64, level: annals::LogLevel, logger: &str, message: String) -> annals::LogEntry {
    annals::LogEntry::new(timestamp, level, logger, message)
}

/// A count from the environment variable `name` (e.g. `ANNALS_CRASH_ITERATIONS`, the rounds
/// of the SIGKILL crash tests), or `default`. Zero is refused: a randomised test that runs
/// no case checks nothing and must not pass.
pub fn env_count(name: &str, default: u64) -> u64 {
    let count = std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    assert!(count > 0, "{name}=0 would check nothing");
    count
}

/// The row count of an `annals ingest --progress json` line (`{"durable_rows":N,...}`).
pub fn durable_rows(line: &str) -> Option<u64> {
    line.strip_prefix("{\"durable_rows\":")?.split(',').next()?.parse().ok()
}
