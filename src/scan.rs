//! Raw-point scans over many series, merged into one time-ordered stream of rows.

use crate::chunk::Chunk;
use crate::error::Result;
pub use crate::index::SeriesSelector;
use crate::model::{FieldValue, SeriesId, SeriesKey};
use crate::read::{Order, ReadView, SeriesChunks};
use crate::time::TimeRange;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

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
    id: SeriesId,
    key: Arc<SeriesKey>,
    chunks: SeriesChunks,
    chunk: Chunk,
    pos: usize,
    /// Counts chunks loaded, so callers can tell when per-chunk state must be rebuilt.
    serial: u64,
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
                    self.serial += 1;
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
    /// The cursor whose row was handed out last; it advances on the next step.
    pending: Option<usize>,
}

/// Where a scan stands: one row of one series' current chunk.
pub(crate) struct Position<'a> {
    pub series: SeriesId,
    pub key: &'a Arc<SeriesKey>,
    pub chunk: &'a Chunk,
    pub row: usize,
    /// Counts the chunks the cursor has loaded.
    pub serial: u64,
}

/// Rows of the series `request` selects in `view`, merged by time.
pub(crate) fn scan(view: &ReadView<'_>, request: &ScanRequest) -> Result<Scan> {
    let ids = view.select(&request.selector)?;
    let fields: Option<Arc<[String]>> = request.fields.as_deref().map(Arc::from);
    let mut series = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(key) = view.series_key(id) else { continue };
        let chunks = view.series_chunks(id, request.range, fields.clone(), request.order)?;
        series.push((key, id, chunks));
    }
    Scan::new(series, request.order, request.limit)
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
            pending: None,
        };
        for (key, id, chunks) in series {
            let mut cursor = Cursor {
                id,
                key,
                chunks,
                chunk: Chunk::default(),
                pos: 0,
                serial: 0,
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

impl Scan {
    /// Moves to the next row in order and returns its cursor; read it with
    /// [`Scan::at`]. The previous row's cursor advances first.
    pub(crate) fn step(&mut self) -> Option<Result<usize>> {
        if self.failed {
            return None;
        }
        if let Some(c) = self.pending.take() {
            let cursor = &mut self.cursors[c];
            match cursor.advance() {
                Ok(true) => self.heap.push(HeapEntry {
                    timestamp: cursor.timestamp(),
                    series: cursor.id,
                    cursor: c,
                    descending: self.descending,
                }),
                Ok(false) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        if self.remaining == 0 {
            return None;
        }
        let entry = self.heap.pop()?;
        self.remaining -= 1;
        self.pending = Some(entry.cursor);
        Some(Ok(entry.cursor))
    }

    /// The row a cursor stands on.
    pub(crate) fn at(&self, cursor: usize) -> Position<'_> {
        let c = &self.cursors[cursor];
        Position {
            series: c.id,
            key: &c.key,
            chunk: &c.chunk,
            row: c.pos,
            serial: c.serial,
        }
    }
}

impl Iterator for Scan {
    type Item = Result<ScanRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = match self.step()? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let p = self.at(cursor);
        Some(Ok(ScanRow {
            series: p.series,
            key: p.key.clone(),
            timestamp: p.chunk.timestamps[p.row],
            record_id: p.chunk.record_ids.get(p.row).copied(),
            fields: p.chunk.row(p.row),
        }))
    }
}
