//! Integration tests through the public API. One binary, one module per area.

mod cli;
mod common;
mod concurrency;
mod corruption;
mod crash;
mod engine_basics;
mod fuzz_seeds;
mod limits;
mod model;
mod poison;
