//! W3 (the NAB series): bytes per point in annals' segments against the CSV files and
//! `zstd -19` of them, with every point read back and checked.

use crate::BenchError;
use crate::report::{Better, RAW, Run, ZSTD};
use annals::workload::w3::NabCorpus;
use annals::{Engine, ScanRequest, SeriesSelector};
use std::collections::HashMap;
use std::path::Path;

const W: &str = "W3";

pub fn run(run: &mut Run, corpus: &NabCorpus, dir: &Path) -> Result<(), BenchError> {
    let points = corpus.points() as f64;
    let repeated: usize = corpus.series.iter().map(|s| s.repeated_timestamps).sum();
    let steps_back: usize = corpus.series.iter().map(|s| s.steps_back).sum();
    println!(
        "W3: {} NAB series, {} points ({repeated} repeated timestamps, {steps_back} steps back in time)",
        corpus.series.len(),
        corpus.points()
    );
    let figure = "bytes per point (segments)";
    run.add(W, figure, "B", Better::Lower, RAW, corpus.csv.len() as f64 / points);
    let zstd19 = zstd::bulk::compress(&corpus.csv, 19).map_err(|e| BenchError::Io("zstd".into(), e))?;
    run.add(W, figure, "B", Better::Lower, ZSTD, zstd19.len() as f64 / points);

    let store = dir.join("annals-w3");
    let engine = Engine::open(&store, crate::store_options())?;
    for batch in corpus.batches(1000)? {
        engine.write(&batch)?;
    }
    engine.flush()?;
    let stats = engine.stats()?;
    run.add(W, figure, "B", Better::Lower, "annals", stats.segment_bytes as f64 / points);

    // Every value comes back as written (the last one where a timestamp repeats).
    let mut expected: HashMap<(String, i64), f64> = HashMap::new();
    for series in &corpus.series {
        for &(ts, v) in &series.points {
            expected.insert((series.name.clone(), ts), v);
        }
    }
    let snapshot = engine.snapshot();
    let mut read = 0usize;
    let request = ScanRequest {
        selector: SeriesSelector::measurement("nab"),
        ..ScanRequest::default()
    };
    for row in snapshot.scan(&request)? {
        let row = row?;
        let name = row.key.tag("series").unwrap_or_default().to_string();
        let value = row.fields.iter().find(|(f, _)| f.as_ref() == "value").and_then(|(_, v)| v.as_f64());
        let want = expected.get(&(name.clone(), row.timestamp));
        if value.is_none() || want.map(|w| w.to_bits()) != value.map(f64::to_bits) {
            run.disagreements
                .push(format!("W3 {name} at {}: stored {value:?}, written {want:?}", row.timestamp));
        }
        read += 1;
    }
    if read != expected.len() {
        run.disagreements
            .push(format!("W3: {read} points read back, {} distinct written", expected.len()));
    }
    drop(snapshot);
    engine.close()?;
    Ok(())
}
