//! Partitioned Parquet exports (`annals::dataset`), read back with the `parquet` crate:
//! every row of the store exactly once, in the folder of its kind and month, times in
//! microseconds; reruns write only what is new (appended rows, a month with late rows
//! written again, nothing when nothing changed); a destination holding something else is
//! refused; a failed or killed export leaves no partial file visible, and the next run
//! completes it.

use crate::common::{env_count, files_under, log_entry, options, run_cli_killed_at_random, scan_all, seed};
use annals::dataset::{DatasetOptions, DatasetSummary, Destination, MANIFEST_NAME, PartitionKey, export_dataset};
use annals::fs::{Fault, FaultyFileSystem, Op};
use annals::{Batch, Engine, Error, FieldValue, LogLevel, Options, SeriesKey};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// 2016-01-01T00:00:00Z.
pub const BASE: i64 = 1_451_606_400_000_000_000;
pub const HOUR: i64 = 3_600_000_000_000;

/// A row as the export holds it: (kind, measurement, month folder, time in µs, host or
/// logger, value or message).
pub type ExportedRow = (String, String, String, i64, String, String);

/// `cpu` of three hosts every hour of hours `from..to` (one value 123 ns after the hour,
/// which a microsecond column rounds down), and a log record every fifth hour.
pub fn write_hours(engine: &Engine, from: i64, to: i64) {
    let mut batch = Batch::new();
    for hour in from..to {
        for host in 0..3 {
            let key = SeriesKey::metric("cpu").unwrap().with_tag("host", format!("h{host}")).unwrap();
            let value = FieldValue::F64(hour as f64 * 0.5 + host as f64);
            batch.add_row(&key, BASE + hour * HOUR + 123, [("usage", value)]).unwrap();
        }
        if hour % 5 == 0 {
            batch
                .add_log(&log_entry(BASE + hour * HOUR, LogLevel::Info, "svc", format!("hour {hour} done")))
                .unwrap();
        }
    }
    engine.write(&batch).unwrap();
}

/// What the store holds (`cpu` and `log`), as the export should hold it.
fn store_rows(engine: &Engine) -> Vec<ExportedRow> {
    store_rows_of(engine, &["cpu"])
}

/// What the store holds (the metrics `measurements`, each with a `host` tag and a `usage`
/// field, and `log`), as the export should hold it.
pub fn store_rows_of(engine: &Engine, measurements: &[&str]) -> Vec<ExportedRow> {
    let mut out = Vec::new();
    for row in measurements.iter().flat_map(|m| scan_all(engine, m)) {
        let host = row.key.tags().iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone()).unwrap();
        let value = match row.fields.iter().find(|(f, _)| &**f == "usage").map(|(_, v)| v) {
            Some(FieldValue::F64(v)) => format!("{v}"),
            other => panic!("cpu row without usage: {other:?}"),
        };
        let month = annals::Month::of(row.timestamp).to_string();
        let measurement = row.key.measurement().to_string();
        out.push(("metric".into(), measurement, month, row.timestamp.div_euclid(1000), host, value));
    }
    for row in scan_all(engine, "log") {
        let message = match row.fields.iter().find(|(f, _)| &**f == "message").map(|(_, v)| v) {
            Some(FieldValue::Str(s)) => s.clone(),
            other => panic!("log row without a message: {other:?}"),
        };
        let logger = row
            .key
            .tags()
            .iter()
            .find(|(k, _)| k == "logger_name")
            .map(|(_, v)| v.clone())
            .unwrap();
        let month = annals::Month::of(row.timestamp).to_string();
        out.push(("log".into(), "log".into(), month, row.timestamp.div_euclid(1000), logger, message));
    }
    out.sort();
    out
}

/// Every row of every visible Parquet file under `root` (hidden files are not part of the
/// dataset), with the kind and month of its folder.
pub fn exported_rows(root: &Path) -> Vec<ExportedRow> {
    let mut out = Vec::new();
    for file in files_under(root) {
        let name = file.rsplit('/').next().unwrap();
        if name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        let folder = |key: &str| {
            file.split('/')
                .find_map(|part| part.strip_prefix(&format!("{key}=")).map(str::to_string))
                .unwrap_or_else(|| panic!("{file} is in no {key}= folder"))
        };
        let (kind, month) = (folder("kind"), folder("month"));
        let reader = SerializedFileReader::new(std::fs::File::open(root.join(&file)).unwrap())
            .unwrap_or_else(|e| panic!("{file} is not a whole Parquet file: {e}"));
        for row in reader.get_row_iter(None).unwrap() {
            let columns: BTreeMap<String, Field> = row.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect();
            let time = match &columns["time"] {
                Field::TimestampMicros(t) => *t,
                other => panic!("{file}: time is {other:?}, not microseconds"),
            };
            let text = |name: &str| match columns.get(name) {
                Some(Field::Str(s)) => s.clone(),
                Some(Field::Double(v)) => format!("{v}"),
                other => panic!("{file}: column {name} is {other:?}"),
            };
            let (who, what) = if kind == "log" {
                (text("logger_name"), text("message"))
            } else {
                (text("host"), text("usage"))
            };
            out.push((kind.clone(), text("measurement"), month.clone(), time, who, what));
        }
    }
    out.sort();
    out
}

fn dataset(to: &Path, incremental: bool) -> DatasetOptions {
    DatasetOptions {
        incremental,
        ..DatasetOptions::new(Destination::Directory(to.to_path_buf()))
    }
}

fn export(engine: &Engine, options: &DatasetOptions) -> annals::Result<DatasetSummary> {
    let mut calls = 0;
    let summary = export_dataset(engine, options, &mut |_| calls += 1);
    if summary.is_ok() {
        assert!(calls >= 1, "progress is reported");
    }
    summary
}

fn parquet_files(root: &Path) -> Vec<String> {
    files_under(root).into_iter().filter(|f| f.ends_with(".parquet")).collect()
}

#[test]
fn a_partitioned_export_holds_every_row_once_and_reruns_add_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("store"), options()).unwrap();
    // January and half of February; part of it flushed to segments, part in the head.
    write_hours(&engine, 0, 24 * 31);
    engine.flush().unwrap();
    write_hours(&engine, 24 * 31, 24 * 45);
    let out = dir.path().join("export");

    let first = export(&engine, &dataset(&out, false)).unwrap();
    assert_eq!(
        (first.units_new, first.files_written, first.units_unchanged),
        (4, 4, 0),
        "cpu and log in January and February: {first:?}"
    );
    assert_eq!(
        parquet_files(&out),
        [
            "kind=log/month=2016-01/part-00000.parquet",
            "kind=log/month=2016-02/part-00000.parquet",
            "kind=metric/month=2016-01/part-00000.parquet",
            "kind=metric/month=2016-02/part-00000.parquet",
        ]
    );
    let expected = store_rows(&engine);
    assert_eq!(first.rows, expected.len() as u64);
    assert_eq!(exported_rows(&out), expected);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(MANIFEST_NAME)).unwrap()).unwrap();
    assert_eq!(manifest["units"].as_array().unwrap().len(), 4);
    assert_eq!(manifest["partition"], serde_json::json!(["kind", "month"]));

    // Nothing new: nothing written.
    let again = export(&engine, &dataset(&out, true)).unwrap();
    assert_eq!((again.files_written, again.units_unchanged, again.rows), (0, 4, 0), "{again:?}");

    // Newer rows: one new file in February, none elsewhere; a new month gets its own.
    write_hours(&engine, 24 * 45, 24 * 61);
    let appended = export(&engine, &dataset(&out, true)).unwrap();
    assert_eq!(
        (
            appended.units_appended,
            appended.units_new,
            appended.units_unchanged,
            appended.units_rewritten
        ),
        (2, 2, 2, 0),
        "{appended:?}"
    );
    assert!(parquet_files(&out).contains(&"kind=metric/month=2016-02/part-00001.parquet".to_string()));
    assert!(parquet_files(&out).contains(&"kind=metric/month=2016-03/part-00000.parquet".to_string()));
    assert_eq!(exported_rows(&out), store_rows(&engine));

    // A late row in January: January's cpu is written again whole and its old file goes.
    let mut late = Batch::new();
    let key = SeriesKey::metric("cpu").unwrap().with_tag("host", "h9").unwrap();
    late.add_row(&key, BASE + 5 * HOUR, [("usage", FieldValue::F64(-1.0))]).unwrap();
    engine.write(&late).unwrap();
    let rewritten = export(&engine, &dataset(&out, true)).unwrap();
    assert_eq!((rewritten.units_rewritten, rewritten.files_removed), (1, 1), "{rewritten:?}");
    assert_eq!(rewritten.rows, 24 * 31 * 3 + 1);
    let files = parquet_files(&out);
    assert!(
        !files.contains(&"kind=metric/month=2016-01/part-00000.parquet".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"kind=metric/month=2016-01/part-00001.parquet".to_string()),
        "{files:?}"
    );
    assert_eq!(exported_rows(&out), store_rows(&engine));
    engine.close().unwrap();
}

#[test]
fn selection_partition_and_range_shape_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("store"), options()).unwrap();
    write_hours(&engine, 0, 24 * 40);
    let out = dir.path().join("export");
    let options = DatasetOptions {
        partition: vec![PartitionKey::Measurement, PartitionKey::Month],
        kind: Some(annals::SeriesKind::Metric),
        predicates: vec!["host in (h0, h2)".into()],
        from: Some(BASE + 24 * 10 * HOUR),
        to: Some(BASE + 24 * 35 * HOUR),
        ..dataset(&out, false)
    };
    let summary = export(&engine, &options).unwrap();
    assert_eq!(
        parquet_files(&out),
        [
            "measurement=cpu/month=2016-01/part-00000.parquet",
            "measurement=cpu/month=2016-02/part-00000.parquet",
        ]
    );
    assert_eq!(summary.rows, 24 * 25 * 2, "25 days of two hosts");
    let file = out.join("measurement=cpu/month=2016-01/part-00000.parquet");
    let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    // `kind` is a column (not a folder here); `measurement` is a folder, not a column.
    assert_eq!(columns, ["time", "kind", "host", "usage"]);
    // A later run with a later end continues where the first stopped.
    let grown = DatasetOptions {
        to: Some(BASE + 24 * 40 * HOUR),
        incremental: true,
        ..options.clone()
    };
    let summary = export(&engine, &grown).unwrap();
    assert_eq!((summary.units_appended, summary.rows), (1, 24 * 5 * 2), "{summary:?}");
    engine.close().unwrap();
}

#[test]
fn a_destination_holding_something_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("store"), options()).unwrap();
    write_hours(&engine, 0, 48);
    let out = dir.path().join("export");
    export(&engine, &dataset(&out, false)).unwrap();
    let reason = |e: Error| match e {
        Error::InvalidInput { reason, .. } => reason,
        other => panic!("expected an invalid input, got {other:?}"),
    };
    let again = reason(export(&engine, &dataset(&out, false)).unwrap_err());
    assert!(
        again.contains("already holds an annals export") && again.contains("--incremental"),
        "{again}"
    );
    let other_selection = DatasetOptions {
        measurement: Some("cpu".into()),
        ..dataset(&out, true)
    };
    let mixed = reason(export(&engine, &other_selection).unwrap_err());
    assert!(
        mixed.contains("holds an export of everything") && mixed.contains("--measurement cpu"),
        "{mixed}"
    );
    let other_partition = DatasetOptions {
        partition: vec![PartitionKey::Month],
        ..dataset(&out, true)
    };
    let mixed = reason(export(&engine, &other_partition).unwrap_err());
    assert!(
        mixed.contains("partitioned by kind,month") && mixed.contains("partitioned by month"),
        "{mixed}"
    );

    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let refused = reason(export(&engine, &dataset(&foreign, true)).unwrap_err());
    assert!(refused.contains("is not empty (it holds notes.txt)"), "{refused}");
    assert_eq!(files_under(&foreign), ["notes.txt"], "nothing was written");

    let reversed = DatasetOptions {
        from: Some(BASE + HOUR),
        to: Some(BASE),
        ..dataset(&dir.path().join("empty"), false)
    };
    assert!(reason(export(&engine, &reversed).unwrap_err()).contains("range is empty"));
    engine.close().unwrap();
}

/// A file system fault at each write, fsync and rename of an export in turn: the export
/// fails, no partial file is visible, and the next run (without faults) leaves exactly the
/// store's rows.
#[test]
fn a_failed_export_leaves_no_partial_file_and_the_next_run_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
    let engine = Engine::open(
        dir.path().join("store"),
        Options {
            file_system: Arc::new(fs.clone()),
            ..options()
        },
    )
    .unwrap();
    write_hours(&engine, 0, 24 * 70);
    engine.flush().unwrap();
    let expected = store_rows(&engine);
    let mut failures = 0;
    for op in [Op::Write, Op::Sync, Op::Rename, Op::Create] {
        for n in [1u64, 2, 3, 5, 8] {
            let out = dir.path().join(format!("export-{op:?}-{n}"));
            let context = format!("fault at {op:?} #{n}");
            fs.fail_nth(op, n, Fault::Io);
            let failed = export(&engine, &dataset(&out, true));
            fs.stop_failing();
            if let Err(e) = &failed {
                failures += 1;
                assert!(matches!(e, Error::Io { .. }), "{context}: {e:?}");
            }
            for file in parquet_files(&out) {
                let name = file.rsplit('/').next().unwrap();
                if !name.starts_with('.') {
                    // Every visible file is whole.
                    SerializedFileReader::new(std::fs::File::open(out.join(&file)).unwrap())
                        .unwrap_or_else(|e| panic!("{context}: {file} is partial: {e}"));
                }
            }
            export(&engine, &dataset(&out, true)).unwrap_or_else(|e| panic!("{context}: the rerun failed: {e}"));
            assert_eq!(exported_rows(&out), expected, "{context}");
            assert!(
                files_under(&out).iter().all(|f| !f.ends_with(".tmp")),
                "{context}: {:?}",
                files_under(&out)
            );
        }
    }
    assert!(failures >= 15, "most injected faults hit the export: {failures}");
    engine.close().unwrap();
}

/// `annals export --format parquet --to DIR` killed (SIGKILL) at random points: every
/// visible file is whole, and a rerun with --incremental leaves exactly the store's rows.
#[test]
fn an_export_killed_at_random_leaves_only_whole_files() {
    let seed = seed();
    println!("seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let engine = Engine::open(&store, options()).unwrap();
    for month in 0..6 {
        write_hours(&engine, month * 24 * 31, (month + 1) * 24 * 31);
        // Several thousand rows per file, so a kill can land inside one.
        let mut batch = Batch::new();
        for i in 0..40_000i64 {
            let key = SeriesKey::metric("disk").unwrap().with_tag("host", format!("h{}", i % 16)).unwrap();
            batch
                .add_row(
                    &key,
                    BASE + month * 31 * 24 * HOUR + i * 60_000_000_000 / 16,
                    [("used", FieldValue::I64(i))],
                )
                .unwrap();
        }
        engine.write(&batch).unwrap();
    }
    engine.flush().unwrap();
    let expected_rows: u64 = {
        let disk = scan_all(&engine, "disk").len() as u64;
        disk + store_rows(&engine).len() as u64
    };
    engine.close().unwrap();
    let rounds = env_count("ANNALS_CRASH_ITERATIONS", 6);
    let mut full_run = std::time::Duration::ZERO;
    for round in 0..=rounds {
        let out = dir.path().join(format!("export-{round}"));
        let context = format!("seed {seed} round {round}");
        let args = ["export", "--format", "parquet", "--to", out.to_str().unwrap(), "--incremental"];
        run_cli_killed_at_random(&store, &args, round, &mut full_run, &mut rng, &context);
        if out.exists() {
            for file in parquet_files(&out) {
                if !file.rsplit('/').next().unwrap().starts_with('.') {
                    SerializedFileReader::new(std::fs::File::open(out.join(&file)).unwrap())
                        .unwrap_or_else(|e| panic!("{context}: {file} is partial: {e}"));
                }
            }
        }
        let finished = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        assert!(
            finished.status.success(),
            "{context}: {}",
            String::from_utf8_lossy(&finished.stderr)
        );
        let rows: u64 = parquet_files(&out)
            .iter()
            .map(|f| {
                let reader = SerializedFileReader::new(std::fs::File::open(out.join(f)).unwrap()).unwrap();
                reader.metadata().file_metadata().num_rows() as u64
            })
            .sum();
        assert_eq!(rows, expected_rows, "{context}: every row once");
    }
}
