//! The query engine: one typed [`Query`] for raw rows, aggregates grouped by tags and time
//! buckets, and the newest row per series, over a [`crate::Snapshot`].
//!
//! Planning is a pure function of the query and the snapshot's catalog (series selected
//! through the tag index, groups, columns). Execution prunes by segment, series bitmap and
//! block time range, answers lone blocks from their statistics when a block lies inside
//! one bucket, skips blocks whose statistics rule out a filter, decodes the rest through
//! the block cache, and merges per-series partial aggregates computed on up to two threads.

mod acc;
mod cursor;
mod exec;
pub mod export;
#[cfg(feature = "loki")]
pub mod logql;
mod model;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "prometheus")]
pub mod promql;
pub(crate) mod search;
mod spec;

pub use model::{Aggregate, AggregateFn, Bucket, CmpOp, FieldFilter, Fill, Query};
pub use search::{DEFAULT_SEARCH_LIMIT, MatchCount, SNIPPET_BYTES, SearchHit, SearchOrder, SearchQuery, SearchResult, Snippet};
pub use spec::QuerySpec;

use crate::error::Result;
use crate::model::{FieldValue, SeriesId};

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    /// The row's time, or its bucket's start; `None` for aggregates without `every`.
    pub time: Option<i64>,
    /// Values of [`QueryResult::tag_columns`] (series tags, or group-by tags); shared by
    /// the rows of one series or group.
    pub tags: std::sync::Arc<[Option<String>]>,
    /// Values of [`QueryResult::value_columns`] (fields, or aggregates).
    pub values: Vec<Option<FieldValue>>,
    /// The series of a raw or lastpoint row.
    pub series: Option<SeriesId>,
    /// The record id of an event row.
    pub record_id: Option<u64>,
}

pub(crate) enum Rows {
    Materialized(std::vec::IntoIter<QueryRow>),
    Raw(Box<exec::RawRows>),
}

/// The answer to a query: its columns and a stream of rows. Raw rows are produced as they
/// are read; aggregated rows are complete when the first one is returned.
pub struct QueryResult {
    /// True when rows have a time column.
    pub time_column: bool,
    /// Names of the tag columns.
    pub tag_columns: Vec<String>,
    /// Names of the value columns: fields, or aggregates such as `max(usage_user)`.
    pub value_columns: Vec<String>,
    /// The resolutions the answer was computed from, finest first: `Detail` alone, or
    /// summary tiers where retention has dropped the detail of part of the range.
    pub resolutions: Vec<crate::manifest::Resolution>,
    rows: Rows,
    next_cursor: Option<String>,
}

impl QueryResult {
    /// Header names: `time` (when present), tag columns, value columns.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.time_column {
            out.push("time".to_string());
        }
        out.extend(self.tag_columns.iter().cloned());
        out.extend(self.value_columns.iter().cloned());
        out
    }

    /// A cursor for the next page when the limit cut the result short. Known once the rows
    /// have been read.
    pub fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }

    /// Reads every row.
    pub fn collect_rows(mut self) -> Result<(Vec<QueryRow>, Option<String>)> {
        let mut rows = Vec::new();
        for row in self.by_ref() {
            rows.push(row?);
        }
        Ok((rows, self.next_cursor))
    }
}

impl Iterator for QueryResult {
    type Item = Result<QueryRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Materialized(rows) => rows.next().map(Ok),
            Rows::Raw(raw) => raw.next_row(&mut self.next_cursor),
        }
    }
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult")
            .field("columns", &self.columns())
            .finish_non_exhaustive()
    }
}

pub(crate) use acc::percentile_index;
pub(crate) use exec::run;
