//! Deterministic workload generators (feature `workload`): the benchmark workloads of
//! `../shared/bench/WORKLOAD.md` and the demo month. Same seed, same data, every time.

pub mod demo;
pub mod w1;
pub mod w2;
