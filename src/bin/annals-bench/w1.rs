//! W1 (TSBS cpu-only) on annals and SQLite: ingest, durable single writes, bytes per
//! point, reopen, and every TSBS query with answers checked equal.

use crate::report::{Better, Run, dir_bytes};
use crate::results::Answer;
use crate::sqlite::Sqlite;
use crate::{BenchError, Engines};
use annals::workload::w1::{FIELDS, TsbsQuery, W1, W1Config};
use annals::{Batch, Durability, Engine, Options, SeriesKey};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::{Duration, Instant};

const W: &str = "W1";
/// Durable single writes timed per engine.
const SINGLE_WRITES: usize = 200;

/// The seeded query instances, the same for every engine.
fn instances(config: &W1Config, runs: usize) -> Vec<(TsbsQuery, Vec<annals::Query>)> {
    TsbsQuery::ALL
        .iter()
        .map(|kind| {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            (*kind, (0..runs).map(|_| kind.generate(config, &mut rng)).collect())
        })
        .collect()
}

pub fn run(run: &mut Run, config: &W1Config, runs: usize, dir: &Path, engines: Engines) -> Result<(), BenchError> {
    let queries = instances(config, runs);
    let points = config.points() as f64;
    println!(
        "W1: {} hosts x {:.2} days = {} points; {runs} instances per query",
        config.hosts,
        config.epochs as f64 / 8640.0,
        config.points()
    );
    // annals first: its answers are the reference the peers are checked against.
    let store = dir.join("annals-w1");
    let started = Instant::now();
    let engine = Engine::open(&store, Options::default())?;
    let mut generator = W1::new(config.clone())?;
    let mut batch = Batch::new();
    loop {
        batch.clear();
        if generator.fill_batch(&mut batch, 1000)? == 0 {
            break;
        }
        engine.write(&batch)?;
    }
    engine.close()?;
    let ingest = started.elapsed();
    run.add(
        W,
        "ingest, incl. final flush",
        "points/s",
        Better::Higher,
        "annals",
        points / ingest.as_secs_f64(),
    );
    run.add(
        W,
        "bytes per point",
        "B",
        Better::Lower,
        "annals",
        dir_bytes(&store) as f64 / points,
    );
    let started = Instant::now();
    let engine = Engine::open(
        &store,
        Options {
            durability: Durability::Sync,
            background_flush: false,
            ..Options::default()
        },
    )?;
    run.add(W, "reopen", "ms", Better::Lower, "annals", started.elapsed().as_secs_f64() * 1e3);
    let key = SeriesKey::metric("latency")?.with_tag("hostname", "host_0")?;
    let mut latencies = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES {
        let mut one = Batch::new();
        one.add_row(&key, config.start_ns + i as i64, [("v", annals::FieldValue::F64(i as f64))])?;
        let t = Instant::now();
        engine.write(&one)?;
        latencies.push(t.elapsed());
    }
    run.latencies(W, "durable single write", "annals", &mut latencies);
    let snapshot = engine.snapshot();
    let mut reference = Vec::new();
    let mut annals_times = Vec::new();
    for (_, list) in &queries {
        let mut answers = Vec::with_capacity(list.len());
        let mut times = Vec::with_capacity(list.len());
        for q in list {
            let t = Instant::now();
            let answer = Answer::from_annals(snapshot.query(q)?)?;
            times.push(t.elapsed());
            answers.push(answer);
        }
        reference.push(answers);
        annals_times.push(times);
    }
    drop(snapshot);
    engine.close()?;

    let mut peer_times: Vec<Vec<Option<Duration>>> = vec![Vec::new(); queries.len()];
    if engines.sqlite {
        peer_times = sqlite(run, config, &queries, &reference, dir)?;
    }
    for (i, (kind, _)) in queries.iter().enumerate() {
        // Only instances every engine answered alike count.
        let agreed: Vec<usize> = (0..annals_times[i].len())
            .filter(|&n| !engines.sqlite || peer_times[i].get(n).copied().flatten().is_some())
            .collect();
        let mut mine: Vec<Duration> = agreed.iter().map(|&n| annals_times[i][n]).collect();
        run.latencies(W, kind.name(), "annals", &mut mine);
        if engines.sqlite {
            let mut theirs: Vec<Duration> = agreed.iter().filter_map(|&n| peer_times[i][n]).collect();
            run.latencies(W, kind.name(), "sqlite", &mut theirs);
        }
    }
    Ok(())
}

/// Loads W1 into SQLite and times it; returns per query and instance the time of each
/// answer that agreed with annals (`None` where it differed, recorded in the run).
fn sqlite(
    run: &mut Run,
    config: &W1Config,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    dir: &Path,
) -> Result<Vec<Vec<Option<Duration>>>, BenchError> {
    let db_dir = dir.join("sqlite-w1");
    std::fs::create_dir_all(&db_dir).map_err(|e| BenchError::Io(db_dir.clone(), e))?;
    let points = config.points() as f64;
    let started = Instant::now();
    let mut db = Sqlite::open(&db_dir)?;
    let mut generator = W1::new(config.clone())?;
    let tags: Vec<String> = (0..config.hosts)
        .map(|h| {
            let map: serde_json::Map<String, serde_json::Value> = generator
                .series_key(h)
                .tags()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            serde_json::Value::Object(map).to_string()
        })
        .collect();
    let mut rows: Vec<(i64, &str, f64, &str)> = Vec::with_capacity(1000);
    while let Some((host, ts, values)) = generator.next_reading() {
        for (name, value) in FIELDS.iter().zip(values) {
            rows.push((ts, name, value, &tags[host]));
        }
        if rows.len() >= 1000 {
            db.insert_metrics(&rows)?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        db.insert_metrics(&rows)?;
    }
    db.checkpoint()?;
    let ingest = started.elapsed();
    run.add(
        W,
        "ingest, incl. final flush",
        "points/s",
        Better::Higher,
        "sqlite",
        points / ingest.as_secs_f64(),
    );
    run.add(
        W,
        "bytes per point",
        "B",
        Better::Lower,
        "sqlite",
        dir_bytes(&db_dir) as f64 / points,
    );
    drop(db);
    let started = Instant::now();
    let db = Sqlite::open(&db_dir)?;
    run.add(W, "reopen", "ms", Better::Lower, "sqlite", started.elapsed().as_secs_f64() * 1e3);
    // A durable write in SQLite's WAL mode needs synchronous=FULL.
    db.conn.pragma_update(None, "synchronous", "FULL")?;
    let mut latencies = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES {
        let t = Instant::now();
        db.conn.execute(
            "INSERT INTO system_metrics (timestamp, metric_type, metric_name, value, unit, tags) VALUES (?1, 'latency', 'v', ?2, NULL, '{\"hostname\":\"host_0\"}')",
            rusqlite::params![config.start_ns + i as i64, i as f64],
        )?;
        latencies.push(t.elapsed());
    }
    db.conn.pragma_update(None, "synchronous", "NORMAL")?;
    run.latencies(W, "durable single write", "sqlite", &mut latencies);
    let mut out = Vec::with_capacity(queries.len());
    for ((kind, list), answers) in queries.iter().zip(reference) {
        let mut times = Vec::with_capacity(list.len());
        for (n, (q, expected)) in list.iter().zip(answers).enumerate() {
            let t = Instant::now();
            let answer = db.tsbs(q)?;
            let elapsed = t.elapsed();
            match expected.agrees_with(&answer) {
                Ok(()) => times.push(Some(elapsed)),
                Err(why) => {
                    run.disagreements
                        .push(format!("W1 {} instance {n}: annals vs sqlite: {why}", kind.name()));
                    times.push(None);
                }
            }
        }
        out.push(times);
    }
    Ok(out)
}
