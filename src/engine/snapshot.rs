//! [`Snapshot`]: a consistent, immutable view for readers.

use super::Inner;
use crate::error::Result;
use crate::index::SeriesSelector;
use crate::model::{SeriesId, SeriesKey};
use crate::read::{Order, ReadState, ReadView, SeriesChunks};
use crate::scan::{Scan, ScanRequest};
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
            let guard = inner.published.state.read();
            (guard.clone(), inner.writes.visible_seq.load(Ordering::SeqCst))
        };
        Snapshot { inner, state, visible_seq }
    }

    /// Highest sequence number visible.
    pub fn visible_seq(&self) -> u64 {
        self.visible_seq
    }

    /// What this snapshot reads, as the query engine and search take it.
    pub(crate) fn view(&self) -> ReadView<'_> {
        ReadView {
            state: &self.state,
            visible_seq: self.visible_seq,
            catalog: &self.inner.writes.catalog,
            retention: &self.inner.options.retention,
            limits: &self.inner.options.query_limits,
        }
    }

    /// The key of a series.
    pub fn series_key(&self, id: SeriesId) -> Option<Arc<SeriesKey>> {
        self.view().series_key(id)
    }

    /// The id of a series key, if the store has the series.
    pub fn series_id(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.view().series_id(key)
    }

    /// Ids of the series a selector covers, ascending. Fails on an invalid regular
    /// expression.
    pub fn select(&self, selector: &SeriesSelector) -> Result<Vec<SeriesId>> {
        self.view().select(selector)
    }

    /// Number of series in the catalog.
    pub fn series_count(&self) -> usize {
        self.inner.writes.catalog.read().len()
    }

    /// Time-ordered chunks of one series in `range`, with only `fields` (all when `None`).
    pub fn series_chunks(&self, series: SeriesId, range: TimeRange, fields: Option<&[String]>, order: Order) -> Result<SeriesChunks> {
        self.view().series_chunks(series, range, fields.map(Arc::from), order)
    }

    /// Names of the fields the series have in `range`, sorted, from metadata only (block
    /// indexes and head columns): a cheap way to know a scan's columns before reading it.
    pub fn field_names(&self, series: &[SeriesId], range: TimeRange) -> Result<Vec<String>> {
        self.view().field_names(series, range)
    }

    /// Runs a query against this snapshot, within the store's query limits.
    pub fn query(&self, query: &crate::query::Query) -> Result<crate::query::QueryResult> {
        crate::query::run(&self.view(), query)
    }

    /// Full-text search over logs and alerts: the best page of hits, with their rows and
    /// snippets. Fails with [`crate::Error::InvalidInput`] (naming the column) on a bad
    /// query string or a foreign cursor.
    pub fn search(&self, query: &crate::query::SearchQuery) -> Result<crate::query::SearchResult> {
        crate::query::search::search(&self.view(), query)
    }

    /// Records matching `query` (its text, selector and range; not its paging) counted per
    /// time bucket and level, without reading any record.
    pub fn search_counts(&self, query: &crate::query::SearchQuery, bucket: crate::time::Bucket) -> Result<Vec<crate::query::MatchCount>> {
        crate::query::search::count(&self.view(), query, bucket)
    }

    /// Rows of the selected series, merged by time.
    pub fn scan(&self, request: &ScanRequest) -> Result<Scan> {
        crate::scan::scan(&self.view(), request)
    }

    /// Evaluates a PromQL expression at one instant (milliseconds since the epoch), as
    /// Prometheus' `/api/v1/query` does; see [`crate::query::promql`] for how annals series
    /// are named. A syntax error is [`crate::Error::InvalidInput`], a construct annals does
    /// not evaluate [`crate::Error::Unsupported`].
    #[cfg(feature = "prometheus")]
    pub fn promql_instant(
        &self,
        query: &str,
        time_ms: i64,
        options: &crate::query::promql::PromOptions,
    ) -> Result<crate::query::promql::PromValue> {
        crate::query::promql::instant_query(&self.view(), query, time_ms, options)
    }

    /// Evaluates a PromQL expression at each step of `[start_ms, end_ms]` (at most 11,000
    /// steps), as `/api/v1/query_range` does: always a matrix.
    #[cfg(feature = "prometheus")]
    pub fn promql_range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        options: &crate::query::promql::PromOptions,
    ) -> Result<crate::query::promql::PromValue> {
        crate::query::promql::range_query(&self.view(), query, start_ms, end_ms, step_ms, options)
    }

    /// The Prometheus series (label sets) any of the `match[]` selectors matches with a
    /// sample in `[start_ms, end_ms]`, sorted.
    #[cfg(feature = "prometheus")]
    pub fn promql_series(&self, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<crate::query::promql::Labels>> {
        crate::query::promql::series(&self.view(), selectors, start_ms, end_ms)
    }

    /// Label names of the series the selectors match (every metric series when there are
    /// none), sorted.
    #[cfg(feature = "prometheus")]
    pub fn promql_label_names(&self, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<String>> {
        crate::query::promql::label_names(&self.view(), selectors, start_ms, end_ms)
    }

    /// Values of label `name` over the series the selectors match (every metric series
    /// when there are none), sorted.
    #[cfg(feature = "prometheus")]
    pub fn promql_label_values(&self, name: &str, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<String>> {
        crate::query::promql::label_values(&self.view(), name, selectors, start_ms, end_ms)
    }
    /// Evaluates a LogQL query over `[start_ns, end_ns]`, as Loki's
    /// `/loki/api/v1/query_range` does: a log query's lines in `[start, end)` (at most
    /// `lines.limit`, newest or oldest first), or a metric query at each step (at most
    /// 11,000 steps). See [`crate::query::logql`] for how log records are streams.
    #[cfg(feature = "loki")]
    pub fn logql_range(
        &self,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        step_ms: i64,
        lines: crate::query::logql::LineOptions,
    ) -> Result<crate::query::logql::LogqlValue> {
        crate::query::logql::range_query(&self.view(), query, start_ns, end_ns, step_ms, lines)
    }

    /// Evaluates a LogQL metric query at one instant, as `/loki/api/v1/query` does; a log
    /// query is refused ([`crate::Error::InvalidInput`]) as Loki 3 refuses it.
    #[cfg(feature = "loki")]
    pub fn logql_instant(&self, query: &str, time_ns: i64) -> Result<crate::query::logql::LogqlValue> {
        crate::query::logql::instant_query(&self.view(), query, time_ns)
    }

    /// The log streams (label sets) any of the stream selectors matches (every stream
    /// when there are none) with a line in `[start_ns, end_ns]`, sorted.
    #[cfg(feature = "loki")]
    pub fn logql_series(&self, selectors: &[String], start_ns: i64, end_ns: i64) -> Result<Vec<crate::query::promql::Labels>> {
        crate::query::logql::series(&self.view(), selectors, start_ns, end_ns)
    }

    /// Label names of the log streams `selector` matches (every stream without one) with a
    /// line in `[start_ns, end_ns]`, sorted.
    #[cfg(feature = "loki")]
    pub fn logql_label_names(&self, selector: Option<&str>, start_ns: i64, end_ns: i64) -> Result<Vec<String>> {
        crate::query::logql::label_names(&self.view(), selector, start_ns, end_ns)
    }

    /// Values of label `name` over the log streams `selector` matches (every stream
    /// without one) with a line in `[start_ns, end_ns]`, sorted.
    #[cfg(feature = "loki")]
    pub fn logql_label_values(&self, name: &str, selector: Option<&str>, start_ns: i64, end_ns: i64) -> Result<Vec<String>> {
        crate::query::logql::label_values(&self.view(), name, selector, start_ns, end_ns)
    }
}
