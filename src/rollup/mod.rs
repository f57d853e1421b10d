//! Summaries (roll-ups): per series and bucket (an hour, a day or an ISO week), the row
//! count and, per field, the count of values and, for numeric fields, sum, min, max, first
//! and last (with their times) and a [`QuantileSketch`]. Every part merges exactly (sums
//! add, extremes compare, sketches add bins), so a day is the merge of its hours and a week
//! of its days, and a query adds buckets without ever averaging averages.
//!
//! A summary is stored as a row of the same series in a summary segment, at the bucket's
//! start, with one column per part: `rows`, `<field>.count`, `<field>.numeric` (only when
//! some values were not numeric), `<field>.sum`, `.min`, `.max` (integers while every value
//! was an integer), `.first`, `.last` (the field's own type), `.first_time`, `.last_time`
//! and `.sketch` (text, see [`sketch`]). The part is the text after the last `.`, so
//! field names with dots stay unambiguous.

pub mod sketch;

use crate::chunk::{Chunk, Column, ColumnValues};
use crate::error::{Error, Result};
use crate::model::{FieldValue, SeriesId, ValueType};
use crate::time::Bucket;
use rustc_hash::FxHashMap;
use sketch::QuantileSketch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Folds an optional extreme into another with `pick` (`f64::min` ignores NaN).
pub(crate) fn fold_extreme<T: Copy>(mine: &mut Option<T>, theirs: Option<T>, pick: fn(T, T) -> T) {
    if let Some(t) = theirs {
        *mine = Some(mine.map_or(t, |m| pick(m, t)));
    }
}

/// The summary of one field in one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSummary {
    /// Values present, of any type.
    pub count: u64,
    /// Numeric values among them.
    pub numeric: u64,
    pub any_float: bool,
    pub sum_f: f64,
    pub sum_i: i128,
    /// Extremes without NaN (`None` when every numeric value was NaN).
    pub min_f: Option<f64>,
    pub max_f: Option<f64>,
    pub min_i: Option<i64>,
    pub max_i: Option<i64>,
    pub first: Option<(i64, FieldValue)>,
    pub last: Option<(i64, FieldValue)>,
    pub sketch: QuantileSketch,
}

impl FieldSummary {
    fn add_f64(&mut self, ts: i64, v: f64) {
        self.count += 1;
        self.numeric += 1;
        self.any_float = true;
        self.sum_f += v;
        if !v.is_nan() {
            self.min_f = Some(self.min_f.map_or(v, |m| m.min(v)));
            self.max_f = Some(self.max_f.map_or(v, |m| m.max(v)));
        }
        self.sketch.add(v);
        self.first_last(ts, FieldValue::F64(v));
    }

    fn add_i64(&mut self, ts: i64, v: i64) {
        self.count += 1;
        self.numeric += 1;
        self.sum_i += i128::from(v);
        self.sum_f += v as f64;
        self.min_i = Some(self.min_i.map_or(v, |m| m.min(v)));
        self.max_i = Some(self.max_i.map_or(v, |m| m.max(v)));
        self.min_f = Some(self.min_f.map_or(v as f64, |m| m.min(v as f64)));
        self.max_f = Some(self.max_f.map_or(v as f64, |m| m.max(v as f64)));
        self.sketch.add(v as f64);
        self.first_last(ts, FieldValue::I64(v));
    }

    /// Rows come in time order within a series: the first value seen at the earliest time
    /// stays first, the last one seen at the latest time becomes last.
    fn first_last(&mut self, ts: i64, v: FieldValue) {
        if self.first.as_ref().is_none_or(|(t, _)| ts < *t) {
            self.first = Some((ts, v.clone()));
        }
        if self.last.as_ref().is_none_or(|(t, _)| ts >= *t) {
            self.last = Some((ts, v));
        }
    }

    /// Adds a summary of a later or disjoint stretch of the same series.
    pub(crate) fn merge(&mut self, other: &FieldSummary) {
        self.count += other.count;
        self.numeric += other.numeric;
        self.any_float |= other.any_float;
        self.sum_f += other.sum_f;
        self.sum_i += other.sum_i;
        fold_extreme(&mut self.min_f, other.min_f, f64::min);
        fold_extreme(&mut self.max_f, other.max_f, f64::max);
        fold_extreme(&mut self.min_i, other.min_i, std::cmp::min);
        fold_extreme(&mut self.max_i, other.max_i, std::cmp::max);
        if let Some((t, v)) = &other.first
            && self.first.as_ref().is_none_or(|(mine, _)| t < mine)
        {
            self.first = Some((*t, v.clone()));
        }
        if let Some((t, v)) = &other.last
            && self.last.as_ref().is_none_or(|(mine, _)| t >= mine)
        {
            self.last = Some((*t, v.clone()));
        }
        self.sketch.merge(&other.sketch);
    }
}

/// The summary of one series in one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BucketSummary {
    pub rows: u64,
    pub fields: BTreeMap<Arc<str>, FieldSummary>,
}

impl BucketSummary {
    pub(crate) fn merge(&mut self, other: &BucketSummary) {
        self.rows += other.rows;
        for (name, f) in &other.fields {
            self.fields.entry(name.clone()).or_default().merge(f);
        }
    }
}

/// Summaries of one series by bucket start.
pub(crate) type Buckets = BTreeMap<i64, BucketSummary>;

/// Adds a series' detail rows (sorted by time) to the summaries of `bucket`.
pub(crate) fn add_rows(chunk: &Chunk, bucket: Bucket, out: &mut Buckets) {
    let ts = &chunk.timestamps;
    let mut start = 0;
    while start < ts.len() {
        let b = bucket.start(ts[start]);
        let next = bucket.next(b);
        let end = start + ts[start..].partition_point(|&t| t < next);
        let summary = out.entry(b).or_default();
        summary.rows += (end - start) as u64;
        for column in &chunk.columns {
            let field = summary.fields.entry(column.name.clone()).or_default();
            for i in start..end {
                if !column.is_valid(i) {
                    continue;
                }
                match &column.values {
                    ColumnValues::F64(v) => field.add_f64(ts[i], v[i]),
                    ColumnValues::I64(v) => field.add_i64(ts[i], v[i]),
                    ColumnValues::Bool(_) | ColumnValues::Str(_) | ColumnValues::Bytes(_) => field.count += 1,
                }
            }
            if field.count == 0 {
                summary.fields.remove(&column.name);
            }
        }
        start = end;
    }
}

/// Re-buckets finer summaries into `bucket` (hours into days, days into weeks).
pub(crate) fn roll_up(finer: &Buckets, bucket: Bucket, out: &mut Buckets) {
    for (start, summary) in finer {
        out.entry(bucket.start(*start)).or_default().merge(summary);
    }
}

/// Parts of a numeric field's summary, with the types each may have.
fn numeric_parts(value_type: ValueType) -> [(&'static str, &'static [ValueType]); 9] {
    let own: &'static [ValueType] = if value_type == ValueType::I64 {
        &[ValueType::I64]
    } else {
        &[ValueType::F64]
    };
    [
        ("numeric", &[ValueType::I64]),
        ("sum", &[ValueType::I64, ValueType::F64]),
        ("min", &[ValueType::I64, ValueType::F64]),
        ("max", &[ValueType::I64, ValueType::F64]),
        ("first", own),
        ("last", own),
        ("first_time", &[ValueType::I64]),
        ("last_time", &[ValueType::I64]),
        ("sketch", &[ValueType::Str]),
    ]
}

/// The (name, type) columns a summary segment may hold for detail columns `detail`: the
/// field table of a summary file is known before its rows are computed.
pub(crate) fn summary_fields(detail: impl IntoIterator<Item = (Arc<str>, ValueType)>) -> Vec<(Arc<str>, ValueType)> {
    let mut out: Vec<(Arc<str>, ValueType)> = vec![(Arc::from("rows"), ValueType::I64)];
    for (name, value_type) in detail {
        out.push((Arc::from(format!("{name}.count")), ValueType::I64));
        if !matches!(value_type, ValueType::F64 | ValueType::I64) {
            continue;
        }
        for (part, types) in numeric_parts(value_type) {
            for t in types {
                out.push((Arc::from(format!("{name}.{part}")), *t));
            }
        }
    }
    out
}

/// Builds columns row by row, creating a column the first time a (name, type) appears.
/// Each column is set at most once per row.
#[derive(Default)]
struct ColumnsBuilder {
    columns: Vec<Column>,
    index: FxHashMap<(String, ValueType), usize>,
    row: usize,
}

impl ColumnsBuilder {
    fn set(&mut self, name: String, value: FieldValue) {
        let value_type = value.value_type();
        let row = self.row;
        let columns = &mut self.columns;
        let i = *self.index.entry((name.clone(), value_type)).or_insert_with(|| {
            let mut values = ColumnValues::new(value_type);
            for _ in 0..row {
                values.push_default();
            }
            columns.push(Column {
                name: Arc::from(name),
                values,
                validity: vec![false; row],
            });
            columns.len() - 1
        });
        let column = &mut self.columns[i];
        column.values.push(&value);
        column.validity.push(true);
    }

    /// Ends the current row: columns it did not set get an absent slot.
    fn end_row(&mut self) {
        self.row += 1;
        for column in &mut self.columns {
            if column.validity.len() < self.row {
                column.values.push_default();
                column.validity.push(false);
            }
        }
    }
}

/// The summary rows of one series.
pub(crate) fn to_chunk(series: SeriesId, buckets: &Buckets) -> Chunk {
    let mut b = ColumnsBuilder::default();
    let mut timestamps = Vec::with_capacity(buckets.len());
    for (start, summary) in buckets {
        timestamps.push(*start);
        b.set("rows".into(), FieldValue::I64(summary.rows as i64));
        for (name, f) in &summary.fields {
            b.set(format!("{name}.count"), FieldValue::I64(f.count as i64));
            if f.numeric == 0 {
                continue;
            }
            if f.numeric != f.count {
                b.set(format!("{name}.numeric"), FieldValue::I64(f.numeric as i64));
            }
            let integral = !f.any_float;
            let sum = match i64::try_from(f.sum_i) {
                Ok(i) if integral => FieldValue::I64(i),
                _ => FieldValue::F64(f.sum_f),
            };
            b.set(format!("{name}.sum"), sum);
            let (min, max) = match (integral, f.min_i, f.max_i) {
                (true, Some(lo), Some(hi)) => (FieldValue::I64(lo), FieldValue::I64(hi)),
                _ => (
                    FieldValue::F64(f.min_f.unwrap_or(f64::NAN)),
                    FieldValue::F64(f.max_f.unwrap_or(f64::NAN)),
                ),
            };
            b.set(format!("{name}.min"), min);
            b.set(format!("{name}.max"), max);
            if let Some((t, v)) = &f.first {
                b.set(format!("{name}.first"), v.clone());
                b.set(format!("{name}.first_time"), FieldValue::I64(*t));
            }
            if let Some((t, v)) = &f.last {
                b.set(format!("{name}.last"), v.clone());
                b.set(format!("{name}.last_time"), FieldValue::I64(*t));
            }
            b.set(format!("{name}.sketch"), FieldValue::Str(f.sketch.to_text()));
        }
        b.end_row();
    }
    Chunk {
        series,
        timestamps,
        record_ids: Vec::new(),
        columns: b.columns,
    }
}

fn bad(why: impl Into<String>) -> Error {
    Error::Invariant(format!("summary row: {}", why.into()))
}

/// What a row said about one field beyond the parts stored in [`FieldSummary`].
#[derive(Default)]
struct Seen {
    numeric: bool,
    sum: bool,
    first_time: Option<i64>,
    last_time: Option<i64>,
}

/// Parses summary rows back (the inverse of [`to_chunk`]); a column that is not a summary
/// part is an error, as is a part of the wrong type.
pub(crate) fn from_chunk(chunk: &Chunk) -> Result<Buckets> {
    let mut rows: Vec<BucketSummary> = vec![BucketSummary::default(); chunk.len()];
    let mut seen: FxHashMap<(usize, Arc<str>), Seen> = FxHashMap::default();
    let count = |v: &FieldValue| match v {
        FieldValue::I64(n) => u64::try_from(*n).map_err(|_| bad("negative count")),
        _ => Err(bad("a count is not an integer")),
    };
    for column in &chunk.columns {
        if &*column.name == "rows" {
            for (i, row) in rows.iter_mut().enumerate() {
                if let Some(v) = column.value(i) {
                    row.rows = count(&v)?;
                }
            }
            continue;
        }
        let (field, part) = column
            .name
            .rsplit_once('.')
            .ok_or_else(|| bad(format!("column {:?} is not a summary part", column.name)))?;
        let field: Arc<str> = Arc::from(field);
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(value) = column.value(i) else { continue };
            let f = row.fields.entry(field.clone()).or_default();
            let s = seen.entry((i, field.clone())).or_default();
            match (part, value) {
                ("count", v) => f.count = count(&v)?,
                ("numeric", v) => {
                    f.numeric = count(&v)?;
                    s.numeric = true;
                }
                ("sum", FieldValue::I64(x)) => {
                    f.sum_i = i128::from(x);
                    f.sum_f = x as f64;
                    s.sum = true;
                }
                ("sum", FieldValue::F64(x)) => {
                    f.sum_f = x;
                    f.any_float = true;
                    s.sum = true;
                }
                ("min", FieldValue::I64(m)) => {
                    f.min_i = Some(m);
                    f.min_f = Some(m as f64);
                }
                ("min", FieldValue::F64(m)) => f.min_f = (!m.is_nan()).then_some(m),
                ("max", FieldValue::I64(m)) => {
                    f.max_i = Some(m);
                    f.max_f = Some(m as f64);
                }
                ("max", FieldValue::F64(m)) => f.max_f = (!m.is_nan()).then_some(m),
                ("first", v) => f.first = Some((0, v)),
                ("last", v) => f.last = Some((0, v)),
                ("first_time", FieldValue::I64(t)) => s.first_time = Some(t),
                ("last_time", FieldValue::I64(t)) => s.last_time = Some(t),
                ("sketch", FieldValue::Str(text)) => {
                    f.sketch = QuantileSketch::from_text(&text).map_err(bad)?;
                }
                (part, v) => {
                    return Err(bad(format!(
                        "column {:?}: part {part:?} cannot hold a {}",
                        column.name,
                        v.value_type().name()
                    )));
                }
            }
        }
    }
    for ((i, field), s) in seen {
        let Some(f) = rows[i].fields.get_mut(&field) else { continue };
        // A numeric field's values were all numeric unless `numeric` says otherwise.
        if s.sum && !s.numeric {
            f.numeric = f.count;
        }
        match (&mut f.first, s.first_time) {
            (Some(first), Some(t)) => first.0 = t,
            (None, None) => {}
            _ => return Err(bad(format!("{field}: first without its time"))),
        }
        match (&mut f.last, s.last_time) {
            (Some(last), Some(t)) => last.0 = t,
            (None, None) => {}
            _ => return Err(bad(format!("{field}: last without its time"))),
        }
    }
    Ok(chunk.timestamps.iter().copied().zip(rows).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Column;
    use crate::time::NANOS_PER_HOUR as HOUR;

    fn detail() -> Chunk {
        let hour = HOUR;
        let timestamps: Vec<i64> = (0..10).map(|i| i * hour / 3).collect();
        let n = timestamps.len();
        Chunk {
            series: 7,
            timestamps,
            record_ids: Vec::new(),
            columns: vec![
                Column {
                    name: Arc::from("cpu.user"),
                    values: ColumnValues::F64((0..n).map(|i| i as f64 * 1.5 - 3.0).collect()),
                    validity: (0..n).map(|i| i != 4).collect(),
                },
                Column {
                    name: Arc::from("errors"),
                    values: ColumnValues::I64((0..n as i64).collect()),
                    validity: vec![true; n],
                },
                Column {
                    name: Arc::from("msg"),
                    values: ColumnValues::Str((0..n).map(|i| format!("m{i}")).collect()),
                    validity: vec![true; n],
                },
            ],
        }
    }

    #[test]
    fn rows_round_trip_through_columns_and_roll_up_exactly() {
        let chunk = detail();
        let mut hours = Buckets::new();
        add_rows(&chunk, Bucket::Fixed(crate::time::NANOS_PER_HOUR), &mut hours);
        assert_eq!(hours.len(), 4);
        assert_eq!(hours[&0].rows, 3);
        assert_eq!(hours[&0].fields["errors"].sum_i, 3);
        assert_eq!(hours[&HOUR].fields["cpu.user"].count, 2, "row 4 has no cpu.user");
        let back = from_chunk(&to_chunk(7, &hours)).unwrap();
        assert_eq!(back, hours);
        let mut days = Buckets::new();
        roll_up(&hours, Bucket::Fixed(crate::time::NANOS_PER_DAY), &mut days);
        let mut direct = Buckets::new();
        add_rows(&chunk, Bucket::Fixed(crate::time::NANOS_PER_DAY), &mut direct);
        assert_eq!(days, direct);
        let d = &days[&0];
        assert_eq!(d.rows, 10);
        assert_eq!(d.fields["msg"].count, 10);
        assert_eq!(d.fields["msg"].numeric, 0);
        assert_eq!(d.fields["errors"].first, Some((0, FieldValue::I64(0))));
        assert_eq!(d.fields["errors"].last, Some((3 * HOUR, FieldValue::I64(9))));
        let fields = summary_fields([(Arc::from("cpu.user"), ValueType::F64), (Arc::from("msg"), ValueType::Str)]);
        let table: std::collections::BTreeSet<_> = fields.into_iter().collect();
        for column in to_chunk(7, &days).columns {
            assert!(table.contains(&(column.name.clone(), column.value_type())) || column.name.starts_with("errors"));
        }
    }

    #[test]
    fn foreign_columns_are_errors() {
        let mut chunk = to_chunk(
            1,
            &Buckets::from([(
                0,
                BucketSummary {
                    rows: 1,
                    ..Default::default()
                },
            )]),
        );
        chunk.columns.push(Column {
            name: Arc::from("plain"),
            values: ColumnValues::I64(vec![1]),
            validity: vec![true],
        });
        assert!(from_chunk(&chunk).is_err());
    }
}
