//! Deterministic workload generators (feature `workload`): the benchmark workloads of
//! `../shared/bench/WORKLOAD.md` (W1 metrics, W2 logs, W3 NAB series) and the demo month. Same seed, same data, every time.

pub mod demo;
pub mod w1;
pub mod w2;
pub mod w3;
