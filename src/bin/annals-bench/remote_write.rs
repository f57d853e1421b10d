//! W1 as Prometheus remote-write requests (protocol 1.0: snappy protobuf `WriteRequest`s),
//! built once into a file and sent alike to `annals serve` and to VictoriaMetrics, each on
//! its own `/api/v1/write`: the ingest rate a Prometheus agent would see.

use crate::BenchError;
use crate::report::Better;
use annals::ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use annals::workload::w1::{FIELDS, W1, W1Config};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

/// The figure.
pub const INGEST_RW: (&str, &str, Better) = ("ingest, remote write over HTTP", "samples/s", Better::Higher);

/// Readings (rows of ten fields) per request: 100,000 samples, about what a Prometheus
/// agent's queue sends under load (`max_samples_per_send` times its shards).
const READINGS_PER_REQUEST: usize = 10_000;

/// Writes W1's readings as request bodies, each prefixed with its length (u32, little
/// endian), to `path`. Returns the number of samples.
pub fn emit(config: &W1Config, path: &Path) -> Result<u64, BenchError> {
    let mut generator = W1::new(config.clone())?;
    let file = std::fs::File::create(path).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut samples = 0u64;
    // Labels of each (host, field), built once.
    let mut labels: Vec<Vec<Vec<Label>>> = Vec::new();
    loop {
        let mut series: std::collections::BTreeMap<(usize, usize), Vec<Sample>> = std::collections::BTreeMap::new();
        let mut readings = 0;
        while readings < READINGS_PER_REQUEST {
            let Some((host, time, values)) = generator.next_reading() else {
                break;
            };
            readings += 1;
            for (field, value) in values.iter().enumerate() {
                series.entry((host, field)).or_default().push(Sample {
                    value: *value,
                    timestamp: time.div_euclid(1_000_000),
                });
            }
        }
        if readings == 0 {
            break;
        }
        let mut request = WriteRequest {
            timeseries: Vec::with_capacity(series.len()),
        };
        for ((host, field), points) in series {
            while labels.len() <= host {
                let key = generator.series_key(labels.len()).clone();
                labels.push(
                    FIELDS
                        .iter()
                        .map(|name| {
                            let mut set = vec![Label {
                                name: "__name__".into(),
                                value: format!("cpu_{name}"),
                            }];
                            set.extend(key.tags().iter().map(|(k, v)| Label {
                                name: k.clone(),
                                value: v.clone(),
                            }));
                            set
                        })
                        .collect(),
                );
            }
            samples += points.len() as u64;
            request.timeseries.push(TimeSeries {
                labels: labels[host][field].clone(),
                samples: points,
                histograms: Vec::new(),
            });
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request))
            .map_err(|e| BenchError::Peer(format!("snappy: {e}")))?;
        let write =
            |out: &mut BufWriter<std::fs::File>, bytes: &[u8]| out.write_all(bytes).map_err(|e| BenchError::Io(path.to_path_buf(), e));
        write(&mut out, &(body.len() as u32).to_le_bytes())?;
        write(&mut out, &body)?;
    }
    out.flush().map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    Ok(samples)
}

/// Sends every body of `path` to `url` with two senders, each taking the next body;
/// every request must be answered 2xx. Returns the seconds taken.
pub fn send(path: &Path, url: &str) -> Result<f64, BenchError> {
    let file = std::fs::File::open(path).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    let reader = parking_lot::Mutex::new(BufReader::with_capacity(1 << 22, file));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(3600)))
        .build()
        .new_agent();
    let next = || -> Result<Option<Vec<u8>>, BenchError> {
        let mut reader = reader.lock();
        let mut length = [0u8; 4];
        match reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(BenchError::Io(path.to_path_buf(), e)),
        }
        let mut body = vec![0u8; u32::from_le_bytes(length) as usize];
        reader.read_exact(&mut body).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
        Ok(Some(body))
    };
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<(), BenchError> {
        let senders: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| -> Result<(), BenchError> {
                    while let Some(body) = next()? {
                        let mut response = agent
                            .post(url)
                            .header("Content-Encoding", "snappy")
                            .header("Content-Type", "application/x-protobuf")
                            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                            .send(&body[..])
                            .map_err(|e| BenchError::Peer(format!("{url}: {e}")))?;
                        if !response.status().is_success() {
                            let text = response.body_mut().read_to_string().unwrap_or_default();
                            return Err(BenchError::Peer(format!("{url}: {}: {text}", response.status())));
                        }
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
    })?;
    Ok(started.elapsed().as_secs_f64())
}
