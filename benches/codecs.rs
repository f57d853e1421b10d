//! Micro-benchmarks of the column codecs, block decoding, WAL append, tag-index selection and
//! the write path.
//!
//! `cargo bench --profile release --bench codecs` (add `-- --quick` for a fast pass). Throughput is reported
//! per value, so the numbers read as values/s.

mod common;

use annals::internals;
use annals::workload::w1::{W1, W1Config};
use annals::{Batch, Durability, Engine, Options, TagPredicate};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::hint::black_box;

/// One W1 host's day: 8640 timestamps and the usage_user column.
fn w1_series() -> (Vec<i64>, Vec<f64>) {
    let config = W1Config::new(1, 1, 7);
    let mut generator = W1::new(config).expect("W1 generator");
    let mut batch = Batch::new();
    generator.fill_batch(&mut batch, usize::MAX).expect("W1 rows");
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (_, ts, mut fields) in batch.rows() {
        timestamps.push(ts);
        values.push(fields.next().and_then(|(_, v)| v.as_f64()).unwrap_or_default());
    }
    (timestamps, values)
}

fn codecs(c: &mut Criterion) {
    let (timestamps, values) = w1_series();
    let n = values.len() as u64;
    let mut group = c.benchmark_group("codecs");
    group.throughput(Throughput::Elements(n));

    group.bench_function("timestamps/encode", |b| b.iter(|| internals::encode_i64s(black_box(&timestamps))));
    let encoded = internals::encode_i64s(&timestamps);
    group.bench_function("timestamps/decode", |b| {
        b.iter(|| internals::decode_i64s(black_box(&encoded), timestamps.len()))
    });

    group.bench_function("decimal_floats/encode", |b| b.iter(|| internals::encode_f64s(black_box(&values))));
    let encoded = internals::encode_f64s(&values);
    println!("W1 usage_user: {:.3} bytes/value", encoded.len() as f64 / values.len() as f64);
    group.bench_function("decimal_floats/decode", |b| {
        b.iter(|| internals::decode_f64s(black_box(&encoded), values.len()))
    });

    // The head's pages: what a write pays per value, and a read or flush of the head.
    group.bench_function("head_pages/encode", |b| b.iter(|| internals::encode_head_pages(black_box(&values))));
    let pages = internals::encode_head_pages(&values);
    let page_bytes: usize = pages.iter().map(Vec::len).sum();
    println!(
        "W1 usage_user in head pages: {:.3} bytes/value",
        page_bytes as f64 / values.len() as f64
    );
    group.bench_function("head_pages/decode", |b| {
        b.iter(|| internals::decode_head_pages(black_box(&pages), values.len()))
    });

    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<f64> = (0..values.len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f64::from_bits(x >> 2)
        })
        .collect();
    group.bench_function("gorilla_floats/encode", |b| b.iter(|| internals::encode_f64s(black_box(&random))));
    let encoded = internals::encode_f64s(&random);
    group.bench_function("gorilla_floats/decode", |b| {
        b.iter(|| internals::decode_f64s(black_box(&encoded), random.len()))
    });

    let messages: Vec<String> = (0..values.len())
        .map(|i| {
            format!(
                "Receiving block blk_{} src: /10.250.{}.{}:50010 dest: /10.250.19.102:50010",
                i * 7919 % 100_003,
                i % 256,
                i % 13
            )
        })
        .collect();
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    group.bench_function("log_messages/encode", |b| b.iter(|| internals::encode_strings(black_box(&refs))));
    let encoded = internals::encode_strings(&refs);
    group.bench_function("log_messages/decode", |b| {
        b.iter(|| internals::decode_strings(black_box(&encoded), refs.len()))
    });
    group.finish();

    let mut group = c.benchmark_group("block");
    for rows in [1024usize, 8640] {
        let block = internals::encode_block(&timestamps[..rows], &values[..rows]);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("decode", rows), &block, |b, block| b.iter(|| block.decode()));
    }
    group.finish();
}

fn wal_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut wal = internals::WalAppender::create(dir.path()).expect("WAL");
    let mut generator = W1::new(W1Config::new(100, 30, 1)).expect("W1 generator");
    let mut batch = Batch::new();
    generator.fill_batch(&mut batch, 1000).expect("rows");
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(batch.point_count() as u64));
    group.bench_function("append_1000_rows/no_fsync", |b| {
        b.iter(|| wal.append(black_box(&batch)).expect("append"))
    });
    group.sample_size(20);
    group.bench_function("append_1000_rows/fsync", |b| {
        b.iter(|| {
            wal.append(black_box(&batch)).expect("append");
            wal.sync().expect("fsync")
        })
    });
    group.finish();
}

fn tag_index(c: &mut Criterion) {
    // 10,000 hosts with W1's ten tags.
    let generator = W1::new(W1Config::new(10_000, 1, 1)).expect("W1 generator");
    let keys: Vec<annals::SeriesKey> = (0..10_000).map(|h| generator.series_key(h).clone()).collect();
    let index = internals::TagIndexProbe::new(&keys);
    let region = keys[0].tag("region").unwrap_or_default().to_string();
    let service = keys[0].tag("service").unwrap_or_default().to_string();
    let eight: Vec<String> = (0..8).map(|i| format!("host_{}", i * 997)).collect();
    let cases = [
        ("eq", TagPredicate::eq("region", region.clone())),
        (
            "and_of_two",
            TagPredicate::And(vec![
                TagPredicate::eq("region", region.clone()),
                TagPredicate::eq("service", service),
            ]),
        ),
        ("in_8_hosts", TagPredicate::In("hostname".into(), eight)),
        ("not_eq", TagPredicate::Not(Box::new(TagPredicate::eq("region", region)))),
    ];
    let mut group = c.benchmark_group("tag_index_10k_series");
    for (name, predicate) in &cases {
        group.bench_function(*name, |b| b.iter(|| index.select(black_box(predicate)).expect("select")));
    }
    group.finish();
}

fn write_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = Engine::open(
        dir.path(),
        Options {
            durability: Durability::None,
            head_max_bytes: Some(1 << 30),
            background_flush: false,
            retention: annals::lifecycle::RetentionOptions::manual(),
            ..Options::default()
        },
    )
    .expect("open");
    let mut generator = W1::new(W1Config::new(100, 30, 1)).expect("W1 generator");
    let mut group = c.benchmark_group("write");
    let mut batch = Batch::new();
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("w1_batch_of_1000_rows/no_fsync", |b| {
        b.iter(|| {
            batch.clear();
            generator.fill_batch(&mut batch, 1000).expect("rows");
            engine.write(&batch).expect("write")
        })
    });
    group.finish();
}

criterion_group!(benches, codecs, wal_append, tag_index, write_path);

fn main() {
    common::require_release_build();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
