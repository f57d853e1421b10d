//! Model-based test of the query engine: random data (many series and months, out of
//! order, duplicate timestamps carrying different subsets of the fields, mixed types,
//! flushes and compactions) and random queries, each checked against the brute-force
//! evaluator in `oracle.rs`.

use crate::common::{options, seed};
use crate::oracle::{Model, OracleRow, engine_row, evaluate, same_row};
use annals::{
    Aggregate, AggregateFn, Batch, Bucket, Engine, FieldFilter, FieldValue, Fill, Order, Query, SeriesKey, SeriesKind, SeriesSelector,
    TagPredicate, TimeRange,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const JAN_2016: i64 = 1_451_606_400_000_000_000;
const HOUR: i64 = 3_600_000_000_000;

fn series(rng: &mut ChaCha8Rng) -> Vec<SeriesKey> {
    let mut keys = Vec::new();
    for h in 0..6 {
        let mut tags = vec![("host".to_string(), format!("h{h}"))];
        if h % 3 != 2 {
            tags.push(("region".to_string(), ["eu", "us"][h % 2].to_string()));
        }
        let kind = if rng.random_bool(0.25) {
            SeriesKind::Log
        } else {
            SeriesKind::Metric
        };
        keys.push(SeriesKey::new(kind, "m", tags).unwrap());
    }
    keys.push(SeriesKey::new(SeriesKind::Metric, "other", [("host", "h0")]).unwrap());
    keys
}

fn value(rng: &mut ChaCha8Rng, field: &str) -> FieldValue {
    match field {
        "a" if rng.random_bool(0.1) => FieldValue::I64(rng.random_range(-50..150)),
        "a" if rng.random_bool(0.02) => FieldValue::F64(f64::NAN),
        "a" => FieldValue::F64(rng.random_range(-5000i64..15000) as f64 / 100.0),
        "b" => FieldValue::I64(rng.random_range(-1000..1000)),
        "s" => FieldValue::Str(["x", "y", "zz"][rng.random_range(0..3)].to_string()),
        _ => FieldValue::Bool(rng.random()),
    }
}

fn fill_store(rng: &mut ChaCha8Rng, engine: &Engine, model: &mut Model, keys: &[SeriesKey]) {
    let span = 70 * 24 * HOUR;
    for _ in 0..rng.random_range(4..10) {
        let mut batch = Batch::new();
        for _ in 0..rng.random_range(20..80) {
            let key = &keys[rng.random_range(0..keys.len())];
            // Coarse timestamps make duplicates and shared buckets common.
            let ts = JAN_2016 + rng.random_range(0..span / (10 * 60_000_000_000)) * 10 * 60_000_000_000;
            let mut names: Vec<&str> = ["a", "b", "s", "flag"].into_iter().filter(|_| rng.random_bool(0.6)).collect();
            if names.is_empty() {
                names.push("a");
            }
            let fields: Vec<(&str, FieldValue)> = names.into_iter().map(|n| (n, value(rng, n))).collect();
            batch.add_row(key, ts, fields).unwrap();
        }
        let receipt = engine.write(&batch).unwrap();
        model.apply(&batch, receipt.first_seq);
        if rng.random_bool(0.5) {
            engine.flush().unwrap();
        }
        if rng.random_bool(0.15) {
            // Later writes then overlap merged segments, partial fields included.
            engine.optimize(&mut |_| {}).unwrap();
        }
    }
}

fn random_predicate(rng: &mut ChaCha8Rng) -> Option<TagPredicate> {
    let forms = [
        "host = h1",
        "host != h1",
        "host in (h0, h2, h4)",
        "host not in (h3)",
        "host =~ '[12]$'",
        "region exists",
        "region missing",
        "region = eu or host = h5",
        "not (region = us)",
        "region = eu and host !~ h0",
    ];
    rng.random_bool(0.6)
        .then(|| TagPredicate::parse(forms[rng.random_range(0..forms.len())]).unwrap())
}

fn random_query(rng: &mut ChaCha8Rng) -> Query {
    let mut selector = SeriesSelector::measurement(if rng.random_bool(0.9) { "m" } else { "other" });
    selector.predicate = random_predicate(rng);
    if rng.random_bool(0.2) {
        selector.kind = Some(if rng.random_bool(0.5) {
            SeriesKind::Log
        } else {
            SeriesKind::Metric
        });
    }
    let start = JAN_2016 + rng.random_range(-5..60) * 24 * HOUR + rng.random_range(0..24) * HOUR;
    let range = if rng.random_bool(0.25) {
        TimeRange::ALL
    } else {
        TimeRange::new(start, start + rng.random_range(1..40 * 24) * HOUR)
    };
    let mut query = Query {
        selector,
        range,
        order: if rng.random_bool(0.5) {
            Order::Ascending
        } else {
            Order::Descending
        },
        ..Query::default()
    };
    if rng.random_bool(0.2) {
        let op = [">", "<=", "!="][rng.random_range(0..3)];
        let field = if rng.random_bool(0.5) { "a" } else { "b" };
        query
            .filters
            .push(FieldFilter::parse(&format!("{field} {op} {}", rng.random_range(-10..60))).unwrap());
    }
    match rng.random_range(0..100) {
        0..=29 => {
            if rng.random_bool(0.5) {
                query.fields = Some(vec!["a".into(), "s".into()]);
            }
        }
        30..=44 => {
            query.lastpoint = true;
            if rng.random_bool(0.5) {
                query.fields = Some(vec!["b".into()]);
            }
        }
        _ => {
            let functions = [
                AggregateFn::Count,
                AggregateFn::Sum,
                AggregateFn::Min,
                AggregateFn::Max,
                AggregateFn::Mean,
                AggregateFn::First,
                AggregateFn::Last,
                AggregateFn::Stddev,
                AggregateFn::Percentile(90.0),
            ];
            for _ in 0..rng.random_range(1..4) {
                let function = functions[rng.random_range(0..functions.len())];
                let aggregate = if function == AggregateFn::Count && rng.random_bool(0.3) {
                    Aggregate::count_rows()
                } else {
                    Aggregate::of(function, ["a", "b", "s", "flag"][rng.random_range(0..4)])
                };
                if !query.aggregates.contains(&aggregate) {
                    query.aggregates.push(aggregate);
                }
            }
            query.group_by = ["host", "region"]
                .into_iter()
                .filter(|_| rng.random_bool(0.35))
                .map(String::from)
                .collect();
            query.every = match rng.random_range(0..6) {
                0 => Some(Bucket::parse("1h").unwrap()),
                1 => Some(Bucket::parse("1d").unwrap()),
                2 => Some(Bucket::Week),
                3 => Some(Bucket::Month),
                _ => None,
            };
            if query.every.is_some() && query.range != TimeRange::ALL {
                query.fill = [Fill::None, Fill::Null, Fill::Previous, Fill::Value(-1.0)][rng.random_range(0..4)];
            }
        }
    }
    if rng.random_bool(0.3) {
        query.offset = rng.random_range(0..5);
    }
    if rng.random_bool(0.4) {
        query.limit = Some(rng.random_range(1..20));
    }
    query
}

fn check(engine: &Engine, model: &Model, query: &Query, context: &str) {
    let result = engine
        .snapshot()
        .query(query)
        .unwrap_or_else(|e| panic!("{context}: {query:?} failed: {e}"));
    let (tags, values) = (result.tag_columns.clone(), result.value_columns.clone());
    if !query.aggregates.is_empty() {
        let names: Vec<String> = query.aggregates.iter().map(|a| a.column_name()).collect();
        assert_eq!(values, names, "{context}");
        assert_eq!(tags, query.group_by, "{context}");
    }
    let (rows, _) = result
        .collect_rows()
        .unwrap_or_else(|e| panic!("{context}: {query:?} failed while reading: {e}"));
    let got: Vec<OracleRow> = rows.iter().map(|r| engine_row((&tags, &values), r)).collect();
    let all = evaluate(model, query);
    let want: Vec<&OracleRow> = all.iter().skip(query.offset).take(query.limit.unwrap_or(usize::MAX)).collect();
    let first_difference = got.iter().zip(&want).position(|(g, w)| !same_row(g, w));
    if got.len() != want.len() || first_difference.is_some() {
        let at = first_difference.unwrap_or(got.len().min(want.len()));
        panic!(
            "{context}: {query:?}\n{} rows, expected {}; first difference at {at}:\n got  {:?}\n want {:?}",
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        );
    }
}

/// Pages through a query with cursors: the pages must add up to the whole answer.
fn check_pages(engine: &Engine, model: &Model, query: &Query, context: &str) {
    let want = evaluate(
        model,
        &Query {
            offset: 0,
            limit: None,
            ..query.clone()
        },
    );
    let mut paged = Vec::new();
    let mut q = query.clone();
    q.offset = 0;
    q.limit = Some((want.len() / 40).max(3));
    for _ in 0..1000 {
        let result = engine.snapshot().query(&q).unwrap();
        let (tags, values) = (result.tag_columns.clone(), result.value_columns.clone());
        let (rows, next) = result.collect_rows().unwrap();
        paged.extend(rows.iter().map(|r| engine_row((&tags, &values), r)));
        match next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged.len(), want.len(), "{context}: pages of {query:?}");
    assert!(
        paged.iter().zip(&want).all(|(g, w)| same_row(g, w)),
        "{context}: pages differ for {query:?}"
    );
}

fn run_case(case_seed: u64, queries: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(case_seed);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut model = Model::default();
    let keys = series(&mut rng);
    fill_store(&mut rng, &engine, &mut model, &keys);
    for i in 0..queries {
        let query = random_query(&mut rng);
        let context = format!("seed {case_seed}, query {i}");
        check(&engine, &model, &query, &context);
        if i % 5 == 0 {
            check_pages(&engine, &model, &query, &context);
        }
    }
}

#[test]
fn random_queries_match_the_brute_force_evaluator() {
    let base = seed();
    let cases = crate::common::env_count("ANNALS_QUERY_CASES", 60);
    for case in 0..cases {
        let case_seed = base.wrapping_add(case);
        if std::panic::catch_unwind(|| run_case(case_seed, 25)).is_err() {
            panic!("query model test failed; reproduce with ANNALS_TEST_SEED={case_seed} ANNALS_QUERY_CASES=1");
        }
    }
}
