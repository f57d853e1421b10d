//! Helpers shared by the integration tests.

#![allow(dead_code)]

use annals::{Engine, FieldValue, Options, ScanRequest, ScanRow, SeriesSelector};

/// Seed for randomised tests: `ANNALS_TEST_SEED` or a fixed default. Tests print it when
/// they fail.
pub fn seed() -> u64 {
    std::env::var("ANNALS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x616e_6e61_6c73)
}

/// Options for tests: no background thread, so flushes happen where the test says.
pub fn options() -> Options {
    Options {
        background_flush: false,
        ..Options::default()
    }
}

/// Every row of a measurement, oldest first.
pub fn scan_all(engine: &Engine, measurement: &str) -> Vec<ScanRow> {
    engine
        .snapshot()
        .scan(&ScanRequest {
            selector: SeriesSelector::measurement(measurement),
            ..ScanRequest::default()
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// (timestamp, field, value) triples of rows, for comparisons.
pub fn points(rows: &[ScanRow]) -> Vec<(String, i64, String, FieldValue)> {
    rows.iter()
        .flat_map(|r| {
            r.fields
                .iter()
                .map(move |(f, v)| (r.key.to_string(), r.timestamp, f.to_string(), v.clone()))
        })
        .collect()
}
