//! Query semantics spelled out case by case (the randomised comparison is in
//! `query_model.rs`).

use crate::common::options;
use annals::{
    Aggregate, AggregateFn, Batch, Bucket, Engine, FieldFilter, FieldValue, Fill, Order, Query, SeriesKey, SeriesSelector, TimeRange,
};

fn key(host: &str) -> SeriesKey {
    SeriesKey::metric("m").unwrap().with_tag("host", host).unwrap()
}

/// (host, timestamp, fields)
type Row<'a> = (&'a str, i64, Vec<(&'a str, FieldValue)>);
/// (time, tags, values)
type Out = Vec<(Option<i64>, Vec<Option<String>>, Vec<Option<FieldValue>>)>;

fn write(engine: &Engine, rows: &[Row<'_>]) {
    let mut batch = Batch::new();
    for (host, ts, fields) in rows {
        batch.add_row(&key(host), *ts, fields.clone()).unwrap();
    }
    engine.write(&batch).unwrap();
}

fn values(engine: &Engine, query: &Query) -> Out {
    let (rows, _) = engine.snapshot().query(query).unwrap().collect_rows().unwrap();
    rows.into_iter().map(|r| (r.time, r.tags.to_vec(), r.values)).collect()
}

/// Every row of `query`, read in pages of `page` rows by following the cursors.
fn by_cursor(engine: &Engine, query: &Query, page: usize) -> Out {
    let mut paged = Vec::new();
    let mut query = Query {
        limit: Some(page),
        ..query.clone()
    };
    loop {
        let (rows, cursor) = engine.snapshot().query(&query).unwrap().collect_rows().unwrap();
        paged.extend(rows.into_iter().map(|r| (r.time, r.tags.to_vec(), r.values)));
        match cursor {
            Some(c) => query.cursor = Some(c),
            None => return paged,
        }
    }
}

#[test]
fn first_and_last_of_sparse_columns_use_the_rows_that_have_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    // Series a: the field is missing at the block's first and last timestamps.
    write(
        &engine,
        &[
            ("a", 10, vec![("x", 0.0.into()), ("y", 1.0.into())]),
            ("a", 20, vec![("y", 5.0.into())]),
            ("a", 40, vec![("x", 0.0.into())]),
        ],
    );
    // Series b: the field at a time between.
    write(&engine, &[("b", 15, vec![("y", 7.0.into())]), ("b", 30, vec![("y", 9.0.into())])]);
    engine.flush().unwrap();
    let query = Query {
        selector: SeriesSelector::measurement("m"),
        aggregates: vec![
            Aggregate::of(AggregateFn::First, "y"),
            Aggregate::of(AggregateFn::Last, "y"),
            Aggregate::of(AggregateFn::Count, "y"),
        ],
        ..Query::default()
    };
    assert_eq!(
        values(&engine, &query),
        vec![(None, vec![], vec![Some(1.0.into()), Some(9.0.into()), Some(FieldValue::I64(4))])]
    );
    let stats = engine.stats().unwrap();
    assert_eq!(
        stats.block_cache_misses, 1,
        "series a was decoded (sparse y); series b was answered from statistics"
    );
}

#[test]
fn buckets_fill_percentiles_and_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let minute = 60_000_000_000i64;
    write(
        &engine,
        &[
            ("a", 0, vec![("v", 1.0.into())]),
            ("a", 10, vec![("v", 3.0.into())]),
            ("a", 2 * minute, vec![("v", 10.0.into()), ("w", true.into())]),
            ("b", 2 * minute + 5, vec![("w", false.into())]),
        ],
    );
    let mut query = Query {
        selector: SeriesSelector::measurement("m"),
        range: TimeRange::new(0, 3 * minute),
        aggregates: vec![
            Aggregate::of(AggregateFn::Mean, "v"),
            Aggregate::of(AggregateFn::Percentile(50.0), "v"),
            Aggregate::count_rows(),
        ],
        every: Some(Bucket::parse("1m").unwrap()),
        fill: Fill::Previous,
        ..Query::default()
    };
    assert_eq!(
        values(&engine, &query),
        vec![
            (Some(0), vec![], vec![Some(2.0.into()), Some(1.0.into()), Some(FieldValue::I64(2))]),
            (
                Some(minute),
                vec![],
                vec![Some(2.0.into()), Some(1.0.into()), Some(FieldValue::I64(2))]
            ),
            (
                Some(2 * minute),
                vec![],
                vec![Some(10.0.into()), Some(10.0.into()), Some(FieldValue::I64(2))]
            ),
        ]
    );
    query.fill = Fill::Null;
    query.order = Order::Descending;
    query.group_by = vec!["host".into()];
    let rows = values(&engine, &query);
    assert_eq!(rows.len(), 6, "two hosts x three buckets");
    assert_eq!(rows[0].0, Some(2 * minute));
    assert_eq!(
        rows[1],
        (Some(2 * minute), vec![Some("b".into())], vec![None, None, Some(FieldValue::I64(1))])
    );
    assert_eq!(rows[2], (Some(minute), vec![Some("a".into())], vec![None, None, None]));
    assert_eq!(rows[3], (Some(minute), vec![Some("b".into())], vec![None, None, None]));
}

#[test]
fn lastpoint_over_many_segments_finds_the_newest_row_wherever_it_lies() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let v = |x: f64| vec![("v", FieldValue::F64(x))];
    // Segment 1: a at 0..10. Segment 2: a at 20 (v = -1) and b at 1000, the newest data.
    // Segment 3: a late row of a at 15. Segment 4: field n of a's row at 20.
    write(&engine, &(0..=10).map(|t| ("a", t, v(t as f64))).collect::<Vec<_>>());
    engine.flush().unwrap();
    write(&engine, &[("a", 20, v(-1.0)), ("b", 1000, v(5.0))]);
    engine.flush().unwrap();
    write(&engine, &[("a", 15, v(15.0))]);
    engine.flush().unwrap();
    write(&engine, &[("a", 20, vec![("n", FieldValue::I64(7))])]);
    engine.flush().unwrap();
    let lastpoint = |filters: Vec<FieldFilter>, range: TimeRange| Query {
        selector: SeriesSelector::measurement("m"),
        lastpoint: true,
        range,
        filters,
        ..Query::default()
    };
    let newest_of_a = |query: &Query| values(&engine, query).into_iter().find(|r| r.1 == vec![Some("a".to_string())]);
    // The row at 20 merges its two writes, from segments 2 and 4.
    assert_eq!(
        newest_of_a(&lastpoint(vec![], TimeRange::ALL)),
        Some((
            Some(20),
            vec![Some("a".into())],
            vec![Some(FieldValue::I64(7)), Some((-1.0).into())]
        ))
    );
    // Nothing from 20 on passes the filter: the rest of the range is read.
    let positive = vec![FieldFilter::parse("v >= 0").unwrap()];
    assert_eq!(newest_of_a(&lastpoint(positive.clone(), TimeRange::ALL)).unwrap().0, Some(15));
    assert_eq!(newest_of_a(&lastpoint(positive, TimeRange::new(0, 15))).unwrap().0, Some(10));
    // A head row is newer than every segment's.
    write(&engine, &[("a", 30, v(30.0))]);
    assert_eq!(newest_of_a(&lastpoint(vec![], TimeRange::ALL)).unwrap().0, Some(30));
    assert_eq!(newest_of_a(&lastpoint(vec![], TimeRange::new(0, 20))).unwrap().0, Some(15));
}

#[test]
fn lastpoint_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    for i in 0..100i64 {
        write(
            &engine,
            &[
                ("a", i, vec![("v", FieldValue::F64(i as f64)), ("n", FieldValue::I64(-i))]),
                ("b", i, vec![("v", FieldValue::F64(50.0))]),
            ],
        );
    }
    engine.flush().unwrap();
    let lastpoint = Query {
        selector: SeriesSelector::measurement("m"),
        lastpoint: true,
        ..Query::default()
    };
    let rows = values(&engine, &lastpoint);
    assert_eq!(
        rows[0],
        (
            Some(99),
            vec![Some("a".into())],
            vec![Some(FieldValue::I64(-99)), Some(99.0.into())]
        )
    );
    assert_eq!(rows[1], (Some(99), vec![Some("b".into())], vec![None, Some(50.0.into())]));
    assert_eq!(
        engine.stats().unwrap().block_cache_misses,
        0,
        "the newest rows came from block statistics"
    );

    let high = Query {
        selector: SeriesSelector::measurement("m"),
        filters: vec![FieldFilter::parse("v > 95").unwrap()],
        fields: Some(vec!["v".into()]),
        ..Query::default()
    };
    let rows = values(&engine, &high);
    assert_eq!(rows.iter().map(|r| r.0.unwrap()).collect::<Vec<_>>(), vec![96, 97, 98, 99]);
    assert_eq!(
        engine.stats().unwrap().block_cache_misses,
        1,
        "series b's block (max 50) was skipped by its statistics"
    );
}

#[test]
fn cursors_neither_repeat_nor_skip_when_data_arrives_between_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    for i in 0..10i64 {
        write(&engine, &[("a", i * 10, vec![("v", FieldValue::I64(i))])]);
    }
    let mut query = Query {
        selector: SeriesSelector::measurement("m"),
        limit: Some(4),
        ..Query::default()
    };
    let first = engine.snapshot().query(&query).unwrap();
    let (rows, cursor) = first.collect_rows().unwrap();
    assert_eq!(rows.iter().map(|r| r.time.unwrap()).collect::<Vec<_>>(), vec![0, 10, 20, 30]);
    // New rows before and after the page boundary.
    write(
        &engine,
        &[
            ("a", 5, vec![("v", FieldValue::I64(-1))]),
            ("a", 35, vec![("v", FieldValue::I64(-2))]),
        ],
    );
    query.cursor = cursor;
    let (rows, _) = engine.snapshot().query(&query).unwrap().collect_rows().unwrap();
    assert_eq!(rows.iter().map(|r| r.time.unwrap()).collect::<Vec<_>>(), vec![35, 40, 50, 60]);
    query.selector = SeriesSelector::measurement("other");
    let foreign = engine.snapshot().query(&query).unwrap_err();
    assert!(
        matches!(&foreign, annals::Error::InvalidInput { reason, .. } if reason == "the cursor belongs to a different query"),
        "a cursor belongs to its query: {foreign}"
    );
}

#[test]
fn bad_queries_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let snapshot = engine.snapshot();
    let cases = [
        (
            Query {
                group_by: vec!["host".into()],
                ..Query::default()
            },
            "group by and every need at least one aggregate",
        ),
        (
            Query {
                aggregates: vec![Aggregate {
                    function: AggregateFn::Max,
                    field: None,
                }],
                ..Query::default()
            },
            "max needs a field; only count works on rows (*)",
        ),
        (
            Query {
                lastpoint: true,
                aggregates: vec![Aggregate::count_rows()],
                ..Query::default()
            },
            "lastpoint returns rows; it does not combine with aggregates",
        ),
        (
            Query {
                cursor: Some("00".into()),
                ..Query::default()
            },
            "the cursor is not one this store issued",
        ),
    ];
    for (q, expected) in cases {
        match snapshot.query(&q) {
            // A typed query has no text to point into: no line or column.
            Err(annals::Error::InvalidInput { line, column, reason }) => {
                assert_eq!((line, column, reason.as_str()), (None, None, expected), "{q:?}");
            }
            other => panic!("{q:?}: expected InvalidInput({expected:?}), got {other:?}"),
        }
    }
    // A bad predicate names the column where it goes wrong.
    match annals::TagPredicate::parse("host = a and (region") {
        Err(annals::Error::InvalidInput {
            column: Some(column),
            reason,
            ..
        }) => {
            assert_eq!(column, 21, "{reason}");
        }
        other => panic!("expected a column, got {other:?}"),
    }
}

#[test]
fn query_limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.query_limits.max_series = 2;
    opts.query_limits.max_result_rows = 5;
    let engine = Engine::open(dir.path(), opts).unwrap();
    write(
        &engine,
        &[
            ("a", 0, vec![("v", 1.0.into())]),
            ("b", 0, vec![("v", 1.0.into())]),
            ("c", 0, vec![("v", 1.0.into())]),
        ],
    );
    let everything = Query {
        selector: SeriesSelector::measurement("m"),
        ..Query::default()
    };
    assert!(matches!(
        engine.snapshot().query(&everything),
        Err(annals::Error::LimitExceeded {
            limit: annals::Limit::QuerySeries,
            ..
        })
    ));
    let buckets = Query {
        selector: SeriesSelector::measurement("m").with_tag("host", "a"),
        range: TimeRange::new(0, 3_600_000_000_000),
        aggregates: vec![Aggregate::count_rows()],
        every: Some(Bucket::parse("1m").unwrap()),
        fill: Fill::Null,
        ..Query::default()
    };
    assert!(matches!(
        engine.snapshot().query(&buckets),
        Err(annals::Error::LimitExceeded {
            limit: annals::Limit::QueryResultRows,
            ..
        })
    ));
}

#[test]
fn aggregates_over_blocks_overlapped_by_partial_writes_equal_the_brute_force_answer() {
    use crate::oracle::{Model, engine_row, evaluate, same_row};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        annals::Options {
            block_max_rows: 64,
            ..options()
        },
    )
    .unwrap();
    let mut model = Model::default();
    let mut apply = |engine: &Engine, batch: &Batch| {
        let receipt = engine.write(batch).unwrap();
        model.apply(batch, receipt.first_seq);
    };
    // Whole blocks of 64 rows with both fields: alone, their statistics answer.
    let second = 1_000_000_000i64;
    let mut batch = Batch::new();
    for i in 0..640i64 {
        for host in ["a", "b"] {
            batch
                .add_row(
                    &key(host),
                    i * second,
                    [("x", FieldValue::F64(i as f64)), ("y", FieldValue::I64(1000 - i))],
                )
                .unwrap();
        }
    }
    apply(&engine, &batch);
    engine.flush().unwrap();
    // Writes of one field at timestamps inside some of those blocks: one flushed into a
    // second segment, one left in the head; each must count once and replace only its field.
    let mut batch = Batch::new();
    for i in (70..120i64).step_by(7) {
        batch
            .add_row(&key("a"), i * second, [("x", FieldValue::F64(-5.0 * i as f64))])
            .unwrap();
    }
    apply(&engine, &batch);
    engine.flush().unwrap();
    let mut batch = Batch::new();
    for i in (300..330i64).step_by(3) {
        batch.add_row(&key("a"), i * second, [("y", FieldValue::I64(7))]).unwrap();
        batch.add_row(&key("b"), i * second + 1, [("y", FieldValue::I64(9))]).unwrap();
    }
    apply(&engine, &batch);
    let functions = [
        AggregateFn::Count,
        AggregateFn::Sum,
        AggregateFn::Min,
        AggregateFn::Max,
        AggregateFn::Mean,
        AggregateFn::First,
        AggregateFn::Last,
    ];
    for every in [None, Some("64s"), Some("1m"), Some("10m")] {
        for group_by in [vec![], vec!["host".to_string()]] {
            let query = Query {
                selector: SeriesSelector::measurement("m"),
                aggregates: functions
                    .iter()
                    .flat_map(|f| [Aggregate::of(*f, "x"), Aggregate::of(*f, "y")])
                    .chain([Aggregate::count_rows()])
                    .collect(),
                every: every.map(|e| Bucket::parse(e).unwrap()),
                group_by: group_by.clone(),
                ..Query::default()
            };
            let result = engine.snapshot().query(&query).unwrap();
            let (tags, columns) = (result.tag_columns.clone(), result.value_columns.clone());
            let (rows, _) = result.collect_rows().unwrap();
            let got: Vec<_> = rows.iter().map(|r| engine_row((&tags, &columns), r)).collect();
            let want = evaluate(&model, &query);
            assert_eq!(got.len(), want.len(), "every {every:?}, group by {group_by:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(same_row(g, w), "every {every:?}, group by {group_by:?}:\n got  {g:?}\n want {w:?}");
            }
        }
    }
    // The same after the month is merged into one segment.
    engine.flush().unwrap();
    engine.optimize(&mut |_| {}).unwrap();
    let query = Query {
        selector: SeriesSelector::measurement("m"),
        aggregates: vec![
            Aggregate::of(AggregateFn::Sum, "x"),
            Aggregate::of(AggregateFn::Count, "y"),
            Aggregate::count_rows(),
        ],
        ..Query::default()
    };
    let result = engine.snapshot().query(&query).unwrap();
    let (tags, columns) = (result.tag_columns.clone(), result.value_columns.clone());
    let (rows, _) = result.collect_rows().unwrap();
    let want = evaluate(&model, &query);
    assert!(same_row(&engine_row((&tags, &columns), &rows[0]), &want[0]), "{rows:?} vs {want:?}");
}

/// Raw pages read at most offset + limit rows of each series' blocks (and of blocks that
/// overlap, merged): over long series in several overlapping segments, with events that
/// share timestamps, every page in both orders, by offset and by cursor, is the
/// corresponding slice of the whole answer.
#[test]
fn capped_pages_equal_slices_of_the_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let log = |host: &str| SeriesKey::new(annals::SeriesKind::Log, "events", [("host", host)]).unwrap();
    // Three passes over the same time range, flushed apart: overlapping blocks whose rows
    // merge (metrics) or stand side by side (events, dozens per timestamp). Host a holds
    // most rows, so a page's rows mostly come from one series.
    for pass in 0..3i64 {
        let mut batch = Batch::new();
        for i in 0..400i64 {
            let ts = (i * 7 + pass * 3) % 1000 * 10;
            for (host, every) in [("a", 1), ("b", 10), ("c", 50)] {
                if i % every != 0 {
                    continue;
                }
                let field = if pass == 1 { "u" } else { "v" };
                batch
                    .add_row(&key(host), ts, vec![(field, FieldValue::I64(i * 10 + pass))])
                    .unwrap();
                let message = FieldValue::Str(format!("{host} {pass} {i}"));
                batch.add_row(&log(host), ts / 500 * 500, vec![("message", message)]).unwrap();
            }
        }
        engine.write(&batch).unwrap();
        engine.flush().unwrap();
    }
    for measurement in ["m", "events"] {
        for order in [Order::Ascending, Order::Descending] {
            let whole = Query {
                selector: SeriesSelector::measurement(measurement),
                order,
                ..Query::default()
            };
            let all = values(&engine, &whole);
            assert!(all.len() > 1000, "{measurement}: {} rows", all.len());
            for (limit, offset) in [(1, 0), (7, 3), (5, 40), (50, 0), (333, 17)] {
                let page = values(
                    &engine,
                    &Query {
                        limit: Some(limit),
                        offset,
                        ..whole.clone()
                    },
                );
                assert_eq!(
                    page,
                    all[offset..offset + limit],
                    "{measurement} {order:?} limit {limit} offset {offset}"
                );
            }
            assert_eq!(by_cursor(&engine, &whole, 37), all, "{measurement} {order:?} by cursor");
        }
    }
}

/// A bucketed query with a limit aggregates windows from the end its order starts at,
/// doubling them until the page is full: over data with long gaps (so windows must grow),
/// groups that appear and vanish, rows in segments and in the head, every page in both
/// orders, by offset and by cursor, is the corresponding slice of the whole answer.
#[test]
fn limited_bucket_pages_equal_slices_of_the_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let minute = 60_000_000_000i64;
    let mut rows: Vec<Row<'_>> = Vec::new();
    for i in 0..3000i64 {
        // Bursts of minutes separated by gaps that grow towards both ends.
        let burst = i / 100;
        let ts = (burst * burst * 40 + i % 100) * minute + (i * 7_919) % minute;
        let host = ["a", "b", "c"][(i % 3) as usize];
        if host == "c" && burst % 4 == 0 {
            continue;
        }
        rows.push((host, ts, vec![("v", FieldValue::F64((i % 97) as f64))]));
    }
    let (flushed, in_head) = rows.split_at(2000);
    write(&engine, flushed);
    engine.flush().unwrap();
    write(&engine, in_head);
    for group_by in [vec![], vec!["host".to_string()]] {
        for order in [Order::Ascending, Order::Descending] {
            for range in [TimeRange::ALL, TimeRange::new(500 * minute, 20_000 * minute + 17)] {
                let whole = Query {
                    selector: SeriesSelector::measurement("m"),
                    range,
                    aggregates: vec![Aggregate::of(AggregateFn::Max, "v"), Aggregate::of(AggregateFn::Count, "v")],
                    group_by: group_by.clone(),
                    every: Some(Bucket::Fixed(minute)),
                    order,
                    ..Query::default()
                };
                let all = values(&engine, &whole);
                assert!(all.len() > 200, "{} rows", all.len());
                let context = format!("{group_by:?} {order:?} {range:?}");
                for (limit, offset) in [(1, 0), (5, 0), (7, 3), (5, 150), (333, 17), (100_000, 0)] {
                    let page = values(
                        &engine,
                        &Query {
                            limit: Some(limit),
                            offset,
                            ..whole.clone()
                        },
                    );
                    let end = (offset + limit).min(all.len());
                    assert_eq!(page, all[offset.min(end)..end], "{context} limit {limit} offset {offset}");
                }
                assert_eq!(by_cursor(&engine, &whole, 37), all, "{context} by cursor");
            }
        }
    }
}
