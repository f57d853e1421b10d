//! Integration tests through the public API. One binary, one module per area.

mod common;
mod concurrency;
mod corruption;
mod crash;
mod engine_basics;
mod limits;
mod model;
