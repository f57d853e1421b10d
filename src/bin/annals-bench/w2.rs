//! W2 (Loghub logs) on annals and SQLite FTS5: ingest and peak RSS, bytes per line (all
//! files; annals' segments and text index apart) against the raw text and `zstd -19` of it,
//! term, phrase and boolean searches with a level filter and a one-day window (newest 100),
//! and counts by level per hour, answers checked equal.

use crate::report::{Better, RAW, Run, ZSTD, dir_bytes};
use crate::sqlite::Sqlite;
use crate::{BenchError, Engines, Workload, child};
use annals::workload::w2::{LoghubCorpus, W2, W2Config};
use annals::{Bucket, Engine, LogEntry, Options, SearchQuery, TagPredicate, TimeRange};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const W: &str = "W2";
const DAY: i64 = 86_400_000_000_000;

/// One search, in both engines' syntax.
struct Search {
    shape: &'static str,
    annals: String,
    fts5: String,
    level: &'static str,
    range: TimeRange,
}

fn is_word(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Seeded searches drawn from the generated messages: words are whole whitespace chunks
/// made only of letters, digits and `_`, which both tokenizers read as one term.
fn searches(entries: &[LogEntry], config: &W2Config, runs: usize) -> Vec<Search> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let levels = ["ERROR", "INFO", "WARNING"];
    let word = |rng: &mut ChaCha8Rng| loop {
        let e = entries.choose(rng).map(|e| e.message.as_str()).unwrap_or("");
        let chunks: Vec<&str> = e.split_whitespace().filter(|c| is_word(c)).collect();
        if let Some(w) = chunks.choose(rng) {
            return w.to_lowercase();
        }
    };
    let mut out = Vec::new();
    for shape in ["term", "phrase", "boolean"] {
        for _ in 0..runs {
            let (annals, fts5) = match shape {
                "term" => {
                    let w = word(&mut rng);
                    (w.clone(), format!("\"{w}\""))
                }
                "phrase" => loop {
                    let m = entries.choose(&mut rng).map(|e| e.message.as_str()).unwrap_or("");
                    let chunks: Vec<&str> = m.split_whitespace().collect();
                    let pairs: Vec<(&str, &str)> = chunks
                        .windows(2)
                        .filter(|p| is_word(p[0]) && is_word(p[1]))
                        .map(|p| (p[0], p[1]))
                        .collect();
                    if let Some((a, b)) = pairs.choose(&mut rng) {
                        let phrase = format!("{} {}", a.to_lowercase(), b.to_lowercase());
                        break (format!("\"{phrase}\""), format!("\"{phrase}\""));
                    }
                },
                _ => {
                    let (a, b, c) = (word(&mut rng), word(&mut rng), word(&mut rng));
                    (format!("({a} OR {b}) -{c}"), format!("(\"{a}\" OR \"{b}\") NOT \"{c}\""))
                }
            };
            let start = config.start_ns + rng.random_range(0..(config.span_ns / DAY).max(1)) * DAY;
            out.push(Search {
                shape,
                annals,
                fts5,
                level: levels[rng.random_range(0..levels.len())],
                range: TimeRange::new(start, start + DAY),
            });
        }
    }
    out
}

/// The Loghub samples from their default place.
pub fn corpus() -> Result<LoghubCorpus, BenchError> {
    Ok(LoghubCorpus::load(&annals::workload::w2::default_loghub_dir())?)
}

/// Loads W2 into a new annals store (1000-line batches, group commit, text index on),
/// closing it at the end (final flush and index commit).
pub fn load_annals(corpus: &LoghubCorpus, config: &W2Config, store: &Path) -> Result<(), BenchError> {
    let engine = Engine::open(store, crate::store_options())?;
    let mut generator = W2::new(corpus, config.clone());
    let mut batch = annals::Batch::new();
    while let Some(entry) = generator.next_entry() {
        batch.add_log(&entry)?;
        if batch.len() >= 1000 {
            engine.write(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        engine.write(&batch)?;
    }
    engine.close()?;
    Ok(())
}

/// Loads W2 into SQLite and its FTS5 table (1000-row transactions), checkpointing at the end.
pub fn load_sqlite(corpus: &LoghubCorpus, config: &W2Config, db_dir: &Path) -> Result<(), BenchError> {
    crate::create_dir(db_dir)?;
    let mut db = Sqlite::open(db_dir)?;
    let mut generator = W2::new(corpus, config.clone());
    let mut rows = Vec::with_capacity(1000);
    while let Some(entry) = generator.next_entry() {
        rows.push(entry);
        if rows.len() >= 1000 {
            db.insert_logs(&rows)?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        db.insert_logs(&rows)?;
    }
    db.checkpoint()?;
    Ok(())
}

fn loaded(run: &mut Run, engine: &str, lines: f64, loaded: &child::Loaded) {
    run.add(
        W,
        "ingest, incl. flush and index",
        "lines/s",
        Better::Higher,
        engine,
        lines / loaded.seconds,
    );
    if let Some(bytes) = loaded.peak_rss_bytes {
        run.add(W, "peak RSS, ingest", "MiB", Better::Lower, engine, bytes as f64 / (1 << 20) as f64);
    }
}

/// Count-by-level-per-hour answers: (hour, level) → lines.
pub type Counts = BTreeMap<(i64, String), u64>;

pub fn run(run: &mut Run, corpus: &LoghubCorpus, config: &W2Config, runs: usize, dir: &Path, engines: Engines) -> Result<(), BenchError> {
    let mut generator = W2::new(corpus, config.clone());
    let mut entries = Vec::with_capacity(config.lines as usize);
    while let Some(e) = generator.next_entry() {
        entries.push(e);
    }
    let lines = entries.len() as f64;
    let mut raw = Vec::new();
    let mut message_bytes = 0;
    for e in &entries {
        raw.extend_from_slice(annals::workload::w2::log_file_line(e).as_bytes());
        message_bytes += e.message.len();
    }
    println!(
        "W2: {} log lines from {} Loghub lines ({:.1} bytes per line as a log file, {:.1} of message); {runs} searches per shape",
        entries.len(),
        corpus.len(),
        raw.len() as f64 / lines,
        message_bytes as f64 / lines
    );
    let searches = searches(&entries, config, runs);
    drop(entries);
    let zstd19 = zstd::bulk::compress(&raw, 19).map_err(|e| BenchError::Io("zstd".into(), e))?.len();
    for (figure, value) in [("bytes per line (segments)", raw.len()), ("bytes per line (all files)", raw.len())] {
        run.add(W, figure, "B", Better::Lower, RAW, value as f64 / lines);
    }
    run.add(W, "bytes per line (segments)", "B", Better::Lower, ZSTD, zstd19 as f64 / lines);
    drop(raw);

    let store = dir.join("annals-w2");
    let load = child::load(&engines, Workload::W2, "annals", &store)?;
    loaded(run, "annals", lines, &load);
    run.add(
        W,
        "bytes per line (all files)",
        "B",
        Better::Lower,
        "annals",
        dir_bytes(&store) as f64 / lines,
    );
    let engine = Engine::open(
        &store,
        Options {
            background_flush: false,
            ..crate::store_options()
        },
    )?;
    let segment_bytes = engine.stats()?.segment_bytes;
    run.add(
        W,
        "bytes per line (segments)",
        "B",
        Better::Lower,
        "annals",
        segment_bytes as f64 / lines,
    );
    let text_bytes: u64 = std::fs::read_dir(store.join("data"))
        .map_err(|e| BenchError::Io(store.join("data"), e))?
        .flatten()
        .map(|month| dir_bytes(&month.path().join("text")))
        .sum();
    run.add(
        W,
        "bytes per line (text index)",
        "B",
        Better::Lower,
        "annals",
        text_bytes as f64 / lines,
    );
    let snapshot = engine.snapshot();
    let mut count_times = Vec::new();
    let mut counts = Counts::new();
    for _ in 0..runs.clamp(1, 20) {
        let t = Instant::now();
        let answer = snapshot.search_counts(&SearchQuery::new("").range(TimeRange::ALL), Bucket::Fixed(3_600_000_000_000))?;
        counts = answer
            .into_iter()
            .map(|c| ((c.time, c.level.unwrap_or_default()), c.count))
            .collect();
        count_times.push(t.elapsed());
    }
    run.latencies(W, "count by level per hour, whole month", "annals", &mut count_times);
    let mut reference = Vec::with_capacity(searches.len());
    let mut annals_times = Vec::with_capacity(searches.len());
    for s in &searches {
        let q = SearchQuery::new(&s.annals)
            .with_predicate(TagPredicate::eq("level", s.level))
            .range(s.range)
            .limit(100);
        let t = Instant::now();
        let result = snapshot.search(&q)?;
        annals_times.push(t.elapsed());
        reference.push(result.hits.iter().map(|h| h.time).collect::<Vec<i64>>());
    }
    drop(snapshot);
    engine.close()?;

    // Each peer's time per search instance, `None` where it disagreed with annals.
    let mut peers: Vec<(&str, Vec<Option<Duration>>)> = Vec::new();
    if engines.sqlite {
        let mut peer: Vec<Option<Duration>> = vec![None; searches.len()];
        let db_dir = dir.join("sqlite-w2");
        let load = child::load(&engines, Workload::W2, "sqlite", &db_dir)?;
        loaded(run, "sqlite", lines, &load);
        run.add(
            W,
            "bytes per line (all files)",
            "B",
            Better::Lower,
            "sqlite",
            dir_bytes(&db_dir) as f64 / lines,
        );
        let db = Sqlite::open(&db_dir)?;
        let mut times = Vec::new();
        for _ in 0..runs.clamp(1, 20) {
            let t = Instant::now();
            let theirs = db.count_by_level_per_hour()?;
            let elapsed = t.elapsed();
            if theirs == counts {
                times.push(elapsed);
            } else {
                run.disagreements.push(format!(
                    "W2 count by level per hour: annals {} buckets, sqlite {}",
                    counts.len(),
                    theirs.len()
                ));
                break;
            }
        }
        run.latencies(W, "count by level per hour, whole month", "sqlite", &mut times);
        for (n, (s, expected)) in searches.iter().zip(&reference).enumerate() {
            let t = Instant::now();
            let found = db.search(&s.fts5, s.level, s.range.start, s.range.end, 100)?;
            let elapsed = t.elapsed();
            if &found == expected {
                peer[n] = Some(elapsed);
            } else {
                run.disagreements.push(search_disagreement(n, s, expected, &found, "sqlite"));
            }
        }
        peers.push(("sqlite", peer));
    }
    if let Some(binary) = engines.loki {
        match binary {
            Ok(binary) => {
                let times = loki(run, corpus, &searches, &reference, &counts, config, runs, dir, binary)?;
                peers.push(("loki", times));
            }
            Err(why) => {
                let why = format!("not available: {why}");
                for (figure, unit, better) in [
                    ("ingest, incl. flush and index", "lines/s", Better::Higher),
                    ("bytes per line (all files)", "B", Better::Lower),
                ] {
                    run.missing(W, figure, unit, better, "loki", &why);
                }
            }
        }
    }
    // Every engine's times are of the instances on which all of them agreed.
    for shape in ["term", "phrase", "boolean"] {
        let figure = format!("search {shape} + level + 1 day, newest 100");
        let agreed: Vec<usize> = (0..searches.len())
            .filter(|&n| searches[n].shape == shape && peers.iter().all(|(_, times)| times[n].is_some()))
            .collect();
        let mut mine: Vec<Duration> = agreed.iter().map(|&n| annals_times[n]).collect();
        run.latencies(W, &figure, "annals", &mut mine);
        for (engine, times) in &peers {
            let mut theirs: Vec<Duration> = agreed.iter().filter_map(|&n| times[n]).collect();
            run.latencies(W, &figure, engine, &mut theirs);
        }
    }
    Ok(())
}

/// Pushes W2 to Loki (JSON push requests of 1000 lines, one stream per level, one sender in
/// time order, the bodies written to a file first as every HTTP peer's are), flushes it, and measures
/// bytes, peak RSS, the counts by level per hour and every search, each checked against
/// annals' answer. Returns Loki's time per search, `None` where it disagreed.
#[allow(clippy::too_many_arguments)]
fn loki(
    run: &mut Run,
    corpus: &LoghubCorpus,
    searches: &[Search],
    reference: &[Vec<i64>],
    counts: &Counts,
    config: &W2Config,
    runs: usize,
    dir: &Path,
    binary: &Path,
) -> Result<Vec<Option<Duration>>, BenchError> {
    use crate::loki::{Loki, push_body};
    use std::io::{Read, Write};
    const ENGINE: &str = "loki";
    let lines = config.lines as f64;
    let bodies = dir.join("w2.loki");
    {
        let file = std::fs::File::create(&bodies).map_err(|e| BenchError::Io(bodies.clone(), e))?;
        let mut out = std::io::BufWriter::new(file);
        let mut generator = W2::new(corpus, config.clone());
        let mut chunk = Vec::with_capacity(1000);
        loop {
            chunk.clear();
            while chunk.len() < 1000
                && let Some(e) = generator.next_entry()
            {
                chunk.push(e);
            }
            if chunk.is_empty() {
                break;
            }
            let body = push_body(chunk.iter().map(|e| (e.timestamp, e.level.as_str(), e.message.as_str())));
            out.write_all(&(body.len() as u32).to_le_bytes())
                .and_then(|()| out.write_all(&body))
                .map_err(|e| BenchError::Io(bodies.clone(), e))?;
        }
        out.flush().map_err(|e| BenchError::Io(bodies.clone(), e))?;
    }
    let loki = Loki::start(binary, &dir.join("loki-w2"))?;
    println!("W2 on {}", loki.version);
    let mut reader = std::io::BufReader::new(std::fs::File::open(&bodies).map_err(|e| BenchError::Io(bodies.clone(), e))?);
    let started = Instant::now();
    // One sender, as a log shipper sends a stream: Loki refuses a line more than half its
    // chunk age (an hour) older than the newest of its stream, and a second sender would
    // race ahead by a whole request (1.5 days of W2 at quick scale).
    loop {
        let mut length = [0u8; 4];
        match reader.read_exact(&mut length) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            other => other.map_err(|e| BenchError::Io(bodies.clone(), e))?,
        }
        let mut body = vec![0; u32::from_le_bytes(length) as usize];
        reader.read_exact(&mut body).map_err(|e| BenchError::Io(bodies.clone(), e))?;
        loki.push(&body)?;
    }
    let pushed = started.elapsed();
    loki.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "W2 pushed to Loki in {:.2} s, flushed {:.2} s later",
        pushed.as_secs_f64(),
        seconds - pushed.as_secs_f64()
    );
    let _ = std::fs::remove_file(&bodies);
    run.add(
        W,
        "ingest, incl. flush and index",
        "lines/s",
        Better::Higher,
        ENGINE,
        lines / seconds,
    );
    if let Some(bytes) = loki.peak_rss() {
        run.add(W, "peak RSS, ingest", "MiB", Better::Lower, ENGINE, bytes as f64 / (1 << 20) as f64);
    }
    let bytes: u64 = loki.storage().iter().map(|d| dir_bytes(d)).sum();
    run.add(W, "bytes per line (all files)", "B", Better::Lower, ENGINE, bytes as f64 / lines);
    let mut times = Vec::new();
    for _ in 0..runs.clamp(1, 20) {
        let (theirs, elapsed) = loki.count_by_level_per_hour(config.start_ns, config.start_ns + config.span_ns)?;
        if &theirs == counts {
            times.push(elapsed);
        } else {
            let total: u64 = theirs.values().sum();
            run.disagreements.push(format!(
                "W2 count by level per hour: annals {} buckets of {} lines, loki {} of {total}",
                counts.len(),
                counts.values().sum::<u64>(),
                theirs.len()
            ));
            break;
        }
    }
    run.latencies(W, "count by level per hour, whole month", ENGINE, &mut times);
    let mut agreed = vec![None; searches.len()];
    for (n, (s, expected)) in searches.iter().zip(reference).enumerate() {
        match loki.search(&s.annals, s.level, s.range.start, s.range.end, 100) {
            Err(e) => run.peer_errors.push(format!("W2 {} search {n}: {ENGINE}: {e}", s.shape)),
            // Both lists are newest first: annals' search order, and Loki's sorted times.
            Ok((found, elapsed)) if &found == expected => agreed[n] = Some(elapsed),
            Ok((found, _)) => run.disagreements.push(search_disagreement(n, s, expected, &found, ENGINE)),
        }
    }
    Ok(agreed)
}

/// How a peer's hits for search `n` differ from annals'.
fn search_disagreement(n: usize, s: &Search, expected: &[i64], found: &[i64], engine: &str) -> String {
    format!(
        "W2 {} search {n} {:?} (level {}): annals {} hits, {engine} {}",
        s.shape,
        s.annals,
        s.level,
        expected.len(),
        found.len()
    )
}
