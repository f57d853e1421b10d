//! Full-text search: accuracy against a brute-force scan on Loghub lines, paging, the head
//! and flush boundary, catch-up and rebuild of the index, verify, a crash during log
//! ingest, and the `annals search` command.

use crate::common::{options, seed};
use annals::text::{DocTerms, TextField, TextQuery, tokenize};
use annals::workload::w2::{LoghubCorpus, W2, W2Config, default_loghub_dir};
use annals::{Bucket, Engine, LogEntry, LogLevel, Options, SearchOrder, SearchQuery, TagPredicate, TimeRange};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const DAY: i64 = 86_400_000_000_000;

/// A stored log record, as the brute-force scan sees it.
struct Stored {
    record_id: u64,
    time: i64,
    level: String,
    logger: String,
    message: String,
    terms: DocTerms,
}

fn stored_logs(engine: &Engine) -> Vec<Stored> {
    crate::common::scan_all(engine, "log")
        .into_iter()
        .map(|r| {
            let message = r
                .fields
                .iter()
                .find(|(n, _)| &**n == "message")
                .and_then(|(_, v)| v.as_str().map(str::to_string))
                .unwrap_or_default();
            Stored {
                record_id: r.record_id.unwrap(),
                time: r.timestamp,
                level: r.key.tag("level").unwrap_or_default().to_string(),
                logger: r.key.tag("logger_name").unwrap_or_default().to_string(),
                terms: DocTerms::new(&message),
                message,
            }
        })
        .collect()
}

fn load_corpus() -> Option<LoghubCorpus> {
    let dir = default_loghub_dir();
    match LoghubCorpus::load(&dir) {
        Ok(corpus) => Some(corpus),
        Err(e) => {
            eprintln!("skipped: the Loghub samples are not readable at {}: {e}", dir.display());
            None
        }
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What a query is, for reporting accuracy per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Term,
    Phrase,
    Prefix,
    Boolean,
}

/// A random query drawn from the stored messages, with the whole-word pattern a grep user
/// would write for it (terms and phrases only).
fn draw_query(rng: &mut ChaCha8Rng, stored: &[Stored]) -> (Shape, String, Option<String>) {
    let message = &stored[rng.random_range(0..stored.len())].message;
    let tokens = tokenize(message);
    if tokens.is_empty() {
        return (Shape::Term, "nothingmatchesthis".into(), Some("nothingmatchesthis".into()));
    }
    let term = |rng: &mut ChaCha8Rng| {
        let m = &stored[rng.random_range(0..stored.len())].message;
        let t = tokenize(m);
        t.choose(rng).map_or_else(|| "x".to_string(), |t| t.term.clone())
    };
    match rng.random_range(0..10) {
        0..=2 => {
            let t = tokens.choose(rng).unwrap();
            let word = &message[t.offsets.clone()];
            (Shape::Term, word.to_string(), Some(word.to_string()))
        }
        3..=5 => {
            // A run of whole whitespace-separated chunks, as someone would paste it.
            let chunks: Vec<&str> = message.split_whitespace().collect();
            let n = rng.random_range(1..=chunks.len().min(4));
            let start = rng.random_range(0..=chunks.len() - n);
            let phrase = chunks[start..start + n].join(" ");
            if tokenize(&phrase).is_empty() {
                return (Shape::Term, "nothingmatchesthis".into(), Some("nothingmatchesthis".into()));
            }
            (Shape::Phrase, quote(&phrase), Some(phrase))
        }
        6 => {
            let t = tokens.choose(rng).unwrap();
            let cut = t.term.char_indices().map(|(i, _)| i).nth(2).unwrap_or(t.term.len());
            (Shape::Prefix, format!("{}*", &t.term[..cut]), None)
        }
        _ => {
            let (a, b, c) = (term(rng), term(rng), term(rng));
            let q = match rng.random_range(0..6) {
                0 => format!("{a} AND {b}"),
                1 => format!("{a} OR {b}"),
                2 => format!("{a} -{b}"),
                3 => format!("({a} OR {b}) NOT {c}"),
                4 => format!("{a} level:error"),
                _ => format!(
                    "({a} OR level:warning) logger:{}",
                    stored[rng.random_range(0..stored.len())].logger.replace(' ', "_")
                ),
            };
            (Shape::Boolean, q, None)
        }
    }
}

/// Whole-word, case-insensitive match of `pattern` in `text`: what `grep -iwF` finds.
fn grep_word(text: &str, pattern: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let (text, pattern) = (text.to_lowercase(), pattern.to_lowercase());
    text.match_indices(&pattern).any(|(at, m)| {
        let before = text[..at].chars().next_back();
        let after = text[at + m.len()..].chars().next();
        before.is_none_or(|c| !is_word(c)) && after.is_none_or(|c| !is_word(c))
    })
}

#[test]
fn search_equals_a_brute_force_scan_of_loghub_lines() {
    let Some(corpus) = load_corpus() else { return };
    let base = seed();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    // Two months, so searches merge month indexes; some lines stay in the head.
    let mut config = W2Config::new(24_000, base);
    config.span_ns = 50 * DAY;
    let mut w2 = W2::new(&corpus, config);
    while let Some((batch, _)) = w2.next_batch(1000).unwrap() {
        engine.write(&batch).unwrap();
        if w2.emitted() == 10_000 || w2.emitted() == 18_000 {
            engine.flush().unwrap();
        }
    }
    let stored = stored_logs(&engine);
    assert_eq!(stored.len(), 24_000);
    let by_rid: BTreeMap<u64, &Stored> = stored.iter().map(|s| (s.record_id, s)).collect();
    let snapshot = engine.snapshot();
    let mut rng = ChaCha8Rng::seed_from_u64(base);
    let queries = 400;
    // Per shape: (queries, index hits, brute-force hits, grep hits, hits both index and grep).
    let mut tally: BTreeMap<Shape, (u64, u64, u64, u64, u64)> = BTreeMap::new();
    for n in 0..queries {
        let (shape, text, grep) = draw_query(&mut rng, &stored);
        let context = format!("seed {base}, query {n}: {text:?}");
        let parsed = TextQuery::parse(&text).unwrap_or_else(|e| panic!("{context}: {e}"));
        let mut query = SearchQuery::new(&text).limit(30_000).count_total(true);
        let level_filter = rng.random_bool(0.25).then(|| ["ERROR", "INFO", "WARNING"][rng.random_range(0..3)]);
        if let Some(level) = level_filter {
            query = query.with_predicate(TagPredicate::eq("level", level));
        }
        let window = rng.random_bool(0.25).then(|| {
            let start = W2Config::START_NS + rng.random_range(0..50) * DAY;
            TimeRange::new(start, start + DAY)
        });
        if let Some(range) = window {
            query = query.range(range);
        }
        let result = snapshot.search(&query).unwrap_or_else(|e| panic!("{context}: {e}"));
        let found: BTreeSet<u64> = result.hits.iter().map(|h| h.record_id).collect();
        assert_eq!(found.len(), result.hits.len(), "{context}: a record came back twice");
        assert_eq!(result.total, Some(found.len() as u64), "{context}: total disagrees with the hits");
        assert!(
            result
                .hits
                .windows(2)
                .all(|w| (w[0].time, w[0].record_id) > (w[1].time, w[1].record_id)),
            "{context}: hits are not newest first"
        );
        let admitted = |s: &Stored| level_filter.is_none_or(|l| s.level == l) && window.is_none_or(|w| w.contains(s.time));
        let expected: BTreeSet<u64> = stored
            .iter()
            .filter(|s| admitted(s))
            .filter(|s| {
                parsed.matches(&s.terms, &|f| match f {
                    TextField::Level => Some(s.level.clone()),
                    TextField::Logger => Some(s.logger.clone()),
                })
            })
            .map(|s| s.record_id)
            .collect();
        if found != expected {
            let missing: Vec<&str> = expected.difference(&found).take(3).map(|r| by_rid[r].message.as_str()).collect();
            let extra: Vec<&str> = found.difference(&expected).take(3).map(|r| by_rid[r].message.as_str()).collect();
            panic!(
                "{context}: {} found, {} expected; missing e.g. {missing:?}; extra e.g. {extra:?}",
                found.len(),
                expected.len()
            );
        }
        for hit in &result.hits {
            let s = by_rid[&hit.record_id];
            assert_eq!((hit.time, hit.key.tag("level").unwrap()), (s.time, s.level.as_str()), "{context}");
            assert!(
                hit.fields
                    .iter()
                    .any(|(n, v)| &**n == "message" && v.as_str() == Some(s.message.as_str()))
            );
            for h in &hit.snippet.highlights {
                assert!(hit.snippet.fragment.is_char_boundary(h.start) && h.end <= hit.snippet.fragment.len());
            }
        }
        // Without a total, a time-ordered search reads the index's runs of documents
        // newest (oldest) first and stops early: its first two pages are the first two
        // slices of the matches in that order.
        let page = 25;
        for order in [SearchOrder::Newest, SearchOrder::Oldest] {
            let mut in_order: Vec<(i64, u64)> = expected.iter().map(|r| (by_rid[r].time, *r)).collect();
            in_order.sort_unstable();
            if order == SearchOrder::Newest {
                in_order.reverse();
            }
            let mut paged = query.clone().count_total(false).order(order).limit(page);
            for n in 0..2 {
                let result = snapshot.search(&paged).unwrap_or_else(|e| panic!("{context}, {order:?}: {e}"));
                let got: Vec<(i64, u64)> = result.hits.iter().map(|h| (h.time, h.record_id)).collect();
                let want: Vec<(i64, u64)> = in_order.iter().skip(n * page).take(page).copied().collect();
                assert_eq!(got, want, "{context}, {order:?}, page {n}");
                match result.next_cursor {
                    Some(cursor) => paged = paged.cursor(cursor),
                    None => break,
                }
            }
        }
        let entry = tally.entry(shape).or_default();
        entry.0 += 1;
        entry.1 += found.len() as u64;
        entry.2 += expected.len() as u64;
        if let Some(pattern) = grep {
            let grepped: BTreeSet<u64> = stored
                .iter()
                .filter(|s| admitted(s) && grep_word(&s.message, &pattern))
                .map(|s| s.record_id)
                .collect();
            entry.3 += grepped.len() as u64;
            entry.4 += grepped.intersection(&found).count() as u64;
        }
    }
    let (mut grep_hits, mut index_hits, mut both) = (0, 0, 0);
    for (shape, (n, found, expected, grepped, common)) in &tally {
        eprintln!("{shape:?}: {n} queries, {found} hits (brute force {expected}); grep -iw: {grepped} hits, {common} in common");
        if *grepped > 0 {
            grep_hits += grepped;
            index_hits += found;
            both += common;
        }
    }
    let precision = both as f64 / index_hits.max(1) as f64;
    let recall = both as f64 / grep_hits.max(1) as f64;
    eprintln!("against grep -iw over term and phrase queries: precision {precision:.4}, recall {recall:.4}");
    assert!(
        precision >= 0.95 && recall >= 0.95,
        "seed {base}: precision {precision}, recall {recall}"
    );
}

fn log(ts: i64, level: LogLevel, logger: &str, message: &str) -> LogEntry {
    LogEntry {
        module: Some("test".into()),
        ..crate::common::log_entry(ts, level, logger, message.into())
    }
}

fn write_logs(engine: &Engine, entries: &[LogEntry]) -> u64 {
    let mut batch = annals::Batch::new();
    for e in entries {
        batch.add_log(e).unwrap();
    }
    engine.write(&batch).unwrap().first_seq
}

/// Rows with `token<i>` words, one level per three.
fn numbered(from: u64, to: u64) -> Vec<LogEntry> {
    let levels = [LogLevel::Info, LogLevel::Warning, LogLevel::Error];
    (from..to)
        .map(|i| {
            log(
                W2Config::START_NS + i as i64 * 1_000_000_000,
                levels[(i % 3) as usize],
                "app.worker",
                &format!("request token{i} finished on node-{} in {} ms", i % 7, i % 100),
            )
        })
        .collect()
}

fn total(engine: &Engine, text: &str) -> u64 {
    engine
        .snapshot()
        .search(&SearchQuery::new(text).limit(0).count_total(true))
        .unwrap()
        .total
        .unwrap()
}

#[test]
fn pages_neither_repeat_nor_skip_and_counts_group_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    write_logs(&engine, &numbered(0, 300));
    engine.flush().unwrap();
    write_logs(&engine, &numbered(300, 500));
    let snapshot = engine.snapshot();
    for order in [SearchOrder::Newest, SearchOrder::Oldest, SearchOrder::Relevance] {
        let all = snapshot
            .search(&SearchQuery::new("request -node-3").order(order).limit(1000))
            .unwrap();
        assert_eq!(all.hits.len(), 500 - 71, "{order:?}");
        assert!(all.next_cursor.is_none());
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let mut q = SearchQuery::new("request -node-3").order(order).limit(37);
            q.cursor = cursor.take();
            let page = snapshot.search(&q).unwrap();
            paged.extend(page.hits.iter().map(|h| h.record_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            // Rows written between pages do not disturb keyset pages.
            write_logs(&engine, &numbered(10_000 + paged.len() as u64, 10_001 + paged.len() as u64));
        }
        let expected: Vec<u64> = all.hits.iter().map(|h| h.record_id).collect();
        assert_eq!(paged, expected, "{order:?}");
    }
    let foreign = snapshot.search(&SearchQuery::new("request").limit(2)).unwrap().next_cursor.unwrap();
    let err = snapshot.search(&SearchQuery::new("finished").cursor(foreign)).unwrap_err();
    assert!(err.to_string().contains("different query"), "{err}");

    let counts = snapshot
        .search_counts(&SearchQuery::new("request"), Bucket::parse("1h").unwrap())
        .unwrap();
    let mut per_level: BTreeMap<String, u64> = BTreeMap::new();
    for c in &counts {
        *per_level.entry(c.level.clone().unwrap()).or_default() += c.count;
    }
    assert_eq!(
        per_level,
        BTreeMap::from([("ERROR".into(), 166), ("INFO".into(), 167), ("WARNING".into(), 167)])
    );
    // 500 seconds of rows: the first hour holds them all.
    assert!(
        counts
            .iter()
            .all(|c| c.time == Bucket::parse("1h").unwrap().start(W2Config::START_NS))
    );

    let err = snapshot.search(&SearchQuery::new("a AND (b")).unwrap_err();
    assert!(matches!(err, annals::Error::InvalidInput { column: Some(_), .. }), "{err}");
}

#[test]
fn acknowledged_lines_are_found_across_background_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options {
            head_max_bytes: Some(64 << 10),
            background_flush: true,
            retention: annals::lifecycle::RetentionOptions::manual(),
            ..Options::default()
        },
    )
    .unwrap();
    let mut written = 0;
    for round in 0..150u64 {
        write_logs(&engine, &numbered(round * 10, round * 10 + 10));
        written += 10;
        // Every line acknowledged so far is found, whether it sits in a head, in a head
        // being flushed, or in segments.
        assert_eq!(total(&engine, "request"), written, "round {round}");
        let last = round * 10 + 9;
        assert_eq!(total(&engine, &format!("token{last}")), 1, "round {round}");
    }
    engine.flush().unwrap();
    assert_eq!(total(&engine, "request"), written);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(total(&engine, "request"), written);
    assert_eq!(engine.recovery_report().text_rows_indexed, 0);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn an_index_behind_missing_or_damaged_is_caught_up_or_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let text_dir = dir.path().join("data/2025-07/text");
    let stale = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    write_logs(&engine, &numbered(0, 200));
    engine.flush().unwrap();
    engine.close().unwrap();
    copy_dir(&text_dir, stale.path());
    let engine = Engine::open(dir.path(), options()).unwrap();
    write_logs(&engine, &numbered(200, 500));
    engine.close().unwrap();

    // The index as it was after the first flush: what a crash between a flush's manifest
    // and its index commit leaves.
    std::fs::remove_dir_all(&text_dir).unwrap();
    copy_dir(stale.path(), &text_dir);
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.notes.iter().any(|n| n.contains("300 records behind")), "{:?}", report.notes);
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.recovery_report().text_rows_indexed, 300);
    assert_eq!(total(&engine, "request"), 500);
    assert_eq!(total(&engine, "token450"), 1);
    engine.close().unwrap();
    assert!(annals::verify::verify(dir.path(), false).unwrap().notes.is_empty());

    // Missing: rebuilt on open.
    std::fs::remove_dir_all(&text_dir).unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.recovery_report().text_months_rebuilt.len(), 1);
    assert_eq!(engine.recovery_report().text_rows_indexed, 500);
    assert_eq!(total(&engine, "request"), 500);
    engine.close().unwrap();

    // Damaged: verify reports it, repair drops it, open rebuilds it.
    let mut largest: Option<(u64, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(&text_dir).unwrap() {
        let entry = entry.unwrap();
        let len = entry.metadata().unwrap().len();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") && !name.starts_with('.') && largest.as_ref().is_none_or(|(l, _)| len > *l) {
            largest = Some((len, entry.path()));
        }
    }
    let (len, victim) = largest.unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[(len / 2) as usize] ^= 0x5a;
    std::fs::write(&victim, bytes).unwrap();
    let report = annals::verify::verify(dir.path(), false).unwrap();
    assert!(!report.is_clean(), "a flipped byte in {} went unnoticed", victim.display());
    let report = annals::verify::verify(dir.path(), true).unwrap();
    assert!(report.repairs.iter().any(|r| r.contains("text index")), "{:?}", report.repairs);
    assert!(annals::verify::verify(dir.path(), false).unwrap().is_clean());
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(total(&engine, "request"), 500);
    assert_eq!(total(&engine, "token7"), 1);
}

const CRASH_LINES: u64 = 15_000;
const CRASH_BATCH: u64 = 50;

fn crash_line(round: u64, i: u64) -> String {
    let ts = W2Config::START_NS + (round * CRASH_LINES + i) as i64 * 1_000_000_000;
    let level = ["INFO", "ERROR", "WARNING"][(i % 3) as usize];
    format!(
        r#"{{"kind":"log","timestamp":{ts},"level":"{level}","logger_name":"crash.{}","message":"job round{round} r{round}n{i} done after {} ms on 10.0.{}.{}"}}"#,
        i % 4,
        i % 997,
        i % 256,
        round
    )
}

#[test]
fn sigkill_during_log_ingest_loses_no_acknowledged_line_from_search() {
    let base = seed();
    let rounds: u64 = std::env::var("ANNALS_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(6, |n: u64| n.div_ceil(3));
    let mut rng = ChaCha8Rng::seed_from_u64(base ^ 0x7e57);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let input = dir.path().join("logs.jsonl");
    let mut full_run = Duration::from_millis(300);
    let mut survived = Vec::new();
    for round in 0..=rounds {
        let context = format!("seed {base}, round {round}");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..CRASH_LINES {
            writeln!(out, "{}", crash_line(round, i)).unwrap();
        }
        drop(out);
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .args([
                "--data",
                data.to_str().unwrap(),
                "ingest",
                "--format",
                "jsonl",
                "--progress",
                "json",
            ])
            .args(["--durability", "sync", "--batch-rows", &CRASH_BATCH.to_string(), "--head-mb", "1"])
            .arg(&input)
            .env_remove("ANNALS_DATA")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let durable = Arc::new(AtomicU64::new(0));
        let seen = durable.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                if let Some(n) = crate::common::durable_rows(&line) {
                    seen.fetch_max(n, Ordering::SeqCst);
                }
            }
        });
        let started = std::time::Instant::now();
        if round > 0 {
            std::thread::sleep(full_run.mul_f64(rng.random_range(0.1..1.0)));
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        if round == 0 {
            full_run = started.elapsed();
            assert!(status.success(), "{context}: the uninterrupted ingest failed");
        }
        reader.join().unwrap();
        let acked = durable.load(Ordering::SeqCst);

        let report = annals::verify::verify(&data, false).unwrap();
        assert!(report.is_clean(), "{context}: verify after the kill found {:?}", report.problems);
        let engine = Engine::open(&data, options()).unwrap();
        let snapshot = engine.snapshot();
        for i in 0..acked {
            let found = snapshot
                .search(&SearchQuery::new(format!("r{round}n{i}")).limit(0).count_total(true))
                .unwrap();
            assert_eq!(
                found.total,
                Some(1),
                "{context}: acknowledged line {i} of {acked} is not found once"
            );
        }
        let kept = total(&engine, &format!("round{round}"));
        assert!(kept >= acked, "{context}: {acked} acknowledged, {kept} searchable");
        if acked > 0 {
            let last = snapshot.search(&SearchQuery::new(format!("r{round}n{}", acked - 1))).unwrap();
            let message = last.hits[0].fields.iter().find(|(n, _)| &**n == "message").unwrap().1.clone();
            assert!(crash_line(round, acked - 1).contains(message.as_str().unwrap()), "{context}");
        }
        survived.push((acked, kept, engine.recovery_report().text_rows_indexed));
        engine.close().unwrap();
    }
    eprintln!("per round (acknowledged, searchable, re-indexed on open): {survived:?}; an uninterrupted ingest took {full_run:?}");
}

fn annals_cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("ANNALS_DATA")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_search_command_prints_tables_csv_json_and_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"kind":"log","timestamp":"2025-07-01T10:00:00Z","level":"ERROR","logger_name":"db","message":"connection lost to 10.250.19.102:50010"}"#,
            "\n",
            r#"{"kind":"log","timestamp":"2025-07-01T10:01:00Z","level":"INFO","logger_name":"db","message":"connection restored"}"#,
            "\n",
            r#"{"kind":"alert","timestamp":"2025-07-01T11:00:00Z","alert_id":"a1","state":"raised","level":"ERROR","category":"disk","title":"Disk full","description":"disk full on host a"}"#,
            "\n",
        ),
    )
    .unwrap();
    let data = dir.path().join("store");
    let (ok, _, err) = annals_cli(&data, &["ingest", "--format", "jsonl", input.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, err) = annals_cli(
        &data,
        &["search", "connection", "--where", "level=ERROR", "--format", "csv", "--count"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "time,record_id,kind,level,logger,text\n2025-07-01T10:00:00Z,1,log,ERROR,db,**connection** lost to 10.250.19.102:50010\n"
    );
    assert!(err.contains("1 matches"), "{err}");
    let (ok, out, _) = annals_cli(
        &data,
        &["search", "10.250.19.102 OR disk", "--format", "json", "--time-format", "ns"],
    );
    assert!(ok);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "alert");
    assert_eq!(lines[0]["snippet"]["fragment"], "Disk full\ndisk full on host a");
    assert_eq!(lines[0]["snippet"]["highlights"], serde_json::json!([[0, 4], [10, 14]]));
    assert_eq!(lines[1]["record_id"], 1);
    assert_eq!(lines[1]["snippet"]["highlights"], serde_json::json!([[19, 32]]));
    let (ok, out, _) = annals_cli(&data, &["search", "", "--histogram", "1d", "--format", "csv"]);
    assert!(ok);
    assert_eq!(out, "time,level,count\n2025-07-01T00:00:00Z,ERROR,2\n2025-07-01T00:00:00Z,INFO,1\n");
    let (ok, out, err) = annals_cli(&data, &["search", "connection AND (lost"]);
    assert!(!ok && out.is_empty());
    assert!(err.contains("column 21"), "{err}");
    let (ok, _, err) = annals_cli(&data, &["search", "x", "--order", "sideways"]);
    assert!(!ok && err.contains("sideways"), "{err}");
}
