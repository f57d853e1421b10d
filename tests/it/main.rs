//! Integration tests through the public API. One binary, one module per area.

mod architecture;
mod archive;
mod cli;
mod commits;
mod common;
mod compaction;
mod compat;
mod concurrency;
mod corruption;
mod crash;
mod crash_matrix;
mod dataset;
mod disk_full;
mod engine_basics;
mod faults;
mod forward;
mod fuzz_seeds;
#[cfg(feature = "git")]
mod git_import;
mod history;
mod hostile;
mod limits;
mod line_protocol;
mod model;
mod oracle;
#[cfg(feature = "parquet")]
mod parquet_export;
mod poison;
mod queries;
mod query_model;
mod retention;
#[cfg(all(feature = "s3", feature = "git"))]
mod s3;
#[cfg(feature = "server")]
mod server;
mod text_search;
mod trends;
mod tsbs;
