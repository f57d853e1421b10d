//! The history facade: typed records in and out, filters, alerts' lifecycle, atomic batches.

use crate::common::options;
use annals::history::{DataQuery, DataType, History, Record, RecordTable, TableValues};
use annals::{AlertEvent, AlertState, Error, FieldValue, LogEntry, LogLevel, MetricData, PerformanceData};

const T: i64 = 1_700_000_000_000_000_000;

fn log(i: i64, level: LogLevel, message: &str) -> LogEntry {
    LogEntry {
        timestamp: T + i,
        level,
        logger_name: "app".into(),
        message: message.into(),
        module: Some("pool".into()),
        function_name: Some("get".into()),
        line_number: Some(i),
        thread_id: Some(7),
        process_id: None,
        extra_data: [("attempt".to_string(), FieldValue::I64(i))].into(),
        tags: [("host".to_string(), "a".to_string())].into(),
    }
}

fn metric(i: i64) -> MetricData {
    MetricData {
        timestamp: T + i,
        metric_type: "cpu".into(),
        metric_name: "usage_percent".into(),
        value: i as f64 / 2.0,
        unit: Some("percent".into()),
        tags: [("host".to_string(), "a".to_string())].into(),
    }
}

fn perf(i: i64, component: &str) -> PerformanceData {
    PerformanceData {
        timestamp: T + i,
        component: component.into(),
        operation: "flush".into(),
        duration_ms: Some(1.5),
        throughput: None,
        efficiency_percent: Some(99.0),
        error_count: 0,
        metadata: [("batch".to_string(), FieldValue::I64(64))].into(),
        tags: Default::default(),
    }
}

fn alert(i: i64) -> AlertEvent {
    AlertEvent {
        timestamp: T + i,
        alert_id: "disk-1".into(),
        state: AlertState::Raised,
        level: LogLevel::Warning,
        category: "SYSTEM".into(),
        title: "Disk almost full".into(),
        description: Some("/var at 91%".into()),
        source_component: Some("disk".into()),
        metadata: Default::default(),
    }
}

#[test]
fn records_round_trip_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    history.store_metrics(&[metric(1), metric(2)]).unwrap();
    history
        .store_logs(&[
            log(3, LogLevel::Error, "Connection LOST to db-2"),
            log(4, LogLevel::Info, "reconnected"),
        ])
        .unwrap();
    history.store_performance_data(&[perf(5, "buffer"), perf(6, "stream")]).unwrap();
    history.store_alert(&alert(7)).unwrap();
    history.engine().flush().unwrap();

    let all = history.query_data(&DataQuery::default()).unwrap();
    assert_eq!(all.total_count, Some(7));
    assert_eq!(all.rows.len(), 7);
    assert_eq!(all.rows[0], Record::Alert(alert(7)), "newest first");
    assert_eq!(all.rows[6], Record::Metric(metric(1)));
    assert!(all.rows.contains(&Record::Log(log(3, LogLevel::Error, "Connection LOST to db-2"))));
    assert!(all.rows.contains(&Record::Performance(perf(5, "buffer"))));

    let errors = history
        .query_data(&DataQuery {
            data_types: vec![DataType::Logs, DataType::Alerts],
            levels: vec![LogLevel::Error],
            ..DataQuery::default()
        })
        .unwrap();
    assert_eq!(errors.rows, vec![Record::Log(log(3, LogLevel::Error, "Connection LOST to db-2"))]);

    let buffer = history
        .query_data(&DataQuery {
            data_types: vec![DataType::Performance],
            components: vec!["buffer".into()],
            ..DataQuery::default()
        })
        .unwrap();
    assert_eq!(buffer.rows, vec![Record::Performance(perf(5, "buffer"))]);

    let found = history
        .query_data(&DataQuery {
            search_text: Some("connection lost".into()),
            ..DataQuery::default()
        })
        .unwrap();
    assert_eq!(found.rows.len(), 1);
    assert_eq!(found.total_count, Some(1), "the text index counts matches");

    let window = history
        .query_data(&DataQuery {
            start_time: Some(T + 2),
            end_time: Some(T + 5),
            order_desc: false,
            ..DataQuery::default()
        })
        .unwrap();
    assert_eq!(
        window.rows.iter().map(Record::timestamp).collect::<Vec<_>>(),
        vec![T + 2, T + 3, T + 4]
    );
    let refused = history
        .query_data(&DataQuery {
            limit: 0,
            ..DataQuery::default()
        })
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidInput { reason, .. } if reason == "limit 0 is outside 1..=1000"),
        "{refused}"
    );
}

#[test]
fn pages_follow_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let logs: Vec<LogEntry> = (0..25).map(|i| log(i, LogLevel::Info, &format!("line {i}"))).collect();
    history.store_logs(&logs).unwrap();
    let mut request = DataQuery {
        limit: 10,
        ..DataQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = history.query_data(&request).unwrap();
        assert_eq!(page.total_count, Some(25));
        seen.extend(page.rows.iter().map(Record::timestamp));
        match page.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).rev().map(|i| T + i).collect::<Vec<_>>());
}

#[test]
fn alerts_are_acknowledged_and_resolved_by_appending() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    history.store_alert(&alert(0)).unwrap();
    assert!(history.acknowledge_alert("disk-1", T + 10).unwrap());
    assert_eq!(history.alert("disk-1").unwrap().unwrap().state, AlertState::Acknowledged);
    assert!(history.resolve_alert("disk-1", T + 20).unwrap());
    let latest = history.alert("disk-1").unwrap().unwrap();
    assert_eq!(
        (latest.state, latest.timestamp, latest.title.as_str()),
        (AlertState::Resolved, T + 20, "Disk almost full")
    );
    assert!(!history.acknowledge_alert("no-such-alert", T).unwrap());
    let life: Vec<(AlertState, i64)> = history
        .alert_events("disk-1")
        .unwrap()
        .iter()
        .map(|e| (e.state, e.timestamp))
        .collect();
    assert_eq!(
        life,
        vec![
            (AlertState::Resolved, T + 20),
            (AlertState::Acknowledged, T + 10),
            (AlertState::Raised, T)
        ]
    );
    assert!(history.alert_events("no-such-alert").unwrap().is_empty());
    let events = history
        .query_data(&DataQuery {
            data_types: vec![DataType::Alerts],
            ..DataQuery::default()
        })
        .unwrap();
    assert_eq!(events.rows.len(), 3, "every event is kept");
}

#[test]
fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let mut bad = metric(1);
    bad.metric_name = String::new();
    let refused = history
        .store_batch(&[Record::Log(log(0, LogLevel::Info, "first")), Record::Metric(bad)])
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidInput { reason, .. } if reason.contains("empty metric_name")),
        "{refused}"
    );
    assert_eq!(history.storage_stats().unwrap().points, 0, "nothing of a failed batch is stored");
    history
        .store_batch(&[Record::Log(log(0, LogLevel::Info, "first")), Record::Metric(metric(1))])
        .unwrap();
    assert_eq!(history.query_data(&DataQuery::default()).unwrap().rows.len(), 2);
}

/// Every record of `kind` through `query_data` pages, as one table.
fn paged_table(history: &History, mut request: DataQuery, kind: DataType) -> RecordTable {
    request.limit = 7;
    let mut records = Vec::new();
    loop {
        let page = history.query_data(&request).unwrap();
        records.extend(page.rows);
        match page.next_cursor {
            Some(c) => {
                request.cursor = Some(c);
                request.offset = 0;
            }
            None => break,
        }
    }
    let mut tables = RecordTable::from_records(&records);
    assert!(tables.len() <= 1, "pages of one kind gave {} tables", tables.len());
    tables.pop().unwrap_or(RecordTable {
        kind,
        rows: 0,
        columns: Vec::new(),
    })
}

/// The rows of a table as (column name, cell) lists sorted by name, so tables whose extra
/// columns were first seen in another order compare equal.
fn table_rows(table: &RecordTable) -> Vec<Vec<(String, String)>> {
    (0..table.rows)
        .map(|i| {
            let mut row: Vec<(String, String)> = table
                .columns
                .iter()
                .filter(|c| c.valid[i])
                .map(|c| {
                    let cell = match &c.values {
                        TableValues::Timestamp(v) | TableValues::I64(v) => v[i].to_string(),
                        TableValues::F64(v) => v[i].to_string(),
                        TableValues::Bool(v) => v[i].to_string(),
                        TableValues::Utf8 { .. } => c.text(i).unwrap_or_default().to_string(),
                        TableValues::Binary { data, offsets } => format!("{:?}", &data[offsets[i] as usize..offsets[i + 1] as usize]),
                    };
                    (c.name.clone(), cell)
                })
                .collect();
            row.sort();
            row
        })
        .collect()
}

#[test]
fn tables_hold_the_records_of_the_pages() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let mut metrics: Vec<MetricData> = (0..60).map(metric).collect();
    for (i, m) in metrics.iter_mut().enumerate() {
        m.metric_name = ["usage_user", "usage_system"][i % 2].into();
        m.timestamp = T + i as i64 / 2; // two names share each row
        if i % 5 == 0 {
            m.unit = None;
            m.tags.insert("rack".into(), "r1".into());
        }
    }
    history.store_metrics(&metrics).unwrap();
    history
        .store_performance_data(&(0..30).map(|i| perf(i, ["db", "web"][i as usize % 2])).collect::<Vec<_>>())
        .unwrap();
    let logs: Vec<LogEntry> = (0..40)
        .map(|i| {
            let mut l = log(i, [LogLevel::Info, LogLevel::Error][i as usize % 2], &format!("line {i}"));
            if i % 3 == 0 {
                l.module = None;
                l.line_number = None;
                l.extra_data.insert("user".into(), FieldValue::Str(format!("u{i}")));
            }
            l
        })
        .collect();
    history.store_logs(&logs).unwrap();
    history.engine().flush().unwrap();
    history.store_logs(&[log(100, LogLevel::Warning, "from the head")]).unwrap();
    for alert_event in (0..5).map(alert) {
        history.store_alert(&alert_event).unwrap();
    }
    let expected_rows = [
        (DataType::Metrics, 60),
        (DataType::Performance, 30),
        (DataType::Logs, 41),
        (DataType::Alerts, 5),
    ];
    for (kind, count) in expected_rows {
        for order_desc in [true, false] {
            let request = DataQuery {
                data_types: vec![kind],
                order_desc,
                ..DataQuery::default()
            };
            let expected = table_rows(&paged_table(&history, request.clone(), kind));
            assert_eq!(expected.len(), count, "{kind:?}");
            let table = history.query_table(&request, kind, None).unwrap();
            assert_eq!(table.kind, kind);
            assert_eq!(table_rows(&table), expected, "{kind:?} desc={order_desc}");
            let capped = history.query_table(&request, kind, Some(9)).unwrap();
            assert_eq!(table_rows(&capped), expected[..count.min(9)], "{kind:?} desc={order_desc} capped");
            let skipped = DataQuery {
                offset: 4,
                ..request.clone()
            };
            assert_eq!(
                table_rows(&history.query_table(&skipped, kind, Some(5)).unwrap()),
                table_rows(&paged_table(&history, skipped, kind))
                    .into_iter()
                    .take(5)
                    .collect::<Vec<_>>(),
                "{kind:?} desc={order_desc} offset"
            );
        }
    }
    let one = history.query_table(&DataQuery::default(), DataType::Metrics, Some(1)).unwrap();
    let names: Vec<&str> = one.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[..5], ["timestamp", "metric_type", "metric_name", "value", "unit"]);
    let errors = DataQuery {
        levels: vec![LogLevel::Error],
        ..DataQuery::default()
    };
    assert_eq!(history.query_table(&errors, DataType::Logs, None).unwrap().rows, 20);
    let searched = DataQuery {
        search_text: Some("head".into()),
        ..DataQuery::default()
    };
    let found = history.query_table(&searched, DataType::Logs, None).unwrap();
    assert_eq!(found.rows, 1);
    assert_eq!(found.column("message").and_then(|c| c.text(0)), Some("from the head"));
    assert_eq!(
        history.query_table(&DataQuery::default(), DataType::Metrics, Some(0)).unwrap().rows,
        0
    );
}
