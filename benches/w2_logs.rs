//! W2 (Loghub logs) through the embedded API: ingest rate with the full-text index on,
//! bytes per line (segments and text index apart) against the raw text and `zstd -19` of
//! it, search latency p50/p99 for term, phrase and boolean queries with a level filter and
//! a one-day window (newest 100), and count-by-level-per-hour latency.
//!
//! ```sh
//! cargo bench --profile release --bench w2_logs -- [--scale quick|full] [--lines N] [--runs N] [--dir DIR]
//! ```
//! quick = 200,000 lines, full = 1,000,000. Skips (exit 0, with the reason) when the Loghub
//! samples are missing.

mod common;

use annals::text::tokenize;
use annals::workload::w2::{LoghubCorpus, W2, W2Config, default_loghub_dir};
use annals::{Bucket, Engine, Options, SearchQuery, TagPredicate, TimeRange};
use common::{arg, percentile};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000_000_000;

fn dir_bytes(dir: &Path, inside_text: bool, want_text: bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let text = inside_text || entry.file_name() == "text";
            total += dir_bytes(&path, text, want_text);
        } else if inside_text == want_text {
            total += meta.len();
        }
    }
    total
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() -> annals::Result<()> {
    common::require_release_build();
    let loghub = default_loghub_dir();
    let corpus = match LoghubCorpus::load(&loghub) {
        Ok(c) => c,
        Err(e) => {
            println!("W2 skipped: the Loghub samples are not readable at {}: {e}", loghub.display());
            return Ok(());
        }
    };
    let mut config = match arg("--scale").as_deref() {
        Some("full") => W2Config::full(1),
        _ => W2Config::quick(1),
    };
    if let Some(lines) = arg("--lines").and_then(|l| l.parse().ok()) {
        config.lines = lines;
    }
    let runs: usize = arg("--runs").and_then(|r| r.parse().ok()).unwrap_or(100);
    let dir = arg("--dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("annals-w2-{}", std::process::id())));
    let keep = arg("--dir").is_some();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| annals::Error::Io {
            op: "remove",
            path: dir.clone(),
            source: e,
        })?;
    }

    // Generate first, so the timed ingest measures the store, not the generator.
    let mut generator = W2::new(&corpus, config.clone());
    let mut batches = Vec::new();
    let mut raw = Vec::new();
    let mut messages = Vec::new();
    while let Some((batch, entries)) = generator.next_batch(1000)? {
        for e in &entries {
            raw.extend_from_slice(annals::workload::w2::log_file_line(e).as_bytes());
        }
        if messages.len() < 50_000 {
            messages.extend(entries.into_iter().map(|e| e.message));
        }
        batches.push(batch);
    }
    let lines = config.lines as f64;

    let started = Instant::now();
    let engine = Engine::open(&dir, Options::default())?;
    for batch in &batches {
        engine.write(batch)?;
    }
    let written = started.elapsed();
    engine.close()?;
    let with_flush = started.elapsed();
    drop(batches);

    let data = dir.join("data");
    let segment_bytes = dir_bytes(&data, false, false);
    let text_bytes = dir_bytes(&data, false, true);
    let zstd_started = Instant::now();
    let zstd19 = zstd::bulk::compress(&raw, 19).map(|c| c.len()).unwrap_or(0) as f64;
    let zstd_time = zstd_started.elapsed();
    println!(
        "W2: {} lines from {} Loghub source lines over {} days",
        config.lines,
        corpus.len(),
        config.span_ns / DAY
    );
    println!(
        "ingest (1000-line batches, group commit, index on): {:.0} lines/s written, {:.0} lines/s including the final flush and index commit ({:.2?})",
        lines / written.as_secs_f64(),
        lines / with_flush.as_secs_f64(),
        with_flush
    );
    println!(
        "bytes/line: raw {:.1}, zstd -19 {:.1} ({zstd_time:.1?}), segments {:.1} ({:.3}x zstd -19), text index {:.1}, both {:.1}",
        raw.len() as f64 / lines,
        zstd19 / lines,
        segment_bytes as f64 / lines,
        segment_bytes as f64 / zstd19,
        text_bytes as f64 / lines,
        (segment_bytes + text_bytes) as f64 / lines
    );

    let engine = Engine::open(
        &dir,
        Options {
            background_flush: false,
            ..Options::default()
        },
    )?;
    let snapshot = engine.snapshot();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let levels = ["ERROR", "INFO", "WARNING"];
    let word = |rng: &mut ChaCha8Rng| loop {
        let m = messages.choose(rng).map(String::as_str).unwrap_or("");
        let tokens = tokenize(m);
        if let Some(t) = tokens.choose(rng)
            && t.term.chars().any(char::is_alphabetic)
        {
            return (m.to_string(), t.clone());
        }
    };
    println!("{:<28} {:>10} {:>10} {:>10}", "search (newest 100)", "p50", "p99", "hits/query");
    for shape in ["term", "phrase", "boolean"] {
        let mut timings = Vec::with_capacity(runs);
        let mut hits = 0usize;
        for _ in 0..runs {
            let text = match shape {
                "term" => word(&mut rng).1.term,
                "phrase" => {
                    let (m, _) = word(&mut rng);
                    let chunks: Vec<&str> = m.split_whitespace().collect();
                    let n = 2.min(chunks.len());
                    let start = rng.random_range(0..=chunks.len() - n);
                    format!("\"{}\"", chunks[start..start + n].join(" ").replace(['"', '\\'], " "))
                }
                _ => {
                    let (a, b, c) = (word(&mut rng).1.term, word(&mut rng).1.term, word(&mut rng).1.term);
                    format!("({a} OR {b}) -{c}")
                }
            };
            let start = config.start_ns + rng.random_range(0..(config.span_ns / DAY).max(1)) * DAY;
            let query = SearchQuery::new(text)
                .with_predicate(TagPredicate::eq("level", *levels.choose(&mut rng).unwrap_or(&"INFO")))
                .range(TimeRange::new(start, start + DAY))
                .limit(100);
            let t = Instant::now();
            let result = snapshot.search(&query)?;
            timings.push(t.elapsed());
            hits += result.hits.len();
        }
        timings.sort();
        println!(
            "{:<28} {:>10} {:>10} {:>10.1}",
            format!("{shape} + level + 1 day"),
            ms(percentile(&timings, 50.0)),
            ms(percentile(&timings, 99.0)),
            hits as f64 / runs as f64
        );
    }
    for (label, text, range) in [
        ("count by level/hour, month", "", TimeRange::ALL),
        ("count by level/hour, term", "exception OR error OR failed", TimeRange::ALL),
    ] {
        let mut timings = Vec::with_capacity(runs.min(20));
        let mut buckets = 0;
        for _ in 0..runs.clamp(1, 20) {
            let t = Instant::now();
            let counts = snapshot.search_counts(&SearchQuery::new(text).range(range), Bucket::parse("1h")?)?;
            timings.push(t.elapsed());
            buckets = counts.len();
        }
        timings.sort();
        println!(
            "{label:<28} {:>10} {:>10} {:>10}",
            ms(percentile(&timings, 50.0)),
            ms(percentile(&timings, 99.0)),
            format!("{buckets} rows")
        );
    }
    drop(snapshot);
    engine.close()?;
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
