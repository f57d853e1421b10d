//! W2 (Loghub logs) on annals and SQLite FTS5: ingest, bytes per line, and term, phrase
//! and boolean searches with a level filter and a one-day window (newest 100), answers
//! checked equal.

use crate::report::{Better, Run, dir_bytes};
use crate::sqlite::Sqlite;
use crate::{BenchError, Engines};
use annals::workload::w2::{LoghubCorpus, W2, W2Config};
use annals::{Engine, LogEntry, Options, SearchQuery, TagPredicate, TimeRange};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

pub fn run(run: &mut Run, corpus: &LoghubCorpus, config: &W2Config, runs: usize, dir: &Path, engines: Engines) -> Result<(), BenchError> {
    let mut generator = W2::new(corpus, config.clone());
    let mut entries = Vec::with_capacity(config.lines as usize);
    while let Some(e) = generator.next_entry() {
        entries.push(e);
    }
    let lines = entries.len() as f64;
    let raw: usize = entries.iter().map(|e| e.message.len() + 1).sum();
    println!(
        "W2: {} log lines from {} Loghub lines ({:.1} message bytes per line); {runs} searches per shape",
        entries.len(),
        corpus.len(),
        raw as f64 / lines
    );
    let searches = searches(&entries, config, runs);

    let store = dir.join("annals-w2");
    let started = Instant::now();
    let engine = Engine::open(&store, Options::default())?;
    for chunk in entries.chunks(1000) {
        let mut batch = annals::Batch::new();
        for e in chunk {
            batch.add_log(e)?;
        }
        engine.write(&batch)?;
    }
    engine.close()?;
    run.add(
        W,
        "ingest, incl. flush and index",
        "lines/s",
        Better::Higher,
        "annals",
        lines / started.elapsed().as_secs_f64(),
    );
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
            ..Options::default()
        },
    )?;
    let snapshot = engine.snapshot();
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

    let mut peer: Vec<Option<Duration>> = vec![None; searches.len()];
    if engines.sqlite {
        let db_dir = dir.join("sqlite-w2");
        std::fs::create_dir_all(&db_dir).map_err(|e| BenchError::Io(db_dir.clone(), e))?;
        let started = Instant::now();
        let mut db = Sqlite::open(&db_dir)?;
        for chunk in entries.chunks(1000) {
            db.insert_logs(chunk)?;
        }
        db.checkpoint()?;
        run.add(
            W,
            "ingest, incl. flush and index",
            "lines/s",
            Better::Higher,
            "sqlite",
            lines / started.elapsed().as_secs_f64(),
        );
        run.add(
            W,
            "bytes per line (all files)",
            "B",
            Better::Lower,
            "sqlite",
            dir_bytes(&db_dir) as f64 / lines,
        );
        for (n, (s, expected)) in searches.iter().zip(&reference).enumerate() {
            let t = Instant::now();
            let found = db.search(&s.fts5, s.level, s.range.start, s.range.end, 100)?;
            let elapsed = t.elapsed();
            if &found == expected {
                peer[n] = Some(elapsed);
            } else {
                run.disagreements.push(format!(
                    "W2 {} search {n} {:?} (level {}): annals {} hits, sqlite {}",
                    s.shape,
                    s.annals,
                    s.level,
                    expected.len(),
                    found.len()
                ));
            }
        }
    }
    for shape in ["term", "phrase", "boolean"] {
        let figure = format!("search {shape} + level + 1 day, newest 100");
        let agreed: Vec<usize> = (0..searches.len())
            .filter(|&n| searches[n].shape == shape && (!engines.sqlite || peer[n].is_some()))
            .collect();
        let mut mine: Vec<Duration> = agreed.iter().map(|&n| annals_times[n]).collect();
        run.latencies(W, &figure, "annals", &mut mine);
        if engines.sqlite {
            let mut theirs: Vec<Duration> = agreed.iter().filter_map(|&n| peer[n]).collect();
            run.latencies(W, &figure, "sqlite", &mut theirs);
        }
    }
    Ok(())
}
