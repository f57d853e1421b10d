//! Prometheus remote write, protocol 1.0: a snappy-compressed (block format) protobuf
//! `prometheus.WriteRequest`, as Prometheus, Grafana Agent and vmagent send it to
//! `POST /api/v1/write`.
//!
//! Each series' `__name__` label is the measurement, its other labels are the tags (a label
//! with an empty value is no label, as in Prometheus), and each sample is a row at its
//! millisecond timestamp with the field [`VALUE_FIELD`]. Staleness markers (the NaN with
//! bits `0x7ff0000000000002` that Prometheus writes when a series disappears) are not
//! stored: annals finds staleness from the samples' times when it answers queries. Other
//! NaNs are values and are stored. Exemplars and metadata are not stored; native
//! histograms are refused (the whole request, naming the series), so no sample is
//! silently dropped.
//!
//! Specification: <https://prometheus.io/docs/specs/prw/remote_write_spec/> and
//! `prompb/remote.proto`, `prompb/types.proto` of the Prometheus repository, from which the
//! message structs below are written (field numbers and types; the fields annals does not
//! read are left out, and protobuf skips them).

use crate::error::{Error, Limit, Result};
use crate::model::{Batch, FieldValue, SeriesKey, SeriesKind};
use crate::options::Limits;

/// The field every remote-write sample is stored in.
pub const VALUE_FIELD: &str = "value";

/// The label that names a Prometheus series' metric.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// The bits of Prometheus' staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The series' labels, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Its float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Its native histogram samples (refused).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<HistogramPresence>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// The label's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A `prometheus.Histogram`, read only far enough to know that one was sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramPresence {
    /// The histogram's timestamp (milliseconds), to name it in the refusal.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

pub use super::decompress_snappy as decompress;

/// Decodes a decompressed `WriteRequest` into a batch of metric rows, all or nothing: the
/// first bad series (no `__name__`, a repeated label, a name or value the store refuses,
/// native histograms) fails the whole request, naming it.
pub fn decode(protobuf: &[u8], limits: &Limits) -> Result<Batch> {
    let request = <WriteRequest as prost::Message>::decode(protobuf)
        .map_err(|e| Error::invalid(format!("the body is not a remote-write WriteRequest: {e}")))?;
    to_batch(&request, limits)
}

/// The rows of a decoded `WriteRequest` (see [`decode`]).
pub fn to_batch(request: &WriteRequest, limits: &Limits) -> Result<Batch> {
    // Refused before any row is built: a batch past the limit could not be written anyway.
    let samples: usize = request.timeseries.iter().map(|s| s.samples.len()).sum();
    if samples > limits.max_batch_rows {
        return Err(Error::LimitExceeded {
            limit: Limit::BatchRows,
            value: samples as u64,
            max: limits.max_batch_rows as u64,
            context: Some("samples in one remote-write request".into()),
        });
    }
    let mut batch = Batch::new();
    for (i, series) in request.timeseries.iter().enumerate() {
        let key = series_key(series, limits).map_err(|e| in_series(e, i, series))?;
        if let Some(histogram) = series.histograms.first() {
            return Err(in_series(
                Error::invalid(format!(
                    "native histograms are not supported (one at {} ms); send classic histograms",
                    histogram.timestamp
                )),
                i,
                series,
            ));
        }
        for sample in &series.samples {
            if sample.value.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let timestamp = sample.timestamp.checked_mul(1_000_000).ok_or_else(|| {
                in_series(
                    Error::invalid(format!("timestamp {} ms is out of range", sample.timestamp)),
                    i,
                    series,
                )
            })?;
            limits.check_row(timestamp, 1).map_err(|e| in_series(e, i, series))?;
            batch
                .add_row(&key, timestamp, [(VALUE_FIELD, FieldValue::F64(sample.value))])
                .map_err(|e| in_series(e, i, series))?;
        }
    }
    Ok(batch)
}

fn series_key(series: &TimeSeries, limits: &Limits) -> Result<SeriesKey> {
    let mut name = None;
    let mut tags = Vec::with_capacity(series.labels.len());
    for label in &series.labels {
        if label.name == METRIC_NAME_LABEL {
            if name.replace(label.value.as_str()).is_some() {
                return Err(Error::invalid("the label __name__ is repeated"));
            }
        } else if !label.value.is_empty() {
            tags.push((label.name.as_str(), label.value.as_str()));
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::invalid("the series has no __name__ label"))?;
    tags.sort_unstable();
    if let Some(pair) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::invalid(format!("the label {} is repeated", pair[0].0)));
    }
    let key = SeriesKey::new(SeriesKind::Metric, name, tags)?;
    limits.check_series(&key)?;
    Ok(key)
}

/// `e`, said of the `i`-th series of the request (from 1) and its name.
fn in_series(e: Error, i: usize, series: &TimeSeries) -> Error {
    let name = series
        .labels
        .iter()
        .find(|l| l.name == METRIC_NAME_LABEL)
        .map_or("(no name)", |l| l.value.as_str());
    let name: String = name.chars().take(200).collect();
    match e {
        Error::InvalidInput { reason, .. } => Error::InvalidInput {
            line: Some(i as u64 + 1),
            column: None,
            reason: format!("series {} ({name}): {reason}", i + 1),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn series(name: Option<&str>, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        let mut all: Vec<Label> = labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect();
        if let Some(name) = name {
            all.push(Label {
                name: METRIC_NAME_LABEL.into(),
                value: name.into(),
            });
        }
        TimeSeries {
            labels: all,
            samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
            histograms: Vec::new(),
        }
    }

    fn body(request: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
    }

    #[test]
    fn samples_become_rows_of_their_series() {
        let request = WriteRequest {
            timeseries: vec![
                series(
                    Some("up"),
                    &[("job", "node"), ("instance", "a:9100"), ("empty", "")],
                    &[(1_000, 1.0), (2_000, 0.0)],
                ),
                series(Some("temp"), &[], &[(1_000, f64::NAN), (2_000, f64::from_bits(STALE_NAN_BITS))]),
            ],
        };
        let raw = decompress(&body(&request), 1 << 20).unwrap();
        let batch = decode(&raw, &Limits::default()).unwrap();
        assert_eq!(batch.len(), 3, "the stale marker is not a row; the other NaN is");
        let rows: Vec<String> = batch
            .rows()
            .map(|(key, time, fields)| {
                let fields: Vec<String> = fields.map(|(n, v)| format!("{n}={v:?}")).collect();
                format!("{key} {time} {}", fields.join(","))
            })
            .collect();
        assert_eq!(rows[0], "up,instance=a:9100,job=node 1000000000 value=F64(1.0)", "{rows:?}");
        assert_eq!(rows[1], "up,instance=a:9100,job=node 2000000000 value=F64(0.0)", "{rows:?}");
        assert_eq!(rows[2], "temp 1000000000 value=F64(NaN)", "{rows:?}");
    }

    #[test]
    fn bad_requests_name_the_series_and_store_nothing() {
        let limits = Limits::default();
        let cases: Vec<(WriteRequest, &str)> = vec![
            (
                WriteRequest {
                    timeseries: vec![series(Some("ok"), &[], &[(1, 1.0)]), series(None, &[("job", "x")], &[(1, 1.0)])],
                },
                "series 2 ((no name)): the series has no __name__ label",
            ),
            (
                WriteRequest {
                    timeseries: vec![series(Some("dup"), &[("a", "1"), ("a", "2")], &[(1, 1.0)])],
                },
                "series 1 (dup): the label a is repeated",
            ),
            (
                WriteRequest {
                    timeseries: vec![series(Some("far"), &[], &[(i64::MAX / 10, 1.0)])],
                },
                "series 1 (far): timestamp 922337203685477580 ms is out of range",
            ),
        ];
        for (request, expected) in cases {
            match decode(&request.encode_to_vec(), &limits) {
                Err(Error::InvalidInput { reason, line, .. }) => {
                    assert_eq!(reason, expected);
                    assert!(line.is_some());
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
        let mut with_histogram = series(Some("h"), &[], &[]);
        with_histogram.histograms.push(HistogramPresence { timestamp: 5 });
        let e = to_batch(
            &WriteRequest {
                timeseries: vec![with_histogram],
            },
            &limits,
        )
        .unwrap_err();
        assert!(e.to_string().contains("native histograms are not supported"), "{e}");
        let tags: Vec<(String, String)> = (0..100).map(|i| (format!("l{i}"), "v".to_string())).collect();
        let many: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let e = decode(
            &WriteRequest {
                timeseries: vec![series(Some("wide"), &many, &[(1, 1.0)])],
            }
            .encode_to_vec(),
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::LimitExceeded {
                    limit: Limit::TagsPerSeries,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(matches!(decode(b"\xff\xff\xff", &limits), Err(Error::InvalidInput { .. })));
        let valid = body(&WriteRequest {
            timeseries: vec![series(Some("up"), &[], &[(1, 1.0)])],
        });
        assert!(matches!(
            decompress(&valid[..valid.len() - 2], 1 << 20),
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            decompress(&valid, 4),
            Err(Error::LimitExceeded {
                limit: Limit::BatchBytes,
                ..
            })
        ));
    }
}
