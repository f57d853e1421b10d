//! [`ReadView`]: everything a reader reads, as one value. A snapshot builds it; the query
//! engine, full-text search and scans take it, so they depend on the read path and the
//! catalog, never on the engine that owns them.

use super::{Order, ReadState, SeriesChunks};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::index::SeriesSelector;
use crate::manifest::Resolution;
use crate::model::{SeriesId, SeriesKey, SeriesKind};
use crate::options::QueryLimits;
use crate::retention::RetentionOptions;
use crate::segment::SegmentReader;
use crate::time::TimeRange;
use parking_lot::RwLock;
use std::sync::Arc;

/// A consistent view to read from: the read state a snapshot holds, the newest sequence
/// number it sees, the catalog (series created later are not in any of its chunks), and
/// the options reads consult.
#[derive(Clone, Copy)]
pub(crate) struct ReadView<'a> {
    pub state: &'a ReadState,
    pub visible_seq: u64,
    pub catalog: &'a RwLock<Catalog>,
    pub retention: &'a RetentionOptions,
    pub limits: &'a QueryLimits,
}

impl ReadView<'_> {
    /// The key of a series.
    pub(crate) fn series_key(&self, id: SeriesId) -> Option<Arc<SeriesKey>> {
        self.catalog.read().get(id).cloned()
    }

    /// The id of a series key, if the catalog has it.
    pub(crate) fn series_id(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.catalog.read().lookup(key)
    }

    /// Ids of the series a selector covers, ascending. Fails on an invalid regular
    /// expression.
    pub(crate) fn select(&self, selector: &SeriesSelector) -> Result<Vec<SeriesId>> {
        Ok(self.catalog.read().select(selector)?.iter().collect())
    }

    /// Time-ordered chunks of one series in `range`, with only `fields` (all when `None`);
    /// nothing for an unknown series.
    pub(crate) fn series_chunks(
        &self,
        series: SeriesId,
        range: TimeRange,
        fields: Option<Arc<[String]>>,
        order: Order,
    ) -> Result<SeriesChunks> {
        match self.series_key(series) {
            Some(key) => SeriesChunks::new(self.state, self.visible_seq, series, key.kind(), range, fields, order),
            None => SeriesChunks::new(
                &ReadState::default(),
                0,
                series,
                SeriesKind::Metric,
                TimeRange::new(0, 0),
                None,
                order,
            ),
        }
    }

    /// The view's detail segments, the newest data first (by their newest timestamp), for
    /// [`ReadView::newest_block_end`].
    pub(crate) fn segments_newest_first(&self) -> Vec<Arc<SegmentReader>> {
        let mut segments = self.state.segments.clone();
        segments.sort_by_key(|s| std::cmp::Reverse(s.meta().max_ts));
        segments
    }

    /// A timestamp in `range` at which `series` has a row in the segments, found from the
    /// block index of the first of `newest_first` (see
    /// [`ReadView::segments_newest_first`]) that holds the series there: the series'
    /// newest row in `range` is no older. Reads one series entry rather than one per
    /// segment. `None` when no segment has a block of it in `range`, or the newest such
    /// block reaches past `range` (its rows' times within `range` are not known).
    pub(crate) fn newest_block_end(&self, newest_first: &[Arc<SegmentReader>], series: SeriesId, range: TimeRange) -> Result<Option<i64>> {
        for segment in newest_first {
            let meta = segment.meta();
            if !range.overlaps(meta.min_ts, meta.max_ts) || !segment.series_set().contains(series) {
                continue;
            }
            let Some(entry) = segment.series(series)? else { continue };
            let newest = entry
                .blocks
                .iter()
                .filter(|b| range.overlaps(b.min_ts, b.max_ts))
                .map(|b| b.max_ts)
                .max();
            if let Some(end) = newest {
                return Ok(range.contains(end).then_some(end));
            }
        }
        Ok(None)
    }

    /// Oldest and newest timestamps of anything the view holds (detail segments, heads and
    /// summaries), inclusive, from metadata only; `None` when it holds nothing. A query
    /// that walks its range in steps uses it to know where the data ends.
    pub(crate) fn time_bounds(&self) -> Option<(i64, i64)> {
        let segments = self.state.segments.iter().chain(&self.state.summaries).map(|s| {
            let meta = s.meta();
            (meta.min_ts, meta.max_ts)
        });
        let heads = self.state.heads.iter().filter_map(|h| h.rows.read().time_span());
        segments.chain(heads).reduce(|(lo, hi), (min, max)| (lo.min(min), hi.max(max)))
    }

    /// Start of the detail rows retention kept for a series: before it, only summaries.
    pub(crate) fn detail_floor(&self, key: &SeriesKey) -> Option<i64> {
        self.state.horizons.for_series(self.retention, key).map(|h| h.detail)
    }

    /// The summary readers of every tier, in the order of [`Resolution::SUMMARIES`]; empty
    /// before retention ever dropped detail (queries then read detail only). A query
    /// takes them once and reads each series with [`SummarySources::chunks`].
    pub(crate) fn summary_sources(&self) -> SummarySources {
        if self.state.horizons.by_rule.is_empty() {
            return SummarySources(Vec::new());
        }
        SummarySources(
            Resolution::SUMMARIES
                .iter()
                .map(|t| ReadState {
                    segments: self.state.summaries_of(*t),
                    ..ReadState::default()
                })
                .collect(),
        )
    }

    /// Names of the fields the series have in `range`, sorted, from metadata only (block
    /// indexes, and head columns when the head's time span overlaps `range`): a cheap way to
    /// know a scan's columns before reading it. A field may be named whose rows all lie
    /// just outside `range` within one block or head.
    pub(crate) fn field_names(&self, series: &[SeriesId], range: TimeRange) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        for segment in &self.state.segments {
            let meta = segment.meta();
            if !range.overlaps(meta.min_ts, meta.max_ts) {
                continue;
            }
            for &id in series {
                if let Some(entry) = segment.series(id)? {
                    for block in entry.blocks.iter().filter(|b| range.overlaps(b.min_ts, b.max_ts)) {
                        for column in &block.columns {
                            names.insert(segment.fields()[column.field as usize].0.to_string());
                        }
                    }
                }
            }
        }
        for head in &self.state.heads {
            let head = head.rows.read();
            for &id in series {
                if head.may_contain(id, range) {
                    names.extend(head.field_names(id).iter().map(|n| n.to_string()));
                }
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// The summary segments of each tier, as one query reads them.
pub(crate) struct SummarySources(Vec<ReadState>);

impl SummarySources {
    /// Rows of one summary tier for a series (one per bucket, the newest run's winning),
    /// with only `fields`.
    pub(crate) fn chunks(&self, tier: Resolution, series: SeriesId, range: TimeRange, fields: &Arc<[String]>) -> Result<SeriesChunks> {
        let empty = ReadState::default();
        let state = Resolution::SUMMARIES
            .iter()
            .position(|t| *t == tier)
            .and_then(|i| self.0.get(i))
            .unwrap_or(&empty);
        SeriesChunks::summaries(state, series, range, Some(fields.clone()))
    }
}
