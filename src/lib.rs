//! annals: an embedded, append-only history store for metrics, performance samples, logs,
//! alerts and (later) git commits.
//!
//! Writes go through a write-ahead log into an in-memory head, which is flushed into
//! immutable, columnar, checksummed segment files, one directory per UTC month, read
//! through memory maps. See `docs/ARCHITECTURE.md` for the map of the code and
//! `docs/FORMAT.md` for every byte on disk.
//!
//! ```
//! use annals::{Batch, Engine, LogEntry, LogLevel, Options};
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Engine::open(dir.path(), Options::default()).unwrap();
//! let mut batch = Batch::new();
//! batch
//!     .add_log(&LogEntry {
//!         timestamp: 1_700_000_000_000_000_000,
//!         level: LogLevel::Error,
//!         logger_name: "db".into(),
//!         message: "connection lost".into(),
//!         module: None,
//!         function_name: None,
//!         line_number: None,
//!         thread_id: None,
//!         process_id: None,
//!         extra_data: Default::default(),
//!         tags: Default::default(),
//!     })
//!     .unwrap();
//! let receipt = engine.write(&batch).unwrap();
//! assert_eq!(receipt.rows, 1);
//! engine.close().unwrap();
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod cache;
mod catalog;
pub mod chunk;
pub(crate) mod codec;
mod commit_index;
#[cfg(feature = "parquet")]
pub mod dataset;
mod engine;
pub mod error;
pub mod events;
mod files;
#[cfg(feature = "forward")]
pub mod forward;
/// The file-system seam ([`fs::FileSystem`], set in [`Options::file_system`]) and the
/// fault-injecting implementation tests use ([`fs::FaultyFileSystem`]).
pub mod fs {
    pub use crate::io::faults::{CrashImage, Fault, FaultyFileSystem, InjectedFault, Op};
    pub use crate::io::vfs::{FileSystem, OsFile, OsFileSystem, WritableFile};
}
mod head;
pub mod history;
mod index;
pub mod ingest;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
pub(crate) mod io;
pub mod lifecycle;
mod manifest;
pub mod model;
mod objects;
mod options;
pub mod query;
mod read;
mod retention;
mod rollup;
mod scan;
mod segment;
#[cfg(feature = "server")]
pub mod server;
pub mod text;
pub mod time;
#[cfg(feature = "tracing")]
pub mod tracing;
pub mod trends;
pub mod verify;
mod wal;
#[cfg(feature = "workload")]
pub mod workload;

pub use chunk::{Chunk, Column, ColumnValues};
pub use engine::{
    Engine, FlushReport, KindStats, MonthStats, RecoveryReport, RetentionAction, RetentionReport, RuleHorizon, Snapshot, StorageWarning,
    StoreStats, SummaryReport, TierStats, WriteReceipt,
};
pub use error::{CorruptionKind, Error, Limit, Result};
pub use index::TagPredicate;
pub use model::{
    AlertEvent, AlertState, Batch, CommitData, CommitHash, DiffData, FieldValue, HashKind, LogEntry, LogLevel, Metadata, MetricData,
    PerformanceData, SeriesId, SeriesKey, SeriesKind, StorageMetadata, StorageResult, StorageStatus, ValueType, path_bytes, path_text,
    quote_path,
};
pub use objects::{ObjectStoreConfig, S3Config};
pub use options::{
    CompactionOptions, DEFAULT_INLINE_DIFF_MAX_BYTES, DEFAULT_MEMORY_BUDGET, Durability, Limits, MemoryShares, Options, QueryLimits,
};
pub use query::{
    Aggregate, AggregateFn, Bucket, FieldFilter, Fill, MatchCount, Query, QueryResult, QueryRow, SearchHit, SearchOrder, SearchQuery,
    SearchResult, Snippet,
};
pub use read::{Order, SeriesChunks};
pub use scan::{Scan, ScanRequest, ScanRow, SeriesSelector};
pub use time::{Clock, Month, TimeRange};
pub use wal::TornTail;

/// The README's example is compiled and run as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

/// Seed for randomised unit tests: `ANNALS_TEST_SEED` or a fixed default.
#[cfg(test)]
pub(crate) fn test_seed() -> u64 {
    std::env::var("ANNALS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x616e_6e61_6c73)
}
