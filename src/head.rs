//! The head: rows written since the last flush, in memory, per series.
//!
//! Rows are appended in WAL order, each with its sequence number. A reader sees only rows
//! with `seq <= visible_seq` of its snapshot; since a series' rows are appended in sequence
//! order, that is a prefix of each series' buffer. Sorting by time happens on read and at
//! flush, and only when rows arrived out of order.

use crate::chunk::{Chunk, Column, ColumnValues, Duplicates, merge_versions};
use crate::codec::pages::{self, PAGE_ROWS};
use crate::model::{BatchRow, FieldValue, SeriesId, SeriesKind, ValueType};
use crate::time::{Month, TimeRange};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A batch ready to apply: rows referring to global series ids.
pub(crate) struct ApplyBatch<'a> {
    pub first_seq: u64,
    /// Global id and kind of each batch-local series.
    pub series: &'a [(SeriesId, SeriesKind)],
    /// Interned field names, by batch-local field index.
    pub field_names: &'a [Arc<str>],
    pub rows: &'a [BatchRow],
    pub values: &'a [(u32, FieldValue)],
}

#[derive(Debug)]
struct HeadColumn {
    name: Arc<str>,
    /// The values of the first `pages.len() * PAGE_ROWS` rows, packed a page at a time
    /// ([`codec::pages`](crate::codec::pages)): numbers and booleans only.
    pages: Vec<Box<[u8]>>,
    /// What the pages hold, with the allocator's header of each.
    page_bytes: usize,
    /// The values of the rows after the pages: fewer than [`PAGE_ROWS`] for the types
    /// pages hold, every row's for strings and byte strings.
    values: ColumnValues,
    /// Empty while every row so far has a value.
    validity: Vec<bool>,
}

/// Buffers reused from one page to the next.
#[derive(Debug, Default)]
struct PageScratch {
    mantissas: Vec<i64>,
    page: Vec<u8>,
}

impl HeadColumn {
    fn new(name: Arc<str>, value_type: ValueType) -> HeadColumn {
        HeadColumn {
            name,
            pages: Vec::new(),
            page_bytes: 0,
            values: ColumnValues::new(value_type),
            validity: Vec::new(),
        }
    }

    /// Rows held.
    fn len(&self) -> usize {
        self.pages.len() * PAGE_ROWS + self.values.len()
    }

    #[inline]
    fn push(&mut self, value: &FieldValue, scratch: &mut PageScratch) {
        self.values.push(value);
        if !self.validity.is_empty() {
            self.validity.push(true);
        }
        self.seal_full_page(scratch);
    }

    fn push_absent(&mut self, scratch: &mut PageScratch) {
        if self.validity.is_empty() {
            self.validity.resize(self.len(), true);
        }
        self.validity.push(false);
        self.values.push_default();
        self.seal_full_page(scratch);
    }

    /// Packs the unpaged values into a page once there are a page's worth; the vector
    /// keeps its allocation for the next.
    #[inline]
    fn seal_full_page(&mut self, scratch: &mut PageScratch) {
        if self.values.len() < PAGE_ROWS || !pages::encode(&self.values, &mut scratch.mantissas, &mut scratch.page) {
            return;
        }
        self.page_bytes += scratch.page.len() + MALLOC_HEADER_BYTES;
        self.pages.push(scratch.page.as_slice().into());
        self.values.clear();
    }

    /// Makes room for `rows` rows in all: in the unpaged values at most a page's worth.
    fn reserve_for(&mut self, rows: usize) {
        let mut unpaged = rows.saturating_sub(self.pages.len() * PAGE_ROWS);
        if pages::holds(&self.values) {
            unpaged = unpaged.min(PAGE_ROWS);
        }
        self.values.reserve_exact(unpaged.saturating_sub(self.values.len()));
        if !self.validity.is_empty() {
            self.validity.reserve_exact(rows.saturating_sub(self.validity.len()));
        }
    }

    /// Bytes allocated: vectors' capacity and pages.
    fn allocated(&self) -> usize {
        self.values.capacity_bytes() + self.validity.capacity() + self.pages.capacity() * std::mem::size_of::<Box<[u8]>>() + self.page_bytes
    }

    /// The values of `rows` (row indices in arrival order), unpacking only the pages
    /// from the first to the last of them.
    fn gather(&self, rows: &[usize]) -> ColumnValues {
        let (Some(&first), Some(&last)) = (rows.iter().min(), rows.iter().max()) else {
            return ColumnValues::new(self.values.value_type());
        };
        let paged = self.pages.len() * PAGE_ROWS;
        if first >= paged {
            return if paged == 0 {
                self.values.gather(rows)
            } else {
                self.values.gather(&rows.iter().map(|&r| r - paged).collect::<Vec<_>>())
            };
        }
        let first_page = first / PAGE_ROWS;
        let base = first_page * PAGE_ROWS;
        let mut part = ColumnValues::new(self.values.value_type());
        part.reserve_exact(last + 1 - base);
        for page in &self.pages[first_page..self.pages.len().min(last / PAGE_ROWS + 1)] {
            pages::decode(page, PAGE_ROWS, &mut part);
        }
        if last >= paged {
            part.extend_from(&self.values);
        }
        // A flush reads every row in order: the unpacked run is the answer.
        let in_order = rows.len() == part.len() && rows.iter().enumerate().all(|(i, &r)| r == base + i);
        if in_order {
            part
        } else {
            part.gather(&rows.iter().map(|&r| r - base).collect::<Vec<_>>())
        }
    }
}

/// A head series' timestamps or sequence numbers: each full page of [`PAGE_ROWS`] values
/// packed ([`pages::encode_ints`]; a steady step packs to a header), the rest in a short
/// vector. Each page keeps its smallest and largest value so that a read skips the pages
/// its range misses.
#[derive(Debug, Default)]
struct PagedInts {
    pages: Vec<Box<[u8]>>,
    /// Smallest and largest value of each page.
    bounds: Vec<(i64, i64)>,
    /// The values after the pages: fewer than [`PAGE_ROWS`], in a vector that keeps its
    /// allocation from one page to the next.
    tail: Vec<i64>,
    /// What the pages hold, with the allocator's header of each.
    page_bytes: usize,
}

impl PagedInts {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_ROWS + self.tail.len()
    }

    fn push(&mut self, value: i64, page: &mut Vec<u8>) {
        if self.tail.len() == self.tail.capacity() {
            // Doubling from 4 up to a page, so that a series of a few rows (a store of a
            // million series each written once) holds a few slots, not a page's worth.
            let room = self.tail.capacity().max(4).min(PAGE_ROWS.saturating_sub(self.tail.capacity()));
            self.tail.reserve_exact(room.max(1));
        }
        self.tail.push(value);
        if self.tail.len() < PAGE_ROWS {
            return;
        }
        pages::encode_ints(&self.tail, page);
        let min = self.tail.iter().copied().min().unwrap_or(value);
        let max = self.tail.iter().copied().max().unwrap_or(value);
        self.bounds.push((min, max));
        self.page_bytes += page.len() + MALLOC_HEADER_BYTES;
        self.pages.push(page.as_slice().into());
        self.tail.clear();
    }

    /// Bytes allocated: the tail, the page list and bounds, and the pages.
    fn allocated(&self) -> usize {
        self.tail.capacity() * 8
            + self.pages.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.bounds.capacity() * std::mem::size_of::<(i64, i64)>()
            + self.page_bytes
    }

    /// Smallest and largest value; `None` when empty.
    fn span(&self) -> Option<(i64, i64)> {
        self.bounds
            .iter()
            .copied()
            .chain(self.tail.iter().map(|&v| (v, v)))
            .reduce(|(lo, hi), (min, max)| (lo.min(min), hi.max(max)))
    }

    /// The values of rows `start..end` (clamped to the rows held), unpacking only the
    /// pages they fall in.
    fn range(&self, start: usize, end: usize) -> Vec<i64> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        let first_page = start / PAGE_ROWS;
        let base = first_page * PAGE_ROWS;
        let mut values = Vec::with_capacity(end - base);
        for page in self.pages.iter().take(end.div_ceil(PAGE_ROWS)).skip(first_page) {
            pages::decode_ints(page, PAGE_ROWS, &mut values);
        }
        if end > self.pages.len() * PAGE_ROWS {
            values.extend_from_slice(&self.tail);
        }
        values.truncate(end - base);
        values.drain(..start - base);
        values
    }

    /// Calls `f(row, value)` for each of the first `end` rows, in row order, skipping the
    /// pages whose smallest and largest value `wanted` turns down.
    fn for_each_where(&self, end: usize, wanted: impl Fn(i64, i64) -> bool, mut f: impl FnMut(usize, i64)) {
        let mut values = Vec::with_capacity(PAGE_ROWS);
        for (i, (page, &(min, max))) in self.pages.iter().zip(&self.bounds).enumerate() {
            let base = i * PAGE_ROWS;
            if base >= end {
                return;
            }
            if !wanted(min, max) {
                continue;
            }
            values.clear();
            pages::decode_ints(page, PAGE_ROWS, &mut values);
            for (j, &v) in values.iter().enumerate().take(end - base) {
                f(base + j, v);
            }
        }
        let base = self.pages.len() * PAGE_ROWS;
        for (j, &v) in self.tail.iter().enumerate().take(end.saturating_sub(base)) {
            f(base + j, v);
        }
    }

    /// How many leading values are at most `limit`, for values that never decrease.
    fn count_not_above(&self, limit: i64) -> usize {
        let full = self.bounds.partition_point(|&(_, max)| max <= limit);
        let base = full * PAGE_ROWS;
        if let Some(page) = self.pages.get(full) {
            let mut values = Vec::with_capacity(PAGE_ROWS);
            pages::decode_ints(page, PAGE_ROWS, &mut values);
            return base + values.partition_point(|&v| v <= limit);
        }
        base + self.tail.partition_point(|&v| v <= limit)
    }
}

/// The rows a read or a flush takes from a series, in (timestamp, sequence number) order.
#[derive(Debug, Default)]
struct Selection {
    /// Row indices in arrival order.
    rows: Vec<usize>,
    timestamps: Vec<i64>,
    seqs: Vec<u64>,
}

#[derive(Debug)]
struct HeadSeries {
    kind: SeriesKind,
    timestamps: PagedInts,
    /// Sequence numbers as `i64`: they stay far below `i64::MAX` (one per row written).
    seqs: PagedInts,
    /// The newest row's timestamp, to tell when rows arrive out of order.
    last_timestamp: i64,
    /// Rows the columns' vectors have room for.
    reserved_rows: usize,
    columns: Vec<HeadColumn>,
    /// True while rows arrived in (timestamp, seq) order.
    sorted: bool,
    /// Bytes the vectors had allocated after the last row (capacity, strings' own
    /// allocations aside): kept so that a row sums the capacities once, not before and
    /// after.
    allocated: usize,
}

impl HeadSeries {
    fn new(kind: SeriesKind) -> HeadSeries {
        HeadSeries {
            kind,
            timestamps: PagedInts::default(),
            seqs: PagedInts::default(),
            last_timestamp: i64::MIN,
            reserved_rows: 0,
            columns: Vec::new(),
            sorted: true,
            allocated: 0,
        }
    }

    /// Appends one row; returns the bytes it added: what its vectors grew by (their
    /// capacity, which runs ahead of their length) and the strings it copied.
    fn push(&mut self, timestamp: i64, seq: u64, fields: &[(u32, FieldValue)], names: &[Arc<str>], scratch: &mut PageScratch) -> usize {
        let rows_before = self.timestamps.len();
        if rows_before == self.reserved_rows {
            self.grow(rows_before);
        }
        if timestamp < self.last_timestamp {
            self.sorted = false;
        }
        self.last_timestamp = timestamp;
        self.timestamps.push(timestamp, &mut scratch.page);
        // Sequence numbers count rows written: they never come near `i64::MAX`.
        self.seqs.push(seq as i64, &mut scratch.page);
        let mut heap = 0;
        for (field, value) in fields {
            let name = &names[*field as usize];
            let value_type = value.value_type();
            let column = match self
                .columns
                .iter()
                .position(|c| (Arc::ptr_eq(&c.name, name) || c.name == *name) && c.values.value_type() == value_type)
            {
                Some(i) => &mut self.columns[i],
                None => {
                    let mut column = HeadColumn::new(name.clone(), value_type);
                    for _ in 0..rows_before {
                        column.push_absent(scratch);
                    }
                    // Most series have a handful of fields: grow one at a time rather than
                    // doubling, since a high-cardinality workload holds millions of these.
                    self.columns.reserve_exact(1);
                    self.columns.push(column);
                    let last = self.columns.len() - 1;
                    &mut self.columns[last]
                }
            };
            column.push(value, scratch);
            heap += match value {
                FieldValue::Str(s) => string_heap_bytes(s.len()),
                FieldValue::Bytes(b) => string_heap_bytes(b.len()),
                _ => 0,
            };
        }
        // Columns the row did not mention get an absent slot; the same pass sums what the
        // vectors now hold.
        let mut allocated =
            self.timestamps.allocated() + self.seqs.allocated() + self.columns.capacity() * std::mem::size_of::<HeadColumn>();
        for column in &mut self.columns {
            if column.len() == rows_before {
                column.push_absent(scratch);
            }
            allocated += column.allocated();
        }
        let grown = allocated.saturating_sub(self.allocated);
        self.allocated = allocated;
        grown + heap
    }

    /// Makes room for a quarter more rows in every vector. A vector that doubles holds on
    /// average a quarter of its capacity unused, and at a flush up to half: memory the
    /// budget counts but no row uses (a W1 series' 1,188 rows of a flush sat in vectors of
    /// 2,048). Growing by a quarter keeps that under a fifth, for a few more copies of
    /// short vectors.
    fn grow(&mut self, rows: usize) {
        let room = (rows / 4).max(4);
        self.reserved_rows = rows + room;
        for column in &mut self.columns {
            column.reserve_for(rows + room);
        }
    }

    /// The columns holding the kind's indexed text.
    fn text_columns(&self) -> Vec<&HeadColumn> {
        let fields = self.kind.text_fields();
        self.columns
            .iter()
            .filter(|c| matches!(c.values, ColumnValues::Str(_)) && fields.contains(&&*c.name))
            .collect()
    }

    /// The indexed text of `row` from its `text_columns`, borrowed when one field has it.
    fn row_text<'a>(&'a self, columns: &[&'a HeadColumn], row: usize) -> Option<Cow<'a, str>> {
        self.kind.row_text(|name| {
            let column: &'a HeadColumn = columns.iter().find(|c| &*c.name == name)?;
            let valid = column.validity.is_empty() || column.validity[row];
            match &column.values {
                ColumnValues::Str(v) if valid => Some(v[row].as_str()),
                _ => None,
            }
        })
    }

    /// Oldest and newest timestamp; `None` without rows.
    fn time_span(&self) -> Option<(i64, i64)> {
        self.timestamps.span()
    }

    /// Rows with `seq <= visible` and timestamps in `range`, in (timestamp, seq) order.
    fn selected_rows(&self, range: TimeRange, visible: u64) -> Selection {
        // Sequence numbers grow along the buffer, so the visible rows are a prefix.
        let visible_len = self.seqs.count_not_above(i64::try_from(visible).unwrap_or(i64::MAX));
        let mut picked: Vec<(usize, i64)> = Vec::new();
        self.timestamps.for_each_where(
            visible_len,
            |min, max| range.overlaps(min, max),
            |row, t| {
                if range.contains(t) {
                    picked.push((row, t));
                }
            },
        );
        let (Some(&(first, _)), Some(&(last, _))) = (picked.first(), picked.last()) else {
            return Selection::default();
        };
        let seqs = self.seqs.range(first, last + 1);
        let mut rows: Vec<(i64, u64, usize)> = picked.into_iter().map(|(row, t)| (t, seqs[row - first] as u64, row)).collect();
        if !self.sorted {
            rows.sort_unstable();
        }
        Selection {
            rows: rows.iter().map(|r| r.2).collect(),
            timestamps: rows.iter().map(|r| r.0).collect(),
            seqs: rows.iter().map(|r| r.1).collect(),
        }
    }

    /// The selected rows as a chunk with sequence numbers as record ids; writes of one
    /// metric timestamp merged into one row field by field (the newest write of each field
    /// wins). `None` when no row is selected.
    fn read(&self, series: SeriesId, range: TimeRange, visible: u64, fields: Option<&[String]>) -> Option<Chunk> {
        let selection = self.selected_rows(range, visible);
        if selection.rows.is_empty() {
            return None;
        }
        let chunk = self.chunk(series, selection, fields);
        let rule = Duplicates::of(self.kind);
        let shares_timestamps = rule != Duplicates::KeepAll && chunk.timestamps.windows(2).any(|w| w[0] == w[1]);
        if !shares_timestamps {
            return Some(chunk);
        }
        let versions = chunk.record_ids.clone();
        Some(merge_versions(series, rule, vec![(chunk, versions)]))
    }

    fn chunk(&self, series: SeriesId, selection: Selection, fields: Option<&[String]>) -> Chunk {
        let rows = &selection.rows;
        // Sized up front: a filtered collect would start at four columns, and a flush holds
        // one chunk per series.
        let mut columns: Vec<Column> = Vec::with_capacity(self.columns.len());
        columns.extend(
            self.columns
                .iter()
                .filter(|c| fields.is_none_or(|f| f.iter().any(|n| **n == *c.name)))
                .map(|c| {
                    let validity = if c.validity.is_empty() {
                        Vec::new()
                    } else {
                        rows.iter().map(|&i| c.validity[i]).collect()
                    };
                    Column {
                        name: c.name.clone(),
                        values: c.gather(rows),
                        validity,
                    }
                })
                .filter(|c| c.validity.is_empty() || c.validity.iter().any(|&v| v)),
        );
        for c in &mut columns {
            if c.validity.iter().all(|&v| v) {
                c.validity.clear();
            }
        }
        columns.sort_by(|a, b| (&*a.name, a.value_type()).cmp(&(&*b.name, b.value_type())));
        Chunk {
            series,
            timestamps: selection.timestamps,
            record_ids: selection.seqs,
            columns,
        }
    }
}

/// A head row with indexed text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextRow {
    pub series: SeriesId,
    pub timestamp: i64,
    pub seq: u64,
    pub text: String,
}

/// What a series costs the head beyond its vectors' capacity: its map slot at the map's
/// usual load (7/8) and the allocator's header of its first few allocations. Undercounting
/// it once let a high-cardinality head of a million one-row series grow to several times
/// its limit before a flush.
const SERIES_OVERHEAD_BYTES: usize = (std::mem::size_of::<(SeriesId, HeadSeries)>() + 1) * 8 / 7 + 4 * MALLOC_HEADER_BYTES;

/// What the allocator adds to an allocation: its header and the rounding of its size
/// (glibc: 8 bytes and a multiple of 16, about 16 on average).
const MALLOC_HEADER_BYTES: usize = 16;

/// What a copied string of `len` bytes costs beyond its slot in a vector.
fn string_heap_bytes(len: usize) -> usize {
    if len == 0 { 0 } else { len + MALLOC_HEADER_BYTES }
}

/// The memtable.
#[derive(Debug, Default)]
pub(crate) struct Head {
    series: FxHashMap<SeriesId, HeadSeries>,
    scratch: PageScratch,
    bytes: usize,
    rows: u64,
    points: u64,
    min_seq: u64,
    max_seq: u64,
    min_ts: i64,
    max_ts: i64,
}

impl Head {
    pub(crate) fn new() -> Head {
        Head {
            min_seq: u64::MAX,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            ..Head::default()
        }
    }

    /// Appends a batch; row `i` gets sequence number `first_seq + i`.
    pub(crate) fn apply(&mut self, batch: &ApplyBatch<'_>) {
        for (i, row) in batch.rows.iter().enumerate() {
            let (id, kind) = batch.series[row.series as usize];
            let seq = batch.first_seq + i as u64;
            let fields = &batch.values[row.first_value as usize..(row.first_value + row.value_count) as usize];
            let series = self.series.entry(id).or_insert_with(|| HeadSeries::new(kind));
            self.bytes += series.push(row.timestamp, seq, fields, batch.field_names, &mut self.scratch);
            self.points += fields.len() as u64;
            self.min_ts = self.min_ts.min(row.timestamp);
            self.max_ts = self.max_ts.max(row.timestamp);
        }
        if !batch.rows.is_empty() {
            self.rows += batch.rows.len() as u64;
            self.min_seq = self.min_seq.min(batch.first_seq);
            self.max_seq = self.max_seq.max(batch.first_seq + batch.rows.len() as u64 - 1);
        }
    }

    /// Approximate memory held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes + self.series.len() * SERIES_OVERHEAD_BYTES
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn points(&self) -> u64 {
        self.points
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Oldest and newest timestamps held, inclusive; `None` when empty.
    pub(crate) fn time_span(&self) -> Option<(i64, i64)> {
        (self.rows > 0).then_some((self.min_ts, self.max_ts))
    }

    /// True when the head may hold rows of `series` in `range`.
    pub(crate) fn may_contain(&self, series: SeriesId, range: TimeRange) -> bool {
        self.rows > 0 && range.overlaps(self.min_ts, self.max_ts) && self.series.contains_key(&series)
    }

    /// Visible rows of one series in `range`, sorted, one row per metric timestamp (its
    /// writes merged field by field); `record_ids` holds sequence numbers.
    pub(crate) fn read(&self, series: SeriesId, range: TimeRange, visible: u64, fields: Option<&[String]>) -> Option<Chunk> {
        self.series.get(&series)?.read(series, range, visible, fields)
    }

    /// Names of the columns of `series`.
    pub(crate) fn field_names(&self, series: SeriesId) -> Vec<Arc<str>> {
        self.series
            .get(&series)
            .map_or_else(Vec::new, |s| s.columns.iter().map(|c| c.name.clone()).collect())
    }

    /// Rows of series with indexed text (logs, alerts) beyond the first `done[series]` rows
    /// of each, in arrival order per series; advances `done`. Looks at about `budget` rows
    /// and returns true when rows remain; rows without text are skipped.
    pub(crate) fn text_rows(&self, done: &mut FxHashMap<SeriesId, usize>, budget: usize, out: &mut Vec<TextRow>) -> bool {
        let mut looked = 0;
        for (&id, s) in &self.series {
            if s.kind.text_fields().is_empty() {
                continue;
            }
            let start = done.get(&id).copied().unwrap_or(0);
            if start >= s.timestamps.len() {
                continue;
            }
            if looked >= budget {
                return true;
            }
            let columns = s.text_columns();
            let end = s.timestamps.len().min(start + (budget - looked));
            let (timestamps, seqs) = (s.timestamps.range(start, end), s.seqs.range(start, end));
            for row in start..end {
                let text = s.row_text(&columns, row);
                if let Some(text) = text {
                    out.push(TextRow {
                        series: id,
                        timestamp: timestamps[row - start],
                        seq: seqs[row - start] as u64,
                        text: text.into_owned(),
                    });
                }
            }
            looked += end - start;
            done.insert(id, end);
            if end < s.timestamps.len() {
                return true;
            }
        }
        false
    }

    /// What a flush writes, without copying it: for each month the head's rows touch, the
    /// series with rows in it (id and kind, by id). [`Head::flush_rows`] then reads one
    /// series of one month at a time, so a flush holds a few series' copies, not the
    /// head's.
    pub(crate) fn flush_months(&self) -> BTreeMap<Month, Vec<(SeriesId, SeriesKind)>> {
        let mut months: BTreeMap<Month, Vec<(SeriesId, SeriesKind)>> = BTreeMap::new();
        for (&id, s) in &self.series {
            let Some((first, last)) = s.time_span() else {
                continue;
            };
            let (first, last) = (Month::of(first), Month::of(last));
            if first == last {
                months.entry(first).or_default().push((id, s.kind));
                continue;
            }
            // Rare (a head across a month's end): list only the months with rows.
            let touched: BTreeSet<Month> = s.timestamps.range(0, usize::MAX).into_iter().map(Month::of).collect();
            for month in touched {
                months.entry(month).or_default().push((id, s.kind));
            }
        }
        for series in months.values_mut() {
            series.sort_unstable_by_key(|(id, _)| *id);
        }
        months
    }

    /// The indexed text of one series' rows in `month` as a flush writes them, sorted:
    /// (timestamp, sequence number, text), the text borrowed from the head. Empty for a
    /// series without text fields (text is indexed for event kinds only, whose rows are
    /// all kept, so no rows merge).
    pub(crate) fn flush_texts(&self, series: SeriesId, month: Month) -> Vec<(i64, u64, Cow<'_, str>)> {
        let Some(s) = self.series.get(&series) else {
            return Vec::new();
        };
        let columns = s.text_columns();
        if columns.is_empty() || !s.kind.is_event() {
            return Vec::new();
        }
        let selection = s.selected_rows(month.range(), u64::MAX);
        (selection.rows.iter().zip(selection.timestamps).zip(selection.seqs))
            .filter_map(|((&row, timestamp), seq)| Some((timestamp, seq, s.row_text(&columns, row)?)))
            .collect()
    }

    /// One series' rows in `month` as a flush writes them: sorted, one row per metric
    /// timestamp.
    pub(crate) fn flush_rows(&self, series: SeriesId, month: Month) -> Option<Chunk> {
        self.read(series, month.range(), u64::MAX, None)
    }

    /// Columns (name and type) of the given series, for a segment's field table.
    pub(crate) fn columns_of<'a>(&'a self, series: &'a [(SeriesId, SeriesKind)]) -> impl Iterator<Item = (Arc<str>, ValueType)> + 'a {
        series
            .iter()
            .filter_map(|(id, _)| self.series.get(id))
            .flat_map(|s| s.columns.iter().map(|c| (c.name.clone(), c.values.value_type())))
    }

    /// Calls `f` with every timestamp held below `limit`, skipping the pages of rows at or
    /// after it.
    pub(crate) fn for_each_timestamp_below(&self, limit: i64, mut f: impl FnMut(i64)) {
        for s in self.series.values() {
            s.timestamps.for_each_where(
                usize::MAX,
                |min, _| min < limit,
                |_, t| {
                    if t < limit {
                        f(t);
                    }
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(head: &mut Head, first_seq: u64, kind: SeriesKind, rows: &[(i64, Vec<(&str, FieldValue)>)]) {
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut batch_rows = Vec::new();
        let mut values = Vec::new();
        for (ts, fields) in rows {
            let first_value = values.len() as u32;
            for (name, v) in fields {
                let idx = match names.iter().position(|n| &**n == *name) {
                    Some(i) => i,
                    None => {
                        names.push(Arc::from(*name));
                        names.len() - 1
                    }
                };
                values.push((idx as u32, v.clone()));
            }
            batch_rows.push(BatchRow {
                series: 0,
                timestamp: *ts,
                first_value,
                value_count: fields.len() as u32,
            });
        }
        head.apply(&ApplyBatch {
            first_seq,
            series: &[(7, kind)],
            field_names: &names,
            rows: &batch_rows,
            values: &values,
        });
    }

    /// What a flush of `head` writes: (month, series, rows).
    fn flushed(head: &Head) -> Vec<(Month, SeriesId, Chunk)> {
        let mut out = Vec::new();
        for (month, series) in head.flush_months() {
            for (id, _) in series {
                out.extend(head.flush_rows(id, month).map(|rows| (month, id, rows)));
            }
        }
        out
    }

    #[test]
    fn a_flush_reads_each_series_per_month_it_has_rows_in() {
        let july = Month::new(2025, 7).unwrap();
        let august = Month::new(2025, 8).unwrap();
        let september = Month::new(2025, 9).unwrap();
        let (j, s) = (july.start_ns(), september.start_ns());
        let mut head = Head::new();
        let row = |t: i64| (t, vec![("a", FieldValue::F64(t as f64))]);
        // Series 7 has rows in July and September, out of order; none in August.
        apply(&mut head, 1, SeriesKind::Metric, &[row(s + 1), row(j + 2), row(j)]);
        let rows: Vec<_> = flushed(&head).into_iter().map(|(m, id, c)| (m, id, c.timestamps)).collect();
        assert_eq!(rows, vec![(july, 7, vec![j, j + 2]), (september, 7, vec![s + 1])]);
        assert!(!head.flush_months().contains_key(&august));
        assert!(Head::new().flush_months().is_empty());
    }

    #[test]
    fn a_series_of_one_row_costs_a_few_hundred_bytes() {
        let mut head = Head::new();
        let names = [Arc::from("v")];
        let series: Vec<(SeriesId, SeriesKind)> = (0..1000).map(|id| (id, SeriesKind::Metric)).collect();
        let rows: Vec<BatchRow> = (0..1000)
            .map(|i| BatchRow {
                series: i,
                timestamp: 10,
                first_value: i,
                value_count: 1,
            })
            .collect();
        let values: Vec<(u32, FieldValue)> = (0..1000).map(|i| (0, FieldValue::F64(f64::from(i)))).collect();
        head.apply(&ApplyBatch {
            first_seq: 1,
            series: &series,
            field_names: &names,
            rows: &rows,
            values: &values,
        });
        // Timestamps and sequence numbers must not take a page's worth of slots (2 KiB)
        // for a series' first row.
        let per_series = head.bytes() / 1000;
        assert!(per_series < 1024, "{per_series} bytes a series");
        assert_eq!(
            head.read(999, TimeRange::ALL, u64::MAX, None).map(|c| c.record_ids),
            Some(vec![1000])
        );
    }

    #[test]
    fn a_flush_reads_text_in_time_order_borrowed_and_joined() {
        let july = Month::new(2025, 7).unwrap();
        let j = july.start_ns();
        let mut head = Head::new();
        apply(
            &mut head,
            1,
            SeriesKind::Log,
            &[
                (j + 2, vec![("message", "later".into())]),
                (j + 1, vec![("level_no", FieldValue::I64(3))]),
                (j, vec![("message", "first".into())]),
            ],
        );
        let texts = head.flush_texts(7, july);
        assert_eq!(
            texts.iter().map(|(t, seq, text)| (*t, *seq, text.as_ref())).collect::<Vec<_>>(),
            vec![(j, 3, "first"), (j + 2, 1, "later")],
            "sorted by time; the row without a message has no text"
        );
        assert!(texts.iter().all(|(_, _, text)| matches!(text, Cow::Borrowed(_))));
        assert!(head.flush_texts(7, july.next()).is_empty());
        assert!(head.flush_texts(8, july).is_empty());

        let mut alerts = Head::new();
        apply(
            &mut alerts,
            1,
            SeriesKind::Alert,
            &[(j, vec![("title", "disk full".into()), ("description", "on /var".into())])],
        );
        let texts = alerts.flush_texts(7, july);
        assert_eq!(texts[0].2, "disk full\non /var");
    }

    #[test]
    fn metrics_keep_the_last_write_per_timestamp_and_sort() {
        let mut head = Head::new();
        apply(
            &mut head,
            1,
            SeriesKind::Metric,
            &[(20, vec![("a", 1.0.into())]), (10, vec![("a", 2.0.into()), ("b", 5i64.into())])],
        );
        apply(&mut head, 3, SeriesKind::Metric, &[(20, vec![("a", 3.0.into())])]);
        let rows = head.read(7, TimeRange::ALL, u64::MAX, None).unwrap();
        assert_eq!(rows.timestamps, vec![10, 20]);
        assert_eq!(rows.record_ids, vec![2, 3]);
        assert_eq!(rows.columns[0].values, ColumnValues::F64(vec![2.0, 3.0]));
        assert_eq!(rows.columns[1].name.as_ref(), "b");
        assert_eq!(rows.columns[1].validity, vec![true, false]);
        // Invisible sequence numbers are not read.
        let rows = head.read(7, TimeRange::ALL, 2, None).unwrap();
        assert_eq!(rows.columns[0].values, ColumnValues::F64(vec![2.0, 1.0]));
        assert_eq!(head.rows(), 3);
        assert_eq!(head.points(), 4);
    }

    #[test]
    fn events_keep_duplicates_and_absent_columns_are_dropped() {
        let mut head = Head::new();
        apply(
            &mut head,
            1,
            SeriesKind::Log,
            &[(5, vec![("message", "a".into())]), (5, vec![("message", "b".into())])],
        );
        let rows = head
            .read(7, TimeRange::new(0, 6), u64::MAX, Some(&["message".to_string()]))
            .unwrap();
        assert_eq!(rows.timestamps, vec![5, 5]);
        assert_eq!(rows.columns.len(), 1);
        assert!(head.read(7, TimeRange::new(6, 10), u64::MAX, None).is_none());
        assert!(head.read(8, TimeRange::ALL, u64::MAX, None).is_none());
        let flushed = flushed(&head);
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].2.len(), 2);
    }

    /// Thousands of rows, so most sit in pages: out of order, fields that come and go, a
    /// field first seen late, and floats no page packs (NaN, -0.0). Reads at random
    /// ranges and visibility must equal the rows as written (events keep every row).
    #[test]
    fn paged_columns_read_back_as_written() {
        use rand::{Rng, SeedableRng};
        let seed = crate::test_seed();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut head = Head::new();
        /// Timestamp, sequence number and fields (sorted by name) of a row written.
        type Written = (i64, u64, Vec<(Arc<str>, FieldValue)>);
        let mut written: Vec<Written> = Vec::new();
        let mut seq = 1;
        for batch in 0..40 {
            let mut rows = Vec::new();
            for _ in 0..rng.random_range(1..200) {
                let ts = rng.random_range(0..10_000i64);
                let mut fields: Vec<(&str, FieldValue)> = Vec::new();
                if rng.random_bool(0.9) {
                    let v = match rng.random_range(0..20) {
                        0 => f64::NAN,
                        1 => -0.0,
                        _ => rng.random_range(0..100_000) as f64 / 100.0,
                    };
                    fields.push(("a", FieldValue::F64(v)));
                }
                if rng.random_bool(0.5) {
                    fields.push(("b", FieldValue::I64(rng.random_range(-1_000_000..1_000_000))));
                }
                if batch >= 20 && rng.random_bool(0.7) {
                    fields.push(("c", FieldValue::Bool(rng.random_bool(0.5))));
                }
                if rng.random_bool(0.1) {
                    fields.push(("message", FieldValue::Str(format!("s{}", rng.random_range(0..9)))));
                }
                rows.push((ts, fields));
            }
            apply(&mut head, seq, SeriesKind::Log, &rows);
            for (i, (ts, fields)) in rows.into_iter().enumerate() {
                let fields = fields.into_iter().map(|(n, v)| (Arc::from(n), v)).collect();
                written.push((ts, seq + i as u64, fields));
            }
            seq = written.len() as u64 + 1;
        }
        let paged = head.series[&7].columns.iter().map(|c| c.pages.len()).sum::<usize>();
        assert!(paged > 40, "seed {seed}: only {paged} pages");
        // Compared by bits, so NaN equals itself.
        let key = |fields: &[(Arc<str>, FieldValue)]| -> Vec<(String, String)> {
            fields
                .iter()
                .map(|(n, v)| {
                    let v = match v {
                        FieldValue::F64(f) => format!("f{:x}", f.to_bits()),
                        other => format!("{other:?}"),
                    };
                    (n.to_string(), v)
                })
                .collect()
        };
        for round in 0..200 {
            let start = rng.random_range(0..10_000i64);
            let range = TimeRange::new(start, start + rng.random_range(1..10_000));
            let visible = if round % 4 == 0 { u64::MAX } else { rng.random_range(1..seq) };
            let mut expected: Vec<_> = written
                .iter()
                .filter(|(ts, s, _)| range.contains(*ts) && *s <= visible)
                .map(|(ts, s, f)| (*ts, *s, key(f)))
                .collect();
            expected.sort_by_key(|(ts, s, _)| (*ts, *s));
            let got: Vec<_> = head.read(7, range, visible, None).map_or_else(Vec::new, |chunk| {
                (0..chunk.len())
                    .map(|i| (chunk.timestamps[i], chunk.record_ids[i], key(&chunk.row(i))))
                    .collect()
            });
            assert_eq!(got, expected, "seed {seed}, round {round}: {range:?} visible {visible}");
        }
        let flushed = flushed(&head);
        assert_eq!(flushed.iter().map(|(_, _, c)| c.len()).sum::<usize>(), written.len(), "seed {seed}");

        // Text rows, taken a few at a time, come in arrival order with their own timestamp
        // and sequence number.
        let text_of = |fields: &[(Arc<str>, FieldValue)]| {
            fields.iter().find_map(|(n, v)| match v {
                FieldValue::Str(s) if &**n == "message" => Some(s.clone()),
                _ => None,
            })
        };
        let expected: Vec<_> = written.iter().filter_map(|(ts, s, f)| Some((*ts, *s, text_of(f)?))).collect();
        let (mut done, mut text_rows) = (FxHashMap::default(), Vec::new());
        while head.text_rows(&mut done, rng.random_range(1..300), &mut text_rows) {}
        let got: Vec<_> = text_rows.into_iter().map(|r| (r.timestamp, r.seq, r.text)).collect();
        assert_eq!(got, expected, "seed {seed}");

        for limit in [0, 1, 2_500, 9_999, 10_000] {
            let mut below = Vec::new();
            head.for_each_timestamp_below(limit, |t| below.push(t));
            below.sort_unstable();
            let mut expected: Vec<i64> = written.iter().map(|w| w.0).filter(|&t| t < limit).collect();
            expected.sort_unstable();
            assert_eq!(below, expected, "seed {seed}, limit {limit}");
        }
    }

    #[test]
    fn metric_writes_to_one_timestamp_update_only_the_fields_they_carry() {
        let mut head = Head::new();
        apply(&mut head, 1, SeriesKind::Metric, &[(10, vec![("a", 1.0.into())])]);
        apply(
            &mut head,
            2,
            SeriesKind::Metric,
            &[(10, vec![("b", 2.0.into())]), (5, vec![("a", 0.5.into())])],
        );
        apply(&mut head, 4, SeriesKind::Metric, &[(10, vec![("a", 3.0.into())])]);
        let rows = head.read(7, TimeRange::ALL, u64::MAX, None).unwrap();
        assert_eq!(rows.timestamps, vec![5, 10]);
        assert_eq!(rows.record_ids, vec![3, 4]);
        assert_eq!(
            rows.row(1),
            vec![(Arc::from("a"), FieldValue::F64(3.0)), (Arc::from("b"), FieldValue::F64(2.0))]
        );
        // As of sequence 2, `a` still holds the first write's value.
        let rows = head.read(7, TimeRange::ALL, 2, None).unwrap();
        assert_eq!(
            rows.row(0),
            vec![(Arc::from("a"), FieldValue::F64(1.0)), (Arc::from("b"), FieldValue::F64(2.0))]
        );
        // A read of one field takes it from the newest write that carried it.
        let rows = head.read(7, TimeRange::new(10, 11), 3, Some(&["a".to_string()])).unwrap();
        assert_eq!(rows.row(0), vec![(Arc::from("a"), FieldValue::F64(1.0))]);
        let flushed = flushed(&head);
        assert_eq!(
            flushed[0].2.row(1),
            vec![(Arc::from("a"), FieldValue::F64(3.0)), (Arc::from("b"), FieldValue::F64(2.0))]
        );
    }
}
