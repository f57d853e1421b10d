//! Helpers shared by the non-criterion benches (each uses part of them).
#![allow(dead_code)]

use std::time::Duration;

/// The value after `name` on the command line (`--runs 20`).
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The nearest-rank percentile `q` (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
