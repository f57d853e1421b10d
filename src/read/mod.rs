//! The read path of one series: segment blocks and head rows merged into time-ordered
//! chunks.
//!
//! Sources are cut into *units* that are disjoint in time: a group of blocks whose time
//! ranges overlap (plus the head rows inside it), or a run of head rows between groups.
//! A unit with one source is already sorted and holds one row per metric timestamp; only
//! overlapping sources are merged, by (timestamp, version) (head rows by sequence number,
//! segments by the `max_seq` of their flush): a metric timestamp becomes one row in which
//! each field holds the value of the newest write that carried that field; event rows are
//! all kept, ordered by record id; summary rows are replaced whole by a newer run's. Units
//! are decoded lazily, one at a time, so memory is bounded by the largest group of
//! overlapping blocks, not by the size of the range.
//!
//! Because a lone block (one that overlaps no other source) never shares a timestamp with
//! another write, its statistics describe exactly the rows a read of it yields.

mod view;

pub(crate) use view::{ReadView, SummarySources};

use crate::chunk::{Chunk, Duplicates, merge_versions};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::model::{SeriesId, SeriesKind};
use crate::segment::{BlockMeta, SegmentReader};
use crate::text::{HeadText, TextView};
use crate::time::TimeRange;
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

/// Row order of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// A head and the full-text index of its rows (built when first searched).
#[derive(Debug, Clone)]
pub(crate) struct HeadRef {
    pub rows: Arc<RwLock<Head>>,
    pub text: Arc<HeadText>,
}

impl HeadRef {
    pub(crate) fn new(head: Head) -> HeadRef {
        HeadRef {
            rows: Arc::new(RwLock::new(head)),
            text: Arc::new(HeadText::default()),
        }
    }

    /// Memory held by the rows and their text index.
    pub(crate) fn bytes(&self) -> usize {
        self.rows.read().bytes() + self.text.bytes()
    }

    pub(crate) fn is(&self, other: &HeadRef) -> bool {
        Arc::ptr_eq(&self.rows, &other.rows)
    }
}

/// What a snapshot sees: sealed segments, the heads not yet flushed, and the full-text
/// index of the segments.
#[derive(Default, Clone)]
pub(crate) struct ReadState {
    /// Sorted by (month, generation).
    pub segments: Vec<Arc<SegmentReader>>,
    /// Heads being flushed (oldest first), then the active head.
    pub heads: Vec<HeadRef>,
    /// The committed text index of every month, covering exactly the text rows of
    /// `segments`.
    pub text: Arc<TextView>,
    /// Summary segments of every tier, sorted by (tier, month, generation).
    pub summaries: Vec<Arc<SegmentReader>>,
    /// Retention horizons applied: detail before them is gone.
    pub horizons: Arc<crate::retention::Horizons>,
}

impl ReadState {
    /// The readers of a tier's list: detail, or the summaries (all summary tiers), as in
    /// [`crate::manifest::Manifest::list_mut`].
    pub(crate) fn list_mut(&mut self, tier: crate::manifest::Resolution) -> &mut Vec<Arc<SegmentReader>> {
        match tier {
            crate::manifest::Resolution::Detail => &mut self.segments,
            _ => &mut self.summaries,
        }
    }

    /// The summary segments of one tier.
    pub(crate) fn summaries_of(&self, tier: crate::manifest::Resolution) -> Vec<Arc<SegmentReader>> {
        self.summaries.iter().filter(|s| s.meta().tier == tier).cloned().collect()
    }
}

impl std::fmt::Debug for ReadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadState")
            .field("segments", &self.segments.len())
            .field("heads", &self.heads.len())
            .field("text_months", &self.text.months.len())
            .field("summaries", &self.summaries.len())
            .finish()
    }
}

#[derive(Clone)]
struct BlockSource {
    segment: Arc<SegmentReader>,
    meta: BlockMeta,
}

enum Unit {
    Head(Range<usize>),
    Group { blocks: Vec<BlockSource>, head: Range<usize> },
}

/// Decides from a lone block's metadata that none of its rows can be wanted (for example a
/// value filter its statistics rule out). Only consulted for blocks that overlap no other
/// source, where skipping cannot expose an older version of a row.
pub(crate) type BlockPruner = Arc<dyn Fn(&SegmentReader, &BlockMeta) -> bool + Send + Sync>;

/// One time-disjoint piece of a series.
pub(crate) enum UnitData {
    /// A block that overlaps no other source: its metadata describes exactly the rows it
    /// would yield (before range and field trimming). Decode it with
    /// [`SeriesChunks::decode_lone`].
    Lone { segment: Arc<SegmentReader>, meta: BlockMeta },
    /// Rows already decoded and merged, in output order.
    Rows(Chunk),
}

/// Chunks of one series in a time range, in the requested order.
pub struct SeriesChunks {
    series: SeriesId,
    kind: SeriesKind,
    /// How rows sharing a timestamp combine.
    duplicates: Duplicates,
    range: TimeRange,
    fields: Option<Arc<[String]>>,
    order: Order,
    /// The series' visible head rows, merged over heads, sorted, one row per metric timestamp.
    head: Chunk,
    units: VecDeque<Unit>,
    pruner: Option<BlockPruner>,
    /// Keep rows that have none of the wanted fields (for counting rows).
    keep_empty_rows: bool,
    /// At most this many rows of each unit, the first ones in `order`: a reader that
    /// stops after n rows of the series needs no more (see [`SeriesChunks::with_row_cap`]).
    row_cap: Option<usize>,
}

impl SeriesChunks {
    pub(crate) fn new(
        state: &ReadState,
        visible_seq: u64,
        series: SeriesId,
        kind: SeriesKind,
        range: TimeRange,
        fields: Option<Arc<[String]>>,
        order: Order,
    ) -> Result<SeriesChunks> {
        SeriesChunks::with_rule(state, visible_seq, series, kind, Duplicates::of(kind), range, fields, order)
    }

    /// Chunks of a summary tier's series: one row per bucket, the newest run's row whole (a
    /// later run of a bucket replaces the earlier one; fields are not merged across runs).
    pub(crate) fn summaries(state: &ReadState, series: SeriesId, range: TimeRange, fields: Option<Arc<[String]>>) -> Result<SeriesChunks> {
        SeriesChunks::with_rule(
            state,
            u64::MAX,
            series,
            SeriesKind::Metric,
            Duplicates::ReplaceRow,
            range,
            fields,
            Order::Ascending,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn with_rule(
        state: &ReadState,
        visible_seq: u64,
        series: SeriesId,
        kind: SeriesKind,
        duplicates: Duplicates,
        range: TimeRange,
        fields: Option<Arc<[String]>>,
        order: Order,
    ) -> Result<SeriesChunks> {
        let mut blocks = Vec::new();
        let mut head_parts = Vec::new();
        if !range.is_empty() {
            for segment in &state.segments {
                let meta = segment.meta();
                if !range.overlaps(meta.min_ts, meta.max_ts) || !segment.series_set().contains(series) {
                    continue;
                }
                if let Some(entry) = segment.series(series)? {
                    blocks.extend(
                        entry
                            .blocks
                            .into_iter()
                            .filter(|b| range.overlaps(b.min_ts, b.max_ts))
                            .map(|meta| BlockSource {
                                segment: segment.clone(),
                                meta,
                            }),
                    );
                }
            }
            for head in &state.heads {
                let head = head.rows.read();
                if head.may_contain(series, range)
                    && let Some(chunk) = head.read(series, range, visible_seq, fields.as_deref())
                {
                    let versions = chunk.record_ids.clone();
                    head_parts.push((chunk, versions));
                }
            }
        }
        let mut head = match head_parts.len() {
            0 => Chunk::default(),
            1 => head_parts.pop().map(|(c, _)| c).unwrap_or_default(),
            _ => merge_versions(series, duplicates, head_parts),
        };
        head.series = series;
        blocks.sort_by_key(|b| (b.meta.min_ts, b.segment.meta().max_seq));
        let units = plan_units(blocks, &head.timestamps);
        Ok(SeriesChunks {
            series,
            kind,
            duplicates,
            range,
            fields,
            order,
            head,
            units,
            pruner: None,
            keep_empty_rows: false,
            row_cap: None,
        })
    }

    /// Skips lone blocks the pruner rules out.
    pub(crate) fn with_pruner(mut self, pruner: Option<BlockPruner>) -> SeriesChunks {
        self.pruner = pruner;
        self
    }

    /// Hands out at most `cap` rows of each block or merged unit: the first `cap` in the
    /// chunks' order. For a reader that takes at most `cap` rows of this series (a raw
    /// page: offset + limit and its lookahead), so a page of a long series copies its
    /// rows, not whole blocks. Only without a field selection (rows never dropped after
    /// the cap): merging the capped parts of overlapping blocks is exact, because the first
    /// `cap` timestamps of a union lie within the first `cap` of each part.
    pub(crate) fn with_row_cap(mut self, cap: Option<usize>) -> SeriesChunks {
        self.row_cap = cap.filter(|_| self.fields.is_none());
        self
    }

    /// Keeps rows that have none of the wanted fields, when `keep` (counting rows).
    pub(crate) fn keep_rows_without_fields(mut self, keep: bool) -> SeriesChunks {
        self.keep_empty_rows = keep;
        self
    }

    /// The series' kind.
    pub(crate) fn kind(&self) -> SeriesKind {
        self.kind
    }

    /// Field-table indexes of `segment` to decode.
    fn wanted_fields(&self, segment: &SegmentReader) -> Option<Vec<u32>> {
        let wanted = self.fields.as_ref()?;
        Some(
            segment
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, (name, _))| wanted.iter().any(|n| **n == **name))
                .map(|(i, _)| i as u32)
                .collect(),
        )
    }

    /// Decodes a block and trims it to the range; `versions` come with it.
    fn decode_block(&self, segment: &Arc<SegmentReader>, meta: &BlockMeta) -> Result<Option<(Chunk, Vec<u64>)>> {
        self.decode_block_rows(segment, meta, None)
    }

    /// [`SeriesChunks::decode_block`] with the strings of rows `keep_row` rejects empty.
    fn decode_block_rows(
        &self,
        segment: &Arc<SegmentReader>,
        meta: &BlockMeta,
        keep_row: Option<&dyn Fn(i64, u64) -> bool>,
    ) -> Result<Option<(Chunk, Vec<u64>)>> {
        let Some((chunk, Range { mut start, mut end })) = self.lend_lone_rows(segment, meta, keep_row)? else {
            return Ok(None);
        };
        if let Some(cap) = self.row_cap {
            match self.order {
                Order::Ascending => end = end.min(start.saturating_add(cap)),
                Order::Descending => start = start.max(end.saturating_sub(cap)),
            }
        }
        let chunk = chunk.slice_rows(start..end);
        let versions = if self.kind.is_event() {
            chunk.record_ids.clone()
        } else {
            vec![segment.meta().max_seq; chunk.len()]
        };
        Ok(Some((chunk, versions)))
    }

    /// Hands the rows in range to `visit` oldest first, as (chunk, rows of it), until it
    /// returns true. A block that overlaps nothing else is lent from the block cache
    /// without being copied, so point lookups (a commit by its location) do not copy a
    /// block to read one row. Rows come as stored: those without any wanted field are not
    /// dropped. The chunks' order must be ascending.
    pub(crate) fn lend_ascending(mut self, mut visit: impl FnMut(&Chunk, Range<usize>) -> bool) -> Result<()> {
        if self.order != Order::Ascending {
            return Err(Error::Invariant("lend_ascending needs ascending chunks".into()));
        }
        while let Some(unit) = self.next_unit() {
            match unit? {
                UnitData::Lone { segment, meta } => {
                    if let Some((chunk, rows)) = self.lend_lone(&segment, &meta)?
                        && visit(&chunk, rows)
                    {
                        return Ok(());
                    }
                }
                UnitData::Rows(chunk) => {
                    if visit(&chunk, 0..chunk.len()) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// A lone block handed out by [`SeriesChunks::next_unit`] as stored, from the block
    /// cache without a copy, with the rows of it in range; `None` when none are. Rows come
    /// oldest first and are not trimmed to the row cap; rows without any wanted field are
    /// kept. A reader that visits rows in time order (aggregation) saves the copy
    /// [`SeriesChunks::decode_lone`] makes.
    pub(crate) fn lend_lone(&self, segment: &Arc<SegmentReader>, meta: &BlockMeta) -> Result<Option<(Arc<Chunk>, Range<usize>)>> {
        self.lend_lone_rows(segment, meta, None)
    }

    /// [`SeriesChunks::lend_lone`] with the strings of rows `keep_row` rejects left empty.
    fn lend_lone_rows(
        &self,
        segment: &Arc<SegmentReader>,
        meta: &BlockMeta,
        keep_row: Option<&dyn Fn(i64, u64) -> bool>,
    ) -> Result<Option<(Arc<Chunk>, Range<usize>)>> {
        let wanted = self.wanted_fields(segment);
        let chunk = segment.read_block_rows(self.series, meta, wanted.as_deref(), keep_row)?;
        let start = chunk.timestamps.partition_point(|&t| t < self.range.start);
        let end = chunk.timestamps.partition_point(|&t| t < self.range.end);
        Ok((start < end).then_some((chunk, start..end)))
    }

    /// Decodes a lone block handed out by [`SeriesChunks::next_unit`], finished like any
    /// other output chunk (trimmed, in order); `None` when nothing of it is wanted.
    pub(crate) fn decode_lone(&self, segment: &Arc<SegmentReader>, meta: &BlockMeta) -> Result<Option<Chunk>> {
        Ok(self.decode_block(segment, meta)?.and_then(|(chunk, _)| self.finish(chunk)))
    }

    /// [`SeriesChunks::decode_lone`] for a reader that wants only the rows `keep_row`
    /// accepts (by timestamp and record id), such as a search's hits: the other rows'
    /// strings and byte strings come back empty, so a few rows of a block of thousands of
    /// log lines cost no allocation per line. A partial block is not cached (see
    /// [`SegmentReader::read_block_rows`] for when the block is read whole instead).
    pub(crate) fn decode_lone_rows(
        &self,
        segment: &Arc<SegmentReader>,
        meta: &BlockMeta,
        keep_row: &dyn Fn(i64, u64) -> bool,
    ) -> Result<Option<Chunk>> {
        Ok(self
            .decode_block_rows(segment, meta, Some(keep_row))?
            .and_then(|(chunk, _)| self.finish(chunk)))
    }

    /// The next unit in order: a lone block undecoded, or decoded rows.
    pub(crate) fn next_unit(&mut self) -> Option<Result<UnitData>> {
        loop {
            let unit = match self.order {
                Order::Ascending => self.units.pop_front()?,
                Order::Descending => self.units.pop_back()?,
            };
            let rows = match unit {
                Unit::Group { mut blocks, head } if blocks.len() == 1 && head.is_empty() => {
                    let b = blocks.remove(0);
                    if self.pruner.as_ref().is_some_and(|prune| prune(&b.segment, &b.meta)) {
                        continue;
                    }
                    return Some(Ok(UnitData::Lone {
                        segment: b.segment,
                        meta: b.meta,
                    }));
                }
                other => self.evaluate(other),
            };
            match rows {
                Ok(chunk) => {
                    if let Some(chunk) = self.finish(chunk) {
                        return Some(Ok(UnitData::Rows(chunk)));
                    }
                }
                Err(e) => {
                    self.units.clear();
                    return Some(Err(e));
                }
            }
        }
    }

    fn evaluate(&self, unit: Unit) -> Result<Chunk> {
        let (blocks, head_range) = match unit {
            Unit::Head(r) => return Ok(self.head.slice_rows(r)),
            Unit::Group { blocks, head } => (blocks, head),
        };
        let mut parts = Vec::with_capacity(blocks.len() + 1);
        for b in &blocks {
            if let Some(part) = self.decode_block(&b.segment, &b.meta)? {
                parts.push(part);
            }
        }
        if !head_range.is_empty() {
            let chunk = self.head.slice_rows(head_range);
            let versions = chunk.record_ids.clone();
            parts.push((chunk, versions));
        }
        Ok(match parts.len() {
            0 => Chunk::default(),
            1 => parts.pop().map(|(c, _)| c).unwrap_or_default(),
            _ => merge_versions(self.series, self.duplicates, parts),
        })
    }

    /// Output form of a unit's rows: rows without a wanted field dropped, record ids only
    /// for events, in the requested order. `None` when nothing is left.
    fn finish(&self, mut chunk: Chunk) -> Option<Chunk> {
        if chunk.is_empty() {
            return None;
        }
        if self.fields.is_some() && !self.keep_empty_rows {
            chunk = chunk.retain_rows_with_values();
            if chunk.is_empty() {
                return None;
            }
        }
        chunk.series = self.series;
        if !self.kind.is_event() {
            chunk.record_ids.clear();
        }
        if let Some(cap) = self.row_cap
            && chunk.len() > cap
        {
            let len = chunk.len();
            chunk = match self.order {
                Order::Ascending => chunk.slice_rows(0..cap),
                Order::Descending => chunk.slice_rows(len - cap..len),
            };
        }
        if self.order == Order::Descending {
            chunk.reverse();
        }
        Some(chunk)
    }
}

impl Iterator for SeriesChunks {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            return match self.next_unit()? {
                Ok(UnitData::Rows(chunk)) => Some(Ok(chunk)),
                Ok(UnitData::Lone { segment, meta }) => match self.decode_lone(&segment, &meta) {
                    Ok(Some(chunk)) => Some(Ok(chunk)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.units.clear();
                        Some(Err(e))
                    }
                },
                Err(e) => Some(Err(e)),
            };
        }
    }
}

/// Cuts blocks (sorted by min time) and head timestamps into time-disjoint units.
fn plan_units(blocks: Vec<BlockSource>, head: &[i64]) -> VecDeque<Unit> {
    let mut units = VecDeque::new();
    let mut hpos = 0;
    let mut i = 0;
    while i < blocks.len() {
        let group_min = blocks[i].meta.min_ts;
        let mut group_max = blocks[i].meta.max_ts;
        let mut j = i + 1;
        while j < blocks.len() && blocks[j].meta.min_ts <= group_max {
            group_max = group_max.max(blocks[j].meta.max_ts);
            j += 1;
        }
        let before = hpos + head[hpos..].partition_point(|&t| t < group_min);
        if before > hpos {
            units.push_back(Unit::Head(hpos..before));
        }
        let inside = before + head[before..].partition_point(|&t| t <= group_max);
        units.push_back(Unit::Group {
            blocks: blocks[i..j].to_vec(),
            head: before..inside,
        });
        hpos = inside;
        i = j;
    }
    if hpos < head.len() {
        units.push_back(Unit::Head(hpos..head.len()));
    }
    units
}
