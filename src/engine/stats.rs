//! Storage statistics.

use super::Inner;
use crate::error::Result;
use crate::files::FileKind;
use crate::io;
use crate::time::format_rfc3339;
use crate::wal;
use serde::Serialize;

/// Files, rows and bytes of one summary tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierStats {
    /// `hour`, `day` or `week`.
    pub tier: String,
    /// Segment files.
    pub segments: u64,
    /// Summary rows (one per series and bucket).
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Sizes and counts of the store, as [`crate::Engine::stats`] and `annals stats` report them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Series in the catalog.
    pub series: u64,
    /// Rows stored (segments and head).
    pub rows: u64,
    /// Field values stored (segments and head).
    pub points: u64,
    /// Bytes on disk: segments, WAL, catalog and manifest.
    pub bytes: u64,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Field values in segments.
    pub segment_points: u64,
    /// Segment bytes per segment point.
    pub bytes_per_point: f64,
    /// Bytes of WAL files.
    pub wal_bytes: u64,
    /// Bytes of the catalog file.
    pub catalog_bytes: u64,
    /// Segment files of detail rows.
    pub segments: u64,
    /// Per summary tier (`hour`, `day`, `week`): files, rows and bytes.
    pub summaries: Vec<TierStats>,
    /// Bytes of all summary files.
    pub summary_bytes: u64,
    /// Every UTC day before this (RFC 3339) is summarised.
    pub summary_watermark: Option<String>,
    /// Rows in memory, not yet flushed.
    pub head_rows: u64,
    /// Field values in memory, not yet flushed.
    pub head_points: u64,
    /// Approximate memory of the heads.
    pub head_memory_bytes: u64,
    /// Reads answered from the decoded-block cache since open.
    pub block_cache_hits: u64,
    /// Reads that had to decode since open.
    pub block_cache_misses: u64,
    /// Bytes of the full-text indexes (all months).
    pub text_index_bytes: u64,
    /// Bytes of archive files in `<dir>/archive/`.
    pub archive_bytes: u64,
    /// What the segments' rows would take uncompressed: 8 bytes per timestamp, per record
    /// id (events) and per field value (strings counted as 8 too).
    pub raw_bytes: u64,
    /// `raw_bytes / segment_bytes`.
    pub compression_ratio: f64,
    /// Bytes free on the file system holding the store, when the platform tells.
    pub free_disk_bytes: Option<u64>,
    /// Conditions an operator should act on (low disk).
    pub warnings: Vec<StorageWarning>,
    /// Per kind of series (metric, performance, log, alert), in segments.
    pub kinds: Vec<KindStats>,
    /// Per month, oldest first.
    pub months: Vec<MonthStats>,
}

/// Segment statistics of one kind of series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindStats {
    /// `metric`, `performance`, `log`, `alert` or `commit`.
    pub kind: String,
    /// Series of this kind with rows in segments.
    pub series: u64,
    /// Rows.
    pub rows: u64,
    /// Field values.
    pub points: u64,
    /// Bytes of their blocks (segment indexes and headers not included).
    pub bytes: u64,
}

/// A storage condition worth an operator's attention (the server publishes these as
/// `storage_warning` events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageWarning {
    /// `low_disk`.
    pub kind: &'static str,
    /// Bytes free on the store's file system.
    pub free_bytes: u64,
    /// The configured threshold ([`crate::Options::low_disk_bytes`]).
    pub threshold_bytes: u64,
    /// In words.
    pub message: String,
}

/// Segment statistics of one month.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonthStats {
    /// `YYYY-MM`.
    pub month: String,
    /// Segment files of detail rows.
    pub segments: u64,
    /// Per summary tier (`hour`, `day`, `week`): files, rows and bytes.
    pub summaries: Vec<TierStats>,
    /// Bytes of all summary files.
    pub summary_bytes: u64,
    /// Every UTC day before this (RFC 3339) is summarised.
    pub summary_watermark: Option<String>,
    /// Rows.
    pub rows: u64,
    /// Field values.
    pub points: u64,
    /// Bytes of the month's segment files.
    pub bytes: u64,
    /// Bytes per point.
    pub bytes_per_point: f64,
    /// Oldest timestamp, RFC 3339.
    pub first: String,
    /// Newest timestamp, RFC 3339.
    pub last: String,
    /// Bytes of the month's full-text index.
    pub text_index_bytes: u64,
}

pub(super) fn collect(inner: &Inner) -> Result<StoreStats> {
    let state = inner.published.state.read().clone();
    let mut stats = StoreStats {
        series: inner.writes.catalog.read().len() as u64,
        ..StoreStats::default()
    };
    let mut month_bounds: Vec<(i64, i64)> = Vec::new();
    for segment in &state.segments {
        let m = segment.meta();
        stats.segments += 1;
        stats.segment_bytes += m.file_len;
        stats.segment_points += m.points;
        stats.rows += m.rows;
        let name = m.month.to_string();
        if stats.months.last().is_none_or(|last| last.month != name) {
            stats.months.push(MonthStats {
                month: name,
                ..MonthStats::default()
            });
            month_bounds.push((i64::MAX, i64::MIN));
        }
        if let (Some(month), Some(bounds)) = (stats.months.last_mut(), month_bounds.last_mut()) {
            month.segments += 1;
            month.rows += m.rows;
            month.points += m.points;
            month.bytes += m.file_len;
            bounds.0 = bounds.0.min(m.min_ts);
            bounds.1 = bounds.1.max(m.max_ts);
        }
    }
    for (month, (first, last)) in stats.months.iter_mut().zip(month_bounds) {
        month.bytes_per_point = ratio(month.bytes, month.points);
        month.first = format_rfc3339(first);
        month.last = format_rfc3339(last);
        month.text_index_bytes = dir_bytes(&inner.data_dir.join(&month.month).join("text"))?;
        stats.text_index_bytes += month.text_index_bytes;
    }
    let mut kinds: std::collections::BTreeMap<u8, (KindStats, roaring::RoaringBitmap)> = Default::default();
    for segment in &state.segments {
        for id in segment.series_ids().collect::<Vec<_>>() {
            let Some(entry) = segment.series(id)? else { continue };
            let (k, ids) = kinds.entry(entry.kind as u8).or_insert_with(|| {
                (
                    KindStats {
                        kind: entry.kind.name().to_string(),
                        ..KindStats::default()
                    },
                    Default::default(),
                )
            });
            ids.insert(id);
            for b in &entry.blocks {
                let points: u64 = b.columns.iter().map(|c| c.count as u64).sum();
                k.rows += b.rows as u64;
                k.points += points;
                k.bytes += b.len as u64;
                let ids_per_row = if entry.kind.is_event() { 2 } else { 1 };
                stats.raw_bytes += 8 * (b.rows as u64 * ids_per_row + points);
            }
        }
    }
    stats.kinds = kinds
        .into_values()
        .map(|(mut k, ids)| {
            k.series = ids.len();
            k
        })
        .collect();
    stats.compression_ratio = if stats.segment_bytes == 0 {
        0.0
    } else {
        stats.raw_bytes as f64 / stats.segment_bytes as f64
    };
    for tier in crate::manifest::Resolution::SUMMARIES {
        let mut t = TierStats {
            tier: tier.name().to_owned(),
            ..TierStats::default()
        };
        for s in state.summaries.iter().filter(|s| s.meta().tier == tier) {
            t.segments += 1;
            t.rows += s.meta().rows;
            t.bytes += s.meta().file_len;
        }
        stats.summary_bytes += t.bytes;
        stats.summaries.push(t);
    }
    stats.summary_watermark = inner.published.flush.lock().manifest.summary.watermark.map(format_rfc3339);
    stats.archive_bytes = dir_bytes(&FileKind::Archive.path(&inner.dir))?;
    stats.free_disk_bytes = io::available_bytes(&inner.dir)?;
    stats.warnings = low_disk(stats.free_disk_bytes, inner.options.low_disk_bytes).into_iter().collect();
    for head in &state.heads {
        stats.head_memory_bytes += head.bytes() as u64;
        let head = head.rows.read();
        stats.head_rows += head.rows();
        stats.head_points += head.points();
    }
    stats.rows += stats.head_rows;
    stats.points = stats.segment_points + stats.head_points;
    stats.wal_bytes = wal::list_files(&inner.wal_dir)?.iter().map(|(_, _, len)| len).sum();
    stats.catalog_bytes = io::file_len(&FileKind::Catalog.path(&inner.dir))?;
    let manifest_bytes = io::file_len(&FileKind::Manifest.path(&inner.dir))?;
    stats.bytes =
        stats.segment_bytes + stats.summary_bytes + stats.wal_bytes + stats.catalog_bytes + manifest_bytes + stats.text_index_bytes;
    stats.bytes_per_point = ratio(stats.segment_bytes, stats.segment_points);
    (stats.block_cache_hits, stats.block_cache_misses) = inner.cache.counters();
    Ok(stats)
}

/// The warning due when `free` is below `threshold`.
pub(super) fn low_disk(free: Option<u64>, threshold: u64) -> Option<StorageWarning> {
    let free = free?;
    (free < threshold).then(|| StorageWarning {
        kind: "low_disk",
        free_bytes: free,
        threshold_bytes: threshold,
        message: format!(
            "only {free} bytes free on the store's disk (warning below {threshold}); compact, archive old months or free space"
        ),
    })
}

/// Bytes of the files directly in `dir` (0 when it does not exist).
fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    Ok(io::list_dir(dir)?.iter().filter(|e| !e.is_dir).map(|e| e.len).sum())
}

fn ratio(bytes: u64, points: u64) -> f64 {
    if points == 0 { 0.0 } else { bytes as f64 / points as f64 }
}
