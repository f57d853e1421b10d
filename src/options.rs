//! Configuration of a store: durability, limits, flush thresholds.

use crate::error::{Error, Limit, Result};
use crate::model::{Batch, FieldValue, SeriesKey};
use crate::objects::ObjectStoreConfig;
use crate::time::Clock;
use std::time::Duration;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Each write is fsync'd before it returns (writers arriving during an fsync share the
    /// next one).
    Sync,
    /// Concurrent writers share one fsync: the leader waits up to `max_delay` for writers
    /// already encoding their batches, then syncs for all of them. A returned write is
    /// durable.
    Group {
        /// Longest a write waits for others to join its fsync.
        max_delay: Duration,
    },
    /// No fsync: a write returns once it is in the operating system's page cache. It
    /// survives a crash of the process, not of the machine.
    None,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Group {
            max_delay: Duration::from_millis(1),
        }
    }
}

/// Bounds on everything a writer can make the store hold. Each is reported by name in
/// [`Error::LimitExceeded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Distinct series in the catalog (default 1,000,000).
    pub max_series: u64,
    /// Tags on one series (default 64).
    pub max_tags_per_series: usize,
    /// Bytes in a measurement name, tag key or field name (default 256).
    pub max_name_bytes: usize,
    /// Bytes in a tag value (default 1024).
    pub max_tag_value_bytes: usize,
    /// Bytes in a string field value (default 1 MiB).
    pub max_string_value_bytes: usize,
    /// Fields on one row (default 1024).
    pub max_fields_per_row: usize,
    /// Rows in one batch (default 1,000,000).
    pub max_batch_rows: usize,
    /// Encoded bytes of one batch (default 64 MiB, at most 256 MiB).
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 1_000_000,
            max_tags_per_series: 64,
            max_name_bytes: 256,
            max_tag_value_bytes: 1024,
            max_string_value_bytes: 1 << 20,
            max_fields_per_row: 1024,
            max_batch_rows: 1_000_000,
            max_batch_bytes: 64 << 20,
        }
    }
}

fn check(limit: Limit, value: usize, max: usize, context: impl FnOnce() -> String) -> Result<()> {
    if value > max {
        return Err(Error::LimitExceeded {
            limit,
            value: value as u64,
            max: max as u64,
            context: Some(context()),
        });
    }
    Ok(())
}

impl Limits {
    /// Checks a series key against the tag and length limits.
    pub fn check_series(&self, key: &SeriesKey) -> Result<()> {
        check(Limit::TagsPerSeries, key.tags().len(), self.max_tags_per_series, || {
            format!("series {}", key.measurement())
        })?;
        check(Limit::NameLength, key.measurement().len(), self.max_name_bytes, || {
            "measurement name".into()
        })?;
        for (k, v) in key.tags() {
            check(Limit::NameLength, k.len(), self.max_name_bytes, || "tag key".into())?;
            check(Limit::TagValueLength, v.len(), self.max_tag_value_bytes, || {
                format!("value of tag {k:?}")
            })?;
        }
        Ok(())
    }

    /// Checks one field.
    pub fn check_field(&self, name: &str, value: &FieldValue) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid("empty field name"));
        }
        check(Limit::NameLength, name.len(), self.max_name_bytes, || "field name".into())?;
        let variable_length = match value {
            FieldValue::Str(s) => Some(s.len()),
            FieldValue::Bytes(b) => Some(b.len()),
            _ => None,
        };
        if let Some(len) = variable_length {
            self.check_value_length(name, len)?;
        }
        Ok(())
    }

    /// Checks the length of a string or bytes value of the field `name`.
    pub fn check_value_length(&self, name: &str, len: usize) -> Result<()> {
        check(Limit::StringValueLength, len, self.max_string_value_bytes, || {
            format!("value of field {name:?}")
        })
    }

    /// Checks a row's timestamp and field count.
    pub fn check_row(&self, timestamp: i64, fields: usize) -> Result<()> {
        if timestamp == i64::MAX {
            return Err(Error::invalid(
                "timestamp 9223372036854775807 (i64::MAX) is reserved; the newest storable time is one nanosecond earlier",
            ));
        }
        check(Limit::FieldsPerRow, fields, self.max_fields_per_row, || "fields in one row".into())
    }

    /// Checks a whole batch against every per-batch limit (the series count is checked
    /// when series are created, the encoded size when the batch is encoded).
    pub fn check_batch(&self, batch: &Batch) -> Result<()> {
        check(Limit::BatchRows, batch.len(), self.max_batch_rows, || "rows in the batch".into())?;
        for key in &batch.series {
            self.check_series(key)?;
        }
        for row in &batch.rows {
            self.check_row(row.timestamp, row.value_count as usize)?;
        }
        for (field, value) in &batch.values {
            self.check_field(&batch.field_names[*field as usize], value)?;
        }
        Ok(())
    }
}

/// Options for [`crate::Engine::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// When writes are acknowledged (default: group commit).
    pub durability: Durability,
    /// Bounds on input.
    pub limits: Limits,
    /// Memory the store may hold for writing and caching (default 512 MiB), shared out by
    /// [`Options::memory`]: a quarter for the head being written (a flush starts when it
    /// is full), a quarter for the head a flush is still writing, a quarter for the block
    /// cache, an eighth for the full-text index writer, and an eighth left for a flush's
    /// and the queries' working memory. docs/ARCHITECTURE.md, "Memory", explains each.
    pub memory_budget: usize,
    /// Overrides the head's share of `memory_budget`: the head is flushed to segments
    /// when it holds about this much, and writers flush it themselves once the head being
    /// written and the one being flushed hold twice this together.
    pub head_max_bytes: Option<usize>,
    /// The head is flushed when its oldest row arrived this long ago (default 10 minutes),
    /// bounding WAL replay time after a crash.
    pub head_max_age: Duration,
    /// Rows per block in segments (default 16,384).
    pub block_max_rows: usize,
    /// A block of a metric or performance series spans about this much time at most
    /// (default 6 hours), so a query of a short range decodes little more than it asks for
    /// once compaction has merged a month: at W1's 10 s interval, 16,384 rows become 8
    /// blocks of 2,048. Blocks keep at least 1,024 rows whatever their span, so sparse
    /// series do not pay a block header per few rows. Log, alert and commit blocks are
    /// bounded by rows only: their text is zstd-compressed per block and gains from size.
    pub block_max_span: Duration,
    /// zstd level for text columns (default 3).
    pub zstd_level: i32,
    /// zstd level for the columns of commit series: messages, paths and the diffs kept
    /// inline (default 9). Diffs are most of a commit store's bytes and compress a sixth
    /// smaller at 9 than at 3, for a flush about 1.7 times as long (cargo's history: 36.2
    /// against 30.7 MB of segments).
    pub commit_zstd_level: i32,
    /// A commit's file diff up to this many bytes is kept in the segments, compressed with
    /// the diffs beside it; a larger one goes to the object store (default 256 KiB;
    /// `limits.max_string_value_bytes` caps it).
    pub inline_diff_max_bytes: usize,
    /// Where diffs over the inline limit are kept: `objects/` in the data directory
    /// (default), or an S3-compatible bucket ([`ObjectStoreConfig::from_env`] reads the
    /// original design's `AWS_*` variables).
    pub objects: ObjectStoreConfig,
    /// Flush from a background thread (default true). When false, writers flush inline when
    /// the head is full.
    pub background_flush: bool,
    /// Threads that encode segments during a flush (default: available cores, at most 4).
    pub flush_threads: usize,
    /// Create the directory and an empty store when none exists (default true).
    pub create_if_missing: bool,
    /// Overrides the block cache's share of `memory_budget`: memory for decoded blocks
    /// kept between reads (0 disables the cache).
    pub block_cache_bytes: Option<usize>,
    /// Overrides the full-text index writer's share of `memory_budget`: memory it may use
    /// while indexing a flush, split over `flush_threads` (at least 15 MB per thread is
    /// used whatever this says).
    pub text_index_memory_bytes: Option<usize>,
    /// Bounds on what one query may cost.
    pub query_limits: QueryLimits,
    /// When and how segments are merged.
    pub compaction: CompactionOptions,
    /// Below this many free bytes on the store's disk, [`crate::Engine::stats`] and
    /// [`crate::Engine::storage_warning`] report a `low_disk` warning (default 1 GiB).
    pub low_disk_bytes: u64,
    /// The clock lifecycle decisions read (default: the system clock).
    pub clock: Clock,
    /// How long detail and summaries are kept, and when days are summarised.
    pub retention: crate::retention::RetentionOptions,
    /// Where every change to the disk goes (default: the operating system). Tests put a
    /// [`crate::fs::FaultyFileSystem`] here to inject failures and simulate crashes.
    pub file_system: std::sync::Arc<dyn crate::fs::FileSystem>,
}

/// When segments are merged. See `docs/ARCHITECTURE.md`, "Compaction".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Compact from a background thread (default true). [`crate::Engine::compact`] works
    /// either way.
    pub background: bool,
    /// How often the background thread looks for work (default 60 s).
    pub interval: Duration,
    /// In a month still receiving data, this many trailing segments of one tier or lower
    /// are merged into one of the next tier (default 8).
    pub min_segments: usize,
    /// A month this long past its end is sealed: all its segments are merged into one
    /// (default 1 hour).
    pub seal_after: Duration,
    /// A compaction does not start unless the disk keeps at least this many bytes free
    /// after writing its output, estimated as the size of its inputs (default 256 MiB).
    pub min_free_bytes: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            background: true,
            interval: Duration::from_secs(60),
            min_segments: 8,
            seal_after: Duration::from_secs(3600),
            min_free_bytes: 256 << 20,
        }
    }
}

/// Bounds on one query, reported by name in [`Error::LimitExceeded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    /// Series a query may read (default 1,000,000).
    pub max_series: u64,
    /// Values a query may decode (default 2,000,000,000).
    pub max_points_scanned: u64,
    /// Rows a query may produce, before limit and offset (default 10,000,000).
    pub max_result_rows: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_series: 1_000_000,
            max_points_scanned: 2_000_000_000,
            max_result_rows: 10_000_000,
        }
    }
}

/// The default of [`Options::memory_budget`]: 512 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;

/// The smallest [`Options::memory_budget`] accepted: 1 MiB.
pub const MIN_MEMORY_BUDGET: usize = 1 << 20;

/// How [`Options::memory_budget`] is shared out, after the overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryShares {
    /// The head is flushed when it holds this much.
    pub head_flush_bytes: usize,
    /// Writers flush the head themselves when it and the head a flush is writing hold
    /// this much together.
    pub heads_max_bytes: usize,
    /// The block cache's capacity.
    pub block_cache_bytes: usize,
    /// The full-text index writer's memory.
    pub text_index_bytes: usize,
}

/// The default of [`Options::inline_diff_max_bytes`]: 256 KiB.
pub const DEFAULT_INLINE_DIFF_MAX_BYTES: usize = 256 << 10;

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::default(),
            limits: Limits::default(),
            memory_budget: DEFAULT_MEMORY_BUDGET,
            head_max_bytes: None,
            head_max_age: Duration::from_secs(600),
            block_max_rows: 16_384,
            block_max_span: Duration::from_secs(6 * 3600),
            zstd_level: 3,
            commit_zstd_level: 9,
            inline_diff_max_bytes: DEFAULT_INLINE_DIFF_MAX_BYTES,
            objects: ObjectStoreConfig::Local,
            background_flush: true,
            flush_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            create_if_missing: true,
            block_cache_bytes: None,
            text_index_memory_bytes: None,
            query_limits: QueryLimits::default(),
            compaction: CompactionOptions::default(),
            low_disk_bytes: 1 << 30,
            clock: Clock::system(),
            retention: crate::retention::RetentionOptions::default(),
            file_system: std::sync::Arc::new(crate::fs::OsFileSystem),
        }
    }
}

impl Options {
    /// The shares of [`Options::memory_budget`], with the overrides applied.
    pub fn memory(&self) -> MemoryShares {
        let budget = self.memory_budget;
        let head_flush_bytes = self.head_max_bytes.unwrap_or(budget / 4);
        MemoryShares {
            head_flush_bytes,
            heads_max_bytes: head_flush_bytes.saturating_mul(2),
            block_cache_bytes: self.block_cache_bytes.unwrap_or(budget / 4),
            text_index_bytes: self.text_index_memory_bytes.unwrap_or(budget / 8),
        }
    }

    /// Checks the options for values the engine cannot honour.
    pub fn validate(&self) -> Result<()> {
        if self.memory_budget < MIN_MEMORY_BUDGET {
            return Err(Error::invalid(format!(
                "memory_budget {} bytes is below the minimum of {MIN_MEMORY_BUDGET} (1 MiB)",
                self.memory_budget
            )));
        }
        self.retention.validate()?;
        if self.limits.max_batch_bytes > crate::io::frame::MAX_PAYLOAD {
            return Err(Error::invalid(format!(
                "max_batch_bytes {} exceeds the WAL record limit of {} bytes",
                self.limits.max_batch_bytes,
                crate::io::frame::MAX_PAYLOAD
            )));
        }
        if self.limits.max_series > u32::MAX as u64 {
            return Err(Error::invalid("max_series cannot exceed 2^32 - 1"));
        }
        if self.block_max_rows == 0 || self.block_max_rows > 1 << 20 {
            return Err(Error::invalid("block_max_rows must be between 1 and 1,048,576"));
        }
        if self.block_max_span.is_zero() {
            return Err(Error::invalid("block_max_span must be above zero"));
        }
        if !(-7..=22).contains(&self.zstd_level) {
            return Err(Error::invalid("zstd_level must be between -7 and 22"));
        }
        if !(-7..=22).contains(&self.commit_zstd_level) {
            return Err(Error::invalid("commit_zstd_level must be between -7 and 22"));
        }
        if self.compaction.min_segments < 2 {
            return Err(Error::invalid("compaction.min_segments must be at least 2"));
        }
        if self.compaction.interval.is_zero() {
            return Err(Error::invalid("compaction.interval must be positive"));
        }
        if self.head_max_bytes.is_some_and(|bytes| bytes < 1 << 16) {
            return Err(Error::invalid("head_max_bytes must be at least 64 KiB"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_levels_outside_zstds_range_are_refused() {
        assert!(Options::default().validate().is_ok());
        for (options, named) in [
            (
                Options {
                    zstd_level: 23,
                    ..Options::default()
                },
                "zstd_level",
            ),
            (
                Options {
                    commit_zstd_level: -8,
                    ..Options::default()
                },
                "commit_zstd_level",
            ),
        ] {
            match options.validate() {
                Err(Error::InvalidInput { reason, .. }) => assert!(reason.starts_with(named), "{reason}"),
                other => panic!("expected {named} to be refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_memory_budget_is_shared_out_and_overrides_take_their_share() {
        let shares = Options::default().memory();
        assert_eq!(
            shares,
            MemoryShares {
                head_flush_bytes: 128 << 20,
                heads_max_bytes: 256 << 20,
                block_cache_bytes: 128 << 20,
                text_index_bytes: 64 << 20,
            }
        );
        let small = Options {
            memory_budget: 64 << 20,
            block_cache_bytes: Some(0),
            ..Options::default()
        };
        assert_eq!(
            small.memory(),
            MemoryShares {
                head_flush_bytes: 16 << 20,
                heads_max_bytes: 32 << 20,
                block_cache_bytes: 0,
                text_index_bytes: 8 << 20,
            }
        );
        let head_set = Options {
            head_max_bytes: Some(1 << 20),
            ..small
        };
        assert_eq!(
            (head_set.memory().head_flush_bytes, head_set.memory().heads_max_bytes),
            (1 << 20, 2 << 20)
        );
        for (options, named) in [
            (
                Options {
                    memory_budget: (1 << 20) - 1,
                    ..Options::default()
                },
                "memory_budget",
            ),
            (
                Options {
                    head_max_bytes: Some(1 << 10),
                    ..Options::default()
                },
                "head_max_bytes",
            ),
        ] {
            match options.validate() {
                Err(Error::InvalidInput { reason, .. }) => assert!(reason.starts_with(named), "{reason}"),
                other => panic!("expected {named} to be refused, got {other:?}"),
            }
        }
    }
}
