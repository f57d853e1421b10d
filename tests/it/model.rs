//! Model-based test of the storage core: random batches against an in-memory model, with
//! flushes, compactions and reopens in between; every scan must equal the model's answer.
//! Metric rows often repeat a timestamp with another subset of the fields, out of order
//! and across flushes, so a write that replaced a whole row would lose fields and fail.

use crate::common::{options, seed};
use crate::oracle::{Model, ModelRow};
use annals::{Batch, Engine, FieldValue, Order, ScanRequest, SeriesKey, SeriesKind, SeriesSelector, TimeRange};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const JAN_2016: i64 = 1_451_606_400_000_000_000;
const DAY: i64 = 86_400_000_000_000;

fn random_value(rng: &mut ChaCha8Rng) -> FieldValue {
    match rng.random_range(0..10) {
        0..=3 => {
            let special = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 5e-324, f64::MAX, 0.1 + 0.2];
            if rng.random_bool(0.1) {
                FieldValue::F64(special[rng.random_range(0..special.len())])
            } else {
                FieldValue::F64(rng.random_range(-100_000i64..100_000) as f64 / 100.0)
            }
        }
        4..=6 => FieldValue::I64(match rng.random_range(0..10) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.random_range(-1000..1000),
        }),
        7 => FieldValue::Bool(rng.random()),
        _ => {
            let words = ["disk", "full", "ü", "", "connection reset", "😀", "a,b=c d\"e"];
            FieldValue::Str(
                (0..rng.random_range(0..4))
                    .map(|_| words[rng.random_range(0..words.len())])
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
    }
}

fn random_batch(rng: &mut ChaCha8Rng, keys: &[SeriesKey], clock: &mut i64) -> Batch {
    let mut batch = Batch::new();
    let names = ["a", "b", "c", "message"];
    for _ in 0..rng.random_range(1..40) {
        let key = &keys[rng.random_range(0..keys.len())];
        // Mostly moving forward, sometimes late (into earlier months), sometimes a repeat.
        let ts = match rng.random_range(0..10) {
            0 => *clock - rng.random_range(0..70) * DAY,
            1 => *clock,
            _ => {
                *clock += rng.random_range(1..3_600_000_000_000);
                *clock
            }
        };
        let count = rng.random_range(1..=names.len());
        let mut chosen: Vec<&str> = names.to_vec();
        for i in (1..chosen.len()).rev() {
            chosen.swap(i, rng.random_range(0..=i));
        }
        let fields: Vec<(&str, FieldValue)> = chosen[..count].iter().map(|n| (*n, random_value(rng))).collect();
        batch.add_row(key, ts, fields).unwrap();
    }
    batch
}

fn random_request(rng: &mut ChaCha8Rng, keys: &[SeriesKey]) -> ScanRequest {
    let key = &keys[rng.random_range(0..keys.len())];
    let mut selector = SeriesSelector::measurement(key.measurement());
    if rng.random_bool(0.5)
        && let Some((k, v)) = key.tags().first()
    {
        selector = selector.with_tag(k.clone(), v.clone());
    }
    if rng.random_bool(0.2) {
        selector = SeriesSelector::default();
    }
    let a = JAN_2016 + rng.random_range(-10..120) * DAY;
    let b = a + rng.random_range(0..60) * DAY;
    ScanRequest {
        selector,
        fields: rng.random_bool(0.3).then(|| vec!["a".to_string(), "message".to_string()]),
        range: if rng.random_bool(0.3) {
            TimeRange::ALL
        } else {
            TimeRange::new(a, b)
        },
        order: if rng.random_bool(0.5) {
            Order::Ascending
        } else {
            Order::Descending
        },
        limit: rng.random_bool(0.3).then(|| rng.random_range(0..50)),
    }
}

fn check(engine: &Engine, model: &Model, request: &ScanRequest, context: &str) {
    let got: Vec<ModelRow> = engine
        .snapshot()
        .scan(request)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            ModelRow {
                series: r.series,
                key: (*r.key).clone(),
                timestamp: r.timestamp,
                seq: r.record_id.unwrap_or(0),
                fields: r.fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            }
        })
        .collect();
    let mut want = model.scan(request);
    for (w, g) in want.iter_mut().zip(&got) {
        // Metric rows carry no record id.
        if !w.key.kind().is_event() {
            w.seq = g.seq;
        }
    }
    if got != want {
        let first = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
        panic!(
            "{context}: scan {request:?} differs at row {first} (got {} rows, want {}):\n got  {:?}\n want {:?}",
            got.len(),
            want.len(),
            got.get(first),
            want.get(first)
        );
    }
}

fn run_case(case_seed: u64, operations: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(case_seed);
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<SeriesKey> = (0..8)
        .map(|i| SeriesKey::new(SeriesKind::Metric, ["cpu", "mem"][i % 2], [("host", format!("h{}", i / 2))]).unwrap())
        .chain((0..4).map(|i| {
            SeriesKey::new(
                SeriesKind::Log,
                "log",
                [("level", ["INFO", "ERROR"][i % 2]), ("logger_name", ["a", "b"][i / 2])],
            )
            .unwrap()
        }))
        .chain([SeriesKey::new(SeriesKind::Alert, "log", [("level", "INFO")]).unwrap()])
        .collect();
    let mut model = Model::default();
    let mut clock = JAN_2016;
    let mut engine = Some(Engine::open(dir.path(), options()).unwrap());
    for op in 0..operations {
        let e = engine.as_ref().unwrap();
        let context = format!("seed {case_seed}, operation {op}");
        match rng.random_range(0..100) {
            0..=59 => {
                let batch = random_batch(&mut rng, &keys, &mut clock);
                let receipt = e.write(&batch).unwrap();
                model.apply(&batch, receipt.first_seq);
            }
            60..=66 => {
                e.flush().unwrap();
            }
            67..=69 => {
                // Merge what flushes left: sealed months whole, or every month (optimize).
                if rng.random_bool(0.5) {
                    e.compact().unwrap();
                } else {
                    e.optimize(&mut |_| {}).unwrap();
                }
            }
            70..=74 => {
                // Crash-like reopen: drop without flushing, replay the WAL.
                drop(engine.take());
                engine = Some(Engine::open(dir.path(), options()).unwrap());
            }
            75..=77 => {
                engine.take().unwrap().close().unwrap();
                engine = Some(Engine::open(dir.path(), options()).unwrap());
            }
            _ => {
                let request = random_request(&mut rng, &keys);
                check(e, &model, &request, &context);
            }
        }
    }
    let e = engine.take().unwrap();
    let everything = ScanRequest::default();
    check(&e, &model, &everything, &format!("seed {case_seed}, final"));
    e.close().unwrap();
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "seed {case_seed}: verify found {:?}", report.problems);
    let e = Engine::open(dir.path(), options()).unwrap();
    check(&e, &model, &everything, &format!("seed {case_seed}, after close and reopen"));
}

#[test]
fn random_batches_flushes_and_reopens_match_the_model() {
    let base = seed();
    let cases = crate::common::env_count("ANNALS_MODEL_CASES", 40);
    for case in 0..cases {
        let case_seed = base.wrapping_add(case);
        let result = std::panic::catch_unwind(|| run_case(case_seed, 150));
        if result.is_err() {
            panic!("model test failed; reproduce with ANNALS_TEST_SEED={case_seed} ANNALS_MODEL_CASES=1");
        }
    }
}
