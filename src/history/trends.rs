//! [`History::get_trends`]: reads the selected series through the query engine and runs
//! the trend analyses of [`crate::trends`] on them.

use super::History;
use crate::error::{Error, Result};
use crate::query::{Aggregate, AggregateFn, Query};
use crate::read::Order;
use crate::time::Bucket;
use crate::trends::{SeriesPoints, TrendAnalysis, TrendQuery, analyze};
use std::collections::BTreeMap;

impl History {
    /// Trend analysis of the series a [`TrendQuery`] selects: each stored series' points
    /// (one analysis per series and field), or with `every` (and optionally `group_by`)
    /// the mean of each group per bucket, which long ranges read from the summaries where
    /// the detail has been dropped. Only numeric fields are analysed.
    ///
    /// A selection of more than `max_points` stored points is refused with a message
    /// asking for `every`, so one request never holds an unbounded series in memory.
    pub fn get_trends(&self, request: &TrendQuery) -> Result<TrendAnalysis> {
        let now = crate::time::now_ns();
        let mut query = request.selection.to_query(now)?;
        if !request.selection.aggregates.is_empty() || request.selection.lastpoint {
            return Err(Error::invalid(
                "trends read points or bucket means themselves: leave out agg and lastpoint",
            ));
        }
        if !query.group_by.is_empty() && query.every.is_none() {
            return Err(Error::invalid(
                "group_by needs every: groups are analysed as the mean of their series per bucket",
            ));
        }
        query.order = Order::Ascending;
        query.limit = None;
        query.offset = 0;
        query.cursor = None;
        let snapshot = self.engine.snapshot();
        // Calendar buckets are measured at the start of the range (the epoch when open).
        let range_start = if query.range.start == i64::MIN { 0 } else { query.range.start };
        let (series, every_nanos) = match query.every {
            Some(bucket) => (
                self.bucket_means(&snapshot, query, bucket)?,
                Some(bucket_width(bucket, range_start)?),
            ),
            None => {
                let count = Query {
                    selector: query.selector.clone(),
                    filters: query.filters.clone(),
                    range: query.range,
                    aggregates: vec![Aggregate::count_rows()],
                    ..Query::default()
                };
                let (rows, _) = snapshot.query(&count)?.collect_rows()?;
                let total = rows
                    .first()
                    .and_then(|r| r.values.first().cloned().flatten())
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0);
                if total > request.max_points as f64 {
                    return Err(Error::invalid(format!(
                        "the selection holds {total} rows, over the {} points a trend analysis reads; pass every \
                         (e.g. every=1h) to analyse bucket means",
                        request.max_points
                    )));
                }
                (self.stored_points(&snapshot, query)?, None)
            }
        };
        analyze(series, request, every_nanos)
    }

    /// Each stored series' points, one entry per series and numeric field.
    fn stored_points(&self, snapshot: &crate::engine::Snapshot, query: Query) -> Result<Vec<SeriesPoints>> {
        let mut result = snapshot.query(&query)?;
        let columns = result.value_columns.clone();
        let mut by_series: BTreeMap<(u32, usize), Vec<(i64, f64)>> = BTreeMap::new();
        for row in result.by_ref() {
            let row = row?;
            let (Some(series), Some(time)) = (row.series, row.time) else {
                continue;
            };
            for (column, value) in row.values.iter().enumerate() {
                if let Some(v) = value.as_ref().and_then(numeric) {
                    by_series.entry((series, column)).or_default().push((time, v));
                }
            }
        }
        let mut out = Vec::with_capacity(by_series.len());
        for ((series, column), points) in by_series {
            let Some(key) = snapshot.series_key(series) else {
                continue;
            };
            out.push(SeriesPoints {
                tags: key.tags().iter().cloned().collect(),
                field: columns[column].clone(),
                points,
            });
        }
        out.sort_by(|a, b| (&a.field, &a.tags).cmp(&(&b.field, &b.tags)));
        Ok(out)
    }

    /// The mean of each field per group and bucket.
    fn bucket_means(&self, snapshot: &crate::engine::Snapshot, mut query: Query, bucket: Bucket) -> Result<Vec<SeriesPoints>> {
        let fields = query.fields.take().unwrap_or_default();
        if fields.is_empty() {
            return Err(Error::invalid("with every, name the fields to analyse (field=...)"));
        }
        query.aggregates = fields.iter().map(|f| Aggregate::of(AggregateFn::Mean, f.clone())).collect();
        query.every = Some(bucket);
        let mut result = snapshot.query(&query)?;
        let tag_columns = result.tag_columns.clone();
        let mut groups: BTreeMap<GroupColumn, Vec<(i64, f64)>> = BTreeMap::new();
        for row in result.by_ref() {
            let row = row?;
            let Some(time) = row.time else { continue };
            for (column, value) in row.values.iter().enumerate() {
                if let Some(v) = value.as_ref().and_then(numeric) {
                    groups.entry((row.tags.to_vec(), column)).or_default().push((time, v));
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|((tags, column), points)| SeriesPoints {
                tags: tag_columns
                    .iter()
                    .cloned()
                    .zip(tags)
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect(),
                field: fields[column].clone(),
                points,
            })
            .collect())
    }
}

/// A group's tag values and a value column.
type GroupColumn = (Vec<Option<String>>, usize);

/// A field value as a number for trend analysis: floats and integers as they are,
/// booleans as 0 and 1; text and bytes are not numbers. Shared with the watcher.
pub(super) fn numeric(value: &crate::model::FieldValue) -> Option<f64> {
    match value {
        crate::model::FieldValue::Bool(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64(),
    }
}

/// The width of a bucket in nanoseconds; calendar buckets (weeks, months) by their span
/// at the start of the range.
fn bucket_width(bucket: Bucket, at: i64) -> Result<i64> {
    let start = bucket.start(at);
    let width = bucket.next(start) - start;
    if width <= 0 {
        return Err(Error::invalid("every gives empty buckets"));
    }
    Ok(width)
}
