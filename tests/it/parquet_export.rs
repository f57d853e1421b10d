//! Parquet exports read back with the `parquet` crate's reader: every row and value equal
//! to the query's, across several row groups, for raw, aggregated and log rows; a value
//! that does not fit its column is refused by name.

use crate::common::options;
use annals::query::QuerySpec;
use annals::query::export::{ExportFormat, ExportOptions, export_rows};
use annals::{Batch, Engine, FieldValue, Query, SeriesKey};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

const BASE: i64 = 1_700_000_000_000_000_000;

fn query(spec: serde_json::Value) -> Query {
    QuerySpec::from_json(&spec).unwrap().to_query(BASE).unwrap()
}

fn export(engine: &Engine, query: &Query, integer_times: bool) -> annals::Result<(Vec<u8>, u64)> {
    let mut result = engine.snapshot().query(query)?;
    let mut out = Vec::new();
    let mut progress_calls = 0;
    let options = ExportOptions {
        format: ExportFormat::Parquet,
        integer_times,
    };
    let summary = export_rows(&mut result, None, options, &mut out, &mut |_| progress_calls += 1)?;
    assert_eq!(summary.bytes, out.len() as u64);
    assert!(progress_calls >= 1);
    Ok((out, summary.rows))
}

/// The file's rows as (column name, field) lists, and its row-group count.
fn read(bytes: Vec<u8>) -> (Vec<Vec<(String, Field)>>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    std::fs::write(&path, bytes).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let groups = reader.metadata().num_row_groups();
    let rows = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect())
        .collect();
    (rows, groups)
}

/// The Parquet field a query value is written as.
fn expected(value: &Option<FieldValue>) -> Field {
    match value {
        None => Field::Null,
        Some(FieldValue::F64(v)) => Field::Double(*v),
        Some(FieldValue::I64(v)) => Field::Long(*v),
        Some(FieldValue::Bool(v)) => Field::Bool(*v),
        Some(FieldValue::Str(v)) => Field::Str(v.clone()),
        Some(FieldValue::Bytes(v)) => Field::Bytes(v.clone().into()),
    }
}

fn assert_same_rows(engine: &Engine, query: &Query, file: Vec<u8>) -> usize {
    let result = engine.snapshot().query(query).unwrap();
    let columns = result.columns();
    let (rows, _) = result.collect_rows().unwrap();
    let (read, groups) = read(file);
    assert_eq!(read.len(), rows.len());
    for (index, (row, got)) in rows.iter().zip(&read).enumerate() {
        let mut want: Vec<Field> = Vec::new();
        if columns.first().map(String::as_str) == Some("time") {
            want.push(row.time.map_or(Field::Null, Field::Long));
        }
        want.extend(row.tags.iter().map(|t| t.clone().map_or(Field::Null, Field::Str)));
        want.extend(row.values.iter().map(expected));
        let names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
        assert_eq!(names, columns.iter().collect::<Vec<_>>(), "row {index}");
        let fields: Vec<Field> = got.iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(fields, want, "row {index}");
    }
    groups
}

fn write_metrics(engine: &Engine, rows: i64) {
    let mut batch = Batch::new();
    for i in 0..rows {
        let host = format!("h{}", i % 3);
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", &host).unwrap();
        let mut fields: Vec<(&str, FieldValue)> = vec![("usage", FieldValue::F64((i % 1000) as f64 / 8.0))];
        if i % 5 != 0 {
            fields.push(("count", FieldValue::I64(i)));
        }
        if i % 7 == 0 {
            fields.push(("up", FieldValue::Bool(i % 2 == 0)));
        }
        batch.add_row(&key, BASE + i * 1_000_000_000, fields).unwrap();
        if batch.len() >= 50_000 {
            engine.write(&batch).unwrap();
            batch = Batch::new();
        }
    }
    engine.write(&batch).unwrap();
}

#[test]
fn raw_and_aggregated_rows_read_back_equal_across_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    // More rows than two row groups hold, part flushed to a segment and part in the head.
    let rows = annals::query::parquet::ROW_GROUP_ROWS as i64 * 2 + 1_000;
    write_metrics(&engine, rows - 10_000);
    engine.flush().unwrap();
    let mut batch = Batch::new();
    for i in rows - 10_000..rows {
        let key = SeriesKey::metric("cpu").unwrap().with_tag("host", format!("h{}", i % 3)).unwrap();
        batch
            .add_row(&key, BASE + i * 1_000_000_000, vec![("usage", FieldValue::F64(0.25))])
            .unwrap();
    }
    engine.write(&batch).unwrap();

    let raw = query(serde_json::json!({"measurement": "cpu"}));
    let (file, written) = export(&engine, &raw, false).unwrap();
    assert_eq!(written, rows as u64);
    assert_eq!(assert_same_rows(&engine, &raw, file), 3);

    let aggregated =
        query(serde_json::json!({"measurement": "cpu", "field": "usage", "agg": "max,count", "every": "1h", "group_by": "host"}));
    let (file, _) = export(&engine, &aggregated, true).unwrap();
    assert_eq!(assert_same_rows(&engine, &aggregated, file), 1);

    // Without `every` an aggregate has no time column.
    let total = query(serde_json::json!({"measurement": "cpu", "field": "count", "agg": "sum"}));
    let (file, _) = export(&engine, &total, false).unwrap();
    assert_same_rows(&engine, &total, file);

    // An empty answer is a valid file with no rows.
    let empty = query(serde_json::json!({"measurement": "cpu", "where": "host=nobody"}));
    let (file, written) = export(&engine, &empty, false).unwrap();
    assert_eq!(written, 0);
    assert_eq!(read(file).0.len(), 0);
}

#[test]
fn log_records_keep_their_text_and_a_misfit_value_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    let key = SeriesKey::metric("events").unwrap();
    let rows = annals::query::parquet::ROW_GROUP_ROWS as i64 + 10;
    for i in 0..rows {
        // `detail` is a float in the first row group and text in its last rows.
        let detail = if i < rows - 5 {
            FieldValue::F64(i as f64)
        } else {
            FieldValue::Str(format!("late, \"quoted\" text {i}"))
        };
        batch
            .add_row(
                &key,
                BASE + i,
                vec![("message", FieldValue::Str(format!("line {i} ünïcode"))), ("detail", detail)],
            )
            .unwrap();
    }
    engine.write(&batch).unwrap();
    let all = query(serde_json::json!({"measurement": "events"}));
    match export(&engine, &all, false) {
        Err(annals::Error::InvalidInput { reason, .. }) => {
            assert!(
                reason.contains(&format!("row {}", rows - 4)) && reason.contains("\"detail\"") && reason.contains("a string value"),
                "{reason}"
            );
        }
        other => panic!("expected the late string to be refused, got {:?}", other.map(|(_, rows)| rows)),
    }
    // Selecting the text alone exports every row.
    let messages = query(serde_json::json!({"measurement": "events", "field": "message"}));
    let (file, written) = export(&engine, &messages, false).unwrap();
    assert_eq!(written, rows as u64);
    assert_eq!(assert_same_rows(&engine, &messages, file), 2);
}
