//! In-memory models the engine is checked against: what is stored (for metrics one row per
//! series and timestamp, each field holding its newest write; every row for events), and a
//! brute-force evaluator of queries written from the definitions in the query module's
//! documentation, sharing no code with the engine.

#![allow(dead_code)]

use annals::{AggregateFn, Batch, FieldValue, Fill, Order, Query, QueryRow, ScanRequest, SeriesKey};
use std::collections::BTreeMap;

/// What the model holds of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub series: u32,
    pub key: SeriesKey,
    pub timestamp: i64,
    pub seq: u64,
    /// Sorted by (name, type).
    pub fields: Vec<(String, FieldValue)>,
}

impl ModelRow {
    /// The row's record id as the engine reports it: the sequence number for events.
    pub fn record_id(&self) -> Option<u64> {
        self.key.kind().is_event().then_some(self.seq)
    }

    fn value(&self, field: &str) -> Vec<&FieldValue> {
        self.fields.iter().filter(|(n, _)| n == field).map(|(_, v)| v).collect()
    }
}

#[derive(Default)]
pub struct Model {
    ids: BTreeMap<SeriesKey, u32>,
    /// Metrics: (series, ts) -> row (merged field by field, the newest write of each field
    /// winning). Events: (series, ts, seq) -> row.
    metrics: BTreeMap<(u32, i64), ModelRow>,
    events: BTreeMap<(u32, i64, u64), ModelRow>,
}

impl Model {
    pub fn apply(&mut self, batch: &Batch, first_seq: u64) {
        for (i, (key, ts, fields)) in batch.rows().enumerate() {
            let next = self.ids.len() as u32;
            let series = *self.ids.entry(key.clone()).or_insert(next);
            let mut fields: Vec<(String, FieldValue)> = fields.map(|(n, v)| (n.to_string(), v.clone())).collect();
            fields.sort_by(|a, b| (&a.0, a.1.value_type()).cmp(&(&b.0, b.1.value_type())));
            let row = ModelRow {
                series,
                key: key.clone(),
                timestamp: ts,
                seq: first_seq + i as u64,
                fields,
            };
            if key.kind().is_event() {
                self.events.insert((series, ts, row.seq), row);
            } else {
                match self.metrics.get_mut(&(series, ts)) {
                    Some(stored) => {
                        // The write replaces the fields it carries (whatever their type
                        // was) and leaves the others as they were.
                        stored.fields.retain(|(name, _)| !row.fields.iter().any(|(n, _)| n == name));
                        stored.fields.extend(row.fields);
                        stored
                            .fields
                            .sort_by(|a, b| (&a.0, a.1.value_type()).cmp(&(&b.0, b.1.value_type())));
                        stored.seq = row.seq;
                    }
                    None => {
                        self.metrics.insert((series, ts), row);
                    }
                }
            }
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &ModelRow> {
        self.metrics.values().chain(self.events.values())
    }

    pub fn scan(&self, request: &ScanRequest) -> Vec<ModelRow> {
        let selected = |r: &&ModelRow| request.selector.matches(&r.key).unwrap() && request.range.contains(r.timestamp);
        let mut rows: Vec<ModelRow> = self
            .rows()
            .filter(selected)
            .filter_map(|r| {
                let mut r = r.clone();
                if let Some(wanted) = &request.fields {
                    r.fields.retain(|(n, _)| wanted.contains(n));
                    if r.fields.is_empty() {
                        return None;
                    }
                }
                Some(r)
            })
            .collect();
        match request.order {
            Order::Ascending => rows.sort_by_key(|r| (r.timestamp, r.series, r.seq)),
            Order::Descending => rows.sort_by_key(|r| (std::cmp::Reverse(r.timestamp), r.series, std::cmp::Reverse(r.seq))),
        }
        rows.truncate(request.limit.unwrap_or(usize::MAX));
        rows
    }
}

/// Rows of one (group, bucket).
type Groups<'a> = BTreeMap<(Vec<Option<String>>, Option<i64>), Vec<&'a ModelRow>>;
/// Evaluated rows before ordering: bucket, group tags, values by column.
type Evaluated = Vec<(Option<i64>, Vec<Option<String>>, BTreeMap<String, FieldValue>)>;

/// A row as the evaluator produces it: time, tag values, and values by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleRow {
    pub time: Option<i64>,
    pub tags: BTreeMap<String, Option<String>>,
    pub values: BTreeMap<String, FieldValue>,
}

fn passes_filters(query: &Query, row: &ModelRow) -> bool {
    query
        .filters
        .iter()
        .all(|f| row.value(&f.field).iter().any(|v| v.as_f64().is_some_and(|x| f.test(x))))
}

fn bucket_of(query: &Query, ts: i64) -> Option<i64> {
    query.every.map(|b| b.start(ts))
}

/// Sample standard deviation by the two-pass formula.
fn stddev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let m2: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Some((m2 / (values.len() - 1) as f64).sqrt())
}

/// One aggregate over the rows of one group and bucket, from its definition.
fn aggregate(function: AggregateFn, field: Option<&str>, rows: &[&ModelRow]) -> Option<FieldValue> {
    let Some(field) = field else {
        return Some(FieldValue::I64(rows.len() as i64));
    };
    // (key, value) of every present value; record id 0 for metric rows.
    let mut present: Vec<((i64, u32, u64), &FieldValue)> = rows
        .iter()
        .flat_map(|r| {
            r.value(field)
                .into_iter()
                .map(move |v| ((r.timestamp, r.series, r.record_id().unwrap_or(0)), v))
        })
        .collect();
    present.sort_by_key(|(k, _)| *k);
    let numeric: Vec<&FieldValue> = present.iter().map(|(_, v)| *v).filter(|v| v.as_f64().is_some()).collect();
    let any_float = numeric.iter().any(|v| matches!(v, FieldValue::F64(_)));
    let floats: Vec<f64> = numeric.iter().filter_map(|v| v.as_f64()).collect();
    let ints: Vec<i64> = numeric
        .iter()
        .filter_map(|v| if let FieldValue::I64(i) = v { Some(*i) } else { None })
        .collect();
    let not_nan: Vec<f64> = floats.iter().copied().filter(|v| !v.is_nan()).collect();
    match function {
        AggregateFn::Count => Some(FieldValue::I64(present.len() as i64)),
        AggregateFn::First => present.first().map(|(_, v)| (*v).clone()),
        AggregateFn::Last => present.last().map(|(_, v)| (*v).clone()),
        _ if numeric.is_empty() => None,
        AggregateFn::Sum => Some(if any_float {
            FieldValue::F64(floats.iter().sum())
        } else {
            let sum: i128 = ints.iter().map(|&i| i as i128).sum();
            i64::try_from(sum).map_or(FieldValue::F64(sum as f64), FieldValue::I64)
        }),
        AggregateFn::Min if !any_float => ints.iter().min().map(|&i| FieldValue::I64(i)),
        AggregateFn::Max if !any_float => ints.iter().max().map(|&i| FieldValue::I64(i)),
        AggregateFn::Min => Some(FieldValue::F64(not_nan.iter().copied().reduce(f64::min).unwrap_or(f64::NAN))),
        AggregateFn::Max => Some(FieldValue::F64(not_nan.iter().copied().reduce(f64::max).unwrap_or(f64::NAN))),
        AggregateFn::Mean => Some(FieldValue::F64(floats.iter().sum::<f64>() / floats.len() as f64)),
        AggregateFn::Stddev => stddev(&floats).map(FieldValue::F64),
        AggregateFn::Percentile(q) => {
            let mut sorted = not_nan;
            if sorted.is_empty() {
                return None;
            }
            sorted.sort_by(f64::total_cmp);
            let rank = ((q / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            Some(FieldValue::F64(sorted[rank - 1]))
        }
    }
}

/// Every row of the query's answer, in order, before cursor, offset and limit.
/// `fields_for_all` is the value column list the engine chose when the query names none.
pub fn evaluate(model: &Model, query: &Query) -> Vec<OracleRow> {
    let selected: Vec<&ModelRow> = model
        .rows()
        .filter(|r| query.selector.matches(&r.key).unwrap() && query.range.contains(r.timestamp) && passes_filters(query, r))
        .collect();
    let wants = |r: &ModelRow| -> bool { query.fields.as_ref().is_none_or(|f| r.fields.iter().any(|(n, _)| f.contains(n))) };
    let project = |r: &ModelRow| -> BTreeMap<String, FieldValue> {
        r.fields
            .iter()
            .filter(|(n, _)| query.fields.as_ref().is_none_or(|f| f.contains(n)))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    };
    let series_tags =
        |r: &ModelRow| -> BTreeMap<String, Option<String>> { r.key.tags().iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect() };

    if query.lastpoint {
        let mut newest: BTreeMap<u32, &ModelRow> = BTreeMap::new();
        for r in selected.iter().filter(|r| wants(r)) {
            let better = newest.get(&r.series).is_none_or(|n| (r.timestamp, r.seq) > (n.timestamp, n.seq));
            if better {
                newest.insert(r.series, r);
            }
        }
        return newest
            .values()
            .map(|r| OracleRow {
                time: Some(r.timestamp),
                tags: series_tags(r),
                values: project(r),
            })
            .collect();
    }

    if query.aggregates.is_empty() {
        let mut rows: Vec<&ModelRow> = selected.into_iter().filter(|r| wants(r)).collect();
        match query.order {
            Order::Ascending => rows.sort_by_key(|r| (r.timestamp, r.series, r.seq)),
            Order::Descending => rows.sort_by_key(|r| (std::cmp::Reverse(r.timestamp), r.series, std::cmp::Reverse(r.seq))),
        }
        return rows
            .into_iter()
            .map(|r| OracleRow {
                time: Some(r.timestamp),
                tags: series_tags(r),
                values: project(r),
            })
            .collect();
    }

    // A row takes part when it has a value of an aggregated field (any row, for count(*)).
    let counts_rows = query.aggregates.iter().any(|a| a.field.is_none());
    let contributes = |r: &ModelRow| {
        counts_rows
            || query
                .aggregates
                .iter()
                .any(|a| a.field.as_ref().is_some_and(|f| !r.value(f).is_empty()))
    };
    let mut groups: Groups<'_> = BTreeMap::new();
    for r in selected.iter().filter(|r| contributes(r)) {
        let key: Vec<Option<String>> = query.group_by.iter().map(|t| r.key.tag(t).map(str::to_owned)).collect();
        groups.entry((key, bucket_of(query, r.timestamp))).or_default().push(r);
    }
    let columns: Vec<String> = query.aggregates.iter().map(|a| a.column_name()).collect();
    let compute = |rows: &[&ModelRow]| -> BTreeMap<String, FieldValue> {
        query
            .aggregates
            .iter()
            .zip(&columns)
            .filter_map(|(a, c)| aggregate(a.function, a.field.as_deref(), rows).map(|v| (c.clone(), v)))
            .collect()
    };
    let tags_of =
        |key: &[Option<String>]| -> BTreeMap<String, Option<String>> { query.group_by.iter().cloned().zip(key.iter().cloned()).collect() };
    let mut out: Evaluated = Vec::new();
    match (query.every, query.fill) {
        (Some(every), fill) if fill != Fill::None => {
            let present: Vec<i64> = groups.keys().filter_map(|(_, b)| *b).collect();
            let first = if query.range.start > i64::MIN {
                Some(every.start(query.range.start))
            } else {
                present.iter().min().copied()
            };
            let last = if query.range.end < i64::MAX {
                Some(every.start(query.range.end - 1))
            } else {
                present.iter().max().copied()
            };
            let group_keys: std::collections::BTreeSet<Vec<Option<String>>> = groups.keys().map(|(g, _)| g.clone()).collect();
            if let (Some(first), Some(last)) = (first, last) {
                for g in group_keys {
                    let mut previous: BTreeMap<String, FieldValue> = BTreeMap::new();
                    let mut b = first;
                    while b <= last {
                        let values = match groups.get(&(g.clone(), Some(b))) {
                            Some(rows) => compute(rows),
                            None => match fill {
                                Fill::Previous => previous.clone(),
                                Fill::Value(v) => columns.iter().map(|c| (c.clone(), FieldValue::F64(v))).collect(),
                                _ => BTreeMap::new(),
                            },
                        };
                        previous = values.clone();
                        out.push((Some(b), g.clone(), values));
                        b = every.next(b);
                    }
                }
            }
        }
        _ => {
            for ((g, b), rows) in &groups {
                out.push((*b, g.clone(), compute(rows)));
            }
        }
    }
    out.sort_by(|a, b| {
        let time = a.0.cmp(&b.0);
        let time = if query.order == Order::Descending { time.reverse() } else { time };
        time.then_with(|| a.1.cmp(&b.1))
    });
    out.into_iter()
        .map(|(time, g, values)| OracleRow {
            time,
            tags: tags_of(&g),
            values,
        })
        .collect()
}

/// The engine's row in the evaluator's shape.
pub fn engine_row(columns: (&[String], &[String]), row: &QueryRow) -> OracleRow {
    OracleRow {
        time: row.time,
        tags: columns
            .0
            .iter()
            .cloned()
            .zip(row.tags.iter().cloned())
            .filter(|(_, v)| v.is_some())
            .collect(),
        values: columns
            .1
            .iter()
            .cloned()
            .zip(row.values.iter().cloned())
            .filter_map(|(c, v)| v.map(|v| (c, v)))
            .collect(),
    }
}

/// Float aggregates computed in different orders differ in their last bits; everything else
/// must be identical.
pub fn same_value(column: &str, a: &FieldValue, b: &FieldValue) -> bool {
    let inexact = ["sum(", "mean(", "stddev("].iter().any(|p| column.starts_with(p));
    match (a, b) {
        (FieldValue::F64(x), FieldValue::F64(y)) if inexact => {
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

/// Whether two rows agree (tags compared without absent values).
pub fn same_row(a: &OracleRow, b: &OracleRow) -> bool {
    let tags =
        |r: &OracleRow| -> BTreeMap<String, String> { r.tags.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect() };
    a.time == b.time
        && tags(a) == tags(b)
        && a.values.len() == b.values.len()
        && a.values.iter().all(|(k, v)| b.values.get(k).is_some_and(|w| same_value(k, v, w)))
}
