//! Raw-point scans over many series, merged into one time-ordered stream of rows.

use crate::chunk::Chunk;
use crate::error::Result;
use crate::model::{FieldValue, SeriesId, SeriesKey, SeriesKind};
use crate::read::{Order, SeriesChunks};
use crate::time::TimeRange;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Which series a read covers: optionally one kind, optionally one measurement, and tags
/// that must all match exactly. The query engine adds richer predicates on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesSelector {
    /// Only series of this kind.
    pub kind: Option<SeriesKind>,
    /// Only series of this measurement.
    pub measurement: Option<String>,
    /// (key, value) pairs every selected series has.
    pub tags: Vec<(String, String)>,
}

impl SeriesSelector {
    /// Series of one measurement.
    pub fn measurement(name: impl Into<String>) -> SeriesSelector {
        SeriesSelector {
            measurement: Some(name.into()),
            ..SeriesSelector::default()
        }
    }

    /// Adds a required tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> SeriesSelector {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Restricts to one kind.
    pub fn with_kind(mut self, kind: SeriesKind) -> SeriesSelector {
        self.kind = Some(kind);
        self
    }
}

/// A raw scan: rows of the selected series in a time range.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// The series.
    pub selector: SeriesSelector,
    /// Only these fields (all when `None`). Rows with none of them are skipped.
    pub fields: Option<Vec<String>>,
    /// The time range.
    pub range: TimeRange,
    /// Oldest or newest first.
    pub order: Order,
    /// At most this many rows.
    pub limit: Option<usize>,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::ALL
    }
}

/// One row of a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRow {
    /// The series id.
    pub series: SeriesId,
    /// The series key.
    pub key: Arc<SeriesKey>,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// The record id of event rows (logs, alerts, performance samples).
    pub record_id: Option<u64>,
    /// (field, value) pairs present in the row, sorted by field name.
    pub fields: Vec<(Arc<str>, FieldValue)>,
}

struct Cursor {
    key: Arc<SeriesKey>,
    chunks: SeriesChunks,
    chunk: Chunk,
    pos: usize,
}

impl Cursor {
    /// Moves to the next row, loading chunks as needed; false at the end.
    fn advance(&mut self) -> Result<bool> {
        self.pos += 1;
        while self.pos >= self.chunk.len() {
            match self.chunks.next() {
                Some(chunk) => {
                    self.chunk = chunk?;
                    self.pos = 0;
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    fn timestamp(&self) -> i64 {
        self.chunk.timestamps[self.pos]
    }
}

#[derive(PartialEq, Eq)]
struct HeapEntry {
    timestamp: i64,
    series: SeriesId,
    cursor: usize,
    descending: bool,
}

impl Ord for HeapEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap pops the greatest: invert for ascending order. Ties go to the lower
        // series id in both orders, so output is deterministic.
        let by_time = if self.descending {
            self.timestamp.cmp(&other.timestamp)
        } else {
            other.timestamp.cmp(&self.timestamp)
        };
        by_time.then_with(|| other.series.cmp(&self.series))
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Rows of many series merged by time. Returned by [`crate::Snapshot::scan`].
pub struct Scan {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<HeapEntry>,
    descending: bool,
    remaining: usize,
    failed: bool,
}

impl Scan {
    pub(crate) fn new(series: Vec<(Arc<SeriesKey>, SeriesId, SeriesChunks)>, order: Order, limit: Option<usize>) -> Result<Scan> {
        let descending = order == Order::Descending;
        let mut scan = Scan {
            cursors: Vec::with_capacity(series.len()),
            heap: BinaryHeap::with_capacity(series.len()),
            descending,
            remaining: limit.unwrap_or(usize::MAX),
            failed: false,
        };
        for (key, id, chunks) in series {
            let mut cursor = Cursor {
                key,
                chunks,
                chunk: Chunk::default(),
                pos: 0,
            };
            let mut has_row = false;
            for chunk in cursor.chunks.by_ref() {
                cursor.chunk = chunk?;
                if !cursor.chunk.is_empty() {
                    has_row = true;
                    break;
                }
            }
            if has_row {
                scan.heap.push(HeapEntry {
                    timestamp: cursor.timestamp(),
                    series: id,
                    cursor: scan.cursors.len(),
                    descending,
                });
                scan.cursors.push(cursor);
            }
        }
        Ok(scan)
    }
}

impl Iterator for Scan {
    type Item = Result<ScanRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 || self.failed {
            return None;
        }
        let entry = self.heap.pop()?;
        let cursor = &mut self.cursors[entry.cursor];
        let row = ScanRow {
            series: entry.series,
            key: cursor.key.clone(),
            timestamp: entry.timestamp,
            record_id: cursor.chunk.record_ids.get(cursor.pos).copied(),
            fields: cursor.chunk.row(cursor.pos),
        };
        match cursor.advance() {
            Ok(true) => self.heap.push(HeapEntry {
                timestamp: cursor.timestamp(),
                series: entry.series,
                cursor: entry.cursor,
                descending: self.descending,
            }),
            Ok(false) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        self.remaining -= 1;
        Some(Ok(row))
    }
}
