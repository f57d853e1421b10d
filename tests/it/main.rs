//! Integration tests through the public API. One binary, one module per area.

mod archive;
mod cli;
mod common;
mod compaction;
mod concurrency;
mod corruption;
mod crash;
mod engine_basics;
mod fuzz_seeds;
mod history;
mod limits;
mod model;
mod oracle;
mod poison;
mod queries;
mod query_model;
mod retention;
mod text_search;
mod tsbs;
