//! The workloads as files any engine can load: W1 and W3 as Influx line protocol, W2 as
//! the JSON lines `annals ingest --format jsonl` reads (integer nanosecond timestamps).

use crate::{Args, BenchError, Workload, create_dir, w2};
use annals::LogEntry;
use annals::workload::w1::{W1, W1Config};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes the chosen workloads into `out` and says what it wrote.
pub fn write(args: &Args, out: &Path) -> Result<(), BenchError> {
    create_dir(out)?;
    let report = |path: &Path, records: u64| {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("{}: {records} records, {bytes} bytes", path.display());
    };
    if args.workload == Workload::W1 || args.workload == Workload::All {
        let path = out.join("w1.lp");
        let rows = w1_line_protocol(&args.w1_config(), &path)?;
        report(&path, rows);
    }
    if args.workload == Workload::W2 || args.workload == Workload::All {
        let path = out.join("w2.jsonl");
        let corpus = w2::corpus()?;
        let mut generator = annals::workload::w2::W2::new(&corpus, args.w2_config());
        let mut file = create(&path)?;
        let mut lines = 0;
        while let Some(entry) = generator.next_entry() {
            writeln!(file, "{}", log_json(&entry)).map_err(|e| BenchError::Io(path.clone(), e))?;
            lines += 1;
        }
        file.flush().map_err(|e| BenchError::Io(path.clone(), e))?;
        report(&path, lines);
    }
    if args.workload == Workload::W3 || args.workload == Workload::All {
        let path = out.join("w3.lp");
        let corpus = annals::workload::w3::NabCorpus::load(&annals::workload::w3::default_nab_dir())?;
        let mut file = create(&path)?;
        corpus
            .write_line_protocol(&mut file)
            .and_then(|()| file.flush())
            .map_err(|e| BenchError::Io(path.clone(), e))?;
        report(&path, corpus.points());
    }
    Ok(())
}

fn create(path: &Path) -> Result<BufWriter<std::fs::File>, BenchError> {
    std::fs::File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| BenchError::Io(path.to_path_buf(), e))
}

/// Writes W1 as line protocol; returns the rows written.
pub fn w1_line_protocol(config: &W1Config, path: &Path) -> Result<u64, BenchError> {
    let mut generator = W1::new(config.clone())?;
    let mut file = create(path)?;
    let mut rows = 0u64;
    loop {
        let n = generator
            .write_line_protocol(&mut file, 10_000)
            .map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
        if n == 0 {
            break;
        }
        rows += n as u64;
    }
    file.flush().map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    Ok(rows)
}

/// A log entry as an annals JSON line.
pub fn log_json(e: &LogEntry) -> serde_json::Value {
    let mut line = serde_json::json!({
        "kind": "log",
        "timestamp": e.timestamp,
        "level": e.level.as_str(),
        "logger_name": e.logger_name,
        "message": e.message,
    });
    let optional = [
        ("module", e.module.clone().map(serde_json::Value::from)),
        ("function_name", e.function_name.clone().map(serde_json::Value::from)),
        ("line_number", e.line_number.map(serde_json::Value::from)),
        ("thread_id", e.thread_id.map(serde_json::Value::from)),
        ("process_id", e.process_id.map(serde_json::Value::from)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            line[key] = v;
        }
    }
    if !e.extra_data.is_empty() {
        let extra: serde_json::Map<String, serde_json::Value> = e.extra_data.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        line["extra_data"] = serde_json::Value::Object(extra);
    }
    if !e.tags.is_empty() {
        line["tags"] = serde_json::json!(e.tags);
    }
    line
}
