//! Query execution: raw rows, aggregates, lastpoint.
//!
//! Aggregation runs per series on up to two threads. A series is read unit by unit (see
//! `read.rs`): a lone block that lies inside the range and inside one time bucket is
//! answered from its statistics when the aggregates allow it; a lone block whose statistics
//! rule out a value filter is skipped; everything else is decoded (through the block cache).

use super::acc::{Acc, Needs, RowKey};
use super::cursor::{self, CursorKey};
use super::model::{AggregateFn, Bucket, FieldFilter, Fill, Query};
use super::{QueryResult, QueryRow, Rows};
use crate::chunk::{Chunk, ColumnValues};
use crate::error::{Error, Limit, Result};
use crate::manifest::Resolution;
use crate::model::{FieldValue, SeriesId, SeriesKey};
use crate::options::QueryLimits;
use crate::read::{BlockPruner, Order, ReadView, SeriesChunks, SummarySources, UnitData};
use crate::rollup as summary;
use crate::scan::Scan;
use crate::segment::{BlockMeta, ColumnStats, SegmentReader};
use crate::time::TimeRange;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One accumulator slot: a field (or rows) and what its aggregates need.
#[derive(Debug, Clone)]
struct Slot {
    field: Option<String>,
    needs: Needs,
}

/// The plan: a pure function of the query and the view's catalog.
pub(crate) struct Plan {
    series: Vec<(SeriesId, Arc<SeriesKey>)>,
    /// Fields to decode (all when `None`).
    read_fields: Option<Arc<[String]>>,
    slots: Vec<Slot>,
    /// (slot, function) per output column.
    outputs: Vec<(usize, AggregateFn)>,
    /// Group of each series (parallel to `series`), and the groups' tag values.
    series_group: Vec<u32>,
    groups: Vec<Vec<Option<String>>>,
    counts_rows: bool,
}

fn check_limit(limit: Limit, value: u64, max: u64) -> Result<()> {
    if value > max {
        return Err(Error::LimitExceeded {
            limit,
            value,
            max,
            context: None,
        });
    }
    Ok(())
}

/// Decides from block statistics that no row of a lone block passes the filters.
fn pruner(filters: &[FieldFilter]) -> Option<BlockPruner> {
    if filters.is_empty() {
        return None;
    }
    let filters = filters.to_vec();
    Some(Arc::new(move |segment: &SegmentReader, meta: &BlockMeta| {
        filters.iter().any(|f| {
            let mut possible = false;
            for c in &meta.columns {
                if *segment.fields()[c.field as usize].0 != *f.field {
                    continue;
                }
                possible |= match c.stats {
                    ColumnStats::F64 { min, max, .. } => f.possible(min, max),
                    ColumnStats::I64 { min, max, .. } => f.possible(min as f64, max as f64),
                    _ => false,
                };
            }
            !possible
        })
    }))
}

/// Whether row `i` of `chunk` passes every filter (`filter_columns[j]` are the column
/// indexes of filter `j`'s field).
fn passes(chunk: &Chunk, i: usize, filters: &[FieldFilter], filter_columns: &[Vec<usize>]) -> bool {
    filters.iter().zip(filter_columns).all(|(f, columns)| {
        columns.iter().any(|&c| {
            let column = &chunk.columns[c];
            column.is_valid(i)
                && match &column.values {
                    ColumnValues::F64(v) => f.test(v[i]),
                    ColumnValues::I64(v) => f.test(v[i] as f64),
                    _ => false,
                }
        })
    })
}

fn columns_named(chunk: &Chunk, name: &str) -> Vec<usize> {
    columns_in(chunk, std::slice::from_ref(&name))
}

/// Indexes of the chunk's columns (of any type) named in `names`.
fn columns_in(chunk: &Chunk, names: &[impl AsRef<str>]) -> Vec<usize> {
    chunk
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| names.iter().any(|n| n.as_ref() == &*c.name))
        .map(|(i, _)| i)
        .collect()
}

impl Plan {
    pub(crate) fn new(view: &ReadView<'_>, query: &Query) -> Result<Plan> {
        let limits = view.limits;
        if query.aggregates.is_empty() && (!query.group_by.is_empty() || query.every.is_some()) {
            return Err(Error::invalid("group by and every need at least one aggregate"));
        }
        if query.lastpoint && !query.aggregates.is_empty() {
            return Err(Error::invalid("lastpoint returns rows; it does not combine with aggregates"));
        }
        if let Some(a) = query
            .aggregates
            .iter()
            .find(|a| a.field.is_none() && a.function != AggregateFn::Count)
        {
            return Err(Error::invalid(format!(
                "{} needs a field; only count works on rows (*)",
                a.function.name()
            )));
        }
        let ids = view.select(&query.selector)?;
        check_limit(Limit::QuerySeries, ids.len() as u64, limits.max_series)?;
        let series: Vec<(SeriesId, Arc<SeriesKey>)> = ids.into_iter().filter_map(|id| view.series_key(id).map(|k| (id, k))).collect();

        let mut slots: Vec<Slot> = Vec::new();
        let mut outputs = Vec::new();
        for a in &query.aggregates {
            let slot = match slots.iter().position(|s| s.field == a.field) {
                Some(i) => i,
                None => {
                    slots.push(Slot {
                        field: a.field.clone(),
                        needs: Needs::default(),
                    });
                    slots.len() - 1
                }
            };
            slots[slot].needs.add(a.function);
            outputs.push((slot, a.function));
        }
        let counts_rows = slots.iter().any(|s| s.field.is_none());

        let read_fields: Option<Vec<String>> = if query.aggregates.is_empty() {
            query.fields.clone().map(|mut f| {
                f.extend(query.filters.iter().map(|x| x.field.clone()));
                f
            })
        } else {
            Some(
                slots
                    .iter()
                    .filter_map(|s| s.field.clone())
                    .chain(query.filters.iter().map(|f| f.field.clone()))
                    .collect(),
            )
        };
        let read_fields = read_fields.map(|f| {
            let set: BTreeSet<String> = f.into_iter().collect();
            Arc::from(set.into_iter().collect::<Vec<_>>())
        });

        let mut group_index: FxHashMap<Vec<Option<String>>, u32> = FxHashMap::default();
        let mut groups = Vec::new();
        let series_group = series
            .iter()
            .map(|(_, key)| {
                let values: Vec<Option<String>> = query.group_by.iter().map(|t| key.tag(t).map(str::to_owned)).collect();
                *group_index.entry(values.clone()).or_insert_with(|| {
                    groups.push(values);
                    groups.len() as u32 - 1
                })
            })
            .collect();
        Ok(Plan {
            series,
            read_fields,
            slots,
            outputs,
            series_group,
            groups,
            counts_rows,
        })
    }
}

/// Runs a query on what `view` sees, within its query limits.
pub(crate) fn run(view: &ReadView<'_>, query: &Query) -> Result<QueryResult> {
    let limits = view.limits;
    let plan = Plan::new(view, query)?;
    let fingerprint = cursor::fingerprint(query);
    let after = query.cursor.as_deref().map(|c| cursor::decode(c, fingerprint)).transpose()?;
    if query.lastpoint {
        return lastpoint(view, query, &plan, limits, fingerprint, after);
    }
    if query.aggregates.is_empty() {
        return raw(view, query, &plan, fingerprint, after);
    }
    aggregate(view, query, &plan, limits, fingerprint, after)
}

fn tag_columns(plan: &Plan) -> Vec<String> {
    plan.series
        .iter()
        .flat_map(|(_, k)| k.tags().iter().map(|(t, _)| t.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn value_columns(view: &ReadView<'_>, query: &Query, plan: &Plan) -> Result<Vec<String>> {
    match &query.fields {
        Some(f) => Ok(f.clone()),
        None => {
            let ids: Vec<SeriesId> = plan.series.iter().map(|(id, _)| *id).collect();
            view.field_names(&ids, query.range)
        }
    }
}

fn raw(view: &ReadView<'_>, query: &Query, plan: &Plan, fingerprint: u64, after: Option<CursorKey>) -> Result<QueryResult> {
    let after = match after {
        Some(CursorKey::Raw(ts, series, record)) => Some((ts, series, record)),
        None => None,
        Some(_) => return Err(Error::invalid("the cursor belongs to another kind of query")),
    };
    // A cursor narrows the range to where the next page can start.
    let mut range = query.range;
    if let Some((ts, _, _)) = after {
        match query.order {
            Order::Ascending => range.start = range.start.max(ts),
            Order::Descending => range.end = range.end.min(ts.saturating_add(1)),
        }
    }
    // A page takes at most offset + limit rows of any series, one more to look ahead
    // for the cursor, and past a cursor one row at its timestamp that the cursor skips
    // (events can hold many rows at one timestamp: those series are not capped then).
    // Filters drop rows after reading, so a filtered page reads whole blocks.
    let cap = query
        .limit
        .filter(|_| query.filters.is_empty())
        .map(|limit| limit.saturating_add(query.offset).saturating_add(2));
    let mut series = Vec::with_capacity(plan.series.len());
    for (id, key) in &plan.series {
        let series_cap = cap.filter(|_| after.is_none() || !key.kind().is_event());
        let chunks = view
            .series_chunks(*id, range, plan.read_fields.clone(), query.order)?
            .with_pruner(pruner(&query.filters))
            .with_row_cap(series_cap);
        series.push((key.clone(), *id, chunks));
    }
    let scan = Scan::new(series, query.order, None)?;
    let tag_columns = tag_columns(plan);
    let value_columns = value_columns(view, query, plan)?;
    Ok(QueryResult {
        time_column: true,
        resolutions: vec![Resolution::Detail],
        rows: Rows::Raw(Box::new(RawRows {
            scan,
            columns: RawColumns {
                filters: query.filters.clone(),
                tag_columns: tag_columns.clone(),
                value_columns: value_columns.clone(),
                requested: query.fields.clone(),
            },
            after,
            descending: query.order == Order::Descending,
            skip: query.offset,
            remaining: query.limit.unwrap_or(usize::MAX),
            limited: query.limit.is_some(),
            last: None,
            fingerprint,
            maps: Vec::new(),
            tags: FxHashMap::default(),
        })),
        tag_columns,
        value_columns,
        next_cursor: None,
    })
}

/// Which columns of a chunk hold what a raw row needs.
struct ChunkMap {
    serial: u64,
    values: Vec<Vec<usize>>,
    filters: Vec<Vec<usize>>,
    requested: Option<Vec<usize>>,
}

/// What raw rows select and show.
struct RawColumns {
    filters: Vec<FieldFilter>,
    tag_columns: Vec<String>,
    value_columns: Vec<String>,
    requested: Option<Vec<String>>,
}

impl RawColumns {
    fn map(&self, serial: u64, chunk: &Chunk) -> ChunkMap {
        ChunkMap {
            serial,
            values: self.value_columns.iter().map(|v| columns_named(chunk, v)).collect(),
            filters: self.filters.iter().map(|f| columns_named(chunk, &f.field)).collect(),
            requested: self.requested.as_ref().map(|names| columns_in(chunk, names)),
        }
    }
}

/// The column mapping of a scan cursor's current chunk, rebuilt when it loads another.
fn chunk_map<'m>(maps: &'m mut Vec<Option<ChunkMap>>, columns: &RawColumns, cursor: usize, serial: u64, chunk: &Chunk) -> &'m ChunkMap {
    if maps.len() <= cursor {
        maps.resize_with(cursor + 1, || None);
    }
    let slot = &mut maps[cursor];
    if slot.as_ref().is_none_or(|m| m.serial != serial) {
        *slot = Some(columns.map(serial, chunk));
    }
    slot.get_or_insert_with(|| columns.map(serial, chunk))
}

/// The raw rows of a query, streamed.
pub(crate) struct RawRows {
    scan: Scan,
    columns: RawColumns,
    after: Option<(i64, u32, u64)>,
    descending: bool,
    skip: usize,
    remaining: usize,
    limited: bool,
    last: Option<(i64, u32, u64)>,
    fingerprint: u64,
    /// Column mappings by scan cursor.
    maps: Vec<Option<ChunkMap>>,
    /// Tag values by series: the same for every row of a series.
    tags: FxHashMap<SeriesId, Arc<[Option<String>]>>,
}

impl RawRows {
    /// Steps to the next row passing the cursor, the filters and the field selection;
    /// returns its scan cursor.
    fn next_passing(&mut self) -> Option<Result<usize>> {
        loop {
            let c = match self.scan.step()? {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let p = self.scan.at(c);
            let row = p.row;
            let key = (p.chunk.timestamps[row], p.series, p.chunk.record_ids.get(row).copied().unwrap_or(0));
            if let Some(after) = self.after {
                let past = if self.descending {
                    key.0 < after.0 || (key.0 == after.0 && (key.1 > after.1 || (key.1 == after.1 && key.2 < after.2)))
                } else {
                    key > after
                };
                if !past {
                    continue;
                }
            }
            let map = chunk_map(&mut self.maps, &self.columns, c, p.serial, p.chunk);
            if !passes(p.chunk, row, &self.columns.filters, &map.filters) {
                continue;
            }
            // Filter fields are read too; a row must still carry a requested field.
            if map
                .requested
                .as_ref()
                .is_some_and(|cols| !cols.iter().any(|&i| p.chunk.columns[i].is_valid(row)))
            {
                continue;
            }
            return Some(Ok(c));
        }
    }

    /// The next output row; at the limit, looks one row ahead to set the cursor.
    pub(crate) fn next_row(&mut self, next_cursor: &mut Option<String>) -> Option<Result<QueryRow>> {
        while self.skip > 0 {
            match self.next_passing()? {
                Ok(_) => self.skip -= 1,
                Err(e) => return Some(Err(e)),
            }
        }
        if self.remaining == 0 {
            if self.limited
                && let Some(last) = self.last.take()
                && matches!(self.next_passing(), Some(Ok(_)))
            {
                *next_cursor = Some(cursor::encode(self.fingerprint, &CursorKey::Raw(last.0, last.1, last.2)));
            }
            return None;
        }
        let c = match self.next_passing()? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        self.remaining -= 1;
        let p = self.scan.at(c);
        let (chunk, row) = (p.chunk, p.row);
        let record_id = chunk.record_ids.get(row).copied();
        self.last = Some((chunk.timestamps[row], p.series, record_id.unwrap_or(0)));
        let map = chunk_map(&mut self.maps, &self.columns, c, p.serial, chunk);
        let values = map
            .values
            .iter()
            .map(|cols| cols.iter().find_map(|&i| chunk.columns[i].value(row)))
            .collect();
        let columns = &self.columns;
        let tags = self
            .tags
            .entry(p.series)
            .or_insert_with(|| columns.tag_columns.iter().map(|t| p.key.tag(t).map(str::to_owned)).collect())
            .clone();
        Some(Ok(QueryRow {
            time: Some(chunk.timestamps[row]),
            tags,
            values,
            series: Some(p.series),
            record_id,
        }))
    }
}

/// The newest row of a series: time, record id, fields.
type NewestRow = (i64, Option<u64>, Vec<(Arc<str>, FieldValue)>);

/// Aggregate values per bucket of one group.
type GroupBuckets = Vec<(i64, Vec<Option<FieldValue>>)>;

/// Partial aggregates: accumulators per (group, bucket).
type Partial = FxHashMap<(u32, i64), Vec<Acc>>;

/// Aggregates one series' rows into a partial, bucket by bucket (rows arrive in time
/// order, so a bucket's accumulators are built locally and merged once).
struct SeriesAggregator<'a> {
    plan: &'a Plan,
    query: &'a Query,
    /// The part of the query's range being aggregated.
    range: TimeRange,
    group: u32,
    series: SeriesId,
    bucket: i64,
    accs: Vec<Acc>,
    started: bool,
    out: &'a mut Partial,
    scanned: &'a AtomicU64,
    max_scanned: u64,
}

impl SeriesAggregator<'_> {
    fn bucket_of(&self, ts: i64) -> i64 {
        self.query.every.map_or(i64::MIN, |b| b.start(ts))
    }

    /// Makes `bucket` the current one, merging the previous one into the partial.
    fn switch(&mut self, bucket: i64) {
        if self.started && self.bucket == bucket {
            return;
        }
        self.flush();
        self.bucket = bucket;
        self.started = true;
    }

    fn flush(&mut self) {
        if !self.started {
            return;
        }
        let fresh = vec![Acc::default(); self.plan.slots.len()];
        let accs = std::mem::replace(&mut self.accs, fresh);
        match self.out.get_mut(&(self.group, self.bucket)) {
            Some(existing) => {
                for (e, a) in existing.iter_mut().zip(accs) {
                    e.merge(a);
                }
            }
            None => {
                self.out.insert((self.group, self.bucket), accs);
            }
        }
        self.started = false;
    }

    fn count_scanned(&self, values: u64) -> Result<()> {
        let total = self.scanned.fetch_add(values, Ordering::Relaxed) + values;
        check_limit(Limit::QueryPointsScanned, total, self.max_scanned)
    }

    /// Answers a lone block from its statistics when the block lies inside the range and
    /// one bucket, no filter applies and every slot's aggregates can use statistics.
    fn try_stats(&mut self, segment: &SegmentReader, meta: &BlockMeta) -> bool {
        let range = self.range;
        if !self.query.filters.is_empty() || meta.min_ts < range.start || meta.max_ts >= range.end {
            return false;
        }
        let bucket = self.bucket_of(meta.min_ts);
        if bucket != self.bucket_of(meta.max_ts) {
            return false;
        }
        let fields = segment.fields();
        let usable = self.plan.slots.iter().all(|slot| match &slot.field {
            None => true,
            Some(name) => meta
                .columns
                .iter()
                .filter(|c| *fields[c.field as usize].0 == **name)
                .all(|c| Acc::stats_suffice(&c.stats, c.count == meta.rows, slot.needs)),
        });
        if !usable {
            return false;
        }
        let contributes = self.plan.slots.iter().any(|slot| {
            slot.field
                .as_ref()
                .is_none_or(|name| meta.columns.iter().any(|c| *fields[c.field as usize].0 == **name && c.count > 0))
        });
        if !contributes {
            return true;
        }
        self.switch(bucket);
        let first: RowKey = (meta.min_ts, self.series, 0);
        let last: RowKey = (meta.max_ts, self.series, 0);
        for (slot, acc) in self.plan.slots.iter().zip(self.accs.iter_mut()) {
            match &slot.field {
                None => acc.count += meta.rows as u64,
                Some(name) => {
                    for c in meta.columns.iter().filter(|c| *fields[c.field as usize].0 == **name) {
                        acc.add_stats(&c.stats, c.count as u64, first, last, slot.needs);
                    }
                }
            }
        }
        true
    }

    /// Adds rows `rows` (in time order) of `chunk`.
    fn add_rows(&mut self, chunk: &Chunk, rows: std::ops::Range<usize>) -> Result<()> {
        self.count_scanned((rows.len() * chunk.columns.len().max(1)) as u64)?;
        let slot_columns: Vec<Vec<usize>> = self
            .plan
            .slots
            .iter()
            .map(|s| s.field.as_deref().map_or_else(Vec::new, |f| columns_named(chunk, f)))
            .collect();
        if !self.query.filters.is_empty() {
            return self.add_filtered_rows(chunk, rows, &slot_columns);
        }
        // Rows are in time order: take them in runs that share a bucket.
        let mut i = rows.start;
        while i < rows.end {
            let bucket = self.bucket_of(chunk.timestamps[i]);
            let end = match self.query.every {
                Some(every) => {
                    let next = every.next(bucket);
                    i + chunk.timestamps[i..rows.end].partition_point(|&t| t < next)
                }
                None => rows.end,
            };
            self.add_run(chunk, i..end.max(i + 1), bucket, &slot_columns);
            i = end.max(i + 1);
        }
        Ok(())
    }

    /// Adds rows `rows` of `chunk`, all in `bucket`.
    fn add_run(&mut self, chunk: &Chunk, rows: std::ops::Range<usize>, bucket: i64, slot_columns: &[Vec<usize>]) {
        let has_value = |c: usize| {
            let column = &chunk.columns[c];
            column.validity.is_empty() || column.validity[rows.clone()].iter().any(|&v| v)
        };
        if !(self.plan.counts_rows || slot_columns.iter().flatten().any(|&c| has_value(c))) {
            return;
        }
        self.switch(bucket);
        let series = self.series;
        let key = |i: usize| -> RowKey { (chunk.timestamps[i], series, chunk.record_ids.get(i).copied().unwrap_or(0)) };
        for ((slot, columns), acc) in self.plan.slots.iter().zip(slot_columns).zip(self.accs.iter_mut()) {
            if slot.field.is_none() {
                acc.count += rows.len() as u64;
                continue;
            }
            for &c in columns {
                let column = &chunk.columns[c];
                let dense = column.validity.is_empty();
                match &column.values {
                    ColumnValues::F64(v) if dense && slot.needs == Needs::default() => acc.add_f64_run(&v[rows.clone()]),
                    ColumnValues::F64(v) if dense => {
                        for (i, &x) in rows.clone().zip(&v[rows.clone()]) {
                            acc.add_f64(x, key(i), slot.needs);
                        }
                    }
                    ColumnValues::I64(v) if dense => {
                        for (i, &x) in rows.clone().zip(&v[rows.clone()]) {
                            acc.add_i64(x, key(i), slot.needs);
                        }
                    }
                    values => {
                        for i in rows.clone().filter(|&i| column.is_valid(i)) {
                            match values {
                                ColumnValues::F64(v) => acc.add_f64(v[i], key(i), slot.needs),
                                ColumnValues::I64(v) => acc.add_i64(v[i], key(i), slot.needs),
                                other => {
                                    if let Some(value) = other.get(i) {
                                        acc.add_other(&value, key(i), slot.needs);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Row by row, for queries with value filters.
    fn add_filtered_rows(&mut self, chunk: &Chunk, rows: std::ops::Range<usize>, slot_columns: &[Vec<usize>]) -> Result<()> {
        let filter_columns: Vec<Vec<usize>> = self.query.filters.iter().map(|f| columns_named(chunk, &f.field)).collect();
        for i in rows {
            if passes(chunk, i, &self.query.filters, &filter_columns) {
                self.add_run(chunk, i..i + 1, self.bucket_of(chunk.timestamps[i]), slot_columns);
            }
        }
        Ok(())
    }

    /// Adds stored summary rows (each a bucket of the series' detail that retention
    /// dropped) to the buckets of the query.
    fn add_summaries(&mut self, chunks: SeriesChunks) -> Result<()> {
        for chunk in chunks {
            let chunk = chunk?;
            self.count_scanned(chunk.point_count() as u64)?;
            for (start, bucket) in summary::from_chunk(&chunk)? {
                self.switch(self.bucket_of(start));
                for (s, slot) in self.plan.slots.iter().enumerate() {
                    match &slot.field {
                        None => self.accs[s].count += bucket.rows,
                        Some(field) => {
                            if let Some(f) = bucket.fields.get(field.as_str()) {
                                self.accs[s].add_summary(f, self.series, slot.needs);
                            }
                        }
                    }
                }
            }
        }
        self.flush();
        Ok(())
    }

    fn run(&mut self, mut chunks: SeriesChunks) -> Result<()> {
        while let Some(unit) = chunks.next_unit() {
            match unit? {
                UnitData::Lone { segment, meta } => {
                    if !self.try_stats(&segment, &meta)
                        && let Some((block, rows)) = chunks.lend_lone(&segment, &meta)?
                    {
                        self.add_rows(&block, rows)?;
                    }
                }
                UnitData::Rows(chunk) => self.add_rows(&chunk, 0..chunk.len())?,
            }
        }
        self.flush();
        Ok(())
    }
}

fn aggregate(
    view: &ReadView<'_>,
    query: &Query,
    plan: &Plan,
    limits: &QueryLimits,
    fingerprint: u64,
    after: Option<CursorKey>,
) -> Result<QueryResult> {
    let pass = AggregatePass {
        view,
        query,
        plan,
        limits,
        scanned: AtomicU64::new(0),
        used: Mutex::new(BTreeSet::new()),
        sources: view.summary_sources(),
        summary_fields: Arc::from(summary_columns(plan)),
    };
    let merged = match query.every {
        Some(every) if query.limit.is_some() && query.fill == Fill::None => pass.first_buckets(every, after.as_ref())?,
        _ => pass.range(query.range)?,
    };
    let rows = finalize(query, plan, merged, limits)?;
    let value_columns = query.aggregates.iter().map(|a| a.column_name()).collect();
    let mut result = page(
        rows,
        query,
        fingerprint,
        after,
        query.every.is_some(),
        query.group_by.clone(),
        value_columns,
    )?;
    let used = pass.used.into_inner();
    if !used.is_empty() {
        result.resolutions = used.into_iter().collect();
    }
    Ok(result)
}

/// One aggregate query's shared state while its range is aggregated, whole or in steps.
struct AggregatePass<'q, 'v> {
    view: &'q ReadView<'v>,
    query: &'q Query,
    plan: &'q Plan,
    limits: &'q QueryLimits,
    /// Values read so far, over every step, against the points-scanned limit.
    scanned: AtomicU64,
    /// Resolutions that answered.
    used: Mutex<BTreeSet<Resolution>>,
    sources: SummarySources,
    summary_fields: Arc<[String]>,
}

impl AggregatePass<'_, '_> {
    /// Aggregates every series' rows in `range` (part of the query's range, on bucket
    /// boundaries), on up to two threads.
    fn range(&self, range: TimeRange) -> Result<Partial> {
        let plan = self.plan;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 2)
            .min(plan.series.len().max(1));
        let work = |part: usize| -> Result<Partial> {
            let mut out = Partial::default();
            for (i, (id, key)) in plan.series.iter().enumerate().skip(part).step_by(threads) {
                self.series(i, *id, key, range, &mut out)?;
            }
            Ok(out)
        };
        let partials: Vec<Result<Partial>> = if threads == 1 {
            vec![work(0)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|t| scope.spawn(move || work(t))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let mut merged = Partial::default();
        for partial in partials {
            merge_partial(&mut merged, partial?);
        }
        Ok(merged)
    }

    /// Aggregates series `i` of the plan over `range` into `out`.
    fn series(&self, i: usize, id: SeriesId, key: &SeriesKey, range: TimeRange, out: &mut Partial) -> Result<()> {
        let (view, query, plan) = (self.view, self.query, self.plan);
        // Detail before the series' retention horizon is gone: that part of the range is
        // answered from summaries.
        let floor = view.detail_floor(key).unwrap_or(i64::MIN);
        let summary_range = TimeRange::new(range.start, floor.min(range.end));
        let detail_range = TimeRange::new(range.start.max(floor), range.end);
        let summaries = if summary_range.is_empty() {
            None
        } else {
            let tier = summary_tier(query, summary_range, floor)?;
            self.used.lock().insert(tier);
            Some(self.sources.chunks(tier, id, summary_range, &self.summary_fields)?)
        };
        if !detail_range.is_empty() {
            self.used.lock().insert(Resolution::Detail);
        }
        let chunks = view
            .series_chunks(id, detail_range, plan.read_fields.clone(), Order::Ascending)?
            .keep_rows_without_fields(plan.counts_rows);
        let mut aggregator = SeriesAggregator {
            plan,
            query,
            range,
            group: plan.series_group[i],
            series: id,
            bucket: 0,
            accs: vec![Acc::default(); plan.slots.len()],
            started: false,
            out,
            scanned: &self.scanned,
            max_scanned: self.limits.max_points_scanned,
        };
        if let Some(summaries) = summaries {
            aggregator.add_summaries(summaries)?;
        }
        aggregator.run(chunks.with_pruner(pruner(&query.filters)))
    }

    /// The buckets a limited query returns first, without aggregating the whole range:
    /// windows of whole buckets are aggregated from the end the order starts at (the newest
    /// for descending), each twice as long as the one before, until the rows past the
    /// cursor fill the page with one to spare (so the next cursor is right) or the data
    /// runs out. Buckets of finished windows are final: a later window only holds buckets
    /// further along the order.
    fn first_buckets(&self, every: Bucket, after: Option<&CursorKey>) -> Result<Partial> {
        let query = self.query;
        let Some((oldest, newest)) = self.view.time_bounds() else {
            return Ok(Partial::default());
        };
        // Where data is: the range clipped to what the view holds.
        let data = TimeRange::new(query.range.start.max(oldest), query.range.end.min(newest.saturating_add(1)));
        if data.is_empty() {
            return Ok(Partial::default());
        }
        let descending = query.order == Order::Descending;
        // Rows before the cursor (in order) are no use: start at the cursor's bucket.
        let (mut lo, mut hi) = (data.start, data.end);
        if let Some(CursorKey::Group(Some(time), _)) = after {
            if descending {
                hi = hi.min(every.next(*time));
            } else {
                lo = lo.max(*time);
            }
        }
        let wanted = query.offset.saturating_add(query.limit.unwrap_or(usize::MAX)).saturating_add(1);
        let mut width = nominal_length(every).saturating_mul(i64::try_from(wanted).unwrap_or(i64::MAX));
        let mut merged = Partial::default();
        while lo < hi {
            // The next window, cut on a bucket boundary inside the range.
            // Cut points are clamped to the data first: bucket starts are only taken of
            // times that exist (a month of a time near i64::MIN is out of range).
            let window = if descending {
                let cut = every.start(hi.saturating_sub(width).max(lo));
                let cut = if cut >= hi { every.start(hi - 1) } else { cut };
                TimeRange::new(cut.max(lo), hi)
            } else {
                let cut = every.start(lo.saturating_add(width).min(hi));
                let cut = if cut <= lo { every.next(every.start(lo)) } else { cut };
                TimeRange::new(lo, cut.min(hi))
            };
            merge_partial(&mut merged, self.range(window)?);
            if descending {
                hi = window.start;
            } else {
                lo = window.end;
            }
            let past_cursor = match after {
                None => merged.len(),
                Some(key) => merged
                    .keys()
                    .filter(|(group, bucket)| {
                        let row = CursorKey::Group(Some(*bucket), self.plan.groups[*group as usize].clone());
                        cursor::after_in_order(&row, key, query.order)
                    })
                    .count(),
            };
            if past_cursor >= wanted {
                break;
            }
            width = width.saturating_mul(2);
        }
        Ok(merged)
    }
}

/// About how long a bucket is, to size the first window of [`AggregatePass::first_buckets`].
fn nominal_length(every: Bucket) -> i64 {
    match every {
        Bucket::Fixed(d) => d,
        Bucket::Week => 7 * DAY,
        Bucket::Month => 31 * DAY,
    }
}

/// Adds the accumulators of `partial` into `into`.
fn merge_partial(into: &mut Partial, partial: Partial) {
    if into.is_empty() {
        *into = partial;
        return;
    }
    for (key, accs) in partial {
        match into.get_mut(&key) {
            Some(existing) => {
                for (e, a) in existing.iter_mut().zip(accs) {
                    e.merge(a);
                }
            }
            None => {
                into.insert(key, accs);
            }
        }
    }
}

const HOUR: i64 = 3600 * crate::time::NANOS_PER_SECOND;
const DAY: i64 = 24 * HOUR;

/// The summary tier that answers `range` (which ends at the detail horizon `floor` or
/// earlier) in the query's buckets: weeks for weekly buckets on week boundaries, days
/// where the range and buckets are whole days, else hours. Summaries hold what can be
/// merged exactly, so a standard deviation or a value filter needs detail.
fn summary_tier(query: &Query, range: TimeRange, floor: i64) -> Result<Resolution> {
    let gone = crate::time::format_rfc3339(floor);
    if let Some(a) = query.aggregates.iter().find(|a| a.function == AggregateFn::Stddev) {
        return Err(Error::invalid(format!(
            "{} needs detail rows, and retention dropped the detail before {gone}; start the range there",
            a.column_name()
        )));
    }
    if !query.filters.is_empty() {
        return Err(Error::invalid(format!(
            "value filters need detail rows, and retention dropped the detail before {gone}; start the range there"
        )));
    }
    let aligned = |t: i64, unit: i64| t == i64::MIN || t.rem_euclid(unit) == 0;
    let whole_days = aligned(range.start, DAY) && aligned(range.end, DAY);
    Ok(match query.every {
        Some(Bucket::Week)
            if (range.start == i64::MIN || Bucket::Week.start(range.start) == range.start)
                && Bucket::Week.start(range.end) == range.end =>
        {
            Resolution::Week
        }
        Some(Bucket::Fixed(d)) if d % HOUR != 0 => {
            return Err(Error::invalid(format!(
                "buckets of {}s are finer than the hourly summaries that hold the data before {gone}",
                d / crate::time::NANOS_PER_SECOND
            )));
        }
        Some(Bucket::Fixed(d)) if d % DAY == 0 && whole_days => Resolution::Day,
        Some(Bucket::Fixed(_)) => Resolution::Hour,
        _ if whole_days => Resolution::Day,
        _ => Resolution::Hour,
    })
}

/// Summary columns the plan's slots need.
fn summary_columns(plan: &Plan) -> Vec<String> {
    let mut columns = vec!["rows".to_owned()];
    for slot in &plan.slots {
        let Some(f) = &slot.field else { continue };
        columns.extend(["count", "numeric", "sum", "min", "max"].iter().map(|p| format!("{f}.{p}")));
        if slot.needs.first_last {
            columns.extend(["first", "last", "first_time", "last_time"].iter().map(|p| format!("{f}.{p}")));
        }
        if slot.needs.percentile {
            columns.push(format!("{f}.sketch"));
        }
    }
    columns
}

/// Buckets of the result: from the range (or the data, when unbounded) for fill.
fn fill_span(query: &Query, every: Bucket, present: &BTreeSet<i64>) -> Option<(i64, i64)> {
    let first = if query.range.start > i64::MIN {
        every.start(query.range.start)
    } else {
        *present.first()?
    };
    let last = if query.range.end < i64::MAX {
        every.start(query.range.end - 1)
    } else {
        *present.last()?
    };
    Some((first, last))
}

/// Turns partial aggregates into ordered rows, filling empty buckets.
fn finalize(query: &Query, plan: &Plan, merged: Partial, limits: &QueryLimits) -> Result<Vec<QueryRow>> {
    let values_of = |accs: &[Acc]| -> Vec<Option<FieldValue>> { plan.outputs.iter().map(|&(slot, f)| accs[slot].result(f)).collect() };
    let mut by_group: FxHashMap<u32, GroupBuckets> = FxHashMap::default();
    let mut present = BTreeSet::new();
    for ((group, bucket), accs) in &merged {
        present.insert(*bucket);
        by_group.entry(*group).or_default().push((*bucket, values_of(accs)));
    }
    let mut rows = Vec::new();
    let every = query.every.filter(|_| query.fill != Fill::None);
    let span = every.and_then(|e| fill_span(query, e, &present).map(|s| (e, s)));
    let groups_with_data = by_group.len() as u64;
    for (group, mut buckets) in by_group {
        buckets.sort_by_key(|(b, _)| *b);
        let tags: Arc<[Option<String>]> = plan.groups[group as usize].clone().into();
        let Some((every, (first, last))) = span else {
            rows.extend(buckets.into_iter().map(|(b, values)| QueryRow {
                time: query.every.map(|_| b),
                tags: tags.clone(),
                values,
                series: None,
                record_id: None,
            }));
            check_limit(Limit::QueryResultRows, rows.len() as u64, limits.max_result_rows)?;
            continue;
        };
        let mut next = buckets.into_iter().peekable();
        let mut previous: Vec<Option<FieldValue>> = vec![None; plan.outputs.len()];
        let mut bucket = first;
        while bucket <= last {
            let values = match next.peek() {
                Some((b, _)) if *b == bucket => next.next().map(|(_, v)| v).unwrap_or_default(),
                _ => match query.fill {
                    Fill::Previous => previous.clone(),
                    Fill::Value(v) => vec![Some(FieldValue::F64(v)); plan.outputs.len()],
                    _ => vec![None; plan.outputs.len()],
                },
            };
            previous = values.clone();
            rows.push(QueryRow {
                time: Some(bucket),
                tags: tags.clone(),
                values,
                series: None,
                record_id: None,
            });
            if rows.len() as u64 > limits.max_result_rows {
                return Err(Error::LimitExceeded {
                    limit: Limit::QueryResultRows,
                    value: rows.len() as u64,
                    max: limits.max_result_rows,
                    context: Some(format!("filling {groups_with_data} groups over empty buckets")),
                });
            }
            let following = every.next(bucket);
            if following <= bucket {
                break;
            }
            bucket = following;
        }
    }
    rows.sort_by(|a, b| {
        let time = a.time.cmp(&b.time);
        let time = if query.order == Order::Descending { time.reverse() } else { time };
        time.then_with(|| a.tags.cmp(&b.tags))
    });
    Ok(rows)
}

/// Applies the cursor, offset and limit to ordered rows and sets the next cursor.
fn page(
    rows: Vec<QueryRow>,
    query: &Query,
    fingerprint: u64,
    after: Option<CursorKey>,
    time_column: bool,
    tag_columns: Vec<String>,
    value_columns: Vec<String>,
) -> Result<QueryResult> {
    let key_of = |r: &QueryRow| match r.series {
        Some(id) if query.lastpoint => CursorKey::Series(id),
        _ => CursorKey::Group(r.time, r.tags.to_vec()),
    };
    let start = match &after {
        None => 0,
        Some(key) => match rows.iter().position(|r| key_of(r) == *key) {
            Some(i) => i + 1,
            // The row the cursor names is gone; continue after where it sorted.
            None => rows
                .iter()
                .position(|r| cursor::after_in_order(&key_of(r), key, query.order))
                .unwrap_or(rows.len()),
        },
    };
    let start = start.saturating_add(query.offset).min(rows.len());
    let end = query.limit.map_or(rows.len(), |l| start.saturating_add(l).min(rows.len()));
    let next_cursor = (end < rows.len() && end > start).then(|| cursor::encode(fingerprint, &key_of(&rows[end - 1])));
    let mut rows = rows;
    rows.truncate(end);
    rows.drain(..start);
    Ok(QueryResult {
        time_column,
        tag_columns,
        value_columns,
        resolutions: vec![Resolution::Detail],
        rows: Rows::Materialized(rows.into_iter()),
        next_cursor,
    })
}

fn lastpoint(
    view: &ReadView<'_>,
    query: &Query,
    plan: &Plan,
    limits: &QueryLimits,
    fingerprint: u64,
    after: Option<CursorKey>,
) -> Result<QueryResult> {
    let tag_columns = tag_columns(plan);
    let value_columns = value_columns(view, query, plan)?;
    let mut rows = Vec::new();
    let mut scanned = 0u64;
    let newest_first = view.segments_newest_first();
    for (id, key) in &plan.series {
        // Read from the series' newest block in the segments on: a store of many segments
        // then sets up its reader over the few that reach that far, not over all of them.
        // Only when nothing from there on passes (filters, absent fields) is the whole
        // range read.
        let mut found = None;
        if let Some(from) = view.newest_block_end(&newest_first, *id, query.range)? {
            let recent = TimeRange::new(from, query.range.end);
            found = newest_row(view, *id, recent, query, plan, limits, &mut scanned)?;
        }
        if found.is_none() {
            found = newest_row(view, *id, query.range, query, plan, limits, &mut scanned)?;
        }
        if let Some((ts, record_id, fields)) = found {
            rows.push(QueryRow {
                time: Some(ts),
                tags: tag_columns.iter().map(|t| key.tag(t).map(str::to_owned)).collect::<Vec<_>>().into(),
                values: value_columns
                    .iter()
                    .map(|c| fields.iter().find(|(n, _)| **n == **c).map(|(_, v)| v.clone()))
                    .collect(),
                series: Some(*id),
                record_id,
            });
            check_limit(Limit::QueryResultRows, rows.len() as u64, limits.max_result_rows)?;
        }
    }
    page(rows, query, fingerprint, after, true, tag_columns, value_columns)
}

/// The newest row of `series` in `range` that passes the query's filters and has one of
/// its fields; adds what it decodes to `scanned`.
fn newest_row(
    view: &ReadView<'_>,
    series: SeriesId,
    range: TimeRange,
    query: &Query,
    plan: &Plan,
    limits: &QueryLimits,
    scanned: &mut u64,
) -> Result<Option<NewestRow>> {
    let mut chunks = view
        .series_chunks(series, range, plan.read_fields.clone(), Order::Descending)?
        .with_pruner(pruner(&query.filters));
    while let Some(unit) = chunks.next_unit() {
        let chunk = match unit? {
            UnitData::Lone { segment, meta } => {
                if let Some(row) = lastpoint_from_stats(&segment, &meta, &chunks, query) {
                    return Ok(Some(row));
                }
                match chunks.decode_lone(&segment, &meta)? {
                    Some(c) => c,
                    None => continue,
                }
            }
            UnitData::Rows(c) => c,
        };
        *scanned += (chunk.len() * chunk.columns.len().max(1)) as u64;
        check_limit(Limit::QueryPointsScanned, *scanned, limits.max_points_scanned)?;
        let filter_columns: Vec<Vec<usize>> = query.filters.iter().map(|f| columns_named(&chunk, &f.field)).collect();
        let requested: Option<Vec<usize>> = query.fields.as_ref().map(|f| columns_in(&chunk, f));
        let wanted = |i: usize| {
            requested
                .as_ref()
                .is_none_or(|cols| cols.iter().any(|&c| chunk.columns[c].is_valid(i)))
        };
        if let Some(i) = (0..chunk.len()).find(|&i| wanted(i) && passes(&chunk, i, &query.filters, &filter_columns)) {
            return Ok(Some((chunk.timestamps[i], chunk.record_ids.get(i).copied(), chunk.row(i))));
        }
    }
    Ok(None)
}

/// The newest row of a lone metric block from its statistics: possible when no filter
/// applies and every wanted column has a value in every row (so each column's `last` is
/// the value at the block's last timestamp) and carries it.
fn lastpoint_from_stats(segment: &SegmentReader, meta: &BlockMeta, chunks: &SeriesChunks, query: &Query) -> Option<NewestRow> {
    if chunks.kind().is_event() || !query.filters.is_empty() || meta.max_ts >= query.range.end || meta.max_ts < query.range.start {
        return None;
    }
    let fields = segment.fields();
    let mut values = Vec::new();
    for c in &meta.columns {
        let name = &fields[c.field as usize].0;
        if query.fields.as_ref().is_some_and(|f| !f.iter().any(|n| **n == **name)) {
            continue;
        }
        if c.count != meta.rows {
            return None;
        }
        values.push((
            name.clone(),
            match c.stats {
                ColumnStats::F64 { last, .. } => FieldValue::F64(last),
                ColumnStats::I64 { last, .. } => FieldValue::I64(last),
                _ => return None,
            },
        ));
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.0.cmp(&b.0));
    Some((meta.max_ts, None, values))
}
