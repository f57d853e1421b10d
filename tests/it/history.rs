//! The history facade: typed records in and out, filters, alerts' lifecycle, atomic batches.

use crate::common::options;
use annals::history::{DataQuery, DataType, History, Record};
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
