//! Trend analysis of hostile input: a query string of `GET /history/metrics/trends` and
//! arbitrary points (any time, any float bits) through patterns, anomaly scores, forecast
//! and correlation. Nothing panics, scores stay in [0, 1], forecast bands stay ordered.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::trends(data));
