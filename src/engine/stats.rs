//! Storage statistics.

use super::Inner;
use crate::error::Result;
use crate::io;
use crate::time::format_rfc3339;
use crate::wal;
use serde::Serialize;

/// Sizes and counts of a store.
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
    /// Segment files.
    pub segments: u64,
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
    /// Per month, oldest first.
    pub months: Vec<MonthStats>,
}

/// Segment statistics of one month.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonthStats {
    /// `YYYY-MM`.
    pub month: String,
    /// Segment files.
    pub segments: u64,
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
}

pub(super) fn collect(inner: &Inner) -> Result<StoreStats> {
    let state = inner.state.read().clone();
    let mut stats = StoreStats {
        series: inner.catalog.read().len() as u64,
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
    }
    for head in &state.heads {
        stats.head_memory_bytes += head.bytes() as u64;
        let head = head.rows.read();
        stats.head_rows += head.rows();
        stats.head_points += head.points();
    }
    stats.rows += stats.head_rows;
    stats.points = stats.segment_points + stats.head_points;
    stats.wal_bytes = wal::list_files(&inner.wal_dir)?.iter().map(|(_, _, len)| len).sum();
    stats.catalog_bytes = io::file_len(&inner.dir.join("CATALOG"))?;
    let manifest_bytes = io::file_len(&inner.dir.join("MANIFEST"))?;
    stats.bytes = stats.segment_bytes + stats.wal_bytes + stats.catalog_bytes + manifest_bytes;
    stats.bytes_per_point = ratio(stats.segment_bytes, stats.segment_points);
    (stats.block_cache_hits, stats.block_cache_misses) = inner.cache.counters();
    Ok(stats)
}

fn ratio(bytes: u64, points: u64) -> f64 {
    if points == 0 { 0.0 } else { bytes as f64 / points as f64 }
}
