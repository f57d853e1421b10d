//! [`Snapshot`]: a consistent, immutable view for readers.

use super::Inner;
use crate::error::Result;
use crate::lifecycle::Resolution;
use crate::model::{SeriesId, SeriesKey};
use crate::read::{Order, ReadState, SeriesChunks};
use crate::scan::{Scan, ScanRequest, SeriesSelector};
use crate::time::TimeRange;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A consistent view of the store: exactly the rows acknowledged when it was taken (a
/// prefix of the write order), whatever writes, flushes and compactions happen later.
///
/// It holds the segment files and heads it needs; keep it only as long as it is used.
#[derive(Clone)]
pub struct Snapshot {
    inner: Arc<Inner>,
    state: Arc<ReadState>,
    visible_seq: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("visible_seq", &self.visible_seq)
            .field("segments", &self.state.segments.len())
            .field("heads", &self.state.heads.len())
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: Arc<Inner>) -> Snapshot {
        // Read the visible sequence number under the state lock: a flush publishes segments
        // only after their rows became visible, so every segment row is <= visible_seq and
        // the view is a prefix of the write order.
        let (state, visible_seq) = {
            let guard = inner.state.read();
            (guard.clone(), inner.visible_seq.load(Ordering::SeqCst))
        };
        Snapshot { inner, state, visible_seq }
    }

    /// Highest sequence number visible.
    pub fn visible_seq(&self) -> u64 {
        self.visible_seq
    }

    /// The key of a series.
    pub fn series_key(&self, id: SeriesId) -> Option<Arc<SeriesKey>> {
        self.inner.catalog.read().get(id).cloned()
    }

    /// Ids of the series a selector covers, ascending. Fails on an invalid regular
    /// expression.
    pub fn select(&self, selector: &SeriesSelector) -> Result<Vec<SeriesId>> {
        let catalog = self.inner.catalog.read();
        let set = catalog.select(selector.kind, selector.measurement.as_deref(), selector.predicate.as_ref())?;
        Ok(set.iter().collect())
    }

    /// Number of series in the catalog.
    pub fn series_count(&self) -> usize {
        self.inner.catalog.read().len()
    }

    /// Time-ordered chunks of one series in `range`, with only `fields` (all when `None`).
    pub fn series_chunks(&self, series: SeriesId, range: TimeRange, fields: Option<&[String]>, order: Order) -> Result<SeriesChunks> {
        let kind = match self.series_key(series) {
            Some(key) => key.kind(),
            None => {
                return SeriesChunks::new(
                    &ReadState::default(),
                    0,
                    series,
                    crate::model::SeriesKind::Metric,
                    TimeRange::new(0, 0),
                    None,
                    order,
                );
            }
        };
        let fields: Option<Arc<[String]>> = fields.map(Arc::from);
        SeriesChunks::new(&self.state, self.visible_seq, series, kind, range, fields, order)
    }

    /// Start of the detail rows retention kept for a series: before it, only summaries.
    pub(crate) fn detail_floor(&self, key: &SeriesKey) -> Option<i64> {
        self.state.horizons.for_series(&self.inner.options.retention, key).map(|h| h.detail)
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
    /// indexes and head columns): a cheap way to know a scan's columns before reading it.
    pub fn field_names(&self, series: &[SeriesId], range: TimeRange) -> Result<Vec<String>> {
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
                names.extend(head.field_names(id).iter().map(|n| n.to_string()));
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Runs a query against this snapshot, within the store's query limits.
    pub fn query(&self, query: &crate::query::Query) -> Result<crate::query::QueryResult> {
        crate::query::run(self, query, &self.inner.options.query_limits)
    }

    /// Full-text search over logs and alerts: the best page of hits, with their rows and
    /// snippets. Fails with [`crate::Error::InvalidInput`] (naming the column) on a bad
    /// query string or a foreign cursor.
    pub fn search(&self, query: &crate::query::SearchQuery) -> Result<crate::query::SearchResult> {
        crate::query::search::search(&self.search_context(), query)
    }

    /// Records matching `query` (its text, selector and range; not its paging) counted per
    /// time bucket and level, without reading any record.
    pub fn search_counts(&self, query: &crate::query::SearchQuery, bucket: crate::query::Bucket) -> Result<Vec<crate::query::MatchCount>> {
        crate::query::search::count(&self.search_context(), query, bucket)
    }

    fn search_context(&self) -> crate::query::search::SearchContext<'_> {
        crate::query::search::SearchContext {
            state: &self.state,
            visible_seq: self.visible_seq,
            catalog: &self.inner.catalog,
            limits: &self.inner.options.query_limits,
        }
    }

    /// Rows of the selected series, merged by time.
    pub fn scan(&self, request: &ScanRequest) -> Result<Scan> {
        let ids = self.select(&request.selector)?;
        let fields: Option<Arc<[String]>> = request.fields.as_deref().map(Arc::from);
        let mut series = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(key) = self.series_key(id) else { continue };
            let chunks = SeriesChunks::new(
                &self.state,
                self.visible_seq,
                id,
                key.kind(),
                request.range,
                fields.clone(),
                request.order,
            )?;
            series.push((key, id, chunks));
        }
        Scan::new(series, request.order, request.limit)
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
