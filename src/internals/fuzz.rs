//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one function per target, so the
//! committed seeds and every crash input kept under `fuzz/regressions/` also run in
//! `cargo test` (`tests/it/fuzz_seeds.rs`) without a nightly compiler.
//!
//! Each function takes arbitrary bytes and must return without panicking; the asserts are
//! the properties a target checks beyond that.

use crate::index::TagPredicate;
use crate::ingest::{Format, Line, LineReader, Parser};
use crate::model::{Batch, LogLevel};
use crate::options::Limits;
use crate::query::{AggregateFn, Bucket, FieldFilter, Fill, SearchOrder};
use crate::text::{DocTerms, TextQuery, tokenize};
use crate::time::{Month, Precision, parse_duration, parse_time};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as `cargo fuzz list` names them.
pub const TARGETS: &[(&str, Target)] = &[
    ("archive", archive),
    ("catalog", catalog),
    ("codecs", codecs),
    ("commits", commits),
    ("http_bodies", http_bodies),
    ("jsonl", jsonl),
    ("line_protocol", line_protocol),
    ("logql", logql),
    ("loki_push", loki_push),
    ("manifest", manifest),
    ("promql", promql),
    ("query_flags", query_flags),
    ("remote_write", remote_write),
    ("segment", segment),
    ("sketch", sketch),
    ("text_query", text_query),
    ("trends", trends),
    ("wal", wal),
];

/// An archive file: index, names, bounds and every entry checked as a restore would.
pub fn archive(data: &[u8]) {
    super::check_archive(data);
}

/// A catalog file: every record decoded or rejected.
pub fn catalog(data: &[u8]) {
    super::decode_catalog_file(data);
}

/// The commit store's decoders: with a first byte of 0, a `COMMITS` file (the unique
/// index); otherwise a WAL batch payload whose commit rows are extracted as recovery does.
pub fn commits(data: &[u8]) {
    match data.split_first() {
        Some((0, file)) => {
            super::decode_commit_index(file);
        }
        Some((_, payload)) => {
            super::decode_commit_rows(payload);
        }
        None => {}
    }
}

/// A manifest file.
pub fn manifest(data: &[u8]) {
    super::decode_manifest(data);
}

/// A segment file, opened and verified block by block.
pub fn segment(data: &[u8]) {
    super::open_and_verify_segment(data.to_vec());
}

/// A quantile sketch: decoded, re-encoded to itself, and queried.
pub fn sketch(data: &[u8]) {
    super::check_quantile_sketch(data);
}

/// A WAL file: every frame and record payload decoded or rejected.
pub fn wal(data: &[u8]) {
    super::decode_wal_file(data);
}

/// Column codecs: the first byte picks a codec; round trips must be exact (bit for bit for
/// floats), and decoding arbitrary bytes must return.
pub fn codecs(data: &[u8]) {
    use super::*;
    let Some((&selector, rest)) = data.split_first() else { return };
    let n = rest.first().copied().unwrap_or(0) as usize * 7;
    let same_floats = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    match selector % 8 {
        0 => {
            let values: Vec<i64> = rest
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            assert_eq!(decode_i64s(&encode_i64s(&values), values.len()).as_deref(), Some(&values[..]));
        }
        1 => {
            let values: Vec<f64> = rest
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            let decoded = decode_f64s(&encode_f64s(&values), values.len());
            assert!(decoded.is_some_and(|d| same_floats(&d, &values)), "float round trip");
        }
        2 => {
            // Small decimal-looking values exercise the decimal path.
            let values: Vec<f64> = rest
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64 / 100.0)
                .collect();
            let decoded = decode_f64s(&encode_f64s(&values), values.len());
            assert!(decoded.is_some_and(|d| same_floats(&d, &values)), "decimal round trip");
        }
        3 => {
            let values: Vec<bool> = rest.iter().map(|b| b & 1 == 1).collect();
            assert_eq!(decode_bools(&encode_bools(&values), values.len()).as_deref(), Some(&values[..]));
        }
        4 => {
            let text = String::from_utf8_lossy(rest);
            let values: Vec<&str> = text.split('|').collect();
            assert_eq!(
                decode_strings(&encode_strings(&values), values.len()),
                Some(values.iter().map(|s| s.to_string()).collect())
            );
            let keep: Vec<bool> = (0..values.len()).map(|i| i % 3 == 0).collect();
            assert_eq!(
                decode_strings_selected(&encode_strings(&values), values.len(), &keep),
                Some(
                    values
                        .iter()
                        .zip(&keep)
                        .map(|(s, k)| if *k { s.to_string() } else { String::new() })
                        .collect()
                )
            );
        }
        5 => {
            decode_i64s(rest, n);
            decode_bools(rest, n);
        }
        6 => {
            decode_f64s(rest, n);
        }
        _ => {
            decode_strings(rest, n);
            let keep: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
            decode_strings_selected(rest, n, &keep);
        }
    }
}

/// Raw bytes through the ingest path the CLI uses: lines split with a small length limit,
/// invalid UTF-8 and overlong lines reported with their line number, every other line
/// parsed into a row or rejected leaving the batch unchanged. Parsed rows are within limits.
fn ingest(format: Format, precision: Precision, data: &[u8]) {
    const MAX_LINE_BYTES: usize = 4096;
    let mut parser = Parser::new(format, precision, Limits::default());
    let mut reader = LineReader::new(data, MAX_LINE_BYTES);
    let mut batch = Batch::new();
    let mut expected_line = 0;
    while let Ok(Some((number, line))) = reader.next_line() {
        expected_line += 1;
        assert_eq!(number, expected_line, "line numbers count every line");
        let before = batch.len();
        let commits_before = parser.pending_commits().0;
        match line {
            Line::Text(text) => match parser.parse_into(text, number, 0, &mut batch) {
                // One row per line, up to three for an alert with its resolution, or a
                // commit kept aside for the commit store.
                Ok(true) => assert!(
                    (before + 1..=before + 3).contains(&batch.len())
                        || (batch.len() == before && parser.pending_commits().0 == commits_before + 1)
                ),
                Ok(false) => assert_eq!(batch.len(), before),
                Err(e) => {
                    assert_eq!(batch.len(), before, "a rejected line adds nothing");
                    assert_eq!(parser.pending_commits().0, commits_before, "a rejected commit line is not kept");
                    assert!(e.to_string().contains(&format!("line {number}")), "{e} names line {number}");
                }
            },
            Line::NotUtf8 | Line::TooLong { .. } => {
                let error = line.error(number, MAX_LINE_BYTES);
                assert!(error.is_some_and(|e| e.to_string().contains(&format!("line {number}"))));
            }
        }
    }
    let checked = Limits::default().check_batch(&batch);
    assert!(checked.is_ok(), "parsed rows are within the limits: {checked:?}");
}

/// Influx line protocol, nanosecond timestamps.
pub fn line_protocol(data: &[u8]) {
    ingest(Format::LineProtocol, Precision::Nanoseconds, data);
}

/// Prometheus remote-write bodies: the first byte picks a snappy body, as
/// `POST /api/v1/write` receives it (even), or the protobuf alone (odd). Nothing panics; a
/// request that decodes and converts gives one row per sample that is not a staleness
/// marker.
pub fn remote_write(data: &[u8]) {
    use crate::ingest::remote_write::{STALE_NAN_BITS, WriteRequest, decode, decompress, to_batch};
    let Some((&selector, body)) = data.split_first() else { return };
    let protobuf = if selector % 2 == 0 {
        match decompress(body, 1 << 20) {
            Ok(protobuf) => protobuf,
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };
    let limits = Limits::default();
    if let Ok(request) = <WriteRequest as prost::Message>::decode(&protobuf[..]) {
        let samples = request
            .timeseries
            .iter()
            .flat_map(|s| &s.samples)
            .filter(|s| s.value.to_bits() != STALE_NAN_BITS)
            .count();
        if let Ok(batch) = to_batch(&request, &limits) {
            assert_eq!(batch.len(), samples, "one row per sample");
        }
    }
    let _ = decode(&protobuf, &limits);
}

/// Loki push bodies: the first byte picks JSON (0), a snappy protobuf `PushRequest` as
/// promtail sends it (1), or a label set and a log line as text (2). Nothing panics; a
/// protobuf push that is stored gives one row per entry.
pub fn loki_push(data: &[u8]) {
    use crate::ingest::loki::{PushRequest, decode_json, decode_protobuf, detect_level, parse_labels};
    let Some((&selector, body)) = data.split_first() else { return };
    let limits = Limits::default();
    match selector % 3 {
        0 => {
            let _ = decode_json(body, &limits);
        }
        1 => {
            let Ok(protobuf) = crate::ingest::decompress_snappy(body, 1 << 20) else {
                return;
            };
            let entries =
                <PushRequest as prost::Message>::decode(&protobuf[..]).map(|r| r.streams.iter().map(|s| s.entries.len()).sum::<usize>());
            if let Ok(batch) = decode_protobuf(&protobuf, &limits) {
                assert_eq!(Ok(batch.len()), entries.map_err(|_| ()), "one row per entry");
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let (labels, line) = text.split_once('\n').unwrap_or((&text, ""));
            let _ = parse_labels(labels);
            let _ = detect_level(line);
        }
    }
}

/// JSON lines of the typed kinds, millisecond integer timestamps.
pub fn jsonl(data: &[u8]) {
    ingest(Format::JsonLines, Precision::Milliseconds, data);
}

/// Bodies and query strings of the HTTP API: the first byte picks a `POST /history/{kind}`
/// body (a JSON array of typed records, stored all or nothing), a query string as
/// `GET /history/metrics` reads it, or a git webhook's push event. Nothing panics; an
/// array is taken whole (one to three rows per element) or rejected with the batch
/// unchanged; a push gives one commit per listed commit.
pub fn http_bodies(data: &[u8]) {
    const KINDS: [&str; 5] = ["metric", "performance", "log", "alert", "point"];
    let Some((&selector, body)) = data.split_first() else { return };
    let choice = selector as usize % (KINDS.len() + 2);
    if choice == KINDS.len() + 1 {
        // Keys a push does not use are skipped unread, so a body can be a valid push with
        // bytes a full JSON parse rejects (invalid UTF-8 in an unknown key's string);
        // commits are counted against the full parse only where there is one.
        if let Ok(commits) = crate::ingest::webhook::push_commits(body, 0)
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        {
            let listed = value.get("commits").and_then(|c| c.as_array()).map_or(0, Vec::len);
            assert_eq!(commits.len(), listed, "one commit per listed commit");
        }
        return;
    }
    match KINDS.get(choice) {
        Some(kind) => {
            let mut parser = crate::ingest::JsonLinesParser::new(Precision::Nanoseconds, Limits::default());
            let mut batch = Batch::new();
            match parser.parse_array_into(kind, body, 0, &mut batch) {
                Ok(elements) => assert!(
                    (elements..=elements * 3).contains(&batch.len()),
                    "{elements} elements gave {} rows",
                    batch.len()
                ),
                Err(_) => assert!(batch.is_empty(), "a rejected array adds nothing"),
            }
        }
        None => {
            // A JSON body is a query of `POST /history/analyze` and of the exports; anything
            // else is read as a query string.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
                if let Ok(spec) = crate::query::QuerySpec::from_json(&value) {
                    let _ = spec.to_query(0);
                }
                return;
            }
            let Ok(text) = std::str::from_utf8(body) else { return };
            let pairs = text.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, "")));
            if let Ok(spec) = crate::query::QuerySpec::from_pairs(pairs) {
                let _ = spec.to_query(0);
            }
        }
    }
}

/// Full-text query strings and log text: parsing never panics, a parsed query prints to a
/// string that parses back to the same query, and tokenizing and brute-force matching any
/// text never panic. A `\x01` byte separates the query from the document.
pub fn text_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (query, doc) = text.split_once('\u{1}').unwrap_or((text, text));
    for token in tokenize(doc) {
        assert!(doc.is_char_boundary(token.offsets.start) && token.offsets.end <= doc.len());
    }
    if let Ok(parsed) = TextQuery::parse(query) {
        let printed = parsed.to_string();
        let reparsed = TextQuery::parse(&printed);
        assert_eq!(reparsed.ok().as_ref(), Some(&parsed), "{query:?} printed as {printed:?}");
        let _ = parsed.matches(&DocTerms::new(doc), &|_| Some("error".to_string()));
    }
}

/// Query flags and strings as the CLI and the embedded API read them: tag predicates
/// (`--where`), times and durations (`--from`, `--to`, `--last`), buckets, fills, field
/// filters, aggregate names, search orders, levels and months. A parsed predicate, bucket
/// or month prints to text that parses back to the same value.
pub fn query_flags(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(predicate) = TagPredicate::parse(text) {
        let printed = predicate.to_string();
        let reparsed = TagPredicate::parse(&printed);
        assert_eq!(reparsed.ok().as_ref(), Some(&predicate), "{text:?} printed as {printed:?}");
    }
    for now in [0, i64::MAX, i64::MIN] {
        let _ = parse_time(text, now);
    }
    let _ = parse_duration(text);
    if let Ok(bucket) = Bucket::parse(text) {
        let printed = bucket.to_string();
        assert_eq!(Bucket::parse(&printed).ok(), Some(bucket), "{text:?} printed as {printed:?}");
        for ts in [i64::MIN, -1, 0, 1, i64::MAX] {
            let _ = bucket.next(bucket.start(ts));
        }
    }
    if let Some(month) = Month::parse(text) {
        assert_eq!(Month::parse(&month.to_string()), Some(month), "{text:?}");
        let _ = (month.start_ns(), month.end_ns());
    }
    let _ = Fill::parse(text);
    let _ = FieldFilter::parse(text);
    let _ = AggregateFn::parse(text);
    let _ = SearchOrder::parse(text);
    let _ = LogLevel::parse(text);
    let _ = Precision::parse(text);
}

/// Trend analysis of hostile input: the first line is a query string read as
/// `GET /history/metrics/trends` reads it (`TrendQuery::from_pairs`); the rest are points,
/// 16 bytes each (time, value bits), run through every part with the bounds of a request.
/// Nothing panics, every score is in [0, 1], and a forecast's bands are ordered.
pub fn trends(data: &[u8]) {
    use crate::trends::{SeriesPoints, TrendParts, TrendQuery, analyze};
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let pairs: Vec<(String, String)> = form_pairs(head);
    let parsed = TrendQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), 0);
    let mut query = parsed.unwrap_or_default();
    query.parts = TrendParts::ALL;
    // Keep the work of one input small.
    query.horizon_nanos = query.horizon_nanos.min(3_600_000_000_000);
    query.max_lag = query.max_lag.min(20);
    let mut points: Vec<(i64, f64)> = body
        .chunks_exact(16)
        .take(2_000)
        .map(|c| {
            let mut t = [0u8; 8];
            let mut v = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            (i64::from_le_bytes(t), f64::from_bits(u64::from_le_bytes(v)))
        })
        .collect();
    // The anomaly detector sees them as they came; the rest as a store reads them.
    let report = crate::trends::score_points(&points, query.detector);
    assert!(
        report.points.iter().all(|p| (0.0..=1.0).contains(&p.score)),
        "a score outside [0, 1]"
    );
    // The analyses on a few hundred of them: their grid searches make each input slow.
    points.truncate(400);
    points.sort_by_key(|p| p.0);
    let half = points.len() / 2;
    let series = vec![
        SeriesPoints {
            tags: Default::default(),
            field: "a".into(),
            points: points[..half].to_vec(),
        },
        SeriesPoints {
            tags: Default::default(),
            field: "b".into(),
            points: points[half..].to_vec(),
        },
    ];
    if let Ok(analysis) = analyze(series, &query, None) {
        for forecast in analysis.series.iter().filter_map(|s| s.forecast.as_ref()) {
            for p in &forecast.points {
                assert!(
                    !(p.lower_95 > p.lower_80 || p.lower_80 > p.upper_80 || p.upper_80 > p.upper_95),
                    "bands out of order: {p:?}"
                );
            }
        }
        let _ = analysis.to_json(true, true);
    }
}

/// `key=value&...` pairs, percent-decoded (as the server decodes a query string).
fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A PromQL query as `/api/v1/query` and `/api/v1/query_range` take it, evaluated over a
/// small store (a counter, a gauge with two fields, histogram buckets) at one instant and
/// over 13 steps. Nothing panics; an instant vector never holds one label set twice, and
/// a range answer's points are in time order within the range.
pub fn promql(data: &[u8]) {
    use crate::query::promql::{PromOptions, PromValue};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(engine) = promql_store() else { return };
    let snapshot = engine.snapshot();
    let options = PromOptions::default();
    const T: i64 = 1_767_225_600_000 + 600_000;
    if let Ok(PromValue::Vector(samples)) = snapshot.promql_instant(text, T, &options) {
        let mut labels: Vec<_> = samples.iter().map(|s| s.labels.clone()).collect();
        labels.sort();
        let before = labels.len();
        labels.dedup();
        assert_eq!(before, labels.len(), "{text:?} answered one label set twice");
    }
    if let Ok(PromValue::Matrix(series)) = snapshot.promql_range(text, T - 60_000, T, 5_000, &options) {
        for s in series {
            assert!(s.points.windows(2).all(|p| p[0].0 < p[1].0), "{text:?}: points out of order");
            assert!(
                s.points.iter().all(|p| (T - 60_000..=T).contains(&p.0)),
                "{text:?}: a point outside the range"
            );
        }
    }
}

/// The store the promql target queries, made once per process in a temporary directory.
fn promql_store() -> Option<&'static crate::Engine> {
    use crate::model::{FieldValue, SeriesKey, SeriesKind};
    static STORE: std::sync::OnceLock<Option<crate::Engine>> = std::sync::OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("annals-fuzz-promql-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let engine = crate::Engine::open(&dir, crate::Options::default()).ok()?;
            let mut batch = Batch::new();
            let t0 = 1_767_225_600i64 * 1_000_000_000;
            for (job, per) in [("api", 1.5), ("db", 3.0)] {
                let key = SeriesKey::new(SeriesKind::Metric, "requests_total", [("job", job)]).ok()?;
                for i in 0..=40i64 {
                    let value = if i == 20 { 0.0 } else { per * i as f64 };
                    batch
                        .add_row(&key, t0 + i * 15_000_000_000, [("value", FieldValue::F64(value))])
                        .ok()?;
                }
            }
            let cpu = SeriesKey::new(SeriesKind::Metric, "cpu", [("host", "h1")]).ok()?;
            for i in 0..=10i64 {
                let fields = [("usage", FieldValue::F64(i as f64 * 0.5)), ("cores", FieldValue::I64(4))];
                batch.add_row(&cpu, t0 + i * 60_000_000_000, fields).ok()?;
            }
            for (le, count) in [("0.1", 1.0), ("1", 5.0), ("+Inf", 8.0)] {
                let key = SeriesKey::new(SeriesKind::Metric, "latency_bucket", [("le", le)]).ok()?;
                batch
                    .add_row(&key, t0 + 590_000_000_000, [("value", FieldValue::F64(count))])
                    .ok()?;
            }
            engine.write(&batch).ok()?;
            Some(engine)
        })
        .as_ref()
}

/// LogQL queries as Loki's query API takes them (`/loki/api/v1/query_range`, `/query`),
/// parsed and evaluated over a small store of log lines: nothing panics; a log query
/// returns at most its limit of lines, each stream's in the query's direction and inside
/// the range; a metric vector never holds one label set twice.
pub fn logql(data: &[u8]) {
    use crate::query::logql::{Direction, LineOptions, LogqlValue};
    use crate::query::promql::PromValue;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(engine) = logql_store() else { return };
    let snapshot = engine.snapshot();
    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_767_225_600 * S;
    for direction in [Direction::Backward, Direction::Forward] {
        let lines = LineOptions { limit: 7, direction };
        match snapshot.logql_range(text, T0, T0 + 300 * S, 15_000, lines) {
            Ok(LogqlValue::Streams(streams)) => {
                let total: usize = streams.iter().map(|s| s.entries.len()).sum();
                assert!(total <= 7, "{text:?}: {total} lines over the limit");
                for stream in &streams {
                    let times: Vec<i64> = stream.entries.iter().map(|e| e.0).collect();
                    let ordered = match direction {
                        Direction::Forward => times.windows(2).all(|w| w[0] <= w[1]),
                        Direction::Backward => times.windows(2).all(|w| w[0] >= w[1]),
                    };
                    assert!(ordered, "{text:?}: lines out of order");
                    assert!(
                        times.iter().all(|t| (T0..T0 + 300 * S).contains(t)),
                        "{text:?}: a line outside the range"
                    );
                }
            }
            Ok(LogqlValue::Metric(PromValue::Matrix(series))) => {
                for s in series {
                    assert!(s.points.windows(2).all(|p| p[0].0 < p[1].0), "{text:?}: points out of order");
                }
            }
            _ => {}
        }
    }
    if let Ok(LogqlValue::Metric(PromValue::Vector(samples))) = snapshot.logql_instant(text, T0 + 300 * S) {
        let mut labels: Vec<_> = samples.iter().map(|s| s.labels.clone()).collect();
        labels.sort();
        let before = labels.len();
        labels.dedup();
        assert_eq!(before, labels.len(), "{text:?} answered one label set twice");
    }
}

/// The store the logql target queries, made once per process in a temporary directory:
/// `job=api` lines every 10 s (every fifth an error), `job=db` lines every 30 s, for 5
/// minutes.
fn logql_store() -> Option<&'static crate::Engine> {
    use crate::model::LogEntry;
    static STORE: std::sync::OnceLock<Option<crate::Engine>> = std::sync::OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("annals-fuzz-logql-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let engine = crate::Engine::open(&dir, crate::Options::default()).ok()?;
            let mut batch = Batch::new();
            let t0 = 1_767_225_600i64 * 1_000_000_000;
            for (job, every, count) in [("api", 10, 30), ("db", 30, 10)] {
                for i in 0..count {
                    let error = job == "api" && i % 5 == 0;
                    let level = if error { LogLevel::Error } else { LogLevel::Info };
                    let message = if error {
                        format!("request {i} failed: connection refused by 10.0.0.{i}")
                    } else {
                        format!("GET /items/{i} 200 {}ms", i * 7 % 50)
                    };
                    let mut entry = LogEntry::new(t0 + i * every * 1_000_000_000, level, job, message);
                    entry.tags = [("job".to_string(), job.to_string())].into_iter().collect();
                    batch.add_log(&entry).ok()?;
                }
            }
            engine.write(&batch).ok()?;
            Some(engine)
        })
        .as_ref()
}
