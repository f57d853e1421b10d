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

/// Stops a benchmark built with the test settings: the README's test command uses the
/// `bench` profile to share the release build's dependencies, so there annals itself is
/// built at opt-level 1 with debug assertions, and timings would mean nothing.
pub fn require_release_build() {
    if cfg!(debug_assertions) {
        eprintln!(
            "this benchmark was built with the bench profile, which carries the tests' settings (annals at opt-level 1, with debug assertions); measure with `cargo bench --profile release`"
        );
        std::process::exit(2);
    }
}
