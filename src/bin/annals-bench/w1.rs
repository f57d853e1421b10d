//! W1 (TSBS cpu-only) on annals, SQLite and VictoriaMetrics: ingest (embedded, and from the
//! same line-protocol file that VictoriaMetrics is fed over HTTP), peak RSS, durable single
//! writes, bytes per point, reopen, and every TSBS query with answers checked equal.

use crate::child;
use crate::influx::InfluxDb;
use crate::report::{Better, Run, dir_bytes};
use crate::results::{Answer, Materialized};
use crate::sqlite::Sqlite;
use crate::victoria::{self, Victoria};
use crate::{BenchError, Engines, Workload};
use annals::ingest::{Format, Line, LineReader, Parser};
use annals::workload::w1::{FIELDS, TsbsQuery, W1, W1Config};
use annals::{Batch, Durability, Engine, Options, SeriesKey};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

const W: &str = "W1";
/// Figures every engine reports (or says why not), with their unit and direction.
const INGEST: (&str, &str, Better) = ("ingest, embedded, incl. final flush", "points/s", Better::Higher);
const INGEST_LP: (&str, &str, Better) = ("ingest, line protocol over HTTP", "points/s", Better::Higher);
const INGEST_LP_FILE: (&str, &str, Better) = ("ingest, line protocol file, embedded", "points/s", Better::Higher);
const RSS_HTTP: (&str, &str, Better) = ("peak RSS, HTTP ingest", "MiB", Better::Lower);
const BYTES: (&str, &str, Better) = ("bytes per point", "B", Better::Lower);
const RSS: (&str, &str, Better) = ("peak RSS, ingest", "MiB", Better::Lower);
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

/// The baseline column of the durable-write rows: the disk itself.
pub const DISK: &str = "disk";

/// The disk's own durable-write latency: a 4 KiB append to a file followed by
/// `fdatasync`, as many times as the engines' single writes.
fn disk_fsync_latencies(dir: &Path) -> Result<Vec<std::time::Duration>, BenchError> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).map_err(|e| BenchError::Io(path.clone(), e))?;
    let block = [0x5au8; 4096];
    let mut out = Vec::with_capacity(SINGLE_WRITES);
    for _ in 0..SINGLE_WRITES {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .map_err(|e| BenchError::Io(path.clone(), e))?;
        out.push(t.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}

/// Loads W1 into a new annals store through the embedded API (1000-row batches, group
/// commit), closing it (final flush) at the end.
pub fn load_annals(config: &W1Config, store: &Path) -> Result<(), BenchError> {
    let engine = Engine::open(store, crate::store_options())?;
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
    Ok(())
}

/// Loads W1 into SQLite (one row per value, 1000-row transactions), checkpointing at the end.
pub fn load_sqlite(config: &W1Config, db_dir: &Path) -> Result<(), BenchError> {
    crate::create_dir(db_dir)?;
    let mut db = Sqlite::open(db_dir)?;
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
    Ok(())
}

/// Records a child's load as the ingest rate and peak RSS figures.
fn loaded(run: &mut Run, engine: &str, points: f64, loaded: &child::Loaded) {
    run.add(W, INGEST.0, INGEST.1, INGEST.2, engine, points / loaded.seconds);
    match loaded.peak_rss_bytes {
        Some(bytes) => run.add(W, RSS.0, RSS.1, RSS.2, engine, bytes as f64 / (1 << 20) as f64),
        None => run.missing(W, RSS.0, RSS.1, RSS.2, engine, "no /proc"),
    }
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
    let load = child::load(&engines, Workload::W1, "annals", &store)?;
    loaded(run, "annals", points, &load);
    run.add(W, BYTES.0, BYTES.1, BYTES.2, "annals", dir_bytes(&store) as f64 / points);
    let started = Instant::now();
    let engine = Engine::open(
        &store,
        Options {
            durability: Durability::Sync,
            background_flush: false,
            ..crate::store_options()
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
    let mut fsyncs = disk_fsync_latencies(dir)?;
    run.latencies(W, "durable single write", DISK, &mut fsyncs);
    let snapshot = engine.snapshot();
    let mut reference = Vec::new();
    let mut annals_times = Vec::new();
    for (_, list) in &queries {
        let mut answers = Vec::with_capacity(list.len());
        let mut times = Vec::with_capacity(list.len());
        for q in list {
            let t = Instant::now();
            let result = Materialized::read(snapshot.query(q)?)?;
            times.push(t.elapsed());
            answers.push(Answer::from_annals(&result));
        }
        reference.push(answers);
        annals_times.push(times);
    }
    drop(snapshot);
    engine.close()?;

    for ((kind, _), times) in queries.iter().zip(&mut annals_times) {
        run.latencies(W, kind.name(), "annals", times);
    }
    parquet_export(run, config, &store, dir)?;
    queries_over_http(run, &queries, &reference, &store)?;
    if engines.sqlite {
        // The original schema takes about 320 bytes per point (measured at quick scale).
        let needed = config.points() * 330;
        match crate::report::free_bytes(dir) {
            Some(free) if needed > free / 10 * 9 => {
                let why = format!(
                    "not run: needs ~{} GB of disk, {} GB free",
                    needed / 1_000_000_000,
                    free / 1_000_000_000
                );
                println!("SQLite W1 {why}");
                for (figure, unit, better) in [INGEST, BYTES] {
                    run.missing(W, figure, unit, better, "sqlite", &why);
                }
            }
            _ => sqlite(run, config, &queries, &reference, dir, &engines)?,
        }
    }
    if engines.victoria.is_none() && engines.influxdb.is_none() {
        return Ok(());
    }
    // The servers are fed the same line-protocol file, as is annals (embedded and served).
    let lp = dir.join("w1.lp");
    let started = Instant::now();
    let rows = crate::emit::w1_line_protocol(config, &lp)?;
    println!(
        "W1 as line protocol: {rows} rows, {:.1} MB in {:.1?}",
        std::fs::metadata(&lp).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        started.elapsed()
    );
    let seconds = load_annals_line_protocol(&lp, &dir.join("annals-w1-lp"))?;
    run.add(W, INGEST_LP_FILE.0, INGEST_LP_FILE.1, INGEST_LP_FILE.2, "annals", points / seconds);
    annals_over_http(run, config, &lp, &dir.join("annals-w1-http"))?;
    let servers = [("victoria", engines.victoria), ("influxdb", engines.influxdb)];
    for (engine, binary) in servers {
        let Some(binary) = binary else { continue };
        run.missing(W, INGEST_LP_FILE.0, INGEST_LP_FILE.1, INGEST_LP_FILE.2, engine, "not embeddable");
        let binary = match binary {
            Ok(binary) => binary,
            Err(why) => {
                let why = format!("not available: {why}");
                for (figure, unit, better) in [INGEST_LP, BYTES, RSS, RSS_HTTP] {
                    run.missing(W, figure, unit, better, engine, &why);
                }
                continue;
            }
        };
        match engine {
            "victoria" => {
                remote_write(run, config, dir, Some(binary), &queries)?;
                victoria_metrics(run, config, &queries, &reference, dir, binary, &lp)?;
            }
            _ => influxdb(run, config, &queries, &reference, dir, binary, &lp)?,
        }
    }
    if engines.victoria.is_some_and(|binary| binary.is_err()) {
        // Prometheus' remote-write row still runs without VictoriaMetrics.
        remote_write(run, config, dir, None, &queries)?;
    }
    let _ = std::fs::remove_file(&lp);
    Ok(())
}

/// Parses a line-protocol file and writes it through the embedded API, as `annals ingest`
/// does: one thread parses into 1000-row batches while the caller's thread writes them.
/// Returns the seconds taken, final flush included.
fn load_annals_line_protocol(lp: &Path, store: &Path) -> Result<f64, BenchError> {
    let started = Instant::now();
    let engine = Engine::open(store, crate::store_options())?;
    let file = std::fs::File::open(lp).map_err(|e| BenchError::Io(lp.to_path_buf(), e))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let parsed = std::thread::scope(|scope| -> Result<(), BenchError> {
        let parser = scope.spawn(move || -> Result<(), BenchError> {
            let max_line = 1 << 20;
            let mut reader = LineReader::new(BufReader::with_capacity(1 << 20, file), max_line);
            let mut parser = Parser::new(Format::LineProtocol, Default::default(), Default::default());
            let mut batch = Batch::new();
            while let Some((number, line)) = reader.next_line().map_err(|e| BenchError::Io(lp.to_path_buf(), e))? {
                if let Some(e) = line.error(number, max_line) {
                    return Err(e.into());
                }
                if let Line::Text(text) = line {
                    parser.parse_into(text, number, 0, &mut batch)?;
                }
                if batch.len() >= 1000 && tx.send(std::mem::take(&mut batch)).is_err() {
                    return Ok(());
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(())
        });
        let mut written = Ok(());
        for batch in rx {
            if let Err(e) = engine.write(&batch) {
                written = Err(e.into());
                break;
            }
        }
        let parsed = parser
            .join()
            .unwrap_or_else(|_| Err(BenchError::Peer("the line-protocol parser thread panicked".into())));
        written.and(parsed)
    });
    parsed?;
    engine.close()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Sends a line-protocol file over HTTP as TSBS's loader does: two senders, each taking
/// the next 10,000 lines of the file and posting them with `post`.
fn send_line_protocol(lp: &Path, post: &(dyn Fn(&[u8]) -> Result<(), BenchError> + Sync)) -> Result<(), BenchError> {
    let file = std::fs::File::open(lp).map_err(|e| BenchError::Io(lp.to_path_buf(), e))?;
    let reader = parking_lot::Mutex::new(BufReader::with_capacity(1 << 22, file));
    two_senders(
        &|| {
            let mut chunk = Vec::with_capacity(8 << 20);
            let mut reader = reader.lock();
            for _ in 0..10_000 {
                match reader.read_until(b'\n', &mut chunk) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(BenchError::Io(lp.to_path_buf(), e)),
                }
            }
            Ok((!chunk.is_empty()).then_some(chunk))
        },
        post,
    )
}

/// Two sender threads, each taking the next request body from `next` (until `None`) and
/// posting it with `post`, as TSBS's loaders and Prometheus' queue do.
pub fn two_senders(
    next: &(dyn Fn() -> Result<Option<Vec<u8>>, BenchError> + Sync),
    post: &(dyn Fn(&[u8]) -> Result<(), BenchError> + Sync),
) -> Result<(), BenchError> {
    std::thread::scope(|scope| -> Result<(), BenchError> {
        let senders: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| -> Result<(), BenchError> {
                    while let Some(body) = next()? {
                        post(&body)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for sender in senders {
            sender
                .join()
                .unwrap_or_else(|_| Err(BenchError::Peer("a sender thread panicked".into())))?;
        }
        Ok(())
    })
}

/// Feeds the line-protocol file to `annals serve` (in a child process) with the sender
/// VictoriaMetrics gets: every request is acknowledged only once durable, so the time is
/// to durable and queryable. Then the server's peak RSS, and a check that every point
/// arrived.
fn annals_over_http(run: &mut Run, config: &W1Config, lp: &Path, store: &Path) -> Result<(), BenchError> {
    let points = config.points() as f64;
    let server = crate::child::HttpServer::start(store)?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(3600)))
        .build()
        .new_agent();
    let url = format!("{}/write", server.base);
    let started = Instant::now();
    send_line_protocol(lp, &|chunk| {
        let mut response = agent
            .post(&url)
            .send(chunk)
            .map_err(|e| BenchError::Peer(format!("annals /write: {e}")))?;
        if response.status().as_u16() != 204 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(BenchError::Peer(format!("annals /write: {}: {body}", response.status())));
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    run.add(W, INGEST_LP.0, INGEST_LP.1, INGEST_LP.2, "annals", points / seconds);
    match server.peak_rss() {
        Some(bytes) => run.add(W, RSS_HTTP.0, RSS_HTTP.1, RSS_HTTP.2, "annals", bytes as f64 / (1 << 20) as f64),
        None => run.missing(W, RSS_HTTP.0, RSS_HTTP.1, RSS_HTTP.2, "annals", "no /proc"),
    }
    server.stop()?;
    let engine = Engine::open(store, crate::store_options())?;
    let stored = engine.stats()?.points;
    engine.close()?;
    if stored != config.points() {
        return Err(BenchError::Peer(format!(
            "annals over HTTP stored {stored} points of {}",
            config.points()
        )));
    }
    Ok(())
}

/// The store exported as a partitioned Parquet dataset (`annals::dataset`): Parquet bytes
/// written per second, and their size against the store's.
fn parquet_export(run: &mut Run, config: &W1Config, store: &Path, dir: &Path) -> Result<(), BenchError> {
    use annals::dataset::{DatasetOptions, Destination, export_dataset};
    const RATE: (&str, &str, Better) = ("Parquet export, partitioned", "MB/s", Better::Higher);
    const SIZE: (&str, &str, Better) = ("Parquet bytes / store bytes", "x", Better::Lower);
    let out = dir.join("annals-w1-parquet");
    let _ = std::fs::remove_dir_all(&out);
    let engine = Engine::open(store, crate::store_options())?;
    let options = DatasetOptions::new(Destination::Directory(out.clone()));
    let started = Instant::now();
    let summary = export_dataset(&engine, &options, &mut |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    engine.close()?;
    // The store holds the durable single writes too: its rows, not W1's, are the count.
    if summary.rows < config.rows() {
        return Err(BenchError::Peer(format!(
            "the Parquet export wrote {} of {} rows",
            summary.rows,
            config.rows()
        )));
    }
    run.add(W, RATE.0, RATE.1, RATE.2, "annals", summary.bytes as f64 / 1e6 / seconds);
    run.add(W, SIZE.0, SIZE.1, SIZE.2, "annals", summary.bytes as f64 / dir_bytes(store) as f64);
    for (figure, unit, better) in [RATE, SIZE] {
        run.missing(W, figure, unit, better, "victoria", "no Parquet export");
    }
    println!(
        "W1 as Parquet: {} rows, {:.1} MB in {} files, {seconds:.2} s",
        summary.rows,
        summary.bytes as f64 / 1e6,
        summary.files_written
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// W1 as remote-write requests to `annals serve`, VictoriaMetrics and Prometheus (a fresh
/// instance of each): samples per second until the last request is answered, a check that
/// each stored every sample once, and then the TSBS queries written in PromQL
/// (`query_range`), every answer checked against annals'.
fn remote_write(
    run: &mut Run,
    config: &W1Config,
    dir: &Path,
    victoria: Option<&Path>,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
) -> Result<(), BenchError> {
    use crate::remote_write::{INGEST_RW, PROMQL_QUERIES, PromApi, Prometheus, PromqlInstance, Timed, agree, emit, promql, send};
    let bodies = dir.join("w1.rw");
    let started = Instant::now();
    let samples = emit(config, &bodies)?;
    println!(
        "W1 as remote-write requests: {samples} samples, {:.1} MB in {:.1?}",
        std::fs::metadata(&bodies).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        started.elapsed()
    );
    let instances: Vec<(TsbsQuery, Vec<PromqlInstance>)> = queries
        .iter()
        .filter(|(kind, _)| PROMQL_QUERIES.contains(kind))
        .map(|(kind, list)| (*kind, list.iter().filter_map(|q| promql(*kind, q)).collect()))
        .collect();
    let figure = |kind: TsbsQuery| format!("{} in PromQL (query_range)", kind.name());
    // Every instance asked of `api`: its answers and times, per query.
    let ask = |api: &PromApi| -> Result<Vec<Vec<Timed>>, BenchError> {
        instances
            .iter()
            .map(|(_, list)| {
                list.iter()
                    .map(|(expr, start, end, step)| api.query_range(expr, *start, *end, *step))
                    .collect()
            })
            .collect()
    };
    // A peer's answers against annals': the times of those that agree. A query the peer
    // fails (Prometheus 2.42 can fail one while it compacts out-of-order samples) is
    // asked once more a second later, then left out as the peer's error.
    let compare = |run: &mut Run, engine: &str, reference: &[Vec<Timed>], api: &PromApi| {
        for ((kind, list), expected) in instances.iter().zip(reference) {
            let mut times = Vec::new();
            for (n, ((expr, start, end, step), (want, _))) in list.iter().zip(expected).enumerate() {
                let answered = api.query_range(expr, *start, *end, *step).or_else(|_| {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    api.query_range(expr, *start, *end, *step)
                });
                match answered {
                    Err(e) => run.peer_errors.push(format!("W1 {} instance {n}: {engine}: {e}", figure(*kind))),
                    Ok((answer, elapsed)) => match agree(want, &answer) {
                        Ok(()) => times.push(elapsed),
                        Err(why) => run
                            .disagreements
                            .push(format!("W1 {} instance {n}: annals vs {engine}: {why}", figure(*kind))),
                    },
                }
            }
            run.latencies(W, &figure(*kind), engine, &mut times);
        }
    };

    let store = dir.join("annals-w1-rw");
    let server = crate::child::HttpServer::start(&store)?;
    let seconds = send(&bodies, &format!("{}/api/v1/write", server.base))?;
    run.add(W, INGEST_RW.0, INGEST_RW.1, INGEST_RW.2, "annals", samples as f64 / seconds);
    let reference = ask(&PromApi::new(&server.base))?;
    if reference.iter().flatten().any(|(answer, _)| answer.is_empty()) {
        return Err(BenchError::Peer("annals answered a PromQL query of W1 with no series".into()));
    }
    for ((kind, _), answers) in instances.iter().zip(&reference) {
        let mut times: Vec<std::time::Duration> = answers.iter().map(|(_, t)| *t).collect();
        run.latencies(W, &figure(*kind), "annals", &mut times);
    }
    server.stop()?;
    let engine = Engine::open(&store, crate::store_options())?;
    let stored = engine.stats()?.points;
    engine.close()?;
    let _ = std::fs::remove_dir_all(&store);
    if stored != samples {
        return Err(BenchError::Peer(format!(
            "annals stored {stored} of {samples} remote-write samples"
        )));
    }
    match victoria {
        None => run.missing(W, INGEST_RW.0, INGEST_RW.1, INGEST_RW.2, "victoria", "not available"),
        Some(binary) => {
            let storage = dir.join("victoria-w1-rw");
            let vm = Victoria::start(binary, &storage)?;
            let seconds = send(&bodies, &format!("{}/api/v1/write", vm.base()))?;
            vm.flush()?;
            run.add(W, INGEST_RW.0, INGEST_RW.1, INGEST_RW.2, "victoria", samples as f64 / seconds);
            let inserted = vm.own_metric("vm_rows_inserted_total{type=\"promremotewrite\"}")?.unwrap_or(0.0);
            if inserted as u64 != samples {
                return Err(BenchError::Peer(format!(
                    "VictoriaMetrics took {inserted} of {samples} remote-write samples"
                )));
            }
            compare(run, "victoria", &reference, &PromApi::new(vm.base()));
            drop(vm);
            let _ = std::fs::remove_dir_all(&storage);
        }
    }
    let storage = dir.join("prometheus-w1-rw");
    match Prometheus::start(&storage) {
        Err(why) => {
            run.missing(
                W,
                INGEST_RW.0,
                INGEST_RW.1,
                INGEST_RW.2,
                "prometheus",
                &format!("not available: {why}"),
            );
        }
        Ok(prometheus) => match send(&bodies, &format!("{}/api/v1/write", prometheus.base())) {
            Ok(seconds) => {
                run.add(W, INGEST_RW.0, INGEST_RW.1, INGEST_RW.2, "prometheus", samples as f64 / seconds);
                compare(run, "prometheus", &reference, &PromApi::new(prometheus.base()));
            }
            Err(e) => {
                run.missing(W, INGEST_RW.0, INGEST_RW.1, INGEST_RW.2, "prometheus", &format!("failed: {e}"));
                run.peer_errors.push(format!("W1 remote write: prometheus: {e}"));
            }
        },
    }
    let _ = std::fs::remove_dir_all(&storage);
    let _ = std::fs::remove_file(&bodies);
    Ok(())
}

/// The queries timed over HTTP as well: what an application in another process waits for,
/// JSON encoding and decoding included.
const HTTP_QUERIES: [TsbsQuery; 2] = [TsbsQuery::Range10k, TsbsQuery::SingleGroupby111];

/// The name of a query's figure over HTTP.
fn over_http(kind: TsbsQuery) -> String {
    format!("{} over HTTP", kind.name())
}

/// Times range-10k and single-groupby-1-1-1 over `GET /history/metrics` of `annals serve`
/// (a child of the harness, on the loaded store), reading each answer whole and checking it
/// equals the embedded one; VictoriaMetrics' times over its `query_range` stand beside them.
fn queries_over_http(
    run: &mut Run,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    store: &Path,
) -> Result<(), BenchError> {
    let server = crate::child::HttpServer::start(store)?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .new_agent();
    for ((kind, list), answers) in queries.iter().zip(reference) {
        if !HTTP_QUERIES.contains(kind) {
            continue;
        }
        let mut times = Vec::with_capacity(list.len());
        for (n, (q, expected)) in list.iter().zip(answers).enumerate() {
            let url = format!("{}/history/metrics?{}", server.base, http_parameters(*kind, q)?);
            let started = Instant::now();
            let mut response = agent
                .get(&url)
                .call()
                .map_err(|e| BenchError::Peer(format!("annals GET /history/metrics: {e}")))?;
            let status = response.status().as_u16();
            let body = response.body_mut().with_config().limit(1 << 30).read_to_string();
            let page: Option<serde_json::Value> = body.ok().and_then(|b| serde_json::from_str(&b).ok());
            let elapsed = started.elapsed();
            let answer = match (status, page) {
                (200, Some(page)) => answer_of_page(&page),
                (status, page) => return Err(BenchError::Peer(format!("annals GET /history/metrics: {status}: {page:?}"))),
            };
            match expected.agrees_with(&answer) {
                Ok(()) => times.push(elapsed),
                Err(why) => run
                    .disagreements
                    .push(format!("W1 {} instance {n}: annals embedded vs over HTTP: {why}", kind.name())),
            }
        }
        run.latencies(W, &over_http(*kind), "annals", &mut times);
    }
    server.stop()
}

/// The query string of a TSBS query of `GET /history/metrics` (times as nanoseconds).
fn http_parameters(kind: TsbsQuery, q: &annals::Query) -> Result<String, BenchError> {
    let host = match &q.selector.predicate {
        Some(annals::TagPredicate::Eq(_, h)) => h.clone(),
        other => return Err(BenchError::Peer(format!("{}: unexpected selector {other:?}", kind.name()))),
    };
    let mut pairs = vec![
        ("measurement", "cpu".to_string()),
        ("where", format!("hostname={host}")),
        ("from", q.range.start.to_string()),
        ("to", q.range.end.to_string()),
        ("time_format", "ns".to_string()),
    ];
    match kind {
        TsbsQuery::Range10k => {
            pairs.push(("order", "desc".into()));
            pairs.push(("limit", q.limit.unwrap_or(1000).to_string()));
        }
        _ => {
            pairs.push(("agg", format!("max({})", FIELDS[0])));
            pairs.push(("every", "1m".into()));
        }
    }
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('=', "%3D").replace(' ', "%20").replace(',', "%2C")))
        .collect::<Vec<_>>()
        .join("&"))
}

/// An answer of `GET /history/metrics` (`time_format=ns`) in the comparable form.
fn answer_of_page(page: &serde_json::Value) -> Answer {
    let columns: Vec<&str> = page["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let host = columns.iter().position(|c| *c == "hostname");
    let mut answer = Answer::default();
    for row in page["rows"].as_array().into_iter().flatten() {
        let Some(cells) = row.as_array() else { continue };
        let time = cells.first().and_then(|t| t.as_i64()).unwrap_or(0);
        let group = host.and_then(|i| cells.get(i)).and_then(|v| v.as_str()).unwrap_or_default();
        for (i, name) in columns.iter().enumerate() {
            if i == 0 || Some(i) == host {
                continue;
            }
            if let Some(v) = cells.get(i).and_then(|v| v.as_f64()) {
                answer.put(time, group, name, v);
            }
        }
    }
    answer
}

/// Feeds the line-protocol file to VictoriaMetrics over HTTP (two senders, 10,000 lines per
/// request, like TSBS's loader), then measures bytes, peak RSS, restart and every query.
fn victoria_metrics(
    run: &mut Run,
    config: &W1Config,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    dir: &Path,
    binary: &Path,
    lp: &Path,
) -> Result<(), BenchError> {
    const ENGINE: &str = "victoria";
    let points = config.points() as f64;
    let mut vm = Victoria::start(binary, &dir.join("victoria-w1"))?;
    let started = Instant::now();
    send_line_protocol(lp, &|chunk| vm.write(chunk))?;
    vm.flush()?;
    let ingest = started.elapsed();
    run.add(W, INGEST_LP.0, INGEST_LP.1, INGEST_LP.2, ENGINE, points / ingest.as_secs_f64());
    run.missing(W, INGEST.0, INGEST.1, INGEST.2, ENGINE, "not embeddable");
    let month = annals::Month::of(config.start_ns);
    vm.force_merge(&format!("{:04}_{:02}", month.year(), month.month()))?;
    let storage = vm.storage();
    run.add(W, BYTES.0, BYTES.1, BYTES.2, ENGINE, dir_bytes(&storage) as f64 / points);
    server_rss(run, ENGINE, vm.peak_rss());
    let probe = format!(
        "/api/v1/query?query=count(cpu_usage_user)&time={}",
        (config.end_ns() / 1_000_000_000) + 1
    );
    let reopen = vm.restart(&probe)?;
    run.add(W, "reopen", "ms", Better::Lower, ENGINE, reopen.as_secs_f64() * 1e3);
    run.missing(
        W,
        "durable single write p50",
        "ms",
        Better::Lower,
        ENGINE,
        "none: /write is acknowledged before fsync",
    );
    ask_server(
        run,
        ENGINE,
        queries,
        reference,
        |kind, q| vm.tsbs(kind, q, config.end_ns()),
        victoria::comparable,
    );
    Ok(())
}

/// A server's peak RSS as both RSS rows: it is only ever fed over HTTP.
fn server_rss(run: &mut Run, engine: &str, peak: Option<u64>) {
    for (figure, unit, better) in [RSS, RSS_HTTP] {
        match peak {
            Some(bytes) => run.add(W, figure, unit, better, engine, bytes as f64 / (1 << 20) as f64),
            None => run.missing(W, figure, unit, better, engine, "no /proc"),
        }
    }
}

/// Asks a server every query instance, checks each answer against the part of annals'
/// that `asked_of` says it was asked for, and records the times of those that agree (in
/// the over-HTTP rows too: a server is only ever asked over HTTP). A query the server
/// fails is its error, left out of its times.
fn ask_server(
    run: &mut Run,
    engine: &str,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    ask: impl Fn(TsbsQuery, &annals::Query) -> Result<(Answer, std::time::Duration), BenchError>,
    asked_of: impl Fn(TsbsQuery, &annals::Query, &Answer) -> Answer,
) {
    for ((kind, list), answers) in queries.iter().zip(reference) {
        let mut times = Vec::with_capacity(list.len());
        for (n, (q, expected)) in list.iter().zip(answers).enumerate() {
            match ask(*kind, q) {
                Err(e) => run.peer_errors.push(format!("W1 {} instance {n}: {engine}: {e}", kind.name())),
                Ok((answer, elapsed)) => match asked_of(*kind, q, expected).agrees_with(&answer) {
                    Ok(()) => times.push(elapsed),
                    Err(why) => run
                        .disagreements
                        .push(format!("W1 {} instance {n}: annals vs {engine}: {why}", kind.name())),
                },
            }
        }
        if HTTP_QUERIES.contains(kind) {
            run.latencies(W, &over_http(*kind), engine, &mut times.clone());
        }
        run.latencies(W, kind.name(), engine, &mut times);
    }
}

/// Feeds the line-protocol file to InfluxDB 1.x over HTTP (the senders VictoriaMetrics
/// gets), checks it stored every row, then measures bytes at rest, peak RSS, restart,
/// durable single writes and every query in InfluxQL, each answer checked against annals'
/// whole answer.
fn influxdb(
    run: &mut Run,
    config: &W1Config,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    dir: &Path,
    binary: &Path,
    lp: &Path,
) -> Result<(), BenchError> {
    const ENGINE: &str = "influxdb";
    let points = config.points() as f64;
    let mut influx = InfluxDb::start(binary, &dir.join("influxdb-w1"))?;
    let started = Instant::now();
    send_line_protocol(lp, &|chunk| influx.write(chunk))?;
    let ingest = started.elapsed();
    run.add(W, INGEST_LP.0, INGEST_LP.1, INGEST_LP.2, ENGINE, points / ingest.as_secs_f64());
    run.missing(W, INGEST.0, INGEST.1, INGEST.2, ENGINE, "not embeddable");
    let counted = influx.statement(&format!("SELECT count({}) FROM cpu", FIELDS[0]))?;
    let stored = counted["series"][0]["values"][0][1].as_u64().unwrap_or(0);
    if stored != config.rows() {
        return Err(BenchError::Peer(format!("InfluxDB stored {stored} of {} W1 rows", config.rows())));
    }
    influx.settle(std::time::Duration::from_secs(1800))?;
    let bytes: u64 = influx.storage().iter().map(|d| dir_bytes(d)).sum();
    run.add(W, BYTES.0, BYTES.1, BYTES.2, ENGINE, bytes as f64 / points);
    server_rss(run, ENGINE, influx.peak_rss());
    let probe = format!(
        "SELECT count({}) FROM cpu WHERE time >= {}",
        FIELDS[0],
        config.end_ns() - 3_600_000_000_000
    );
    let reopen = influx.restart(&probe)?;
    run.add(W, "reopen", "ms", Better::Lower, ENGINE, reopen.as_secs_f64() * 1e3);
    let mut latencies = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES {
        let line = format!("latency,hostname=host_0 v={i} {}\n", config.start_ns + i as i64);
        let t = Instant::now();
        influx.write(line.as_bytes())?;
        latencies.push(t.elapsed());
    }
    run.latencies(W, "durable single write", ENGINE, &mut latencies);
    // InfluxQL asks every query as annals does: the whole answer is compared.
    ask_server(
        run,
        ENGINE,
        queries,
        reference,
        |kind, q| influx.tsbs(kind, q),
        |_, _, whole| Answer(whole.0.clone()),
    );
    Ok(())
}

/// Loads W1 into SQLite (in a child process) and times every query, counting the instances
/// whose answer agrees with annals'.
fn sqlite(
    run: &mut Run,
    config: &W1Config,
    queries: &[(TsbsQuery, Vec<annals::Query>)],
    reference: &[Vec<Answer>],
    dir: &Path,
    engines: &Engines,
) -> Result<(), BenchError> {
    let db_dir = dir.join("sqlite-w1");
    let points = config.points() as f64;
    let load = child::load(engines, Workload::W1, "sqlite", &db_dir)?;
    loaded(run, "sqlite", points, &load);
    run.add(W, BYTES.0, BYTES.1, BYTES.2, "sqlite", dir_bytes(&db_dir) as f64 / points);
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
    for ((kind, list), answers) in queries.iter().zip(reference) {
        let mut times = Vec::with_capacity(list.len());
        for (n, (q, expected)) in list.iter().zip(answers).enumerate() {
            let t = Instant::now();
            let answer = db.tsbs(q)?;
            let elapsed = t.elapsed();
            match expected.agrees_with(&answer) {
                Ok(()) => times.push(elapsed),
                Err(why) => run
                    .disagreements
                    .push(format!("W1 {} instance {n}: annals vs sqlite: {why}", kind.name())),
            }
        }
        run.latencies(W, kind.name(), "sqlite", &mut times);
    }
    Ok(())
}
